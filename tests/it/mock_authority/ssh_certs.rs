//! The stand-in's SSH certificates, driven with plain ureq as Entra would be: a grant with
//! `token_type=ssh-cert` and an RSA JWK in `req_cnf` gets an OpenSSH user certificate for
//! that key; a key that is not RSA, a missing key or another scope is refused.

use super::*;

const PAS: &str = "https://pas.windows.net/CheckMyAccess/Linux/.default";

fn ssh_cert(m: &MockAuthority, scope: &str, req_cnf: Option<&str>) -> Resp {
    let mut form = vec![("grant_type", "client_credentials"), ("client_id", APP), ("client_secret", SECRET), ("scope", scope), ("token_type", "ssh-cert")];
    if let Some(c) = req_cnf {
        form.push(("req_cnf", c));
    }
    post(&v2_token(m, CONTOSO), &form)
}

#[test]
fn ssh_cert_grants_get_a_user_certificate_for_an_rsa_key_and_refusals_otherwise() {
    let m = confidential();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let n = b64(&[0xc5; 256]);
    let rsa = serde_json::json!({"kty": "RSA", "n": n, "e": "AQAB", "kid": "k1"}).to_string();
    let r = ssh_cert(&m, PAS, Some(&rsa));
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["token_type"], "ssh-cert");
    let blob = base64::engine::general_purpose::STANDARD.decode(v["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(&blob[4..4 + 28], b"ssh-rsa-cert-v01@openssh.com");
    assert_eq!(m.issued_ssh_certs(), vec![v["access_token"].as_str().unwrap().to_string()]);
    assert!(m.ssh_ca_public_key().starts_with("ssh-ed25519 "));

    let ec = serde_json::json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": "k2"}).to_string();
    let r = ssh_cert(&m, PAS, Some(&ec));
    assert_eq!((r.status, r.aadsts()), (400, 9002313), "{}", r.body);
    assert!(r.json()["error_description"].as_str().unwrap().contains("must be an RSA key"), "{}", r.body);
    let r = ssh_cert(&m, PAS, None);
    assert_eq!((r.status, r.aadsts()), (400, 900144), "{}", r.body);
    let r = ssh_cert(&m, ARM, Some(&rsa));
    assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("invalid_scope")), "{}", r.body);
    assert_eq!(m.issued_ssh_certs().len(), 1, "no certificate for a refused grant");
}
