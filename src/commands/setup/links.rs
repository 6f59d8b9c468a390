//! `entra-token setup links DIR`: the multi-call names (`git-credential-entra-token`, `az`,
//! …) as symlinks to this binary, so tools that find helpers by name on PATH run us in the
//! right protocol. `protocols::multicall` is the other half: it picks the protocol by name.

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

pub(crate) fn run(args: &LinksArgs) -> Result<ExitCode> {
    let exe = super::self_exe()?;
    let names = chosen(&args.only)?;
    if !args.apply.apply {
        let mut text = format!("# multi-call links to {} (run with --apply to create them)\nmkdir -p {}\n", exe.display(), super::shell_quote(&args.dir.to_string_lossy()));
        for name in &names {
            let why = LINKS.iter().find(|(n, _)| n == name).map(|(_, w)| *w).unwrap_or("");
            let link = args.dir.join(name);
            text.push_str(&format!("ln -sf {} {}   # {why}\n", super::shell_quote(&exe.to_string_lossy()), super::shell_quote(&link.to_string_lossy())));
        }
        return super::print(&text);
    }
    std::fs::create_dir_all(&args.dir).map_err(|e| Error::general(format!("cannot create {}: {e}", args.dir.display())))?;
    for name in names {
        create(&exe, &args.dir.join(name), args.force)?;
    }
    if !on_path(&args.dir) {
        warn!("{} is not on PATH; add it so git, docker and bazel find the helpers", args.dir.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn create(exe: &Path, link: &Path, force: bool) -> Result<()> {
    match std::fs::symlink_metadata(link) {
        Ok(_) if std::fs::canonicalize(link).is_ok_and(|t| t == exe) => {
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
            std::fs::rename(link, &aside).map_err(|e| Error::general(format!("cannot move {} aside: {e}", link.display())))?;
            warn!("moved {} to {}", link.display(), aside.display());
        }
        Err(_) => {}
    }
    symlink(exe, link).map_err(|e| Error::general(format!("cannot create the link {}: {e}", link.display())))?;
    warn!("linked {} -> {}", link.display(), exe.display());
    Ok(())
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::fs::copy(target, link).map(|_| ())
}

fn on_path(dir: &Path) -> bool {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| std::fs::canonicalize(&d).unwrap_or(d) == dir))
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
