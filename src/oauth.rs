//! The OAuth wire shared by every Entra grant: send a form to the token endpoint, parse
//! the answer (numbers as strings or integers, v1 or v2), and turn an error body into a
//! specific message with the AADSTS code, the correlation id and a hint.

use crate::clock::{self, Deadline};
use crate::error::{AadError, Error, Result};
use crate::http::{Http, Reply, RetryPolicy};
use crate::log::trace;
use crate::secret::Secret;

mod binding;
use serde::{Deserialize, Deserializer};

/// Default `min_validity`: a token with less than five minutes left is treated as expired.
pub(crate) const DEFAULT_MIN_VALIDITY: i64 = 300;

/// A successful token answer, normalised to absolute times.
#[derive(Debug, Clone)]
pub(crate) struct TokenReply {
    pub access_token: Secret<String>,
    pub token_type: String,
    pub expires_on: i64,
    /// When to refresh early (from `refresh_in`, or half-life for long-lived tokens).
    pub refresh_on: Option<i64>,
    pub refresh_token: Option<Secret<String>>,
    pub id_token: Option<Secret<String>>,
    pub client_info: Option<String>,
    pub resource: Option<String>,
    /// The `foci` flag: this refresh token works for the family of Microsoft clients.
    pub foci: Option<String>,
}

#[derive(Deserialize)]
struct Wire {
    access_token: Option<Secret<String>>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default, deserialize_with = "num")]
    expires_in: Option<i64>,
    #[serde(default, deserialize_with = "num")]
    expires_on: Option<i64>,
    #[serde(default, deserialize_with = "num")]
    refresh_in: Option<i64>,
    refresh_token: Option<Secret<String>>,
    id_token: Option<Secret<String>>,
    client_info: Option<String>,
    resource: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    foci: Option<String>,
}

/// The largest magnitude a number from outside keeps: about 34,000 years of seconds.
/// [`num`] saturates to it, so any sum or difference of such a number and the clock
/// stays far inside `i64` (2^63-1, 1e300 or "1e999" become this, never a wrap).
pub(crate) const MAX_NUM: i64 = 1 << 40;

/// Entra's v1 endpoints and managed identity send numbers as strings. Every number a
/// token answer, az's cache or a device code answer carries is read here, saturated to
/// ±[`MAX_NUM`]; fractions are cut, and what is no number (NaN, text) is absent.
pub(crate) fn num<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        I(i64),
        U(u64),
        F(f64),
        S(String),
    }
    let float = |f: f64| (!f.is_nan()).then(|| f.clamp(-(MAX_NUM as f64), MAX_NUM as f64) as i64);
    Ok(match Option::<N>::deserialize(d)? {
        None => None,
        Some(N::I(i)) => Some(i.clamp(-MAX_NUM, MAX_NUM)),
        Some(N::U(u)) => Some(u.min(MAX_NUM as u64) as i64),
        Some(N::F(f)) => float(f),
        Some(N::S(s)) => {
            let s = s.trim();
            s.parse::<i64>().ok().map(|i| i.clamp(-MAX_NUM, MAX_NUM)).or_else(|| s.parse::<f64>().ok().and_then(float))
        }
    })
}

fn opt_string<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// Parses a 200 answer from a token endpoint (v1, v2, managed identity, az-style).
pub(crate) fn parse_token_reply(body: &[u8], url: &str, now: i64) -> Result<TokenReply> {
    let bad = |what: &str| Error::Network {
        url: url.to_string(),
        message: format!("the answer is not a token response ({what})"),
        hint: Some("check that the authority URL points at Entra, not a proxy or login page".into()),
    };
    let w: Wire = serde_json::from_slice(body).map_err(|_| bad(if body.trim_ascii_start().starts_with(b"<") { "HTML" } else { "not JSON" }))?;
    let access_token = w.access_token.filter(|t| !t.expose().is_empty()).ok_or_else(|| bad("no access_token"))?;
    let expires_on = match (w.expires_on, w.expires_in) {
        (Some(on), _) if on > 0 => on,
        (_, Some(inn)) if inn > 0 => now + inn,
        _ => return Err(bad("no expires_in or expires_on")),
    };
    let refresh_on = w.refresh_in.filter(|r| *r > 0).map(|r| now + r);
    accept(
        TokenReply {
            access_token,
            token_type: w.token_type.unwrap_or_default(),
            expires_on,
            refresh_on,
            refresh_token: w.refresh_token.filter(|t| !t.expose().is_empty()),
            id_token: w.id_token,
            client_info: w.client_info,
            resource: w.resource,
            foci: w.foci,
        },
        now,
        url,
    )
}

