//! `entra-token profile list|show|add|remove|default`: profiles managed from the command
//! line. Edits go through a format-preserving TOML document, so the user's comments,
//! order and spacing survive; every edit is validated by resolving the result with the
//! same code `get-token` uses before the file is (atomically, mode kept) replaced.
//! Secrets are only ever *named* (an environment variable or a file), never taken in argv
//! and never printed.

use crate::config::{self, Profile, SecretSource};
use crate::error::{Error, Result};
use crate::log::warn;
use clap::{Args, Subcommand, ValueEnum};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use toml_edit::{Array, DocumentMut, Item, Table, value};

#[derive(Debug, Args)]
pub(crate) struct ProfileArgs {
    #[command(subcommand)]
    pub action: ProfileAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProfileAction {
    /// List the profiles in the config file; `*` marks the default.
    List {
        #[arg(short, long, value_enum, default_value_t = Format::Text)]
        output: Format,
    },
    /// Show how a profile resolves and where its secrets come from (never their values).
    Show {
        /// Profile name (default: the one `get-token` would use).
        name: Option<String>,
        #[arg(short, long, value_enum, default_value_t = Format::Text)]
        output: Format,
    },
    /// Add a profile (asks for missing fields at a terminal, takes flags otherwise).
    Add(Box<AddArgs>),
    /// Remove a profile from the config file.
    Remove {
        name: String,
    },
    /// Print the default profile, or set it.
    Default {
        /// The profile to make the default.
        name: Option<String>,
        /// Remove `default_profile` from the config file.
        #[arg(long, conflicts_with = "name")]
        unset: bool,
    },
}

#[derive(Debug, Default, Args)]
pub(crate) struct AddArgs {
    /// Profile name: letters, digits, `-` and `_`.
    pub name: String,
    /// Tenant GUID or domain (default: organizations).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Application (client) id.
    #[arg(long)]
    pub client_id: Option<String>,
    /// auto, client-credentials, workload-identity, managed-identity, device-code, interactive, azure-cli, …
    #[arg(long)]
    pub flow: Option<String>,
    /// NAME of the environment variable holding the client secret (never the secret itself).
    #[arg(long, value_name = "VAR")]
    pub client_secret_env: Option<String>,
    /// File holding the client secret.
    #[arg(long, value_name = "PATH")]
    pub client_secret_file: Option<PathBuf>,
    /// PEM file with the certificate and private key (client-credentials with a certificate).
    #[arg(long, value_name = "PATH")]
    pub certificate_path: Option<PathBuf>,
    /// NAME of the environment variable holding the certificate's password (encrypted key).
    #[arg(long, value_name = "VAR")]
    pub certificate_password_env: Option<String>,
    /// File holding the federated token (workload identity).
    #[arg(long, value_name = "PATH", conflicts_with = "service_connection_id")]
    pub federated_token_file: Option<PathBuf>,
    /// Azure Pipelines service connection whose OIDC token is the federated token (workload identity).
    #[arg(long, value_name = "ID")]
    pub service_connection_id: Option<String>,
    /// Client id of a user-assigned managed identity.
    #[arg(long, conflicts_with_all = ["mi_object_id", "mi_res_id"])]
    pub mi_client_id: Option<String>,
    /// Object (principal) id of a user-assigned managed identity.
    #[arg(long, conflicts_with = "mi_res_id")]
    pub mi_object_id: Option<String>,
    /// Resource id of a user-assigned managed identity.
    #[arg(long)]
    pub mi_res_id: Option<String>,
    /// The account to sign in as (password flow; pre-fills the browser, picks a signed-in person).
    #[arg(long, value_name = "USER")]
    pub username: Option<String>,
    /// NAME of the environment variable holding the password (password flow; never the password itself).
    #[arg(long, value_name = "VAR", conflicts_with = "password_file")]
    pub password_env: Option<String>,
    /// File holding the password (password flow).
    #[arg(long, value_name = "PATH")]
    pub password_file: Option<PathBuf>,
    /// Account to pre-fill at sign-in, and to pick among people signed in elsewhere.
    #[arg(long, value_name = "USER")]
    pub login_hint: Option<String>,
    /// Authority host URL (https, or http on loopback).
    #[arg(long, conflicts_with = "cloud")]
    pub authority: Option<String>,
    /// public, usgov or china.
    #[arg(long)]
    pub cloud: Option<String>,
    /// Default resource: alias, App ID URI or GUID.
    #[arg(long)]
    pub resource: Option<String>,
    /// URL prefix this profile answers for (git, cargo, Bazel, Docker); repeatable.
    #[arg(long = "url", value_name = "URL")]
    pub urls: Vec<String>,
    /// A resource `entra-token serve` may hand out for this profile; repeatable.
    #[arg(long = "serve-resource", value_name = "RESOURCE")]
    pub serve_resources: Vec<String>,
    /// The subscription (id or name) this profile holds: reported by the `az` stand-in,
    /// which also picks this profile for `--subscription` with it.
    #[arg(long, value_name = "ID")]
    pub subscription: Option<String>,
    /// Where refresh tokens are kept: auto (OS secret store when one answers), keyring or file.
    #[arg(long, value_parser = ["auto", "keyring", "file"])]
    pub storage: Option<String>,
    /// Change an existing profile: set the given keys, keep the others.
    #[arg(long)]
    pub update: bool,
    /// Also make it the default profile.
    #[arg(long = "default")]
    pub make_default: bool,
    /// Never ask; fail if a required field is missing.
    #[arg(long)]
    pub no_prompt: bool,
    /// Refused: secrets are never taken on the command line.
    #[arg(long, hide = true, value_name = "SECRET")]
    pub client_secret: Option<String>,
    /// Refused: secrets are never taken on the command line.
    #[arg(long, hide = true, value_name = "SECRET")]
    pub password: Option<String>,
}

pub(crate) fn run(args: &ProfileArgs) -> Result<ExitCode> {
    match &args.action {
        ProfileAction::List { output } => list(*output),
        ProfileAction::Show { name, output } => show(name.as_deref(), *output),
        ProfileAction::Add(a) => add(a),
        ProfileAction::Remove { name } => remove(name),
        ProfileAction::Default { name, unset } => default(name.as_deref(), *unset),
    }
}

fn path_or_err() -> Result<PathBuf> {
    config::config_path().ok_or_else(|| Error::bad_input_hint("no config file location: HOME is not set", "set ENTRA_TOKEN_CONFIG to the config file's path"))
}

fn out(text: &str) -> Result<ExitCode> {
    crate::protocols::write_stdout(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------- list / show

fn list(format: Format) -> Result<ExitCode> {
    let path = path_or_err()?;
    let file = config::load_file(&path)?;
    // The profile `get-token` (and `profile show`) would use: ENTRA_TOKEN_PROFILE, then
    // default_profile, then `default`.
    let effective_default = std::env::var("ENTRA_TOKEN_PROFILE")
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .or_else(|| file.default_profile.clone())
        .unwrap_or_else(|| "default".into());
    let mut rows: Vec<(String, String, String, bool)> = file
        .profiles
        .iter()
        .map(|(n, p)| (n.clone(), p.flow.clone().unwrap_or_else(|| "auto".into()), p.tenant.clone().unwrap_or_else(|| "organizations".into()), false))
        .collect();
    if !file.profiles.contains_key("default") {
        // Not in the file: resolved as `show` resolves it (the standard variables, else built in).
        let (flow, tenant) = match config::resolve_in(&file, Some(&path), Some("default")) {
            Ok(p) if p.origin == config::Origin::Environment => (p.flow.name().to_string(), format!("{} (from AZURE_* variables)", p.authority.tenant)),
            Ok(p) => (p.flow.name().to_string(), format!("{} (built-in)", p.authority.tenant)),
            Err(_) => ("auto".into(), "(built-in)".into()),
        };
        rows.insert(0, ("default".into(), flow, tenant, true));
    }
    match format {
        Format::Json => {
            let profiles: Vec<_> = rows
                .iter()
                .map(|(n, f, t, b)| serde_json::json!({"name": n, "flow": f, "tenant": t, "default": *n == effective_default, "built_in": b}))
                .collect();
            out(&format!("{}\n", serde_json::json!({"config": path, "default_profile": file.default_profile, "profiles": profiles})))
        }
        Format::Text => {
            let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
            let fwidth = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
            let mut text = String::new();
            for (n, f, t, _) in &rows {
                let mark = if *n == effective_default { '*' } else { ' ' };
                text.push_str(&format!("{mark} {n:width$}  {f:fwidth$}  {t}\n"));
            }
            out(&text)
        }
    }
}

/// Where a profile's secret-bearing settings point, with whether that place exists.
/// Only names and paths: a value is never read here.
pub(crate) fn secret_places(p: &Profile) -> Vec<(&'static str, String, String, bool)> {
    let mut v = Vec::new();
    let env = |var: &str| std::env::var_os(var).is_some_and(|x| !x.is_empty());
    match &p.secret {
        Some(SecretSource::Env(var)) => v.push(("client secret", "env".into(), var.clone(), env(var))),
        Some(SecretSource::File(f)) => v.push(("client secret", "file".into(), f.display().to_string(), f.is_file())),
        None => {}
    }
    let s = &p.settings;
    if let Some(f) = &s.certificate_path {
        v.push(("certificate", "file".into(), f.display().to_string(), f.is_file()));
    }
    if let Some(var) = &s.certificate_password_env {
        v.push(("certificate password", "env".into(), var.clone(), env(var)));
    }
    if let Some(f) = &s.federated_token_file {
        v.push(("federated token", "file".into(), f.display().to_string(), f.is_file()));
    }
    if let Some(var) = &s.password_env {
        v.push(("password", "env".into(), var.clone(), env(var)));
    }
    if let Some(f) = &s.password_file {
        v.push(("password", "file".into(), f.display().to_string(), f.is_file()));
    }
    v
}

fn show(name: Option<&str>, format: Format) -> Result<ExitCode> {
    let p = config::resolve(name)?;
    // The profile's own table as written (names and paths only: the config has no field
    // that can hold a secret value, and unknown keys are refused).
    let raw = match (&p.origin, config::config_path()) {
        (config::Origin::File(_), Some(path)) => std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.parse::<toml::Table>().ok())
            .and_then(|t| t.get("profiles").and_then(|ps| ps.get(&p.name)).cloned()),
        _ => None,
    };
    let places = secret_places(&p);
    match format {
        Format::Json => {
            let secrets: Vec<_> = places
                .iter()
                .map(|(what, kind, place, present)| serde_json::json!({"what": what, "source": kind, "name": place, "present": present}))
                .collect();
            let v = serde_json::json!({
                "name": p.name,
                "chosen_by": p.name_source.describe(),
                "origin": p.origin.describe(),
                "flow": p.flow.name(),
                "authority": p.authority.host,
                "tenant": p.authority.tenant,
                "client_id": p.client_id,
                "endpoint": p.endpoint,
                "secrets": secrets,
                "settings": raw,
            });
            out(&format!("{v}\n"))
        }
        Format::Text => {
            let mut rows: Vec<(String, String)> = vec![
                ("profile".into(), p.name.clone()),
                ("chosen by".into(), p.name_source.describe().into()),
                ("defined in".into(), p.origin.describe()),
                ("flow".into(), p.flow.name().into()),
                ("authority".into(), p.authority.host.clone()),
                ("tenant".into(), p.authority.tenant.clone()),
                ("client_id".into(), p.client_id.clone()),
            ];
            if let Some(toml::Value::Table(t)) = &raw {
                for (k, v) in t {
                    if matches!(k.as_str(), "tenant" | "client_id" | "flow" | "authority") || is_secret_place(k) {
                        continue;
                    }
                    rows.push((k.clone(), display_value(v)));
                }
            }
            for (what, kind, place, present) in &places {
                let state = match (kind.as_str(), present) {
                    ("env", true) => "set",
                    ("env", false) => "NOT SET",
                    (_, true) => "exists",
                    (_, false) => "MISSING",
                };
                let noun = if kind == "env" { "environment variable" } else { "file" };
                rows.push((what.to_string(), format!("{noun} {place} ({state})")));
            }
            rows.push(("secrets".into(), "only their names and paths are kept and shown; values never are".into()));
            let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0) + 1;
            let text: String = rows.iter().map(|(k, v)| format!("{:width$} {v}\n", format!("{k}:"))).collect();
            out(&text)
        }
    }
}

fn is_secret_place(key: &str) -> bool {
    matches!(key, "client_secret_env" | "client_secret_file" | "certificate_path" | "certificate_password_env" | "federated_token_file" | "password_env" | "password_file")
}

fn display_value(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(a) => a.iter().map(display_value).collect::<Vec<_>>().join(", "),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

// ---------------------------------------------------------------- editing

/// The first line of a config file `profile add` creates.
const NEW_FILE_HEADER: &str = "# entra-token profiles: edit by hand or with `entra-token profile add|remove|default`.\n";

/// The text to write: a new file gets a header comment above everything.
fn render(doc: &DocumentMut, path: &Path) -> String {
    let text = doc.to_string();
    if path.exists() { text } else { format!("{NEW_FILE_HEADER}{text}") }
}

/// The config document (empty when the file is missing).
fn load_doc(path: &Path) -> Result<DocumentMut> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(DocumentMut::new());
        }
        Err(e) => return Err(Error::Config { path: path.to_path_buf(), message: e.to_string() }),
    };
    // toml_edit's rendering quotes the offending line, which may hold a pasted secret.
    text.parse::<DocumentMut>().map_err(|e| Error::Config { path: path.to_path_buf(), message: crate::config_errors::explain_parts(&text, e.message(), e.span()) })
}

