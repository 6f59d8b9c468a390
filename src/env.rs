//! The process environment in one place: the names of the variables we read, and the
//! ambient AZURE_*/ARM_*/AZURESUBSCRIPTION_* lookups every layer shares, so a variable is
//! read the same way (trimmed, empty = unset) wherever it matters.

/// Set by the `az` stand-in around the real az it falls back to: that az must not find us again.
pub(crate) const AZ_SHIM_DEPTH: &str = "ENTRA_TOKEN_FROM_AZ_FALLBACK";
/// The profile a request names when it names none.
pub(crate) const PROFILE: &str = "ENTRA_TOKEN_PROFILE";

/// Azure Pipelines, set in every step: the job's OIDC token endpoint.
pub(crate) const PIPELINES_OIDC_URI: &str = "SYSTEM_OIDCREQUESTURI";
/// Azure Pipelines: the job's access token, a secret variable, present only when mapped.
pub(crate) const PIPELINES_ACCESS_TOKEN: &str = "SYSTEM_ACCESSTOKEN";
/// Set by AzureCLI@2 / AzurePowerShell@5 for the task's service connection.
pub(crate) const PIPELINES_CONNECTION: &str = "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID";
pub(crate) const PIPELINES_CLIENT_ID: &str = "AZURESUBSCRIPTION_CLIENT_ID";
pub(crate) const PIPELINES_TENANT_ID: &str = "AZURESUBSCRIPTION_TENANT_ID";

/// A variable's value, trimmed; None when unset, empty or blank.
pub(crate) fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// A variable's value as it is (a password may begin or end with a space); None when unset or blank.
pub(crate) fn var_untrimmed(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Is the variable set to something non-empty (not necessarily UTF-8)?
pub(crate) fn is_set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
}

/// The federated token the variables offer, in the documented order (Azure Pipelines last,
/// so a setup that worked before it existed keeps its identity). Names only, no I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Federated {
    /// AZURE_FEDERATED_TOKEN_FILE or ARM_OIDC_TOKEN_FILE_PATH.
    File(String),
    /// The token itself, in this variable (ARM_OIDC_TOKEN).
    Token(&'static str),
    /// GitHub Actions' OIDC endpoint and the variable holding its bearer.
    Github { url: String, token_var: &'static str },
    /// An Azure Pipelines step whose task names a service connection.
    Pipelines { url: String, connection: String },
}

pub(crate) fn federated() -> Option<Federated> {
    for name in ["AZURE_FEDERATED_TOKEN_FILE", "ARM_OIDC_TOKEN_FILE_PATH"] {
        if let Some(f) = var(name) {
            return Some(Federated::File(f));
        }
    }
    if var("ARM_OIDC_TOKEN").is_some() {
        return Some(Federated::Token("ARM_OIDC_TOKEN"));
    }
    for (url_var, token_var) in [("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"), ("ARM_OIDC_REQUEST_URL", "ARM_OIDC_REQUEST_TOKEN")] {
        if let (Some(url), Some(_)) = (var(url_var), var(token_var)) {
            // GitHub sets these for every job with `id-token: write`; Terraform wants ARM_USE_OIDC too, we do not.
            return Some(Federated::Github { url, token_var });
        }
    }
    let (url, connection) = (var(PIPELINES_OIDC_URI)?, var(PIPELINES_CONNECTION)?);
    Some(Federated::Pipelines { url, connection })
}

/// Workload identity's client id from the variables: a service connection's own
/// (AZURESUBSCRIPTION_*, set with it by AzureCLI@2) when the token is the pipeline's, then
/// azure-identity's, then Terraform's.
pub(crate) fn workload_client_id(pipelines: bool) -> Option<String> {
    pipelines.then(|| var(PIPELINES_CLIENT_ID)).flatten().or_else(|| var("AZURE_CLIENT_ID")).or_else(|| var("ARM_CLIENT_ID"))
}

/// Workload identity's tenant from the variables, in the same order as its client id.
pub(crate) fn workload_tenant_id(pipelines: bool) -> Option<String> {
    pipelines.then(|| var(PIPELINES_TENANT_ID)).flatten().or_else(|| var("AZURE_TENANT_ID")).or_else(|| var("ARM_TENANT_ID"))
}
