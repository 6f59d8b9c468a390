//! A fresh RSA key from the OS where `ssh-keygen` is missing. ring signs with RSA but
//! cannot make RSA keys, so the project makes them with OpenSSH's `ssh-keygen`; Windows
//! ships that only as an optional feature (absent on Server Core, LTSC, some managed
//! images, and Wine), but every Windows has CNG, the OS's own crypto provider (as DPAPI in
//! `at_rest` is): `BCryptGenerateKeyPair` makes the key, and only its export, the numbers,
//! is put into the PKCS#8 DER ring loads (with yasna, rcgen's DER writer). Elsewhere there
//! is no OS generator: `None`.

use crate::error::{Error, Result};
use std::path::Path;

/// A new RSA key of `bits` as PKCS#8 DER, for `what` (named in errors): made by
/// `ssh-keygen -t rsa -m PKCS8` (as `az ssh` makes its keys) in a private scratch directory
/// inside `scratch_in`, removed afterwards; where ssh-keygen is not installed, by the OS's
/// own generator (`generate_pkcs8`). The one place entra-token makes RSA keys.
pub(crate) fn new_pkcs8(bits: u32, scratch_in: &Path, what: &str) -> Result<Vec<u8>> {
    let scratch = crate::fs::create_unique_private_dir(scratch_in, ".rsakey-").map_err(Error::failed)?;
    let path = scratch.join("key");
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "rsa", "-b", &bits.to_string(), "-m", "PKCS8", "-N", "", "-C", "entra-token", "-f"])
        .arg(&path)
        .stdin(std::process::Stdio::null())
        .output();
    let pem = std::fs::read(&path);
    let _ = std::fs::remove_dir_all(&scratch);
    let out = match out {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let missing = || Error::bad_input_hint(format!("cannot make {what}: ssh-keygen is not installed"), "install OpenSSH's client tools (ssh-keygen, e.g. apt install openssh-client): entra-token makes its RSA keys with it").because(e);
            return generate_pkcs8(bits).ok_or_else(missing)?.map_err(|why| Error::general(format!("cannot make {what}: {why}")));
        }
        Err(e) => return Err(Error::bad_input_hint(format!("cannot run ssh-keygen to make {what}"), "install OpenSSH's client tools (ssh-keygen): entra-token makes its RSA keys with it").because(e)),
    };
    if !out.status.success() {
        return Err(Error::general(format!("ssh-keygen could not make {what}: {}", crate::log::escape(String::from_utf8_lossy(&out.stderr).trim()))));
    }
    use rustls_pki_types::pem::PemObject;
    let pem = pem.map_err(|e| Error::caused(format!("cannot read {what} ssh-keygen made"), e))?;
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(&pem).map_err(|_| Error::general(format!("ssh-keygen made {what} in no PKCS#8 form (is it older than OpenSSH 7.8?)")))?;
    Ok(der.secret_pkcs8_der().to_vec())
}

/// A new RSA key of `bits` as PKCS#8 DER (the form `ssh-keygen -m PKCS8` writes), or why
/// the OS would not make one; `None` where the OS offers no generator.
pub(crate) fn generate_pkcs8(bits: u32) -> Option<Result<Vec<u8>, String>> {
    #[cfg(windows)]
    {
        Some(cng::generate(bits).map(|parts| pkcs8(&parts)))
    }
    #[cfg(not(windows))]
    {
        let _ = bits;
        None
    }
}

/// The numbers of an RSA private key, big-endian, in RFC 8017's order after the version.
#[cfg_attr(not(windows), allow(dead_code))]
struct Parts {
    n: Vec<u8>,
    e: Vec<u8>,
    d: Vec<u8>,
    p: Vec<u8>,
    q: Vec<u8>,
    dp: Vec<u8>,
    dq: Vec<u8>,
    qinv: Vec<u8>,
}

/// PKCS#8 PrivateKeyInfo (RFC 5208) around an RSAPrivateKey (RFC 8017 A.1.2).
#[cfg_attr(not(windows), allow(dead_code))]
fn pkcs8(k: &Parts) -> Vec<u8> {
    let rsa = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_u8(0);
            for part in [&k.n, &k.e, &k.d, &k.p, &k.q, &k.dp, &k.dq, &k.qinv] {
                w.next().write_bigint_bytes(part, true);
            }
        })
    });
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_u8(0);
            w.next().write_sequence(|w| {
                // rsaEncryption, with its NULL parameters.
                w.next().write_oid(&yasna::models::ObjectIdentifier::from_slice(&[1, 2, 840, 113_549, 1, 1, 1]));
                w.next().write_null();
            });
            w.next().write_bytes(&rsa);
        })
    })
}

#[cfg(windows)]
mod cng {
    use super::Parts;
    use windows_sys::Win32::Security::Cryptography::{
        BCRYPT_ALG_HANDLE, BCRYPT_KEY_HANDLE, BCRYPT_RSA_ALGORITHM, BCRYPT_RSAFULLPRIVATE_BLOB, BCRYPT_RSAFULLPRIVATE_MAGIC, BCRYPT_RSAKEY_BLOB, BCryptCloseAlgorithmProvider, BCryptDestroyKey,
        BCryptExportKey, BCryptFinalizeKeyPair, BCryptGenerateKeyPair, BCryptOpenAlgorithmProvider,
    };

    fn check(what: &str, status: i32) -> Result<(), String> {
        if status < 0 { Err(format!("Windows' CNG could not {what} (NTSTATUS 0x{:08X})", status as u32)) } else { Ok(()) }
    }

