//! Reading (never trusting) JWTs: the claims of an access or id token, for the answer's
//! tenant and account and for `inspect`. Signatures are not validated; nothing here
//! should be used for an authorization decision.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// The decoded header and claims of a compact JWT, or None when it is not one.
pub(crate) fn decode(token: &str) -> Option<(Map<String, Value>, Map<String, Value>)> {
    let mut parts = token.trim().split('.');
    let (h, c) = (parts.next()?, parts.next()?);
    parts.next()?;
    Some((segment(h)?, segment(c)?))
}

fn segment(s: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// The claims that name a token's tenant and account, read without building a JSON tree
/// (a cold answer reads them from every new access token).
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct AccountClaims {
    pub tid: Option<String>,
    pub upn: Option<String>,
    pub preferred_username: Option<String>,
    pub unique_name: Option<String>,
    /// The client the token was issued to: `appid` (v1 tokens), `azp` (v2).
    pub appid: Option<String>,
    pub azp: Option<String>,
}

/// The account claims of a compact JWT, or None when it is not one.
pub(crate) fn account_claims(token: &str) -> Option<AccountClaims> {
    let mut parts = token.trim().split('.');
    let (_, c) = (parts.next()?, parts.next()?);
    parts.next()?;
    let bytes = URL_SAFE_NO_PAD.decode(c.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A string claim.
pub(crate) fn claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_claims_and_rejects_garbage() {
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
        let c = URL_SAFE_NO_PAD.encode(br#"{"tid":"t1","aud":"a"}"#);
        let (_, claims) = decode(&format!("{h}.{c}.sig")).unwrap();
        assert_eq!(claim(&claims, "tid"), Some("t1"));
        assert!(decode("not-a-jwt").is_none());
        assert!(decode("a.b").is_none());
        assert!(decode("!!.??.x").is_none());
    }

    #[test]
    fn account_claims_match_the_full_decode() {
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
        let c = URL_SAFE_NO_PAD.encode(br#"{"tid":"t1","aud":"a","upn":"u@x","exp":1,"roles":["r"],"nested":{"tid":"no"}}"#);
        let a = account_claims(&format!("{h}.{c}.sig")).unwrap();
        assert_eq!((a.tid.as_deref(), a.upn.as_deref(), a.preferred_username.as_deref()), (Some("t1"), Some("u@x"), None));
        assert!(account_claims("a.b").is_none());
        assert!(account_claims(&format!("{h}.{}.s", URL_SAFE_NO_PAD.encode(b"[1]"))).is_none());
        // A claim of an unexpected type is not an account: no answer rather than a wrong one.
        assert!(account_claims(&format!("{h}.{}.s", URL_SAFE_NO_PAD.encode(br#"{"tid":5}"#))).is_none());
    }
}
