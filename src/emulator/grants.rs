//! The token endpoint's grants as Entra judges them: tenant, client and client credential
//! checks first (secret in the form or HTTP Basic, certificate assertion, federated
//! assertion), then client credentials, refresh token with rotation, password (ROPC),
//! device code polling and authorization code with PKCE, each failing with the AADSTS
//! code Entra uses.

use serde_json::Value;

use super::http::{Reply, Request};
use super::sshcert;
use super::token_request;
use super::state::{self, ClientAuth, Issue, Shared, State, Target, Version, lock};
use super::wire::{self, AadError};

/// Answers one token endpoint POST.
pub(crate) fn token(shared: &Shared, tenant: &str, v: Version, req: &Request) -> Reply {
    let mut st = lock(shared);
    match grant(&mut st, tenant, v, req) {
        Ok(body) => Reply::json(200, &body),
        Err(e) => e.reply(),
    }
}

fn grant(st: &mut State, tenant: &str, v: Version, req: &Request) -> Result<Value, AadError> {
    if st.tenant_id(tenant).is_none() {
        return Err(AadError::tenant_not_found(tenant));
    }
    let grant_type = req.form("grant_type").ok_or_else(|| AadError::missing("grant_type"))?;
    let (client_id, secret) = token_request::client_id_and_secret(|k| req.form(k).map(str::to_string), req.header("authorization"));
    let client_id = client_id.ok_or_else(|| AadError::missing("client_id"))?.to_ascii_lowercase();
    let app = st.settings.app(&client_id).ok_or_else(|| AadError::unknown_client(&client_id, tenant))?;
    let endpoint = match v {
        Version::V2 => format!("{}/{tenant}/oauth2/v2.0/token", st.url),
        Version::V1 => format!("{}/{tenant}/oauth2/token", st.url),
    };
    let given = token_request::Presented { secret: secret.as_deref(), assertion: req.form("client_assertion"), assertion_type: req.form("client_assertion_type") };
    let check = |assertion: &str| check_assertion(&client_id, &app, assertion, &endpoint).map_err(|why| AadError::invalid_client(700027, format!("Client assertion failed validation: {why}")));
    let auth = token_request::authenticate(&client_id, (app.confidential(), app.secret.as_deref()), &given, grant_type == "client_credentials", check)?;
    // A PoP or SSH certificate request is judged before any grant spends a code or refresh token.
    let pop = token_request::pop_requested(|k| req.form(k).map(str::to_string))?;
    let ssh = if pop.is_some() { None } else { sshcert::requested(|k| req.form(k).map(str::to_string))? };
    let c = Ctx { tenant, v, req, client_id: &client_id, auth, ssh, pop };
    match grant_type {
        "client_credentials" => client_credentials(st, &c),
        "refresh_token" => refresh(st, &c),
        "password" => password(st, &c),
        wire::DEVICE_CODE_GRANT | "device_code" => device_code(st, &c),
        "authorization_code" => authorization_code(st, &c),
        other => Err(AadError::bad_request("unsupported_grant_type", 70003, format!("The app requested an unsupported grant type '{other}'."))),
    }
}

struct Ctx<'a> {
    tenant: &'a str,
    v: Version,
    req: &'a Request,
    client_id: &'a str,
    auth: ClientAuth,
    /// The key to certify when the grant asks for `token_type=ssh-cert`.
    ssh: Option<sshcert::RsaKey>,
    /// The key thumbprint a proof-of-possession token is bound to (`token_type=pop`).
    pop: Option<String>,
}

impl Ctx<'_> {
    fn form(&self, k: &str) -> Option<&str> {
        self.req.form(k)
    }
    fn required(&self, k: &str) -> Result<&str, AadError> {
        self.form(k).ok_or_else(|| AadError::missing(k))
    }
    fn user_target(&self) -> Result<Target, AadError> {
        match self.v {
            Version::V2 => Target::v2(self.required("scope")?),
            Version::V1 => Target::v1(self.form("resource"), self.form("scope")),
        }
    }
    /// A bearer token's answer, or an SSH certificate's when the grant asked for one.
    fn issue(&self, st: &mut State, tid: String, target: Target, user: Option<String>, rt: Option<String>, nonce: Option<String>) -> Value {
        let principal = user.clone().unwrap_or_else(|| self.client_id.to_string());
        let mut body = state::token_reply(st, Issue { v: self.v, client_id: self.client_id.to_string(), auth: self.auth, tid, target, user, refresh_token: rt, nonce });
        if let Some(key) = &self.ssh {
            st.serial += 1;
            sshcert::answer(&st.ssh_ca, &mut body, st.serial, &principal, key, st.settings.lifetime);
        }
        if let Some(kid) = &self.pop {
            // Entra's PoP answer: the token carries `cnf: {kid, xms_ksl}` (signed like every
            // token here) and the answer says `token_type: pop`.
            let mut claims = body["access_token"].as_str().and_then(wire::jwt_parts).map(|(_, c)| c).unwrap_or_default();
            claims["cnf"] = serde_json::json!({"kid": kid, "xms_ksl": "sw"});
            body["access_token"] = Value::String(st.signer.sign(&claims));
            body["token_type"] = Value::String("pop".into());
        }
        body
    }
}

