//! `entra-token setup links DIR`: the multi-call names (`git-credential-entra-token`, `az`,
//! …) as symlinks to this binary (on Windows `NAME.exe` hard links, or copies across
//! volumes: symlinks need privileges there and an extension-less name cannot be run), so
//! tools that find helpers by name on PATH run us in the right protocol, `cmd /c az …`
//! included. `protocols::multicall` is the other half: it picks the protocol by name.

use super::ApplyArg;
use crate::error::{Error, Result};
use crate::log::warn;
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Every name `protocols::multicall` answers to, with what it is for.
pub(crate) const LINKS: &[(&str, &str)] = &[
    ("git-credential-entra-token", "git: credential.helper = entra-token"),
    ("az", "Azure CLI stand-in: az account get-access-token (shadows a real az earlier on PATH)"),
    ("azd", "Azure Developer CLI stand-in: azd auth token (shadows a real azd earlier on PATH)"),
    ("docker-credential-entra-token", "docker: \"credHelpers\": {\"<registry>\": \"entra-token\"}"),
    ("entra-token-bazel", "bazel: --credential_helper=…/entra-token-bazel"),
    ("nuget-plugin-entra-token", "NuGet: a credential plugin found on PATH (or NUGET_PLUGIN_PATHS)"),
];

#[derive(Debug, Args)]
pub(crate) struct LinksArgs {
    /// Directory for the links (put it on PATH), e.g. ~/.local/bin.
    pub dir: PathBuf,
    /// Only these names (comma-separated), e.g. --only git-credential-entra-token,entra-token-bazel.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Replace an existing file or link of the same name (it is renamed to NAME.entra-token-backup-TIME).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub apply: ApplyArg,
}

