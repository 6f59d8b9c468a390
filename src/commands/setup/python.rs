//! `entra-token setup pip|uv --index-url FEED`: pip and uv ask a `keyring` command for an
//! index's password (`--keyring-provider subprocess`, see `protocols::keyring`), so the
//! setup is a `keyring` link in a directory of its own (never ~/.local/bin: it would
//! shadow a real keyring CLI for every program) plus the user's pip.conf (`[global]`
//! index-url and keyring-provider) or uv.toml (an `[[index]]` whose URL carries the
//! username uv needs to ask, and `keyring-provider`). The directory goes on PATH only
//! where the person wants it; the output says how the two keyrings coexist.

use super::ApplyArg;
use super::links;
use crate::error::{Error, Result};
use crate::log::warn;
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The username uv sends with the feed's URL (so it asks the keyring for the password).
const UV_USERNAME: &str = crate::protocols::keyring::USERNAME;

#[derive(Debug, Args)]
pub(crate) struct PySetupArgs {
    /// The feed's simple index, e.g. https://pkgs.dev.azure.com/ORG/_packaging/FEED/pypi/simple/ (a profile must claim it).
    #[arg(long, value_name = "URL")]
    pub index_url: String,
    /// Keep PyPI as the default index and add the feed beside it (pip: extra-index-url; uv: a non-default [[index]]).
    #[arg(long)]
    pub extra: bool,
    /// The config file to extend (default: the user's pip.conf / uv.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory for the `keyring` link (default: ~/.local/share/entra-token/keyring-bin; not ~/.local/bin, so a real keyring is not shadowed).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Move an existing file named keyring in DIR aside instead of stopping.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub apply: ApplyArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Client {
    Pip,
    Uv,
}

