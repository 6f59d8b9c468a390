//! `entra-token setup docker`: Docker runs `docker-credential-<name>` for the registries
//! listed under `credHelpers` in its config.json, so the setup is the
//! `docker-credential-entra-token` link on PATH plus one `credHelpers` entry per registry
//! the profiles claim (or per `--registry`). Every other key of config.json is kept.

use super::ApplyArg;
use super::az::default_bin_dir;
use super::links;
use super::claims::{self, Tool};
use crate::error::{Error, Result};
use crate::log::warn;
use clap::Args;
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::process::ExitCode;

const LINK: &str = "docker-credential-entra-token";
/// The helper's name in config.json: Docker adds the `docker-credential-` prefix.
const HELPER: &str = "entra-token";

#[derive(Debug, Args)]
pub(crate) struct DockerSetupArgs {
    /// Registries (host[:port]) to use the helper for; default: the registries in the profiles' `urls` (ACR hosts, `host[:port]` entries, `acr = true`).
    #[arg(long)]
    pub registry: Vec<String>,
    /// Docker's config file (default $DOCKER_CONFIG/config.json, else ~/.docker/config.json).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Directory on PATH for the `docker-credential-entra-token` link (default ~/.local/bin; %LOCALAPPDATA%\entra-token\bin on Windows).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Move an existing file of the link's name in DIR aside instead of stopping.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub apply: ApplyArg,
}

fn docker_config_path() -> Result<PathBuf> {
    if let Some(d) = crate::env::path(crate::env::DOCKER_CONFIG) {
        return Ok(d.join("config.json"));
    }
    dirs::home_dir().map(|h| h.join(".docker").join("config.json")).ok_or_else(|| Error::bad_input_hint("HOME is not set", "pass --config"))
}

/// `config` (Docker's config.json text, possibly empty) with a `credHelpers` entry for each
/// registry; None when they are all there already. Other keys are kept as they are.
pub(crate) fn merge(config: &str, registries: &[String]) -> Result<Option<String>> {
    let mut root: Map<String, Value> = if config.trim().is_empty() {
        Map::new()
    } else {
        match serde_json::from_str(config) {
            Ok(Value::Object(m)) => m,
            _ => return Err(Error::bad_input_hint("Docker's config.json is not a JSON object", "fix it by hand, or point --config at another file")),
        }
    };
    let helpers = root.entry("credHelpers").or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(helpers) = helpers else {
        return Err(Error::bad_input("Docker's config.json has a `credHelpers` that is not an object"));
    };
    let mut changed = false;
    for r in registries {
        if helpers.get(r).and_then(Value::as_str) != Some(HELPER) {
            if let Some(old) = helpers.get(r).and_then(Value::as_str) {
                warn!("{r} used the credential helper `{old}`; it now uses `{HELPER}`");
            }
            helpers.insert(r.clone(), Value::String(HELPER.into()));
            changed = true;
        }
    }
    Ok(changed.then(|| format!("{}\n", serde_json::to_string_pretty(&Value::Object(root)).unwrap_or_default())))
}

pub(crate) fn run(args: &DockerSetupArgs) -> Result<ExitCode> {
    let registries: Vec<String> = if args.registry.is_empty() {
        let claimed = claims::for_tool(Tool::Docker)?;
        claims::warn_without_resource(&claimed);
        let mut r: Vec<String> = claimed.iter().filter_map(|c| crate::protocols::docker::registry_of(&c.url)).collect();
        r.sort();
        r.dedup();
        r
    } else {
        args.registry.iter().map(|r| crate::protocols::docker::registry_of(r).ok_or_else(|| Error::bad_input(format!("'{r}' is not a registry host")))).collect::<Result<_>>()?
    };
    if registries.is_empty() {
        return Err(Error::bad_input_hint(
            "no profile claims a registry (an ACR, or host[:port] in `urls`), so there is no registry to use the Docker helper for",
            "add urls = [\"contoso.azurecr.io\"] to a profile, or pass --registry",
        ));
    }
    let dir = args.dir.clone().map_or_else(default_bin_dir, Ok)?;
    let path = match &args.config {
        Some(p) => p.clone(),
        None => docker_config_path()?,
    };
    if !args.apply.apply {
        let exe = super::self_exe()?;
        let entries: Map<String, Value> = registries.iter().map(|r| (r.clone(), Value::String(HELPER.into()))).collect();
        let snippet = serde_json::to_string_pretty(&serde_json::json!({ "credHelpers": entries })).unwrap_or_default();
        let text = format!(
            "# the helper Docker runs ({LINK}, found on PATH):\n{}\n# merged into {}:\n{snippet}\n",
            links::link_command(&exe, &dir.join(links::file_name(LINK))),
            path.display()
        );
        return super::print(&text);
    }
    links::make(dir, LINK, args.force)?;
    let existing = super::read_or_empty(&path)?;
    match merge(&existing, &registries)? {
        Some(text) => {
            super::write_with_backup(&path, text.as_bytes())?;
        }
        None => warn!("{} already uses {HELPER} for {}", path.display(), registries.join(", ")),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_other_keys_and_is_idempotent() {
        let before = r#"{"auths":{"docker.io":{"auth":"eA=="}},"credHelpers":{"gcr.io":"gcloud"},"currentContext":"x"}"#;
        let after = merge(before, &["contoso.azurecr.io".into()]).unwrap().unwrap();
        let v: Value = serde_json::from_str(&after).unwrap();
        assert_eq!(v["credHelpers"]["contoso.azurecr.io"], "entra-token");
        assert_eq!(v["credHelpers"]["gcr.io"], "gcloud");
        assert_eq!(v["auths"]["docker.io"]["auth"], "eA==");
        assert_eq!(v["currentContext"], "x");
        assert_eq!(merge(&after, &["contoso.azurecr.io".into()]).unwrap(), None);
        assert!(merge("", &["r".into()]).unwrap().unwrap().contains("\"r\": \"entra-token\""));
        assert!(merge("[1]", &["r".into()]).is_err());
        assert!(merge(r#"{"credHelpers":[]}"#, &["r".into()]).is_err());
    }
}
