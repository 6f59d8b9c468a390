//! The emulator's live state (pending device codes and authorization codes, live and
//! dead refresh tokens) and what it hands out once a grant succeeds (the scopes already
//! turned into one resource by `token_request`): RS256-signed access and id tokens marked as the
//! emulator's, client_info, refresh tokens, and the v2 (numbers) or v1 (strings) answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};

use super::config::{Settings, User};
use super::keys::Signer;
pub(crate) use super::token_request::{AuthCode, ClientAuth, Target, Version};
use super::wire;

#[derive(Clone, Debug)]
pub(crate) struct RtGrant {
    pub client_id: String,
    pub user: String,
    pub tid: String,
    pub scope: String,
    pub version: Version,
}

#[derive(Clone, Debug)]
pub(crate) struct DeviceCode {
    pub client_id: String,
    pub tenant: String,
    pub scope: String,
    pub version: Version,
    pub user_code: String,
    pub expires: i64,
    /// The person who approved it, once someone did.
    pub approved_by: Option<String>,
    pub redeemed: bool,
}

pub(crate) struct State {
    /// `https://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    pub settings: Settings,
    pub signer: Arc<Signer>,
    pub ssh_ca: super::sshcert::SshCa,
    /// The App Service endpoint's X-IDENTITY-HEADER value.
    pub identity_header: String,
    pub device_codes: HashMap<String, DeviceCode>,
    pub auth_codes: HashMap<String, AuthCode>,
    pub live_rts: HashMap<String, RtGrant>,
    /// Rotated-out refresh tokens: redeeming one again fails as in Entra (AADSTS70008).
    pub dead_rts: HashMap<String, u32>,
    pub serial: u64,
}

pub(crate) type Shared = Arc<Mutex<State>>;

pub(crate) fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    pub(crate) fn new(url: String, settings: Settings, signer: Arc<Signer>, ssh_ca: super::sshcert::SshCa, identity_header: String) -> State {
        State { url, settings, signer, ssh_ca, identity_header, device_codes: HashMap::new(), auth_codes: HashMap::new(), live_rts: HashMap::new(), dead_rts: HashMap::new(), serial: 0 }
    }

    /// The tenant id (`tid`) a path segment names: a configured tenant, or the person's
    /// home for `common`/`organizations`. None: Entra's AADSTS90002.
    pub(crate) fn tenant_id(&self, tenant: &str) -> Option<String> {
        if wire::is_multi_tenant(tenant) {
            return Some(self.settings.first_tenant().id.clone());
        }
        self.settings.tenant(tenant).map(|t| t.id.clone())
    }

    pub(crate) fn user(&self, username: &str) -> Option<&User> {
        self.settings.users.iter().find(|u| u.username.eq_ignore_ascii_case(username))
    }

    /// Who signs in when nobody typed a name: the first person configured.
    pub(crate) fn default_user(&self) -> String {
        self.settings.users.first().map(|u| u.username.clone()).unwrap_or_default()
    }

    /// A fresh opaque value with a serial number, so every one differs.
    pub(crate) fn opaque(&mut self, prefix: &str) -> String {
        self.serial += 1;
        format!("{prefix}{}.{}", self.serial, wire::b64url(wire::random_bytes(24)))
    }

    pub(crate) fn issuer(&self, v: Version, tid: &str) -> String {
        match v {
            Version::V2 => format!("{}/{tid}/v2.0", self.url),
            Version::V1 => format!("{}/{tid}/", self.url),
        }
    }
}

/// Everything one successful answer needs.
pub(crate) struct Issue {
    pub v: Version,
    pub client_id: String,
    pub auth: ClientAuth,
    pub tid: String,
    pub target: Target,
    /// The person's username; None: an app's (or managed identity's) token.
    pub user: Option<String>,
    pub refresh_token: Option<String>,
    pub nonce: Option<String>,
}

/// Mints a live refresh token for this person and client.
pub(crate) fn new_refresh_token(st: &mut State, v: Version, client_id: &str, user: &str, tid: &str, target: &Target) -> String {
    let rt = st.opaque("0.EMULATOR-RT.");
    st.live_rts.insert(rt.clone(), RtGrant { client_id: client_id.into(), user: user.into(), tid: tid.into(), scope: target.raw.clone(), version: v });
    rt
}

/// A fresh sign-in's refresh token: v1 always, v2 with `offline_access`.
pub(crate) fn sign_in_refresh_token(st: &mut State, v: Version, client_id: &str, user: &str, tid: &str, target: &Target) -> Option<String> {
    (v == Version::V1 || target.wants("offline_access")).then(|| new_refresh_token(st, v, client_id, user, tid, target))
}

