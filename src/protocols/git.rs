//! git credential helper: `entra-token git get|store|erase`, or the same run as
//! `git-credential-entra-token`. git writes `key=value` lines on stdin; for `get` we answer
//! a Bearer credential (when git offers `capability[]=authtype`) or a password, but only
//! for URLs a profile's `urls` claims: for any other URL we print nothing, so a hostile
//! remote cannot harvest a token.

use crate::broker::{self, Credential};
use crate::error::{Error, Result};
use crate::log::{trace, warn};
use clap::Args;
use std::process::ExitCode;

const MAX_INPUT: u64 = 64 * 1024;
/// The username we answer when git did not name one (Azure DevOps accepts any).
pub(crate) const USERNAME: &str = "entra-token";

#[derive(Debug, Args)]
pub(crate) struct GitArgs {
    /// get, store or erase (git appends it); anything else is ignored.
    pub operation: String,
}

/// What git told us, reduced to what we use.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct CredentialRequest {
    pub protocol: Option<String>,
    pub host: Option<String>,
    pub path: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub credential: Option<String>,
    pub authtype: Option<String>,
    pub capabilities: Vec<String>,
}

impl CredentialRequest {
    /// The URL git asks about, normalised and checked by `urlmatch` (git sends the path
    /// already percent-decoded), or None without a protocol and host or when it is
    /// not one we would ever match.
    pub(crate) fn url(&self) -> Option<crate::urlmatch::UrlParts> {
        crate::urlmatch::from_components(self.protocol.as_deref()?, self.host.as_deref()?, self.path.as_deref())
    }

    pub(crate) fn offers_authtype(&self) -> bool {
        self.capabilities.iter().any(|c| c == "authtype")
    }
}

/// Parses git's `key=value` lines up to a blank line or the end. A NUL or a line without
/// `=` is bad input; unknown keys are ignored; an empty `key[]=` resets that list.
pub(crate) fn decode(bytes: &[u8]) -> Result<CredentialRequest> {
    if bytes.contains(&0) {
        return Err(Error::bad_input("the credential request contains a NUL byte"));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| Error::bad_input("the credential request is not UTF-8"))?;
    let mut req = CredentialRequest::default();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(Error::bad_input(format!("the credential request has a line without '=': {:?}", truncate(line))));
        };
        let value = value.to_string();
        match key {
            "protocol" => req.protocol = Some(value),
            "host" => req.host = Some(value),
            "path" => req.path = Some(value),
            "username" => req.username = Some(value),
            "password" => req.password = Some(value),
            "credential" => req.credential = Some(value),
            "authtype" => req.authtype = Some(value),
            "capability[]" if value.is_empty() => req.capabilities.clear(),
            "capability[]" => req.capabilities.push(value),
            _ => {}
        }
    }
    Ok(req)
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

/// The `get` answer. Bearer when git offered the authtype capability, else a password.
pub(crate) fn encode_get(req: &CredentialRequest, c: &Credential) -> Result<String> {
    let token = c.access_token.expose();
    if token.contains(['\n', '\r', '\0']) {
        return Err(Error::auth("the token contains a line break or NUL and cannot be passed to git", None));
    }
    let username = req.username.as_deref().filter(|u| !u.is_empty() && !u.contains(['\n', '\r', '\0'])).unwrap_or(USERNAME);
    Ok(if req.offers_authtype() {
        // ephemeral: a storage helper must not keep it; it expires within the hour.
        format!("capability[]=authtype\nauthtype=Bearer\ncredential={token}\nephemeral=1\npassword_expiry_utc={}\n", c.expires_on)
    } else {
        format!("username={username}\npassword={token}\npassword_expiry_utc={}\n", c.expires_on)
    })
}

pub(crate) fn run(args: &GitArgs) -> Result<ExitCode> {
    serve(&args.operation)
}

