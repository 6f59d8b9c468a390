//! Routes each request: the token endpoints (v2 and v1), device code and authorize, OpenID
//! discovery, JWKS, MSAL's instance discovery, and the managed-identity endpoints in
//! IMDS style (`/metadata/identity/oauth2/token` with `Metadata: true`) and App Service
//! style (`/msi/token` with `X-IDENTITY-HEADER`). Every answer carries a request id, and
//! echoes `client-request-id`, as Entra's do.

use serde_json::json;

use super::grants;
use super::http::{Reply, Request};
use super::signin;
use super::state::{self, ClientAuth, Shared, Version, lock};
use super::wire::{self, AadError};

pub(crate) fn handle(shared: &Shared, req: &Request) -> Reply {
    let segs: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let reply = match (req.method.as_str(), segs.as_slice()) {
        ("POST", [tenant, "oauth2", "v2.0", "token"]) => grants::token(shared, tenant, Version::V2, req),
        ("POST", [tenant, "oauth2", "token"]) => grants::token(shared, tenant, Version::V1, req),
        (_, [_, "oauth2", "v2.0", "token"] | [_, "oauth2", "token"]) => AadError::bad_request("invalid_request", 900561, "The endpoint only accepts POST requests.").reply(),
        ("POST", [tenant, "oauth2", "v2.0", "devicecode"]) => signin::devicecode(shared, tenant, Version::V2, req),
        ("POST", [tenant, "oauth2", "devicecode"]) => signin::devicecode(shared, tenant, Version::V1, req),
        ("GET" | "POST", [tenant, "oauth2", "v2.0", "authorize"]) => signin::authorize(shared, tenant, Version::V2, req),
        ("GET" | "POST", [tenant, "oauth2", "authorize"]) => signin::authorize(shared, tenant, Version::V1, req),
        ("GET" | "POST", ["devicelogin"]) => signin::devicelogin(shared, req),
        ("GET", [tenant, "v2.0", ".well-known", "openid-configuration"]) => discovery(shared, tenant, Version::V2),
        ("GET", [tenant, ".well-known", "openid-configuration"]) => discovery(shared, tenant, Version::V1),
        ("GET", [_, "discovery", "v2.0", "keys"] | [_, "discovery", "keys"] | ["discovery", "keys"]) => Reply::json(200, &lock(shared).signer.jwks()),
        ("GET", [_, "discovery", "instance"]) => instance_discovery(shared, req),
        ("GET", ["metadata", "identity", "oauth2", "token"]) => imds(shared, req),
        ("GET" | "POST", ["msi", "token"]) => app_service(shared, req),
        ("GET", [""]) => {
            let st = lock(shared);
            Reply::html(200, format!("<!DOCTYPE html>\n<html><body><h1>entra-token emulator</h1><p>A local stand-in for Microsoft Entra ID: not a security boundary, not for production. See docs/emulator.md.</p><p><a href=\"/devicelogin\">Device code sign-in</a></p><p>OpenID configuration: <code>{}/{}/v2.0/.well-known/openid-configuration</code></p></body></html>\n", st.url, st.settings.first_tenant().domain))
        }
        _ => Reply::new(404, "text/plain; charset=utf-8", "not found"),
    };
    let reply = reply.with_header("x-ms-request-id", &wire::random_guid());
    match req.header("client-request-id") {
        Some(id) if id.len() <= 100 => reply.with_header("client-request-id", id),
        _ => reply,
    }
}

