//! Docker's credential helper protocol (docker/docker-credential-helpers): Docker runs
//! `docker-credential-entra-token get|store|erase|list|version`. `get` reads the server
//! URL on stdin and prints `{"ServerURL","Username","Secret"}`. Unlike every other
//! protocol here, errors go to STDOUT with exit 1, and the exact sentence
//! `credentials not found in native keychain` means "not mine". Only registries a
//! profile's `urls` claims get a credential; Azure Container Registries get an ACR
//! refresh token (the broker has `crate::acr` exchange and cache it), others the Entra
//! access token for the profile's `resource` (refused when the profile names none). Under
//! ENTRA_TOKEN_AGENT the agent's profiles claim registries and the agent does the exchange.

use crate::acr;
use crate::broker;
use crate::config::{self, ConfigFile};
use crate::error::{self, Error, Result};
use crate::log::trace;
use crate::urlmatch;
use clap::Args;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::process::ExitCode;

/// Docker's "not found" sentence; clients compare it byte for byte.
pub(crate) const NOT_FOUND: &str = "credentials not found in native keychain";
/// The user name given with a plain Entra access token (registries that take one as password).
pub(crate) const TOKEN_USERNAME: &str = "entra-token";
const MAX_INPUT: u64 = 64 * 1024;

/// `entra-token docker get|store|erase|list|version`.
#[derive(Debug, Args)]
pub(crate) struct DockerArgs {
    /// get, store, erase, list or version.
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

/// `get`'s answer and `store`'s input.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Credentials {
    #[serde(rename = "ServerURL")]
    pub server_url: String,
    #[serde(rename = "Username")]
    pub username: String,
    #[serde(rename = "Secret")]
    pub secret: crate::secret::Secret<String>,
}

/// A helper failure: the message Docker shows, on stdout, exit 1.
#[derive(Debug)]
pub(crate) enum Failure {
    NotFound,
    Other(String),
}

/// `get`'s stdin: the server URL, one line; whitespace around it is not part of it.
pub(crate) fn decode_server(bytes: &[u8]) -> std::result::Result<String, Failure> {
    let s = std::str::from_utf8(bytes).map_err(|_| Failure::Other("the server URL is not UTF-8".into()))?.trim();
    if s.is_empty() {
        return Err(Failure::Other("no server URL on stdin".into()));
    }
    if s.chars().any(char::is_control) {
        return Err(Failure::Other("the server URL contains control characters".into()));
    }
    Ok(s.to_string())
}

pub(crate) fn encode_credentials(c: &Credentials) -> String {
    format!("{}\n", serde_json::to_string(c).unwrap_or_default())
}

pub(crate) fn encode_failure(f: &Failure) -> String {
    match f {
        Failure::NotFound => format!("{NOT_FOUND}\n"),
        Failure::Other(m) => format!("{m}\n"),
    }
}

/// The registry host[:port] Docker names with `server` (bare host, or an https URL).
pub(crate) fn registry_of(server: &str) -> Option<String> {
    let p = urlmatch::parse(server)?;
    Some(if p.port == 443 { p.host } else { format!("{}:{}", p.host, p.port) })
}

/// The profile that claims `server`, and whether it is an ACR (by host or `acr = true`).
pub(crate) fn claim(file: &ConfigFile, server: &str) -> Option<(String, bool)> {
    let name = urlmatch::profile_in(file, server)?;
    let marked = file.profiles.get(&name).and_then(|p| p.acr).unwrap_or(false);
    let host = urlmatch::parse(server).map(|p| p.host).unwrap_or_default();
    Some((name, marked || acr::is_acr_host(&host)))
}

/// `list`: each registry a profile claims, with the user name `get` would answer.
pub(crate) fn list(file: &ConfigFile) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for p in file.profiles.values() {
        for url in &p.urls {
            let Some(parts) = urlmatch::parse(url) else { continue };
            let Some(registry) = registry_of(url) else { continue };
            let is_acr = p.acr.unwrap_or(false) || acr::is_acr_host(&parts.host);
            out.insert(registry, if is_acr { acr::ACR_USERNAME } else { TOKEN_USERNAME }.to_string());
        }
    }
    out
}

