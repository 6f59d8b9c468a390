//! `entra-token setup az`: Azure SDKs find the Azure CLI as `az` on PATH, so the whole
//! setup is a link named `az` to this binary in a directory that comes first on PATH.
//! The same shape serves `setup azd` (see `azd.rs`).

use super::ApplyArg;
use super::links;
use crate::error::{Error, Result};
use crate::log::warn;
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub(crate) struct PathLinkArgs {
    /// Directory for the link; it must come before any real CLI on PATH (default ~/.local/bin; %LOCALAPPDATA%\entra-token\bin on Windows).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Move an existing file of the same name in DIR aside instead of stopping.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub apply: ApplyArg,
}

/// `~/.local/bin`, where per-user programs go on most Linux and macOS setups; on Windows
/// `%LOCALAPPDATA%\entra-token\bin` (a per-user folder no installer owns).
pub(crate) fn default_bin_dir() -> Result<PathBuf> {
    if cfg!(windows) {
        return dirs::data_local_dir().map(|d| d.join("entra-token").join("bin")).ok_or_else(|| Error::bad_input_hint("no %LOCALAPPDATA% folder", "pass --dir"));
    }
    dirs::home_dir().map(|h| h.join(".local").join("bin")).ok_or_else(|| Error::bad_input_hint("HOME is not set", "pass --dir"))
}

/// The first `name` on PATH, and whether it is this binary. On Windows the names `cmd`
/// finds: `NAME.exe`, then `.bat`/`.cmd` (the real Azure CLI is `az.cmd`).
fn first_on_path(name: &str, exe: &Path) -> Option<(PathBuf, bool)> {
    let path = crate::env::os(crate::env::PATH)?;
    let names: Vec<String> = if cfg!(windows) { ["exe", "bat", "cmd"].iter().map(|e| format!("{name}.{e}")).collect() } else { vec![name.to_string()] };
    std::env::split_paths(&path).flat_map(|d| names.iter().map(move |n| d.join(n))).find(|p| p.is_file()).map(|p| {
        let ours = links::already(exe, &p);
        (p, ours)
    })
}

/// The text `setup az|azd` prints: what to run, and what it changes.
pub(crate) fn text(name: &str, what: &str, check: &str, exe: &Path, dir: &Path) -> String {
    let link = dir.join(links::file_name(name));
    if cfg!(windows) {
        // PowerShell: a hard link NAME.exe (cmd /c NAME finds it), and the folder first on Path.
        let d = links::ps_quote(&dir.to_string_lossy());
        return format!(
            "# entra-token answers `{what}` when it is found as `{name}` on Path (cmd /c {name} finds {name}.exe).\n\
             # It serves only that command: a real {name} later on Path is shadowed for everything.\n\
             New-Item -ItemType Directory -Force -Path '{d}' | Out-Null\n\
             {}\n\
             $env:Path = '{d};' + $env:Path   # for good: [Environment]::SetEnvironmentVariable('Path', '{d};' + [Environment]::GetEnvironmentVariable('Path', 'User'), 'User')\n\
             # check: {check}\n",
            links::link_command(exe, &link),
        );
    }
    let q = |p: &Path| super::shell_quote(&p.to_string_lossy());
    format!(
        "# entra-token answers `{what}` when it is found as `{name}` on PATH.\n\
         # It serves only that command: a real {name} later on PATH is shadowed for everything.\n\
         mkdir -p {dir}\n\
         ln -sf {exe} {link}\n\
         export PATH={dir}:\"$PATH\"   # put this in your shell profile if {dir} is not first on PATH\n\
         # check: {check}\n",
        dir = q(dir),
        exe = q(exe),
        link = q(&link),
    )
}

/// Prints (or with --apply creates) the link `name` for a CLI stand-in.
pub(crate) fn run_link(name: &'static str, what: &str, check: &str, args: &PathLinkArgs) -> Result<ExitCode> {
    let exe = super::self_exe()?;
    let dir = args.dir.clone().map_or_else(default_bin_dir, Ok)?;
    if let Some((found, false)) = first_on_path(name, &exe)
        && found.parent() != Some(dir.as_path())
    {
        warn!("{} is the first `{name}` on PATH; put {} before its directory", found.display(), dir.display());
    }
    if !args.apply.apply {
        return super::print(&text(name, what, check, &exe, &dir));
    }
    links::make(dir, name, args.force)
}

pub(crate) fn run(args: &PathLinkArgs) -> Result<ExitCode> {
    run_link(
        "az",
        "az account get-access-token",
        "az account get-access-token --resource https://management.azure.com --query expiresOn -o tsv",
        args,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(windows))]
    #[test]
    fn text_names_the_link_and_the_path_order() {
        let t = text("az", "az account get-access-token", "az account get-access-token", Path::new("/opt/entra token/entra-token"), Path::new("/home/u/.local/bin"));
        assert!(t.contains("ln -sf '/opt/entra token/entra-token' /home/u/.local/bin/az\n"), "{t}");
        assert!(t.contains("export PATH=/home/u/.local/bin:\"$PATH\""), "{t}");
        assert!(t.contains("shadowed"), "{t}");
    }

    /// Windows: PowerShell that makes az.exe (what `cmd /c az` finds) and puts its folder first.
    #[cfg(windows)]
    #[test]
    fn text_is_powershell_making_az_exe_first_on_path() {
        let t = text("az", "az account get-access-token", "az account get-access-token", Path::new(r"C:\Tools\it's\entra-token.exe"), Path::new(r"C:\Users\u\AppData\Local\entra-token\bin"));
        assert!(t.contains(r"New-Item -ItemType HardLink -Force -Path 'C:\Users\u\AppData\Local\entra-token\bin\az.exe' -Target 'C:\Tools\it''s\entra-token.exe'"), "{t}");
        assert!(t.contains(r"$env:Path = 'C:\Users\u\AppData\Local\entra-token\bin;' + $env:Path"), "{t}");
        assert!(!t.contains("ln -sf") && !t.contains("export PATH") && !t.contains("mkdir -p"), "{t}");
        assert!(default_bin_dir().unwrap().ends_with(r"entra-token\bin"));
    }
}
