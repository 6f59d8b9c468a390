//! `auto`, the flow of a profile that names none: try the sources a machine or a developer
//! usually has, in azure-identity's DefaultAzureCredential order (environment → workload
//! identity → managed identity → Azure CLI → interactive sign-in), and when all of them
//! fail, say in one message why each did not apply. `AZURE_TOKEN_CREDENTIALS` narrows it.
//! Workload identity includes GitHub Actions' and Azure Pipelines' OIDC endpoints.

use super::{FlowCtx, azure_cli, managed_identity, workload_identity};
use crate::config::{FlowKind, Profile, SecretSource};
use crate::error::{Error, Result};
use crate::oauth::TokenReply;
use std::path::PathBuf;

/// What one source did.
pub(crate) enum Step {
    Token(TokenReply),
    /// The source is not set up here: try the next one.
    Unavailable(String),
    /// The source is set up but failed: stop and report (as azure-identity does).
    Failed(Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Environment,
    WorkloadIdentity,
    ManagedIdentity,
    AzureCli,
    Interactive,
}

const ALL: [Source; 5] = [Source::Environment, Source::WorkloadIdentity, Source::ManagedIdentity, Source::AzureCli, Source::Interactive];

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Environment => "environment",
            Source::WorkloadIdentity => "workload identity",
            Source::ManagedIdentity => "managed identity",
            Source::AzureCli => "azure cli",
            Source::Interactive => "interactive sign-in",
        }
    }
}

fn env(name: &str) -> Option<String> {
    workload_identity::env(name)
}

/// The sources AZURE_TOKEN_CREDENTIALS allows: `dev`, `prod`, or one credential's name.
pub(crate) fn allowed() -> Result<Vec<Source>> {
    let Some(v) = env("AZURE_TOKEN_CREDENTIALS") else { return Ok(ALL.to_vec()) };
    let one = |s| Ok(vec![s]);
    match v.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
        "dev" => Ok(vec![Source::AzureCli, Source::Interactive]),
        "prod" => Ok(vec![Source::Environment, Source::WorkloadIdentity, Source::ManagedIdentity]),
        "environmentcredential" | "environment" | "env" => one(Source::Environment),
        "workloadidentitycredential" | "workloadidentity" => one(Source::WorkloadIdentity),
        "managedidentitycredential" | "managedidentity" | "msi" => one(Source::ManagedIdentity),
        "azureclicredential" | "azurecli" | "az" => one(Source::AzureCli),
        "interactivebrowsercredential" | "interactive" | "devicecodecredential" => one(Source::Interactive),
        _ => Err(Error::bad_input_hint(
            format!("AZURE_TOKEN_CREDENTIALS={v} is not a source entra-token has"),
            "use dev, prod, EnvironmentCredential, WorkloadIdentityCredential, ManagedIdentityCredential or AzureCliCredential",
        )),
    }
}

/// The environment step's service principal or user, from variables alone.
#[derive(Debug, Clone, PartialEq, Eq)]
enum EnvCred {
    Secret { tenant: String, client_id: String },
    Certificate { tenant: String, client_id: String, path: PathBuf },
    Password { tenant: String, client_id: String, username: String },
}

fn env_cred() -> Option<EnvCred> {
    let client_id = env("AZURE_CLIENT_ID")?;
    let tenant = env("AZURE_TENANT_ID");
    if let Some(tenant) = tenant.clone() {
        if env("AZURE_CLIENT_SECRET").is_some() {
            return Some(EnvCred::Secret { tenant, client_id });
        }
        if let Some(path) = env("AZURE_CLIENT_CERTIFICATE_PATH") {
            return Some(EnvCred::Certificate { tenant, client_id, path: PathBuf::from(path) });
        }
    }
    if let (Some(username), Some(_)) = (env("AZURE_USERNAME"), env("AZURE_PASSWORD")) {
        return Some(EnvCred::Password { tenant: tenant.unwrap_or_else(|| "organizations".into()), client_id, username });
    }
    None
}

/// A profile with its own client secret or certificate signs in as that app first.
fn profile_app(profile: &Profile) -> bool {
    profile.settings.client_id.is_some() && (profile.secret.is_some() || profile.settings.certificate_path.is_some())
}

/// Workload identity's client and tenant: the profile's own, else the variables.
fn wi_ids(profile: &Profile) -> Option<(String, String)> {
    let s = &profile.settings;
    let client = s.client_id.clone().or_else(|| workload_identity::env_client_id(s))?;
    let tenant = s.tenant.clone().or_else(|| workload_identity::env_tenant_id(s))?;
    Some((client, tenant))
}

