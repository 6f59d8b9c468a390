//! The token endpoint's grants as Entra judges them: tenant, client and client
//! credential checks first, then client credentials, refresh token (with rotation and
//! revocation), password (ROPC, MFA), device code polling and authorization code + PKCE,
//! each failing with the AADSTS code real Entra uses.

use std::panic::{AssertUnwindSafe, catch_unwind};

use serde_json::Value;

use super::authority::{RecordedRequest, Shared, State, UserCtx, Version, lock, tenant_not_found};
use super::http::Reply;
use super::issue::{self, ClientAuth, Issue, Target};
use super::{pop, sshcert, token_request};
use super::wire::{self, AadError};

/// Answers one token endpoint POST that no fault intercepted.
pub(crate) fn token(shared: &Shared, tenant: &str, v: Version, req: &RecordedRequest) -> Reply {
    // The checker may be slow or look at the mock itself: run it without holding the lock.
    let verdict = assertion_verdict(shared, tenant, v, req);
    let mut st = lock(shared);
    match grant(&mut st, tenant, v, req, verdict) {
        Ok(body) => Reply::json(200, &body),
        Err(e) => e.reply(),
    }
}

fn assertion_verdict(
    shared: &Shared,
    tenant: &str,
    v: Version,
    req: &RecordedRequest,
) -> Option<Result<(), String>> {
    let assertion = req.form_get("client_assertion")?;
    let client_id = token_request::client_id_and_secret(|k| req.form_get(k).map(str::to_string), req.header("authorization")).0.unwrap_or_default();
    let (checker, url) = {
        let st = lock(shared);
        (st.checker.clone(), st.url.clone())
    };
    let endpoint = match v {
        Version::V2 => format!("{url}/{tenant}/oauth2/v2.0/token"),
        Version::V1 => format!("{url}/{tenant}/oauth2/token"),
    };
    Some(match checker {
        Some(f) => match catch_unwind(AssertUnwindSafe(|| f(&client_id, assertion, &endpoint))) {
            Ok(verdict) => verdict,
            Err(panic) => Err(panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "assertion checker panicked".to_string())),
        },
        None => wire::jwt_parts(assertion)
            .map(|_| ())
            .ok_or_else(|| "client_assertion is not a well-formed JWT".to_string()),
    })
}

fn grant(
    st: &mut State,
    tenant: &str,
    v: Version,
    req: &RecordedRequest,
    verdict: Option<Result<(), String>>,
) -> Result<Value, AadError> {
    if !st.tenant_exists(tenant) {
        return Err(AadError::bad_request(
            "invalid_request",
            90002,
            tenant_not_found(tenant),
        ));
    }
    let grant_type = req
        .form_get("grant_type")
        .ok_or_else(|| AadError::missing("grant_type"))?;
    let (client_id, secret) = token_request::client_id_and_secret(|k| req.form_get(k).map(str::to_string), req.header("authorization"));
    let client_id = client_id.ok_or_else(|| AadError::missing("client_id"))?;
    let Some(app_secret) = st.apps.get(&client_id).cloned() else {
        return Err(AadError::bad_request(
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can \
                 happen if the application has not been installed by the administrator of the tenant or consented \
                 to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        ));
    };
    let given = token_request::Presented { secret: secret.as_deref(), assertion: req.form_get("client_assertion"), assertion_type: req.form_get("client_assertion_type") };
    // The checker's verdict, reached before the lock (None: no assertion was sent).
    let check = |_: &str| match verdict {
        Some(Ok(())) => Ok(()),
        Some(Err(why)) => Err(AadError::invalid_client(700027, format!("Client assertion failed signature validation. ({why})"))),
        None => Err(AadError::missing("client_assertion")),
    };
    let registered = app_secret.as_deref();
    let auth = token_request::authenticate(&client_id, (registered.is_some(), registered), &given, grant_type == "client_credentials", check)?;
    let c = Ctx {
        tenant,
        v,
        req,
        client_id: &client_id,
        auth,
    };
    match grant_type {
        "client_credentials" => client_credentials(st, &c),
        "refresh_token" => refresh(st, &c),
        "password" => password(st, &c),
        wire::DEVICE_CODE_GRANT | "device_code" => device_code(st, &c),
        "authorization_code" => authorization_code(st, &c),
        other => Err(AadError::bad_request(
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{other}'."),
        )),
    }
}

/// The parts of a token request every grant needs.
struct Ctx<'a> {
    tenant: &'a str,
    v: Version,
    req: &'a RecordedRequest,
    client_id: &'a str,
    auth: ClientAuth,
}

