//! cargo credential provider (cargo 1.74+): cargo runs `entra-token --cargo-plugin`, we
//! say hello (`{"v":[1]}`), read one JSON request per line and answer each in the
//! `{"Ok":…}`/`{"Err":…}` envelope. A registry whose index URL no profile's `urls`
//! claims gets `url-not-supported`, so cargo moves on to its next provider. The types
//! follow cargo's own `cargo-credential` crate: tagged enums, unknown fields ignored.

use crate::broker::{self, Credential, TokenRequest};
use crate::clock;
use crate::config;
use crate::error::{self, Error, Result};
use crate::log::trace;
use serde::{Deserialize, Serialize};
use std::process::ExitCode;

pub(crate) const PROTOCOL_VERSION: u32 = 1;

/// One request from cargo.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct CredentialRequest {
    pub v: u32,
    pub registry: RegistryInfo,
    #[serde(flatten)]
    pub action: Action,
    /// The extra words of `credential-provider = ["entra-token", …]`.
    #[serde(default)]
    pub args: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct RegistryInfo {
    pub index_url: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub(crate) enum Action {
    Get,
    Login,
    Logout,
    #[serde(other)]
    Unknown,
}

/// What we answer: `{"Ok":{…}}` or `{"Err":{…}}`.
#[derive(Debug, Serialize)]
pub(crate) enum Response {
    Ok(Answer),
    Err(ProviderError),
}

#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub(crate) enum Answer {
    Get { token: String, cache: &'static str, expiration: i64, operation_independent: bool },
    Login,
    Logout,
}

#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub(crate) enum ProviderError {
    /// Not our registry: cargo tries its next provider.
    UrlNotSupported,
    /// Nothing to log out of.
    NotFound,
    OperationNotSupported,
    Other {
        message: String,
        #[serde(rename = "caused-by", skip_serializing_if = "Vec::is_empty")]
        caused_by: Vec<String>,
    },
}

impl From<&Error> for ProviderError {
    fn from(e: &Error) -> Self {
        ProviderError::Other { message: e.to_string(), caused_by: e.hint().map(|h| vec![format!("hint: {h}")]).unwrap_or_default() }
    }
}

/// The flags cargo passes on from the config in `args`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ProviderArgs {
    pub profile: Option<String>,
    pub resource: Option<String>,
}

pub(crate) fn parse_args(args: &[String]) -> Result<ProviderArgs> {
    let mut out = ProviderArgs::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let slot = match flag {
            "--profile" | "-p" => &mut out.profile,
            "--resource" | "-r" => &mut out.resource,
            other => {
                return Err(Error::bad_input_hint(
                    format!("unknown argument '{other}' in the cargo credential-provider config"),
                    "entra-token takes --profile P and --resource R there",
                ));
            }
        };
        let value = inline.or_else(|| it.next().cloned()).filter(|v| !v.is_empty());
        *slot = Some(value.ok_or_else(|| Error::bad_input(format!("{flag} needs a value in the cargo credential-provider config")))?);
    }
    Ok(out)
}

/// Parses one request line.
pub(crate) fn decode(line: &[u8]) -> Result<CredentialRequest> {
    let req: CredentialRequest = serde_json::from_slice(line).map_err(|e| Error::bad_input("cargo sent a request entra-token cannot read").because(e))?;
    if req.v != PROTOCOL_VERSION {
        return Err(Error::bad_input(format!("cargo asked for credential protocol v{}, entra-token speaks v{PROTOCOL_VERSION}", req.v)));
    }
    Ok(req)
}

/// One answer line (with its newline).
pub(crate) fn encode(r: &Response) -> String {
    format!("{}\n", serde_json::to_string(r).unwrap_or_default())
}

/// The `get` answer for a credential: the whole Authorization header value, cached by
/// cargo for this invocation until a little before it expires.
pub(crate) fn get_answer(c: &Credential, now: i64) -> Answer {
    Answer::Get {
        token: format!("Bearer {}", c.access_token.expose()),
        cache: "expires",
        expiration: super::early_expiry(c.expires_on, now),
        operation_independent: true,
    }
}

/// `sparse+https://host/path/` → `https://host/path/`; cargo's `git` indexes stay as is.
pub(crate) fn index_url(raw: &str) -> &str {
    raw.strip_prefix("sparse+").unwrap_or(raw)
}

/// The token request for a registry, or None when it is not ours. With `--profile`, that
/// profile's own `urls` must claim the registry (so a provider configured globally never
/// hands crates.io an Entra token).
fn request_for(req: &CredentialRequest, args: &ProviderArgs) -> Result<Option<TokenRequest>> {
    let url = index_url(&req.registry.index_url);
    trace!(1, "cargo asks for registry {} ({url})", req.registry.name.as_deref().unwrap_or("?"));
    let Some(parts) = crate::urlmatch::parse(url) else {
        trace!(1, "{url} is not an https URL entra-token can match; not answering");
        return Ok(None);
    };
    // Under the token agent its profiles' `urls` decide, on its side of the socket (it
    // holds a named `--profile` to the same rule: that profile must claim the registry).
    if crate::agent::from_env().is_some() {
        return Ok(Some(TokenRequest { url: Some(parts.to_string()), profile: args.profile.clone(), resource: args.resource.clone(), ..TokenRequest::default() }));
    }
    let name = match &args.profile {
        None => match crate::urlmatch::profile_for(&parts)? {
            Some(name) => name,
            None => return Ok(None),
        },
        Some(name) => {
            let file = match config::config_path() {
                Some(p) => config::load_file(&p)?,
                None => config::ConfigFile::default(),
            };
            let claims = file.profiles.get(name).is_some_and(|p| p.urls.iter().any(|prefix| crate::urlmatch::under(prefix, &parts)));
            if !claims {
                trace!(1, "profile '{name}' does not list {url} in its urls; not answering");
                return Ok(None);
            }
            name.clone()
        }
    };
    // `--resource` in the provider's args names the target, so no default is needed.
    Ok(Some(match &args.resource {
        Some(r) => TokenRequest { profile: Some(name), resource: Some(r.clone()), ..TokenRequest::default() },
        None => super::request_for_profile(&name, &parts)?,
    }))
}