/// The cache identity of `auto`: the source the chain will use, decided from variables
/// (and az's small profile file) without network or secrets, so a token one source
/// minted is never served once another source applies.
pub(crate) fn identity(profile: &Profile) -> String {
    let allowed = allowed().unwrap_or_default();
    let narrowed = env("AZURE_TOKEN_CREDENTIALS").map(|v| format!("[{}]", v.to_ascii_lowercase())).unwrap_or_default();
    let on = |s| allowed.contains(&s);
    if on(Source::Environment) && profile_app(profile) {
        return format!("auto{narrowed}:profile-app");
    }
    if on(Source::Environment) {
        match env_cred() {
            Some(EnvCred::Secret { client_id, .. }) => return format!("auto{narrowed}:env-secret:{}", client_id.to_ascii_lowercase()),
            Some(EnvCred::Certificate { client_id, .. }) => return format!("auto{narrowed}:env-cert:{}", client_id.to_ascii_lowercase()),
            Some(EnvCred::Password { username, .. }) => return format!("auto{narrowed}:env-user:{}", username.to_ascii_lowercase()),
            None => {}
        }
    }
    if let Some(src) = workload_identity::token_source(&profile.settings).filter(|s| on(Source::WorkloadIdentity) && s.unusable().is_none())
        && let Some((client, _)) = wi_ids(profile)
    {
        return format!("auto{narrowed}:wi:{}{}", client.to_ascii_lowercase(), src.cache_part());
    }
    let mi = managed_identity::identity(profile);
    if on(Source::ManagedIdentity) {
        let kind = managed_identity::detect();
        if !matches!(kind, managed_identity::Kind::Imds { .. }) {
            return format!("auto{narrowed}:{mi}:{}", kind.name());
        }
    }
    // IMDS, az and a person cannot be told apart without the network: key by what the
    // environment says of each (IMDS's base, az's account). On one host the chain's order
    // fixes which of them answers, so the key only has to change when the setup does.
    let mi = match managed_identity::detect() {
        managed_identity::Kind::Imds { base } if on(Source::ManagedIdentity) => format!("{mi}@{base}"),
        _ => "-".into(),
    };
    let az = if on(Source::AzureCli) { azure_cli::identity() } else { "-".into() };
    // The chain ends at this profile's signed-in person: two `auto` profiles on the same
    // authority, tenant and client may have different people, so the profile is part of it.
    format!("auto{narrowed}:local:{mi}:{az}:person:{}", profile.name)
}

/// Runs the chain.
pub(crate) fn acquire(ctx: &FlowCtx<'_>) -> Result<TokenReply> {
    let allowed = allowed()?;
    let mut notes: Vec<String> = Vec::new();
    for source in ALL {
        if !allowed.contains(&source) {
            notes.push(format!("{}: skipped (AZURE_TOKEN_CREDENTIALS={})", source.name(), env("AZURE_TOKEN_CREDENTIALS").unwrap_or_default()));
            continue;
        }
        let step = run(ctx, source);
        match step {
            Step::Token(t) => {
                crate::log::trace!(1, "auto: {} gave the token", source.name());
                return Ok(t);
            }
            Step::Unavailable(why) => {
                crate::log::trace!(1, "auto: {}: {why}", source.name());
                notes.push(format!("{}: {why}", source.name()));
            }
            Step::Failed(e) => {
                crate::log::trace!(1, "auto: {} is set up but failed", source.name());
                return Err(e);
            }
        }
    }
    Err(Error::Auth {
        message: format!("no token source worked for profile '{}': {}", ctx.profile.name, notes.join("; ")),
        aad: None,
        hint: Some("set one of them up (see `Token sources` in the README), or name a flow in the profile".into()),
    })
}

/// A profile for one step: the same request, another source.
fn sub_profile(base: &Profile, flow: FlowKind, client_id: &str, tenant: &str) -> Result<Profile> {
    let mut p = base.with_tenant(tenant)?;
    p.flow = flow;
    p.client_id = client_id.to_string();
    Ok(p)
}

fn with_profile<T>(ctx: &FlowCtx<'_>, profile: &Profile, f: impl FnOnce(&FlowCtx<'_>) -> T) -> T {
    let sub = FlowCtx { profile, target: ctx.target, http: ctx.http, deadline: ctx.deadline, claims: ctx.claims, cache: ctx.cache, prompt: ctx.prompt };
    f(&sub)
}