/// Checks that the edited text is a config `get-token` accepts, resolving `name` when given.
fn validate(text: &str, path: &Path, name: Option<&str>) -> Result<()> {
    let file = config::parse_file(text).map_err(|m| Error::bad_input_hint(format!("the edited config would not parse: {m}"), "nothing was written"))?;
    if let Some(n) = name {
        config::resolve_in(&file, Some(path), Some(n)).map_err(|e| match e {
            Error::BadInput { message, hint } => Error::BadInput { message, hint: Some(format!("{}; nothing was written", hint.unwrap_or_else(|| "fix the flags".into()))) },
            other => other,
        })?;
    }
    Ok(())
}

/// Replaces the file atomically, keeping its mode (0600 for a new file) and following a
/// symlink to the real file, so a dotfiles-managed config stays a link.
fn save(path: &Path, text: &str) -> Result<()> {
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path).map_err(|e| Error::Config { path: path.to_path_buf(), message: format!("cannot follow the symlink: {e}") })?,
        _ => path.to_path_buf(),
    };
    // An existing file keeps its own mode; a new one is private.
    #[cfg(unix)]
    let access = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(&target).map(|m| crate::fs::Access::Mode(m.permissions().mode() & 0o7777)).unwrap_or(crate::fs::Access::Private)
    };
    #[cfg(not(unix))]
    let access = if target.exists() { crate::fs::Access::Mode(0o600) } else { crate::fs::Access::Private };
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        crate::fs::create_private_dir(dir).map_err(|e| Error::Config { path: dir.to_path_buf(), message: e.to_string() })?;
    }
    crate::fs::write_atomic(&target, text.as_bytes(), access, crate::fs::Durability::Sync).map_err(|e| Error::Config { path: target.clone(), message: e.to_string() })
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(Error::bad_input_hint(format!("'{name}' is not a valid profile name"), "use letters, digits, '-' and '_'"));
    }
    Ok(())
}

