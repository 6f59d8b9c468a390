//! Profiles: the TOML file, the standard Azure environment variables and the built-in
//! default, resolved into one validated `Profile` before any flow runs. Secrets are
//! named here (env var or file) but only read by the flow that needs them, so the
//! cached path never touches them.

use crate::authority::{self, Authority, Endpoint};
use crate::error::{Error, Result};
use crate::log::{trace, warn};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The Azure CLI's public client: pre-consented in most tenants.
pub(crate) const AZURE_CLI_CLIENT_ID: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";

/// The client capability of continuous access evaluation: "I can handle claims challenges".
pub(crate) const CP1: &str = "cp1";

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    /// Profile used when neither a flag/request nor ENTRA_TOKEN_PROFILE names one.
    pub default_profile: Option<String>,
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileConfig>,
}

/// One `[profiles.NAME]` table. Every key is optional; unknown keys are an error so a
/// typo is caught instead of silently ignored.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfileConfig {
    pub tenant: Option<String>,
    pub client_id: Option<String>,
    pub flow: Option<String>,
    pub client_secret_env: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub authority: Option<String>,
    pub cloud: Option<String>,
    pub endpoint: Option<Endpoint>,
    pub resource: Option<String>,
    pub scopes: Option<Vec<String>>,
    /// URL prefixes this profile answers for (git, cargo, Bazel, Docker).
    #[serde(default)]
    pub urls: Vec<String>,
    /// `false`: never prompt, fail fast with the command to run instead.
    pub interactive: Option<bool>,
    // Certificates and federation.
    pub certificate_path: Option<PathBuf>,
    pub certificate_password_env: Option<String>,
    pub send_certificate_chain: Option<bool>,
    /// `PS256` (Entra, default) or `RS256` (ADFS, legacy `x5t`).
    pub assertion_alg: Option<String>,
    pub federated_token_file: Option<PathBuf>,
    /// `managed-identity`: the federated token is this host's managed identity's token for
    /// api://AzureADTokenExchange (the app may live in another tenant).
    pub federated_token: Option<String>,
    /// Azure Pipelines: the service connection whose OIDC token is the federated token
    /// (else AZURESUBSCRIPTION_SERVICE_CONNECTION_ID, which AzureCLI@2 sets).
    pub service_connection_id: Option<String>,
    // Managed identity (user-assigned).
    pub mi_client_id: Option<String>,
    pub mi_object_id: Option<String>,
    pub mi_res_id: Option<String>,
    // People.
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    pub redirect_uri: Option<String>,
    pub login_hint: Option<String>,
    /// Where refresh tokens live: auto, keyring, file.
    pub storage: Option<String>,
    /// Resources `entra-token serve` may hand out for this profile.
    pub serve_resources: Option<Vec<String>>,
    /// The subscription `az account get-access-token` reports for this profile.
    pub subscription: Option<String>,
    /// Treat the registries in `urls` as Azure Container Registries (the Docker helper
    /// exchanges the Entra token for an ACR refresh token); `*.azurecr.io` needs no flag.
    pub acr: Option<bool>,
    /// With nobody to answer a prompt, wait this long (e.g. "2m") for an `entra-token
    /// login` in another terminal instead of failing at once.
    pub wait_for_login: Option<String>,
    /// `["cp1"]`: the client handles claims challenges (continuous access evaluation), so
    /// Entra may issue long-lived tokens (docs/cae.md).
    pub client_capabilities: Option<Vec<String>>,
}

/// How a profile gets its tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlowKind {
    Auto,
    ClientCredentials,
    WorkloadIdentity,
    ManagedIdentity,
    DeviceCode,
    Interactive,
    AuthorizationCode,
    Password,
    AzureCli,
}

impl ProfileConfig {
    /// Does the table declare the `cp1` client capability? (`Profile::cae`.)
    pub(crate) fn cae(&self) -> bool {
        self.client_capabilities.iter().flatten().any(|c| c.eq_ignore_ascii_case(CP1))
    }

