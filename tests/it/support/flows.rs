//! The endpoints around the token endpoint: OpenID discovery, and the front halves of
//! the interactive flows: the device code endpoint that hands out a user code, and the
//! authorize endpoint that, for a user who is already signed in, redirects straight
//! back to the loopback `redirect_uri` with a code (or an error).

use serde_json::json;

use super::authority::{
    AuthCode, DeviceCode, RecordedRequest, Shared, Version, lock, tenant_not_found,
};
use super::http::Reply;
use super::issue::Target;
use super::wire::{self, AadError};

/// OpenID discovery document; 400 AADSTS90002 for a tenant that does not exist.
pub(crate) fn discovery(shared: &Shared, tenant: &str, v: Version) -> Reply {
    let st = lock(shared);
    if !st.tenant_exists(tenant) {
        let e = AadError::bad_request("invalid_tenant", 90002, tenant_not_found(tenant));
        return e.reply();
    }
    let url = &st.url;
    let issuer_tid = if wire::is_multi_tenant(tenant) {
        "{tenantid}".to_string()
    } else {
        wire::tenant_id(tenant)
    };
    let (oauth, issuer) = match v {
        Version::V2 => ("oauth2/v2.0", format!("{url}/{issuer_tid}/v2.0")),
        Version::V1 => ("oauth2", format!("https://sts.windows.net/{issuer_tid}/")),
    };
    let jwks = match v {
        Version::V2 => format!("{url}/{tenant}/discovery/v2.0/keys"),
        Version::V1 => format!("{url}/{tenant}/discovery/keys"),
    };
    Reply::json(
        200,
        &json!({
            "token_endpoint": format!("{url}/{tenant}/{oauth}/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": jwks,
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": issuer,
            "request_uri_parameter_supported": false,
            "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
            "authorization_endpoint": format!("{url}/{tenant}/{oauth}/authorize"),
            "device_authorization_endpoint": format!("{url}/{tenant}/{oauth}/devicecode"),
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
            "end_session_endpoint": format!("{url}/{tenant}/{oauth}/logout"),
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "preferred_username", "name", "tid", "ver", "oid"],
            "kerberos_endpoint": format!("{url}/{tenant}/kerberos"),
            "tenant_region_scope": "NA",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }),
    )
}

/// `POST /{tenant}/oauth2[/v2.0]/devicecode`.
pub(crate) fn devicecode(
    shared: &Shared,
    tenant: &str,
    v: Version,
    req: &RecordedRequest,
) -> Reply {
    let mut st = lock(shared);
    if !st.tenant_exists(tenant) {
        return AadError::bad_request("invalid_request", 90002, tenant_not_found(tenant)).reply();
    }
    let Some(client_id) = req.form_get("client_id").filter(|s| !s.is_empty()) else {
        return AadError::missing("client_id").reply();
    };
    if !st.apps.contains_key(client_id) {
        return unknown_client(client_id, tenant).reply();
    }
    let scope = match v {
        Version::V2 => req.form_get("scope"),
        Version::V1 => req.form_get("resource"),
    };
    let Some(scope) = scope.filter(|s| !s.trim().is_empty()) else {
        return AadError::missing(if v == Version::V2 {
            "scope"
        } else {
            "resource"
        })
        .reply();
    };
    if v == Version::V2
        && let Err(e) = Target::v2(scope)
    {
        return e.reply();
    }
    let device_code = st.opaque("DAQABIQEAAADMOCK.");
    let user_code = user_code();
    let expires_in = st.device_expires_in;
    st.device_codes.insert(
        device_code.clone(),
        DeviceCode {
            client_id: client_id.to_string(),
            tenant: tenant.to_string(),
            scope: scope.to_string(),
            version: v,
            created: wire::now(),
            expires_in,
            pending_polls: 0,
            redeemed: false,
        },
    );
    let verification = format!("{}/devicelogin", st.url);
    let uri_field = if v == Version::V2 {
        "verification_uri"
    } else {
        "verification_url"
    };
    let mut body = json!({
            "user_code": user_code,
            "device_code": device_code,
            // Strings on purpose: Entra has sent both shapes; clients must take either.
            "expires_in": st.device_expires_in.to_string(),
            "interval": st.interval.to_string(),
            "message": format!(
                "To sign in, use a web browser to open the page {verification} and enter the code {user_code} to authenticate."
            ),
    });
    body[uri_field] = json!(verification);
    Reply::json(200, &body)
}

/// Nine characters from an alphabet without look-alikes, like Entra's user codes.
fn user_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    wire::random_bytes(9)
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

fn unknown_client(client_id: &str, tenant: &str) -> AadError {
    AadError::bad_request(
        "unauthorized_client",
        700016,
        format!(
            "Application with identifier '{client_id}' was not found in the directory '{tenant}'."
        ),
    )
}

