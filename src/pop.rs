//! Proof-of-possession (PoP) tokens: the RSA key a profile's PoP tokens are bound to (made
//! by ssh-keygen, ring makes no RSA keys; kept where the profile's `storage` keeps its
//! secrets, the OS keyring or a private entry in the cache directory, so a bound token stays
//! usable by the next process), the `req_cnf` that asks Entra to bind a
//! token to it, and the signed HTTP request (SHR) that proves possession on every call.
//! The SHR is never stored: each call signs a new one with a fresh nonce and time.

use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::os_keyring::{self, Place, Refused, Storage};
use crate::secret::Secret;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The `token_type` of a PoP token: asked for in the form, answered by Entra.
pub(crate) const POP: &str = "pop";

/// What a PoP request binds its token to: the key's RFC 7638 thumbprint (the token's
/// `cnf.kid`, the SHR's `kid`) and the `req_cnf` form field carrying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PopKey {
    pub kid: String,
    pub req_cnf: String,
    /// The public JWK's modulus and exponent (base64url, no leading zero bytes): what a
    /// token agent's client sends, and the SHR's `cnf.jwk`.
    pub n: String,
    pub e: String,
}

impl PopKey {
    /// From the public JWK's `n` and `e` (base64url, no leading zero bytes).
    pub(crate) fn from_jwk(n: &str, e: &str) -> PopKey {
        // RFC 7638: the required members in lexicographic order, no whitespace.
        let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()));
        let req_cnf = URL_SAFE_NO_PAD.encode(serde_json::json!({"kid": kid, "xms_ksl": "sw"}).to_string());
        PopKey { kid, req_cnf, n: n.to_string(), e: e.to_string() }
    }

    /// The public JWK `{"kty":"RSA","n","e"}` (what a token agent's request carries).
    pub(crate) fn jwk_value(&self) -> serde_json::Value {
        serde_json::json!({"kty": "RSA", "n": self.n, "e": self.e})
    }

    /// The key a token agent's client sends: an RSA JWK of 2048 bits or more, checked here,
    /// and its thumbprint computed again from `n` and `e`, never taken from the sender.
    #[cfg_attr(not(unix), allow(dead_code))] // its one user, the token agent, is Unix-only
    pub(crate) fn from_public_jwk(jwk: &serde_json::Value) -> std::result::Result<PopKey, String> {
        if jwk.get("kty").and_then(|k| k.as_str()) != Some("RSA") {
            return Err("the PoP public key is not an RSA JWK".into());
        }
        // RSA moduli of at most 16384 bits, exponents of at most 64 bits; canonical again.
        let part = |k: &str, max: usize| {
            let raw = jwk.get(k).and_then(|v| v.as_str()).filter(|s| !s.is_empty() && s.len() <= max * 4 / 3 + 2).and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())?;
            let first = raw.iter().position(|&b| b != 0)?;
            Some(raw[first..].to_vec())
        };
        match (part("n", 2048), part("e", 8)) {
            (Some(n), Some(e)) if n.len() >= 256 && e.len() <= 8 => Ok(PopKey::from_jwk(&URL_SAFE_NO_PAD.encode(n), &URL_SAFE_NO_PAD.encode(e))),
            _ => Err("the PoP public key needs n (an RSA modulus of 2048 bits or more) and e, in unpadded base64url".into()),
        }
    }
}

/// A profile's PoP key pair, loaded.
pub(crate) struct KeyPair {
    pair: RsaKeyPair,
    pub public: PopKey,
}

/// The key as kept (a keyring entry's text, or a file sealed by `at_rest`): PKCS#8 DER,
/// base64url (about 1.7 KB of JSON for RSA-2048: within Credential Manager's 2,560 bytes).
#[derive(Serialize, Deserialize)]
struct KeyEntry {
    v: u32,
    pkcs8: Secret<String>,
}

/// The cache entry name of `profile`'s key.
fn entry_name(profile: &str) -> String {
    crate::cache::key_name("popkey", &["1", profile])
}

