//! OpenSSH's wire formats, read only as far as `entra-token ssh` needs them: an RSA public
//! key line (`ssh-rsa AAAA… comment`) and a user certificate (PROTOCOL.certkeys) up to its
//! validity, so we know whose it is, until when, and that it certifies our key. The
//! signature is sshd's to check (it holds the CA key); we never trust a certificate for
//! more than naming the login and when to renew.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The certificate type Entra issues for RSA keys, as written in `KEY-cert.pub`.
pub(crate) const CERT_TYPE: &str = "ssh-rsa-cert-v01@openssh.com";

/// An RSA public key: exponent and modulus, big-endian without leading zeros.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RsaKey {
    pub e: Vec<u8>,
    pub n: Vec<u8>,
}

/// What a certificate says about itself (untrusted until sshd checks the signature).
#[derive(Debug, Clone)]
pub(crate) struct Certificate {
    pub key: RsaKey,
    pub serial: u64,
    pub principals: Vec<String>,
    pub valid_after: u64,
    pub valid_before: u64,
}

/// The largest key or certificate we read: an RSA-16384 certificate is under 8 KiB.
const MAX_BLOB: usize = 32 * 1024;

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("it ends early".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().map_err(|_| "it ends early")?))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().map_err(|_| "it ends early")?))
    }
    fn string(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn mpint(&mut self) -> Result<Vec<u8>, String> {
        let raw = self.string()?;
        let first = raw.iter().position(|&b| b != 0).unwrap_or(raw.len());
        Ok(raw[first..].to_vec())
    }
}

fn decode(b64: &str, what: &str) -> Result<Vec<u8>, String> {
    if b64.len() > MAX_BLOB * 4 / 3 + 4 {
        return Err(format!("the {what} is longer than any real one"));
    }
    STANDARD.decode(b64).map_err(|_| format!("the {what} is not base64"))
}

/// A public key line as ssh-keygen writes it. Anything but RSA is refused with the reason.
pub(crate) fn parse_public_key(line: &str) -> Result<RsaKey, String> {
    let mut parts = line.split_whitespace();
    let (Some(kind), Some(b64)) = (parts.next(), parts.next()) else {
        return Err("it is not an OpenSSH public key line (`TYPE BASE64 [comment]`)".into());
    };
    if kind != "ssh-rsa" {
        return Err(format!(
            "it is a {} key, and Entra certifies RSA keys only",
            crate::log::escape(&kind.chars().take(40).collect::<String>())
        ));
    }
    let blob = decode(b64, "public key")?;
    let mut r = Reader(&blob);
    if r.string()? != b"ssh-rsa" {
        return Err("its type inside is not ssh-rsa".into());
    }
    let e = r.mpint()?;
    let n = r.mpint()?;
    if e.is_empty() || n.len() < 256 {
        return Err("it is not an RSA key of at least 2048 bits".into());
    }
    Ok(RsaKey { e, n })
}

/// A certificate blob (base64, as Entra's `access_token` carries it) up to its validity.
pub(crate) fn parse_certificate(b64: &str) -> Result<Certificate, String> {
    let blob = decode(b64.trim(), "certificate")?;
    let mut r = Reader(&blob);
    if r.string()? != CERT_TYPE.as_bytes() {
        return Err(format!("it is not an {CERT_TYPE} certificate"));
    }
    let _nonce = r.string()?;
    let e = r.mpint()?;
    let n = r.mpint()?;
    let serial = r.u64()?;
    if r.u32()? != 1 {
        return Err("it is a host certificate, not a user certificate".into());
    }
    let _key_id = r.string()?;
    let mut list = Reader(r.string()?);
    let mut principals = Vec::new();
    while !list.0.is_empty() {
        let p = std::str::from_utf8(list.string()?).map_err(|_| "a principal is not UTF-8")?;
        // Login names: what a shell, a config file and a terminal can carry as they are.
        if p.is_empty() || p.len() > 256 || !p.chars().all(|c| c.is_ascii_alphanumeric() || "._-@+".contains(c)) {
            return Err("a principal has characters no login name has".into());
        }
        principals.push(p.to_string());
    }
    if principals.is_empty() {
        return Err("it names no principal to log in as".into());
    }
    let valid_after = r.u64()?;
    let valid_before = r.u64()?;
    Ok(Certificate { key: RsaKey { e, n }, serial, principals, valid_after, valid_before })
}

