//! `entra-token setup TOOL`: print the configuration a tool needs in order to call us, and
//! with `--apply` write it, keeping a private (0600) backup of every file it replaces.
//! One file per tool (`kubectl.rs`, `git.rs`, …); this module holds what they share:
//! the path of our own binary, backups, atomic writes and shell quoting.

pub(crate) mod az;
pub(crate) mod azd;
pub(crate) mod bazel;
pub(crate) mod cargo;
pub(crate) mod claims;
pub(crate) mod docker;
pub(crate) mod git;
pub(crate) mod kubectl;
pub(crate) mod kubelogin;
pub(crate) mod links;
pub(crate) mod maven;
pub(crate) mod npm;
pub(crate) mod nuget;
pub(crate) mod python;

use crate::error::{Error, Result};
use crate::log::warn;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub(crate) struct SetupArgs {
    #[command(subcommand)]
    pub target: SetupTarget,
}

/// One variant per tool; each args struct lives in that tool's file.
#[derive(Debug, Subcommand)]
pub(crate) enum SetupTarget {
    /// A kubeconfig user that runs `entra-token kubectl` (or convert kubelogin users).
    Kubectl(kubectl::KubectlSetupArgs),
    /// git credential helper entries for the URLs your profiles claim.
    Git(git::GitSetupArgs),
    /// entra-token as cargo's credential provider (~/.cargo/config.toml).
    Cargo(cargo::CargoSetupArgs),
    /// Create the multi-call links (git-credential-entra-token, az, azd, …) in a directory.
    Links(links::LinksArgs),
    /// The `az` link Azure SDKs' AzureCliCredential finds on PATH.
    Az(az::PathLinkArgs),
    /// The `azd` link azure-identity's AzureDeveloperCliCredential finds on PATH.
    Azd(az::PathLinkArgs),
    /// The `entra-token-bazel` link and `--credential_helper` lines in ~/.bazelrc.
    Bazel(bazel::BazelSetupArgs),
    /// The `docker-credential-entra-token` link and `credHelpers` in Docker's config.json.
    Docker(docker::DockerSetupArgs),
    /// The `nuget-plugin-entra-token` link NuGet (dotnet, nuget.exe, MSBuild) runs as a credential plugin.
    Nuget(nuget::NugetSetupArgs),
    /// pip: a `keyring` link (in a directory of its own) and index-url + keyring-provider in pip.conf.
    Pip(python::PySetupArgs),
    /// uv: a `keyring` link (in a directory of its own) and an [[index]] + keyring-provider in uv.toml.
    Uv(python::PySetupArgs),
    /// `_authToken=${VAR}` lines in ~/.npmrc for a feed; `entra-token exec` fills VAR (npm, pnpm, yarn).
    Npm(npm::NpmSetupArgs),
    /// A `<server>` in ~/.m2/settings.xml whose password is `${env.VAR}`; `entra-token exec` fills VAR.
    Maven(maven::MavenSetupArgs),
}

pub(crate) fn run(args: &SetupArgs) -> Result<ExitCode> {
    match &args.target {
        SetupTarget::Kubectl(a) => kubectl::run(a),
        SetupTarget::Git(a) => git::run(a),
        SetupTarget::Cargo(a) => cargo::run(a),
        SetupTarget::Links(a) => links::run(a),
        SetupTarget::Az(a) => az::run(a),
        SetupTarget::Azd(a) => azd::run(a),
        SetupTarget::Bazel(a) => bazel::run(a),
        SetupTarget::Docker(a) => docker::run(a),
        SetupTarget::Nuget(a) => nuget::run(a),
        SetupTarget::Pip(a) => python::run(a, python::Client::Pip),
        SetupTarget::Uv(a) => python::run(a, python::Client::Uv),
        SetupTarget::Npm(a) => npm::run(a),
        SetupTarget::Maven(a) => maven::run(a),
    }
}

/// The flag every target shares: print only, or write.
#[derive(Debug, Clone, Args)]
pub(crate) struct ApplyArg {
    /// Write the configuration (after a 0600 backup of any file it changes) instead of printing it.
    #[arg(long)]
    pub apply: bool,
}

/// The absolute path of the running binary, for configs that must call it back.
pub(crate) fn self_exe() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| Error::caused("cannot find the path of entra-token itself", e))?;
    Ok(std::fs::canonicalize(&exe).unwrap_or(exe))
}

/// A config file's text; empty when there is none yet (setup then writes it whole).
pub(crate) fn read_or_empty(path: &Path) -> Result<String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(Error::caused(format!("cannot read {}", path.display()), e)),
    }
}

/// Copies `path` to `PATH.entra-token-backup-UNIXTIME` with mode 0600. None: nothing to back up.
pub(crate) fn backup(path: &Path) -> Result<Option<PathBuf>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::caused(format!("cannot read {} to back it up", path.display()), e)),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "config".into());
    let mut stamp = crate::clock::now();
    let mut dest = path.with_file_name(format!("{name}.entra-token-backup-{stamp}"));
    while dest.exists() {
        stamp += 1;
        dest = path.with_file_name(format!("{name}.entra-token-backup-{stamp}"));
    }
    crate::fs::write_atomic(&dest, &bytes, crate::fs::Access::Private, crate::fs::Durability::Sync).map_err(|e| Error::caused(format!("cannot back up {}", path.display()), e))?;
    warn!("backed up {} to {}", path.display(), dest.display());
    Ok(Some(dest))
}

/// Backs up `path`, then replaces it atomically (0600). A symlinked config (dotfile
/// managers) is written through to its target instead of being replaced by a file, when
/// the link is the user's in a directory only they can change; a missing directory is
/// made private (`fs::config_target`: never create_dir_all, never through a planted link).
pub(crate) fn write_with_backup(path: &Path, bytes: &[u8]) -> Result<Option<PathBuf>> {
    let target = crate::fs::config_target(path).map_err(Error::failed)?;
    let saved = backup(&target)?;
    crate::fs::write_atomic(&target, bytes, crate::fs::Access::Private, crate::fs::Durability::Sync).map_err(Error::failed)?;
    warn!("wrote {}", target.display());
    Ok(saved)
}

/// Quotes a word for a POSIX shell when it needs it.
pub(crate) fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r#"'\''"#))
    }
}

/// Prints the configuration text on stdout.
pub(crate) fn print(text: &str) -> Result<ExitCode> {
    crate::protocols::write_stdout(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(shell_quote("/usr/bin/entra-token"), "/usr/bin/entra-token");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r#"'it'\''s'"#);
        assert_eq!(shell_quote(""), "''");
    }

    #[cfg_attr(windows, ignore = "a symlink needs a privilege on Windows; the copy stand-in is not a link to write through")]
    #[test]
    fn backup_is_private_and_write_goes_through_symlinks() {
        let dir = std::env::temp_dir().join(format!("et-setup-{}-{}", std::process::id(), crate::clock::now()));
        std::fs::create_dir_all(&dir).unwrap();
        let real = dir.join("real.toml");
        std::fs::write(&real, "old\n").unwrap();
        let link = dir.join("link.toml");
        #[cfg(unix)]
        std::os::unix::fs::symlink(&real, &link).unwrap();
        #[cfg(not(unix))]
        std::fs::copy(&real, &link).unwrap();
        let saved = write_with_backup(&link, b"new\n").unwrap().unwrap();
        assert_eq!(std::fs::read_to_string(&saved).unwrap(), "old\n");
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
            assert_eq!(std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert!(backup(&dir.join("missing")).unwrap().is_none());
        let _ = std::fs::remove_dir_all(dir);
    }
}