fn load_config() -> Result<ConfigFile> {
    match config::config_path() {
        Some(p) => config::load_file(&p),
        None => Ok(ConfigFile::default()),
    }
}

/// The broker's request for the registry Docker named, or None when no profile claims it
/// ("not mine"). Under the token agent its profiles decide, on its side of the socket; an
/// ACR's request names the registry, so the broker answers with ACR's exchanged token.
pub(crate) fn request(server: &str) -> Result<Option<broker::TokenRequest>> {
    if crate::agent::from_env().is_some() {
        // The agent decides whether it is an ACR; its registry token must be for this
        // registry (`registry_of`, as the agent names it), which the binding says.
        let binding = registry_of(server).map_or(crate::oauth::Binding::Bearer, crate::oauth::Binding::Registry);
        return Ok(Some(broker::TokenRequest { url: Some(server.to_string()), docker: true, binding, ..Default::default() }));
    }
    let file = load_config()?;
    let Some((profile, is_acr)) = claim(&file, server) else {
        trace!(1, "no profile claims {server}");
        return Ok(None);
    };
    let Some(registry) = registry_of(server) else { return Ok(None) };
    if is_acr {
        return acr::request(&profile, &registry).map(Some);
    }
    // Any other registry gets a token only for the API its profile names: never the
    // management token ACR's exchange uses, which would let the registry act as us.
    let url = urlmatch::parse(server).ok_or_else(|| Error::bad_input(format!("{server} is not a registry URL")))?;
    super::request_for_profile(&profile, &url).map(Some)
}

fn fail(e: Error) -> Failure {
    if super::unclaimed(&e) {
        return Failure::NotFound;
    }
    crate::log::line(format_args!("{}", error::one_line(&e)));
    Failure::Other(error::one_line(&e))
}

fn get(server: &str) -> std::result::Result<Credentials, Failure> {
    let req = request(server).map_err(fail)?.ok_or(Failure::NotFound)?;
    let cred = broker::get_token(&req).map_err(fail)?;
    let username = if cred.token_type == acr::TOKEN_TYPE { acr::ACR_USERNAME } else { TOKEN_USERNAME };
    Ok(Credentials { server_url: server.to_string(), username: username.into(), secret: cred.access_token })
}

/// Docker stores what `docker login` typed. For a registry a profile claims, the
/// credential comes from Entra, so accept and keep nothing (a password on disk is what we
/// replace). For any other registry refuse, so `docker login` reports that the password
/// was not saved instead of losing it silently (e.g. under a global `credsStore`).
fn store(input: &[u8]) -> std::result::Result<String, Failure> {
    let c: Credentials = serde_json::from_slice(input).map_err(|e| Failure::Other(format!("store expects {{\"ServerURL\",\"Username\",\"Secret\"}}: {e}")))?;
    let claimed = if crate::agent::from_env().is_some() {
        // Under the token agent its profiles claim registries: ask it as `get` does (its
        // cache answers; its allow-lists apply).
        match request(&c.server_url).and_then(|r| r.map(|r| broker::get_token(&r)).transpose()) {
            Ok(answer) => answer.is_some(),
            Err(e) if super::unclaimed(&e) => false,
            Err(e) => return Err(fail(e)),
        }
    } else {
        claim(&load_config().map_err(|e| Failure::Other(error::one_line(&e)))?, &c.server_url).is_some()
    };
    if !claimed {
        return Err(Failure::Other(format!(
            "entra-token keeps no passwords, and no profile claims {}: list only your Entra registries under credHelpers and keep another store for the rest",
            c.server_url
        )));
    }
    trace!(1, "store for {} accepted; its credential comes from Entra, nothing is kept", c.server_url);
    Ok(String::new())
}

/// `docker logout`: drops the registry's cached token (here, or on the token agent's side).
fn erase(server: &str) -> std::result::Result<(), Failure> {
    let req = request(server).map_err(fail)?.ok_or(Failure::NotFound)?;
    match broker::forget(&req, None) {
        Ok(true) => trace!(1, "dropped the cached token for {server}"),
        Ok(false) => trace!(1, "no cached token for {server}"),
        Err(e) => return Err(fail(e)),
    }
    Ok(())
}

