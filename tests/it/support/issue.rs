//! What the mock hands out once a grant succeeds: scope strings turned into one
//! resource (or an AADSTS error), access tokens and id tokens shaped like Entra's,
//! client_info, refresh tokens, and the v2 (integers) or v1 (strings) answer body.

use serde_json::{Value, json};

use super::authority::{RtGrant, State, UserCtx, Version};
use super::wire::{self, AadError};

/// The one resource a request is for, with the permissions and OIDC scopes asked.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// The token audience: the scope minus `/.default` (v2) or the `resource` (v1).
    pub resource: String,
    /// Permission names for `scp` (`.default` becomes `user_impersonation`).
    pub perms: Vec<String>,
    /// `openid`, `profile`, `offline_access`, `email` as requested, lower-cased.
    pub oidc: Vec<String>,
    /// The `scope` field of a v2 answer.
    pub scope_out: String,
    /// As requested: the v2 scope string or the v1 resource (kept with refresh tokens).
    pub raw: String,
}

impl Target {
    pub fn wants(&self, oidc_scope: &str) -> bool {
        self.oidc.iter().any(|s| s == oidc_scope)
    }

    /// A v2 user-flow scope string: OIDC scopes plus scopes of at most one resource.
    pub fn v2(scope: &str) -> Result<Target, AadError> {
        let mut oidc = Vec::new();
        let mut resource_scopes = Vec::new();
        for s in scope.split_whitespace() {
            let lower = s.to_ascii_lowercase();
            if wire::OIDC_SCOPES.contains(&lower.as_str()) {
                if !oidc.contains(&lower) {
                    oidc.push(lower);
                }
            } else {
                resource_scopes.push((s.to_string(), split_scope(s)?));
            }
        }
        check_one_resource(scope, resource_scopes.iter().map(|(_, (r, _))| r.as_str()))?;
        let (resource, perms) = match resource_scopes.first() {
            None => (
                wire::GRAPH_APP_ID.to_string(),
                vec!["User.Read".to_string()],
            ),
            Some((_, (r, _))) => {
                let perms = resource_scopes
                    .iter()
                    .map(|(_, (_, p))| {
                        if p == ".default" {
                            "user_impersonation".to_string()
                        } else {
                            p.clone()
                        }
                    })
                    .collect();
                (r.clone(), perms)
            }
        };
        let scope_out: Vec<&str> = resource_scopes
            .iter()
            .map(|(s, _)| s.as_str())
            .chain(oidc.iter().map(String::as_str))
            .collect();
        let scope_out = scope_out.join(" ");
        Ok(Target {
            resource,
            perms,
            oidc,
            scope_out,
            raw: scope.trim().to_string(),
        })
    }

    /// A v2 client credentials scope: exactly one `{resource}/.default`.
    pub fn client_credentials(scope: Option<&str>) -> Result<Target, AadError> {
        let scope = scope.unwrap_or("").trim();
        let parts: Vec<&str> = scope.split_whitespace().collect();
        let resources: Vec<String> = parts
            .iter()
            .filter_map(|s| split_scope(s).ok())
            .map(|(r, _)| r)
            .collect();
        check_one_resource(scope, resources.iter().map(String::as_str))?;
        let resource = match parts.as_slice() {
            [one] => one.strip_suffix("/.default").filter(|r| !r.is_empty()),
            _ => None,
        };
        let Some(resource) = resource else {
            return Err(AadError::bad_request(
                "invalid_scope",
                1002012,
                format!(
                    "The provided value for scope {scope} is not valid. Client credential flows must have a scope \
                     value with /.default suffixed to the resource identifier (application ID URI)."
                ),
            ));
        };
        Ok(Target {
            resource: resource.to_string(),
            perms: Vec::new(),
            oidc: Vec::new(),
            scope_out: scope.to_string(),
            raw: scope.to_string(),
        })
    }