fn done(r: Result<TokenReply>) -> Step {
    match r {
        Ok(t) => Step::Token(t),
        Err(e) => Step::Failed(e),
    }
}

fn run(ctx: &FlowCtx<'_>, source: Source) -> Step {
    let base = ctx.profile;
    match source {
        Source::Environment if profile_app(base) => {
            // The profile names its own app credential: that is its environment.
            let mut p = base.clone();
            p.flow = FlowKind::ClientCredentials;
            done(with_profile(ctx, &p, super::client_credentials::acquire))
        }
        Source::Environment => {
            let Some(cred) = env_cred() else {
                return Step::Unavailable("AZURE_CLIENT_ID with AZURE_TENANT_ID and AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH (or AZURE_USERNAME/AZURE_PASSWORD) is not set".into());
            };
            let made = match &cred {
                EnvCred::Secret { tenant, client_id } => sub_profile(base, FlowKind::ClientCredentials, client_id, tenant).map(|mut p| {
                    p.secret = Some(SecretSource::Env("AZURE_CLIENT_SECRET".into()));
                    p.settings.certificate_path = None;
                    p
                }),
                EnvCred::Certificate { tenant, client_id, path } => sub_profile(base, FlowKind::ClientCredentials, client_id, tenant).map(|mut p| {
                    p.secret = None;
                    p.settings.certificate_path = Some(path.clone());
                    p.settings.certificate_password_env = env("AZURE_CLIENT_CERTIFICATE_PASSWORD").map(|_| "AZURE_CLIENT_CERTIFICATE_PASSWORD".into());
                    p.settings.send_certificate_chain = env("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN").map(|v| v == "1" || v.eq_ignore_ascii_case("true"));
                    p
                }),
                EnvCred::Password { tenant, client_id, username } => sub_profile(base, FlowKind::Password, client_id, tenant).map(|mut p| {
                    p.settings.username = Some(username.clone());
                    p.settings.password_env = Some("AZURE_PASSWORD".into());
                    p.settings.password_file = None;
                    p
                }),
            };
            match made {
                Ok(p) => done(with_profile(ctx, &p, super::acquire)),
                Err(e) => Step::Failed(e),
            }
        }
        Source::WorkloadIdentity => {
            let Some(src) = workload_identity::token_source(&base.settings) else {
                let ado = if env(super::azure_pipelines::OIDC_URI_VAR).is_some() {
                    "; this is an Azure Pipelines step, but no service connection is named (service_connection_id or AZURESUBSCRIPTION_SERVICE_CONNECTION_ID)"
                } else {
                    ""
                };
                return Step::Unavailable(format!("AZURE_FEDERATED_TOKEN_FILE (or ARM_OIDC_TOKEN_FILE_PATH, GitHub's ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN, Azure Pipelines' SYSTEM_OIDCREQUESTURI) is not set{ado}"));
            };
            if let Some(why) = src.unusable() {
                return Step::Unavailable(why);
            }
            let Some((client, tenant)) = wi_ids(base) else {
                return Step::Unavailable(format!("a federated token ({}) is there, but no client id and tenant (AZURE_CLIENT_ID and AZURE_TENANT_ID, or the profile's client_id and tenant)", src.describe()));
            };
            match sub_profile(base, FlowKind::WorkloadIdentity, &client, &tenant) {
                Ok(p) => done(with_profile(ctx, &p, workload_identity::acquire)),
                Err(e) => Step::Failed(e),
            }
        }
        Source::ManagedIdentity => managed_identity::acquire_step(ctx, true),
        Source::AzureCli => with_profile(ctx, &cli_profile(base), azure_cli::acquire_step),
        Source::Interactive => {
            // The signed-in account's refresh token first (no person needed), then a sign-in
            // only when someone can see it; otherwise exit 3 with the `login` command.
            let mut p = base.clone();
            p.flow = super::user::default_user_flow();
            match with_profile(ctx, &p, super::user::sign_in_user) {
                Err(Error::InteractionRequired { message, command }) => {
                    Step::Unavailable(format!("no person can answer a sign-in prompt here ({message}); run `{command}` in a terminal"))
                }
                other => done(other),
            }
        }
    }
}

/// az's client is fixed; keep the profile's authority and tenant.
fn cli_profile(base: &Profile) -> Profile {
    let mut p = base.clone();
    p.flow = FlowKind::AzureCli;
    p.client_id = crate::config::AZURE_CLI_CLIENT_ID.to_string();
    p
}