/// Handles one request: never fails, every problem becomes an `Err` answer.
pub(crate) fn respond(req: &CredentialRequest) -> Response {
    let outcome = (|| -> Result<Response> {
        let args = parse_args(&req.args)?;
        let Some(token_req) = request_for(req, &args)? else {
            return Ok(Response::Err(ProviderError::UrlNotSupported));
        };
        Ok(match req.action {
            Action::Get => Response::Ok(get_answer(&broker::get_token(&token_req)?, clock::now())),
            // Signing in is getting a token (a sign-in prompt appears on stderr if needed).
            Action::Login => {
                broker::get_token(&token_req)?;
                Response::Ok(Answer::Login)
            }
            Action::Logout => match crate::broker::forget(&token_req, None)? {
                true => Response::Ok(Answer::Logout),
                false => Response::Err(ProviderError::NotFound),
            },
            Action::Unknown => Response::Err(ProviderError::OperationNotSupported),
        })
    })();
    outcome.unwrap_or_else(|e| {
        if super::unclaimed(&e) {
            return Response::Err(ProviderError::UrlNotSupported);
        }
        crate::log::line(format_args!("{}", error::one_line(&e)));
        Response::Err(ProviderError::from(&e))
    })
}

/// Adapter: hello, then one answer per request line until cargo closes stdin.
pub(crate) fn serve() -> Result<ExitCode> {
    super::write_stdout(format!("{{\"v\":[{PROTOCOL_VERSION}]}}\n").as_bytes())?;
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    while let Some(line) = super::next_line(&mut input)? {
        let response = match decode(&line) {
            Ok(req) => respond(&req),
            Err(e) => Response::Err(ProviderError::from(&e)),
        };
        super::write_stdout(encode(&response).as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_cargo_requests_ignoring_unknown_fields() {
        let r = decode(
            br#"{"v":1,"registry":{"index-url":"sparse+https://h/reg/","name":"r","headers":["WWW-Authenticate: Cargo"],"x":1},"kind":"get","operation":"read","args":["--profile","p"],"future":true}"#,
        )
        .unwrap();
        assert_eq!(r.action, Action::Get);
        assert_eq!(index_url(&r.registry.index_url), "https://h/reg/");
        assert_eq!(r.registry.name.as_deref(), Some("r"));
        assert_eq!(r.args, vec!["--profile", "p"]);
        let r = decode(br#"{"v":1,"registry":{"index-url":"u"},"kind":"get","operation":"publish","name":"c","vers":"1.0.0","cksum":"ab"}"#).unwrap();
        assert_eq!(r.action, Action::Get);
        assert_eq!(decode(br#"{"v":1,"registry":{"index-url":"u"},"kind":"logout"}"#).unwrap().action, Action::Logout);
        assert_eq!(decode(br#"{"v":1,"registry":{"index-url":"u"},"kind":"login","token":"t"}"#).unwrap().action, Action::Login);
        assert_eq!(decode(br#"{"v":1,"registry":{"index-url":"u"},"kind":"frobnicate"}"#).unwrap().action, Action::Unknown);
    }

    #[test]
    fn refuses_other_versions_and_garbage() {
        assert!(decode(br#"{"v":2,"registry":{"index-url":"u"},"kind":"get"}"#).is_err());
        assert!(decode(b"{").is_err());
        assert!(decode(br#"{"v":1,"kind":"get"}"#).is_err());
    }

    #[test]
    fn encodes_the_envelope_exactly() {
        let c = Credential { from_cache: true, ..Credential::sample("eyJ", 2000 + 3600) };
        assert_eq!(
            encode(&Response::Ok(get_answer(&c, 2000))),
            "{\"Ok\":{\"kind\":\"get\",\"token\":\"Bearer eyJ\",\"cache\":\"expires\",\"expiration\":5300,\"operation_independent\":true}}\n"
        );
        assert_eq!(encode(&Response::Err(ProviderError::UrlNotSupported)), "{\"Err\":{\"kind\":\"url-not-supported\"}}\n");
        assert_eq!(encode(&Response::Err(ProviderError::NotFound)), "{\"Err\":{\"kind\":\"not-found\"}}\n");
        assert_eq!(encode(&Response::Ok(Answer::Logout)), "{\"Ok\":{\"kind\":\"logout\"}}\n");
        let e = Error::bad_input_hint("bad", "fix it");
        assert_eq!(encode(&Response::Err(ProviderError::from(&e))), "{\"Err\":{\"kind\":\"other\",\"message\":\"bad\",\"caused-by\":[\"hint: fix it\"]}}\n");
    }

    #[test]
    fn config_args() {
        let a = |v: &[&str]| parse_args(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(a(&[]).unwrap(), ProviderArgs::default());
        assert_eq!(a(&["--profile", "p", "--resource=r"]).unwrap(), ProviderArgs { profile: Some("p".into()), resource: Some("r".into()) });
        assert!(a(&["--profile"]).is_err());
        assert!(a(&["--secret", "x"]).is_err());
    }
}