fn read_input() -> std::result::Result<Vec<u8>, Failure> {
    super::read_stdin_limited(MAX_INPUT).map_err(|e| Failure::Other(error::one_line(&e)))
}

/// `docker-credential-entra-token COMMAND` / `entra-token docker COMMAND`.
pub(crate) fn run(command: Option<&str>) -> Result<ExitCode> {
    let outcome: std::result::Result<String, Failure> = match command {
        Some("get") => read_input().and_then(|b| decode_server(&b)).and_then(|s| get(&s)).map(|c| encode_credentials(&c)),
        Some("store") => read_input().and_then(|b| store(&b)),
        Some("erase") => read_input().and_then(|b| decode_server(&b)).and_then(|s| erase(&s)).map(|_| String::new()),
        Some("list") => load_config()
            .map(|f| format!("{}\n", serde_json::to_string(&list(&f)).unwrap_or_default()))
            .map_err(|e| Failure::Other(error::one_line(&e))),
        Some("version") => Ok(format!("docker-credential-entra-token (entra-token) {}\n", env!("CARGO_PKG_VERSION"))),
        Some(other) => Err(Failure::Other(format!("unknown credential action `{other}`"))),
        None => Err(Failure::Other("usage: docker-credential-entra-token <store|get|erase|list|version>".into())),
    };
    match outcome {
        Ok(out) => {
            super::write_stdout(out.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(f) => {
            super::write_stdout(encode_failure(&f).as_bytes())?;
            Ok(ExitCode::from(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> ConfigFile {
        config::parse_file(
            "[profiles.acr]\nflow=\"device-code\"\nurls=[\"contoso.azurecr.io\"]\n\
             [profiles.mirror]\nflow=\"device-code\"\nacr=true\nurls=[\"https://registry.contoso.test:5000\"]\n\
             [profiles.plain]\nflow=\"device-code\"\nurls=[\"https://images.contoso.test/\"]\n",
        )
        .unwrap()
    }

    #[test]
    fn wire_bytes() {
        let c = Credentials { server_url: "contoso.azurecr.io".into(), username: acr::ACR_USERNAME.into(), secret: crate::secret::Secret::new("rt".into()) };
        assert_eq!(encode_credentials(&c), "{\"ServerURL\":\"contoso.azurecr.io\",\"Username\":\"00000000-0000-0000-0000-000000000000\",\"Secret\":\"rt\"}\n");
        assert_eq!(encode_failure(&Failure::NotFound), "credentials not found in native keychain\n");
        assert_eq!(decode_server(b"contoso.azurecr.io\n").unwrap(), "contoso.azurecr.io");
        assert!(decode_server(b"\n").is_err());
        assert!(decode_server(b"a\x00b").is_err());
    }

    #[test]
    fn claims_only_configured_registries() {
        let f = file();
        assert_eq!(claim(&f, "contoso.azurecr.io"), Some(("acr".into(), true)));
        assert_eq!(claim(&f, "https://contoso.azurecr.io/v2/"), Some(("acr".into(), true)));
        assert_eq!(claim(&f, "registry.contoso.test:5000"), Some(("mirror".into(), true)));
        assert_eq!(claim(&f, "images.contoso.test"), Some(("plain".into(), false)));
        assert_eq!(claim(&f, "other.azurecr.io"), None);
        assert_eq!(claim(&f, "https://index.docker.io/v1/"), None);
        assert_eq!(claim(&f, "contoso.azurecr.io.evil.test"), None);
        assert_eq!(claim(&f, "http://contoso.azurecr.io"), None);
    }

    #[test]
    fn registry_names_and_list() {
        assert_eq!(registry_of("https://contoso.azurecr.io/v2/").as_deref(), Some("contoso.azurecr.io"));
        assert_eq!(registry_of("registry.contoso.test:5000").as_deref(), Some("registry.contoso.test:5000"));
        let l = list(&file());
        assert_eq!(l.get("contoso.azurecr.io").map(String::as_str), Some(acr::ACR_USERNAME));
        assert_eq!(l.get("registry.contoso.test:5000").map(String::as_str), Some(acr::ACR_USERNAME));
        assert_eq!(l.get("images.contoso.test").map(String::as_str), Some(TOKEN_USERNAME));
        assert_eq!(l.len(), 3);
    }
}
