//! TLS pinned to one certificate thumbprint, for Service Fabric's managed identity endpoint:
//! it presents a cluster certificate no CA in the OS store vouches for, and the platform
//! names it in IDENTITY_SERVER_THUMBPRINT. The leaf is accepted if and only if its
//! thumbprint matches; the handshake signature is still verified with the leaf's key, so a
//! server that merely copies the (public) certificate cannot pass.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};
use std::io::{Read, Write};
use std::sync::Arc;
use ureq::unversioned::transport::{Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, Transport, TransportAdapter};

/// Which digest a thumbprint is: SHA-1 of the DER (what Windows and .NET call the
/// Thumbprint, and what Service Fabric sets), or SHA-256 (told apart by its length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Digest {
    Sha1,
    Sha256,
}

/// An expected certificate thumbprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pin {
    digest: Digest,
    bytes: Vec<u8>,
}

impl Pin {
    /// Hex, either case; spaces and colons between digits are ignored (certificate tools
    /// print `AB:CD:…` or `ab cd …`). 40 digits are SHA-1, 64 are SHA-256; anything else is
    /// an error saying why.
    pub(crate) fn parse(text: &str) -> Result<Pin, String> {
        let digits: Vec<u8> = text.bytes().filter(|b| !matches!(b, b' ' | b':' | b'\t')).collect();
        if let Some(bad) = digits.iter().find(|b| !b.is_ascii_hexdigit()) {
            return Err(format!("'{}' is not a hex digit", char::from(*bad).escape_default()));
        }
        let digest = match digits.len() {
            40 => Digest::Sha1,
            64 => Digest::Sha256,
            0 => return Err("it is empty".into()),
            n => return Err(format!("it has {n} hex digits; a SHA-1 thumbprint has 40 (a SHA-256 one 64)")),
        };
        let nibble = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
        let bytes = digits.chunks(2).map(|p| (nibble(p[0]) << 4) | nibble(p[1])).collect();
        Ok(Pin { digest, bytes })
    }

    /// The thumbprint of `der` in this pin's digest.
    pub(crate) fn thumbprint_of(&self, der: &[u8]) -> Vec<u8> {
        let alg = match self.digest {
            Digest::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            Digest::Sha256 => &ring::digest::SHA256,
        };
        ring::digest::digest(alg, der).as_ref().to_vec()
    }

    pub(crate) fn matches(&self, der: &[u8]) -> bool {
        self.thumbprint_of(der) == self.bytes
    }

    /// Upper-case hex, as Windows shows thumbprints.
    pub(crate) fn display(&self) -> String {
        hex(&self.bytes)
    }

    pub(crate) fn digest_name(&self) -> &'static str {
        match self.digest {
            Digest::Sha1 => "SHA-1",
            Digest::Sha256 => "SHA-256",
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The server's leaf is not the pinned one (carried inside rustls' error, so the HTTP layer
/// can name both thumbprints).
#[derive(Debug)]
pub(crate) struct Mismatch {
    pub presented: String,
    pub expected: String,
    pub digest: &'static str,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the server's certificate has {} thumbprint {}, but IDENTITY_SERVER_THUMBPRINT is {}", self.digest, self.presented, self.expected)
    }
}

impl std::error::Error for Mismatch {}

/// The Mismatch inside a failed request, if that is why it failed.
pub(crate) fn mismatch_in(e: &ureq::Error) -> Option<&Mismatch> {
    let ureq::Error::Io(io) = e else { return None };
    let rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) = io.get_ref()?.downcast_ref::<rustls::Error>()? else {
        return None;
    };
    other.0.downcast_ref::<Mismatch>()
}

/// Accepts exactly the pinned leaf, whatever its issuer, names or dates (the pin names the
/// one certificate; the endpoint is usually an IP address), and verifies the handshake
/// signature with that leaf's public key through the crypto provider.
#[derive(Debug)]
struct PinVerifier {
    pin: Pin,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(&self, end_entity: &CertificateDer<'_>, _: &[CertificateDer<'_>], _: &ServerName<'_>, _: &[u8], _: UnixTime) -> Result<ServerCertVerified, rustls::Error> {
        if self.pin.matches(end_entity.as_ref()) {
            return Ok(ServerCertVerified::assertion());
        }
        let mismatch = Mismatch { presented: hex(&self.pin.thumbprint_of(end_entity.as_ref())), expected: self.pin.display(), digest: self.pin.digest_name() };
        Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(Arc::new(mismatch)))))
    }

    fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// ureq's TLS step for the pinned agent: wraps the TCP transport in rustls with the
