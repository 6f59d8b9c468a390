//! Workload identity federation: a token another issuer gave this workload (a Kubernetes
//! service account, GitHub Actions, a CI system) is the client assertion, so no secret is
//! stored. The token file is re-read on every acquisition because the platform rotates it.

use super::FlowCtx;
use super::client_credentials::{self, ClientAuth};
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
}

impl TokenSource {
    pub(crate) fn describe(&self) -> String {
        match self {
            TokenSource::File(p) => format!("file {}", p.display()),
            TokenSource::EnvToken(v) => format!("variable {v}"),
            TokenSource::Github { .. } => "GitHub Actions OIDC".to_string(),
        }
    }
}

pub(crate) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// The token source for a profile, from its `federated_token_file` or the environment.
pub(crate) fn token_source(file: Option<&PathBuf>) -> Option<TokenSource> {
    if let Some(f) = file {
        return Some(TokenSource::File(f.clone()));
    }
    for var in ["AZURE_FEDERATED_TOKEN_FILE", "ARM_OIDC_TOKEN_FILE_PATH"] {
        if let Some(f) = env(var) {
            return Some(TokenSource::File(PathBuf::from(f)));
        }
    }
    if env("ARM_OIDC_TOKEN").is_some() {
        return Some(TokenSource::EnvToken("ARM_OIDC_TOKEN"));
    }
    for (url_var, token_var) in [("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"), ("ARM_OIDC_REQUEST_URL", "ARM_OIDC_REQUEST_TOKEN")] {
        if let (Some(url), Some(_)) = (env(url_var), env(token_var)) {
            // GitHub sets these for every job with `id-token: write`; Terraform wants ARM_USE_OIDC too, we do not.
            return Some(TokenSource::Github { url, token_var });
        }
    }
    None
}

/// The client and tenant variables workload identity reads (azure-identity's names, then Terraform's).
pub(crate) fn env_client_id() -> Option<String> {
    env("AZURE_CLIENT_ID").or_else(|| env("ARM_CLIENT_ID"))
}
pub(crate) fn env_tenant_id() -> Option<String> {
    env("AZURE_TENANT_ID").or_else(|| env("ARM_TENANT_ID"))
}

pub(crate) fn acquire(ctx: &FlowCtx<'_>) -> Result<TokenReply> {
    let p = ctx.profile;
    let source = token_source(p.settings.federated_token_file.as_ref()).ok_or_else(|| {
        Error::bad_input_hint(
            format!("profile '{}': workload identity has no federated token", p.name),
            "set AZURE_FEDERATED_TOKEN_FILE (or federated_token_file in the profile), or run in GitHub Actions with `permissions: id-token: write`",
        )
    })?;
    client_credentials::check_tenant(ctx)?;
    let assertion = read_token(ctx, &source)?;
    client_credentials::redeem(ctx, &p.client_id, ClientAuth::Assertion(assertion))
}

/// Fetches the federated token now: the file as it is at this moment, or a fresh GitHub token.
pub(crate) fn read_token(ctx: &FlowCtx<'_>, source: &TokenSource) -> Result<Secret<String>> {
    let token = match source {
        TokenSource::File(path) => {
            let fail = |m: String| Error::bad_input_hint(format!("federated token file {}: {m}", path.display()), "check AZURE_FEDERATED_TOKEN_FILE (or federated_token_file)");
            let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
            if meta.len() > MAX_TOKEN {
                return Err(fail(format!("{} KiB is too large for a token", meta.len() / 1024)));
            }
            std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?
        }
        TokenSource::EnvToken(var) => env(var).unwrap_or_default(),
        TokenSource::Github { url, token_var } => github_token(ctx, url, token_var)?.expose().clone(),
    };
    let token = token.trim().to_string();
    if token.is_empty() {
        return Err(Error::bad_input(format!("the federated token from {} is empty", source.describe())));
    }
    Ok(Secret::new(token))
}

/// GET `$ACTIONS_ID_TOKEN_REQUEST_URL&audience=api://AzureADTokenExchange` with the request token as a bearer.
fn github_token(ctx: &FlowCtx<'_>, url: &str, token_var: &str) -> Result<Secret<String>> {
    crate::authority::check_secure_url(url, "GitHub OIDC request")?;
    let bearer = Secret::new(format!("Bearer {}", env(token_var).unwrap_or_default()));
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
        assert_eq!(token_source(Some(&p)), Some(TokenSource::File(p)));
    }
}