    /// A v1 request: `resource=` (required) and an optional `scope` of OIDC scopes.
    pub fn v1(resource: Option<&str>, scope: Option<&str>) -> Result<Target, AadError> {
        let resource = resource
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .ok_or_else(|| AadError::missing("resource"))?;
        let oidc = scope
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_ascii_lowercase)
            .filter(|s| wire::OIDC_SCOPES.contains(&s.as_str()))
            .collect();
        Ok(Target {
            resource: resource.to_string(),
            perms: vec!["user_impersonation".to_string()],
            oidc,
            scope_out: "user_impersonation".to_string(),
            raw: resource.to_string(),
        })
    }
}

/// `{resource}/{permission}`; a bare permission (`User.Read`) is Microsoft Graph's.
fn split_scope(s: &str) -> Result<(String, String), AadError> {
    if let Some(r) = s.strip_suffix("/.default")
        && !r.is_empty()
    {
        return Ok((r.to_string(), ".default".to_string()));
    }
    match s.rfind('/') {
        None => Ok(("https://graph.microsoft.com".to_string(), s.to_string())),
        Some(i)
            if i + 1 < s.len()
                && !s[..i].ends_with(":/")
                && !s[..i].is_empty()
                && !s[..i].ends_with(':') =>
        {
            Ok((s[..i].to_string(), s[i + 1..].to_string()))
        }
        Some(_) => Err(AadError::bad_request(
            "invalid_scope",
            70011,
            format!(
                "The provided value for the input parameter 'scope' is not valid. The scope {s} is not valid."
            ),
        )),
    }
}

/// AADSTS700022 when the scopes name more than one resource.
fn check_one_resource<'a>(
    scope: &str,
    resources: impl Iterator<Item = &'a str>,
) -> Result<(), AadError> {
    let mut seen: Vec<String> = Vec::new();
    for r in resources {
        let norm = r.trim_end_matches('/').to_ascii_lowercase();
        if !seen.contains(&norm) {
            seen.push(norm);
        }
    }
    if seen.len() > 1 {
        return Err(AadError::bad_request(
            "invalid_scope",
            700022,
            format!(
                "The provided value for the input parameter scope is not valid because it contains more than one \
                 resource. Scope {scope} is not valid."
            ),
        ));
    }
    Ok(())
}

/// How the client proved who it is (`azpacr`/`appidacr`: 0 public, 1 secret, 2 certificate/assertion).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    Public,
    Secret,
    Assertion,
}

impl ClientAuth {
    fn acr(self) -> &'static str {
        match self {
            ClientAuth::Public => "0",
            ClientAuth::Secret => "1",
            ClientAuth::Assertion => "2",
        }
    }
}

/// Everything needed to write one successful answer.
pub(crate) struct Issue {
    pub v: Version,
    pub client_id: String,
    pub auth: ClientAuth,
    /// The tenant the token is for (`tid`).
    pub tid: String,
    pub target: Target,
    pub user: Option<UserCtx>,
    pub refresh_token: Option<String>,
    pub nonce: Option<String>,
}

/// Mints a live refresh token for this user and client.
pub(crate) fn new_refresh_token(
    st: &mut State,
    v: Version,
    client_id: &str,
    user: &UserCtx,
    target: &Target,
) -> String {
    let rt = st.opaque("0.AXMOCKRT.");
    let grant = RtGrant {
        client_id: client_id.to_string(),
        user: user.clone(),
        scope: target.raw.clone(),
        version: v,
    };
    st.live_rts.insert(rt.clone(), grant);
    rt
}

/// The refresh token a fresh user sign-in gets: v1 always, v2 only with `offline_access`.
pub(crate) fn sign_in_refresh_token(
    st: &mut State,
    v: Version,
    client_id: &str,
    user: &UserCtx,
    target: &Target,
) -> Option<String> {
    (v == Version::V1 || target.wants("offline_access"))
        .then(|| new_refresh_token(st, v, client_id, user, target))
}

