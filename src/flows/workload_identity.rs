//! Workload identity federation: a token another issuer gave this workload (a Kubernetes
//! service account, GitHub Actions, a CI system) is the client assertion, so no secret is
//! stored. The token file is re-read on every acquisition because the platform rotates it;
//! GitHub's and Azure Pipelines' endpoints are asked afresh each time.

use super::FlowCtx;
use super::azure_pipelines;
use super::client_credentials::{self, ClientAuth};
use crate::config::ProfileConfig;
use crate::env::{self, Federated};
use crate::error::{Error, Result};
use crate::http::RetryPolicy;
use crate::oauth::TokenReply;
use crate::secret::Secret;
use std::path::PathBuf;

/// The audience Entra expects on federated tokens.
pub(crate) const AUDIENCE: &str = "api://AzureADTokenExchange";
/// Federated tokens are a few KiB; refuse anything that could not be one.
const MAX_TOKEN: u64 = 64 * 1024;

/// Where the federated token comes from. Decided from settings and variables only (no I/O).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenSource {
    /// `federated_token_file`, AZURE_FEDERATED_TOKEN_FILE or ARM_OIDC_TOKEN_FILE_PATH.
    File(PathBuf),
    /// ARM_OIDC_TOKEN: the token itself, in a variable.
    EnvToken(&'static str),
    /// GitHub Actions' OIDC endpoint (ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN or ARM_OIDC_REQUEST_URL/_TOKEN).
    Github { url: String, token_var: &'static str },
    /// An Azure Pipelines service connection's OIDC token (SYSTEM_OIDCREQUESTURI, absent
    /// when a profile names a connection outside a pipeline).
    AzurePipelines { url: Option<String>, service_connection_id: String },
    /// `federated_token = "managed-identity"`: this host's managed identity (the profile's
    /// `mi_*` key, else system-assigned) signs for the app, which may be in another tenant.
    ManagedIdentity,
}

impl TokenSource {
    pub(crate) fn describe(&self) -> String {
        match self {
            TokenSource::File(p) => format!("file {}", p.display()),
            TokenSource::EnvToken(v) => format!("variable {v}"),
            TokenSource::Github { .. } => "GitHub Actions OIDC".to_string(),
            TokenSource::AzurePipelines { service_connection_id, .. } => format!("Azure Pipelines service connection {service_connection_id}"),
            TokenSource::ManagedIdentity => "this host's managed identity".to_string(),
        }
    }

    /// Why it cannot work in this process (decided from variables alone), if it cannot.
    pub(crate) fn unusable(&self) -> Option<String> {
        match self {
            TokenSource::AzurePipelines { url, .. } => azure_pipelines::unusable(url.as_deref()),
            _ => None,
        }
    }

    /// Where the federated token comes from, for the cache identity: two service
    /// connections (or token files) may share an app; their tokens stay apart.
    pub(crate) fn identity_part(&self) -> String {
        match self {
            TokenSource::File(p) => format!("file:{}", p.display()),
            TokenSource::EnvToken(v) => format!("env:{v}"),
            TokenSource::Github { url, .. } => format!("github:{}", url.to_ascii_lowercase()),
            TokenSource::AzurePipelines { service_connection_id, .. } => format!("ado:{}", service_connection_id.to_ascii_lowercase()),
            // Which identity at which endpoint: flows::identity names it (it needs the profile).
            TokenSource::ManagedIdentity => "mi".to_string(),
        }
    }
}


/// The token source for a profile: its own `service_connection_id` or
/// `federated_token_file`, else the variables, in the order the README gives (Azure
/// Pipelines last, so a setup that worked before it existed keeps its identity).
pub(crate) fn token_source(settings: &ProfileConfig) -> Option<TokenSource> {
    if settings.federated_token.is_some() {
        return Some(TokenSource::ManagedIdentity);
    }
    if let Some(src) = azure_pipelines::from_profile(settings) {
        return Some(src);
    }
    if let Some(f) = &settings.federated_token_file {
        return Some(TokenSource::File(f.clone()));
    }
    Some(match env::federated()? {
        Federated::File(f) => TokenSource::File(PathBuf::from(f)),
        Federated::Token(var) => TokenSource::EnvToken(var),
        Federated::Github { url, token_var } => TokenSource::Github { url, token_var },
        Federated::Pipelines { url, connection } => TokenSource::AzurePipelines { url: Some(url), service_connection_id: connection },
    })
}

/// The client and tenant variables workload identity reads: a service connection's own
/// (AZURESUBSCRIPTION_*, set with it by AzureCLI@2) first, then azure-identity's, then Terraform's.
pub(crate) fn env_client_id(settings: &ProfileConfig) -> Option<String> {
    env::workload_client_id(settings.federated_by_pipelines())
}
pub(crate) fn env_tenant_id(settings: &ProfileConfig) -> Option<String> {
    env::workload_tenant_id(settings.federated_by_pipelines())
}

pub(crate) fn acquire(ctx: &FlowCtx<'_>) -> Result<TokenReply> {
    let p = ctx.profile;
    let source = token_source(&p.settings).ok_or_else(|| {
        Error::bad_input_hint(
            format!("profile '{}': workload identity has no federated token", p.name),
            "set AZURE_FEDERATED_TOKEN_FILE (or federated_token_file in the profile), run in GitHub Actions with `permissions: id-token: write`, or name an Azure Pipelines service_connection_id",
        )
    })?;
    if let Some(other) = p.settings.federated_token.as_deref().filter(|v| !v.eq_ignore_ascii_case("managed-identity")) {
        return Err(Error::bad_input_hint(format!("profile '{}': federated_token = \"{}\" is not a token source", p.name, crate::log::escape(other)), "the one value is \"managed-identity\""));
    }
    client_credentials::check_tenant(ctx)?;
    let assertion = read_token(ctx, &source)?;
    let claims = crate::jwt::decode(assertion.expose()).map(|(_, c)| c);
    client_credentials::redeem(ctx, &p.client_id, ClientAuth::Assertion(assertion)).map_err(|e| explain_mismatch(e, claims.as_ref(), &p.client_id, &source))
}

/// Entra found no federated credential matching the token: say which issuer, subject and
/// audience the token carried (claims, never the token), so the fix is one copy away.
fn explain_mismatch(e: Error, claims: Option<&serde_json::Map<String, serde_json::Value>>, client_id: &str, source: &TokenSource) -> Error {
    let Error::Auth { message, aad: Some(aad), hint } = e else { return e };
    if !aad.codes.iter().any(|c| MISMATCH_CODES.contains(c)) {
        return Error::Auth { message, aad: Some(aad), hint };
    }
    let claim = |n: &str| claims.and_then(|c| crate::jwt::claim(c, n)).unwrap_or("?").replace(char::is_control, "");
    let mut hint = format!(
        "app {client_id} has no federated credential for issuer '{}', subject '{}', audience '{}': add one with exactly these values (Certificates & secrets → Federated credentials)",
        claim("iss"),
        claim("sub"),
        claim("aud")
    );
    if let TokenSource::AzurePipelines { service_connection_id, .. } = source {
        hint.push_str(&format!(
            "; for service connection {service_connection_id} the subject is sc://ORG/PROJECT/CONNECTION-NAME, so a renamed connection or a new org issuer needs its credential updated"
        ));
    }
    Error::Auth { message, aad: Some(aad), hint: Some(hint) }
}

/// AADSTS70021 (no match), 700211 (issuer), 700212 (audience), 700213 (subject).
const MISMATCH_CODES: &[u32] = &[70021, 700211, 700212, 700213];

/// Fetches the federated token now: the file as it is at this moment, or a fresh GitHub token.
pub(crate) fn read_token(ctx: &FlowCtx<'_>, source: &TokenSource) -> Result<Secret<String>> {
    let token = match source {
        TokenSource::File(path) => {
            let hint = "check AZURE_FEDERATED_TOKEN_FILE (or federated_token_file)";
            let unreadable = |e: std::io::Error| Error::bad_input_hint(format!("federated token file {}", path.display()), hint).because(e);
            // Ours or root's (kubelet projects it root-owned), changeable by nobody else.
            let file = crate::fs::open_trusted(path).map_err(|e| crate::fs::trusted_error("the federated token file", e, hint))?;
            let meta = file.metadata().map_err(unreadable)?;
            if meta.len() > MAX_TOKEN {
                return Err(Error::bad_input_hint(format!("federated token file {}: {} KiB is too large for a token", path.display(), meta.len() / 1024), hint));
            }
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_TOKEN + 1), &mut text).map_err(unreadable)?;
            text
        }
        TokenSource::EnvToken(var) => env::var(var).unwrap_or_default(),
        TokenSource::Github { url, token_var } => github_token(ctx, url, token_var)?.expose().clone(),
        TokenSource::AzurePipelines { url, service_connection_id } => azure_pipelines::oidc_token(ctx, url.as_deref(), service_connection_id)?.expose().clone(),
        TokenSource::ManagedIdentity => managed_identity_token(ctx)?.expose().clone(),
    };
    let token = token.trim().to_string();
    if token.is_empty() {
        return Err(Error::bad_input(format!("the federated token from {} is empty", source.describe())));
    }
    Ok(Secret::new(token))
}