/// The names chosen by `--only` (all of them by default); an unknown name is bad input.
pub(crate) fn chosen(only: &[String]) -> Result<Vec<&'static str>> {
    if only.is_empty() {
        return Ok(LINKS.iter().map(|(n, _)| *n).collect());
    }
    only.iter()
        .map(|want| {
            LINKS.iter().map(|(n, _)| *n).find(|n| n == want).ok_or_else(|| {
                Error::bad_input_hint(format!("unknown link name '{want}'"), format!("use one of: {}", LINKS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")))
            })
        })
        .collect()
}

/// Makes the one link `name` in `dir` (a tool's setup with --apply).
pub(crate) fn make(dir: PathBuf, name: &str, force: bool) -> Result<ExitCode> {
    run(&LinksArgs { dir, only: vec![name.to_string()], force, apply: ApplyArg { apply: true } })
}

pub(crate) fn run(args: &LinksArgs) -> Result<ExitCode> {
    let exe = super::self_exe()?;
    let names = chosen(&args.only)?;
    if !args.apply.apply {
        return super::print(&plan(&exe, &args.dir, &names));
    }
    own_dir(&args.dir)?;
    for name in &names {
        create(&exe, &args.dir.join(file_name(name)), args.force)?;
    }
    if !on_path(&args.dir) {
        warn!("{} is not on PATH, so nothing will find {}: add it to PATH", args.dir.display(), names.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

/// Makes (or checks) `dir`, where links that run as the user's credential helpers go: it
/// goes on PATH, so whoever can change it or a directory on the way to it decides what
/// runs. `fs::create_private_dir`'s walk refuses a link planted in a directory others can
/// change, another user's directory and one others may write; a new one is the user's
/// alone. An existing directory on Windows is left as it is (its access list is the user's
/// to set).
pub(crate) fn own_dir(dir: &Path) -> Result<()> {
    if cfg!(unix) || std::fs::symlink_metadata(dir).is_err() {
        crate::fs::create_private_dir(dir).map_err(Error::failed)?;
    }
    Ok(())
}

/// The file a name is placed as: Windows runs only names with an executable extension.
pub(crate) fn file_name(name: &str) -> String {
    if cfg!(windows) { format!("{name}.exe") } else { name.to_string() }
}

/// What `--apply` would do, as commands for this platform's shell.
fn plan(exe: &Path, dir: &Path, names: &[&str]) -> String {
    let mut text = format!("# multi-call links to {} (run with --apply to create them)\n", exe.display());
    if cfg!(windows) {
        text.push_str(&format!("New-Item -ItemType Directory -Force -Path '{}' | Out-Null\n", ps_quote(&dir.to_string_lossy())));
    } else {
        text.push_str(&format!("mkdir -p {}\n", super::shell_quote(&dir.to_string_lossy())));
    }
    for name in names {
        let why = LINKS.iter().find(|(n, _)| n == name).map(|(_, w)| *w).unwrap_or("");
        text.push_str(&format!("{}   # {why}\n", link_command(exe, &dir.join(file_name(name)))));
    }
    text
}

/// The command for this platform's shell that makes `link` run `exe`.
pub(crate) fn link_command(exe: &Path, link: &Path) -> String {
    if cfg!(windows) {
        format!("New-Item -ItemType HardLink -Force -Path '{}' -Target '{}'", ps_quote(&link.to_string_lossy()), ps_quote(&exe.to_string_lossy()))
    } else {
        format!("ln -sf {} {}", super::shell_quote(&exe.to_string_lossy()), super::shell_quote(&link.to_string_lossy()))
    }
}

/// PowerShell single-quoted string body: a quote is doubled.
pub(crate) fn ps_quote(s: &str) -> String {
    s.replace('\'', "''")
}

/// Whether `link` already runs `exe`: a symlink resolving to it, or (Windows) a hard
/// link or copy with the same bytes (the check the az fallback uses too).
pub(crate) fn already(exe: &Path, link: &Path) -> bool {
    crate::fs::program::runs(exe, link)
}

pub(crate) fn create(exe: &Path, link: &Path, force: bool) -> Result<()> {
    match std::fs::symlink_metadata(link) {
        Ok(_) if already(exe, link) => {
            warn!("{} already points to {}", link.display(), exe.display());
            return Ok(());
        }
        Ok(_) if !force => {
            return Err(Error::bad_input_hint(
                format!("{} exists and is not a link to {}", link.display(), exe.display()),
                "remove it, or pass --force to move it aside",
            ));
        }
        Ok(_) => {
            let aside = link.with_file_name(format!("{}.entra-token-backup-{}", link.file_name().unwrap_or_default().to_string_lossy(), crate::clock::now()));
            std::fs::rename(link, &aside).map_err(|e| Error::caused(format!("cannot move {} aside", link.display()), e))?;
            warn!("moved {} to {}", link.display(), aside.display());
        }
        Err(_) => {}
    }
    let how = place(exe, link).map_err(|e| Error::caused(format!("cannot create the link {}", link.display()), e))?;
    warn!("{how} {} -> {}", link.display(), exe.display());
    Ok(())
}

#[cfg(unix)]
fn place(target: &Path, link: &Path) -> std::io::Result<&'static str> {
    std::os::unix::fs::symlink(target, link).map(|()| "linked")
}

/// A hard link needs no privilege (a symlink does) but the same volume; else a copy.
/// Either is a snapshot: after an upgrade, run `setup links --apply --force` again.
#[cfg(not(unix))]
fn place(target: &Path, link: &Path) -> std::io::Result<&'static str> {
    std::fs::hard_link(target, link).map(|()| "hard-linked").or_else(|_| std::fs::copy(target, link).map(|_| "copied"))
}

fn on_path(dir: &Path) -> bool {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    crate::env::os(crate::env::PATH).is_some_and(|p| std::env::split_paths(&p).any(|d| std::fs::canonicalize(&d).unwrap_or(d) == dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_accepts_known_names() {
        assert_eq!(chosen(&[]).unwrap().len(), LINKS.len());
        assert_eq!(chosen(&["az".into()]).unwrap(), vec!["az"]);
        assert_eq!(chosen(&["rm".into()]).unwrap_err().exit_code(), 1);
    }
}
