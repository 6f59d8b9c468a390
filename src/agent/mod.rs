//! `entra-token agent`: like ssh-agent, for tokens. One process of the signed-in user
//! answers native-protocol requests on a Unix socket with its own profiles, cache and
//! sign-ins; a client whose `ENTRA_TOKEN_AGENT` names that socket (directly, forwarded
//! with `ssh -R`, or bind-mounted into a container) asks it instead of signing in. Only
//! access tokens cross the socket. This module holds what both ends share (the request
//! line, where the socket lives) and the client the broker calls; the agent itself is a
//! command (`commands::agent`).

pub(crate) mod client;

use crate::broker::TokenRequest;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// The native protocol's version the request line speaks (protocol/README.md).
pub(crate) const VERSION: u32 = 1;
/// The variable that sends every front end to an agent.
pub(crate) use crate::env::AGENT as ENV;
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
    crate::env::path(ENV)
}

/// `$XDG_RUNTIME_DIR/entra-token/agent.sock`, else a per-user directory under the
/// temporary directory.
pub(crate) fn default_socket() -> PathBuf {
    let dir = match crate::env::path(crate::env::XDG_RUNTIME_DIR) {
        Some(d) => d.join("entra-token"),
        #[cfg(unix)]
        None => std::env::temp_dir().join(format!("entra-token-agent-{}", crate::peer::my_uid())),
        #[cfg(not(unix))]
        None => std::env::temp_dir().join("entra-token-agent"),
    };
    dir.join("agent.sock")
}

/// The request line a client sends: the native protocol's request, plus `url`.
pub(crate) fn encode_request(req: &TokenRequest) -> String {
    let mut v = serde_json::json!({ "v": VERSION, "min_validity": req.min_validity });
    let profile = req.profile.clone().or_else(|| crate::env::var_untrimmed(crate::env::PROFILE));
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
