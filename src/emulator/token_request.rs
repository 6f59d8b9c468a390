//! How Entra reads a token request: who the client says it is (form or HTTP Basic) and how
//! it proved it; its scopes (one resource per request, AADSTS700022; `/.default` for client
//! credentials, AADSTS1002012; v1's `resource=`; the OIDC scopes apart; a bare permission
//! as Microsoft Graph's); and a proof-of-possession token's key (`token_type=pop`).
//! The tests' stand-in authority compiles this same file (tests/it/support/mod.rs, by
//! `#[path]`): it names only crates and its sibling `wire`, which is shared the same way.

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::Value;

use super::wire::{self, AadError};

/// The client id and secret, from the form (`form`) or from HTTP Basic authentication
/// (`authorization`, the header's value).
pub(crate) fn client_id_and_secret(form: impl Fn(&str) -> Option<String>, authorization: Option<&str>) -> (Option<String>, Option<String>) {
    let (mut id, mut secret) = (form("client_id"), form("client_secret"));
    let basic = authorization.and_then(|h| h.strip_prefix("Basic ").or_else(|| h.strip_prefix("basic ")));
    let raw = basic.and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok()).map(|r| String::from_utf8_lossy(&r).into_owned());
    if let Some((i, s)) = raw.as_deref().and_then(|r| r.split_once(':')) {
        // RFC 6749 §2.3.1: both halves are form-urlencoded before joining.
        let dec = |x: &str| form_urlencoded::parse(format!("x={x}").as_bytes()).next().map(|(_, v)| v.into_owned());
        id = id.or_else(|| dec(i));
        secret = secret.or_else(|| dec(s));
    }
    (id, secret)
}

/// The credentials a token request presents (the client secret or a client assertion).
pub(crate) struct Presented<'a> {
    pub secret: Option<&'a str>,
    pub assertion: Option<&'a str>,
    pub assertion_type: Option<&'a str>,
}

