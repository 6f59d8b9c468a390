//! Client certificate: the application proves who it is with a JWT it signs with its
//! certificate's RSA key (RFC 7523 client assertion), so no shared secret is on disk.
//! PS256 with `x5t#S256` for Entra; RS256 with the SHA-1 `x5t` for ADFS (`assertion_alg`).
//! Parsing and signing use rustls-pki-types and ring, the crypto the TLS stack brings.

use super::FlowCtx;
use super::client_credentials::{self, ClientAuth};
use crate::error::{Error, Result};
use crate::oauth::TokenReply;
use crate::secret::Secret;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, RsaKeyPair};
use rustls_pki_types::pem::{PemObject, SectionKind};
use std::path::Path;

/// Entra accepts assertions up to 10 minutes long; ours live 5.
const ASSERTION_LIFETIME: i64 = 300;
/// Certificate files are small; refuse anything that could not be one.
const MAX_FILE: u64 = 1024 * 1024;

/// How the assertion is signed and which thumbprint names the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alg {
    /// RSASSA-PSS SHA-256, header `x5t#S256` (Entra's default in MSAL).
    Ps256,
    /// RSASSA-PKCS1-v1_5 SHA-256, header `x5t` (SHA-1): ADFS and older stacks.
    Rs256,
}

impl Alg {
    pub(crate) fn parse(s: Option<&str>) -> Result<Alg> {
        match s.map(|s| s.trim().to_ascii_uppercase()).as_deref() {
            None | Some("PS256") => Ok(Alg::Ps256),
            Some("RS256") => Ok(Alg::Rs256),
            Some(other) => Err(Error::bad_input_hint(format!("assertion_alg '{other}' is not supported"), "use PS256 (Entra) or RS256 (ADFS)")),
        }
    }
}

/// A certificate chain and the RSA key of its leaf.
pub(crate) struct ClientCertificate {
    key: RsaKeyPair,
    /// DER, leaf first.
    chain: Vec<Vec<u8>>,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate").field("chain_len", &self.chain.len()).field("key", &"REDACTED").finish()
    }
}

pub(crate) fn acquire(ctx: &FlowCtx<'_>) -> Result<TokenReply> {
    client_credentials::check_tenant(ctx)?;
    let p = ctx.profile;
    let path = p.settings.certificate_path.as_deref().ok_or_else(|| Error::bad_input(format!("profile '{}' has no certificate_path", p.name)))?;
    let alg = Alg::parse(p.settings.assertion_alg.as_deref())?;
    let cert = load(path, p.settings.certificate_password_env.as_deref())?;
    let aud = p.authority.token_url(p.endpoint);
    let send_chain = p.settings.send_certificate_chain.unwrap_or(false);
    let jwt = cert.assertion(&p.client_id, &aud, alg, send_chain, crate::clock::now())?;
    client_credentials::redeem(ctx, &p.client_id, ClientAuth::Assertion(jwt))
}

/// Reads a PEM file with the certificate(s) and an unencrypted PKCS#8 or PKCS#1 RSA key.
pub(crate) fn load(path: &Path, password_env: Option<&str>) -> Result<ClientCertificate> {
    let bytes = read_small(path)?;
    parse_pem(&bytes, password_env).map_err(|(message, hint)| {
        Error::bad_input_hint(format!("certificate {}: {message}", path.display()), hint)
    })
}

fn read_small(path: &Path) -> Result<Vec<u8>> {
    let fail = |e: std::io::Error| {
        Error::bad_input_hint(format!("cannot read the certificate {}", path.display()), "check certificate_path (or AZURE_CLIENT_CERTIFICATE_PATH)").because(e)
    };
    // Ours or root's, changeable by nobody else (`fs::open_trusted`).
    let mut file = crate::fs::open_trusted(path).map_err(|e| crate::fs::trusted_error("the certificate", e, "check certificate_path (or AZURE_CLIENT_CERTIFICATE_PATH)"))?;
    let meta = file.metadata().map_err(fail)?;
    if meta.len() > MAX_FILE {
        return Err(Error::bad_input(format!("{} is {} KiB; no certificate file is that large", path.display(), meta.len() / 1024)));
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut bytes).map_err(fail)?;
    Ok(bytes)
}

type ParseError = (String, String);

