//! Bazel's credential helper protocol (EngFlow credential-helper-spec): Bazel runs
//! `<helper> get` with `{"uri":"…"}` on stdin and sends the headers we print with its
//! request. Only URLs a profile's `urls` claims get a token; anything else gets `{}`
//! (no headers), so a build cannot be tricked into sending the token elsewhere. A
//! claimed URL gets a token for the profile's `resource` (Azure DevOps for Azure
//! DevOps's hosts); with no resource named the helper refuses rather than send a
//! cache server a token for another API.

use crate::broker::{self, Credential};
use crate::clock;
use crate::error::{self, Error, Result};
use crate::log::trace;
use clap::Args;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::process::ExitCode;

const MAX_REQUEST: u64 = 64 * 1024;

/// `entra-token bazel get` (Bazel passes only the command; the link name
/// `entra-token-bazel` lets `--credential_helper` point straight at us).
#[derive(Debug, Args)]
pub(crate) struct BazelArgs {
    /// The helper command; Bazel only ever sends `get`.
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

/// The request. Unknown fields are ignored, as the spec asks.
#[derive(Debug, Deserialize)]
pub(crate) struct GetCredentialsRequest {
    pub uri: String,
}

/// The response; `{}` when there is no credential for the URI.
#[derive(Debug, Default, Serialize)]
pub(crate) struct GetCredentialsResponse {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

pub(crate) fn decode(bytes: &[u8]) -> Result<GetCredentialsRequest> {
    let text = std::str::from_utf8(bytes).map_err(|_| Error::bad_input("the Bazel request is not UTF-8"))?;
    serde_json::from_str(text).map_err(|e| Error::bad_input_hint(r#"the Bazel request is not {"uri":"…"}"#, "Bazel sends one JSON object with a `uri`").because(e))
}

/// The answer for a credential; `expires` is when Bazel must stop reusing the header
/// (reported early, see `protocols::early_expiry`).
pub(crate) fn encode(c: &Credential, expires: i64) -> String {
    let mut r = GetCredentialsResponse::default();
    r.headers.insert("Authorization".into(), vec![format!("{} {}", c.token_type, c.access_token.expose())]);
    r.expires = Some(clock::rfc3339(expires));
    serde_json::to_string(&r).unwrap_or_default()
}

pub(crate) fn encode_none() -> String {
    serde_json::to_string(&GetCredentialsResponse::default()).unwrap_or_default()
}

/// Bazel asks for `grpcs://` (remote cache/execution) URIs too; those are TLS with the
/// same host and default port, so they match the profile's `https://` entries.
pub(crate) fn match_url(uri: &str) -> String {
    let trimmed = uri.trim();
    match trimmed.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("grpcs") => format!("https://{rest}"),
        _ => trimmed.to_string(),
    }
}

/// `entra-token bazel COMMAND` / `entra-token-bazel COMMAND`.
pub(crate) fn run(command: Option<&str>) -> Result<ExitCode> {
    match command {
        Some("get") => {}
        Some(other) => {
            return Err(Error::bad_input_hint(format!("unknown credential helper command '{other}'"), "Bazel runs `entra-token-bazel get`"));
        }
        None => {
            return Err(Error::bad_input_hint("no command given", "usage: entra-token-bazel get < {\"uri\":\"https://…\"}"));
        }
    }
    let request = decode(&super::read_stdin_limited(MAX_REQUEST)?)?;
    let claimed = match crate::urlmatch::parse(&match_url(&request.uri)) {
        Some(url) => super::url_request(&url)?,
        None => None,
    };
    let Some(req) = claimed else {
        super::write_stdout(format!("{}\n", encode_none()).as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    };
    let cred = match broker::get_token(&req) {
        Ok(cred) => cred,
        Err(e) if super::unclaimed(&e) => {
            trace!(1, "no profile of the token agent claims {}", request.uri);
            super::write_stdout(format!("{}\n", encode_none()).as_bytes())?;
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => {
            trace!(1, "no token for {}: {}", request.uri, error::one_line(&e));
            return Err(e);
        }
    };
    let expires = super::early_expiry(cred.expires_on, clock::now());
    super::write_stdout(format!("{}\n", encode(&cred, expires)).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred() -> Credential {
        Credential { from_cache: true, ..Credential::sample("tok", 1_795_328_884) }
    }

    #[test]
    fn response_bytes() {
        assert_eq!(encode(&cred(), 1_795_328_584), r#"{"headers":{"Authorization":["Bearer tok"]},"expires":"2026-11-22T06:23:04Z"}"#);
        assert_eq!(encode_none(), "{}");
    }

    #[test]
    fn request_ignores_unknown_fields_and_rejects_garbage() {
        assert_eq!(decode(br#"{"uri":"https://x/y","future":[1]}"#).unwrap().uri, "https://x/y");
        assert!(decode(b"{}").is_err());
        assert!(decode(b"https://x").is_err());
        assert!(decode(&[0xff]).is_err());
    }

    #[test]
    fn grpcs_matches_as_https_and_nothing_else_changes() {
        assert_eq!(match_url("grpcs://cache.example.com/x"), "https://cache.example.com/x");
        assert_eq!(match_url("grpc://cache.example.com"), "grpc://cache.example.com");
        assert!(crate::urlmatch::matches("https://cache.example.com/", &match_url("grpcs://cache.example.com")));
        assert!(!crate::urlmatch::matches("https://cache.example.com/", &match_url("grpc://cache.example.com")));
    }
}