impl Ctx<'_> {
    fn form(&self, k: &str) -> Option<&str> {
        self.req.form_get(k).filter(|s| !s.is_empty())
    }

    fn required(&self, k: &str) -> Result<&str, AadError> {
        self.form(k).ok_or_else(|| AadError::missing(k))
    }

    /// The user-flow target: v2 `scope` (required) or v1 `resource`.
    fn user_target(&self) -> Result<Target, AadError> {
        match self.v {
            Version::V2 => Target::v2(self.required("scope")?),
            Version::V1 => Target::v1(self.form("resource"), self.form("scope")),
        }
    }

    fn issue(
        &self,
        st: &mut State,
        tid: String,
        target: Target,
        user: Option<UserCtx>,
        rt: Option<String>,
    ) -> Result<Value, AadError> {
        let i = Issue {
            v: self.v,
            client_id: self.client_id.to_string(),
            auth: self.auth,
            tid,
            target,
            user,
            refresh_token: rt,
            nonce: None,
        };
        self.answer(st, i)
    }

    /// The answer for `i`: a bearer token, or an SSH certificate when the form asks for one.
    fn answer(&self, st: &mut State, i: Issue) -> Result<Value, AadError> {
        let pop = token_request::pop_requested(|k| self.form(k).map(str::to_string))?;
        let ssh = if pop.is_some() { None } else { sshcert::requested(|k| self.form(k).map(str::to_string))? };
        let principal = i.user.as_ref().map_or(i.client_id.clone(), |u| u.username.clone());
        let mut body = issue::token_reply(st, i);
        if let Some(key) = ssh {
            st.serial += 1;
            sshcert::answer(&st.ssh_ca, &mut body, st.serial, &principal, &key, st.lifetime);
            st.issued_ssh_certs.push(body["access_token"].as_str().unwrap_or_default().to_string());
        }
        if let Some(kid) = pop {
            pop::answer(st, &mut body, &kid);
        }
        Ok(body)
    }
}

fn client_credentials(st: &mut State, c: &Ctx) -> Result<Value, AadError> {
    if wire::is_multi_tenant(c.tenant) {
        return Err(AadError::not_on_multi_tenant(c.tenant));
    }
    let target = match c.v {
        Version::V2 => Target::client_credentials(c.form("scope"))?,
        Version::V1 => Target::v1(c.form("resource"), None)?,
    };
    c.issue(st, wire::tenant_id(c.tenant), target, None, None)
}

fn dead_refresh_token(code: u32) -> AadError {
    let msg = match code {
        70043 => {
            "The refresh token has expired or is invalid due to sign-in frequency checks by conditional access."
        }
        700082 => {
            "The refresh token has expired due to inactivity. The token was issued a long time ago and was inactive for 90.00:00:00."
        }
        50173 => {
            "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password."
        }
        70008 => {
            "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource."
        }
        _ => "The refresh token is no longer valid. Sign in again.",
    };
    AadError::invalid_grant(code, msg)
}

/// A tenant's policy (or membership) refusing a refresh token that is itself fine.
fn tenant_refusal(code: u32, tenant: &str) -> AadError {
    let msg = match code {
        50076 => "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access this resource.".to_string(),
        50079 => "Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication to access this resource.".to_string(),
        50020 => format!("User account from identity provider does not exist in tenant '{tenant}' and cannot access the application in that tenant. The account needs to be added as an external user in the tenant first."),
        90072 => format!("User account from identity provider does not exist in tenant '{tenant}' and cannot access the application."),
        65001 => "The user or administrator has not consented to use the application. Send an interactive authorization request for this user and resource.".to_string(),
        _ => format!("The request was refused by the policy of tenant '{tenant}'."),
    };
    AadError::invalid_grant(code, msg)
}

fn refresh(st: &mut State, c: &Ctx) -> Result<Value, AadError> {
    let rt = c.required("refresh_token")?;
    if let Some(&code) = st.dead_rts.get(rt) {
        return Err(dead_refresh_token(code));
    }
    let Some(g) = st.live_rts.get(rt).cloned() else {
        return Err(dead_refresh_token(70008));
    };
    if st.claims_need_sign_in && c.form("claims").is_some() {
        return Err(AadError::new(
            400,
            "interaction_required",
            50076,
            "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access this resource.",
        ));
    }
    if let Some(&code) = st.refresh_refusals.get(&c.tenant.to_ascii_lowercase()) {
        return Err(tenant_refusal(code, c.tenant));
    }
    let family = wire::FOCI.contains(&g.client_id.as_str())
        && wire::FOCI.contains(&c.client_id);
    if let Some((error, code)) = st.family_refusal.filter(|_| family && g.client_id != c.client_id) {
        return Err(AadError::new(
            400,
            error,
            code,
            format!("The refresh token was issued to client '{}', which is not in the same family as client '{}'.", g.client_id, c.client_id),
        ));
    }
    if g.client_id != c.client_id && !family {
        return Err(AadError::invalid_grant(
            70000,
            "Provided grant is invalid or malformed: the refresh token was issued to a different client.",
        ));
    }
    // Without a scope/resource the grant keeps what the refresh token was issued for.
    let target = Target::refreshed(c.v, c.form("scope"), c.form("resource"), (g.version, &g.scope))?;
    let tid = if wire::is_multi_tenant(c.tenant) {
        g.user.home_tid.clone()
    } else {
        wire::tenant_id(c.tenant)
    };
    let new_rt = if st.rotate {
        st.live_rts.remove(rt);
        st.dead_rts.insert(rt.to_string(), 70008);
        Some(issue::new_refresh_token(
            st,
            c.v,
            c.client_id,
            &g.user,
            &target,
        ))
    } else {
        None
    };
    c.issue(st, tid, target, Some(g.user), new_rt)
}