/// Pure: PEM bytes in, certificate chain and key out.
pub(crate) fn parse_pem(bytes: &[u8], password_env: Option<&str>) -> std::result::Result<ClientCertificate, ParseError> {
    let text = String::from_utf8_lossy(bytes);
    if !text.contains("-----BEGIN ") {
        let hint = if bytes.first() == Some(&0x30) {
            "this looks like PKCS#12 (.pfx/.p12), which is not supported: convert it with `openssl pkcs12 -in cert.pfx -out cert.pem -nodes`"
        } else {
            "use a PEM file holding the certificate and its private key"
        };
        return Err(("not a PEM file".into(), hint.into()));
    }
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") || text.contains("Proc-Type: 4,ENCRYPTED") {
        let why = match password_env {
            Some(var) => format!("the private key is encrypted; entra-token does not decrypt keys (so {var} is not used)"),
            None => "the private key is encrypted".to_string(),
        };
        return Err((
            why,
            "decrypt it once into a file only you can read: `openssl pkey -in key.pem -out key-plain.pem` (or `openssl pkcs12 -in cert.pfx -out cert.pem -nodes`), then `chmod 600` it".into(),
        ));
    }
    let mut certs = Vec::new();
    let mut key: Option<RsaKeyPair> = None;
    let mut other_key = false;
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(bytes) {
        let (kind, der) = section.map_err(|e| (format!("bad PEM: {e}"), "re-export the certificate as PEM".to_string()))?;
        match kind {
            SectionKind::Certificate => certs.push(der),
            SectionKind::PrivateKey if key.is_none() => match RsaKeyPair::from_pkcs8(&der) {
                Ok(k) => key = Some(k),
                Err(_) => other_key = true,
            },
            SectionKind::RsaPrivateKey if key.is_none() => match RsaKeyPair::from_der(&der) {
                Ok(k) => key = Some(k),
                Err(e) => return Err((format!("the RSA key is unusable ({e})"), "use an RSA key of 2048 bits or more".into())),
            },
            SectionKind::EcPrivateKey => other_key = true,
            _ => {}
        }
    }
    let Some(key) = key else {
        let message = if other_key { "the private key is not an RSA key" } else { "no private key found" };
        return Err((message.into(), "put the certificate and its RSA private key (PKCS#8 or PKCS#1 PEM) in one file".into()));
    };
    if certs.is_empty() {
        return Err(("no certificate found".into(), "put the certificate and its private key in one PEM file".into()));
    }
    // The leaf is the certificate that carries the key's public half; put it first.
    let public = key.public().as_ref().to_vec();
    let leaf = certs.iter().position(|c| contains(c, &public)).ok_or_else(|| {
        ("no certificate in the file matches the private key".to_string(), "put the key's own certificate in the file".to_string())
    })?;
    let leaf_der = certs.remove(leaf);
    certs.insert(0, leaf_der);
    Ok(ClientCertificate { key, chain: certs })
}

/// True when `needle` (the RSAPublicKey DER) appears in `hay` (a certificate's DER).
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

impl ClientCertificate {
    /// base64url SHA-256 of the leaf's DER (`x5t#S256`).
    pub(crate) fn thumbprint_sha256(&self) -> String {
        URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &self.chain[0]))
    }

    /// base64url SHA-1 of the leaf's DER (`x5t`), what ADFS and the portal's thumbprint name.
    pub(crate) fn thumbprint_sha1(&self) -> String {
        URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &self.chain[0]))
    }

    /// The signed client assertion for `client_id` at the token endpoint `aud`.
    pub(crate) fn assertion(&self, client_id: &str, aud: &str, alg: Alg, send_chain: bool, now: i64) -> Result<Secret<String>> {
        let rng = SystemRandom::new();
        let mut header = serde_json::Map::new();
        header.insert("typ".into(), "JWT".into());
        match alg {
            Alg::Ps256 => {
                header.insert("alg".into(), "PS256".into());
                header.insert("x5t#S256".into(), self.thumbprint_sha256().into());
            }
            Alg::Rs256 => {
                header.insert("alg".into(), "RS256".into());
                header.insert("x5t".into(), self.thumbprint_sha1().into());
            }
        }
        if send_chain {
            let x5c: Vec<serde_json::Value> = self.chain.iter().map(|c| STANDARD.encode(c).into()).collect();
            header.insert("x5c".into(), x5c.into());
        }
        let claims = serde_json::json!({
            "aud": aud,
            "iss": client_id,
            "sub": client_id,
            "jti": guid(&rng)?,
            "nbf": now,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::Value::Object(header).to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let padding: &'static dyn signature::RsaEncoding = match alg {
            Alg::Ps256 => &signature::RSA_PSS_SHA256,
            Alg::Rs256 => &signature::RSA_PKCS1_SHA256,
        };
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key.sign(padding, &rng, signing_input.as_bytes(), &mut sig).map_err(|_| Error::general("signing the client assertion failed"))?;
        Ok(Secret::new(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig))))
    }
}