/// A certificate assertion (`iss` = `sub` = the client id, `aud` = this token endpoint,
/// its `x5t#S256` or `x5t` one of the app's registered thumbprints when it has any) or a
/// federated token (`aud` api://AzureADTokenExchange, issuer and subject one of the app's
/// federated credentials when it has any); unexpired either way. Signatures are not
/// checked: the emulator is no security boundary (docs/emulator.md).
fn check_assertion(client_id: &str, app: &super::config::App, assertion: &str, endpoint: &str) -> Result<(), String> {
    let (header, claims) = wire::jwt_parts(assertion).ok_or("client_assertion is not a JWT")?;
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    if claims.get("exp").and_then(Value::as_i64).is_none_or(|exp| exp < wire::now() - 300) {
        return Err("the assertion has expired (or has no exp)".into());
    }
    let aud = |want: &str| match claims.get("aud") {
        Some(Value::String(a)) => a.trim_end_matches('/').eq_ignore_ascii_case(want.trim_end_matches('/')),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(want.trim_end_matches('/'))),
        _ => false,
    };
    if s(&claims, "iss").eq_ignore_ascii_case(client_id) {
        if !s(&claims, "sub").eq_ignore_ascii_case(client_id) {
            return Err("sub must be the client id".into());
        }
        let v2_or_v1 = [endpoint.to_string(), endpoint.replace("/oauth2/v2.0/token", "/oauth2/token"), endpoint.replace("/oauth2/token", "/oauth2/v2.0/token")];
        if !v2_or_v1.iter().any(|e| aud(e)) {
            return Err(format!("aud must be the token endpoint {endpoint}"));
        }
        let (sha256, sha1) = (s(&header, "x5t#S256"), s(&header, "x5t"));
        let hex_sha1 = wire::b64url_decode(&sha1).map(|b| b.iter().map(|x| format!("{x:02x}")).collect::<String>()).unwrap_or_default();
        let known = app.thumbprints.iter().any(|t| (!sha256.is_empty() && t == &sha256) || (!hex_sha1.is_empty() && t.eq_ignore_ascii_case(&hex_sha1)));
        if !app.thumbprints.is_empty() && !known {
            return Err("no certificate with this thumbprint (x5t#S256 / x5t) is registered for the app".into());
        }
        return Ok(());
    }
    if !aud("api://AzureADTokenExchange") {
        return Err("a federated token's aud must be api://AzureADTokenExchange".into());
    }
    let (iss, sub) = (s(&claims, "iss"), s(&claims, "sub"));
    if !app.federated.is_empty() && !app.federated.iter().any(|f| f.issuer == iss && f.subject == sub) {
        return Err(format!("no federated credential of the app matches issuer '{iss}' and subject '{sub}'"));
    }
    Ok(())
}

fn client_credentials(st: &mut State, c: &Ctx) -> Result<Value, AadError> {
    if wire::is_multi_tenant(c.tenant) {
        return Err(AadError::not_on_multi_tenant(c.tenant));
    }
    let target = match c.v {
        Version::V2 => Target::client_credentials(c.form("scope"))?,
        Version::V1 => Target::v1(c.form("resource"), None)?,
    };
    let tid = st.tenant_id(c.tenant).unwrap_or_default();
    Ok(c.issue(st, tid, target, None, None, None))
}