/// A variable name, not a pasted secret: `[A-Za-z_][A-Za-z0-9_]*`, at most 128 chars.
pub(crate) fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= 128 && chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The `profiles` table, created implicit (so only `[profiles.NAME]` headers appear).
fn profiles_table(doc: &mut DocumentMut) -> Result<&mut Table> {
    if !doc.contains_key("profiles") {
        let mut t = Table::new();
        t.set_implicit(true);
        doc.insert("profiles", Item::Table(t));
    }
    doc["profiles"].as_table_mut().ok_or_else(|| Error::bad_input_hint("`profiles` in the config file is not a table", "edit the file by hand: use [profiles.NAME] sections"))
}

/// Sets `key`, keeping the comments around an existing value (`x = 1  # why`).
fn set_keep_decor(table: &mut Table, key: &str, item: Item) {
    match (table.get_mut(key), item) {
        (Some(Item::Value(old)), Item::Value(mut new)) => {
            *new.decor_mut() = old.decor().clone();
            *old = new;
        }
        (_, item) => {
            table.insert(key, item);
        }
    }
}

/// `text` above `old` without piling up blank lines.
fn join(text: &str, old: &str) -> String {
    if text.ends_with("\n\n") { format!("{text}{}", old.trim_start_matches('\n')) } else { format!("{text}{old}") }
}

