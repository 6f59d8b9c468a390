//! The OAuth wire shared by every Entra grant: send a form to the token endpoint, parse
//! the answer (numbers as strings or integers, v1 or v2), and turn an error body into a
//! specific message with the AADSTS code, the correlation id and a hint.

use crate::clock::{self, Deadline};
use crate::error::{AadError, Error, Result};
use crate::http::{Http, Reply, RetryPolicy};
use crate::log::trace;
use crate::secret::Secret;
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

/// Entra's v1 endpoints and managed identity send numbers as strings.
pub(crate) fn num<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        I(i64),
        F(f64),
        S(String),
    }
    Ok(match Option::<N>::deserialize(d)? {
        None => None,
        Some(N::I(i)) => Some(i),
        Some(N::F(f)) => Some(f as i64),
        Some(N::S(s)) => s.trim().parse::<i64>().ok().or_else(|| s.trim().parse::<f64>().ok().map(|f| f as i64)),
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
    let lifetime = expires_on - now;
    let refresh_on = match w.refresh_in {
        Some(r) if r > 0 => Some(now + r),
        _ if lifetime >= 2 * 3600 => Some(now + lifetime / 2),
        _ => None,
    };
    Ok(TokenReply {
        access_token,
        token_type: w.token_type.unwrap_or_else(|| "Bearer".into()),
        expires_on,
        refresh_on,
        refresh_token: w.refresh_token.filter(|t| !t.expose().is_empty()),
        id_token: w.id_token,
        client_info: w.client_info,
        resource: w.resource,
        foci: w.foci,
    })
}

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