/// [`PinVerifier`]. Plain http is refused, never passed through.
#[derive(Debug)]
pub(crate) struct PinnedConnector {
    config: Arc<ClientConfig>,
}

impl PinnedConnector {
    pub(crate) fn new(pin: &Pin) -> PinnedConnector {
        let provider: Arc<CryptoProvider> = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = PinVerifier { pin: pin.clone(), algorithms: provider.signature_verification_algorithms };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3")
            .dangerous() // a custom verifier: it verifies, by pin instead of by CA.
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        PinnedConnector { config: Arc::new(config) }
    }
}

impl<In: Transport> Connector<In> for PinnedConnector {
    type Out = PinnedTransport;

    fn connect(&self, details: &ConnectionDetails, chained: Option<In>) -> Result<Option<PinnedTransport>, ureq::Error> {
        let Some(transport) = chained else { return Ok(None) };
        if !details.needs_tls() {
            return Err(ureq::Error::TlsRequired);
        }
        let host = details.uri.host().unwrap_or_default();
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let name = ServerName::try_from(host).map_err(|_| ureq::Error::Tls("the endpoint's host is not a valid TLS server name"))?.to_owned();
        let mut conn = ClientConnection::new(Arc::clone(&self.config), name)?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        // The whole handshake, pin check included, before ureq writes a byte of the request.
        conn.complete_io(&mut sock)?;
        let buffers = LazyBuffers::new(details.config.input_buffer_size(), details.config.output_buffer_size());
        Ok(Some(PinnedTransport { buffers, stream: StreamOwned::new(conn, sock) }))
    }
}

pub(crate) struct PinnedTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl std::fmt::Debug for PinnedTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PinnedTransport")
    }
}

impl Transport for PinnedTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        self.stream.write_all(&self.buffers.output()[..amount])?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let amount = self.stream.read(self.buffers.input_append_buf())?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprints_parse_in_the_formats_tools_print() {
        let sha1 = "0123456789abcdef0123456789ABCDEF01234567";
        let p = Pin::parse(sha1).unwrap();
        assert_eq!(p.digest, Digest::Sha1);
        assert_eq!(p.display(), sha1.to_ascii_uppercase());
        assert_eq!(Pin::parse("01:23:45:67:89:AB:CD:EF:01:23:45:67:89:ab:cd:ef:01:23:45:67").unwrap(), p);
        assert_eq!(Pin::parse(" 01 23 45 67 89 ab cd ef 01 23 45 67 89 ab cd ef 01 23 45 67 ").unwrap(), p);
        assert_eq!(Pin::parse(&"ab".repeat(32)).unwrap().digest, Digest::Sha256);
        assert!(Pin::parse("").unwrap_err().contains("empty"));
        assert!(Pin::parse("0123").unwrap_err().contains("4 hex digits"));
        assert!(Pin::parse(&format!("{}g", &sha1[..39])).unwrap_err().contains("'g'"));
        assert!(Pin::parse(&"a".repeat(41)).is_err());
    }

    #[test]
    fn the_pin_is_the_digest_of_the_der() {
        let der = b"not really a certificate, but the digest does not care";
        let sha1 = hex(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der).as_ref());
        assert!(Pin::parse(&sha1.to_ascii_lowercase()).unwrap().matches(der));
        assert!(!Pin::parse(&sha1).unwrap().matches(b"another certificate"));
        let sha256 = hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref());
        assert!(Pin::parse(&sha256).unwrap().matches(der));
        // A SHA-1 value is never compared with a SHA-256 digest or the other way round.
        assert!(!Pin::parse(&sha256[..40]).unwrap().matches(der));
    }
}