/// No access token is held longer than this, whatever its answer claims: Entra's live
/// at most about a day, managed identity's a day; a longer claim is cut to a week.
pub(crate) const MAX_LIFETIME: i64 = 7 * 86_400;

/// The longest token (access, refresh or id) accepted: Entra's largest, with many group
/// claims, are a few KiB; the bound keeps headers and caches sane.
pub(crate) const MAX_TOKEN_LEN: usize = 32 * 1024;

/// The one gate every token from outside passes before anyone uses it (token endpoints,
/// managed identity, az's cache and az's output): the token is a bearer token's
/// characters (RFC 6750 b64token: letters, digits and `-._~+/=`, which JWTs and opaque
/// tokens use), bounded; the type is `Bearer` or `pop`, spelled canonically; times are
/// clamped so that the expiry lies within [`MAX_LIFETIME`] and the refresh time before it.
/// A refusal names the field and what was wrong, never the value.
pub(crate) fn accept(mut t: TokenReply, now: i64, url: &str) -> Result<TokenReply> {
    let bad = |message: String| Error::Network {
        url: url.to_string(),
        message,
        hint: Some("the token source answered with a malformed token; check that the URL points at Entra (or the real managed identity endpoint), not a proxy or stand-in".into()),
    };
    check_token("access_token", t.access_token.expose()).map_err(bad)?;
    for (name, v) in [("refresh_token", &t.refresh_token), ("id_token", &t.id_token)] {
        if let Some(v) = v {
            check_token(name, v.expose()).map_err(bad)?;
        }
    }
    t.token_type = token_type(&t.token_type).map_err(bad)?;
    let latest = bounded_expiry(i64::MAX, now);
    if t.expires_on > latest {
        trace!(1, "{url} claimed a token lifetime of {}s; holding it at most {MAX_LIFETIME}s", t.expires_on.saturating_sub(now));
        t.expires_on = latest;
    }
    let lifetime = t.expires_on - now;
    t.refresh_on = match t.refresh_on {
        Some(r) if r > now && r < t.expires_on => Some(r),
        _ if lifetime >= 2 * 3600 => Some(now + lifetime / 2),
        _ => None,
    };
    Ok(t)
}

/// An expiry from outside, held to at most [`MAX_LIFETIME`] from now.
pub(crate) fn bounded_expiry(expires_on: i64, now: i64) -> i64 {
    expires_on.min(now.saturating_add(MAX_LIFETIME))
}

/// A token's characters: RFC 6750's b64token set (`=` anywhere), 1..=MAX_TOKEN_LEN bytes.
/// (Also the gate of answers that are not token endpoint replies: ACR's exchange.)
pub(crate) fn check_token(name: &str, token: &str) -> std::result::Result<(), String> {
    if token.is_empty() {
        return Err(format!("the {name} is empty"));
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(format!("the {name} is {} bytes, more than the {MAX_TOKEN_LEN} any real token has", token.len()));
    }
    match token.bytes().position(|b| !(b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b))) {
        Some(i) => Err(format!("the {name} has a character no token has (byte {i}: {})", describe_byte(token.as_bytes()[i]))),
        None => Ok(()),
    }
}

fn describe_byte(b: u8) -> String {
    match b {
        b'\r' => "CR".into(),
        b'\n' => "LF".into(),
        0 => "NUL".into(),
        b' ' => "space".into(),
        b if b.is_ascii_graphic() => format!("'{}'", b as char),
        b => format!("0x{b:02x}"),
    }
}

/// `Bearer` (the default when absent), `pop` or `ssh-cert`, whatever their case; anything
/// else is refused. Which of them a request may get is [`Binding::check`]'s to say.
fn token_type(t: &str) -> std::result::Result<String, String> {
    match t.trim() {
        "" => Ok("Bearer".into()),
        t if t.eq_ignore_ascii_case("bearer") => Ok("Bearer".into()),
        t if t.eq_ignore_ascii_case("pop") => Ok("pop".into()),
        t if t.eq_ignore_ascii_case(SSH_CERT) => Ok(SSH_CERT.into()),
        t => Err(format!("the token_type '{}' is none of Bearer, pop, ssh-cert", crate::log::escape(&t.chars().take(40).collect::<String>()))),
    }
}

pub(crate) use binding::{Binding, SSH_CERT, SshKey};

