//! Azure Container Registry's token exchange: an Entra access token is traded at
//! `https://<registry>/oauth2/exchange` for an ACR refresh token, which Docker then uses
//! as the password of the well-known null-GUID user. The refresh token is cached by the
//! core like every token (`tokens::get_with`: one loop, one entry shape, one gate), bound
//! to its registry and the Entra request, and sealed at rest as a refresh token, so a
//! `docker pull` in a loop costs one file read. The broker wraps this around the inner
//! layers for a request bound to a registry (`Binding::Registry`: Docker's helper, here or
//! on the token agent's side), so no protocol codec does network; the Entra token comes
//! from what it is handed, never from the broker.

use crate::authority;
use crate::clock;
use crate::env::ACR_EXCHANGE_URL as EXCHANGE_URL_ENV;
use crate::error::{Error, Result};
use crate::flows::Prompt;
use crate::http::RetryPolicy;
use crate::oauth::{Binding, TokenReply};
use crate::secret::Secret;
use crate::tokens::{self, Credential, Resolved, TokenRequest};
use serde::Deserialize;

/// The `token_type` of a credential that is a registry's refresh token, not an Entra token.
pub(crate) use crate::cache::ACR_REFRESH_TOKEN as TOKEN_TYPE;
/// The user name ACR expects with a refresh token as the password.
pub(crate) const ACR_USERNAME: &str = "00000000-0000-0000-0000-000000000000";
/// The audience of the Entra token given to ACR's exchange when the profile names none.
const EXCHANGE_RESOURCE: &str = "https://management.azure.com/";
/// ACR refresh tokens live about three hours; used when the token carries no `exp`.
const DEFAULT_LIFETIME: i64 = 3 * 3600;

/// Registry host suffixes of Azure Container Registry in each cloud.
const ACR_SUFFIXES: &[&str] = &[".azurecr.io", ".azurecr.cn", ".azurecr.us"];

/// Is this registry host an Azure Container Registry by name?
pub(crate) fn is_acr_host(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    ACR_SUFFIXES.iter().any(|s| h.ends_with(s) && h.len() > s.len())
}

#[derive(Deserialize)]
struct ExchangeReply {
    refresh_token: Option<Secret<String>>,
}

#[derive(Deserialize, Default)]
struct AcrErrors {
    #[serde(default)]
    errors: Vec<AcrError>,
}

#[derive(Deserialize, Default)]
struct AcrError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// The exchange form, in ACR's documented field order.
pub(crate) fn exchange_form<'a>(registry: &'a str, tenant: &'a str, access_token: &'a str) -> [(&'static str, &'a str); 4] {
    [("grant_type", "access_token"), ("service", registry), ("tenant", tenant), ("access_token", access_token)]
}

/// Parses the exchange answer: the refresh token and when it expires.
pub(crate) fn parse_exchange(status: u16, body: &[u8], registry: &str, now: i64) -> Result<(Secret<String>, i64)> {
    if status == 200 {
        let reply: ExchangeReply = serde_json::from_slice(body).map_err(|_| Error::Network {
            url: format!("https://{registry}/oauth2/exchange"),
            message: "the answer is not ACR's token exchange JSON".into(),
            hint: Some("check that the registry name is right and that no proxy answers instead".into()),
        })?;
        let token = reply.refresh_token.filter(|t| !t.expose().is_empty()).ok_or_else(|| Error::Network {
            url: format!("https://{registry}/oauth2/exchange"),
            message: "the answer has no refresh_token".into(),
            hint: None,
        })?;
        // The same gate as every token answer: it becomes Docker's and Bazel's secret.
        crate::oauth::check_token("refresh_token", token.expose()).map_err(|message| Error::Network {
            url: format!("https://{registry}/oauth2/exchange"),
            message,
            hint: Some("check that the registry name is right and that no proxy answers instead".into()),
        })?;
        let exp = crate::jwt::decode(token.expose()).and_then(|(_, c)| c.get("exp").and_then(serde_json::Value::as_i64));
        return Ok((token, crate::oauth::bounded_expiry(exp.unwrap_or(now + DEFAULT_LIFETIME), now)));
    }
    let errors: AcrErrors = serde_json::from_slice(body).unwrap_or_default();
    match errors.errors.first() {
        Some(e) => Err(Error::auth(
            format!("the registry {registry} refused the token exchange: {} {}", e.code, e.message.trim()),
            Some("check that the profile's identity has a pull role (AcrPull) on the registry and that its tenant owns the registry".into()),
        )),
        None if status == 401 || status == 403 => Err(Error::auth(
            format!("the registry {registry} refused the token exchange (HTTP {status})"),
            Some("check that the profile's identity has a pull role (AcrPull) on the registry".into()),
        )),
        None => Err(Error::Network {
            url: format!("https://{registry}/oauth2/exchange"),
            message: format!("unexpected HTTP {status} answer"),
            hint: Some("check the registry name; a proxy or gateway may be answering".into()),
        }),
    }
}