/// The JSON body of a successful token answer; records the access token.
pub(crate) fn token_reply(st: &mut State, i: Issue) -> Value {
    let now = wire::now();
    let life = st.lifetime;
    let exp = now + life;
    let at = access_token(st, &i, now, exp);
    st.issued_ats.push(at.clone());
    match i.v {
        Version::V2 => {
            let mut b = json!({
                "token_type": "Bearer",
                "scope": i.target.scope_out,
                "expires_in": life,
                "ext_expires_in": life,
                "access_token": at,
            });
            if let Some(r) = st.refresh_in {
                b["refresh_in"] = json!(r);
            }
            if let Some(rt) = &i.refresh_token {
                b["refresh_token"] = json!(rt);
            }
            if let Some(u) = &i.user {
                if i.target.wants("openid") {
                    b["id_token"] = json!(id_token(st, &i, u, now, exp));
                }
                if i.target.wants("openid") || i.target.wants("offline_access") {
                    b["client_info"] = json!(client_info(u));
                }
                if wire::FOCI_CLIENTS.contains(&i.client_id.as_str()) {
                    b["foci"] = json!("1");
                }
            }
            b
        }
        Version::V1 => {
            let mut b = json!({
                "token_type": "Bearer",
                "expires_in": life.to_string(),
                "ext_expires_in": life.to_string(),
                "expires_on": exp.to_string(),
                "not_before": now.to_string(),
                "resource": i.target.resource,
                "access_token": at,
            });
            if let Some(u) = &i.user {
                b["scope"] = json!(i.target.scope_out);
                b["id_token"] = json!(id_token(st, &i, u, now, exp));
            }
            if let Some(rt) = &i.refresh_token {
                b["refresh_token"] = json!(rt);
            }
            b
        }
    }
}

fn issuer(st: &State, v: Version, tid: &str) -> String {
    match v {
        Version::V2 => format!("{}/{tid}/v2.0", st.url),
        Version::V1 => format!("https://sts.windows.net/{tid}/"),
    }
}

fn access_token(st: &mut State, i: &Issue, now: i64, exp: i64) -> String {
    st.serial += 1;
    let mut c = json!({
        "aud": i.target.resource,
        "iss": issuer(st, i.v, &i.tid),
        "iat": now,
        "nbf": now,
        "exp": exp,
        "tid": i.tid,
        "appid": i.client_id,
        "azp": i.client_id,
        "appidacr": i.auth.acr(),
        "azpacr": i.auth.acr(),
        "ver": if i.v == Version::V1 { "1.0" } else { "2.0" },
        "uti": wire::b64url(wire::random_bytes(16)),
        "jti": wire::random_guid(),
        "mock_serial": st.serial,
    });
    match &i.user {
        Some(u) => {
            c["oid"] = json!(u.oid);
            c["sub"] = json!(wire::guid_from(
                "sub",
                &format!("{}/{}", u.oid, i.client_id)
            ));
            c["scp"] = json!(i.target.perms.join(" "));
            c["upn"] = json!(u.username);
            c["unique_name"] = json!(u.username);
            c["preferred_username"] = json!(u.username);
            c["name"] = json!(u.name);
            c["idtyp"] = json!("user");
        }
        None => {
            let sp = wire::guid_from("service-principal", &i.client_id);
            c["oid"] = json!(sp);
            c["sub"] = json!(sp);
            c["roles"] = json!([]);
            c["idtyp"] = json!("app");
        }
    }
    wire::jwt(&c)
}

fn id_token(st: &State, i: &Issue, u: &UserCtx, now: i64, exp: i64) -> String {
    let mut c = json!({
        "aud": i.client_id,
        "iss": issuer(st, i.v, &i.tid),
        "iat": now,
        "nbf": now,
        "exp": exp,
        "oid": u.oid,
        "sub": wire::guid_from("sub", &format!("{}/{}", u.oid, i.client_id)),
        "tid": i.tid,
        "preferred_username": u.username,
        "upn": u.username,
        "name": u.name,
        "ver": if i.v == Version::V1 { "1.0" } else { "2.0" },
        "uti": wire::b64url(wire::random_bytes(16)),
    });
    if let Some(n) = &i.nonce {
        c["nonce"] = json!(n);
    }
    wire::jwt(&c)
}

/// base64url of `{"uid": oid, "utid": home tenant}`, MSAL's account key.
pub(crate) fn client_info(u: &UserCtx) -> String {
    wire::b64url(json!({"uid": u.oid, "utid": u.home_tid}).to_string())
}
