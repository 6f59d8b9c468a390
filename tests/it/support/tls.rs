//! A throwaway certificate authority for https tests: the mock authority serves a
//! certificate for 127.0.0.1 and localhost signed by it, and the binary under test is
//! told to trust only that CA (e.g. through `SSL_CERT_FILE`), so TLS is exercised for
//! real without touching the machine's trust store.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub struct TestCa {
    params: CertificateParams,
    key: KeyPair,
    cert: rcgen::Certificate,
}

impl TestCa {
    pub fn new() -> TestCa {
        let key = KeyPair::generate().expect("generate CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "entra-token test CA");
        dn.push(DnType::OrganizationName, "entra-token tests");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("self-sign CA");
        TestCa { params, key, cert }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// The CA certificate, DER.
    pub fn der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }

    /// Writes the CA certificate to `dir/test-ca.pem` and returns that path.
    pub fn write_pem(&self, dir: &Path) -> PathBuf {
        std::fs::create_dir_all(dir).expect("create dir for CA pem");
        let path = dir.join("test-ca.pem");
        std::fs::write(&path, self.pem()).expect("write CA pem");
        path
    }

    /// Root certificates for a ureq agent that trusts this CA and nothing else.
    pub fn ureq_roots(&self) -> ureq::tls::RootCerts {
        ureq::tls::RootCerts::new_with_certs(&[
            ureq::tls::Certificate::from_der(&self.der()).to_owned()
        ])
    }

    /// A leaf certificate (chain of one) and key for `names`, signed by this CA.
    pub fn issue_server_cert(
        &self,
        names: &[&str],
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().expect("generate server key");
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("server params");
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("localhost"),
        );
        params.distinguished_name = dn;
        params.is_ca = IsCa::NoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).expect("sign server cert");
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (vec![cert.der().clone()], key_der)
    }

    /// rustls server configuration (ring provider) serving a cert for 127.0.0.1 and localhost.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.server_config_and_leaf().0
    }

    /// [`TestCa::server_config`], and the DER of the leaf it presents (for thumbprint pins).
    pub fn server_config_and_leaf(&self) -> (Arc<rustls::ServerConfig>, Vec<u8>) {
        let (chain, key) = self.issue_server_cert(&["127.0.0.1", "localhost"]);
        let leaf = chain[0].to_vec();
        (self.config_for(chain, key), leaf)
    }

    /// A server that presents `leaf_der` (someone else's certificate, which is public) but
    /// signs the handshake with a key of its own: it cannot prove it holds the certificate's
    /// key, so a client that checks handshake signatures must refuse it.
    pub fn impostor_config(&self, leaf_der: &[u8]) -> Arc<rustls::ServerConfig> {
        let (_, own_key) = self.issue_server_cert(&["127.0.0.1"]);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let signer = provider.key_provider.load_private_key(own_key).expect("load key");
        let certified = rustls::sign::CertifiedKey::new(vec![CertificateDer::from(leaf_der.to_vec())], signer);
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Always(Arc::new(certified))));
        Arc::new(config)
    }

    fn config_for(&self, chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server cert");
        Arc::new(config)
    }
}

/// Presents the same certificate and key to every client.
#[derive(Debug)]
struct Always(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for Always {
    fn resolve(&self, _: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}
