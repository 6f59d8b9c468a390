//! `entra-token agent`: like ssh-agent, for tokens. One process of the signed-in user
//! answers native-protocol requests on a Unix socket with its own profiles, cache and
//! sign-ins; a client whose `ENTRA_TOKEN_AGENT` names that socket (directly, forwarded
//! with `ssh -R`, or bind-mounted into a container) asks it instead of signing in. Only
//! access tokens cross the socket. This module holds what both ends share (the request
//! line, where the socket lives) and the client the broker calls; the agent itself is a
//! command (`commands::agent`).

pub(crate) mod client;

use crate::tokens::TokenRequest;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// The native protocol's version the request line speaks (protocol/README.md).
pub(crate) const VERSION: u32 = 1;
/// The variable that sends every front end to an agent.
pub(crate) use crate::env::AGENT as ENV;
/// The largest request the agent reads, and the longest it waits for one. (The agent
/// and its client speak over a Unix socket: these exist on Unix only.)
#[cfg(unix)]
pub(crate) const MAX_REQUEST: u64 = 64 * 1024;
#[cfg(unix)]
pub(crate) const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// The largest answer a client reads (a token is a few KiB).
#[cfg(unix)]
pub(crate) const MAX_ANSWER: u64 = 256 * 1024;
/// The longest a request may ask the agent to work on it (its `timeout`, and its
/// `wait_for_login`); a client waits for the answer no longer than its own `--timeout`
/// (plus its `--wait-for-login`).
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    /// The socket to listen on (default: $XDG_RUNTIME_DIR/entra-token/agent.sock, else
    /// agent.sock in a new directory of random name in the temporary directory). Its
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
    /// Ask before answering each request (refused when nobody answers in time): on this
    /// terminal, by a desktop notification with Allow/Deny (`notify`), or `auto` (the
    /// terminal when there is one, else a notification), which plain `--confirm` means.
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "auto", value_name = "HOW")]
    pub confirm: Option<Confirm>,
}

/// How the agent's person approves a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Confirm {
    /// The terminal when the agent has one, else a desktop notification.
    Auto,
    /// Ask on the agent's controlling terminal.
    Terminal,
    /// A freedesktop notification with Allow and Deny over the session D-Bus.
    Notify,
}

impl Confirm {
    // The agent itself (its log line, its `info` answer) is Unix-only.
    #[cfg_attr(not(unix), allow(dead_code))]
    pub(crate) fn name(self) -> &'static str {
        match self {
            Confirm::Auto => "auto",
            Confirm::Terminal => "terminal",
            Confirm::Notify => "notify",
        }
    }
}

/// The socket the client is told to use, or None when `ENTRA_TOKEN_AGENT` is unset or empty.
pub(crate) fn from_env() -> Option<PathBuf> {
    crate::env::path(ENV)
}

/// `$XDG_RUNTIME_DIR/entra-token/agent.sock`, else `agent.sock` in a new directory of
/// unpredictable name under the temporary directory (`entra-token-XXXXXXXX`, created
/// 0700 here, as ssh-agent's mkdtemp): a fixed name in a shared `/tmp` could be made
/// first by another user. The agent prints the path it chose.
#[cfg(unix)]
pub(crate) fn default_socket() -> crate::error::Result<PathBuf> {
    let dir = match crate::env::path(crate::env::XDG_RUNTIME_DIR) {
        Some(d) => d.join("entra-token"),
        None => crate::fs::create_unique_private_dir(&std::env::temp_dir(), "entra-token-")
            .map_err(|e| crate::error::Error::bad_input_hint(e.to_string(), "set XDG_RUNTIME_DIR, or pick a --socket in a directory of yours"))?,
    };
    Ok(dir.join("agent.sock"))
}

/// The request line a client sends: the native protocol's request, plus `url` (and
/// `docker`: the URL is a registry as Docker named it), the client's `timeout` and
/// `wait_for_login` in seconds, for an SSH certificate or a PoP token the public key (`ssh_public_key`, `pop_public_key`: a JWK), `prompts: false` from a caller that never prompts, az's
/// `subscription`, and for `op: "forget"` the rejected token's SHA-256 (`rejected_sha256`; never the token).
pub(crate) fn encode_request(req: &TokenRequest, forget: Option<Option<&str>>) -> String {
    let mut v = serde_json::json!({ "v": VERSION, "min_validity": req.min_validity, "timeout": req.timeout.as_secs().clamp(1, MAX_TIMEOUT.as_secs()) });
    // For a URL the agent's `urls` pick the profile (one the client names must claim the URL there).
    let profile = req.profile.clone().or_else(|| if req.url.is_none() { crate::env::var_untrimmed(crate::env::PROFILE) } else { None });
    let fields: [(&str, serde_json::Value); 8] = [
        ("profile", profile.into()),
        ("resource", req.resource.clone().into()),
        ("scopes", req.scopes.clone().into()),
        ("tenant", req.tenant.clone().into()),
        ("claims", req.claims.clone().into()),
        ("flow", req.flow.clone().into()),
        ("url", req.url.clone().into()),
        ("subscription", req.subscription.clone().into()),
    ];
    for (k, val) in fields {
        if !val.is_null() {
            v[k] = val;
        }
    }
    if req.force_refresh {
        v["force_refresh"] = true.into();
    }
    if req.docker {
        v["docker"] = true.into();
    }
    // An SSH certificate: only the public key goes to the agent (the certificate comes back).
    if let crate::oauth::Binding::SshCert(key) = &req.binding {
        v["ssh_public_key"] = key.jwk_value();
    }
    // A PoP token: only the public key goes (the bound token comes back; the SHR is signed here).
    if let crate::oauth::Binding::Pop(key) = &req.binding {
        v["pop_public_key"] = key.jwk_value();
    }
    // A caller that cannot prompt (`status --check`, `refresh`, `serve`, `azd --no-prompt`):
    // the agent must not start a sign-in on its own terminal for it.
    if !req.prompts {
        v["prompts"] = false.into();
    }
    // The agent's side is where a sign-in happens, so it is the one that waits for it.
    if let Some(w) = req.wait_for_login {
        v["wait_for_login"] = w.as_secs().min(MAX_TIMEOUT.as_secs()).into();
    }
    if let Some(rejected) = forget {
        v["op"] = "forget".into();
        if let Some(fp) = rejected {
            v["rejected_sha256"] = fp.into();
        }
    }
    format!("{v}\n")
}

/// `login` under ENTRA_TOKEN_AGENT: sign-ins belong to the agent's machine (as keys
/// belong to ssh-agent's), one made here would put a refresh token on the host the agent
/// keeps free of them, and no front end here would use it. Refused, as one line naming
/// the variable, before anything is read or asked.
pub(crate) fn refuse_local_sign_in() -> crate::error::Result<()> {
    match from_env() {
        None => Ok(()),
        Some(socket) => Err(crate::error::Error::bad_input_hint(
            format!("{ENV} is set ({}): this machine gets its tokens from the token agent, so a sign-in here would not be used", socket.display()),
            format!("run `entra-token login` on the agent's machine, or unset {ENV} to sign in on this one"),
        )),
    }
}
