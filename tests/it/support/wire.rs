//! Entra's wire shapes as the mock authority writes them: AADSTS error bodies,
//! JWT-shaped tokens, GUIDs, timestamps, and the well-known ids the real service uses.
//! Kept apart from the grant logic so both the mock and the tests (which decode the
//! tokens they get back) share one definition.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SecureRandom as _;
use serde_json::{Value, json};

use super::http::Reply;

/// Home tenant of users who sign in through `common` or `organizations`.
pub const HOME_TENANT: &str = "11111111-1111-1111-1111-111111111111";
/// The tenant of personal Microsoft accounts (`consumers`).
pub const MSA_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
/// Microsoft Graph's app id: the audience when only OIDC scopes were asked for.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
/// Well-known first-party public clients: they exist in every tenant, as in real Entra.
pub const AZURE_CLI: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
pub const AZURE_POWERSHELL: &str = "1950a258-227b-4e31-a9cf-717495945fc2";
pub const AKS_CLIENT: &str = "80faf920-1908-4b52-b5ef-a8e7bedfc67a";
/// Clients of the "family of client ids": one's refresh token redeems for another.
pub const FOCI_CLIENTS: &[&str] = &[AZURE_CLI, AZURE_POWERSHELL];
/// The user the device code and authorization code flows sign in when none was added.
pub const DEFAULT_USER: &str = "user@contoso.test";
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Scopes that name no resource.
pub const OIDC_SCOPES: &[&str] = &["openid", "profile", "offline_access", "email"];

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    ring::rand::SystemRandom::new()
        .fill(&mut buf)
        .expect("system randomness");
    buf
}

pub fn b64url(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

fn format_guid(b: &[u8]) -> String {
    let h: String = b[..16].iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

pub fn random_guid() -> String {
    let mut b = random_bytes(16);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    format_guid(&b)
}

/// A stable GUID for `name` within `namespace` (SHA-256 based), so ids are reproducible.
pub fn guid_from(namespace: &str, name: &str) -> String {
    let d = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{namespace}\0{name}").as_bytes(),
    );
    let mut b = d.as_ref()[..16].to_vec();
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    format_guid(&b)
}

pub fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// `common`, `organizations`, `consumers`: authorities that are not one tenant.
pub fn is_multi_tenant(tenant: &str) -> bool {
    matches!(
        tenant.to_ascii_lowercase().as_str(),
        "common" | "organizations" | "consumers"
    )
}

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

/// `2025-01-31 12:00:00Z`, the shape of `timestamp` in Entra error bodies.
pub fn aad_timestamp() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// base64url(header).base64url(claims).base64url("sig"): real-shaped, unsigned.
pub fn jwt(claims: &Value) -> String {
    let header = json!({"typ": "JWT", "alg": "RS256", "kid": "mock"});
    format!(
        "{}.{}.{}",
        b64url(header.to_string()),
        b64url(claims.to_string()),
        b64url("sig")
    )
}

/// The claims of a JWT (signature not checked); `None` when it is not three base64url JSON segments.
pub fn jwt_claims(token: &str) -> Option<Value> {
    jwt_parts(token).map(|(_, claims)| claims)
}

/// Header and claims of a three-segment JWT.
pub fn jwt_parts(token: &str) -> Option<(Value, Value)> {
    let mut it = token.split('.');
    let (Some(h), Some(c), Some(_sig), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return None;
    };
    let header: Value = serde_json::from_slice(&b64url_decode(h)?).ok()?;
    let claims: Value = serde_json::from_slice(&b64url_decode(c)?).ok()?;
    (header.is_object() && claims.is_object()).then_some((header, claims))
}

/// An Entra error answer: status, OAuth `error`, one AADSTS code and its message.
#[derive(Clone, Debug)]
pub struct AadError {
    pub status: u16,
    pub error: &'static str,
    pub code: u32,
    pub message: String,
    pub suberror: Option<&'static str>,
    pub claims: Option<String>,
}

impl AadError {
    pub fn new(
        status: u16,
        error: &'static str,
        code: u32,
        message: impl Into<String>,
    ) -> AadError {
        AadError {
            status,
            error,
            code,
            message: message.into(),
            suberror: None,
            claims: None,
        }
    }

    pub fn bad_request(error: &'static str, code: u32, message: impl Into<String>) -> AadError {
        AadError::new(400, error, code, message)
    }

    pub fn invalid_grant(code: u32, message: impl Into<String>) -> AadError {
        AadError::new(400, "invalid_grant", code, message)
    }

    pub fn invalid_client(code: u32, message: impl Into<String>) -> AadError {
        AadError::new(401, "invalid_client", code, message)
    }

    /// AADSTS900144: a required form field is missing.
    pub fn missing(field: &str) -> AadError {
        AadError::bad_request(
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{field}'."),
        )
    }

    pub fn body(&self) -> Value {
        let trace_id = random_guid();
        let correlation_id = random_guid();
        let timestamp = aad_timestamp();
        let mut body = json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
                self.code, self.message
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        });
        if let Some(s) = self.suberror {
            body["suberror"] = json!(s);
        }
        if let Some(c) = &self.claims {
            body["claims"] = json!(c);
        }
        body
    }

    pub fn reply(&self) -> Reply {
        Reply::json(self.status, &self.body())
    }
}
