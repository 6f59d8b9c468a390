//! `entra-token setup git`: `credential.<url>.helper` entries that make git ask us for
//! the URLs our profiles claim, and only those. The list of helpers for each URL is reset
//! first, so a storing helper (`store`, `cache`, a keychain) never keeps our short-lived
//! tokens, and `useHttpPath` is on so a path-scoped profile can match.

use super::ApplyArg;
use super::claims::{self, Tool};
use crate::error::{Error, Result};
use crate::log::warn;
use clap::Args;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

#[derive(Debug, Args)]
pub(crate) struct GitSetupArgs {
    /// URL prefix to configure (repeatable); default: the profiles' `urls` meant for git (not registries, not Azure Artifacts feeds).
    #[arg(long, value_name = "URL")]
    pub url: Vec<String>,
    #[command(flatten)]
    pub apply: ApplyArg,
}

/// The `git config` settings, in order, as (key, value, how): `how` is the git config
/// option that sets it (`--replace-all`, `--add` or a plain set).
pub(crate) fn settings(urls: &[String], helper: &str) -> Vec<(String, String, &'static str)> {
    let mut out = Vec::new();
    for url in urls {
        let base = url.trim_end_matches('/');
        out.push((format!("credential.{base}.helper"), String::new(), "--replace-all"));
        out.push((format!("credential.{base}.helper"), helper.to_string(), "--add"));
        out.push((format!("credential.{base}.useHttpPath"), "true".to_string(), ""));
    }
    out
}

/// The helper value: our absolute path (git runs it through the shell with ` get` etc. appended).
pub(crate) fn helper_value() -> Result<String> {
    Ok(format!("{} git", super::shell_quote(&super::self_exe()?.to_string_lossy())))
}

/// The URLs to configure: the flags, else every profile's `urls` meant for git (not a
/// Docker registry, not an Azure Artifacts feed).
fn urls(args: &GitSetupArgs) -> Result<Vec<String>> {
    let claimed = claims::for_tool(Tool::Git)?;
    if args.url.is_empty() {
        if claimed.is_empty() {
            return Err(Error::bad_input_hint(
                "no profile claims a git URL (`urls` with https://…), so git would never get a token",
                "add e.g. urls = [\"https://dev.azure.com/contoso/\"] to a profile, or pass --url",
            ));
        }
        claims::warn_without_resource(&claimed);
        let mut urls: Vec<String> = claimed.iter().map(claims::Claim::https_url).collect();
        urls.dedup();
        return Ok(urls);
    }
    let all = claims::all()?;
    for u in &args.url {
        if crate::urlmatch::parse(u).is_none() || !u.starts_with("https://") {
            return Err(Error::bad_input_hint(format!("--url '{u}' is not an https URL entra-token can match"), "use https://host[:port]/path"));
        }
        if !all.iter().any(|c| crate::urlmatch::matches(&c.url, u)) {
            warn!("no profile's urls claim {u}; entra-token will answer nothing there until one does");
        }
    }
    claims::warn_without_resource(&all.into_iter().filter(|c| args.url.iter().any(|u| crate::urlmatch::matches(&c.url, u))).collect::<Vec<_>>());
    Ok(args.url.clone())
}

/// The file `git config --global` writes: GIT_CONFIG_GLOBAL, else ~/.gitconfig, else the
/// XDG one when only that exists.
pub(crate) fn global_file() -> Result<PathBuf> {
    if let Some(p) = crate::env::path(crate::env::GIT_CONFIG_GLOBAL) {
        return Ok(p);
    }
    let home = dirs::home_dir().ok_or_else(|| Error::general("HOME is not set; cannot find the global git config"))?;
    let dot = home.join(".gitconfig");
    let xdg = crate::env::path(crate::env::XDG_CONFIG_HOME).unwrap_or_else(|| home.join(".config")).join("git").join("config");
    Ok(if !dot.exists() && xdg.exists() { xdg } else { dot })
}

pub(crate) fn run(args: &GitSetupArgs) -> Result<ExitCode> {
    let urls = urls(args)?;
    let helper = helper_value()?;
    let settings = settings(&urls, &helper);
    if !args.apply.apply {
        let mut text = String::from("# git: entra-token answers for these URLs only; other helpers are reset there so none stores our tokens\n");
        for (key, value, how) in &settings {
            let how = if how.is_empty() { String::new() } else { format!("{how} ") };
            text.push_str(&format!("git config --global {how}{} {}\n", super::shell_quote(key), super::shell_quote(value)));
        }
        text.push_str("# run `entra-token setup git --apply` to write these (a 0600 backup of the file is kept)\n");
        return super::print(&text);
    }
    // git writes through a link; only the user's own is followed (`fs::config_target`).
    let file = crate::fs::config_target(&global_file()?).map_err(Error::failed)?;
    super::backup(&file)?;
    for (key, value, how) in &settings {
        let mut c = Command::new("git");
        c.arg("config").arg("--file").arg(&file);
        if !how.is_empty() {
            c.arg(how);
        }
        let out = c.arg(key).arg(value).output().map_err(|e| Error::caused("cannot run git", e))?;
        if !out.status.success() {
            return Err(Error::general(format!("git config {key} failed: {}", String::from_utf8_lossy(&out.stderr).trim())));
        }
    }
    warn!("configured git in {} for {}", file.display(), urls.join(", "));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resets_then_adds_the_helper_per_url() {
        let s = settings(&["https://dev.azure.com/contoso/".into()], "/bin/entra-token git");
        assert_eq!(
            s,
            vec![
                ("credential.https://dev.azure.com/contoso.helper".into(), "".into(), "--replace-all"),
                ("credential.https://dev.azure.com/contoso.helper".into(), "/bin/entra-token git".into(), "--add"),
                ("credential.https://dev.azure.com/contoso.useHttpPath".into(), "true".into(), ""),
            ]
        );
    }
}
