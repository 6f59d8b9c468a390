//! Our own protocol, v1 and v2: one JSON request on stdin, one JSON answer (or error
//! object) on stdout. The spec, schemas and examples live in `protocol/` and the tests
//! load them. v2 is v1 plus the PoP fields: a field is added only with a new version, so
//! an older binary refuses the request by its version instead of answering without it.

use crate::broker::{Credential, TokenRequest};
use crate::clock;
use crate::error::{self, Error, Result};
use serde::{Deserialize, Serialize};
use std::process::ExitCode;

/// The answer version of the token agent's wire and `get-token --output json`, and the
/// version a request without `v` speaks.
pub(crate) const VERSION: u32 = 1;
/// The newest request version this binary speaks: v1's fields plus `V2_FIELDS`.
pub(crate) const LATEST: u32 = 2;
/// The request fields protocol v2 added (proof-of-possession); a v1 request naming one is
/// refused, with the version to send.
const V2_FIELDS: &[&str] = &["token_type", "pop_method", "pop_url", "pop_nonce"];
const MAX_REQUEST: u64 = 64 * 1024;
/// One day: a larger `min_validity` can never be satisfied by an Entra token.
const MAX_MIN_VALIDITY: i64 = 86_400;

/// The request fields this binary knows. Any other field is refused (see `check_fields`).
pub(crate) const FIELDS: &[&str] = &["v", "resource", "scopes", "profile", "tenant", "min_validity", "force_refresh", "claims", "flow", "token_type", "pop_method", "pop_url", "pop_nonce"];
/// Fields starting with this are the caller's own (trace ids, notes) and never read.
pub(crate) const PRIVATE_PREFIX: &str = "x-";

/// A request. A field outside `FIELDS` is refused by name, never ignored: a misspelt
/// `profil` or a field from a newer protocol would otherwise be answered with a token of
/// another identity or audience than the caller meant. `x-` fields are the caller's own.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct NativeRequest {
    pub v: Option<u32>,
    pub resource: Option<String>,
    pub scopes: Option<Scopes>,
    pub profile: Option<String>,
    pub tenant: Option<String>,
    pub min_validity: Option<i64>,
    #[serde(default)]
    pub force_refresh: bool,
    pub claims: Option<String>,
    pub flow: Option<String>,
    /// `bearer` (the default) or `pop`: then the answer's token is a signed request (SHR)
    /// for `pop_method` (default GET) and `pop_url` (docs/pop.md).
    pub token_type: Option<String>,
    pub pop_method: Option<String>,
    pub pop_url: Option<String>,
    /// The nonce a resource server's 401 asked for, signed instead of a random one.
    pub pop_nonce: Option<String>,
    /// Everything else, checked by `check_fields`.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// Refuses a field this binary does not know, naming it, the nearest known field, and all of them.
fn check_fields(other: &serde_json::Map<String, serde_json::Value>) -> Result<()> {
    let Some(field) = other.keys().find(|k| !k.starts_with(PRIVATE_PREFIX)) else { return Ok(()) };
    let shown: String = field.chars().take(40).flat_map(char::escape_debug).collect();
    // Within two edits (case aside): field names are short, and `Profile` is worth naming too,
    // which `suggest::closest` leaves out as "the same name".
    let near = FIELDS.iter().map(|f| (crate::suggest::distance(field, f), f)).filter(|(d, _)| *d <= 2).min_by_key(|(d, _)| *d).map(|(_, f)| f);
    let message = match near {
        Some(f) => format!("unknown request field `{shown}` (did you mean `{f}`?)"),
        None => format!("unknown request field `{shown}`"),
    };
    Err(Error::bad_input_hint(
        message,
        format!("known fields: {}; fields starting with `{PRIVATE_PREFIX}` are yours and ignored (`entra-token man` describes each)", FIELDS.join(", ")),
    ))
}

/// `scopes` as an array, or one space-separated string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Scopes {
    List(Vec<String>),
    Joined(String),
}

impl Scopes {
    fn into_vec(self) -> Vec<String> {
        match self {
            Scopes::List(v) => v,
            Scopes::Joined(s) => s.split_whitespace().map(str::to_string).collect(),
        }
    }
}

/// A successful answer.
#[derive(Debug, Serialize)]
pub(crate) struct NativeAnswer<'a> {
    pub v: u32,
    pub access_token: &'a str,
    pub token_type: &'a str,
    pub expires_on: i64,
    pub expires_at: String,
    pub expires_in: i64,
    pub profile: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<&'a str>,
    pub client_id: &'a str,
    pub scopes: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<&'a str>,
    pub from_cache: bool,
}