    /// Is workload identity's federated token an Azure Pipelines service connection's? Its
    /// own `service_connection_id` says so; else the variables do, unless it names a token file.
    pub(crate) fn federated_by_pipelines(&self) -> bool {
        self.service_connection_id.as_deref().is_some_and(|s| !s.trim().is_empty())
            || self.federated_token_file.is_none() && matches!(crate::env::federated(), Some(crate::env::Federated::Pipelines { .. }))
    }
}

impl FlowKind {
    pub(crate) fn parse(s: &str) -> Result<FlowKind> {
        Ok(match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "auto" | "default" => FlowKind::Auto,
            "client-credentials" | "client-secret" | "certificate" | "spn" | "service-principal" => FlowKind::ClientCredentials,
            "workload-identity" | "workloadidentity" | "federated" => FlowKind::WorkloadIdentity,
            "managed-identity" | "msi" | "mi" => FlowKind::ManagedIdentity,
            "device-code" | "devicecode" => FlowKind::DeviceCode,
            "interactive" | "browser" => FlowKind::Interactive,
            "authorization-code" | "auth-code" => FlowKind::AuthorizationCode,
            "password" | "ropc" => FlowKind::Password,
            "azure-cli" | "azurecli" | "az" => FlowKind::AzureCli,
            other => {
                const FLOWS: [&str; 9] = ["auto", "client-credentials", "workload-identity", "managed-identity", "device-code", "interactive", "authorization-code", "password", "azure-cli"];
                return Err(Error::bad_input_hint(
                    format!("unknown flow '{other}'{}", crate::suggest::did_you_mean(other, FLOWS.iter().copied())),
                    "use one of: auto, client-credentials, workload-identity, managed-identity, device-code, interactive, authorization-code, password, azure-cli",
                ));
            }
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            FlowKind::Auto => "auto",
            FlowKind::ClientCredentials => "client-credentials",
            FlowKind::WorkloadIdentity => "workload-identity",
            FlowKind::ManagedIdentity => "managed-identity",
            FlowKind::DeviceCode => "device-code",
            FlowKind::Interactive => "interactive",
            FlowKind::AuthorizationCode => "authorization-code",
            FlowKind::Password => "password",
            FlowKind::AzureCli => "azure-cli",
        }
    }

    /// Flows where a person signs in and a refresh token is kept.
    pub(crate) fn is_user_flow(self) -> bool {
        matches!(self, FlowKind::DeviceCode | FlowKind::Interactive | FlowKind::AuthorizationCode | FlowKind::Password)
    }
}

/// Where a profile came from, for diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    File(PathBuf),
    Environment,
    BuiltIn,
}

impl Origin {
    /// `file /home/me/.config/entra-token/config.toml`, `environment (AZURE_*)`, `built-in`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Origin::File(p) => format!("file {}", p.display()),
            Origin::Environment => "environment (AZURE_TENANT_ID/AZURE_CLIENT_ID)".into(),
            Origin::BuiltIn => "built-in default".into(),
        }
    }
}

/// Why this profile name was chosen, for diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameSource {
    Request,
    Env,
    ConfigDefault,
    Fallback,
}

impl NameSource {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            NameSource::Request => "the command line or request",
            NameSource::Env => "ENTRA_TOKEN_PROFILE",
            NameSource::ConfigDefault => "the config's default_profile",
            NameSource::Fallback => "fallback (nothing named one)",
        }
    }
}

