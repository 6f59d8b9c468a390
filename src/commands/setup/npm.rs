//! `entra-token setup npm`: npm (and pnpm, yarn) have no credential-helper protocol, but npm
//! expands `${VAR}` in .npmrc. So the user-level .npmrc gets `_authToken=${VAR}` for the
//! feed, and `entra-token exec` puts a fresh token in VAR for the one command that needs it:
//! no token is ever written into a file npm keeps.

use super::ApplyArg;
use crate::error::{Error, Result};
use crate::urlmatch::{self, UrlParts};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub(crate) struct NpmSetupArgs {
    /// The feed's npm registry URL (repeatable), e.g. https://pkgs.dev.azure.com/ORG/_packaging/FEED/npm/registry/; a profile's `urls` must claim it.
    #[arg(long, required = true)]
    pub registry: Vec<String>,
    /// The variable `entra-token exec` fills and .npmrc names (default ENTRA_ACCESS_TOKEN, exec's own default).
    #[arg(long, default_value = crate::commands::exec::DEFAULT_VARIABLE)]
    pub env: String,
    /// The .npmrc to change (default ~/.npmrc, npm's user-level file).
    #[arg(long)]
    pub npmrc: Option<PathBuf>,
    #[command(flatten)]
    pub apply: ApplyArg,
}

/// A registry a profile claims, with that profile's name.
pub(crate) struct Feed {
    pub profile: String,
    pub parts: UrlParts,
}

