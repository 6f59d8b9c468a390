//! What the mock hands out once a grant succeeds (its scopes read into one resource by
//! the emulator's rules, src/emulator/token_request.rs): access tokens and id tokens shaped like
//! Entra's, client_info, refresh tokens, and the v2 (integers) or v1 (strings) answer body.

use serde_json::{Value, json};

use super::authority::{RtGrant, State, UserCtx, Version};
pub(crate) use super::token_request::{ClientAuth, Target};
use super::wire;

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
                if wire::FOCI.contains(&i.client_id.as_str()) {
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