impl KeyPair {
    fn from_pkcs8(der: &[u8]) -> std::result::Result<KeyPair, String> {
        let pair = RsaKeyPair::from_pkcs8(der).map_err(|e| format!("it is no RSA key ring accepts ({e})"))?;
        if pair.public().modulus_len() < 256 {
            return Err("it is shorter than 2048 bits".into());
        }
        let parts = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public());
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(&b[b.iter().position(|&x| x != 0).unwrap_or(0)..]);
        let (n, e) = (b64(&parts.n), b64(&parts.e));
        let public = PopKey::from_jwk(&n, &e);
        Ok(KeyPair { pair, public })
    }

    /// `profile`'s key from where its `storage` keeps secrets, made (under the entry's lock,
    /// so two processes agree on one key) when there is none or it is unusable. A key kept
    /// in a file before the keyring answered (`auto`) or before `storage` said `keyring`
    /// moves into the keyring under the same lock, so each key is in one place.
    pub(crate) fn for_profile(cache: &Cache, profile: &str, storage: Storage) -> Result<KeyPair> {
        let name = entry_name(profile);
        let place = os_keyring::place(cache.dir(), storage)?;
        if let Some(k) = Self::load(cache, &name, place)? {
            return Ok(k);
        }
        let _lock = cache.lock(&name, Duration::from_secs(30))?;
        if let Some(k) = Self::load(cache, &name, place)? {
            return Ok(k);
        }
        if let Some((key, entry)) = Self::from_file(cache, &name) {
            Self::move_to_keyring(cache, &name, place, &entry)?;
            return Ok(key);
        }
        let der = generate(cache)?;
        let key = KeyPair::from_pkcs8(&der).map_err(|why| Error::general(format!("the PoP key ssh-keygen made cannot be used: {why}")))?;
        let entry = KeyEntry { v: 1, pkcs8: Secret::new(URL_SAFE_NO_PAD.encode(&der)) };
        let kept = Self::keep(cache, &name, place, &entry)?;
        crate::log::trace!(1, "made the PoP key of profile '{profile}' (kid {}), kept in {kept}", key.public.kid);
        Ok(key)
    }

    /// The key kept under `name`: the keyring's (`keyring`, `auto`), else the file's
    /// (`file` only: under the others a file key is moved first, by `for_profile`).
    fn load(cache: &Cache, name: &str, place: Place) -> Result<Option<KeyPair>> {
        if place == Place::File {
            return Ok(Self::from_file(cache, name).map(|(k, _)| k));
        }
        match os_keyring::get(name) {
            Ok(Some(json)) => Ok(serde_json::from_str::<KeyEntry>(&json).ok().and_then(|e| Self::usable(&e, name))),
            Ok(None) => Ok(None),
            Err(e) if place == Place::Keyring => Err(e),
            Err(e) => {
                crate::log::trace!(1, "{}; reading the PoP key's file", crate::error::one_line(&e));
                Ok(Self::from_file(cache, name).map(|(k, _)| k))
            }
        }
    }

    /// The usable key in `name`'s private file, with its entry.
    fn from_file(cache: &Cache, name: &str) -> Option<(KeyPair, KeyEntry)> {
        let entry = cache.read::<serde_json::Value>(name).ok().flatten().and_then(crate::at_rest::from_file::<KeyEntry>)?;
        Self::usable(&entry, name).map(|k| (k, entry))
    }

    /// Moves a file's key into the keyring (not under `file`): put, then remove the file.
    /// Under `auto` a keyring that does not take it leaves the key in its file, in use.
    fn move_to_keyring(cache: &Cache, name: &str, place: Place, entry: &KeyEntry) -> Result<()> {
        if place == Place::File {
            return Ok(());
        }
        let json = serde_json::to_string(entry).map_err(|e| Error::caused("cannot encode the PoP key", e))?;
        match os_keyring::put(name, &json) {
            Ok(()) => match cache.remove(name) {
                Ok(_) => crate::log::trace!(1, "moved the PoP key {name} from its file into the OS keyring"),
                Err(e) => crate::log::warn!("the PoP key is now in the OS keyring, but its old file stays: {}", crate::error::one_line(&e)),
            },
            Err(Refused::TooLarge(why)) if place == Place::Auto => crate::log::trace!(1, "the OS keyring refused the PoP key for its size ({why}); it stays in its file"),
            Err(Refused::Failed(e)) if place == Place::Auto => crate::log::trace!(1, "{}; the PoP key stays in its file", crate::error::one_line(&e)),
            Err(Refused::TooLarge(why)) => return Err(Error::general(format!("the OS keyring refused the PoP key: {why}"))),
            Err(Refused::Failed(e)) => return Err(e),
        }
        Ok(())
    }

    fn usable(entry: &KeyEntry, name: &str) -> Option<KeyPair> {
        let der = URL_SAFE_NO_PAD.decode(entry.pkcs8.expose()).ok().filter(|_| entry.v == 1)?;
        KeyPair::from_pkcs8(&der).inspect_err(|why| crate::log::trace!(1, "the PoP key entry {name} is unusable ({why}); making a new key")).ok()
    }

    /// Keeps a new key where `place` says; where it went, for the trace.
    fn keep(cache: &Cache, name: &str, place: Place, entry: &KeyEntry) -> Result<&'static str> {
        if place != Place::File {
            let json = serde_json::to_string(entry).map_err(|e| Error::caused("cannot encode the PoP key", e))?;
            match os_keyring::put(name, &json) {
                Ok(()) => {
                    // One copy only: a file from before would be read if the keyring's went.
                    let _ = cache.remove(name);
                    return Ok("the OS keyring");
                }
                Err(Refused::TooLarge(why)) if place == Place::Auto => crate::log::warn!("the OS keyring refused the PoP key for its size ({why}); keeping it in a {} file in {}", os_keyring::private_files(), cache.dir().display()),
                Err(Refused::Failed(e)) if place == Place::Auto => os_keyring::fall_back(cache.dir(), &crate::error::one_line(&e)),
                Err(Refused::TooLarge(why)) => return Err(Error::general(format!("the OS keyring refused the PoP key: {why}"))),
                Err(Refused::Failed(e)) => return Err(e),
            }
        }
        cache.write(name, &crate::at_rest::to_file(entry)?)?;
        Ok("a private file")
    }

    /// The SHR for `at` and `binding`, signed now with a new random nonce.
    pub(crate) fn sign(&self, at: &str, binding: &Shr, now: i64) -> Result<String> {
        let header = serde_json::json!({"typ": "pop", "alg": "RS256", "kid": self.public.kid});
        let nonce = match &binding.nonce {
            Some(n) => n.clone(),
            None => {
                let mut n = [0u8; 32];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut n).map_err(|_| Error::general("no randomness for the PoP nonce"))?;
                URL_SAFE_NO_PAD.encode(n)
            }
        };
        let mut payload = serde_json::json!({
            "at": at,
            "ts": now,
            "nonce": nonce,
            "cnf": {"jwk": self.public.jwk_value()},
            "u": binding.u,
        });
        if let Some(m) = &binding.m {
            payload["m"] = m.as_str().into();
        }
        if let Some(p) = &binding.p {
            payload["p"] = p.as_str().into();
        }
        let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(payload.to_string()));
        let mut sig = vec![0u8; self.pair.public().modulus_len()];
        self.pair.sign(&RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), input.as_bytes(), &mut sig).map_err(|_| Error::general("signing the PoP request failed"))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