/// POSTs a grant to a token endpoint and returns the parsed answer or a specific error.
pub(crate) fn redeem(http: &Http, url: &str, form: &[(&str, &str)], deadline: Deadline) -> Result<TokenReply> {
    let reply = http.post_form(url, form, &[("Accept", "application/json")], deadline, RetryPolicy::TOKEN)?;
    if reply.status == 200 {
        return parse_token_reply(&reply.body, url, clock::now());
    }
    Err(redact(error_from_reply(&reply, url), form))
}

/// Form fields whose values are secrets.
const SECRET_FIELDS: &[&str] = &["client_secret", "client_assertion", "refresh_token", "password", "code", "code_verifier", "device_code", "assertion"];

/// A server (or a proxy in its place) may echo what we sent in its error text; cut any
/// secret we sent out of that text before it reaches a log or a JSON answer. Hints are
/// our own words and stay as they are; values under 8 bytes are too short to tell apart.
fn redact(e: Error, form: &[(&str, &str)]) -> Error {
    let secrets: Vec<&str> = form.iter().filter(|(k, v)| SECRET_FIELDS.contains(k) && v.len() >= 8).map(|(_, v)| *v).collect();
    let scrub = |s: String| secrets.iter().fold(s, |s, secret| if s.contains(secret) { s.replace(secret, "REDACTED") } else { s });
    match e {
        Error::Auth { message, aad, hint } => Error::Auth {
            message: scrub(message),
            aad: aad.map(|a| Box::new(AadError {
                error: scrub(a.error),
                description: scrub(a.description),
                correlation_id: a.correlation_id.map(scrub),
                trace_id: a.trace_id.map(scrub),
                claims: a.claims.map(scrub),
                suberror: a.suberror.map(scrub),
                codes: a.codes,
            })),
            hint,
        },
        Error::Network { url, message, hint } => Error::Network { url, message: scrub(message), hint },
        other => other,
    }
}

#[derive(Deserialize, Default)]
struct WireError {
    error: Option<String>,
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<u32>,
    correlation_id: Option<String>,
    trace_id: Option<String>,
    claims: Option<String>,
    suberror: Option<String>,
}

/// A non-200 answer: an Entra error body becomes `Error::Auth` with a hint; anything else a network error.
pub(crate) fn error_from_reply(reply: &Reply, url: &str) -> Error {
    let parsed: Option<WireError> = serde_json::from_slice(&reply.body).ok();
    // A server error that outlasted the retries is the service's state, not a refusal of
    // these credentials, even in Entra's error shape (`temporarily_unavailable`).
    if reply.status >= 500 {
        let said = parsed.as_ref().and_then(|w| w.error.as_deref()).map(|e| format!(" ({})", crate::log::escape(e))).unwrap_or_default();
        return Error::Network {
            url: url.to_string(),
            message: format!("the service answered HTTP {}{said} to every attempt", reply.status),
            hint: Some("the service is unavailable for now; retry later (if it persists, a proxy or gateway may be answering instead of Entra)".into()),
        };
    }
    match parsed.filter(|w| w.error.is_some()) {
        Some(w) => {
            let description = w.error_description.clone().unwrap_or_default();
            let first = description.lines().next().unwrap_or("").trim();
            // Entra appends "Trace ID: … Correlation ID: … Timestamp: …" to the first line.
            let first = first.split(" Trace ID:").next().unwrap_or(first).trim().to_string();
            let mut codes = w.error_codes.clone();
            if codes.is_empty()
                && let Some(code) = first.strip_prefix("AADSTS").and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next()).and_then(|d| d.parse().ok())
            {
                codes.push(code);
            }
            let aad = AadError {
                error: w.error.clone().unwrap_or_default(),
                codes,
                correlation_id: w.correlation_id,
                trace_id: w.trace_id,
                description: first,
                claims: w.claims,
                suberror: w.suberror,
            };
            trace!(1, "{url} refused: {} {:?}", aad.error, aad.codes);
            auth_error(aad)
        }
        None if reply.status == 429 => Error::Network {
            url: url.to_string(),
            message: "throttled (429)".into(),
            hint: Some(format!("wait {}s and try again; reuse cached tokens instead of forcing new ones", reply.retry_after.unwrap_or(60))),
        },
        None => Error::Network {
            url: url.to_string(),
            message: format!("unexpected HTTP {} answer", reply.status),
            hint: Some("check the authority URL; a proxy or gateway may be answering instead of Entra".into()),
        },
    }
}