/// A profile resolved and validated: everything a flow needs except the secret values.
#[derive(Debug, Clone)]
pub(crate) struct Profile {
    pub name: String,
    pub origin: Origin,
    pub name_source: NameSource,
    pub authority: Authority,
    pub client_id: String,
    pub flow: FlowKind,
    pub endpoint: Endpoint,
    pub settings: ProfileConfig,
    /// The client secret's source, when the profile has one.
    pub secret: Option<SecretSource>,
    /// Where its refresh tokens live (`storage`), parsed once here.
    pub storage: Storage,
    /// The tenant came from the request (`--tenant`), not the profile: commands we print
    /// for the person to run must say it again.
    pub tenant_from_request: bool,
}

/// What a profile's `storage` asks for (defined beside the keyring it chooses).
pub(crate) use crate::os_keyring::Storage;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretSource {
    Env(String),
    File(PathBuf),
}

impl SecretSource {
    /// Reads the secret now. Called only on the acquisition path.
    pub(crate) fn read(&self) -> Result<crate::secret::Secret<String>> {
        match self {
            SecretSource::Env(var) => match crate::env::var(var) {
                Some(v) => Ok(crate::secret::Secret::new(v)),
                None if crate::env::is_present(var) => Err(Error::bad_input_hint(
                    format!("the client secret variable {var} is set but empty"),
                    format!("export {var}=… with the secret itself, or set client_secret_file in the profile"),
                )),
                None => Err(Error::bad_input_hint(
                    format!("the client secret variable {var} is not set"),
                    format!("export {var}=…, or set client_secret_file in the profile"),
                )),
            },
            // Ours or root's, changeable by nobody else (`fs::open_trusted`).
            SecretSource::File(path) => match crate::fs::read_trusted(path, 64 * 1024) {
                Ok(v) if !v.trim().is_empty() => Ok(crate::secret::Secret::new(v.trim().to_string())),
                Ok(_) => Err(Error::bad_input(format!("the client secret file {} is empty", path.display()))),
                Err(e) => Err(crate::fs::trusted_error("the client secret file", e, "check client_secret_file in the profile")),
            },
        }
    }
}

impl Profile {
    /// The same profile aimed at another tenant (a request's `tenant`).
    pub(crate) fn with_tenant(&self, tenant: &str) -> Result<Profile> {
        let mut p = self.clone();
        p.authority = Authority::new(&self.authority.host, tenant)?;
        p.tenant_from_request |= !tenant.eq_ignore_ascii_case(&self.authority.tenant);
        Ok(p)
    }

    /// Does the profile declare the `cp1` client capability (continuous access evaluation)?
    /// Then every token request says so, and its tokens are cached apart (docs/cae.md).
    pub(crate) fn cae(&self) -> bool {
        self.settings.cae()
    }

    /// `false` when the profile forbids prompts.
    pub(crate) fn allows_prompts(&self) -> bool {
        self.settings.interactive != Some(false)
    }

    /// `entra-token login -p NAME [--tenant T]`: the command a user runs to sign in for
    /// this profile (and the tenant the request named).
    pub(crate) fn login_command(&self) -> String {
        let base = if self.name == "default" { "entra-token login".to_string() } else { format!("entra-token login -p {}", self.name) };
        if self.tenant_from_request { format!("{base} --tenant {}", self.authority.tenant) } else { base }
    }
}

/// The config file's location: ENTRA_TOKEN_CONFIG, else `entra-token/config.toml` in
/// $XDG_CONFIG_HOME or the platform config dir (`%APPDATA%` on Windows).
pub(crate) fn config_path() -> Option<PathBuf> {
    if let Some(p) = crate::env::path(crate::env::CONFIG) {
        return Some(p);
    }
    let base = crate::fs::config_home()?;
    Some(base.join("entra-token").join("config.toml"))
}

