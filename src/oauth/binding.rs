//! What a token is bound to, and the one gate between an answer and a request
//! (`Binding::check`): a bearer token, an SSH certificate or PoP token for a key, or a
//! registry's refresh token from ACR's exchange. Apart from `oauth` only for its size.

/// The `token_type` of an SSH certificate: asked for in the form, answered by Entra.
pub(crate) const SSH_CERT: &str = "ssh-cert";

/// What a token is bound to, besides whose it is and what it is for: nothing (a bearer
/// token), an RSA public key Entra certifies (an SSH certificate, a PoP token), or a
/// registry (ACR's refresh token, exchanged there for the request's Entra token). Part of
/// the cache key and checked on every answer, cached or new ([`Binding::check`]): a bearer
/// request never gets a certificate or a registry's token, a certificate request only one
/// for its own key, a registry request only the exchange's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Binding {
    #[default]
    Bearer,
    SshCert(SshKey),
    /// A PoP token bound to the key of `crate::pop` (its RFC 7638 thumbprint).
    Pop(crate::pop::PopKey),
    /// The refresh token of this Azure Container Registry (host[:port]) from its exchange.
    /// It never reaches a token endpoint: its Entra token is a bearer request of its own.
    Registry(String),
}

/// An RSA public key as Entra's `req_cnf` takes it: the JWK `{"kty":"RSA","n","e","kid"}`,
/// `kid` the hex SHA-256 of `n` and `e` as az computes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SshKey {
    pub kid: String,
    pub jwk: String,
}

impl SshKey {
    /// The key from its modulus and public exponent (big-endian, leading zeros allowed).
    pub(crate) fn rsa(n: &[u8], e: &[u8]) -> SshKey {
        use base64::Engine;
        let b64 = |b: &[u8]| {
            let first = b.iter().position(|&x| x != 0).unwrap_or(b.len().saturating_sub(1));
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&b[first..])
        };
        let (n, e) = (b64(n), b64(e));
        let digest = ring::digest::digest(&ring::digest::SHA256, format!("{n}{e}").as_bytes());
        let kid: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        let jwk = serde_json::json!({"kty": "RSA", "n": n, "e": e, "kid": kid}).to_string();
        SshKey { kid, jwk }
    }
}

impl SshKey {
    /// The key a token agent's client sends (`{"kty":"RSA","n","e"}`, unpadded base64url):
    /// checked here, and its `kid` computed again, never taken from the sender.
    #[cfg_attr(not(unix), allow(dead_code))] // its one user, the token agent, is Unix-only
    pub(crate) fn from_jwk(jwk: &serde_json::Value) -> std::result::Result<SshKey, String> {
        use base64::Engine;
        if jwk.get("kty").and_then(|k| k.as_str()) != Some("RSA") {
            return Err("the SSH public key is not an RSA JWK".into());
        }
        // RSA moduli of at most 16384 bits, exponents of at most 64 bits.
        let part = |k: &str, max: usize| {
            jwk.get(k).and_then(|v| v.as_str()).filter(|s| !s.is_empty() && s.len() <= max * 4 / 3 + 2).and_then(|s| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).ok())
        };
        match (part("n", 2048), part("e", 8)) {
            (Some(n), Some(e)) if n.len() >= 256 => Ok(SshKey::rsa(&n, &e)),
            _ => Err("the SSH public key needs n (an RSA modulus of 2048 bits or more) and e, in unpadded base64url".into()),
        }
    }

    /// The JWK as a JSON value (what the token agent's request carries).
    pub(crate) fn jwk_value(&self) -> serde_json::Value {
        serde_json::from_str(&self.jwk).unwrap_or_default()
    }
}

