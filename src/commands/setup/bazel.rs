//! `entra-token setup bazel`: Bazel (7+) runs `<helper> get` for hosts named in
//! `--credential_helper=HOST=PATH`, so the setup is the `entra-token-bazel` link plus one
//! `.bazelrc` line per host the profiles' `urls` claim (or per `--pattern`).

use super::ApplyArg;
use super::az::default_bin_dir;
use super::links;
use super::claims::{self, Claim, Tool};
use crate::error::{Error, Result};
use crate::log::warn;
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const LINK: &str = "entra-token-bazel";

#[derive(Debug, Args)]
pub(crate) struct BazelSetupArgs {
    /// Host patterns to use the helper for (e.g. `*.example.com`); default: the hosts in the profiles' `urls` that are not registries or Azure DevOps.
    #[arg(long)]
    pub pattern: Vec<String>,
    /// The rc file to extend (default ~/.bazelrc).
    #[arg(long)]
    pub bazelrc: Option<PathBuf>,
    /// Directory for the `entra-token-bazel` link (default ~/.local/bin; %LOCALAPPDATA%\entra-token\bin on Windows).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Move an existing file named entra-token-bazel in DIR aside instead of stopping.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub apply: ApplyArg,
}

/// The hosts of the claims meant for Bazel, sorted and de-duplicated.
pub(crate) fn claimed_hosts(claims: &[Claim]) -> Vec<String> {
    let mut hosts: Vec<String> = claims.iter().map(|c| c.parts.host.clone()).collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

/// One `common --credential_helper=PATTERN=HELPER` line per pattern.
pub(crate) fn rc_lines(patterns: &[String], helper: &Path) -> Vec<String> {
    patterns.iter().map(|p| format!("common --credential_helper={p}={}", helper.display())).collect()
}

/// `existing` with the missing `lines` appended (under a comment), or None when all are there.
pub(crate) fn extend_rc(existing: &str, lines: &[String]) -> Option<String> {
    let missing: Vec<&String> = lines.iter().filter(|l| !existing.lines().any(|e| e.trim() == l.as_str())).collect();
    if missing.is_empty() {
        return None;
    }
    let mut out = existing.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("# Entra ID tokens for these hosts (entra-token setup bazel)\n");
    for l in missing {
        out.push_str(l);
        out.push('\n');
    }
    Some(out)
}

fn check_pattern(p: &str) -> Result<()> {
    let host = p.strip_prefix("*.").unwrap_or(p);
    if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
        return Err(Error::bad_input_hint(format!("'{p}' is not a host pattern"), "use a host like cache.example.com or *.example.com"));
    }
    Ok(())
}

pub(crate) fn run(args: &BazelSetupArgs) -> Result<ExitCode> {
    let claimed = claims::for_tool(Tool::Bazel)?;
    let patterns = if args.pattern.is_empty() { claimed_hosts(&claimed) } else { args.pattern.clone() };
    if patterns.is_empty() {
        return Err(Error::bad_input_hint(
            "no profile claims a URL for Bazel (Docker registries and Azure DevOps are not), so there is no host to use the Bazel helper for",
            "add urls = [\"https://cache.example.com/\"] to a profile, or pass --pattern",
        ));
    }
    for p in &patterns {
        check_pattern(p)?;
    }
    if args.pattern.is_empty() {
        claims::warn_without_resource(&claimed);
    }
    let dir = args.dir.clone().map_or_else(default_bin_dir, Ok)?;
    // The file `--apply` makes (`entra-token-bazel.exe` on Windows): the line names it.
    let helper = dir.join(links::file_name(LINK));
    let rc = match &args.bazelrc {
        Some(p) => p.clone(),
        None => dirs::home_dir().map(|h| h.join(".bazelrc")).ok_or_else(|| Error::bad_input_hint("HOME is not set", "pass --bazelrc"))?,
    };
    let lines = rc_lines(&patterns, &helper);
    if !args.apply.apply {
        let exe = super::self_exe()?;
        let mut text = format!(
            "# the helper Bazel runs (`{LINK} get`):\n{}\n# in {}:\n",
            links::link_command(&exe, &helper),
            rc.display()
        );
        for l in &lines {
            text.push_str(l);
            text.push('\n');
        }
        return super::print(&text);
    }
    links::make(dir, LINK, args.force)?;
    let existing = super::read_or_empty(&rc)?;
    match extend_rc(&existing, &lines) {
        Some(text) => {
            super::write_with_backup(&rc, text.as_bytes())?;
        }
        None => warn!("{} already has the credential helper lines", rc.display()),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_appended_once() {
        let lines = rc_lines(&["cache.example.com".into(), "*.example.org".into()], Path::new("/h/.local/bin/entra-token-bazel"));
        assert_eq!(lines[0], "common --credential_helper=cache.example.com=/h/.local/bin/entra-token-bazel");
        let once = extend_rc("build --jobs=4", &lines).unwrap();
        assert!(once.starts_with("build --jobs=4\n# Entra ID"), "{once}");
        assert_eq!(extend_rc(&once, &lines), None);
        let partial = extend_rc(&format!("{}\n", lines[0]), &lines).unwrap();
        assert_eq!(partial.matches("cache.example.com").count(), 1);
        assert!(partial.contains("*.example.org"));
    }

    #[test]
    fn hosts_come_from_urls_and_patterns_are_checked() {
        let f = crate::config::parse_file("[profiles.a]\nflow=\"device-code\"\nurls=[\"https://cache.example.com/x\", \"https://cache.example.com:8443/\"]\n[profiles.b]\nflow=\"device-code\"\nurls=[\"https://b.example.org/\"]\n").unwrap();
        assert_eq!(claimed_hosts(&claims::all_in(&f)), vec!["b.example.org", "cache.example.com"]);
        assert!(check_pattern("*.example.com").is_ok());
        assert!(check_pattern("a b").is_err());
        assert!(check_pattern("x=/bin/sh").is_err());
    }
}