/// Maps an Entra error to our message and a hint of what to do.
pub(crate) fn auth_error(aad: AadError) -> Error {
    let code = aad.codes.first().copied();
    let hint = code.and_then(hint_for).map(str::to_string).or_else(|| match aad.error.as_str() {
        "invalid_client" => Some("check client_id and the client secret or certificate".to_string()),
        "invalid_scope" => Some("check the resource or scopes you asked for".to_string()),
        "invalid_grant" => Some("sign in again".to_string()),
        _ => None,
    });
    let message = match code {
        Some(c) if !aad.description.contains(&format!("AADSTS{c}")) => format!("entra refused the request: AADSTS{c}: {}", aad.description),
        _ if aad.description.is_empty() => format!("entra refused the request: {}", aad.error),
        _ => format!("entra refused the request: {}", aad.description),
    };
    let message = match &aad.correlation_id {
        Some(id) => format!("{message} (correlation id {id})"),
        None => message,
    };
    Error::Auth { message, aad: Some(Box::new(aad)), hint }
}

/// A specific hint for the AADSTS codes people hit most.
pub(crate) fn hint_for(code: u32) -> Option<&'static str> {
    Some(match code {
        7000215 => "the client secret is wrong: use the secret's value (not its ID) from the app registration",
        7000222 => "the client secret has expired: create a new one under Certificates & secrets and update the profile",
        700016 => "the application was not found in this tenant: check client_id and tenant",
        90002 => "the tenant was not found: check the tenant id or domain",
        65001 => "the app lacks consent for this resource: ask an admin to grant consent, or sign in interactively once",
        65002 => "this first-party client is not pre-authorized for the resource: use your own app registration",
        50076 | 50079 => "multi-factor authentication is required: use --flow device-code or --flow interactive",
        70043 | 700082 | 50173 | 70008 => "the refresh token is no longer valid: sign in again with `entra-token login`",
        50126 => "wrong username or password",
        700022 => "ask for scopes of one resource per request",
        70021 | 700211 | 700212 | 700213 => "no federated credential on the app matches the token's issuer, subject and audience: check the app's federated credentials",
        700027 | 700024 => "the client assertion was rejected: check the certificate is registered on the app, or the federated credential's subject and audience",
        50196 => "too many identical requests: reuse cached tokens instead of forcing new ones",
        9001023 | 90014 => "this grant needs a real tenant: set `tenant` to your tenant id or domain, not common/organizations",
        1002012 | 70011 => "the scope is invalid: for app tokens use `<resource>/.default`",
        50034 => "the user account does not exist in this tenant",
        50020 | 90072 => "the account is not a member of this tenant: sign in with an account of the tenant, or ask its admin to invite you as a guest",
        50053 => "the account is locked after too many failed sign-ins",
        53003 => "blocked by Conditional Access: sign in interactively from a compliant device",
        700007 => "Entra refused another Microsoft client's family sign-in for this client: sign in with this profile's own client (`entra-token login`)",
        _ => return None,
    })
}

