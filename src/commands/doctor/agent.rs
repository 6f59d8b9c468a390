//! doctor's token-agent line: under ENTRA_TOKEN_AGENT every front end asks the agent, so
//! whether its socket answers, and what it serves, is what decides whether a token can be
//! had here; this machine's own profiles are then not used.

use super::{Check, fail, ok};
use std::time::Duration;

/// The front ends that ask the agent instead of signing in here.
const FRONT_ENDS: &str = "get-token, the native protocol, kubectl, git, cargo, Bazel, Docker, az/azd, serve, status";

/// The agent's line, or None when ENTRA_TOKEN_AGENT is unset.
pub(super) fn check(timeout: Duration) -> Option<Check> {
    let socket = crate::agent::from_env()?;
    let var = format!("{}={}", crate::agent::ENV, socket.display());
    Some(match crate::agent::client::info(&socket, timeout) {
        Ok(info) => {
            let all = |v: &[String]| if v.is_empty() { "all".to_string() } else { v.join(", ") };
            let mut c = ok("agent", format!("{var} answers: profiles {}; resources {}; confirmation {}", all(&info.profiles), all(&info.resources), info.confirm));
            c.details.push(format!("{FRONT_ENDS} ask it; `login` here is refused, and this machine's profiles are not used"));
            c
        }
        Err(e) => fail(
            "agent",
            format!("{var} does not answer: {}", crate::error::one_line(&e)),
            format!("start `entra-token agent` (and forward its socket here), or unset {} to use this machine's profiles", crate::agent::ENV),
        ),
    })
}