/// The registries, each claimed by a profile (the token `exec` gets is that profile's).
pub(crate) fn claimed(urls: &[String]) -> Result<Vec<Feed>> {
    urls.iter()
        .map(|u| {
            let parts = urlmatch::parse(u).filter(|_| u.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://"))).ok_or_else(|| Error::bad_input(format!("'{}' is not an https URL", crate::log::escape(u))))?;
            let profile = urlmatch::profile_for(&parts)?.ok_or_else(|| {
                Error::bad_input_hint(format!("no profile claims {u}, and entra-token sends a token only where a profile's `urls` says"), "add the feed's URL (or its organisation's) to a profile's urls")
            })?;
            Ok(Feed { profile, parts })
        })
        .collect()
}

/// The `//host[:port]/path/` keys npm matches credentials by: the registry, and for Azure
/// Artifacts' `…/npm/registry/` also `…/npm/`, as Azure Artifacts' own .npmrc lines do.
pub(crate) fn npm_keys(parts: &UrlParts) -> Vec<String> {
    let host = if parts.port == 443 { parts.host.clone() } else { format!("{}:{}", parts.host, parts.port) };
    let path: String = parts.segments.iter().map(|s| format!("{s}/")).collect();
    let mut keys = vec![format!("//{host}/{path}")];
    if let Some(base) = path.strip_suffix("registry/").filter(|b| b.ends_with("/npm/") || *b == "npm/") {
        keys.push(format!("//{host}/{base}"));
    }
    keys
}

/// `npmrc` (its text, possibly empty) with `KEY:_authToken=${VAR}` for each key, replacing
/// any `_authToken` line already there for that key; every other line is kept.
pub(crate) fn merge(npmrc: &str, keys: &[String], var: &str) -> String {
    let ours = |line: &str| keys.iter().any(|k| line.trim_start().starts_with(&format!("{k}:_authToken")));
    let mut out: Vec<String> = npmrc.lines().filter(|l| !ours(l)).map(str::to_string).collect();
    while out.last().is_some_and(|l| l.trim().is_empty()) {
        out.pop();
    }
    out.extend(keys.iter().map(|k| format!("{k}:_authToken=${{{var}}}")));
    format!("{}\n", out.join("\n"))
}

fn valid_var(v: &str) -> bool {
    !v.is_empty() && !v.starts_with(|c: char| c.is_ascii_digit()) && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn npmrc_path(args: &NpmSetupArgs) -> Result<PathBuf> {
    match &args.npmrc {
        Some(p) => Ok(p.clone()),
        None => dirs::home_dir().map(|h| h.join(".npmrc")).ok_or_else(|| Error::bad_input_hint("HOME is not set", "pass --npmrc")),
    }
}

pub(crate) fn run(args: &NpmSetupArgs) -> Result<ExitCode> {
    if !valid_var(&args.env) {
        return Err(Error::bad_input(format!("--env '{}' is not a variable name (letters, digits, _)", crate::log::escape(&args.env))));
    }
    let feeds = claimed(&args.registry)?;
    let keys: Vec<String> = feeds.iter().flat_map(|f| npm_keys(&f.parts)).collect();
    let path = npmrc_path(args)?;
    let run_lines: Vec<String> = feeds.iter().map(|f| f.profile.clone()).collect::<std::collections::BTreeSet<_>>().into_iter().map(|p| exec_line(&p, &args.env, "npm install")).collect();
    if args.apply.apply {
        let existing = super::read_or_empty(&path)?;
        for k in &keys {
            if existing.lines().any(|l| l.trim_start().starts_with(&format!("{k}:_password"))) {
                crate::log::warn!("{} also has a `{k}:_password` (a PAT?); npm uses the _authToken line, remove the old one when you no longer need it", path.display());
            }
        }
        super::write_with_backup(&path, merge(&existing, &keys, &args.env).as_bytes())?;
        crate::log::warn!("now run npm, pnpm or yarn through exec: {}", run_lines.join("; "));
        return Ok(ExitCode::SUCCESS);
    }
    let lines: Vec<String> = keys.iter().map(|k| format!("{k}:_authToken=${{{}}}", args.env)).collect();
    super::print(&format!(
        "# lines for {} (npm expands ${{{var}}}; no token is written):\n{}\n# then run npm, pnpm or yarn through exec, which puts a fresh token in {var}:\n# {}\n",
        path.display(),
        lines.join("\n"),
        run_lines.join("\n# "),
        var = args.env
    ))
}

/// The `entra-token exec` line that runs `cmd` with the profile's token in `var`.
pub(crate) fn exec_line(profile: &str, var: &str, cmd: &str) -> String {
    let env = if var == crate::commands::exec::DEFAULT_VARIABLE { String::new() } else { format!(" --env {var}") };
    format!("entra-token exec -p {} -r devops{env} -- {cmd}", super::shell_quote(profile))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_azure_artifacts_lines() {
        let p = urlmatch::parse("https://pkgs.dev.azure.com/contoso/_packaging/feed/npm/registry/").unwrap();
        assert_eq!(npm_keys(&p), ["//pkgs.dev.azure.com/contoso/_packaging/feed/npm/registry/", "//pkgs.dev.azure.com/contoso/_packaging/feed/npm/"]);
        let p = urlmatch::parse("https://127.0.0.1:8443/reg").unwrap();
        assert_eq!(npm_keys(&p), ["//127.0.0.1:8443/reg/"]);
    }

    #[test]
    fn merge_replaces_only_our_keys_and_is_idempotent() {
        let keys = vec!["//h/npm/registry/".to_string()];
        let before = "registry=https://h/npm/registry/\n//h/npm/registry/:_authToken=OLDPAT\n//other/:_authToken=keep\n";
        let after = merge(before, &keys, "ENTRA_ACCESS_TOKEN");
        assert_eq!(after, "registry=https://h/npm/registry/\n//other/:_authToken=keep\n//h/npm/registry/:_authToken=${ENTRA_ACCESS_TOKEN}\n");
        assert_eq!(merge(&after, &keys, "ENTRA_ACCESS_TOKEN"), after);
        assert_eq!(merge("", &keys, "T"), "//h/npm/registry/:_authToken=${T}\n");
    }

    #[test]
    fn variable_names() {
        assert!(valid_var("NPM_TOKEN") && valid_var("_x1"));
        assert!(!valid_var("1X") && !valid_var("A-B") && !valid_var("") && !valid_var("A}B"));
    }
}