/// Adapter: one operation, stdin → broker → stdout.
pub(crate) fn serve(operation: &str) -> Result<ExitCode> {
    if !matches!(operation, "get" | "store" | "erase") {
        trace!(1, "ignoring git credential operation '{operation}'");
        return Ok(ExitCode::SUCCESS);
    }
    let req = decode(&super::read_stdin_limited(MAX_INPUT)?)?;
    let Some(url) = req.url() else {
        trace!(1, "git sent no protocol/host, or a URL no profile could claim; answering nothing");
        return Ok(ExitCode::SUCCESS);
    };
    let Some(token_req) = super::url_request(&url)? else {
        return Ok(ExitCode::SUCCESS);
    };
    match operation {
        "get" => match broker::get_token(&token_req) {
            Ok(cred) => super::write_stdout(encode_get(&req, &cred)?.as_bytes())?,
            Err(e) if super::unclaimed(&e) => trace!(1, "no profile of the token agent claims {url}; answering nothing"),
            Err(e) => return Err(e),
        },
        "erase" => {
            let rejected = req.credential.as_deref().or(req.password.as_deref()).map(broker::fingerprint);
            match broker::forget(&token_req, rejected.as_deref()) {
                Ok(true) => warn!("git rejected the token for {url}; dropped it from the cache"),
                Ok(false) => {}
                Err(e) if super::unclaimed(&e) => trace!(1, "no profile of the token agent claims {url}; nothing to drop"),
                Err(e) => return Err(e),
            }
        }
        // The token is already in our cache; storing it elsewhere is git's other helpers' business.
        _ => {}
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn cred() -> Credential {
        Credential::sample("eyJtok", 1_795_328_884)
    }

    #[test]
    fn decodes_until_the_blank_line_and_ignores_unknown_keys() {
        let r = decode(b"protocol=https\nhost=dev.azure.com:443\npath=org/_git/r\nwwwauth[]=Bearer x\nfuture=1\ncapability[]=authtype\ncapability[]=state\n\nhost=evil\n").unwrap();
        assert_eq!(r.url().map(|u| u.to_string()).as_deref(), Some("https://dev.azure.com/org/_git/r"));
        assert!(r.offers_authtype());
        assert_eq!(r.capabilities, vec!["authtype", "state"]);
        let r = decode(b"protocol=https\r\nhost=h\r\n").unwrap();
        assert_eq!(r.url().map(|u| u.to_string()).as_deref(), Some("https://h/"));
        assert_eq!(decode(b"").unwrap(), CredentialRequest::default());
        assert_eq!(decode(b"host=h").unwrap().url(), None);
    }

    #[test]
    fn empty_list_entry_resets_the_list() {
        let r = decode(b"capability[]=authtype\ncapability[]=\ncapability[]=state\n").unwrap();
        assert_eq!(r.capabilities, vec!["state"]);
        assert!(!r.offers_authtype());
    }

    #[test]
    fn rejects_nul_and_lines_without_equals() {
        assert_eq!(decode(b"protocol=https\nhost=h\0evil\n").unwrap_err().exit_code(), 1);
        assert!(decode(b"protocol=https\ngarbage\n").is_err());
        assert!(decode(&[0xff, b'=', b'\n']).is_err());
    }

    #[test]
    fn answers_bearer_only_when_offered() {
        let bearer = decode(b"protocol=https\nhost=h\ncapability[]=authtype\n").unwrap();
        assert_eq!(
            encode_get(&bearer, &cred()).unwrap(),
            "capability[]=authtype\nauthtype=Bearer\ncredential=eyJtok\nephemeral=1\npassword_expiry_utc=1795328884\n"
        );
        let basic = decode(b"protocol=https\nhost=h\n").unwrap();
        assert_eq!(encode_get(&basic, &cred()).unwrap(), "username=entra-token\npassword=eyJtok\npassword_expiry_utc=1795328884\n");
        let named = decode(b"protocol=https\nhost=h\nusername=alice\n").unwrap();
        assert!(encode_get(&named, &cred()).unwrap().starts_with("username=alice\n"));
    }

    #[test]
    fn refuses_a_token_that_would_inject_lines() {
        let mut c = cred();
        c.access_token = Secret::new("a\nusername=evil".into());
        assert!(encode_get(&CredentialRequest::default(), &c).is_err());
    }
}