/// The managed identity's token for api://AzureADTokenExchange (asked afresh: the platform
/// caches it, and an assertion is never stored by us).
fn managed_identity_token(ctx: &FlowCtx<'_>) -> Result<Secret<String>> {
    let target = crate::authority::Target::from_resource(AUDIENCE)?;
    let mi = FlowCtx { target: &target, ..*ctx };
    let reply = super::managed_identity::acquire_as(&mi, super::managed_identity::named(ctx.profile)?)?;
    Ok(reply.access_token)
}

/// GET `$ACTIONS_ID_TOKEN_REQUEST_URL&audience=api://AzureADTokenExchange` with the request token as a bearer.
fn github_token(ctx: &FlowCtx<'_>, url: &str, token_var: &str) -> Result<Secret<String>> {
    crate::authority::check_secure_url(url, "GitHub OIDC request")?;
    let bearer = Secret::new(format!("Bearer {}", env::var(token_var).unwrap_or_default()));
    let audience: String = form_urlencoded::Serializer::new(String::new()).append_pair("audience", AUDIENCE).finish();
    let sep = if url.contains('?') { '&' } else { '?' };
    let full = format!("{url}{sep}{audience}");
    let reply = ctx.http.get(&full, &[("Authorization", bearer.expose()), ("Accept", "application/json")], ctx.deadline, RetryPolicy::TOKEN)?;
    #[derive(serde::Deserialize)]
    struct Answer {
        value: Option<Secret<String>>,
    }
    let shown = url.split('?').next().unwrap_or(url).to_string();
    if reply.status != 200 {
        return Err(Error::Auth {
            message: format!("GitHub's OIDC endpoint refused the token request (HTTP {})", reply.status),
            aad: None,
            hint: Some("give the job `permissions: id-token: write`".into()),
        });
    }
    serde_json::from_slice::<Answer>(&reply.body).ok().and_then(|a| a.value).filter(|v| !v.expose().is_empty()).ok_or_else(|| Error::Network {
        url: shown,
        message: "the answer has no `value` token".into(),
        hint: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_file_wins() {
        let p = PathBuf::from("/x/token");
        let settings = ProfileConfig { federated_token_file: Some(p.clone()), ..ProfileConfig::default() };
        assert_eq!(token_source(&settings), Some(TokenSource::File(p)));
    }

    #[test]
    fn a_profile_service_connection_names_azure_pipelines() {
        let settings = ProfileConfig { service_connection_id: Some(" sc-1 ".into()), ..ProfileConfig::default() };
        let src = token_source(&settings).unwrap();
        assert!(matches!(&src, TokenSource::AzurePipelines { service_connection_id, .. } if service_connection_id == "sc-1"), "{src:?}");
        assert_eq!(src.identity_part(), "ado:sc-1");
        assert_eq!(TokenSource::File(PathBuf::from("/t")).identity_part(), "file:/t");
    }

    #[test]
    fn a_mismatch_names_the_tokens_issuer_and_subject() {
        let aad = crate::error::AadError { error: "invalid_client".into(), codes: vec![700213], description: "AADSTS700213: No matching federated identity record found".into(), ..Default::default() };
        let claims: serde_json::Map<String, serde_json::Value> = serde_json::from_str(r#"{"iss":"https://vstoken.dev.azure.com/org-id","sub":"sc://o/p/conn","aud":"api://AzureADTokenExchange"}"#).unwrap();
        let src = TokenSource::AzurePipelines { url: None, service_connection_id: "sc-9".into() };
        let e = explain_mismatch(crate::oauth::auth_error(aad), Some(&claims), "app-1", &src);
        let s = crate::error::one_line(&e);
        assert_eq!(e.exit_code(), 3);
        assert!(s.contains("'https://vstoken.dev.azure.com/org-id'") && s.contains("'sc://o/p/conn'") && s.contains("app-1") && s.contains("sc-9"), "{s}");
    }
}