fn person(st: &State, username: &str) -> (String, String, String) {
    let name = st.user(username).map(|u| u.name.clone()).unwrap_or_else(|| username.to_string());
    (wire::guid_from("user", &username.to_ascii_lowercase()), username.to_string(), name)
}

/// The claims every token of the emulator carries, so none can pass for Entra's.
fn base_claims(st: &State, v: Version, aud: &str, tid: &str, now: i64, exp: i64) -> Value {
    json!({
        "aud": aud, "iss": st.issuer(v, tid), "iat": now, "nbf": now, "exp": exp, "tid": tid,
        "ver": if v == Version::V1 { "1.0" } else { "2.0" },
        "uti": wire::b64url(wire::random_bytes(16)),
        "emulator": true,
    })
}

/// An access token for an application or managed identity (no person).
/// `(now, exp)`: when it is issued and when it expires.
pub(crate) fn app_token(st: &State, v: Version, client_id: &str, auth: ClientAuth, tid: &str, resource: &str, (now, exp): (i64, i64)) -> String {
    let mut c = base_claims(st, v, resource, tid, now, exp);
    let sp = wire::guid_from("service-principal", &client_id.to_ascii_lowercase());
    let acr = auth.acr();
    for (k, val) in [("appid", json!(client_id)), ("azp", json!(client_id)), ("appidacr", json!(acr)), ("azpacr", json!(acr)), ("oid", json!(sp)), ("sub", json!(sp)), ("idtyp", json!("app")), ("roles", json!([])), ("jti", json!(wire::random_guid()))] {
        c[k] = val;
    }
    st.signer.sign(&c)
}

/// The JSON body of a successful token answer.
pub(crate) fn token_reply(st: &State, i: Issue) -> Value {
    let now = wire::now();
    let life = st.settings.lifetime;
    let exp = now + life;
    let at = match &i.user {
        None => app_token(st, i.v, &i.client_id, i.auth, &i.tid, &i.target.resource, (now, exp)),
        Some(u) => {
            let (oid, username, name) = person(st, u);
            let mut c = base_claims(st, i.v, &i.target.resource, &i.tid, now, exp);
            let acr = if i.auth == ClientAuth::Public { "0" } else { "1" };
            for (k, val) in [
                ("appid", json!(i.client_id)), ("azp", json!(i.client_id)), ("appidacr", json!(acr)), ("azpacr", json!(acr)),
                ("oid", json!(oid)), ("sub", json!(wire::guid_from("sub", &format!("{oid}/{}", i.client_id)))),
                ("scp", json!(i.target.perms.join(" "))), ("upn", json!(username)), ("unique_name", json!(username)),
                ("preferred_username", json!(username)), ("name", json!(name)), ("idtyp", json!("user")),
            ] {
                c[k] = val;
            }
            st.signer.sign(&c)
        }
    };
    let id_token = |user: &str| {
        let (oid, username, name) = person(st, user);
        let mut c = base_claims(st, i.v, &i.client_id, &i.tid, now, exp);
        for (k, val) in [("oid", json!(oid)), ("sub", json!(wire::guid_from("sub", &format!("{oid}/{}", i.client_id)))), ("preferred_username", json!(username)), ("upn", json!(username)), ("name", json!(name))] {
            c[k] = val;
        }
        if let Some(n) = &i.nonce {
            c["nonce"] = json!(n);
        }
        st.signer.sign(&c)
    };
    // Every person's home is the first tenant: `utid` stays the same wherever they sign in.
    let home = st.settings.first_tenant().id.clone();
    let client_info = |user: &str| wire::b64url(json!({"uid": person(st, user).0, "utid": home}).to_string());
    match i.v {
        Version::V2 => {
            let mut b = json!({"token_type": "Bearer", "scope": i.target.scope_out, "expires_in": life, "ext_expires_in": life, "access_token": at});
            if let Some(rt) = &i.refresh_token {
                b["refresh_token"] = json!(rt);
            }
            if let Some(u) = &i.user {
                if i.target.wants("openid") {
                    b["id_token"] = json!(id_token(u));
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
            let mut b = json!({"token_type": "Bearer", "expires_in": life.to_string(), "ext_expires_in": life.to_string(), "expires_on": exp.to_string(), "not_before": now.to_string(), "resource": i.target.resource, "access_token": at});
            if let Some(u) = &i.user {
                b["scope"] = json!(i.target.scope_out);
                b["id_token"] = json!(id_token(u));
            }
            if let Some(rt) = &i.refresh_token {
                b["refresh_token"] = json!(rt);
            }
            b
        }
    }
}
