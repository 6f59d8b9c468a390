//! The emulator's SSH certificate authority (what `az ssh` and `entra-token ssh cert` ask
//! for). Entra answers a grant that carries `token_type=ssh-cert` and `req_cnf` (the RSA
//! public key as a JWK) with an OpenSSH user certificate for that key, signed by its CA,
//! valid for the token lifetime, principal the person's UPN (or the app's id); it refuses
//! a key that is not RSA. Here the CA is an Ed25519 key made with ring on each start (its
//! public line is written beside the emulator's state for sshd's `TrustedUserCAKeys`), and
//! the certificate is laid out as OpenSSH's PROTOCOL.certkeys says. The tests' stand-in
//! authority compiles this same file (tests/it/support/mod.rs, by `#[path]`): it names
//! only crates and its sibling `wire`, which is shared the same way.

use base64::Engine as _;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::Value;

use super::wire::{self, AadError};

const CERT_TYPE: &str = "ssh-rsa-cert-v01@openssh.com";

/// What sshd lets a certificate's holder do; Entra's certificates carry the usual five.
const EXTENSIONS: [&str; 5] = ["permit-X11-forwarding", "permit-agent-forwarding", "permit-port-forwarding", "permit-pty", "permit-user-rc"];

/// An RSA public key as a grant's `req_cnf` names it: modulus and exponent, big-endian.
pub(crate) struct RsaKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

pub(crate) struct SshCa {
    pair: Ed25519KeyPair,
}

fn string(out: &mut Vec<u8>, b: &[u8]) {
    out.extend((b.len() as u32).to_be_bytes());
    out.extend(b);
}

/// An mpint from big-endian magnitude bytes: no leading zeros, one added when the top bit is set.
fn mpint(out: &mut Vec<u8>, b: &[u8]) {
    let b = &b[b.iter().position(|&x| x != 0).unwrap_or(b.len())..];
    if b.first().is_some_and(|&x| x & 0x80 != 0) {
        let mut v = vec![0];
        v.extend(b);
        string(out, &v);
    } else {
        string(out, b);
    }
}

impl SshCa {
    pub(crate) fn new() -> Result<SshCa, ring::error::Unspecified> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)?;
        Ok(SshCa { pair: Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| ring::error::Unspecified)? })
    }

    fn public_blob(&self) -> Vec<u8> {
        let mut b = Vec::new();
        string(&mut b, b"ssh-ed25519");
        string(&mut b, self.pair.public_key().as_ref());
        b
    }

    /// The CA's public key as sshd's TrustedUserCAKeys takes it.
    pub(crate) fn public_line(&self) -> String {
        format!("ssh-ed25519 {} entra-token-emulator-ssh-ca", base64::engine::general_purpose::STANDARD.encode(self.public_blob()))
    }

    /// A user certificate (base64 blob, as Entra's access_token) for `key`, valid over
    /// `(after, before)` (seconds since the epoch).
    pub(crate) fn certify(&self, key: &RsaKey, serial: u64, principals: &[&str], (valid_after, valid_before): (u64, u64)) -> String {
        let mut b = Vec::new();
        string(&mut b, CERT_TYPE.as_bytes());
        string(&mut b, &wire::random_bytes(32));
        mpint(&mut b, &key.e);
        mpint(&mut b, &key.n);
        b.extend(serial.to_be_bytes());
        b.extend(1u32.to_be_bytes());
        string(&mut b, format!("entra-token-emulator-{serial}").as_bytes());
        let mut list = Vec::new();
        for p in principals {
            string(&mut list, p.as_bytes());
        }
        string(&mut b, &list);
        b.extend(valid_after.to_be_bytes());
        b.extend(valid_before.to_be_bytes());
        string(&mut b, b"");
        let mut ext = Vec::new();
        for name in EXTENSIONS {
            string(&mut ext, name.as_bytes());
            string(&mut ext, b"");
        }
        string(&mut b, &ext);
        string(&mut b, b"");
        string(&mut b, &self.public_blob());
        let sig = self.pair.sign(&b);
        let mut s = Vec::new();
        string(&mut s, b"ssh-ed25519");
        string(&mut s, sig.as_ref());
        string(&mut b, &s);
        base64::engine::general_purpose::STANDARD.encode(b)
    }
}

fn malformed(why: &str) -> AadError {
    AadError::bad_request("invalid_request", 9002313, format!("Invalid request. Request is malformed or invalid: {why}"))
}

/// The RSA key a grant asks to certify, None for an ordinary (bearer) request, or
/// the refusal Entra gives: a req_cnf that is not an RSA JWK, or a scope other than its SSH service's.
pub(crate) fn requested(form: impl Fn(&str) -> Option<String>) -> Result<Option<RsaKey>, AadError> {
    match form("token_type").as_deref() {
        None | Some("") | Some("bearer") | Some("Bearer") => return Ok(None),
        Some("ssh-cert") => {}
        Some(other) => return Err(malformed(&format!("unsupported token_type '{other}'"))),
    }
    let scope = form("scope").or_else(|| form("resource")).unwrap_or_default();
    if !scope.split_whitespace().any(|s| s.contains("/CheckMyAccess/Linux")) {
        return Err(AadError::bad_request("invalid_scope", 70011, format!("The scope '{scope}' cannot be used with token_type ssh-cert.")));
    }
    let cnf = form("req_cnf").ok_or_else(|| AadError::missing("req_cnf"))?;
    let jwk: Value = serde_json::from_str(&cnf).map_err(|_| malformed("req_cnf is not a JSON Web Key"))?;
    if jwk["kty"] != "RSA" {
        return Err(malformed("the key in req_cnf must be an RSA key"));
    }
    let part = |k: &str| jwk[k].as_str().and_then(wire::b64url_decode).filter(|v| !v.is_empty());
    match (part("n"), part("e"), jwk["kid"].as_str()) {
        (Some(n), Some(e), Some(_)) if n.len() >= 256 => Ok(Some(RsaKey { n, e })),
        _ => Err(malformed("req_cnf needs n (2048 bits or more), e and kid")),
    }
}

/// Turns a token answer into Entra's ssh-cert answer for `key`: the certificate as
/// `access_token`, `token_type: ssh-cert`, the same lifetime.
pub(crate) fn answer(ca: &SshCa, body: &mut Value, serial: u64, principal: &str, key: &RsaKey, lifetime: i64) {
    let now = wire::now() as u64;
    let cert = ca.certify(key, serial, &[principal], (now.saturating_sub(60), now + lifetime as u64));
    body["access_token"] = Value::String(cert);
    body["token_type"] = Value::String("ssh-cert".into());
}
