//! One module per wire format. Each is a pure codec (bytes in, values out) plus a thin
//! adapter that turns the caller's request into one `TokenRequest` for the broker and
//! the `Credential` back into the caller's format.

pub(crate) mod az;
pub(crate) mod azd;
pub(crate) mod bazel;
pub(crate) mod cargo;
pub(crate) mod docker;
pub(crate) mod get_token;
pub(crate) mod git;
pub(crate) mod kubectl;
pub(crate) mod native;

use crate::error::{Error, Result};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::process::ExitCode;

/// Multi-call entry points: the protocol a tool expects, chosen by the name we were run
/// under (a link such as `git-credential-entra-token`) or by cargo's `--cargo-plugin`.
/// None: parse the command line normally.
pub(crate) fn multicall(args: &[OsString]) -> Option<Result<ExitCode>> {
    // cargo runs `PROVIDER --cargo-plugin` whatever the provider's name is.
    if args.iter().skip(1).any(|a| a == "--cargo-plugin") {
        return Some(cargo::serve());
    }
    let argv0 = args.first().map(std::path::Path::new)?;
    let name = argv0.file_stem()?.to_str()?;
    // Windows names are case-insensitive: `cmd` may start us as `AZ.EXE`.
    let name = if cfg!(windows) { name.to_ascii_lowercase() } else { name.to_string() };
    let rest = || args[1..].to_vec();
    let first = || args.get(1).and_then(|a| a.to_str());
    match name.as_str() {
        "git-credential-entra-token" => Some(git::serve(first().unwrap_or(""))),
        "az" => Some(az::run(rest())),
        "azd" => Some(azd::run(rest())),
        "entra-token-bazel" => Some(bazel::run(first())),
        "docker-credential-entra-token" => Some(docker::run(first())),
        _ => None,
    }
}

/// How much earlier than a token's real expiry we tell a caller that keeps it (client-go,
/// cargo). client-go reuses a credential until that instant with no skew allowance, and
/// a request sent at the last second still has to reach the server and be validated
/// there. Five minutes also equals the broker's `min_validity`, so when the caller comes
/// back the cached token is exactly due and a fresh one is fetched.
pub(crate) const EXPIRY_MARGIN: i64 = 300;

/// The expiry to report: `EXPIRY_MARGIN` early, or halfway to expiry when the token has
/// less than twice the margin left (never earlier than now).
pub(crate) fn early_expiry(expires_on: i64, now: i64) -> i64 {
    let left = (expires_on - now).max(0);
    expires_on - EXPIRY_MARGIN.min(left / 2)
}

/// Azure DevOps (repos, Artifacts feeds): the resource URL-based protocols ask for when
/// the matching profile names none.
pub(crate) const AZURE_DEVOPS_RESOURCE: &str = "499b84ac-1321-427f-aa17-267ca6975798";

/// The token request for a URL a tool asked about, or None when no profile's `urls`
/// claims it (then the protocol answers "not mine"). The profile's own `resource` or
/// `scopes` win; otherwise `default_resource`.
pub(crate) fn url_request(url: &str, default_resource: &str) -> Result<Option<crate::broker::TokenRequest>> {
    // Under a token agent its profiles' `urls` decide, on its side of the socket.
    if crate::agent::from_env().is_some() {
        return Ok(Some(crate::broker::TokenRequest { url: Some(url.to_string()), resource: Some(default_resource.to_string()), ..Default::default() }));
    }
    let Some(name) = crate::urlmatch::profile_for_url(url)? else {
        crate::log::trace!(1, "no profile claims {url}; answering nothing");
        return Ok(None);
    };
    crate::log::trace!(1, "profile '{name}' claims {url}");
    let profile = crate::config::resolve(Some(&name))?;
    let has_target = profile.settings.resource.is_some() || profile.settings.scopes.as_ref().is_some_and(|s| !s.is_empty());
    Ok(Some(crate::broker::TokenRequest {
        profile: Some(name),
        resource: (!has_target).then(|| default_resource.to_string()),
        ..crate::broker::TokenRequest::default()
    }))
}

/// Reads all of stdin up to `limit` bytes; more is bad input, not an allocation.
pub(crate) fn read_stdin_limited(limit: u64) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::io::stdin().lock().take(limit + 1).read_to_end(&mut buf).map_err(|e| Error::general(format!("cannot read stdin: {e}")))?;
    if buf.len() as u64 > limit {
        return Err(Error::bad_input(format!("the request on stdin is larger than {} KiB", limit / 1024)));
    }
    Ok(buf)
}

/// Writes the protocol answer to stdout. A closed pipe is not our error.
pub(crate) fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::general(format!("cannot write to stdout: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn expiry_is_reported_early_but_never_in_the_past() {
        assert_eq!(super::early_expiry(1000 + 3600, 1000), 1000 + 3600 - 300);
        assert_eq!(super::early_expiry(1000 + 200, 1000), 1000 + 100);
        assert_eq!(super::early_expiry(900, 1000), 900);
    }
}