impl Certificate {
    /// The login name: the first principal, lower-cased (as az does).
    pub(crate) fn login(&self) -> String {
        self.principals[0].to_ascii_lowercase()
    }

    /// Seconds it stays valid after `now` (0 when it already ended).
    pub(crate) fn seconds_left(&self, now: i64) -> u64 {
        self.valid_before.saturating_sub(u64::try_from(now).unwrap_or(0))
    }
}

/// The certificate in a `KEY-cert.pub` file's text, when it is one.
pub(crate) fn parse_certificate_line(text: &str) -> Result<Certificate, String> {
    let mut parts = text.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(CERT_TYPE), Some(b64)) => parse_certificate(b64),
        _ => Err(format!("it is not an {CERT_TYPE} line")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(out: &mut Vec<u8>, b: &[u8]) {
        out.extend((b.len() as u32).to_be_bytes());
        out.extend(b);
    }

    fn key_blob(e: &[u8], n: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        string(&mut b, b"ssh-rsa");
        string(&mut b, e);
        string(&mut b, n);
        b
    }

    fn cert_blob(e: &[u8], n: &[u8], kind: u32, principals: &[&str], after: u64, before: u64) -> Vec<u8> {
        let mut b = Vec::new();
        string(&mut b, CERT_TYPE.as_bytes());
        string(&mut b, &[7; 32]);
        string(&mut b, e);
        string(&mut b, n);
        b.extend(42u64.to_be_bytes());
        b.extend(kind.to_be_bytes());
        string(&mut b, b"id");
        let mut list = Vec::new();
        for p in principals {
            string(&mut list, p.as_bytes());
        }
        string(&mut b, &list);
        b.extend(after.to_be_bytes());
        b.extend(before.to_be_bytes());
        b
    }

    #[test]
    fn rsa_public_keys_are_read_and_others_refused_with_the_reason() {
        let n: Vec<u8> = std::iter::once(0).chain(std::iter::repeat_n(0xab, 256)).collect();
        let line = format!("ssh-rsa {} me@host", STANDARD.encode(key_blob(&[1, 0, 1], &n)));
        let k = parse_public_key(&line).unwrap();
        assert_eq!((k.e, k.n.len()), (vec![1, 0, 1], 256), "leading zeros go");
        let ed = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBm me@host";
        assert!(parse_public_key(ed).unwrap_err().contains("ssh-ed25519 key, and Entra certifies RSA keys only"));
        let small = format!("ssh-rsa {}", STANDARD.encode(key_blob(&[3], &[0xab; 128])));
        assert!(parse_public_key(&small).unwrap_err().contains("2048"));
        for bad in ["", "ssh-rsa", "ssh-rsa !!!", "ssh-rsa AAAA"] {
            assert!(parse_public_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn certificates_name_their_key_principals_and_validity_and_junk_is_refused() {
        let n = vec![0xcd; 256];
        let blob = STANDARD.encode(cert_blob(&[1, 0, 1], &n, 1, &["Ann@Contoso.test", "ann"], 100, 3700));
        let c = parse_certificate(&blob).unwrap();
        assert_eq!((c.serial, c.valid_after, c.valid_before), (42, 100, 3700));
        assert_eq!(c.key, RsaKey { e: vec![1, 0, 1], n: n.clone() });
        assert_eq!(c.login(), "ann@contoso.test");
        assert_eq!((c.seconds_left(3600), c.seconds_left(4000)), (100, 0));
        assert_eq!(parse_certificate_line(&format!("{CERT_TYPE} {blob}\n")).unwrap().serial, 42);
        assert!(parse_certificate(&STANDARD.encode(cert_blob(&[3], &n, 2, &["a"], 0, 1))).unwrap_err().contains("host certificate"));
        assert!(parse_certificate(&STANDARD.encode(cert_blob(&[3], &n, 1, &[], 0, 1))).unwrap_err().contains("no principal"));
        assert!(parse_certificate(&STANDARD.encode(cert_blob(&[3], &n, 1, &["a\nb"], 0, 1))).unwrap_err().contains("characters"));
        let whole = cert_blob(&[3], &n, 1, &["a"], 0, 1);
        for cut in [0, 10, whole.len() - 1] {
            assert!(parse_certificate(&STANDARD.encode(&whole[..cut])).is_err(), "{cut}");
        }
        assert!(parse_certificate_line("ssh-rsa AAAA").is_err());
    }
}
