//! `profile add|remove|default`: format-preserving edits of the config file, each validated
//! by resolving the result before the file is replaced, so comments survive and a bad edit never lands.

use super::prompts::{ask_missing, prompt_input};
use super::{AddArgs, out, path_or_err};
use crate::config;
use crate::error::{Error, Result};
use crate::log::warn;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use toml_edit::{Array, DocumentMut, Item, Table, value};

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
        Err(e) => return Err(Error::config(path, e)),
    };
    // toml_edit's rendering quotes the offending line, which may hold a pasted secret.
    text.parse::<DocumentMut>().map_err(|e| Error::Config { path: path.to_path_buf(), message: crate::config_errors::explain_parts(&text, e.message(), e.span()), source: None })
}

/// Checks that the edited text is a config `get-token` accepts, resolving `name` when given.
fn validate(text: &str, path: &Path, name: Option<&str>) -> Result<()> {
    let file = config::parse_file(text).map_err(|m| Error::bad_input_hint(format!("the edited config would not parse: {m}"), "nothing was written"))?;
    if let Some(n) = name {
        config::resolve_in(&file, Some(path), Some(n)).map_err(|e| match e {
            Error::BadInput { message, hint, source } => Error::BadInput { message, hint: Some(format!("{}; nothing was written", hint.unwrap_or_else(|| "fix the flags".into()))), source },
            other => other,
        })?;
    }
    Ok(())
}

/// Replaces the file atomically, keeping its mode (0600 for a new file) and following a
/// symlink to the real file, so a dotfiles-managed config stays a link.
fn save(path: &Path, text: &str) -> Result<()> {
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path).map_err(|e| Error::Config { path: path.to_path_buf(), message: "cannot follow the symlink".into(), source: Some(e.into()) })?,
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
        crate::fs::create_private_dir(dir).map_err(|e| Error::config(dir, e))?;
    }
    crate::fs::write_atomic(&target, text.as_bytes(), access, crate::fs::Durability::Sync).map_err(|e| Error::config(&target, e))
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
    s("federated_token", &a.federated_token, &mut f);
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
                    "federated_token_file" => &["service_connection_id", "federated_token"],
                    "service_connection_id" => &["federated_token_file", "federated_token"],
                    "federated_token" => &["federated_token_file", "service_connection_id"],
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

pub(super) fn add(a: &AddArgs) -> Result<ExitCode> {
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
    // The check's own hint says what to change (validate adds "nothing was written").
    validate(&text, &path, Some(&args.name)).map_err(|e| match e {
        Error::BadInput { message, hint: None, source } => Error::BadInput { message, hint: Some("nothing was written; pass the missing flag (see `entra-token profile add --help`)".into()), source },
        other => other,
    })?;
    // An app signs in at its own tenant: without one the profile could never get a token.
    if let Ok(p) = config::resolve_in(&config::parse_file(&text).unwrap_or_default(), Some(&path), Some(&args.name))
        && p.flow == config::FlowKind::ClientCredentials
        && p.authority.is_multi_tenant()
    {
        return Err(Error::bad_input_hint(
            format!("profile '{}': a service principal signs in at its own tenant, and none is given", args.name),
            "nothing was written; pass --tenant (your tenant id or domain, e.g. contoso.onmicrosoft.com)",
        ));
    }
    save(&path, &text)?;
    warn!("{} profile '{}' in {}", if exists { "updated" } else { "added" }, args.name, path.display());
    for (var, what) in [(&args.client_secret_env, "the client secret"), (&args.certificate_password_env, "the certificate's password"), (&args.password_env, "the password")] {
        if let Some(var) = var.as_deref().filter(|v| !crate::env::is_present(v)) {
            warn!("remember to set {var} (the profile reads {what} from it)");
        }
    }
    // Entra's application (client) ids are GUIDs; anything else (the app's name, its App ID
    // URI, an object id typed with a typo) fails only at the first sign-in, as AADSTS700016.
    for (id, key) in [(&args.client_id, "--client-id"), (&args.mi_client_id, "--mi-client-id")] {
        if let Some(id) = id.as_deref().filter(|i| !crate::authority::is_guid(i)) {
            warn!("{key} '{}' is not a GUID: Entra knows an app by its Application (client) ID, a GUID on the app registration's Overview page (fix with `entra-token profile add {} --update {key} GUID`)", crate::log::escape(id), args.name);
        }
    }
    // A file that is not there (yet: a secret mounted at run time) would fail only at the
    // first token request; say so now, where the path was typed.
    for (file, what) in [(&args.client_secret_file, "the client secret"), (&args.certificate_path, "the certificate"), (&args.federated_token_file, "the federated token")] {
        if let Some(file) = file.as_deref().filter(|f| !f.is_file()) {
            warn!("{} does not exist (or is not a file); the profile reads {what} from it, so create it before the first token request", file.display());
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
    to.federated_token = from.federated_token.clone();
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

pub(super) fn remove(name: &str) -> Result<ExitCode> {
    let path = path_or_err()?;
    let mut doc = load_doc(&path)?;
    let available: Vec<String> = doc.get("profiles").and_then(Item::as_table).map(|t| t.iter().map(|(k, _)| k.to_string()).collect()).unwrap_or_default();
    let removed = doc.get_mut("profiles").and_then(Item::as_table_mut).and_then(|t| t.remove(name));
    let Some(removed) = removed else {
        return Err(Error::ProfileNotFound { name: name.to_string(), available, note: None });
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
    forget_pop_key(name, removed.get("storage").and_then(Item::as_str));
    if was_default {
        warn!("it was the default profile; default_profile is now unset (run `entra-token profile default NAME`)");
    }
    Ok(ExitCode::SUCCESS)
}

/// A removed profile's PoP key goes with it (a key belongs to one profile; its bound tokens
/// cannot be reached any more). Its refresh tokens stay, as `logout` decides about those.
fn forget_pop_key(name: &str, storage: Option<&str>) {
    let storage = config::Storage::parse(storage, name).unwrap_or(config::Storage::Auto);
    // No cache directory: no key was ever made (its lock lives there).
    let Some(cache) = crate::cache::default_dir().ok().and_then(|d| crate::cache::Cache::open_existing(&d)) else { return };
    match crate::pop::forget_keys(&cache, &[(name.to_string(), storage)], false) {
        Ok(0) => {}
        Ok(_) => warn!("removed its PoP key"),
        Err(e) => warn!("could not remove its PoP key ({})", crate::error::one_line(&e)),
    }
}

pub(super) fn default(name: Option<&str>, unset: bool) -> Result<ExitCode> {
    let path = path_or_err()?;
    if name.is_none() && !unset {
        let file = config::load_file(&path)?;
        if let Some(env) = crate::env::var_untrimmed(crate::env::PROFILE) {
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
    use crate::config::SecretSource;

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