/// Reads and parses the config file; a missing file is an empty config. The file is read
/// every time, but the same text is parsed once per process: the URL-claimed front ends
/// (git, cargo, Docker, Bazel) find the profile and then resolve it, and the TOML parse
/// was the largest part of a cached answer's own work.
pub(crate) fn load_file(path: &Path) -> Result<ConfigFile> {
    static LAST: std::sync::Mutex<Option<(String, ConfigFile)>> = std::sync::Mutex::new(None);
    // A config someone else can change could point `authority` anywhere and collect the
    // secret: refused unless ours (or root's) and writable by nobody else (`fs::open_trusted`).
    let text = match crate::fs::read_trusted(path, 4 * 1024 * 1024) {
        Ok(t) => t,
        Err(e) if e.is_not_found() => return Ok(ConfigFile::default()),
        Err(e @ crate::fs::FsError { cause: crate::fs::Cause::Unsafe { .. }, .. }) => return Err(crate::fs::trusted_error("the config file", e, "")),
        Err(e) => return Err(Error::config(path, e)),
    };
    if let Ok(last) = LAST.lock()
        && let Some((seen, file)) = last.as_ref()
        && *seen == text
    {
        return Ok(file.clone());
    }
    let file = parse_file(&text).map_err(|message| Error::Config { path: path.to_path_buf(), message, source: None })?;
    if let Ok(mut last) = LAST.lock() {
        *last = Some((text, file.clone()));
    }
    Ok(file)
}

pub(crate) fn parse_file(text: &str) -> std::result::Result<ConfigFile, String> {
    toml::from_str(text).map_err(|e| crate::config_errors::explain(text, &e))
}

use crate::env::var as env;

pub(crate) mod az_cloud;

/// Chooses and resolves a profile. `requested` comes from a flag or a request body.
pub(crate) fn resolve(requested: Option<&str>) -> Result<Profile> {
    let path = config_path();
    let file = match &path {
        Some(p) => load_file(p)?,
        None => ConfigFile::default(),
    };
    resolve_in(&file, path.as_deref(), requested)
}

pub(crate) fn resolve_in(file: &ConfigFile, path: Option<&Path>, requested: Option<&str>) -> Result<Profile> {
    let (name, name_source) = match requested.map(str::trim).filter(|s| !s.is_empty()) {
        Some(n) => (n.to_string(), NameSource::Request),
        None => match env(crate::env::PROFILE) {
            Some(n) => (n, NameSource::Env),
            None => match &file.default_profile {
                Some(n) => (n.clone(), NameSource::ConfigDefault),
                None => ("default".to_string(), NameSource::Fallback),
            },
        },
    };
    trace!(1, "profile '{name}' chosen by {}", name_source.describe());

    if let Some(cfg) = file.profiles.get(&name) {
        let origin = Origin::File(path.map(Path::to_path_buf).unwrap_or_default());
        let p = from_config(&name, name_source, origin, cfg.clone())?;
        trace!(1, "profile '{name}' from {}: flow {}, tenant {}", p.origin.describe(), p.flow.name(), p.authority.tenant);
        return Ok(p);
    }
    if name == "env" || name == "default" {
        if let Some(p) = from_environment(&name, name_source)? {
            return Ok(p);
        }
        if name == "default" {
            trace!(1, "profile 'default' is the built-in default (Azure CLI public client, device sign-in)");
            return builtin_default(name_source);
        }
    }
    let mut available: Vec<String> = file.profiles.keys().cloned().collect();
    if !available.iter().any(|n| n == "default") {
        available.insert(0, "default (built-in)".into());
    }
    // A stale ENTRA_TOKEN_CONFIG (the emulator's, after its state was removed) reads as no config.
    let note = path.filter(|p| crate::env::is_set(crate::env::CONFIG) && !p.exists()).map(|p| format!("ENTRA_TOKEN_CONFIG names {}, which does not exist", p.display()));
    Err(Error::ProfileNotFound { name, available, note })
}