/// The hint for a refusal of a stored sign-in's refresh token at a tenant. `hint_for`
/// advises on the grant the profile's flow made (MFA under a password: use a flow that
/// can do MFA); here a person must sign in at that tenant, and `login` is the command
/// that does it (`entra-token login -p P --tenant T`).
pub(crate) fn hint_for_stored_sign_in(code: u32, tenant: &str, login: &str) -> Option<String> {
    match code {
        50076 | 50079 => Some(format!("tenant {tenant} requires multi-factor authentication: sign in there with `{login}`")),
        _ => hint_for(code).map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_string_numbers() {
        let r = parse_token_reply(br#"{"access_token":"a","token_type":"Bearer","expires_in":"3599","expires_on":"2000","resource":"r"}"#, "u", 1000).unwrap();
        assert_eq!(r.expires_on, 2000);
        let r = parse_token_reply(br#"{"access_token":"a","expires_in":3599}"#, "u", 1000).unwrap();
        assert_eq!(r.expires_on, 4599);
        assert_eq!(r.refresh_on, None);
        let r = parse_token_reply(br#"{"access_token":"a","expires_in":86400}"#, "u", 0).unwrap();
        assert_eq!(r.refresh_on, Some(43200));
        let r = parse_token_reply(br#"{"access_token":"a","expires_in":3600,"refresh_in":1800}"#, "u", 0).unwrap();
        assert_eq!(r.refresh_on, Some(1800));
    }

    #[test]
    fn huge_numbers_never_wrap_into_the_past() {
        let now = 1_795_000_000;
        for body in [
            r#"{"access_token":"a","expires_in":9223372036854775807}"#,
            r#"{"access_token":"a","expires_in":18446744073709551615}"#,
            r#"{"access_token":"a","expires_in":1e300}"#,
            r#"{"access_token":"a","expires_in":"1e300"}"#,
            r#"{"access_token":"a","expires_on":"253402300800"}"#,
            r#"{"access_token":"a","expires_on":9223372036854775807,"refresh_in":9223372036854775807}"#,
        ] {
            let r = parse_token_reply(body.as_bytes(), "u", now).unwrap();
            assert_eq!(r.expires_on, now + MAX_LIFETIME, "{body}");
            let refresh = r.refresh_on.unwrap();
            assert!(refresh > now && refresh < r.expires_on, "{body}: {refresh}");
        }
        let r = parse_token_reply(br#"{"access_token":"a","expires_in":3600,"refresh_in":99999}"#, "u", now).unwrap();
        assert_eq!((r.expires_on, r.refresh_on), (now + 3600, None));
        assert!(parse_token_reply(br#"{"access_token":"a","expires_in":-9223372036854775808}"#, "u", now).is_err());
        assert!(parse_token_reply(br#"{"access_token":"a","expires_in":NaN}"#, "u", now).is_err());
    }

    #[test]
    fn tokens_and_types_with_foreign_characters_are_refused() {
        let ok = |body: &str| parse_token_reply(body.as_bytes(), "u", 0);
        for (at, tt) in [("a\r\nX-Evil: 1", "Bearer"), ("a\0b", "Bearer"), ("a b", "Bearer"), ("a\u{1b}[2J", "Bearer"), ("aé", "Bearer"), ("a", "Bearer\r\nX-Evil: 1"), ("a", "Basic"), ("a", "Bearer x")] {
            let body = serde_json::json!({"access_token": at, "token_type": tt, "expires_in": 60}).to_string();
            let e = ok(&body).unwrap_err();
            assert_eq!(e.exit_code(), 4, "{body}");
            let shown = crate::error::one_line(&e);
            assert!(!shown.contains('\r') && !shown.contains('\n') && !shown.contains('\u{1b}') && !shown.contains("X-Evil: 1\n"), "{shown:?}");
        }
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        assert!(ok(&format!(r#"{{"access_token":"{long}","expires_in":60}}"#)).is_err());
        let rt = serde_json::json!({"access_token": "a", "refresh_token": "r\nx", "expires_in": 60}).to_string();
        assert!(ok(&rt).is_err());
        for (tt, want) in [("bearer", "Bearer"), ("BEARER", "Bearer"), ("PoP", "pop"), ("", "Bearer")] {
            let body = serde_json::json!({"access_token": "eyJ0.eyJ1-_.sig+/==", "token_type": tt, "expires_in": 60}).to_string();
            assert_eq!(ok(&body).unwrap().token_type, want);
        }
    }

    #[test]
    fn garbage_is_a_network_error() {
        assert_eq!(parse_token_reply(b"<html>", "u", 0).unwrap_err().exit_code(), 4);
        assert_eq!(parse_token_reply(br#"{"access_token":"a","#, "u", 0).unwrap_err().exit_code(), 4);
        assert_eq!(parse_token_reply(br#"{"token_type":"x"}"#, "u", 0).unwrap_err().exit_code(), 4);
    }

    #[test]
    fn an_echoed_secret_is_redacted() {
        let body = br#"{"error":"invalid_request","error_description":"bad request: client_secret=s3cr3t-value&x","correlation_id":"s3cr3t-value"}"#;
        let reply = Reply { status: 400, body: body.to_vec(), retry_after: None, date: None, www_authenticate: None };
        let e = redact(error_from_reply(&reply, "u"), &[("client_id", "app"), ("client_secret", "s3cr3t-value")]);
        let shown = format!("{} {:?}", crate::error::one_line(&e), e);
        assert!(!shown.contains("s3cr3t-value") && shown.contains("REDACTED"), "{shown}");
    }

    #[test]
    fn aadsts_errors_get_hints() {
        let body = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Trace ID: x Correlation ID: y Timestamp: z","error_codes":[7000215],"correlation_id":"c-1"}"#;
        let e = error_from_reply(&Reply { status: 401, body: body.to_vec(), retry_after: None, date: None, www_authenticate: None }, "u");
        assert_eq!(e.exit_code(), 3);
        let s = crate::error::one_line(&e);
        assert!(s.contains("AADSTS7000215") && s.contains("c-1") && s.contains("secret's value"), "{s}");
        assert!(!s.contains("Trace ID"), "{s}");
    }
}