fn prefix_of(decor: &toml_edit::Decor) -> String {
    decor.prefix().and_then(|p| p.as_str()).unwrap_or("").to_string()
}

/// The comments above a removed item that belong to what came before it: all of them for
/// the first item of the file (its header), else those set apart by a blank line.
fn orphaned(prefix: &str, first_in_file: bool) -> String {
    if first_in_file {
        return prefix.to_string();
    }
    match prefix.rfind("\n\n") {
        Some(i) => prefix[..i + 2].to_string(),
        None => String::new(),
    }
}

/// The smallest table position after `after` (None: any), searched through nested tables.
fn next_position(t: &Table, after: Option<isize>, best: &mut Option<isize>) {
    for (_, item) in t.iter() {
        if let Item::Table(sub) = item {
            if let Some(p) = sub.position().filter(|p| after.is_none_or(|a| *p > a) && !sub.is_implicit())
                && best.is_none_or(|b| p < b)
            {
                *best = Some(p);
            }
            next_position(sub, after, best);
        }
    }
}

fn prepend_at(t: &mut Table, pos: isize, text: &str) -> bool {
    for (_, item) in t.iter_mut() {
        if let Item::Table(sub) = item {
            if sub.position() == Some(pos) && !sub.is_implicit() {
                let old = prefix_of(sub.decor());
                sub.decor_mut().set_prefix(join(text, &old));
                return true;
            }
            if prepend_at(sub, pos, text) {
                return true;
            }
        }
    }
    false
}

/// Hands comments that must survive a removal to the next table (or the end of the file).
fn rehome(doc: &mut DocumentMut, after: Option<isize>, text: &str) {
    if !text.contains('#') {
        return;
    }
    let mut best = None;
    next_position(doc.as_table(), after, &mut best);
    match best {
        Some(pos) if prepend_at(doc.as_table_mut(), pos, text) => {}
        _ => {
            let trailing = doc.trailing().as_str().unwrap_or("").to_string();
            doc.set_trailing(format!("{trailing}{text}"));
        }
    }
}

/// Sets `default_profile`. A new key goes above the first table, so the file's leading
/// comment (what sits above that table up to its last blank line, or all of it when there
/// is none) moves above the key: the file still opens with the words its author put first.
fn set_default_profile(doc: &mut DocumentMut, name: &str) {
    let existed = doc.as_table().contains_key("default_profile");
    set_keep_decor(doc.as_table_mut(), "default_profile", value(name));
    if existed || doc.as_table().iter().filter(|(_, i)| i.is_value()).count() > 1 {
        return;
    }
    let mut first = None;
    next_position(doc.as_table(), None, &mut first);
    let header = match first {
        Some(pos) => take_header_at(doc.as_table_mut(), pos).unwrap_or_default(),
        None => {
            // No table at all: the comments are the document's trailing text.
            let trailing = doc.trailing().as_str().unwrap_or("").to_string();
            doc.set_trailing("");
            trailing
        }
    };
    if header.contains('#') {
        let header = format!("{}\n\n", header.trim_end_matches('\n'));
        if let Some(mut km) = doc.as_table_mut().key_mut("default_profile") {
            km.leaf_decor_mut().set_prefix(header);
        }
    }
    // A blank line between the key and the first table.
    if let Some(pos) = first {
        prepend_at(doc.as_table_mut(), pos, "\n");
    }
}

/// Takes the file-header part of the prefix of the table at `pos` (see [`set_default_profile`]).
fn take_header_at(t: &mut Table, pos: isize) -> Option<String> {
    for (_, item) in t.iter_mut() {
        if let Item::Table(sub) = item {
            if sub.position() == Some(pos) && !sub.is_implicit() {
                let prefix = prefix_of(sub.decor());
                let cut = prefix.rfind("\n\n").map_or(prefix.len(), |i| i + 2);
                let (header, rest) = prefix.split_at(cut);
                let header = header.trim_end_matches('\n').to_string();
                sub.decor_mut().set_prefix(rest.to_string());
                return Some(header);
            }
            if let Some(h) = take_header_at(sub, pos) {
                return Some(h);
            }
        }
    }
    None
}