fn from_config(name: &str, name_source: NameSource, origin: Origin, cfg: ProfileConfig) -> Result<Profile> {
    let bad = |msg: String| Error::bad_input_hint(format!("profile '{name}': {msg}"), "fix the profile in the config file");
    let host = authority_host(&cfg)?;
    let flow = match &cfg.flow {
        Some(f) => FlowKind::parse(f)?,
        None => FlowKind::Auto,
    };
    let secret = match (&cfg.client_secret_env, &cfg.client_secret_file) {
        (Some(_), Some(_)) => return Err(bad("set client_secret_env or client_secret_file, not both".into())),
        (Some(v), None) => Some(SecretSource::Env(v.clone())),
        (None, Some(f)) => Some(SecretSource::File(f.clone())),
        (None, None) => None,
    };
    let client_id = match &cfg.client_id {
        Some(c) => c.clone(),
        None if flow == FlowKind::WorkloadIdentity && crate::env::workload_client_id(cfg.federated_by_pipelines()).is_some() => {
            crate::env::workload_client_id(cfg.federated_by_pipelines()).unwrap_or_default()
        }
        None if flow.is_user_flow() || matches!(flow, FlowKind::Auto | FlowKind::AzureCli | FlowKind::ManagedIdentity) => AZURE_CLI_CLIENT_ID.to_string(),
        None if flow == FlowKind::WorkloadIdentity => {
            return Err(bad("flow workload-identity needs client_id (or AZURE_CLIENT_ID; in Azure Pipelines AZURESUBSCRIPTION_CLIENT_ID)".into()));
        }
        None => return Err(bad(format!("flow {} needs client_id", flow.name()))),
    };
    let tenant = match (&cfg.tenant, flow) {
        (Some(t), _) => t.clone(),
        (None, FlowKind::WorkloadIdentity) => crate::env::workload_tenant_id(cfg.federated_by_pipelines()).unwrap_or_else(|| "organizations".into()),
        (None, _) => "organizations".into(),
    };
    if cfg.service_connection_id.is_some() && cfg.federated_token_file.is_some() {
        return Err(bad("set service_connection_id (Azure Pipelines) or federated_token_file, not both".into()));
    }
    if flow == FlowKind::ClientCredentials && secret.is_none() && cfg.certificate_path.is_none() {
        return Err(bad("client-credentials needs client_secret_env, client_secret_file or certificate_path".into()));
    }
    let storage = Storage::parse(cfg.storage.as_deref(), name)?;
    if let Some(other) = cfg.client_capabilities.iter().flatten().find(|c| !c.eq_ignore_ascii_case(CP1)) {
        return Err(Error::bad_input_hint(format!("profile '{name}': unknown client capability \"{}\"", other.escape_debug()), "the one Entra knows is cp1: client_capabilities = [\"cp1\"]"));
    }
    warn_env_conflicts(name, &cfg, &client_id, &tenant);
    Ok(Profile {
        name: name.to_string(),
        origin,
        name_source,
        // Authority's own hint says what a tenant looks like.
        authority: Authority::new(&host, &tenant)
            .map_err(|e| if let Error::BadInput { message, hint, source } = e { Error::BadInput { message: format!("profile '{name}': {message}"), hint, source } } else { e })?,
        client_id,
        flow,
        endpoint: cfg.endpoint.unwrap_or(Endpoint::V2),
        settings: cfg,
        secret,
        storage,
        tenant_from_request: false,
    })
}