fn password(st: &mut State, c: &Ctx) -> Result<Value, AadError> {
    let t = c.tenant.to_ascii_lowercase();
    if t == "common" || t == "consumers" {
        return Err(AadError::not_on_multi_tenant(c.tenant));
    }
    let username = c.required("username")?;
    let password = c.required("password")?;
    let target = c.user_target()?;
    let user = st
        .users
        .iter()
        .find(|(u, p)| u.eq_ignore_ascii_case(username) && p == password)
        .map(|(u, _)| u.clone());
    let Some(username) = user else {
        return Err(AadError::invalid_grant(
            50126,
            "Error validating credentials due to invalid username or password.",
        ));
    };
    if st.mfa_for_password {
        let mut e = AadError::invalid_grant(
            50076,
            format!(
                "Due to a configuration change made by your administrator, or because you moved to a new location, \
                 you must use multi-factor authentication to access '{}'.",
                target.resource
            ),
        );
        e.suberror = Some("basic_action");
        e.claims = Some(
            r#"{"access_token":{"capolids":{"essential":true,"values":["mock-mfa-policy"]}}}"#
                .into(),
        );
        return Err(e);
    }
    let tid = wire::tenant_id(c.tenant);
    let user = st.person(&username, &tid);
    let rt = issue::sign_in_refresh_token(st, c.v, c.client_id, &user, &target);
    c.issue(st, tid, target, Some(user), rt)
}

fn device_error(error: &'static str, code: u32, msg: &str) -> AadError {
    AadError::bad_request(error, code, msg)
}

fn device_code(st: &mut State, c: &Ctx) -> Result<Value, AadError> {
    let code = c
        .form("device_code")
        .or_else(|| c.form("code"))
        .ok_or_else(|| AadError::missing("device_code"))?;
    let Some(dc) = st.device_codes.get(code).cloned() else {
        return Err(device_error(
            "bad_verification_code",
            70018,
            "Invalid verification code. The device code is not known.",
        ));
    };
    if dc.redeemed {
        return Err(AadError::invalid_grant(
            70000,
            "The provided value for the input parameter 'device_code' is not valid: it was already redeemed.",
        ));
    }
    if dc.client_id != c.client_id {
        return Err(AadError::invalid_grant(
            70000,
            "The device code was issued to a different client.",
        ));
    }
    if wire::now() > dc.created + dc.expires_in {
        return Err(device_error(
            "expired_token",
            70019,
            "Verification code expired.",
        ));
    }
    if st.declined {
        return Err(device_error(
            "authorization_declined",
            70000,
            "The end user denied the authorization request.",
        ));
    }
    if st.slow_down_once {
        st.slow_down_once = false;
        return Err(device_error(
            "slow_down",
            70016,
            "OAuth 2.0 device flow error. Polling too fast: slow down.",
        ));
    }
    if dc.pending_polls < st.approve_after {
        if let Some(d) = st.device_codes.get_mut(code) {
            d.pending_polls += 1;
        }
        return Err(device_error(
            "authorization_pending",
            70016,
            "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        ));
    }
    if let Some(d) = st.device_codes.get_mut(code) {
        d.redeemed = true;
    }
    let target = match dc.version {
        Version::V2 => Target::v2(&dc.scope)?,
        Version::V1 => Target::v1(Some(&dc.scope), None)?,
    };
    let tid = wire::tenant_id(&dc.tenant);
    let who = st.default_user();
    let user = st.person(&who, &tid);
    let rt = issue::sign_in_refresh_token(st, c.v, c.client_id, &user, &target);
    c.issue(st, tid, target, Some(user), rt)
}

fn authorization_code(st: &mut State, c: &Ctx) -> Result<Value, AadError> {
    let ac = token_request::redeem_code(&mut st.auth_codes, c.required("code")?, c.client_id, c.form("redirect_uri"), c.form("code_verifier"), c.auth == ClientAuth::Public)?;
    let target = match c.v {
        Version::V2 => Target::v2(c.form("scope").unwrap_or(&ac.scope))?,
        Version::V1 => Target::v1(c.form("resource"), c.form("scope").or(Some(&ac.scope)))?,
    };
    let tid = wire::tenant_id(&ac.tenant);
    let user = st.person(&ac.user, &tid);
    let rt = issue::sign_in_refresh_token(st, c.v, c.client_id, &user, &target);
    let i = Issue {
        v: c.v,
        client_id: c.client_id.to_string(),
        auth: c.auth,
        tid,
        target,
        user: Some(user),
        refresh_token: rt,
        nonce: ac.nonce.clone(),
    };
    c.answer(st, i)
}
