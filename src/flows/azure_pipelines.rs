//! Azure Pipelines' workload identity: a pipeline step asks Azure DevOps for the OIDC token
//! of a service connection (`POST $SYSTEM_OIDCREQUESTURI`, authorized by the job's
//! SYSTEM_ACCESSTOKEN), and that token is the client assertion Entra redeems, as
//! azure-identity's AzurePipelinesCredential and kubelogin's `--login azurepipelines` do.
//! Detection reads variables only; the request is made only on the acquisition path.

use super::FlowCtx;
use super::workload_identity::TokenSource;
use crate::env::var as env;
use crate::config::ProfileConfig;
use crate::error::{Error, Result};
use crate::http::RetryPolicy;
use crate::secret::Secret;

pub(crate) use crate::env::{PIPELINES_ACCESS_TOKEN as ACCESS_TOKEN_VAR, PIPELINES_OIDC_URI as OIDC_URI_VAR};
/// The api-version azure-identity (Python, Rust, Go) sends.
const API_VERSION: &str = "7.1";
/// ADO error messages can be long stack-trace-like texts; one line is enough.
const MAX_MESSAGE: usize = 300;

pub(crate) const MAP_TOKEN_HINT: &str = "secret variables reach a step only when mapped: add `env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)` to the step";

/// The profile's own service connection: it names Azure Pipelines whatever else is set.
pub(crate) fn from_profile(settings: &ProfileConfig) -> Option<TokenSource> {
    let id = settings.service_connection_id.as_deref().map(str::trim).filter(|s| !s.is_empty())?;
    Some(TokenSource::AzurePipelines { url: env(OIDC_URI_VAR), service_connection_id: id.to_string() })
}

/// Why this source cannot work in this process, from variables alone (no I/O): the
/// `auto` chain moves on to the next source then, and says why in its final message.
pub(crate) fn unusable(url: Option<&str>) -> Option<String> {
    if url.is_none() {
        return Some(format!("a service connection is named, but {OIDC_URI_VAR} is not set (not an Azure Pipelines step)"));
    }
    if env(ACCESS_TOKEN_VAR).is_none() {
        return Some(format!("{ACCESS_TOKEN_VAR} is not set in this step ({MAP_TOKEN_HINT})"));
    }
    None
}

/// `{base}?api-version=7.1&serviceConnectionId={id}`.
pub(crate) fn request_url(base: &str, id: &str) -> String {
    let query: String = form_urlencoded::Serializer::new(String::new()).append_pair("api-version", API_VERSION).append_pair("serviceConnectionId", id).finish();
    let base = base.trim_end_matches('/');
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{query}")
}

/// Asks Azure DevOps for the service connection's OIDC token now.
pub(crate) fn oidc_token(ctx: &FlowCtx<'_>, url: Option<&str>, id: &str) -> Result<Secret<String>> {
    let url = url.ok_or_else(|| {
        Error::bad_input_hint(
            format!("service connection {id} is named, but {OIDC_URI_VAR} is not set: this is not an Azure Pipelines step"),
            "run it in a pipeline step, or use another profile outside pipelines",
        )
    })?;
    crate::authority::check_secure_url(url, &format!("Azure Pipelines OIDC request ({OIDC_URI_VAR})"))?;
    let access = env(ACCESS_TOKEN_VAR).map(Secret::new).ok_or_else(|| {
        Error::bad_input_hint(format!("{ACCESS_TOKEN_VAR} is not set in this step, so the OIDC token of service connection {id} cannot be requested"), MAP_TOKEN_HINT)
    })?;
    let bearer = Secret::new(format!("Bearer {}", access.expose()));
    let full = request_url(url, id);
    let headers = [
        ("Authorization", bearer.expose().as_str()),
        ("Content-Type", "application/json"),
        ("Accept", "application/json"),
        // Without it Azure DevOps answers a bad token with a sign-in page instead of 401.
        ("X-TFS-FedAuthRedirect", "Suppress"),
    ];
    let reply = ctx.http.post(&full, b"", &headers, ctx.deadline, RetryPolicy::TOKEN)?;
    let shown = url.split('?').next().unwrap_or(url);
    parse_answer(reply.status, &reply.body, shown, id, access.expose())
}