/// Explicit settings win over ambient variables, but say so: a stray AZURE_CLIENT_ID
/// silently hijacking a profile is a known trap. Every key a standard variable would
/// otherwise supply is checked; a secret's value is never read, only whether it is set.
fn warn_env_conflicts(name: &str, cfg: &ProfileConfig, client_id: &str, tenant: &str) {
    let profile_host = cfg.authority.clone().or_else(|| cfg.cloud.as_deref().and_then(|c| authority::cloud_host(c).ok()).map(str::to_string));
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    // (the profile's key, its value when the profile sets it, the variable, how to compare)
    type Same = fn(&str, &str) -> bool;
    let same_text: Same = |a, b| a.eq_ignore_ascii_case(b);
    let same_host: Same = |a, b| {
        let host = |h: &str| h.trim().trim_end_matches('/').trim_start_matches("https://").to_ascii_lowercase();
        host(a) == host(b)
    };
    let same_path: Same = |a, b| a == b;
    let checks = [
        ("client_id", cfg.client_id.as_ref().map(|_| client_id.to_string()), "AZURE_CLIENT_ID", same_text),
        ("mi_client_id", cfg.mi_client_id.clone().filter(|_| cfg.client_id.is_none()), "AZURE_CLIENT_ID", same_text),
        ("tenant", cfg.tenant.as_ref().map(|_| tenant.to_string()), "AZURE_TENANT_ID", same_text),
        ("authority", profile_host, "AZURE_AUTHORITY_HOST", same_host),
        ("certificate_path", path(&cfg.certificate_path), "AZURE_CLIENT_CERTIFICATE_PATH", same_path),
        ("federated_token_file", path(&cfg.federated_token_file), "AZURE_FEDERATED_TOKEN_FILE", same_path),
        ("username", cfg.username.clone(), "AZURE_USERNAME", same_text),
    ];
    for (key, ours, var, same) in checks {
        // A variable is read only where the profile sets the key it would supply.
        if let Some(ours) = ours
            && let Some(theirs) = env(var)
            && !same(&ours, &theirs)
        {
            warn!("profile '{name}' sets {key} {ours}; ignoring {var}={theirs}");
        }
    }
    // Secrets: a profile naming its own source ignores the standard variables (never shown).
    let secret_named = cfg.client_secret_env.as_deref().is_some_and(|v| v != "AZURE_CLIENT_SECRET") || cfg.client_secret_file.is_some();
    if secret_named && crate::env::is_set("AZURE_CLIENT_SECRET") {
        let from = cfg.client_secret_env.as_deref().map_or("client_secret_file".to_string(), |v| format!("client_secret_env {v}"));
        warn!("profile '{name}' reads its secret from {from}; ignoring AZURE_CLIENT_SECRET");
    }
    let password_named = cfg.password_env.as_deref().is_some_and(|v| v != "AZURE_PASSWORD") || cfg.password_file.is_some();
    if password_named && crate::env::is_set("AZURE_PASSWORD") {
        warn!("profile '{name}' names its own password source; ignoring AZURE_PASSWORD");
    }
}

fn authority_host(cfg: &ProfileConfig) -> Result<String> {
    Ok(match (&cfg.authority, &cfg.cloud) {
        (Some(a), _) => a.clone(),
        (None, Some(c)) => authority::cloud_host(c)?.to_string(),
        (None, None) => env("AZURE_AUTHORITY_HOST").unwrap_or_else(|| authority::PUBLIC_HOST.to_string()),
    })
}

/// A service principal from AZURE_TENANT_ID / AZURE_CLIENT_ID / AZURE_CLIENT_SECRET
/// (or AZURE_CLIENT_CERTIFICATE_PATH), the way azure-identity's EnvironmentCredential reads them.
pub(crate) fn from_environment(name: &str, name_source: NameSource) -> Result<Option<Profile>> {
    let (Some(tenant), Some(client_id)) = (env("AZURE_TENANT_ID"), env("AZURE_CLIENT_ID")) else {
        return Ok(None);
    };
    let secret = env("AZURE_CLIENT_SECRET").map(|_| SecretSource::Env("AZURE_CLIENT_SECRET".into()));
    let certificate_path = env("AZURE_CLIENT_CERTIFICATE_PATH").map(PathBuf::from);
    if secret.is_none() && certificate_path.is_none() {
        return Ok(None);
    }
    let settings = ProfileConfig {
        certificate_path,
        certificate_password_env: env("AZURE_CLIENT_CERTIFICATE_PASSWORD").map(|_| "AZURE_CLIENT_CERTIFICATE_PASSWORD".into()),
        send_certificate_chain: env("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN").map(|v| v == "1" || v.eq_ignore_ascii_case("true")),
        ..ProfileConfig::default()
    };
    let host = env("AZURE_AUTHORITY_HOST").unwrap_or_else(|| authority::PUBLIC_HOST.to_string());
    trace!(1, "profile '{name}' formed from AZURE_TENANT_ID/AZURE_CLIENT_ID");
    Ok(Some(Profile {
        name: name.to_string(),
        origin: Origin::Environment,
        name_source,
        authority: Authority::new(&host, &tenant)?,
        client_id,
        flow: FlowKind::ClientCredentials,
        endpoint: Endpoint::V2,
        settings,
        secret,
        storage: Storage::Auto,
        tenant_from_request: false,
    }))
}