/// Removes the PoP keys of `profiles` (each with its `storage`: the OS keyring is asked
/// only where it may hold one), and with `every_file` every key file in the cache too
/// (`logout --all`); how many keys were removed. Nothing of a signed-out profile stays.
pub(crate) fn forget_keys(cache: &Cache, profiles: &[(String, Storage)], every_file: bool) -> Result<usize> {
    let mut files: Vec<String> = profiles.iter().map(|(p, _)| entry_name(p)).collect();
    if every_file {
        files.extend(cache.list("popkey-")?);
        files.sort();
        files.dedup();
    }
    let mut gone = Vec::new();
    for name in files {
        if cache.remove(&name)? {
            gone.push(name);
        }
    }
    let in_keyring: Vec<String> = profiles.iter().filter(|(_, s)| *s != Storage::File).map(|(p, _)| entry_name(p)).collect();
    if !in_keyring.is_empty() && os_keyring::probe().is_ok() {
        for name in in_keyring {
            match os_keyring::remove(&name) {
                Ok(true) => gone.push(name),
                Ok(false) => {}
                Err(e) => crate::log::warn!("could not remove a PoP key from the OS keyring ({})", crate::error::one_line(&e)),
            }
        }
    }
    gone.sort();
    gone.dedup();
    Ok(gone.len())
}

