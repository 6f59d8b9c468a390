//! `entra-token setup cargo`: entra-token as a global cargo credential provider (cargo
//! asks it first and falls back to `cargo:token` for registries no profile claims), and
//! optionally `[registries.NAME]` entries. `--apply` edits `$CARGO_HOME/config.toml` in
//! place, keeping its comments and order.

use super::ApplyArg;
use crate::error::{Error, Result};
use crate::log::warn;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use toml_edit::{Array, DocumentMut, Item, Table, value};

#[derive(Debug, Args)]
pub(crate) struct CargoSetupArgs {
    /// Also declare a registry, NAME=INDEX-URL (sparse+ is added), with entra-token as its provider.
    #[arg(long, value_name = "NAME=URL")]
    pub registry: Vec<String>,
    #[command(flatten)]
    pub apply: ApplyArg,
}

/// `$CARGO_HOME/config.toml` (CARGO_HOME defaults to ~/.cargo).
pub(crate) fn config_file() -> Result<PathBuf> {
    let home = match crate::env::path(crate::env::CARGO_HOME) {
        Some(h) => h,
        None => dirs::home_dir().ok_or_else(|| Error::general("HOME is not set; cannot find ~/.cargo"))?.join(".cargo"),
    };
    Ok(home.join("config.toml"))
}

fn parse_registry(spec: &str) -> Result<(String, String)> {
    let bad = || Error::bad_input_hint(format!("--registry '{spec}' is not NAME=https://…"), "e.g. --registry feed=https://pkgs.dev.azure.com/org/_packaging/feed/Cargo/index/");
    let (name, url) = spec.split_once('=').ok_or_else(bad)?;
    let bare = url.strip_prefix("sparse+").unwrap_or(url);
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') || crate::urlmatch::parse(bare).is_none() || !bare.starts_with("https://") {
        return Err(bad());
    }
    Ok((name.to_string(), format!("sparse+{bare}")))
}

/// Adds our provider to `doc` (last = highest precedence; `cargo:token` first when the
/// list is new) and the registries. Idempotent.
pub(crate) fn edit(doc: &mut DocumentMut, exe: &str, registries: &[(String, String)]) -> Result<()> {
    let not_table = |what: &str| Error::bad_input(format!("`{what}` in the cargo config is not a table; fix it by hand"));
    let registry = doc.entry("registry").or_insert(Item::Table(Table::new())).as_table_like_mut().ok_or_else(|| not_table("registry"))?;
    let list = registry.entry("global-credential-providers").or_insert(value(Array::from_iter(["cargo:token"])));
    let arr = list.as_array_mut().ok_or_else(|| Error::bad_input("`registry.global-credential-providers` in the cargo config is not a list; fix it by hand"))?;
    arr.retain(|v| v.as_str() != Some(exe));
    arr.push(exe);
    if !registries.is_empty() {
        // Implicit: no empty `[registries]` header above the `[registries.NAME]` tables.
        let mut implicit = Table::new();
        implicit.set_implicit(true);
        let all = doc.entry("registries").or_insert(Item::Table(implicit)).as_table_like_mut().ok_or_else(|| not_table("registries"))?;
        for (name, index) in registries {
            let t = all.entry(name).or_insert(Item::Table(Table::new())).as_table_like_mut().ok_or_else(|| not_table(&format!("registries.{name}")))?;
            t.insert("index", value(index.as_str()));
            t.insert("credential-provider", value(Array::from_iter([exe])));
        }
    }
    Ok(())
}

pub(crate) fn run(args: &CargoSetupArgs) -> Result<ExitCode> {
    let exe = super::self_exe()?.to_string_lossy().into_owned();
    if exe.contains(char::is_whitespace) {
        return Err(Error::bad_input_hint(
            format!("cargo splits provider paths at spaces, and {exe} has one"),
            "install entra-token in a directory without spaces",
        ));
    }
    let registries = args.registry.iter().map(|r| parse_registry(r)).collect::<Result<Vec<_>>>()?;
    let claimed = super::claims::for_tool(super::claims::Tool::Cargo)?;
    if claimed.is_empty() {
        warn!("no profile has `urls`: every registry will be told url-not-supported until one does");
    }
    super::claims::warn_without_resource(&claimed);
    let file = config_file()?;
    if !args.apply.apply {
        let mut doc = DocumentMut::new();
        edit(&mut doc, &exe, &registries)?;
        return super::print(&format!("# {} (run with --apply to merge it in; a 0600 backup is kept)\n{doc}", file.display()));
    }
    let text = super::read_or_empty(&file)?;
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| Error::bad_input(format!("{} is not valid TOML: {}", file.display(), e.to_string().lines().next().unwrap_or(""))))?;
    edit(&mut doc, &exe, &registries)?;
    super::write_with_backup(&file, doc.to_string().as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_the_provider_last_keeping_comments_and_is_idempotent() {
        let mut doc: DocumentMut = "# mine\n[registry]\n# keep\ndefault = \"x\"\n\n[net]\nretry = 3\n".parse().unwrap();
        edit(&mut doc, "/bin/entra-token", &[("feed".into(), "sparse+https://h/f/".into())]).unwrap();
        edit(&mut doc, "/bin/entra-token", &[]).unwrap();
        let text = doc.to_string();
        assert!(text.contains("# mine") && text.contains("# keep") && text.contains("retry = 3"), "{text}");
        assert!(!text.lines().any(|l| l.trim() == "[registries]"), "no empty [registries] table: {text}");
        let v: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(v["registry"]["global-credential-providers"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect::<Vec<_>>(), vec!["cargo:token", "/bin/entra-token"]);
        assert_eq!(v["registry"]["default"].as_str(), Some("x"));
        assert_eq!(v["registries"]["feed"]["index"].as_str(), Some("sparse+https://h/f/"));
        assert_eq!(v["registries"]["feed"]["credential-provider"][0].as_str(), Some("/bin/entra-token"));
    }

    #[test]
    fn keeps_an_existing_provider_list() {
        let mut doc: DocumentMut = "[registry]\nglobal-credential-providers = [\"cargo:libsecret\"]\n".parse().unwrap();
        edit(&mut doc, "/bin/entra-token", &[]).unwrap();
        let v: toml::Table = toml::from_str(&doc.to_string()).unwrap();
        assert_eq!(v["registry"]["global-credential-providers"].as_array().unwrap().len(), 2);
        assert!(edit(&mut "registry = 1".parse().unwrap(), "/e", &[]).is_err());
    }

    #[test]
    fn registry_specs() {
        assert_eq!(parse_registry("feed=https://h/f/").unwrap(), ("feed".into(), "sparse+https://h/f/".into()));
        assert!(parse_registry("feed").is_err());
        assert!(parse_registry("f e=https://h/").is_err());
        assert!(parse_registry("feed=http://h/").is_err());
    }
}
