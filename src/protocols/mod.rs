//! One module per wire format. Each is a pure codec (bytes in, values out) plus a thin
//! adapter that turns the caller's request into one `TokenRequest` for the broker and
//! the `Credential` back into the caller's format.

pub(crate) mod az;
pub(crate) mod azd;
pub(crate) mod bazel;
pub(crate) mod cargo;
pub(crate) mod docker;
pub(crate) mod git;
pub(crate) mod keyring;
pub(crate) mod kubectl;
pub(crate) mod native;
pub(crate) mod nuget;
pub(crate) mod pop;

use crate::error::{Error, Result};
use std::ffi::OsString;
use std::io::{BufRead, Read, Write};
use std::process::ExitCode;

/// Multi-call entry points: the protocol a tool expects, chosen by the name we were run
/// under (a link such as `git-credential-entra-token`) or by cargo's `--cargo-plugin`.
/// None: parse the command line normally.
pub(crate) fn multicall(args: &[OsString]) -> Option<Result<ExitCode>> {
    // cargo runs `PROVIDER --cargo-plugin` whatever the provider's name is.
    if args.iter().skip(1).any(|a| a == "--cargo-plugin") {
        return Some(cargo::serve());
    }
    // NuGet runs a plugin with `-Plugin`; nuget.exe and MSBuild (.NET Framework) run the
    // file a plugin path names as it is, whatever its name.
    if args.get(1).is_some_and(|a| a.eq_ignore_ascii_case("-plugin")) {
        return Some(nuget::serve::serve());
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
        "nuget-plugin-entra-token" => Some(nuget::serve::run(args)),
        // pip and uv's `--keyring-provider subprocess` (a link `setup pip|uv` makes in a directory of its own).
        "keyring" => Some(keyring::run(rest())),
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
/// the matching profile names none and the URL is Azure DevOps's own.
pub(crate) const AZURE_DEVOPS_RESOURCE: &str = "499b84ac-1321-427f-aa17-267ca6975798";

/// The resource to ask for when a profile claiming `url` names none: Azure DevOps for
/// Azure DevOps's own hosts (repos, Artifacts feeds, which git, cargo and Bazel reach),
/// and nothing otherwise. A token for another API (Azure management, above all) is never
/// sent to a server that merely was listed in `urls`: it would let that server act as
/// the identity. ACR's token exchange picks its own audience (`crate::acr`).
pub(crate) fn default_resource_for(url: &crate::urlmatch::UrlParts) -> Option<&'static str> {
    let h = url.host.as_str();
    let azure_devops = h == "dev.azure.com" || h.ends_with(".dev.azure.com") || (h.ends_with(".visualstudio.com") && h.len() > ".visualstudio.com".len());
    (azure_devops && url.port == 443).then_some(AZURE_DEVOPS_RESOURCE)
}

/// The token request for a URL a tool asked about, or None when no profile's `urls`
/// claims it (then the protocol answers "not mine"). The profile's own `resource` or
/// `scopes` win; otherwise `default_resource_for`, and without one, a refusal asking
/// for `resource` (exit 1).
pub(crate) fn url_request(url: &crate::urlmatch::UrlParts) -> Result<Option<crate::broker::TokenRequest>> {
    // Under a token agent its profiles' `urls` decide, on its side of the socket.
    if crate::agent::from_env().is_some() {
        return Ok(Some(crate::broker::TokenRequest { url: Some(url.to_string()), ..Default::default() }));
    }
    let Some(name) = crate::urlmatch::profile_for(url)? else {
        crate::log::trace!(1, "no profile claims {url}; answering nothing");
        return Ok(None);
    };
    crate::log::trace!(1, "profile '{name}' claims {url}");
    request_for_profile(&name, url).map(Some)
}

/// The token agent's "none of my profiles claims that URL": for the front ends the same
/// "not mine" as no local profile claiming it (git and Bazel answer nothing, cargo "URL
/// not supported", Docker "not found"), never an error line for another server's URL.
pub(crate) fn unclaimed(e: &Error) -> bool {
    matches!(e, Error::Agent { code: "profile_not_found", .. })
}

/// The token request of profile `name` for `url` (which it claims): its own target, or
/// the URL's default resource, or a refusal naming the missing `resource`.
pub(crate) fn request_for_profile(name: &str, url: &crate::urlmatch::UrlParts) -> Result<crate::broker::TokenRequest> {
    let profile = crate::config::resolve(Some(name))?;
    let has_target = profile.settings.resource.is_some() || profile.settings.scopes.as_ref().is_some_and(|s| !s.is_empty());
    let resource = match (has_target, default_resource_for(url)) {
        (true, _) => None,
        (false, Some(r)) => Some(r.to_string()),
        (false, None) => return Err(missing_resource(name, url)),
    };
    Ok(crate::broker::TokenRequest { profile: Some(name.to_string()), resource, ..crate::broker::TokenRequest::default() })
}

/// The refusal when a profile claims a server but does not say which API its tokens are for.
pub(crate) fn missing_resource(name: &str, url: &crate::urlmatch::UrlParts) -> Error {
    Error::bad_input_hint(
        format!("profile '{name}' claims {url} but names no `resource`, and entra-token sends a server only a token meant for it"),
        format!("add `resource = \"<the server's App ID URI or GUID>\"` to [profiles.{name}]"),
    )
}

/// Reads all of stdin up to `limit` bytes; more is bad input, not an allocation.
pub(crate) fn read_stdin_limited(limit: u64) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::io::stdin().lock().take(limit + 1).read_to_end(&mut buf).map_err(|e| Error::caused("cannot read stdin", e))?;
    if buf.len() as u64 > limit {
        return Err(Error::bad_input(format!("the request on stdin is larger than {} KiB", limit / 1024)));
    }
    Ok(buf)
}

/// Longest line a JSON-lines protocol (cargo's, NuGet's) reads; a longer one arrives cut
/// into pieces, which its decoder refuses.
const MAX_LINE: u64 = 1024 * 1024;

/// The next non-blank line of a JSON-lines protocol's input (at most `MAX_LINE` bytes, its
/// line end kept); None when the caller closed it.
pub(crate) fn next_line(input: &mut impl BufRead) -> Result<Option<Vec<u8>>> {
    loop {
        let mut line = Vec::new();
        let n = Read::take(&mut *input, MAX_LINE).read_until(b'\n', &mut line).map_err(|e| Error::caused("cannot read stdin", e))?;
        if n == 0 {
            return Ok(None);
        }
        if !line.iter().all(u8::is_ascii_whitespace) {
            return Ok(Some(line));
        }
    }
}

/// Writes the protocol answer to stdout. A closed pipe is not our error.
pub(crate) fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::caused("cannot write to stdout", e)),
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
