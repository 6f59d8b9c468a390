//! Entra's wire shapes as the emulator writes them: AADSTS error bodies (error,
//! error_description with its AADSTS code, error_codes, timestamp, trace_id,
//! correlation_id), GUIDs, tenant ids, base64url and the well-known ids every tenant has.
//! The tests' stand-in authority compiles this same file (tests/it/support/mod.rs, by
//! `#[path]`), so it names only crates both have: no `crate::`, no sibling module.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SecureRandom as _;
use serde_json::{Value, json};

/// Microsoft Graph's app id: the audience when only OIDC scopes were asked for.
pub(crate) const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
/// First-party public clients that exist in every tenant, as in Entra (Azure CLI, the
/// default of azure-identity and of this product; Azure PowerShell; the AKS client;
/// Visual Studio Code's).
pub(crate) const FIRST_PARTY: &[&str] = &["04b07795-8ddb-461a-bbee-02f9e1bf7b46", "1950a258-227b-4e31-a9cf-717495945fc2", "80faf920-1908-4b52-b5ef-a8e7bedfc67a", "aebc6443-996d-45c2-90f0-388ff96faa56"];
/// The family of client ids: one's refresh token redeems for another.
pub(crate) const FOCI: &[&str] = &["04b07795-8ddb-461a-bbee-02f9e1bf7b46", "1950a258-227b-4e31-a9cf-717495945fc2"];
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
pub(crate) const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Scopes that name no resource.
pub(crate) const OIDC_SCOPES: &[&str] = &["openid", "profile", "offline_access", "email"];

/// Compares a secret given with the one registered by their SHA-256 digests, so the
/// comparison's time says nothing about the secret's bytes.
pub(crate) fn same_secret(given: &str, registered: &str) -> bool {
    let d = |s: &str| ring::digest::digest(&ring::digest::SHA256, s.as_bytes()).as_ref().to_vec();
    d(given) == d(registered)
}

pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub(crate) fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    // The OS's randomness never fails on the platforms we build for; zeros would still be unique per serial.
    let _ = ring::rand::SystemRandom::new().fill(&mut buf);
    buf
}

pub(crate) fn b64url(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

fn format_guid(b: &[u8]) -> String {
    let h: String = b[..16].iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

pub(crate) fn random_guid() -> String {
    let mut b = random_bytes(16);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    format_guid(&b)
}

/// A stable GUID for `name` within `namespace`, so a person's or tenant's id is the same
/// on every run.
pub(crate) fn guid_from(namespace: &str, name: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, format!("{namespace}\0{name}").as_bytes());
    let mut b = d.as_ref()[..16].to_vec();
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    format_guid(&b)
}

pub(crate) fn is_guid(s: &str) -> bool {
    s.len() == 36 && s.char_indices().all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { c == '-' } else { c.is_ascii_hexdigit() })
}

/// `common`, `organizations`, `consumers`: authorities that are not one tenant.
pub(crate) fn is_multi_tenant(tenant: &str) -> bool {
    matches!(tenant.to_ascii_lowercase().as_str(), "common" | "organizations" | "consumers")
}

/// `2025-01-31 12:00:00Z`, the shape of `timestamp` in Entra error bodies.
pub(crate) fn aad_timestamp() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z", t.year(), t.month() as u8, t.day(), t.hour(), t.minute(), t.second())
}

/// Header and claims of a three-segment JWT (the signature is not checked here).
pub(crate) fn jwt_parts(token: &str) -> Option<(Value, Value)> {
    let mut it = token.split('.');
    let (Some(h), Some(c), Some(_), None) = (it.next(), it.next(), it.next(), it.next()) else { return None };
    let header: Value = serde_json::from_slice(&b64url_decode(h)?).ok()?;
    let claims: Value = serde_json::from_slice(&b64url_decode(c)?).ok()?;
    (header.is_object() && claims.is_object()).then_some((header, claims))
}

/// An Entra error answer: status, OAuth `error`, one AADSTS code and its message.
#[derive(Clone, Debug)]
pub(crate) struct AadError {
    pub status: u16,
    pub error: &'static str,
    pub code: u32,
    pub message: String,
    /// MSAL's `suberror` (e.g. `basic_action`), when the answer carries one.
    pub suberror: Option<&'static str>,
    /// A claims challenge the client is to bring back in a new sign-in.
    pub claims: Option<String>,
}

impl AadError {
    pub(crate) fn new(status: u16, error: &'static str, code: u32, message: impl Into<String>) -> AadError {
        AadError { status, error, code, message: message.into(), suberror: None, claims: None }
    }
    pub(crate) fn bad_request(error: &'static str, code: u32, message: impl Into<String>) -> AadError {
        AadError::new(400, error, code, message)
    }
    pub(crate) fn invalid_grant(code: u32, message: impl Into<String>) -> AadError {
        AadError::new(400, "invalid_grant", code, message)
    }
    pub(crate) fn invalid_client(code: u32, message: impl Into<String>) -> AadError {
        AadError::new(401, "invalid_client", code, message)
    }
    /// AADSTS900144: a required field is missing.
    pub(crate) fn missing(field: &str) -> AadError {
        AadError::bad_request("invalid_request", 900144, format!("The request body must contain the following parameter: '{field}'."))
    }
    /// AADSTS9001023: an app's grant at `common`, `organizations` or `consumers`.
    pub(crate) fn not_on_multi_tenant(tenant: &str) -> AadError {
        AadError::bad_request("invalid_request", 9001023, format!("The grant type isn't supported over the /{tenant} endpoint. Please use the tenant-specific endpoint."))
    }
    pub(crate) fn tenant_not_found(tenant: &str) -> AadError {
        AadError::bad_request("invalid_tenant", 90002, format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud (this is the entra-token emulator: its tenants come from its config)."))
    }
    pub(crate) fn unknown_client(client_id: &str, tenant: &str) -> AadError {
        AadError::bad_request("unauthorized_client", 700016, format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."))
    }

    pub(crate) fn body(&self) -> Value {
        let (trace_id, correlation_id, timestamp) = (random_guid(), random_guid(), aad_timestamp());
        let mut body = json!({
            "error": self.error,
            "error_description": format!("AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}", self.code, self.message),
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_have_entra_s_shape() {
        let b = AadError::invalid_client(7000215, "Invalid client secret provided.").body();
        assert_eq!(b["error"], "invalid_client");
        assert_eq!(b["error_codes"], json!([7000215]));
        assert!(b["error_description"].as_str().unwrap().starts_with("AADSTS7000215: Invalid client secret"));
        for k in ["timestamp", "trace_id", "correlation_id"] {
            assert!(b[k].is_string(), "{k}");
        }
        assert!(is_guid(b["trace_id"].as_str().unwrap()));
        assert_eq!(guid_from("tenant", "a"), guid_from("tenant", "a"));
        assert_ne!(guid_from("tenant", "a"), guid_from("tenant", "b"));
    }
}