/// What an SHR binds besides the token: the HTTP method (`m`), the host or, for an Azure
/// Arc cluster, its ARM id (`u`), the path (`p`), and the nonce a resource server asked
/// for in its 401 challenge (else a random one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Shr {
    pub m: Option<String>,
    pub u: String,
    pub p: Option<String>,
    pub nonce: Option<String>,
}

impl Shr {
    /// The server's nonce (from `WWW-Authenticate: PoP nonce="…"`) to sign instead of a
    /// random one: visible ASCII without quotes or backslashes, at most 1 KiB.
    pub(crate) fn with_nonce(self, nonce: Option<&str>) -> std::result::Result<Shr, String> {
        match nonce {
            None => Ok(self),
            Some(n) if !n.is_empty() && n.len() <= 1024 && n.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\') => Ok(Shr { nonce: Some(n.to_string()), ..self }),
            Some(_) => Err("the server nonce must be 1 to 1024 visible ASCII characters without quotes or backslashes".into()),
        }
    }

    /// From a method and an absolute http(s) URL: `u` its host (and port), `p` its path.
    /// The query is not signed (no `q`): optional in the draft, and neither MSAL .NET nor
    /// kubelogin signs it (docs/pop.md says why).
    pub(crate) fn for_url(method: &str, url: &str) -> std::result::Result<Shr, String> {
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) || method.len() > 16 {
            return Err(format!("'{}' is no HTTP method", crate::log::escape(&method.chars().take(20).collect::<String>())));
        }
        let uri: ureq::http::Uri = url.parse().map_err(|_| format!("'{}' is no URL", crate::log::escape(&url.chars().take(80).collect::<String>())))?;
        let (Some("https" | "http"), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err("the URL must be absolute http(s), e.g. https://graph.microsoft.com/v1.0/me".into());
        };
        let host = authority.as_str().rsplit('@').next().unwrap_or_default().to_ascii_lowercase();
        Ok(Shr { m: Some(method.to_ascii_uppercase()), u: host, p: Some(uri.path().to_string()), nonce: None })
    }

    /// kubelogin's `--pop-claims "u=ID[,k=v]"`: `u` (required; the Arc cluster's ARM id),
    /// and `m`/`p` when given.
    pub(crate) fn from_claims(claims: &str) -> std::result::Result<Shr, String> {
        let mut shr = Shr::default();
        for pair in claims.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = pair.split_once('=').ok_or_else(|| format!("'{}' is not key=value", crate::log::escape(pair)))?;
            let v = v.trim();
            if v.is_empty() || v.chars().any(char::is_control) || v.len() > 1024 {
                return Err(format!("the value of '{}' is empty, too long or has control characters", crate::log::escape(k)));
            }
            match k.trim() {
                "u" => shr.u = v.to_string(),
                "m" => shr.m = Some(v.to_ascii_uppercase()),
                "p" => shr.p = Some(v.to_string()),
                other => return Err(format!("unknown PoP claim '{}' (known: u, m, p)", crate::log::escape(other))),
            }
        }
        if shr.u.is_empty() {
            return Err("the PoP claims need u=<the cluster's ARM id>".into());
        }
        Ok(shr)
    }
}