    pub(super) fn generate(bits: u32) -> Result<Parts, String> {
        let mut alg: BCRYPT_ALG_HANDLE = std::ptr::null_mut();
        // SAFETY: out-pointer to a handle; the algorithm name is a static wide string.
        check("open its RSA provider", unsafe { BCryptOpenAlgorithmProvider(&mut alg, BCRYPT_RSA_ALGORITHM, std::ptr::null(), 0) })?;
        let mut key: BCRYPT_KEY_HANDLE = std::ptr::null_mut();
        // SAFETY: `alg` is the open provider; `key` receives the new key's handle.
        let result = check("make an RSA key", unsafe { BCryptGenerateKeyPair(alg, &mut key, bits, 0) })
            // SAFETY: `key` is the handle just made.
            .and_then(|()| check("finish the RSA key", unsafe { BCryptFinalizeKeyPair(key, 0) }))
            .and_then(|()| export(key));
        if !key.is_null() {
            // SAFETY: the key handle made above, destroyed once.
            unsafe { BCryptDestroyKey(key) };
        }
        // SAFETY: the provider opened above, closed once.
        unsafe { BCryptCloseAlgorithmProvider(alg, 0) };
        result
    }

    /// BCRYPT_RSAFULLPRIVATE_BLOB: the header, then e, n, p, q, dp, dq, qinv, d.
    fn export(key: BCRYPT_KEY_HANDLE) -> Result<Parts, String> {
        let mut len = 0u32;
        // SAFETY: a size query (no output buffer).
        check("export the RSA key", unsafe { BCryptExportKey(key, std::ptr::null_mut(), BCRYPT_RSAFULLPRIVATE_BLOB, std::ptr::null_mut(), 0, &mut len, 0) })?;
        let mut blob = vec![0u8; len as usize];
        // SAFETY: `blob` has the `len` bytes CNG asked for.
        check("export the RSA key", unsafe { BCryptExportKey(key, std::ptr::null_mut(), BCRYPT_RSAFULLPRIVATE_BLOB, blob.as_mut_ptr(), len, &mut len, 0) })?;
        blob.truncate(len as usize);
        let head = std::mem::size_of::<BCRYPT_RSAKEY_BLOB>();
        let bad = || "Windows' CNG exported an RSA key in a shape it does not document".to_string();
        if blob.len() < head {
            return Err(bad());
        }
        // SAFETY: the blob starts with a BCRYPT_RSAKEY_BLOB (checked long enough; read unaligned).
        let h: BCRYPT_RSAKEY_BLOB = unsafe { std::ptr::read_unaligned(blob.as_ptr().cast()) };
        if h.Magic != BCRYPT_RSAFULLPRIVATE_MAGIC {
            return Err(bad());
        }
        let (e_len, n_len, p1, p2) = (h.cbPublicExp as usize, h.cbModulus as usize, h.cbPrime1 as usize, h.cbPrime2 as usize);
        let mut rest = &blob[head..];
        let mut take = |len: usize| -> Result<Vec<u8>, String> {
            if rest.len() < len {
                return Err(bad());
            }
            let (part, tail) = rest.split_at(len);
            rest = tail;
            Ok(part.to_vec())
        };
        let (e, n, p, q) = (take(e_len)?, take(n_len)?, take(p1)?, take(p2)?);
        let (dp, dq, qinv, d) = (take(p1)?, take(p2)?, take(p1)?, take(n_len)?);
        Ok(Parts { n, e, d, p, q, dp, dq, qinv })
    }
}

#[cfg(test)]
mod tests {
    /// Windows makes the key; ring loads it and its signatures verify with the public half.
    #[cfg(windows)]
    #[test]
    fn the_os_key_is_pkcs8_that_ring_signs_with() {
        let der = super::generate_pkcs8(2048).expect("Windows has CNG").expect("CNG makes an RSA key");
        let key = ring::signature::RsaKeyPair::from_pkcs8(&der).expect("ring loads the PKCS#8 key");
        assert_eq!(key.public().modulus_len(), 256);
        let rng = ring::rand::SystemRandom::new();
        let mut sig = vec![0u8; key.public().modulus_len()];
        key.sign(&ring::signature::RSA_PKCS1_SHA256, &rng, b"signed", &mut sig).unwrap();
        let public = ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, key.public().as_ref());
        public.verify(b"signed", &sig).expect("the signature verifies");
        assert_ne!(super::generate_pkcs8(2048).unwrap().unwrap(), der, "each key is new");
    }

    /// The DER around the numbers, against a key OpenSSL wrote (the project's fixture):
    /// taken apart by ring and put back, byte for byte.
    #[test]
    fn pkcs8_is_the_der_openssl_writes() {
        use rustls_pki_types::pem::PemObject;
        let pem = include_bytes!("../tests/fixtures/client-key-pkcs8.pem");
        let fixture = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(pem).unwrap();
        let der = fixture.secret_pkcs8_der();
        // Walk the fixture's nine INTEGERs with yasna and rebuild.
        let parts = yasna::parse_der(der, |r| {
            r.read_sequence(|r| {
                r.next().read_u8()?;
                r.next().read_sequence(|r| {
                    r.next().read_oid()?;
                    r.next().read_null()
                })?;
                let inner = r.next().read_bytes()?;
                yasna::parse_der(&inner, |r| {
                    r.read_sequence(|r| {
                        r.next().read_u8()?;
                        let mut v = Vec::new();
                        for _ in 0..8 {
                            v.push(r.next().read_bigint_bytes()?.0);
                        }
                        Ok(v)
                    })
                })
            })
        })
        .unwrap();
        let p = super::Parts { n: parts[0].clone(), e: parts[1].clone(), d: parts[2].clone(), p: parts[3].clone(), q: parts[4].clone(), dp: parts[5].clone(), dq: parts[6].clone(), qinv: parts[7].clone() };
        assert_eq!(super::pkcs8(&p), der);
    }
}