/// A random (version 4) GUID for `jti`.
pub(crate) fn guid(rng: &dyn SecureRandom) -> Result<String> {
    let mut b = [0u8; 16];
    rng.fill(&mut b).map_err(|_| Error::general("the system random generator failed"))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = include_str!("../../tests/fixtures/client-cert.pem");
    const KEY_PKCS8: &str = include_str!("../../tests/fixtures/client-key-pkcs8.pem");
    const KEY_PKCS1: &str = include_str!("../../tests/fixtures/client-key-pkcs1.pem");
    const KEY_ENCRYPTED: &str = include_str!("../../tests/fixtures/client-key-encrypted.pem");

    fn verify(jwt: &str, alg: &'static dyn signature::VerificationAlgorithm, cert: &ClientCertificate) -> serde_json::Value {
        let (input, sig) = jwt.rsplit_once('.').unwrap();
        let pk = signature::UnparsedPublicKey::new(alg, cert.key.public().as_ref());
        pk.verify(input.as_bytes(), &URL_SAFE_NO_PAD.decode(sig).unwrap()).expect("signature verifies");
        let (h, c) = crate::jwt::decode(jwt).unwrap();
        serde_json::json!({"h": h, "c": c})
    }

    #[test]
    fn ps256_and_rs256_assertions_verify() {
        for key in [KEY_PKCS8, KEY_PKCS1] {
            let cert = parse_pem(format!("{key}\n{CERT}").as_bytes(), None).unwrap();
            let jwt = cert.assertion("app", "https://h/t/oauth2/v2.0/token", Alg::Ps256, false, 1000).unwrap();
            let v = verify(jwt.expose(), &signature::RSA_PSS_2048_8192_SHA256, &cert);
            assert_eq!(v["h"]["alg"], "PS256");
            assert_eq!(v["h"]["x5t#S256"], cert.thumbprint_sha256());
            assert!(v["h"].get("x5c").is_none());
            assert_eq!(v["c"]["aud"], "https://h/t/oauth2/v2.0/token");
            assert_eq!(v["c"]["iss"], "app");
            assert_eq!(v["c"]["sub"], "app");
            assert_eq!(v["c"]["exp"], 1300);
            let jwt = cert.assertion("app", "u", Alg::Rs256, true, 1000).unwrap();
            let v = verify(jwt.expose(), &signature::RSA_PKCS1_2048_8192_SHA256, &cert);
            assert_eq!(v["h"]["x5t"], cert.thumbprint_sha1());
            assert_eq!(v["h"]["x5c"][0], STANDARD.encode(&cert.chain[0]));
        }
    }

    #[test]
    fn the_leaf_goes_first_in_the_chain() {
        let ca = include_str!("../../tests/fixtures/test-ca.pem");
        let cert = parse_pem(format!("{ca}{CERT}{KEY_PKCS8}").as_bytes(), None).unwrap();
        assert_eq!(cert.chain.len(), 2);
        let leaf = <rustls_pki_types::CertificateDer<'_>>::from_pem_slice(CERT.as_bytes()).unwrap();
        assert_eq!(cert.chain[0], leaf.as_ref());
        let e = parse_pem(format!("{ca}{KEY_PKCS8}").as_bytes(), None).unwrap_err();
        assert!(e.0.contains("matches"), "{e:?}");
    }

    #[test]
    fn jti_is_fresh() {
        let cert = parse_pem(format!("{CERT}{KEY_PKCS8}").as_bytes(), None).unwrap();
        let a = crate::jwt::decode(cert.assertion("a", "u", Alg::Ps256, false, 0).unwrap().expose()).unwrap().1;
        let b = crate::jwt::decode(cert.assertion("a", "u", Alg::Ps256, false, 0).unwrap().expose()).unwrap().1;
        assert_ne!(a["jti"], b["jti"]);
        assert!(crate::authority::is_guid(a["jti"].as_str().unwrap()));
    }

    #[test]
    fn bad_files_get_clear_errors() {
        let e = parse_pem(format!("{CERT}{KEY_ENCRYPTED}").as_bytes(), Some("AZURE_CLIENT_CERTIFICATE_PASSWORD")).unwrap_err();
        assert!(e.0.contains("encrypted") && e.1.contains("openssl"), "{e:?}");
        assert!(parse_pem(CERT.as_bytes(), None).unwrap_err().0.contains("no private key"));
        assert!(parse_pem(KEY_PKCS8.as_bytes(), None).unwrap_err().0.contains("no certificate"));
        assert!(parse_pem(&[0x30, 0x82, 1, 2], None).unwrap_err().1.contains("PKCS#12"));
        assert_eq!(Alg::parse(Some("rs256")).unwrap(), Alg::Rs256);
        assert!(Alg::parse(Some("ES256")).is_err());
    }
}
