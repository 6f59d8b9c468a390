//! The emulator's keys: an RSA key that signs its tokens (RS256, published as JWKS so a
//! resource under test can verify them), made once by `ssh-keygen` into the state
//! directory because ring signs with RSA but cannot make RSA keys; and a throwaway CA
//! with a certificate for 127.0.0.1 and localhost (rcgen, ECDSA P-256 through ring),
//! made on every start, whose CA file clients are told to trust.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};

use super::wire::b64url;
use crate::error::{Error, Result};

/// The token-signing key and its public half as a JWK.
pub(crate) struct Signer {
    key: RsaKeyPair,
    pub kid: String,
    n: Vec<u8>,
    e: Vec<u8>,
}

impl Signer {
    /// Loads `dir/signing-key.pem`, first making it with ssh-keygen when it is missing.
    pub(crate) fn load_or_make(dir: &Path) -> Result<Signer> {
        let path = dir.join("signing-key.pem");
        if !path.exists() {
            make_rsa_key(&path)?;
        }
        let pem = std::fs::read(&path).map_err(|e| Error::caused(format!("cannot read the emulator's signing key {}", path.display()), e))?;
        let der = PrivatePkcs8KeyDer::from_pem_slice(&pem).map_err(|_| Error::bad_input_hint(format!("{} is not a PKCS#8 PEM key", path.display()), "remove it: the emulator makes a new one"))?;
        Signer::from_pkcs8(der.secret_pkcs8_der()).map_err(|_| Error::bad_input_hint(format!("{} is not an RSA key ring accepts", path.display()), "remove it: the emulator makes a new one"))
    }

    pub(crate) fn from_pkcs8(der: &[u8]) -> std::result::Result<Signer, ring::error::KeyRejected> {
        let key = RsaKeyPair::from_pkcs8(der)?;
        let parts: ring::rsa::PublicKeyComponents<Vec<u8>> = key.public().into();
        let digest = ring::digest::digest(&ring::digest::SHA256, &[parts.n.as_slice(), parts.e.as_slice()].concat());
        let kid = b64url(&digest.as_ref()[..12]);
        Ok(Signer { key, kid, n: parts.n, e: parts.e })
    }

    /// A compact JWS: RS256 over base64url(header).base64url(claims).
    pub(crate) fn sign(&self, claims: &Value) -> String {
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": self.kid});
        let input = format!("{}.{}", b64url(header.to_string()), b64url(claims.to_string()));
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        // Signing with a key ring loaded fails only when out of memory.
        let _ = self.key.sign(&RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), input.as_bytes(), &mut sig);
        format!("{input}.{}", b64url(sig))
    }

    /// The JWKS document (`/discovery/v2.0/keys`).
    pub(crate) fn jwks(&self) -> Value {
        json!({"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": b64url(&self.n), "e": b64url(&self.e), "issuer": "entra-token emulator"}]})
    }
}

/// A new RSA-2048 key (`os_rsa`: ssh-keygen, as `az ssh` makes its keys; where there is
/// none, the OS's own generator: Windows' CNG, since OpenSSH is an optional feature there
/// and `entra-token demo` is the README's first command), written at `path` as PKCS#8 PEM.
fn make_rsa_key(path: &Path) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let der = crate::os_rsa::new_pkcs8(2048, dir, "the emulator's token-signing key")?;
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{}-----END PRIVATE KEY-----\n", pem_lines(&der));
    crate::fs::write_private_at(path, pem.as_bytes()).map_err(|e| Error::caused(format!("cannot write {}", path.display()), e))
}

/// Base64 in PEM's lines of 64 characters, each ending in a newline.
fn pem_lines(der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    text.as_bytes().chunks(64).map(|l| format!("{}\n", String::from_utf8_lossy(l))).collect()
}

/// The emulator's https: its CA certificate file and the server's TLS configuration.
pub(crate) struct Tls {
    pub config: Arc<rustls::ServerConfig>,
    /// The CA alone (NODE_EXTRA_CA_CERTS adds it to Node's roots).
    pub ca_file: PathBuf,
    /// The CA plus the system's roots, if found (SSL_CERT_FILE and REQUESTS_CA_BUNDLE
    /// replace the roots, so a shell that loads the exports can still reach real hosts).
    pub bundle_file: PathBuf,
}

/// System CA bundles, Debian's first.
const SYSTEM_BUNDLES: &[&str] = &["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];

pub(crate) fn tls(dir: &Path) -> Result<Tls> {
    use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let fail = |what: &str, e: rcgen::Error| Error::general(format!("the emulator could not make its {what}: {e}"));
    let ca_key = KeyPair::generate().map_err(|e| fail("CA key", e))?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(|e| fail("CA", e))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "entra-token emulator CA (not a real authority)");
    ca.distinguished_name = dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca.self_signed(&ca_key).map_err(|e| fail("CA", e))?;
    let leaf_key = KeyPair::generate().map_err(|e| fail("server key", e))?;
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).map_err(|e| fail("server certificate", e))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "127.0.0.1");
    leaf.distinguished_name = dn;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_cert = leaf.signed_by(&leaf_key, &Issuer::from_params(&ca, &ca_key)).map_err(|e| fail("server certificate", e))?;

    let ca_file = dir.join("ca.pem");
    let bundle_file = dir.join("ca-bundle.pem");
    let write = |p: &Path, b: &[u8]| crate::fs::write_private_at(p, b).map_err(|e| Error::caused(format!("cannot write {}", p.display()), e));
    write(&ca_file, ca_cert.pem().as_bytes())?;
    let mut bundle = ca_cert.pem();
    if let Some(system) = SYSTEM_BUNDLES.iter().find_map(|p| std::fs::read_to_string(p).ok()) {
        bundle.push('\n');
        bundle.push_str(&system);
    }
    write(&bundle_file, bundle.as_bytes())?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = vec![CertificateDer::from(leaf_cert.der().to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| Error::general(format!("the emulator's TLS configuration: {e}")))?;
    Ok(Tls { config: Arc::new(config), ca_file, bundle_file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_against_the_published_key() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let signer = match Signer::load_or_make(dir.path()) {
            Ok(s) => s,
            // Without ssh-keygen the emulator says so in one line; the integration tests cover that.
            Err(e) => return assert!(crate::error::one_line(&e).contains("ssh-keygen"), "{}", crate::error::one_line(&e)),
        };
        let jwt = signer.sign(&json!({"sub": "x"}));
        let parts: Vec<&str> = jwt.split('.').collect();
        let jwk = &signer.jwks()["keys"][0];
        let d = |s: &str| super::super::wire::b64url_decode(s).unwrap();
        let public = ring::signature::RsaPublicKeyComponents { n: d(jwk["n"].as_str().unwrap()), e: d(jwk["e"].as_str().unwrap()) };
        public.verify(&ring::signature::RSA_PKCS1_2048_8192_SHA256, format!("{}.{}", parts[0], parts[1]).as_bytes(), &d(parts[2])).expect("RS256 signature verifies with the JWK");
        assert_eq!(Signer::load_or_make(dir.path()).unwrap().kid, signer.kid, "the key is kept");
    }
}