/// Removes a top-level key (`default_profile`) but not the file header above it.
fn remove_root_key(doc: &mut DocumentMut, key: &str) {
    let first = doc.as_table().iter().find(|(_, i)| i.is_value()).map(|(k, _)| k.to_string());
    let prefix = doc.as_table().key(key).map(|k| prefix_of(k.leaf_decor())).unwrap_or_default();
    if doc.remove(key).is_none() {
        return;
    }
    let keep = orphaned(&prefix, first.as_deref() == Some(key));
    let next_kv = doc.as_table().iter().find(|(_, i)| i.is_value()).map(|(k, _)| k.to_string());
    match next_kv {
        Some(k) if keep.contains('#') => {
            if let Some(mut km) = doc.as_table_mut().key_mut(&k) {
                let old = prefix_of(km.leaf_decor());
                km.leaf_decor_mut().set_prefix(join(&keep, &old));
            }
        }
        _ => rehome(doc, None, &keep),
    }
}

/// The keys `add` writes, in the order a person reads them.
fn fields_of(a: &AddArgs) -> Vec<(&'static str, Item)> {
    let mut f: Vec<(&'static str, Item)> = Vec::new();
    let s = |k: &'static str, v: &Option<String>, f: &mut Vec<(&'static str, Item)>| {
        if let Some(v) = v {
            f.push((k, value(v.as_str())));
        }
    };
    let p = |k: &'static str, v: &Option<PathBuf>, f: &mut Vec<(&'static str, Item)>| {
        if let Some(v) = v {
            f.push((k, value(v.display().to_string())));
        }
    };
    s("tenant", &a.tenant, &mut f);
    s("client_id", &a.client_id, &mut f);
    s("flow", &a.flow, &mut f);
    s("client_secret_env", &a.client_secret_env, &mut f);
    p("client_secret_file", &a.client_secret_file, &mut f);
    p("certificate_path", &a.certificate_path, &mut f);
    s("certificate_password_env", &a.certificate_password_env, &mut f);
    p("federated_token_file", &a.federated_token_file, &mut f);
    s("service_connection_id", &a.service_connection_id, &mut f);
    s("mi_client_id", &a.mi_client_id, &mut f);
    s("mi_object_id", &a.mi_object_id, &mut f);
    s("mi_res_id", &a.mi_res_id, &mut f);
    s("username", &a.username, &mut f);
    s("password_env", &a.password_env, &mut f);
    p("password_file", &a.password_file, &mut f);
    s("login_hint", &a.login_hint, &mut f);
    s("authority", &a.authority, &mut f);
    s("cloud", &a.cloud, &mut f);
    s("resource", &a.resource, &mut f);
    s("subscription", &a.subscription, &mut f);
    s("storage", &a.storage, &mut f);
    for (k, list) in [("urls", &a.urls), ("serve_resources", &a.serve_resources)] {
        if !list.is_empty() {
            let arr: Array = list.iter().map(String::as_str).collect();
            f.push((k, value(arr)));
        }
    }
    f
}

/// Adds (or, with `update`, changes) `[profiles.NAME]` in the document.
pub(crate) fn apply_add(doc: &mut DocumentMut, a: &AddArgs) -> Result<()> {
    let fields = fields_of(a);
    let profiles = profiles_table(doc)?;
    match profiles.get_mut(&a.name) {
        Some(existing) if a.update => {
            let t = existing.as_table_mut().ok_or_else(|| Error::bad_input(format!("profile '{}' is not a [profiles.{}] table; edit it by hand", a.name, a.name)))?;
            for (k, v) in fields {
                // One source at a time: setting one drops the others.
                let replaces: &[&str] = match k {
                    "client_secret_env" => &["client_secret_file"],
                    "client_secret_file" => &["client_secret_env"],
                    "authority" => &["cloud"],
                    "cloud" => &["authority"],
                    "federated_token_file" => &["service_connection_id"],
                    "service_connection_id" => &["federated_token_file"],
                    "password_env" => &["password_file"],
                    "password_file" => &["password_env"],
                    "mi_client_id" => &["mi_object_id", "mi_res_id"],
                    "mi_object_id" => &["mi_client_id", "mi_res_id"],
                    "mi_res_id" => &["mi_client_id", "mi_object_id"],
                    _ => &[],
                };
                for old in replaces {
                    t.remove(old);
                }
                set_keep_decor(t, k, v);
            }
        }
        Some(_) => {
            return Err(Error::bad_input_hint(format!("profile '{}' already exists", a.name), "pass --update to change it, or pick another name"));
        }
        None => {
            let mut t = Table::new();
            for (k, v) in fields {
                t.insert(k, v);
            }
            profiles.insert(&a.name, Item::Table(t));
        }
    }
    if a.make_default {
        set_default_profile(doc, &a.name);
    }
    Ok(())
}

