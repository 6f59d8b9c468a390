//! `entra-token agent`: like ssh-agent, for tokens. One process of the signed-in user
//! answers native-protocol requests on a Unix socket with its own profiles, cache and
//! sign-ins; a client whose `ENTRA_TOKEN_AGENT` names that socket (directly, forwarded
//! with `ssh -R`, or bind-mounted into a container) asks it instead of signing in. Only
//! access tokens cross the socket. This module holds what both ends share: the wire
//! format and where the socket lives; `server` and `client` are the two ends.

pub(crate) mod client;
#[cfg(unix)]
pub(crate) mod server;
mod policy;

use crate::broker::TokenRequest;
use crate::error::{Error, Result};
use clap::Args;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// The variable that sends every front end to an agent.
pub(crate) const ENV: &str = "ENTRA_TOKEN_AGENT";
/// The largest request the agent reads, and the longest it waits for one.
pub(crate) const MAX_REQUEST: u64 = 64 * 1024;
pub(crate) const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// The largest answer a client reads (a token is a few KiB).
pub(crate) const MAX_ANSWER: u64 = 256 * 1024;
/// How long a client waits for an answer: the agent may be showing a device code or a
/// confirmation to its person.
pub(crate) const ANSWER_DEADLINE: Duration = Duration::from_secs(600);

#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    /// The socket to listen on (default: $XDG_RUNTIME_DIR/entra-token/agent.sock). Its
    /// directory must be yours and closed to others (0700); a missing one is created so.
    #[arg(short = 'a', long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Serve only this profile (repeat for more; default: every profile).
    #[arg(long = "allow-profile", value_name = "PROFILE")]
    pub allow_profiles: Vec<String>,
    /// Serve only tokens for this resource: an alias (graph, arm, devops, …), an App ID URI
    /// or a GUID (repeat for more; default: every resource).
    #[arg(long = "allow-resource", value_name = "RESOURCE")]
    pub allow_resources: Vec<String>,
    /// Stop after this long (e.g. 8h, 30m), removing the socket, like `ssh-agent -t`.
    #[arg(short = 't', long, value_parser = crate::clock::parse_duration)]
    pub timeout: Option<Duration>,
    /// Ask on this terminal before answering each request (refused when nobody answers in time).
    #[arg(long)]
    pub confirm: bool,
}

/// The socket the client is told to use, or None when `ENTRA_TOKEN_AGENT` is unset or empty.
pub(crate) fn from_env() -> Option<PathBuf> {
    std::env::var_os(ENV).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// `$XDG_RUNTIME_DIR/entra-token/agent.sock`, else a per-user directory under the
/// temporary directory.
pub(crate) fn default_socket() -> PathBuf {
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("entra-token"),
        #[cfg(unix)]
        None => std::env::temp_dir().join(format!("entra-token-agent-{}", crate::peer::my_uid())),
        #[cfg(not(unix))]
        None => std::env::temp_dir().join("entra-token-agent"),
    };
    dir.join("agent.sock")
}

/// What a request carries beyond the native protocol's fields: the URL a tool asked
/// about (git, cargo, Bazel, Docker), so the agent's own profiles' `urls` pick the profile.
#[derive(Debug, Default, Deserialize)]
struct Extra {
    url: Option<String>,
}

/// The request line a client sends: the native protocol's request, plus `url`.
pub(crate) fn encode_request(req: &TokenRequest) -> String {
    let mut v = serde_json::json!({ "v": crate::protocols::native::VERSION, "min_validity": req.min_validity });
    let profile = req.profile.clone().or_else(|| std::env::var("ENTRA_TOKEN_PROFILE").ok().filter(|p| !p.trim().is_empty()));
    let fields: [(&str, serde_json::Value); 7] = [
        ("profile", profile.into()),
        ("resource", req.resource.clone().into()),
        ("scopes", req.scopes.clone().into()),
        ("tenant", req.tenant.clone().into()),
        ("claims", req.claims.clone().into()),
        ("flow", req.flow.clone().into()),
        ("url", req.url.clone().into()),
    ];
    for (k, val) in fields {
        if !val.is_null() {
            v[k] = val;
        }
    }
    if req.force_refresh {
        v["force_refresh"] = true.into();
    }
    format!("{v}\n")
}

/// Parses a request line: `url` taken out, the rest through the native protocol's decoder
/// (so its checks, and its refusal of unknown fields, are the agent's too).
pub(crate) fn decode_request(bytes: &[u8]) -> Result<TokenRequest> {
    let mut extra = Extra::default();
    let mut rest = bytes.to_vec();
    if let Ok(serde_json::Value::Object(mut map)) = serde_json::from_slice::<serde_json::Value>(bytes)
        && let Some(url) = map.remove("url")
    {
        extra = serde_json::from_value(serde_json::json!({ "url": url })).map_err(|_| Error::bad_input("the request's url must be a string"))?;
        rest = serde_json::Value::Object(map).to_string().into_bytes();
    }
    let mut req = crate::protocols::native::decode(&rest)?;
    if let Some(url) = extra.url {
        if url.len() > 2048 || url.chars().any(char::is_control) {
            return Err(Error::bad_input("the request's url is too long or has control characters"));
        }
        req.url = Some(url);
    }
    Ok(req)
}