/// How the client proved who it is, judged as Entra judges it against the app's
/// registration: `confidential` (it has a secret, certificate or federated credential),
/// its `registered` secret, whether the grant needs a credential even from a public
/// client (client credentials), and `check`, which judges an assertion.
pub(crate) fn authenticate(client_id: &str, (confidential, registered): (bool, Option<&str>), given: &Presented, needs_credential: bool, check: impl FnOnce(&str) -> Result<(), AadError>) -> Result<ClientAuth, AadError> {
    match (given.secret, given.assertion.is_some() || given.assertion_type.is_some()) {
        (Some(_), true) => Err(AadError::bad_request("invalid_request", 90014, "Only one client credential may be presented: both 'client_secret' and 'client_assertion' were sent.")),
        (Some(_), false) if !confidential => Err(AadError::invalid_client(700025, "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.")),
        (Some(secret), false) if registered.is_some_and(|r| wire::same_secret(secret, r)) => Ok(ClientAuth::Secret),
        (Some(_), false) => Err(AadError::invalid_client(7000215, format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."))),
        (None, true) => {
            if given.assertion_type != Some(wire::JWT_BEARER) {
                return Err(AadError::bad_request("invalid_request", 900144, format!("The request body must contain the following parameter: 'client_assertion_type' with the value '{}'.", wire::JWT_BEARER)));
            }
            check(given.assertion.filter(|a| !a.is_empty()).ok_or_else(|| AadError::missing("client_assertion"))?)?;
            Ok(ClientAuth::Assertion)
        }
        (None, false) if confidential || needs_credential => Err(AadError::invalid_client(7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")),
        (None, false) => Ok(ClientAuth::Public),
    }
}

/// An authorization code /authorize issued, kept until it is redeemed.
#[derive(Clone, Debug)]
pub(crate) struct AuthCode {
    pub client_id: String,
    pub tenant: String,
    pub redirect_uri: String,
    /// The PKCE S256 challenge, when the sign-in sent one.
    pub challenge: Option<String>,
    pub scope: String,
    pub user: String,
    pub nonce: Option<String>,
    pub redeemed: bool,
}

/// Redeems `code` as Entra does, or says why not: unknown (AADSTS70000), redeemed before
/// (54005), issued to another client (70000), for another `redirect_uri` (500112), a PKCE
/// verifier that does not match the challenge (50148), or no challenge where the client is
/// public or sends a verifier (9002325).
pub(crate) fn redeem_code(codes: &mut HashMap<String, AuthCode>, code: &str, client_id: &str, redirect_uri: Option<&str>, verifier: Option<&str>, public: bool) -> Result<AuthCode, AadError> {
    let Some(ac) = codes.get_mut(code) else {
        return Err(AadError::invalid_grant(70000, "The provided value for the input parameter 'code' is not valid."));
    };
    if ac.redeemed {
        return Err(AadError::invalid_grant(54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token."));
    }
    if ac.client_id != client_id {
        return Err(AadError::invalid_grant(70000, "The authorization code was issued to a different client."));
    }
    let redirect_uri = redirect_uri.ok_or_else(|| AadError::missing("redirect_uri"))?;
    if redirect_uri != ac.redirect_uri {
        return Err(AadError::invalid_grant(500112, format!("The reply address '{redirect_uri}' does not match the reply address '{}' provided when requesting Authorization code.", ac.redirect_uri)));
    }
    match (&ac.challenge, verifier) {
        (None, None) if !public => {}
        (None, _) => return Err(AadError::invalid_grant(9002325, "Proof Key for Code Exchange is required for cross-origin authorization code redemption.")),
        (Some(challenge), verifier) => {
            let verifier = verifier.unwrap_or("");
            let well_formed = (43..=128).contains(&verifier.len()) && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
            if !well_formed || wire::b64url(digest.as_ref()) != *challenge {
                return Err(AadError::invalid_grant(50148, "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE."));
            }
        }
    }
    ac.redeemed = true;
    Ok(ac.clone())
}

/// The key id (`req_cnf`'s `kid`, an RFC 7638 SHA-256 thumbprint) a grant asks a PoP token
/// to be bound to; None for another token type; Entra's refusal of a malformed `req_cnf`.
pub(crate) fn pop_requested(form: impl Fn(&str) -> Option<String>) -> Result<Option<String>, AadError> {
    if form("token_type").as_deref() != Some("pop") {
        return Ok(None);
    }
    let malformed = |why: &str| AadError::bad_request("invalid_request", 9002313, format!("Invalid request. Request is malformed or invalid: {why}"));
    let cnf = form("req_cnf").ok_or_else(|| AadError::missing("req_cnf"))?;
    let cnf: Value = wire::b64url_decode(&cnf).and_then(|b| serde_json::from_slice(&b).ok()).ok_or_else(|| malformed("req_cnf is not base64url-encoded JSON"))?;
    match cnf["kid"].as_str() {
        // A SHA-256 thumbprint, base64url: 43 characters.
        Some(kid) if kid.len() == 43 && wire::b64url_decode(kid).is_some() => Ok(Some(kid.to_string())),
        _ => Err(malformed("req_cnf needs kid, the key's RFC 7638 thumbprint")),
    }
}

/// v1 (`resource=`, numbers as strings) or v2 (`scope=`) endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Version {
    V1,
    V2,
}

/// The one resource a request is for, with the permissions and OIDC scopes asked.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub resource: String,
    pub perms: Vec<String>,
    pub oidc: Vec<String>,
    pub scope_out: String,
    /// As requested: the v2 scope string or the v1 resource (kept with refresh tokens).
    pub raw: String,
}

impl Target {
    pub(crate) fn wants(&self, s: &str) -> bool {
        self.oidc.iter().any(|o| o == s)
    }

    /// A v2 user-flow scope string: OIDC scopes plus scopes of at most one resource.
    pub(crate) fn v2(scope: &str) -> Result<Target, AadError> {
        let (mut oidc, mut named) = (Vec::new(), Vec::new());
        for s in scope.split_whitespace() {
            let lower = s.to_ascii_lowercase();
            if wire::OIDC_SCOPES.contains(&lower.as_str()) {
                if !oidc.contains(&lower) {
                    oidc.push(lower);
                }
            } else {
                named.push((s.to_string(), split_scope(s)?));
            }
        }
        one_resource(scope, named.iter().map(|(_, (r, _))| r.as_str()))?;
        let (resource, perms) = match named.first() {
            None => (wire::GRAPH_APP_ID.to_string(), vec!["User.Read".to_string()]),
            Some((_, (r, _))) => (r.clone(), named.iter().map(|(_, (_, p))| if p == ".default" { "user_impersonation".to_string() } else { p.clone() }).collect()),
        };
        let scope_out: Vec<&str> = named.iter().map(|(s, _)| s.as_str()).chain(oidc.iter().map(String::as_str)).collect();
        Ok(Target { resource, perms, scope_out: scope_out.join(" "), oidc, raw: scope.trim().to_string() })
    }

    /// A v2 client credentials scope: exactly one `{resource}/.default` (scopes of two
    /// resources: AADSTS700022, as for user flows; anything else: AADSTS1002012).
    pub(crate) fn client_credentials(scope: Option<&str>) -> Result<Target, AadError> {
        let scope = scope.unwrap_or("").trim();
        let parts: Vec<&str> = scope.split_whitespace().collect();
        let resources: Vec<String> = parts.iter().filter_map(|s| split_scope(s).ok()).map(|(r, _)| r).collect();
        one_resource(scope, resources.iter().map(String::as_str))?;
        let resource = match parts.as_slice() {
            [one] => one.strip_suffix("/.default").filter(|r| !r.is_empty()),
            _ => None,
        };
        let Some(resource) = resource else {
            return Err(AadError::bad_request("invalid_scope", 1002012, format!("The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).")));
        };
        Ok(Target { resource: resource.to_string(), perms: Vec::new(), oidc: Vec::new(), scope_out: scope.to_string(), raw: scope.to_string() })
    }

    /// A refresh grant's target at endpoint `v`: the form's `scope` (v2) or `resource` (v1),
    /// else what the refresh token was issued for (`granted`: its endpoint and scope or resource).
    pub(crate) fn refreshed(v: Version, scope: Option<&str>, resource: Option<&str>, (granted_v, granted): (Version, &str)) -> Result<Target, AadError> {
        match v {
            Version::V2 => Target::v2(scope.unwrap_or(if granted_v == Version::V2 { granted } else { "" })),
            Version::V1 => Target::v1(resource.or((granted_v == Version::V1).then_some(granted)), scope),
        }
    }

    /// A v1 request: `resource=` (required) and optional OIDC scopes.
    pub(crate) fn v1(resource: Option<&str>, scope: Option<&str>) -> Result<Target, AadError> {
        let resource = resource.map(str::trim).filter(|r| !r.is_empty()).ok_or_else(|| AadError::missing("resource"))?;
        let oidc = scope.unwrap_or("").split_whitespace().map(str::to_ascii_lowercase).filter(|s| wire::OIDC_SCOPES.contains(&s.as_str())).collect();
        Ok(Target { resource: resource.to_string(), perms: vec!["user_impersonation".into()], oidc, scope_out: "user_impersonation".into(), raw: resource.to_string() })
    }
}

/// `{resource}/{permission}`; a bare permission (`User.Read`) is Microsoft Graph's.
fn split_scope(s: &str) -> Result<(String, String), AadError> {
    if let Some(r) = s.strip_suffix("/.default").filter(|r| !r.is_empty()) {
        return Ok((r.to_string(), ".default".to_string()));
    }
    match s.rfind('/') {
        None => Ok(("https://graph.microsoft.com".to_string(), s.to_string())),
        Some(i) if i + 1 < s.len() && !s[..i].is_empty() && !s[..i].ends_with(':') && !s[..i].ends_with(":/") => Ok((s[..i].to_string(), s[i + 1..].to_string())),
        Some(_) => Err(AadError::bad_request("invalid_scope", 70011, format!("The provided value for the input parameter 'scope' is not valid. The scope {s} is not valid."))),
    }
}

/// AADSTS700022 when the scopes name more than one resource.
fn one_resource<'a>(scope: &str, resources: impl Iterator<Item = &'a str>) -> Result<(), AadError> {
    let mut seen: Vec<String> = Vec::new();
    for r in resources.map(|r| r.trim_end_matches('/').to_ascii_lowercase()) {
        if !seen.contains(&r) {
            seen.push(r);
        }
    }
    if seen.len() > 1 {
        return Err(AadError::bad_request("invalid_scope", 700022, format!("The provided value for the input parameter scope is not valid because it contains more than one resource. Scope {scope} is not valid.")));
    }
    Ok(())
}

/// How the client proved who it is (`azpacr`: 0 public, 1 secret, 2 certificate or assertion).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    Public,
    Secret,
    Assertion,
}

impl ClientAuth {
    /// The `appidacr`/`azpacr` claim.
    pub(crate) fn acr(self) -> &'static str {
        match self {
            ClientAuth::Public => "0",
            ClientAuth::Secret => "1",
            ClientAuth::Assertion => "2",
        }
    }
}