/// The feed URL without any userinfo, checked: https, and claimed by a profile.
fn feed_url(raw: &str) -> Result<String> {
    let bad = || Error::bad_input_hint(format!("--index-url {:?} is not an https URL", crate::log::escape(raw)), "give the feed's simple index, e.g. https://pkgs.dev.azure.com/ORG/_packaging/FEED/pypi/simple/");
    let (scheme, rest) = raw.trim().split_once("://").ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("https") {
        return Err(bad());
    }
    // A username (or a PAT) someone left in the URL is not ours to keep.
    let end = rest.find('/').unwrap_or(rest.len());
    let rest = match rest[..end].rfind('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    let url = format!("https://{}", rest);
    let parts = crate::urlmatch::parse(&url).ok_or_else(bad)?;
    let Some(profile) = crate::urlmatch::profile_for(&parts)? else {
        return Err(Error::bad_input_hint(
            format!("no profile claims {parts}, so the keyring would answer nothing for it"),
            "add the feed's organisation to a profile: entra-token profile add feed --url https://pkgs.dev.azure.com/ORG/ …",
        ));
    };
    let p = crate::config::resolve(Some(&profile))?;
    let names_resource = p.settings.resource.is_some() || p.settings.scopes.as_ref().is_some_and(|s| !s.is_empty());
    if !names_resource && crate::protocols::default_resource_for(&parts).is_none() {
        warn!("profile '{profile}' claims {parts} but names no `resource`, so no token will be sent there; add resource = \"…\" to the profile");
    }
    Ok(url)
}

/// `https://USER@host/…` for uv.
fn with_username(url: &str) -> String {
    url.replacen("https://", &format!("https://{UV_USERNAME}@"), 1)
}

/// pip.conf with `[global]` keyring-provider and index-url (or extra-index-url, added to
/// any there) set; the rest of the file as it was. pip's config is configparser INI:
/// keys are case-insensitive and `_` is `-`; indented lines continue a value.
pub(crate) fn edit_pip_conf(existing: &str, url: &str, extra: bool) -> String {
    let key_of = |line: &str| -> Option<String> {
        if line.starts_with([' ', '\t', '#', ';', '[']) {
            return None;
        }
        let (k, _) = line.split_once(['=', ':'])?;
        Some(k.trim().to_ascii_lowercase().replace('_', "-"))
    };
    let index_key = if extra { "extra-index-url" } else { "index-url" };
    let mut out: Vec<String> = Vec::new();
    let (mut in_global, mut seen_global, mut skipping) = (false, false, false);
    let (mut set_index, mut set_provider) = (false, false);
    let finish_global = |out: &mut Vec<String>, set_index: bool, set_provider: bool| {
        if !set_index {
            out.push(format!("{index_key} = {url}"));
        }
        if !set_provider {
            out.push("keyring-provider = subprocess".into());
        }
    };
    for line in existing.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            if in_global {
                finish_global(&mut out, set_index, set_provider);
                (set_index, set_provider) = (true, true);
            }
            in_global = trimmed == "[global]";
            seen_global |= in_global;
            skipping = false;
            out.push(line.to_string());
            continue;
        }
        if skipping && (line.starts_with([' ', '\t']) && !trimmed.is_empty()) {
            if extra {
                out.push(line.to_string());
            }
            continue;
        }
        skipping = false;
        if in_global && let Some(key) = key_of(line) {
            if key == index_key {
                skipping = true;
                set_index = true;
                if extra {
                    // Keep the extra indexes there are; ours is one more line of the value.
                    out.push(line.to_string());
                    if !line.contains(url) && !existing.contains(&format!(" {url}")) {
                        out.push(format!("    {url}"));
                    }
                } else {
                    out.push(format!("{index_key} = {url}"));
                }
                continue;
            }
            if key == "keyring-provider" {
                set_provider = true;
                out.push("keyring-provider = subprocess".into());
                continue;
            }
        }
        out.push(line.to_string());
    }
    if in_global {
        finish_global(&mut out, set_index, set_provider);
    } else if !seen_global {
        if out.last().is_some_and(|l| !l.trim().is_empty()) {
            out.push(String::new());
        }
        out.push("[global]".into());
        finish_global(&mut out, false, false);
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// uv.toml with `keyring-provider = "subprocess"` and an `[[index]]` named `name` for the
/// feed (replaced when one of that name is there); comments and order kept.
pub(crate) fn edit_uv_toml(existing: &str, name: &str, url: &str, extra: bool) -> Result<String> {
    let mut doc: toml_edit::DocumentMut = existing.parse().map_err(|e| Error::bad_input_hint("the uv.toml is not valid TOML", "fix it, or pass --config").because(e))?;
    doc["keyring-provider"] = toml_edit::value("subprocess");
    let mut table = toml_edit::Table::new();
    table["name"] = toml_edit::value(name);
    table["url"] = toml_edit::value(with_username(url));
    if !extra {
        table["default"] = toml_edit::value(true);
    }
    let indexes = doc.entry("index").or_insert_with(|| toml_edit::Item::ArrayOfTables(toml_edit::ArrayOfTables::new()));
    let Some(indexes) = indexes.as_array_of_tables_mut() else {
        return Err(Error::bad_input("`index` in the uv.toml is not an array of tables ([[index]])"));
    };
    let found = indexes.iter().position(|t| t.get("name").and_then(|n| n.as_str()).is_some_and(|n| n == name));
    match found {
        Some(i) => {
            if let Some(t) = indexes.get_mut(i) {
                *t = table;
            }
        }
        None => indexes.push(table),
    }
    Ok(doc.to_string())
}

fn default_config(client: Client) -> Result<PathBuf> {
    let missing = || Error::bad_input_hint("no user configuration directory (HOME is not set)", "pass --config");
    let base = match (client, cfg!(windows)) {
        (_, true) => crate::env::path(crate::env::APPDATA).ok_or_else(missing)?,
        // uv reads ~/.config (XDG) on macOS too; pip its platform's config directory.
        (Client::Uv, false) => crate::env::path(crate::env::XDG_CONFIG_HOME).or_else(|| dirs::home_dir().map(|h| h.join(".config"))).ok_or_else(missing)?,
        (Client::Pip, false) => crate::fs::config_home().ok_or_else(missing)?,
    };
    Ok(match client {
        Client::Pip => base.join("pip").join(if cfg!(windows) { "pip.ini" } else { "pip.conf" }),
        Client::Uv => base.join("uv").join("uv.toml"),
    })
}

fn default_dir() -> Result<PathBuf> {
    let base = if cfg!(windows) { dirs::data_local_dir() } else { dirs::data_dir() };
    base.map(|d| d.join("entra-token").join("keyring-bin")).ok_or_else(|| Error::bad_input_hint("no data directory (HOME is not set)", "pass --dir"))
}

/// What to tell a person about PATH and a real keyring, as comment lines.
fn coexistence(dir: &Path, client: Client) -> String {
    let tool = if client == Client::Pip { "pip" } else { "uv" };
    format!(
        "# {tool} finds `keyring` on PATH: put {d} first on it, for {tool} alone if you also use a real keyring CLI:\n\
         #   alias {tool}='PATH=\"{d}:$PATH\" {tool}'\n\
         # entra-token's keyring answers only URLs your profiles claim (exit 1 for all else) and stores nothing;\n\
         # a real keyring later on PATH is not consulted while this one comes first (docs/feeds.md).\n",
        d = dir.display()
    )
}

pub(crate) fn run(args: &PySetupArgs, client: Client) -> Result<ExitCode> {
    let url = feed_url(&args.index_url)?;
    let config = match &args.config {
        Some(p) => p.clone(),
        None => default_config(client)?,
    };
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => default_dir()?,
    };
    let existing = super::read_or_empty(&config)?;
    let text = match client {
        Client::Pip => edit_pip_conf(&existing, &url, args.extra),
        Client::Uv => edit_uv_toml(&existing, "entra-feed", &url, args.extra)?,
    };
    let link = dir.join(links::file_name("keyring"));
    if !args.apply.apply {
        let exe = super::self_exe()?;
        let mkdir = if cfg!(windows) { format!("New-Item -ItemType Directory -Force -Path '{}' | Out-Null", links::ps_quote(&dir.to_string_lossy())) } else { format!("mkdir -p {}", super::shell_quote(&dir.to_string_lossy())) };
        return super::print(&format!("# the `keyring` {} runs:\n{mkdir}\n{}\n{}# {} would become:\n{text}", if client == Client::Pip { "pip" } else { "uv" }, links::link_command(&exe, &link), coexistence(&dir, client), config.display()));
    }
    links::own_dir(&dir)?;
    links::create(&super::self_exe()?, &link, args.force)?;
    if text == existing {
        warn!("{} already has the feed and keyring-provider", config.display());
    } else {
        super::write_with_backup(&config, text.as_bytes())?;
    }
    for line in coexistence(&dir, client).lines() {
        warn!("{}", line.trim_start_matches("# "));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FEED: &str = "https://pkgs.dev.azure.com/contoso/_packaging/f/pypi/simple/";

    #[test]
    fn pip_conf_gains_the_feed_and_keeps_the_rest() {
        assert_eq!(edit_pip_conf("", FEED, false), format!("[global]\nindex-url = {FEED}\nkeyring-provider = subprocess\n"));
        let before = "# mine\n[global]\ntimeout = 60\nindex_url = https://old/simple/\n    continued\nkeyring-provider=import\n[install]\nuser = true\n";
        let after = edit_pip_conf(before, FEED, false);
        assert_eq!(after, format!("# mine\n[global]\ntimeout = 60\nindex-url = {FEED}\nkeyring-provider = subprocess\n[install]\nuser = true\n"));
        assert_eq!(edit_pip_conf(&after, FEED, false), after, "idempotent");
        let extra = edit_pip_conf("[global]\nextra-index-url = https://a/simple/\n[x]\n", FEED, true);
        assert_eq!(extra, format!("[global]\nextra-index-url = https://a/simple/\n    {FEED}\nkeyring-provider = subprocess\n[x]\n"));
        assert_eq!(edit_pip_conf(&extra, FEED, true), extra);
        assert_eq!(edit_pip_conf("[install]\nuser = true\n", FEED, true), format!("[install]\nuser = true\n\n[global]\nextra-index-url = {FEED}\nkeyring-provider = subprocess\n"));
    }

    #[test]
    fn uv_toml_gains_an_index_with_the_username() {
        let t = edit_uv_toml("# mine\nnative-tls = true\n", "entra-feed", FEED, false).unwrap();
        assert!(t.starts_with("# mine\nnative-tls = true\nkeyring-provider = \"subprocess\"\n"), "{t}");
        assert!(t.contains("[[index]]\nname = \"entra-feed\"\nurl = \"https://VssSessionToken@pkgs.dev.azure.com/contoso/_packaging/f/pypi/simple/\"\ndefault = true\n"), "{t}");
        assert_eq!(edit_uv_toml(&t, "entra-feed", FEED, false).unwrap(), t, "idempotent");
        assert!(edit_uv_toml("index = 3\n", "entra-feed", FEED, false).is_err());
        assert!(!edit_uv_toml("", "entra-feed", FEED, true).unwrap().contains("default"));
    }
}