impl Binding {
    /// The `token_type` its answers carry.
    pub(crate) fn token_type(&self) -> &'static str {
        match self {
            Binding::Bearer => "Bearer",
            Binding::SshCert(_) => SSH_CERT,
            Binding::Pop(_) => crate::pop::POP,
            Binding::Registry(_) => crate::cache::ACR_REFRESH_TOKEN,
        }
    }

    /// The kind with its article, for messages: `an ssh-cert`, `a PoP token`, `a bearer token`.
    pub(crate) fn a_kind(&self) -> &'static str {
        match self { Binding::Bearer => "a bearer token", Binding::SshCert(_) => "an ssh-cert", Binding::Pop(_) => "a PoP token", Binding::Registry(_) => "a registry's refresh token" }
    }

    /// Its token type as a cache entry records it (`cache::Binding::token_type`).
    pub(crate) fn cache_type(&self) -> &'static str {
        match self {
            Binding::Bearer => crate::cache::BEARER,
            Binding::SshCert(_) => SSH_CERT,
            Binding::Pop(_) => crate::pop::POP,
            Binding::Registry(_) => crate::cache::ACR_REFRESH_TOKEN,
        }
    }

    /// The registry whose refresh token is asked for (None for Entra's own tokens).
    pub(crate) fn registry(&self) -> Option<&str> {
        match self {
            Binding::Registry(r) => Some(r),
            _ => None,
        }
    }

    /// The key id it is bound to (None for a bearer token).
    pub(crate) fn key_id(&self) -> Option<&str> {
        match self {
            Binding::Bearer | Binding::Registry(_) => None,
            Binding::SshCert(k) => Some(&k.kid),
            Binding::Pop(k) => Some(&k.kid),
        }
    }

    /// The token endpoint's form fields asking for it (none for a bearer token; a
    /// registry's token is never asked of a token endpoint, and an answer from one fails
    /// `check`).
    pub(crate) fn add_to<'a>(&'a self, form: &mut Vec<(&'a str, &'a str)>) {
        match self {
            Binding::Bearer | Binding::Registry(_) => {}
            Binding::SshCert(k) => form.extend([("token_type", SSH_CERT), ("req_cnf", k.jwk.as_str()), ("key_id", k.kid.as_str())]),
            Binding::Pop(k) => form.extend([("token_type", crate::pop::POP), ("req_cnf", k.req_cnf.as_str())]),
        }
    }

    /// The one gate between an answer (new, or cached with the key id it was minted for)
    /// and a request: same token type, same key. A refusal names both, never the token.
    pub(crate) fn check(&self, token_type: &str, key_id: Option<&str>) -> std::result::Result<(), String> {
        if !token_type.eq_ignore_ascii_case(self.token_type()) {
            return Err(format!("a {} was asked for, but the answer is a {}", self.token_type(), crate::log::escape(&token_type.chars().take(40).collect::<String>())));
        }
        if key_id != self.key_id() {
            return Err(format!("the {} answer is bound to another key than the one asked for", self.token_type()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_keys_are_jwks_with_azs_key_id_and_the_gate_matches_type_and_key() {
        let k = SshKey::rsa(&[0, 0xc1, 0x02], &[1, 0, 1]);
        let jwk: serde_json::Value = serde_json::from_str(&k.jwk).unwrap();
        assert_eq!((jwk["kty"].as_str(), jwk["n"].as_str(), jwk["e"].as_str()), (Some("RSA"), Some("wQI"), Some("AQAB")), "base64url, no padding, no leading zero");
        // az's key id: hex SHA-256 of n then e as the JWK spells them.
        let want: String = ring::digest::digest(&ring::digest::SHA256, b"wQIAQAB").as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!((jwk["kid"].as_str(), k.kid.as_str()), (Some(want.as_str()), want.as_str()));
        let ssh = Binding::SshCert(k.clone());
        let mut form = vec![("scope", "s")];
        ssh.add_to(&mut form);
        assert_eq!(form, [("scope", "s"), ("token_type", "ssh-cert"), ("req_cnf", k.jwk.as_str()), ("key_id", k.kid.as_str())]);
        Binding::Bearer.add_to(&mut form);
        assert_eq!(form.len(), 4, "a bearer request adds nothing");
        assert!(ssh.check("ssh-cert", Some(&k.kid)).is_ok());
        assert!(ssh.check("Bearer", Some(&k.kid)).is_err());
        assert!(ssh.check("ssh-cert", Some("another")).is_err());
        assert!(ssh.check("ssh-cert", None).is_err());
        assert!(Binding::Bearer.check("Bearer", None).is_ok());
        assert!(Binding::Bearer.check("ssh-cert", Some(&k.kid)).is_err());
        assert!(Binding::Bearer.check("pop", None).is_err());
        // What the token agent receives: checked, and the kid computed again, not taken.
        let big = SshKey::rsa(&[0xab; 256], &[1, 0, 1]);
        let sent = serde_json::json!({"kty": "RSA", "n": big.jwk_value()["n"], "e": "AQAB", "kid": "chosen-by-the-sender"});
        assert_eq!(SshKey::from_jwk(&sent).unwrap(), big);
        for bad in [serde_json::json!({"kty": "EC", "n": big.jwk_value()["n"], "e": "AQAB"}), serde_json::json!({"kty": "RSA", "n": "wQI", "e": "AQAB"}), serde_json::json!({"kty": "RSA", "e": "AQAB"}), serde_json::json!("x")] {
            assert!(SshKey::from_jwk(&bad).is_err(), "{bad}");
        }
        let body = serde_json::json!({"access_token": "AAAAHHNzaC1yc2EtY2VydC12MDFAb3BlbnNzaC5jb20=", "token_type": "SSH-Cert", "expires_in": 3600}).to_string();
        assert_eq!(crate::oauth::parse_token_reply(body.as_bytes(), "u", 0).unwrap().token_type, "ssh-cert");
    }

    #[test]
    fn the_gate_keeps_a_registrys_token_and_a_bearer_token_apart() {
        let acr = Binding::Registry("contoso.azurecr.io".into());
        assert!(acr.check("acr_refresh_token", None).is_ok());
        assert!(acr.check("Bearer", None).is_err(), "a registry request takes only the exchange's answer");
        assert!(Binding::Bearer.check("acr_refresh_token", None).is_err(), "a bearer request never takes a registry's token");
        assert!(Binding::SshCert(SshKey::rsa(&[0xc1], &[1, 0, 1])).check("acr_refresh_token", None).is_err());
        let mut form = vec![("scope", "s")];
        acr.add_to(&mut form);
        assert_eq!(form.len(), 1, "a registry's token is never asked of a token endpoint");
        assert_eq!((acr.registry(), Binding::Bearer.registry(), acr.key_id()), (Some("contoso.azurecr.io"), None, None));
    }
}