fn add(a: &AddArgs) -> Result<ExitCode> {
    if a.client_secret.is_some() || a.password.is_some() {
        return Err(Error::bad_input_hint(
            "secrets are never taken on the command line (argv is visible to other users and lands in shell history)",
            "use --client-secret-env VAR or --client-secret-file PATH; clear this command from your shell history",
        ));
    }
    check_name(&a.name)?;
    let path = path_or_err()?;
    let mut doc = load_doc(&path)?;
    let exists = doc.get("profiles").and_then(|p| p.get(&a.name)).is_some();
    let mut args = AddArgs { name: a.name.clone(), urls: a.urls.clone(), serve_resources: a.serve_resources.clone(), ..AddArgs::default() };
    copy_fields(a, &mut args);
    if !(a.no_prompt || exists && a.update)
        && let Some(mut input) = prompt_input()
    {
        ask_missing(&mut args, &mut *input, &mut std::io::stderr())?;
    }
    for (flag, v, example) in [
        ("--client-secret-env", &args.client_secret_env, "CI_CLIENT_SECRET"),
        ("--certificate-password-env", &args.certificate_password_env, "CERT_PASSWORD"),
        ("--password-env", &args.password_env, "MY_PASSWORD"),
    ] {
        if let Some(v) = v
            && !is_env_name(v)
        {
            return Err(Error::bad_input_hint(
                format!("{flag} takes the NAME of an environment variable, and that is not one"),
                format!("pass e.g. {flag} {example}; if you pasted the secret itself, clear it from your shell history"),
            ));
        }
    }
    apply_add(&mut doc, &args)?;
    let text = render(&doc, &path);
    validate(&text, &path, Some(&args.name)).map_err(|e| match e {
        Error::BadInput { message, .. } => Error::bad_input_hint(message, "nothing was written; pass the missing flag (see `entra-token profile add --help`)"),
        other => other,
    })?;
    save(&path, &text)?;
    warn!("{} profile '{}' in {}", if exists { "updated" } else { "added" }, args.name, path.display());
    for (var, what) in [(&args.client_secret_env, "the client secret"), (&args.certificate_password_env, "the certificate's password"), (&args.password_env, "the password")] {
        if let Some(var) = var.as_deref().filter(|v| std::env::var_os(v).is_none()) {
            warn!("remember to set {var} (the profile reads {what} from it)");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn copy_fields(from: &AddArgs, to: &mut AddArgs) {
    to.tenant = from.tenant.clone();
    to.client_id = from.client_id.clone();
    to.flow = from.flow.clone();
    to.client_secret_env = from.client_secret_env.clone();
    to.client_secret_file = from.client_secret_file.clone();
    to.certificate_path = from.certificate_path.clone();
    to.certificate_password_env = from.certificate_password_env.clone();
    to.federated_token_file = from.federated_token_file.clone();
    to.service_connection_id = from.service_connection_id.clone();
    to.mi_client_id = from.mi_client_id.clone();
    to.mi_object_id = from.mi_object_id.clone();
    to.mi_res_id = from.mi_res_id.clone();
    to.username = from.username.clone();
    to.password_env = from.password_env.clone();
    to.password_file = from.password_file.clone();
    to.login_hint = from.login_hint.clone();
    to.authority = from.authority.clone();
    to.cloud = from.cloud.clone();
    to.resource = from.resource.clone();
    to.subscription = from.subscription.clone();
    to.storage = from.storage.clone();
    to.update = from.update;
    to.make_default = from.make_default;
    to.no_prompt = from.no_prompt;
}

/// Where a person's answers come from: stdin when it is a terminal, else the controlling
/// terminal when stderr (where the questions go) is one. None: nobody is there.
fn prompt_input() -> Option<Box<dyn BufRead>> {
    if std::io::stdin().is_terminal() {
        return Some(Box::new(std::io::stdin().lock()));
    }
    if std::io::stderr().is_terminal()
        && let Ok(tty) = std::fs::File::open(if cfg!(windows) { "CONIN$" } else { "/dev/tty" })
    {
        return Some(Box::new(std::io::BufReader::new(tty)));
    }
    None
}

/// One question on `err`; the trimmed answer, `default` for an empty one, None at EOF.
fn ask(input: &mut dyn BufRead, err: &mut dyn Write, question: &str, default: Option<&str>) -> Result<Option<String>> {
    match default {
        Some(d) => write!(err, "{question} [{d}]: "),
        None => write!(err, "{question}: "),
    }
    .and_then(|_| err.flush())
    .map_err(|e| Error::general(format!("cannot write the prompt: {e}")))?;
    let mut line = String::new();
    if input.read_line(&mut line).map_err(|e| Error::general(format!("cannot read the answer: {e}")))? == 0 {
        let _ = writeln!(err);
        return Ok(None);
    }
    let answer = line.trim();
    Ok(if answer.is_empty() { default.map(str::to_string) } else { Some(answer.to_string()) })
}

/// Asks for the few fields the chosen flow needs and that no flag gave.
pub(crate) fn ask_missing(a: &mut AddArgs, input: &mut dyn BufRead, err: &mut dyn Write) -> Result<()> {
    use config::FlowKind;
    if a.flow.is_none() {
        a.flow = ask(input, err, "Flow (device-code, interactive, client-credentials, workload-identity, managed-identity, azure-cli)", Some("device-code"))?;
    }
    let flow = match a.flow.as_deref() {
        Some(f) => FlowKind::parse(f)?,
        None => return Ok(()),
    };
    let app = matches!(flow, FlowKind::ClientCredentials | FlowKind::WorkloadIdentity);
    if a.tenant.is_none() && !matches!(flow, FlowKind::ManagedIdentity | FlowKind::AzureCli) {
        a.tenant = ask(input, err, "Tenant (GUID or domain)", if app { None } else { Some("organizations") })?;
    }
    if flow == FlowKind::ManagedIdentity && a.mi_client_id.is_none() {
        a.mi_client_id = ask(input, err, "Client id of a user-assigned identity (empty: system-assigned)", None)?;
    } else if a.client_id.is_none() && flow != FlowKind::AzureCli {
        a.client_id = ask(input, err, "Application (client) id", if app { None } else { Some(config::AZURE_CLI_CLIENT_ID) })?;
        if a.client_id.as_deref() == Some(config::AZURE_CLI_CLIENT_ID) {
            a.client_id = None;
        }
    }
    if flow == FlowKind::ClientCredentials && a.client_secret_env.is_none() && a.client_secret_file.is_none() && a.certificate_path.is_none() {
        for _ in 0..3 {
            let Some(answer) = ask(input, err, "Where the client secret is: an environment variable NAME or a file path (never the secret itself)", None)? else {
                break;
            };
            if answer.contains('/') || answer.starts_with('~') || answer.starts_with('.') {
                let path = match answer.strip_prefix("~/") {
                    Some(rest) => dirs::home_dir().map(|h| h.join(rest)).unwrap_or_else(|| PathBuf::from(&answer)),
                    None => PathBuf::from(&answer),
                };
                a.client_secret_file = Some(path);
                break;
            }
            if is_env_name(&answer) {
                a.client_secret_env = Some(answer);
                break;
            }
            let _ = writeln!(err, "entra-token: that is neither a variable name nor a path; do not paste the secret here");
        }
    }
    if flow == FlowKind::WorkloadIdentity && a.federated_token_file.is_none() && a.service_connection_id.is_none() {
        a.federated_token_file = ask(input, err, "Federated token file (empty: AZURE_FEDERATED_TOKEN_FILE)", None)?.map(PathBuf::from);
    }
    if a.resource.is_none() {
        a.resource = ask(input, err, "Default resource (alias like graph/powerbi/arm, or a URI; empty: none)", None)?;
    }
    Ok(())
}

fn remove(name: &str) -> Result<ExitCode> {
    let path = path_or_err()?;
    let mut doc = load_doc(&path)?;
    let available: Vec<String> = doc.get("profiles").and_then(Item::as_table).map(|t| t.iter().map(|(k, _)| k.to_string()).collect()).unwrap_or_default();
    let removed = doc.get_mut("profiles").and_then(Item::as_table_mut).and_then(|t| t.remove(name));
    let Some(removed) = removed else {
        return Err(Error::ProfileNotFound { name: name.to_string(), available });
    };
    if let Item::Table(t) = &removed {
        let mut first = None;
        next_position(doc.as_table(), None, &mut first);
        let is_first = !doc.as_table().iter().any(|(_, i)| i.is_value()) && first.is_none_or(|f| t.position().is_some_and(|p| p < f));
        rehome(&mut doc, t.position(), &orphaned(&prefix_of(t.decor()), is_first));
    }
    let was_default = doc.get("default_profile").and_then(Item::as_str) == Some(name);
    if was_default {
        remove_root_key(&mut doc, "default_profile");
    }
    let text = render(&doc, &path);
    validate(&text, &path, None)?;
    save(&path, &text)?;
    warn!("removed profile '{name}' from {}", path.display());
    if was_default {
        warn!("it was the default profile; default_profile is now unset (run `entra-token profile default NAME`)");
    }
    Ok(ExitCode::SUCCESS)
}

fn default(name: Option<&str>, unset: bool) -> Result<ExitCode> {
    let path = path_or_err()?;
    if name.is_none() && !unset {
        let file = config::load_file(&path)?;
        if let Some(env) = std::env::var("ENTRA_TOKEN_PROFILE").ok().filter(|v| !v.trim().is_empty()) {
            warn!("ENTRA_TOKEN_PROFILE={env} overrides the config's default_profile in this shell");
        }
        let n = file.default_profile.unwrap_or_else(|| "default".into());
        return out(&format!("{n}\n"));
    }
    let mut doc = load_doc(&path)?;
    match name {
        Some(n) => {
            check_name(n)?;
            set_default_profile(&mut doc, n);
        }
        None => remove_root_key(&mut doc, "default_profile"),
    }
    let text = render(&doc, &path);
    validate(&text, &path, name)?;
    save(&path, &text)?;
    match name {
        Some(n) => warn!("default profile is now '{n}' ({})", path.display()),
        None => warn!("default_profile removed from {}", path.display()),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER_FILE: &str = "# my profiles\ndefault_profile = \"dev\" # the one I use\n\n[profiles.dev]\n# sign in as me\nflow = \"device-code\"\ntenant = \"contoso.com\"\n\n# pipelines\n[profiles.ci]\nflow = \"client-credentials\"   # aligned\nclient_id = \"c\"\nclient_secret_env = \"CI_SECRET\"\ntenant = \"t\"\n";

    fn args(name: &str) -> AddArgs {
        AddArgs { name: name.into(), ..AddArgs::default() }
    }

    #[test]
    fn add_keeps_comments_and_order() {
        let mut doc: DocumentMut = USER_FILE.parse().unwrap();
        let mut a = args("pbi");
        a.flow = Some("client-credentials".into());
        a.tenant = Some("t".into());
        a.client_id = Some("app".into());
        a.client_secret_file = Some("/run/secrets/pbi".into());
        a.urls = vec!["https://dev.azure.com/contoso/".into()];
        apply_add(&mut doc, &a).unwrap();
        let text = doc.to_string();
        assert!(text.starts_with(USER_FILE), "the user's text must survive byte for byte:\n{text}");
        assert!(text.ends_with("[profiles.pbi]\ntenant = \"t\"\nclient_id = \"app\"\nflow = \"client-credentials\"\nclient_secret_file = \"/run/secrets/pbi\"\nurls = [\"https://dev.azure.com/contoso/\"]\n"), "{text}");
        let file = config::parse_file(&text).unwrap();
        assert_eq!(config::resolve_in(&file, None, Some("pbi")).unwrap().secret, Some(SecretSource::File("/run/secrets/pbi".into())));
        assert!(apply_add(&mut doc, &a).unwrap_err().to_string().contains("already exists"));
    }

    #[test]
    fn update_swaps_the_secret_source_and_keeps_the_rest() {
        let mut doc: DocumentMut = USER_FILE.parse().unwrap();
        let mut a = args("ci");
        a.update = true;
        a.client_secret_file = Some("/s".into());
        apply_add(&mut doc, &a).unwrap();
        let text = doc.to_string();
        assert!(text.contains("flow = \"client-credentials\"   # aligned") && !text.contains("CI_SECRET") && text.contains("client_secret_file = \"/s\""), "{text}");
    }

    #[test]
    fn new_file_gets_implicit_profiles_and_default_on_top() {
        let mut doc: DocumentMut = "".parse().unwrap();
        let mut a = args("dev");
        a.flow = Some("device-code".into());
        a.make_default = true;
        apply_add(&mut doc, &a).unwrap();
        assert_eq!(doc.to_string(), "default_profile = \"dev\"\n\n[profiles.dev]\nflow = \"device-code\"\n");
    }

    #[test]
    fn prompts_ask_only_what_the_flow_needs() {
        let mut a = args("ci");
        let mut input = std::io::Cursor::new("client-credentials\ncontoso.com\napp-id\nnot a name!\nCI_SECRET\n\n");
        let mut err = Vec::new();
        ask_missing(&mut a, &mut input, &mut err).unwrap();
        assert_eq!(a.flow.as_deref(), Some("client-credentials"));
        assert_eq!(a.tenant.as_deref(), Some("contoso.com"));
        assert_eq!(a.client_id.as_deref(), Some("app-id"));
        assert_eq!(a.client_secret_env.as_deref(), Some("CI_SECRET"));
        assert_eq!(a.resource, None);
        let asked = String::from_utf8(err).unwrap();
        assert!(asked.contains("never the secret itself") && asked.contains("do not paste the secret"), "{asked}");

        // A person who accepts the defaults gets the built-in public client.
        let mut a = args("me");
        let mut input = std::io::Cursor::new("\n\n\n\n");
        ask_missing(&mut a, &mut input, &mut Vec::new()).unwrap();
        assert_eq!((a.flow.as_deref(), a.tenant.as_deref(), a.client_id.as_deref()), (Some("device-code"), Some("organizations"), None));
    }

    #[test]
    fn removals_keep_the_file_header_and_section_notes() {
        let mut doc: DocumentMut = USER_FILE.parse().unwrap();
        set_keep_decor(doc.as_table_mut(), "default_profile", value("ci"));
        assert!(doc.to_string().starts_with("# my profiles\ndefault_profile = \"ci\" # the one I use\n"), "{doc}");
        remove_root_key(&mut doc, "default_profile");
        let text = doc.to_string();
        assert!(text.starts_with("# my profiles\n\n[profiles.dev]\n# sign in as me\n"), "{text}");
        config::parse_file(&text).unwrap();

        let mut doc: DocumentMut = "# header\n\n# about a\n[profiles.a]\nflow = \"device-code\"\n\n[profiles.b]\nflow = \"device-code\"\n".parse().unwrap();
        let t = doc["profiles"].as_table_mut().unwrap().remove("a").unwrap();
        rehome(&mut doc, t.as_table().unwrap().position(), &orphaned(&prefix_of(t.as_table().unwrap().decor()), false));
        assert_eq!(doc.to_string(), "# header\n\n[profiles.b]\nflow = \"device-code\"\n");
    }

    #[test]
    fn env_names_are_not_secrets() {
        assert!(is_env_name("CI_CLIENT_SECRET") && is_env_name("_x1"));
        assert!(!is_env_name("abc~DEF.ghi-jkl") && !is_env_name("1X") && !is_env_name("") && !is_env_name("A=B"));
    }
}
