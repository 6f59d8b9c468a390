//! The stand-in authority's proof-of-possession tokens, as Entra issues them (the request's
//! key read by the emulator's rules, src/emulator/token_request.rs), and the check a
//! resource server makes of a signed HTTP request (SHR) over one: shared by the authority
//! and the tests and API-server stand-ins that verify what the client sends.

use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use serde_json::{Value, json};

use super::authority::State;
use super::wire;

/// Turns a bearer answer into Entra's PoP answer: the access token carries
/// `cnf: {"kid", "xms_ksl": "sw"}` and the answer says `token_type: pop`.
pub(crate) fn answer(st: &mut State, body: &mut Value, kid: &str) {
    let bearer = body["access_token"].as_str().unwrap_or_default().to_string();
    let mut claims = wire::jwt_claims(&bearer).unwrap_or_default();
    claims["cnf"] = json!({"kid": kid, "xms_ksl": "sw"});
    let at = wire::jwt(&claims);
    if let Some(last) = st.issued_ats.iter_mut().rev().find(|t| **t == bearer) {
        *last = at.clone();
    }
    body["access_token"] = Value::String(at);
    body["token_type"] = Value::String("pop".into());
}

/// What a verified SHR says.
#[derive(Debug, Clone)]
pub struct Verified {
    pub at: String,
    pub m: Option<String>,
    pub u: Option<String>,
    pub p: Option<String>,
    pub nonce: String,
    pub kid: String,
}

/// A resource server's check of an SHR: a three-part JWS with `typ: pop`, RS256; its
/// signature verifies with the `cnf.jwk` it carries; that key's RFC 7638 thumbprint is the
/// header's `kid` and the access token's `cnf.kid`; `ts` within five minutes of now; a nonce.
pub fn verify_shr(shr: &str) -> Result<Verified, String> {
    let parts: Vec<&str> = shr.split('.').collect();
    let [h, p, s] = parts[..] else { return Err(format!("not a three-part JWS ({} parts)", parts.len())) };
    let json = |seg: &str| -> Result<Value, String> { wire::b64url_decode(seg).and_then(|b| serde_json::from_slice(&b).ok()).ok_or("a segment is not base64url JSON".to_string()) };
    let (header, payload) = (json(h)?, json(p)?);
    if header["typ"] != "pop" || header["alg"] != "RS256" {
        return Err(format!("header is not typ pop, alg RS256: {header}"));
    }
    let jwk = &payload["cnf"]["jwk"];
    let (Some(n), Some(e), "RSA") = (jwk["n"].as_str(), jwk["e"].as_str(), jwk["kty"].as_str().unwrap_or_default()) else {
        return Err(format!("cnf.jwk is no RSA JWK: {jwk}"));
    };
    let key = RsaPublicKeyComponents { n: wire::b64url_decode(n).ok_or("n is not base64url")?, e: wire::b64url_decode(e).ok_or("e is not base64url")? };
    let sig = wire::b64url_decode(s).ok_or("signature is not base64url")?;
    key.verify(&RSA_PKCS1_2048_8192_SHA256, format!("{h}.{p}").as_bytes(), &sig).map_err(|_| "the signature does not verify with cnf.jwk".to_string())?;
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    let thumbprint = wire::b64url(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()));
    if header["kid"] != thumbprint.as_str() {
        return Err("the header's kid is not cnf.jwk's thumbprint".into());
    }
    let at = payload["at"].as_str().ok_or("no at")?.to_string();
    let bound = wire::jwt_claims(&at).ok_or("at is not a JWT")?;
    if bound["cnf"]["kid"] != thumbprint.as_str() {
        return Err(format!("the access token is bound to {}, not to the key that signed", bound["cnf"]));
    }
    let ts = payload["ts"].as_i64().ok_or("no ts")?;
    if (ts - wire::now()).abs() > 300 {
        return Err(format!("ts {ts} is more than five minutes from now"));
    }
    let nonce = payload["nonce"].as_str().filter(|n| n.len() >= 16).ok_or("no nonce (or a short one)")?.to_string();
    let s = |k: &str| payload[k].as_str().map(str::to_string);
    Ok(Verified { at, m: s("m"), u: s("u"), p: s("p"), nonce, kid: thumbprint })
}
