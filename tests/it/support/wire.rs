//! Entra's wire shapes as the mock authority writes them: the emulator's own (AADSTS error
//! bodies, GUIDs, timestamps, base64url, the well-known ids: src/emulator/wire.rs, compiled
//! here by path so the two cannot drift apart), plus what only the tests need: fixed home
//! tenants, predictable user ids and unsigned JWT-shaped tokens.

use serde_json::{Value, json};

use super::http::Reply;

pub(crate) use super::entra_wire::*;

/// Home tenant of users who sign in through `common` or `organizations`.
pub const HOME_TENANT: &str = "11111111-1111-1111-1111-111111111111";
/// The tenant of personal Microsoft accounts (`consumers`).
pub const MSA_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
/// Well-known first-party public clients: they exist in every tenant, as in real Entra.
pub const AZURE_CLI: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
pub const AZURE_POWERSHELL: &str = "1950a258-227b-4e31-a9cf-717495945fc2";
pub const AKS_CLIENT: &str = "80faf920-1908-4b52-b5ef-a8e7bedfc67a";
/// The user the device code and authorization code flows sign in when none was added.
pub const DEFAULT_USER: &str = "user@contoso.test";

/// The object id the mock gives a user: deterministic, so tests can predict it.
pub fn user_oid(username: &str) -> String {
    guid_from("user", &username.to_ascii_lowercase())
}

/// The tenant id (`tid`) a token issued through `tenant` carries.
pub fn tenant_id(tenant: &str) -> String {
    let t = tenant.to_ascii_lowercase();
    match t.as_str() {
        "common" | "organizations" => HOME_TENANT.to_string(),
        "consumers" => MSA_TENANT.to_string(),
        _ if is_guid(&t) => t,
        _ => guid_from("tenant", &t),
    }
}

/// base64url(header).base64url(claims).base64url("sig"): real-shaped, unsigned.
pub fn jwt(claims: &Value) -> String {
    let header = json!({"typ": "JWT", "alg": "RS256", "kid": "mock"});
    format!("{}.{}.{}", b64url(header.to_string()), b64url(claims.to_string()), b64url("sig"))
}

/// The claims of a JWT (signature not checked); `None` when it is not three base64url JSON segments.
pub fn jwt_claims(token: &str) -> Option<Value> {
    jwt_parts(token).map(|(_, claims)| claims)
}

impl AadError {
    /// Entra's error answer as the mock sends it.
    pub fn reply(&self) -> Reply {
        Reply::json(self.status, &self.body())
    }
}