/// A new RSA-2048 key as PKCS#8 DER (ssh-keygen, else the OS's generator), its scratch
/// directory inside the cache directory.
fn generate(cache: &Cache) -> Result<Vec<u8>> {
    crate::os_rsa::new_pkcs8(2048, cache.dir(), "the PoP key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_and_req_cnf_are_rfc7638_and_entras_shape() {
        // RFC 7638 §3.1's example key and thumbprint.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let k = PopKey::from_jwk(n, "AQAB");
        assert_eq!(k.kid, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
        let cnf: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&k.req_cnf).unwrap()).unwrap();
        assert_eq!(cnf, serde_json::json!({"kid": k.kid, "xms_ksl": "sw"}));
        // What a token agent receives: checked, canonical again, the kid computed, not taken.
        let sent = serde_json::json!({"kty": "RSA", "n": format!("AAAA{n}"), "e": "AAEAAQ", "kid": "not-taken"});
        assert_eq!(PopKey::from_public_jwk(&sent).unwrap(), k);
        let short = URL_SAFE_NO_PAD.encode([7u8; 128]);
        for bad in [
            serde_json::json!({"kty": "EC", "n": n, "e": "AQAB"}),
            serde_json::json!({"kty": "RSA", "n": short, "e": "AQAB"}),
            serde_json::json!({"kty": "RSA", "n": n}),
            serde_json::json!({"kty": "RSA", "n": "!!", "e": "AQAB"}),
            serde_json::json!({"kty": "RSA", "n": n, "e": URL_SAFE_NO_PAD.encode([1u8; 9])}),
        ] {
            assert!(PopKey::from_public_jwk(&bad).is_err(), "{bad}");
        }
    }

    /// A kept key (here the tests' 2048-bit fixture: ring makes none, and Wine has no
    /// ssh-keygen) fits Credential Manager's 2,560 bytes, comes back from its file (sealed
    /// with DPAPI on Windows) with the same key id, and on Windows with `auto` goes to
    /// Credential Manager (under Wine in CI) and to no file, and logout takes it out.
    #[test]
    fn a_kept_key_fits_credential_manager_and_comes_back_with_its_key_id() {
        use rustls_pki_types::pem::PemObject;
        let pem = include_bytes!("../tests/fixtures/client-key-pkcs8.pem");
        let der = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(pem).unwrap().secret_pkcs8_der().to_vec();
        let kid = KeyPair::from_pkcs8(&der).unwrap().public.kid;
        let entry = KeyEntry { v: 1, pkcs8: Secret::new(URL_SAFE_NO_PAD.encode(&der)) };
        let json = serde_json::to_string(&entry).unwrap();
        assert!(json.len() <= 2560, "{} bytes: over Credential Manager's limit", json.len());
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path().join("cache")).unwrap();
        let profile = format!("unit-{}", std::process::id());
        let name = entry_name(&profile);
        assert_eq!(KeyPair::keep(&cache, &name, Place::File, &entry).unwrap(), "a private file");
        let file: serde_json::Value = cache.read(&name).unwrap().unwrap();
        assert_eq!(file.get("dpapi").is_some(), cfg!(windows), "{file}");
        assert_eq!(KeyPair::load(&cache, &name, Place::File).unwrap().unwrap().public.kid, kid);
        assert!(cache.remove(&name).unwrap());
        #[cfg(all(windows, feature = "keyring"))]
        {
            let place = os_keyring::place(cache.dir(), Storage::Auto).unwrap();
            assert_eq!(place, Place::Auto, "Credential Manager does not answer here");
            assert_eq!(KeyPair::keep(&cache, &name, place, &entry).unwrap(), "the OS keyring");
            assert!(cache.read::<serde_json::Value>(&name).unwrap().is_none(), "a key file beside Credential Manager");
            assert_eq!(KeyPair::load(&cache, &name, Place::Keyring).unwrap().unwrap().public.kid, kid);
            // logout: out of Credential Manager.
            assert_eq!(forget_keys(&cache, &[(profile, Storage::Auto)], false).unwrap(), 1);
            assert!(KeyPair::load(&cache, &name, Place::Keyring).unwrap().is_none());
        }
    }

    #[test]
    fn request_bindings_from_urls_and_kubelogin_claims() {
        let s = Shr::for_url("get", "https://Graph.Microsoft.com:443/v1.0/me?x=1").unwrap();
        assert_eq!((s.m.as_deref(), s.u.as_str(), s.p.as_deref()), (Some("GET"), "graph.microsoft.com:443", Some("/v1.0/me")));
        assert!(Shr::for_url("GET", "/relative").is_err());
        assert!(Shr::for_url("G T", "https://h/").is_err());
        let arc = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Kubernetes/connectedClusters/c";
        assert_eq!(Shr::from_claims(&format!("u={arc}")).unwrap(), Shr { m: None, u: arc.into(), p: None, nonce: None });
        assert_eq!(s.clone().with_nonce(Some("srv-1")).unwrap().nonce.as_deref(), Some("srv-1"));
        assert!(s.clone().with_nonce(Some("a\"b")).is_err() && s.with_nonce(Some("")).is_err());
        assert!(Shr::from_claims("m=GET").unwrap_err().contains("u=<"));
        assert!(Shr::from_claims("u=x,zz=1").unwrap_err().contains("unknown PoP claim"));
    }
}