/// Parses a request body into the broker's request; a PoP request is refused (the token
/// agent, which reads requests with this, hands out bearer tokens only).
pub(crate) fn decode(bytes: &[u8]) -> Result<TokenRequest> {
    match decode_any(bytes)? {
        (req, None, _) => Ok(req),
        (_, Some(_), _) => Err(Error::bad_input("a PoP request (token_type pop) is answered only by entra-token on the machine that holds the profile")),
    }
}

/// The PoP binding a request asks for: None for a bearer request.
fn pop_of(req: &NativeRequest) -> Result<Option<crate::pop::Shr>> {
    match req.token_type.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("bearer") => match (&req.pop_method, &req.pop_url, &req.pop_nonce) {
            (None, None, None) => Ok(None),
            _ => Err(Error::bad_input(r#"pop_method, pop_url and pop_nonce go with "token_type":"pop""#)),
        },
        Some("pop") => {
            let url = req.pop_url.as_deref().ok_or_else(|| Error::bad_input(r#"a "token_type":"pop" request needs pop_url (the URL the signed request is for)"#))?;
            crate::pop::Shr::for_url(req.pop_method.as_deref().unwrap_or("GET"), url).and_then(|s| s.with_nonce(req.pop_nonce.as_deref())).map(Some).map_err(|why| Error::bad_input(format!("cannot make a PoP request: {why}")))
        }
        Some(other) => Err(Error::bad_input(format!("token_type '{}' is neither bearer nor pop", crate::log::escape(&other.chars().take(40).collect::<String>())))),
    }
}

/// Parses a request body into the broker's request, for a PoP request what its SHR binds,
/// and the protocol version the request spoke (its answer speaks it too).
pub(crate) fn decode_any(bytes: &[u8]) -> Result<(TokenRequest, Option<crate::pop::Shr>, u32)> {
    let text = std::str::from_utf8(bytes).map_err(|_| Error::bad_input("the request is not UTF-8"))?;
    if text.trim().is_empty() {
        return Err(Error::bad_input_hint("no request on stdin", r#"send one JSON object, e.g. {"resource":"graph"}"#));
    }
    let req: NativeRequest = serde_json::from_str(text).map_err(|e| {
        Error::bad_input_hint(format!("the request is not valid JSON for protocol v{VERSION}"), "run `entra-token man` for the request fields, e.g. {\"resource\":\"graph\"}").because(e)
    })?;
    let version = req.v.unwrap_or(VERSION);
    if !(VERSION..=LATEST).contains(&version) {
        return Err(Error::bad_input_hint(format!("unsupported protocol version v={version}"), format!("this entra-token speaks v={VERSION} to v={LATEST}")));
    }
    check_fields(&req.other)?;
    let named = [req.token_type.is_some(), req.pop_method.is_some(), req.pop_url.is_some(), req.pop_nonce.is_some()];
    if let Some(field) = V2_FIELDS.iter().zip(named).find_map(|(f, set)| set.then_some(f)).filter(|_| version < 2) {
        return Err(Error::bad_input_hint(format!("`{field}` is a protocol v2 field, and the request speaks v{version}"), r#"send "v": 2 with it (an entra-token older than v2 then refuses the request by its version)"#));
    }
    let min_validity = req.min_validity.unwrap_or(crate::broker::DEFAULT_MIN_VALIDITY);
    if !(0..=MAX_MIN_VALIDITY).contains(&min_validity) {
        return Err(Error::bad_input(format!("min_validity must be between 0 and {MAX_MIN_VALIDITY} seconds, not {min_validity}")));
    }
    let pop = pop_of(&req)?;
    let scopes = req.scopes.map(Scopes::into_vec);
    let req = TokenRequest {
        profile: req.profile,
        resource: req.resource,
        scopes,
        tenant: req.tenant,
        flow: req.flow,
        min_validity,
        force_refresh: req.force_refresh,
        claims: req.claims,
        ..TokenRequest::default()
    };
    Ok((req, pop, version))
}

/// The answer as one line of JSON, in v1.
pub(crate) fn encode(c: &Credential, now: i64) -> String {
    encode_in(VERSION, c, now)
}

/// The answer as one line of JSON, in the request's version `v` (v2 answers as v1 does).
fn encode_in(v: u32, c: &Credential, now: i64) -> String {
    let a = NativeAnswer {
        v,
        access_token: c.access_token.expose(),
        token_type: &c.token_type,
        expires_on: c.expires_on,
        expires_at: clock::rfc3339(c.expires_on),
        expires_in: (c.expires_on - now).max(0),
        profile: &c.profile,
        tenant_id: c.tenant_id.as_deref(),
        client_id: &c.client_id,
        scopes: &c.scopes,
        resource: c.resource.as_deref(),
        account: c.account.as_deref(),
        from_cache: c.from_cache,
    };
    serde_json::to_string(&a).unwrap_or_default()
}

/// The error object: `{"error":{"code","message","exit_code","hint"?,"aadsts"?,"correlation_id"?,"trace_id"?}}`.
pub(crate) fn encode_error(e: &Error) -> String {
    let mut inner = serde_json::Map::new();
    inner.insert("code".into(), e.code().into());
    inner.insert("message".into(), e.to_string().into());
    inner.insert("exit_code".into(), e.exit_code().into());
    if let Some(h) = e.hint() {
        inner.insert("hint".into(), h.into());
    }
    if let Some(aad) = e.aad() {
        inner.insert("error".into(), aad.error.clone().into());
        if !aad.codes.is_empty() {
            inner.insert("aadsts".into(), aad.codes.clone().into());
        }
        if let Some(c) = &aad.correlation_id {
            inner.insert("correlation_id".into(), c.clone().into());
        }
        if let Some(t) = &aad.trace_id {
            inner.insert("trace_id".into(), t.clone().into());
        }
        if let Some(c) = &aad.claims {
            inner.insert("claims".into(), c.clone().into());
        }
    }
    serde_json::json!({ "error": inner }).to_string()
}

/// Adapter: stdin → broker → stdout. Errors are answered on stdout too, with the exit code.
pub(crate) fn serve() -> Result<ExitCode> {
    let result = super::read_stdin_limited(MAX_REQUEST).and_then(|b| decode_any(&b)).and_then(|r| match r {
        (req, Some(shr), v) => super::pop::credential(&req, &shr).map(|c| (c, v)),
        (req, None, v) => crate::broker::get_token(&req).map(|c| (c, v)),
    });
    match result {
        Ok((c, v)) => {
            super::write_stdout(format!("{}\n", encode_in(v, &c, clock::now())).as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            super::write_stdout(format!("{}\n", encode_error(&e)).as_bytes())?;
            crate::log::line(format_args!("{}", error::one_line(&e)));
            Ok(ExitCode::from(e.exit_code()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_unknown_fields_by_name_and_ignores_private_ones() {
        let e = decode(br#"{"resource":"graph","profil":"ci"}"#).unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert_eq!(e.to_string(), "unknown request field `profil` (did you mean `profile`?)");
        assert!(e.hint().unwrap().contains("known fields: v, resource, scopes, profile"), "{:?}", e.hint());
        assert_eq!(decode(br#"{"future":true}"#).unwrap_err().to_string(), "unknown request field `future`");
        assert!(decode(br#"{"Profile":"ci"}"#).unwrap_err().to_string().contains("did you mean `profile`"));
        let r = decode(br#"{"resource":"graph","profile":"ci","x-trace":{"id":1},"min_validity":600}"#).unwrap();
        assert_eq!(r.resource.as_deref(), Some("graph"));
        assert_eq!(r.min_validity, 600);
        let r = decode(br#"{"scopes":"a/.default b"}"#).unwrap();
        assert_eq!(r.scopes.unwrap(), vec!["a/.default", "b"]);
    }

    #[test]
    fn rejects_bad_requests() {
        assert_eq!(decode(br#"{"v":3}"#).unwrap_err().exit_code(), 1);
        assert_eq!(decode(br#"{"v":0}"#).unwrap_err().exit_code(), 1);
        assert!(decode(b"").is_err());
        assert!(decode(b"[1]").is_err());
        assert!(decode(br#"{"min_validity":-1}"#).is_err());
        assert!(decode(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn fields_of_v2_need_v2() {
        for req in [&br#"{"resource":"graph","token_type":"pop","pop_url":"https://graph.microsoft.com/v1.0/me"}"#[..], br#"{"v":1,"resource":"graph","pop_nonce":"n"}"#] {
            let e = decode_any(req).unwrap_err();
            assert_eq!(e.exit_code(), 1);
            assert!(e.to_string().contains("is a protocol v2 field"), "{e}");
            assert!(e.hint().unwrap().contains(r#""v": 2"#));
        }
        let (_, pop, v) = decode_any(br#"{"v":2,"resource":"graph","token_type":"pop","pop_url":"https://graph.microsoft.com/v1.0/me"}"#).unwrap();
        assert!(pop.is_some());
        assert_eq!(v, 2);
        let (_, pop, v) = decode_any(br#"{"v":2,"resource":"graph"}"#).unwrap();
        assert!(pop.is_none());
        assert_eq!(v, 2);
        assert_eq!(decode_any(br#"{"resource":"graph"}"#).unwrap().2, 1);
        assert!(encode_in(2, &Credential::sample("t", 10), 0).starts_with(r#"{"v":2,"#));
    }
}