fn refresh(st: &mut State, c: &Ctx) -> Result<Value, AadError> {
    let rt = c.required("refresh_token")?;
    if let Some(&code) = st.dead_rts.get(rt) {
        return Err(AadError::invalid_grant(code, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource."));
    }
    let Some(g) = st.live_rts.get(rt).cloned() else {
        return Err(AadError::invalid_grant(9002313, "Invalid request. Request is malformed or invalid: the refresh token is not one this emulator issued."));
    };
    let family = wire::FOCI.contains(&g.client_id.as_str()) && wire::FOCI.contains(&c.client_id);
    if g.client_id != c.client_id && !family {
        return Err(AadError::invalid_grant(70000, "Provided grant is invalid or malformed: the refresh token was issued to a different client."));
    }
    let target = Target::refreshed(c.v, c.form("scope"), c.form("resource"), (g.version, &g.scope))?;
    let tid = if wire::is_multi_tenant(c.tenant) { g.tid.clone() } else { st.tenant_id(c.tenant).unwrap_or_default() };
    let new_rt = if st.settings.rotate {
        st.live_rts.remove(rt);
        st.dead_rts.insert(rt.to_string(), 70008);
        Some(state::new_refresh_token(st, c.v, c.client_id, &g.user, &tid, &target))
    } else {
        None
    };
    Ok(c.issue(st, tid, target, Some(g.user), new_rt, None))
}

fn password(st: &mut State, c: &Ctx) -> Result<Value, AadError> {
    if matches!(c.tenant.to_ascii_lowercase().as_str(), "common" | "consumers") {
        return Err(AadError::not_on_multi_tenant(c.tenant));
    }
    let (username, password) = (c.required("username")?, c.required("password")?);
    let target = c.user_target()?;
    let ok = st.user(username).filter(|u| wire::same_secret(password, &u.password)).map(|u| u.username.clone());
    let Some(username) = ok else {
        return Err(AadError::invalid_grant(50126, "Error validating credentials due to invalid username or password."));
    };
    let tid = st.tenant_id(c.tenant).unwrap_or_default();
    let rt = state::sign_in_refresh_token(st, c.v, c.client_id, &username, &tid, &target);
    Ok(c.issue(st, tid, target, Some(username), rt, None))
}

fn device_code(st: &mut State, c: &Ctx) -> Result<Value, AadError> {
    let code = c.form("device_code").or_else(|| c.form("code")).ok_or_else(|| AadError::missing("device_code"))?;
    let Some(dc) = st.device_codes.get(code).cloned() else {
        return Err(AadError::bad_request("bad_verification_code", 70018, "Invalid verification code. The device code is not known."));
    };
    if dc.redeemed {
        return Err(AadError::invalid_grant(70000, "The provided value for the input parameter 'device_code' is not valid: it was already redeemed."));
    }
    if dc.client_id != c.client_id {
        return Err(AadError::invalid_grant(70000, "The device code was issued to a different client."));
    }
    if wire::now() > dc.expires {
        return Err(AadError::bad_request("expired_token", 70019, "Verification code expired."));
    }
    let Some(user) = dc.approved_by.clone() else {
        return Err(AadError::bad_request("authorization_pending", 70016, "OAuth 2.0 device flow error. Authorization is pending. Continue polling."));
    };
    if let Some(d) = st.device_codes.get_mut(code) {
        d.redeemed = true;
    }
    let target = match dc.version {
        Version::V2 => Target::v2(&dc.scope)?,
        Version::V1 => Target::v1(Some(&dc.scope), None)?,
    };
    let tid = st.tenant_id(&dc.tenant).unwrap_or_default();
    let rt = state::sign_in_refresh_token(st, c.v, c.client_id, &user, &tid, &target);
    Ok(c.issue(st, tid, target, Some(user), rt, None))
}

fn authorization_code(st: &mut State, c: &Ctx) -> Result<Value, AadError> {
    let ac = token_request::redeem_code(&mut st.auth_codes, c.required("code")?, c.client_id, c.form("redirect_uri"), c.form("code_verifier"), c.auth == ClientAuth::Public)?;
    let target = match c.v {
        Version::V2 => Target::v2(c.form("scope").unwrap_or(&ac.scope))?,
        Version::V1 => Target::v1(c.form("resource"), c.form("scope").or(Some(&ac.scope)))?,
    };
    let tid = st.tenant_id(&ac.tenant).unwrap_or_default();
    let rt = state::sign_in_refresh_token(st, c.v, c.client_id, &ac.user, &tid, &target);
    Ok(c.issue(st, tid, target, Some(ac.user.clone()), rt, ac.nonce.clone()))
}