/// Nothing configured: the Azure CLI public client in `organizations`, signing a person in,
/// in AZURE_AUTHORITY_HOST's cloud, else az's active cloud (`az cloud set`), as az would.
fn builtin_default(name_source: NameSource) -> Result<Profile> {
    let host = env("AZURE_AUTHORITY_HOST").or_else(|| az_cloud::active().map(|c| c.login)).unwrap_or_else(|| authority::PUBLIC_HOST.to_string());
    Ok(Profile {
        name: "default".into(),
        origin: Origin::BuiltIn,
        name_source,
        authority: Authority::new(&host, &env("AZURE_TENANT_ID").unwrap_or_else(|| "organizations".into()))?,
        client_id: AZURE_CLI_CLIENT_ID.into(),
        // The `auto` chain: its last step signs the person in (browser with a display,
        // device code without) through `flows::user::sign_in_user`.
        flow: FlowKind::Auto,
        endpoint: Endpoint::V2,
        settings: ProfileConfig::default(),
        secret: None,
        storage: Storage::Auto,
        tenant_from_request: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_read_again_is_never_stale() {
        let path = std::env::temp_dir().join(format!("et-config-{}.toml", std::process::id()));
        std::fs::write(&path, "default_profile = \"a\"\n").unwrap();
        assert_eq!(load_file(&path).unwrap().default_profile.as_deref(), Some("a"));
        assert_eq!(load_file(&path).unwrap().default_profile.as_deref(), Some("a"));
        std::fs::write(&path, "default_profile = \"b\"\n").unwrap();
        assert_eq!(load_file(&path).unwrap().default_profile.as_deref(), Some("b"));
        std::fs::write(&path, "default_profile = \"b\"\nbogus = 1\n").unwrap();
        assert!(load_file(&path).is_err(), "an edit that breaks the file is seen");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(load_file(&path).unwrap().default_profile, None);
    }

    #[test]
    fn parses_a_profile_and_rejects_typos() {
        let f = parse_file("[profiles.ci]\ntenant = \"t\"\nclient_id = \"c\"\nflow = \"client-credentials\"\nclient_secret_env = \"S\"\n").unwrap();
        let p = resolve_in(&f, None, Some("ci")).unwrap();
        assert_eq!(p.flow, FlowKind::ClientCredentials);
        assert_eq!(p.secret, Some(SecretSource::Env("S".into())));
        let err = parse_file("[profiles.ci]\nclient_secert_env = \"S\"\n").unwrap_err();
        assert!(err.contains("client_secert_env"), "{err}");
    }

    #[test]
    fn missing_profile_lists_the_others() {
        let f = parse_file("[profiles.a]\nflow = \"device-code\"\n[profiles.b]\nflow = \"device-code\"\n").unwrap();
        let e = resolve_in(&f, None, Some("nope")).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("a, b"), "{e}");
    }

    #[test]
    fn insecure_authority_is_refused() {
        let f = parse_file("[profiles.x]\nauthority = \"http://evil.test\"\nflow = \"device-code\"\n").unwrap();
        assert!(resolve_in(&f, None, Some("x")).is_err());
    }
}