/// The OIDC endpoint's answer: `{"oidcToken": "..."}`, or the error a user can act on.
/// Pure: status and bytes in. Anything the server echoes of the access token is cut out.
pub(crate) fn parse_answer(status: u16, body: &[u8], url: &str, id: &str, access_token: &str) -> Result<Secret<String>> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "oidcToken")]
        oidc_token: Option<Secret<String>>,
    }
    #[derive(serde::Deserialize)]
    struct Failure {
        message: Option<String>,
    }
    let html = body.trim_ascii_start().first() == Some(&b'<');
    let said = || {
        let m = serde_json::from_slice::<Failure>(body).ok().and_then(|f| f.message).unwrap_or_default();
        let m = m.lines().next().unwrap_or("").trim().chars().take(MAX_MESSAGE).collect::<String>();
        let m = if access_token.len() >= 8 { m.replace(access_token, "REDACTED") } else { m };
        if m.is_empty() { String::new() } else { format!(": {m}") }
    };
    let refused = |hint: String| Error::Auth {
        message: format!("azure devops refused the OIDC token request for service connection {id} (HTTP {status}){}", said()),
        aad: None,
        hint: Some(hint),
    };
    match status {
        200 if html => Err(Error::Network {
            url: url.to_string(),
            message: "the answer is an HTML page, not the OIDC token (a sign-in page or a proxy answered)".into(),
            hint: Some(format!("check that {OIDC_URI_VAR} is the job's own value and that HTTPS_PROXY/NO_PROXY let dev.azure.com through")),
        }),
        200 => serde_json::from_slice::<Answer>(body).ok().and_then(|a| a.oidc_token).filter(|t| !t.expose().trim().is_empty()).ok_or_else(|| Error::Network {
            url: url.to_string(),
            message: "the answer has no `oidcToken`".into(),
            hint: Some("check that the service connection uses workload identity federation, not a secret or certificate".into()),
        }),
        401 => Err(refused(format!("{ACCESS_TOKEN_VAR} was not accepted: map this job's own token ({MAP_TOKEN_HINT}); a PAT or another job's token does not work"))),
        403 => Err(refused(format!(
            "the pipeline may not use service connection {id}: allow it under Project settings → Service connections → the connection → Security → Pipeline permissions"
        ))),
        400 | 404 => Err(refused(
            "check service_connection_id (or AZURESUBSCRIPTION_SERVICE_CONNECTION_ID): it is the connection's id (the resourceId in its settings URL), not its name".into(),
        )),
        _ if html => Err(Error::Network {
            url: url.to_string(),
            message: format!("unexpected HTTP {status} answer (an HTML page, not Azure DevOps' JSON)"),
            hint: Some("a proxy or gateway may be answering instead of Azure DevOps; check HTTPS_PROXY/NO_PROXY".into()),
        }),
        s if (400..500).contains(&s) && s != 429 => Err(refused("check the service connection and the pipeline's permission to use it".into())),
        _ => Err(Error::Network {
            url: url.to_string(),
            message: format!("unexpected HTTP {status} answer{}", said()),
            hint: Some("Azure DevOps may be degraded: retry the step".into()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(r: Result<Secret<String>>) -> (u8, String) {
        let e = r.unwrap_err();
        (e.exit_code(), crate::error::one_line(&e))
    }

    #[test]
    fn the_request_url_carries_version_and_connection() {
        assert_eq!(request_url("https://dev.azure.com/o/p/_apis/oidctoken/", "a b"), "https://dev.azure.com/o/p/_apis/oidctoken?api-version=7.1&serviceConnectionId=a+b");
        assert_eq!(request_url("http://127.0.0.1:9/x?y=1", "c"), "http://127.0.0.1:9/x?y=1&api-version=7.1&serviceConnectionId=c");
    }

    #[test]
    fn the_oidc_token_is_read_from_the_answer() {
        let t = parse_answer(200, br#"{"oidcToken":"eyJ.a.b"}"#, "u", "sc", "tok-12345678").unwrap();
        assert_eq!(t.expose(), "eyJ.a.b");
    }

    #[test]
    fn each_failure_is_one_line_with_its_exit_code() {
        let (code, s) = line(parse_answer(200, br#"{"value":"x"}"#, "u", "sc", "t"));
        assert_eq!(code, 4);
        assert!(s.contains("no `oidcToken`"), "{s}");
        let (code, s) = line(parse_answer(200, b"\n<html><body>Sign in</body></html>", "u", "sc", "t"));
        assert_eq!(code, 4);
        assert!(s.contains("HTML"), "{s}");
        let (code, s) = line(parse_answer(401, b"", "u", "sc", "t"));
        assert_eq!(code, 3);
        assert!(s.contains("HTTP 401") && s.contains("$(System.AccessToken)"), "{s}");
        let (code, s) = line(parse_answer(403, br#"{"$id":"1","message":"Access denied.\nmore"}"#, "u", "sc-1", "t"));
        assert_eq!(code, 3);
        assert!(s.contains("sc-1") && s.contains("Access denied.") && !s.contains("more") && s.contains("Pipeline permissions"), "{s}");
        let (code, _) = line(parse_answer(503, b"busy", "u", "sc", "t"));
        assert_eq!(code, 4);
        assert!(!s.contains('\n'));
    }

    #[test]
    fn an_echoed_access_token_is_cut_out() {
        let (_, s) = line(parse_answer(400, br#"{"message":"bad token s3cr3t-access-token"}"#, "u", "sc", "s3cr3t-access-token"));
        assert!(!s.contains("s3cr3t-access-token") && s.contains("REDACTED"), "{s}");
    }
}