fn exchange_url(registry: &str) -> Result<String> {
    exchange_url_from(crate::env::var(EXCHANGE_URL_ENV), registry)
}

/// The exchange URL for `registry`, given the override's value.
fn exchange_url_from(override_url: Option<String>, registry: &str) -> Result<String> {
    match override_url {
        Some(url) => {
            let url = url.as_str();
            authority::check_secure_url(url, EXCHANGE_URL_ENV)?;
            // The Entra token goes to the registry it is for, or to a stand-in on this machine.
            if !authority::host_of(&url.to_ascii_lowercase()).is_some_and(authority::is_loopback_host) {
                return Err(Error::bad_input_hint(
                    format!("{EXCHANGE_URL_ENV} '{url}' is not on a loopback address"),
                    format!("it is for tests and stand-ins on this machine; unset it to exchange at https://{registry}/oauth2/exchange"),
                ));
            }
            Ok(url.to_string())
        }
        None => Ok(format!("https://{registry}/oauth2/exchange")),
    }
}

/// The request for `profile`'s token at `registry`: the Entra token ACR's exchange takes
/// is Azure management's (ACR accepts its audience) unless the profile names its own
/// target. This is the one place an ARM token is the default, and it goes only to the
/// registry the profile claims (`exchange_url`).
pub(crate) fn request(profile: &str, registry: &str) -> Result<TokenRequest> {
    let p = crate::config::resolve(Some(profile))?;
    let has_target = p.settings.resource.is_some() || p.settings.scopes.as_ref().is_some_and(|s| !s.is_empty());
    Ok(TokenRequest {
        profile: Some(profile.to_string()),
        resource: (!has_target).then(|| EXCHANGE_RESOURCE.to_string()),
        binding: Binding::Registry(registry.to_string()),
        ..TokenRequest::default()
    })
}