/// Entra shows an error page (no redirect) when it cannot trust the redirect_uri.
fn error_page(code: u32, msg: &str) -> Reply {
    Reply::new(
        400,
        "text/html; charset=utf-8",
        format!(
            "<!DOCTYPE html>\n<html><head><title>Sign in to your account</title></head><body>\
             <p>AADSTS{code}: {msg}</p></body></html>\n"
        ),
    )
}

fn append_query(uri: &str, params: &[(&str, &str)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{}", ser.finish())
}

/// `GET /{tenant}/oauth2/v2.0/authorize`: the user is already signed in, so answer with
/// a 302 to the redirect_uri carrying a code, or an OAuth error for a bad request.
pub(crate) fn authorize(shared: &Shared, tenant: &str, req: &RecordedRequest) -> Reply {
    let mut st = lock(shared);
    let q = |k: &str| req.query_get(k).filter(|s| !s.is_empty());
    if !st.tenant_exists(tenant) {
        return error_page(90002, &tenant_not_found(tenant));
    }
    let Some(client_id) = q("client_id") else {
        return error_page(
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        );
    };
    if !st.apps.contains_key(client_id) {
        return error_page(700016, &unknown_client(client_id, tenant).message);
    }
    let Some(redirect_uri) = q("redirect_uri") else {
        return error_page(
            900144,
            "The request body must contain the following parameter: 'redirect_uri'.",
        );
    };
    let state = q("state");
    let fail = |error: &str, code: u32, msg: &str| {
        let desc = format!("AADSTS{code}: {msg}");
        let mut params = vec![("error", error), ("error_description", desc.as_str())];
        if let Some(s) = state {
            params.push(("state", s));
        }
        Reply::redirect(&append_query(redirect_uri, &params))
    };
    if q("response_type") != Some("code") {
        return fail(
            "unsupported_response_type",
            700054,
            "response_type must be 'code' for this client.",
        );
    }
    let Some(challenge) = q("code_challenge") else {
        return fail(
            "invalid_request",
            9002325,
            "Proof Key for Code Exchange is required: 'code_challenge' is missing.",
        );
    };
    if q("code_challenge_method") != Some("S256") {
        return fail(
            "invalid_request",
            501481,
            "The code_challenge_method must be 'S256'.",
        );
    }
    let Some(scope) = q("scope") else {
        return fail(
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.",
        );
    };
    if let Err(e) = Target::v2(scope) {
        return fail(e.error, e.code, &e.message);
    }
    let user = st
        .person_at_browser
        .clone()
        .or_else(|| q("login_hint").map(str::to_string))
        .unwrap_or_else(|| st.default_user());
    let code = st.opaque("0.AXMOCKAC.");
    st.auth_codes.insert(
        code.clone(),
        AuthCode {
            client_id: client_id.to_string(),
            tenant: tenant.to_string(),
            redirect_uri: redirect_uri.to_string(),
            challenge: Some(challenge.to_string()),
            scope: scope.to_string(),
            user,
            nonce: q("nonce").map(str::to_string),
            redeemed: false,
        },
    );
    let session_state = wire::random_guid();
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = state {
        params.push(("state", s));
    }
    params.push(("session_state", session_state.as_str()));
    Reply::redirect(&append_query(redirect_uri, &params))
}

/// IMDS's token endpoint for the managed identities added: a v1-style token of the
/// identity's home tenant for `resource` (`api://AzureADTokenExchange` makes it a federated
/// assertion); 400 as IMDS answers for an identity this host does not have.
pub(crate) fn imds(shared: &Shared, req: &RecordedRequest) -> Reply {
    if req.header("metadata") != Some("true") {
        return Reply::json(400, &json!({"error": "invalid_request", "error_description": "Required metadata header not specified"}));
    }
    let (Some(resource), Some("2018-02-01")) = (req.query_get("resource"), req.query_get("api-version")) else {
        return Reply::json(400, &json!({"error": "invalid_request", "error_description": "resource and api-version 2018-02-01 are required"}));
    };
    let which = req.query_get("client_id").unwrap_or("system").to_string();
    let mut st = lock(shared);
    let Some(tenant) = st.managed_identities.get(&which).cloned() else {
        return Reply::json(400, &json!({"error": "invalid_request", "error_description": "Identity not found"}));
    };
    st.serial += 1;
    let (now, tid) = (wire::now(), wire::tenant_id(&tenant));
    let oid = wire::guid_from("managed-identity", &which);
    let claims = json!({"aud": resource, "iss": format!("https://sts.windows.net/{tid}/"), "iat": now, "nbf": now, "exp": now + 3600,
        "tid": tid, "appid": which, "oid": oid, "sub": oid, "idtyp": "app", "mock_serial": st.serial});
    Reply::json(200, &json!({"access_token": wire::jwt(&claims), "expires_on": (now + 3600).to_string(), "expires_in": "3600",
        "resource": resource, "token_type": "Bearer", "client_id": which}))
}