/// OpenID discovery; 400 AADSTS90002 for a tenant the emulator does not have.
fn discovery(shared: &Shared, tenant: &str, v: Version) -> Reply {
    let st = lock(shared);
    let Some(tid) = st.tenant_id(tenant) else { return AadError::tenant_not_found(tenant).reply() };
    let url = &st.url;
    let issuer_tid = if wire::is_multi_tenant(tenant) { "{tenantid}".to_string() } else { tid };
    let (oauth, jwks) = match v {
        Version::V2 => ("oauth2/v2.0", format!("{url}/{tenant}/discovery/v2.0/keys")),
        Version::V1 => ("oauth2", format!("{url}/{tenant}/discovery/keys")),
    };
    Reply::json(
        200,
        &json!({
            "token_endpoint": format!("{url}/{tenant}/{oauth}/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": jwks,
            "response_modes_supported": ["query"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": st.issuer(v, &issuer_tid),
            "request_uri_parameter_supported": false,
            "authorization_endpoint": format!("{url}/{tenant}/{oauth}/authorize"),
            "device_authorization_endpoint": format!("{url}/{tenant}/{oauth}/devicecode"),
            "end_session_endpoint": format!("{url}/{tenant}/{oauth}/logout"),
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "preferred_username", "name", "tid", "ver", "oid", "emulator"],
            "tenant_region_scope": "NA",
            "cloud_instance_name": "entra-token.emulator",
            "emulator": true,
        }),
    )
}

/// `GET /common/discovery/instance?authorization_endpoint=…`, as MSAL asks before trusting
/// an authority it does not know: this emulator vouches for itself only.
fn instance_discovery(shared: &Shared, req: &Request) -> Reply {
    let st = lock(shared);
    let host = st.url.split("://").nth(1).unwrap_or("").to_string();
    let endpoint = req.query("authorization_endpoint").unwrap_or("");
    let rest = endpoint.strip_prefix("https://").or_else(|| endpoint.strip_prefix("http://")).unwrap_or("");
    let (their_host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let tenant = path.split('/').next().unwrap_or("");
    // MSAL names the instance by host name alone, without the port.
    let ours = their_host.eq_ignore_ascii_case(&host) || host.split(':').next().is_some_and(|h| their_host.eq_ignore_ascii_case(h));
    if !ours || tenant.is_empty() {
        let mut body = AadError::bad_request("invalid_instance", 50049, "Unknown or invalid instance.").body();
        body["error"] = json!("invalid_instance");
        return Reply::json(400, &body);
    }
    Reply::json(
        200,
        &json!({
            "tenant_discovery_endpoint": format!("{}/{tenant}/v2.0/.well-known/openid-configuration", st.url),
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        }),
    )
}

/// The resource a managed-identity request names (a v2 scope's `/.default` stripped).
fn mi_resource(req: &Request) -> Option<String> {
    req.param("resource").map(str::to_string).or_else(|| req.param("scope").map(|s| s.trim_end_matches("/.default").to_string())).filter(|r| !r.trim().is_empty())
}

/// The identity that answers: a user-assigned one the request names by `client_id` (any
/// id: the emulator has every identity a test asks for), else the emulator's own.
fn mi_client(st: &state::State, req: &Request) -> String {
    req.param("client_id").or_else(|| req.param("clientid")).map(str::to_ascii_lowercase).unwrap_or_else(|| st.settings.mi_client_id.clone())
}

fn mi_token(st: &state::State, client: &str, resource: &str) -> (String, i64, i64) {
    let now = wire::now();
    let life = st.settings.lifetime;
    let tid = st.settings.first_tenant().id.clone();
    (state::app_token(st, Version::V1, client, ClientAuth::Assertion, &tid, resource, (now, now + life)), now, life)
}

/// IMDS: `GET /metadata/identity/oauth2/token?api-version=…&resource=R` with `Metadata: true`.
fn imds(shared: &Shared, req: &Request) -> Reply {
    let st = lock(shared);
    let err = |status: u16, e: &str, d: &str| Reply::json(status, &json!({"error": e, "error_description": d}));
    if !req.header("metadata").is_some_and(|m| m.eq_ignore_ascii_case("true")) {
        return err(400, "invalid_request", "Required metadata header not specified");
    }
    if req.query("api-version").is_none() {
        return err(400, "invalid_request", "Required query variable 'api-version' is missing");
    }
    let Some(resource) = mi_resource(req) else { return err(400, "invalid_request", "Required query variable 'resource' is missing") };
    let client = mi_client(&st, req);
    let (at, now, life) = mi_token(&st, &client, &resource);
    Reply::json(200, &json!({"access_token": at, "client_id": client, "expires_in": life.to_string(), "expires_on": (now + life).to_string(), "ext_expires_in": life.to_string(), "not_before": now.to_string(), "resource": resource, "token_type": "Bearer"}))
}

/// App Service: `GET /msi/token?api-version=2019-08-01&resource=R` with `X-IDENTITY-HEADER`.
fn app_service(shared: &Shared, req: &Request) -> Reply {
    let st = lock(shared);
    let err = |status: u16, m: &str| Reply::json(status, &json!({"statusCode": status, "message": m, "correlationId": wire::random_guid()}));
    let header_ok = req.header("x-identity-header").is_some_and(|h| wire::same_secret(h, &st.identity_header));
    if !header_ok {
        return err(401, "The X-IDENTITY-HEADER is missing or wrong: use IDENTITY_HEADER as the emulator printed it");
    }
    let Some(resource) = mi_resource(req) else { return err(400, "resource is missing") };
    let client = mi_client(&st, req);
    let (at, now, life) = mi_token(&st, &client, &resource);
    Reply::json(200, &json!({"access_token": at, "expires_on": (now + life).to_string(), "resource": resource, "token_type": "Bearer", "client_id": client}))
}