/// The answer to a request for `registry`'s token (`r`, bound as `Binding::Registry`):
/// the core's one loop (`tokens::get_with`: lookup → lock → re-check → store, sealed at
/// rest as a refresh token), whose acquire step is this exchange: the Entra token of the
/// same request, bearer, from `entra` (the layers inside this one), traded at the registry.
pub(crate) fn credential(req: &TokenRequest, registry: &str, r: Resolved, entra: impl FnOnce(&TokenRequest, Resolved) -> Result<Credential>) -> Result<Credential> {
    let entra_req = TokenRequest { binding: Binding::Bearer, ..req.clone() };
    let entra_r = r.with_binding(Binding::Bearer);
    let tenant = r.profile.authority.tenant.clone();
    tokens::get_with(req, r, Some(Prompt::Never), |ctx| {
        let cred = entra(&entra_req, entra_r)?;
        let tenant = cred.tenant_id.clone().unwrap_or(tenant);
        let url = exchange_url(registry)?;
        let form = exchange_form(registry, &tenant, cred.access_token.expose());
        let reply = ctx.http.post_form(&url, &form, &[("Accept", "application/json")], ctx.deadline, RetryPolicy::TOKEN)?;
        let (token, expires_on) = parse_exchange(reply.status, &reply.body, registry, clock::now())?;
        Ok(TokenReply { access_token: token, token_type: TOKEN_TYPE.into(), expires_on, refresh_on: None, refresh_token: None, id_token: None, client_info: None, resource: None, foci: None })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn acr_hosts() {
        assert!(is_acr_host("contoso.azurecr.io"));
        assert!(is_acr_host("Contoso.AzureCR.io."));
        assert!(is_acr_host("contoso.azurecr.cn"));
        assert!(!is_acr_host("azurecr.io"));
        assert!(!is_acr_host(".azurecr.io"));
        assert!(!is_acr_host("contoso.azurecr.io.evil.test"));
        assert!(!is_acr_host("docker.io"));
    }

    #[test]
    fn hostile_exchange_answers_are_refused_or_bounded() {
        assert!(parse_exchange(200, br#"{"refresh_token":"a\r\nX: 1"}"#, "c.azurecr.io", 1000).is_err());
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"exp":9223372036854775807}"#);
        let body = format!(r#"{{"refresh_token":"eyJhbGciOiJSUzI1NiJ9.{claims}.s"}}"#);
        assert_eq!(parse_exchange(200, body.as_bytes(), "c.azurecr.io", 1000).unwrap().1, 1000 + crate::oauth::MAX_LIFETIME);
    }

    #[test]
    fn exchange_answer_and_expiry() {
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"exp":1795328884}"#);
        let jwt = format!("eyJhbGciOiJSUzI1NiJ9.{claims}.sig");
        let body = format!(r#"{{"refresh_token":"{jwt}"}}"#);
        let (t, exp) = parse_exchange(200, body.as_bytes(), "r.azurecr.io", 1_795_320_000).unwrap();
        assert_eq!(t.expose(), &jwt);
        assert_eq!(exp, 1_795_328_884);
        let (_, exp) = parse_exchange(200, br#"{"refresh_token":"opaque"}"#, "r.azurecr.io", 100).unwrap();
        assert_eq!(exp, 100 + DEFAULT_LIFETIME);
    }

    #[test]
    fn exchange_errors() {
        let e = parse_exchange(401, br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#, "r.azurecr.io", 0).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert!(e.to_string().contains("UNAUTHORIZED"), "{e}");
        assert_eq!(parse_exchange(502, b"<html>", "r.azurecr.io", 0).unwrap_err().exit_code(), 4);
        assert_eq!(parse_exchange(200, b"<html>", "r.azurecr.io", 0).unwrap_err().exit_code(), 4);
        assert_eq!(parse_exchange(200, br#"{"access_token":"x"}"#, "r.azurecr.io", 0).unwrap_err().exit_code(), 4);
    }

    #[test]
    fn the_exchange_url_override_is_loopback_only() {
        let refused = exchange_url_from(Some("https://evil.test/oauth2/exchange".into()), "r.azurecr.io");
        assert!(refused.unwrap_err().to_string().contains("not on a loopback address"));
        assert!(exchange_url_from(Some("http://registry.evil.test/x".into()), "r.azurecr.io").is_err());
        let loopback = exchange_url_from(Some("http://127.0.0.1:9/oauth2/exchange".into()), "r.azurecr.io");
        assert_eq!(loopback.unwrap(), "http://127.0.0.1:9/oauth2/exchange");
        assert_eq!(exchange_url_from(None, "r.azurecr.io").unwrap(), "https://r.azurecr.io/oauth2/exchange");
    }

    #[test]
    fn form_carries_the_four_fields() {
        let f = exchange_form("r.azurecr.io", "t", "at");
        assert_eq!(f, [("grant_type", "access_token"), ("service", "r.azurecr.io"), ("tenant", "t"), ("access_token", "at")]);
    }
}
