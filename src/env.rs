//! The process environment in one place: the name of every variable the product reads,
//! the only calls that read them, and the ambient AZURE_*/ARM_*/AZURESUBSCRIPTION_* lookups
//! every layer shares, so a variable is read the same way (trimmed, empty = unset) wherever
//! it matters. `layers::only_env_reads_the_environment` keeps the reads here.

use std::ffi::OsString;
use std::path::PathBuf;

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

// Our own knobs.
/// The config file instead of `entra-token/config.toml` in the platform config directory.
pub(crate) const CONFIG: &str = "ENTRA_TOKEN_CONFIG";
/// The cache directory instead of `entra-token` in the platform cache directory.
pub(crate) const CACHE_DIR: &str = "ENTRA_TOKEN_CACHE_DIR";
/// A trace level for runs whose argv a tool owns (git, cargo, az, …).
pub(crate) const VERBOSE: &str = "ENTRA_TOKEN_VERBOSE";
/// The token agent's socket: every front end (Docker too) asks it instead of signing in here.
pub(crate) const AGENT: &str = "ENTRA_TOKEN_AGENT";
/// Replaces ACR's `https://<registry>/oauth2/exchange` (tests and stand-ins on this machine: loopback only).
pub(crate) const ACR_EXCHANGE_URL: &str = "ENTRA_TOKEN_ACR_EXCHANGE_URL";
/// The kubectl `setup kubectl` runs (tests point it at a stand-in).
pub(crate) const KUBECTL: &str = "ENTRA_TOKEN_KUBECTL";

// Where other tools keep their files, read to find or wire them.
/// az's configuration directory (default `~/.azure`).
pub(crate) const AZURE_CONFIG_DIR: &str = "AZURE_CONFIG_DIR";
/// az's active cloud, over `[cloud] name` in its config (az reads `AZURE_<SECTION>_<OPTION>`).
pub(crate) const AZURE_CLOUD_NAME: &str = "AZURE_CLOUD_NAME";
/// kubectl's exec-credential request, set when it runs us.
pub(crate) const KUBERNETES_EXEC_INFO: &str = "KUBERNETES_EXEC_INFO";
/// kubectl's list of kubeconfig files (default `~/.kube/config`).
pub(crate) const KUBECONFIG: &str = "KUBECONFIG";
/// cargo's home (default `~/.cargo`).
pub(crate) const CARGO_HOME: &str = "CARGO_HOME";
/// Docker's configuration directory (default `~/.docker`).
pub(crate) const DOCKER_CONFIG: &str = "DOCKER_CONFIG";
/// The file `git config --global` writes.
pub(crate) const GIT_CONFIG_GLOBAL: &str = "GIT_CONFIG_GLOBAL";

// The platform.
pub(crate) const PATH: &str = "PATH";
/// Windows: the extensions a bare command name may have (`.COM;.EXE;.BAT;.CMD`).
pub(crate) const PATHEXT: &str = "PATHEXT";
pub(crate) const XDG_CONFIG_HOME: &str = "XDG_CONFIG_HOME";
pub(crate) const XDG_CACHE_HOME: &str = "XDG_CACHE_HOME";
/// The per-user runtime directory (the agent's socket, the session bus's `bus`): Unix only.
#[cfg_attr(not(unix), allow(dead_code))]
pub(crate) const XDG_RUNTIME_DIR: &str = "XDG_RUNTIME_DIR";
/// Windows: the roaming application-data directory (the config).
pub(crate) const APPDATA: &str = "APPDATA";
/// Windows: the local application-data directory (the cache).
pub(crate) const LOCALAPPDATA: &str = "LOCALAPPDATA";
/// The person's browser command(s), `:`-separated (`;` on Windows), `%s` for the URL.
pub(crate) const BROWSER: &str = "BROWSER";
/// The session D-Bus (the Secret Service, desktop notifications).
pub(crate) const DBUS_SESSION_BUS_ADDRESS: &str = "DBUS_SESSION_BUS_ADDRESS";
/// Any value turns colour off (no-color.org).
pub(crate) const NO_COLOR: &str = "NO_COLOR";
pub(crate) const TERM: &str = "TERM";

/// Is there a graphical session (X11 or Wayland) to open a browser in?
pub(crate) fn graphical() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"].iter().any(|v| is_set(v))
}

/// Did the person reach this machine over SSH (a browser opened here is not in front of them)?
pub(crate) fn over_ssh() -> bool {
    ["SSH_CONNECTION", "SSH_TTY"].iter().any(|v| is_set(v))
}

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

/// A variable as it is (empty included); None when unset or not UTF-8.
pub(crate) fn raw(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A variable as it is, not necessarily UTF-8 (empty included); None when unset.
pub(crate) fn os(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// A directory or file named by a variable; None when unset or empty.
pub(crate) fn path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|p| !p.is_empty()).map(PathBuf::from)
}

/// Is the variable set at all, even to nothing?
pub(crate) fn is_present(name: &str) -> bool {
    std::env::var_os(name).is_some()
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
