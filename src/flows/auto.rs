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
    pub(crate) fn name(self) -> &'static str {
        match self {
            Source::Environment => "environment",
            Source::WorkloadIdentity => "workload identity",
            Source::ManagedIdentity => "managed identity",
            Source::AzureCli => "azure cli",
            Source::Interactive => "interactive sign-in",
        }
    }
}

use crate::env::var as env;

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

/// What the plan says of one source.
#[derive(Debug, Clone)]
pub(crate) enum Verdict {
    /// The environment says this source is set up: the chain uses it and stops there,
    /// with its token or its error.
    Use(Profile),
    /// Worth a try, but whether it answers is known only by trying (IMDS's probe, az,
    /// the person's refresh token or a prompt): the chain moves on when it does not.
    Try(Profile),
    /// Not set up here (or not allowed): why.
    Skip(String),
}

/// Which source `auto` uses and why each other one does not apply, decided from the
/// request's profile and the environment alone (variables, az's profile file; no
/// network, no secret). The cache identity, the chain and `doctor` all read this one plan.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub steps: Vec<(Source, Verdict)>,
}

impl Plan {
    /// The source the chain will certainly use, when the environment decides it (a
    /// `Use` before any `Try`); None when it depends on what answers at run time.
    pub(crate) fn chosen(&self) -> Option<(Source, &Profile)> {
        for (s, v) in &self.steps {
            match v {
                Verdict::Use(p) => return Some((*s, p)),
                Verdict::Try(_) => return None,
                Verdict::Skip(_) => {}
            }
        }
        None
    }

    /// The sources the chain may try, in order, up to the first certain one.
    pub(crate) fn candidates(&self) -> impl Iterator<Item = (Source, &Profile)> {
        let last = self.steps.iter().position(|(_, v)| matches!(v, Verdict::Use(_))).unwrap_or(self.steps.len().saturating_sub(1));
        self.steps[..=last.min(self.steps.len().saturating_sub(1))].iter().filter_map(|(s, v)| match v {
            Verdict::Use(p) | Verdict::Try(p) => Some((*s, p)),
            Verdict::Skip(_) => None,
        })
    }
}

/// The tenant a step signs in to: the request's `--tenant` when it named one, else the
/// step's own (the variables'), so `--tenant` is honoured by every source that can.
fn step_tenant(base: &Profile, own: &str) -> String {
    if base.tenant_from_request { base.authority.tenant.clone() } else { own.to_string() }
}

/// Decides the plan. Errors only for a bad AZURE_TOKEN_CREDENTIALS or a bad tenant.
pub(crate) fn plan(base: &Profile) -> Result<Plan> {
    let allowed = allowed()?;
    let mut steps = Vec::with_capacity(ALL.len());
    for source in ALL {
        let verdict = if allowed.contains(&source) {
            verdict(base, source)?
        } else {
            Verdict::Skip(format!("skipped (AZURE_TOKEN_CREDENTIALS={})", env("AZURE_TOKEN_CREDENTIALS").unwrap_or_default()))
        };
        steps.push((source, verdict));
    }
    Ok(Plan { steps })
}

fn verdict(base: &Profile, source: Source) -> Result<Verdict> {
    Ok(match source {
        Source::Environment if profile_app(base) => {
            // The profile names its own app credential: that is its environment.
            let mut p = base.clone();
            p.flow = FlowKind::ClientCredentials;
            Verdict::Use(p)
        }
        Source::Environment => match env_cred() {
            None if env("AZURE_CLIENT_ID").is_none() => Verdict::Skip("AZURE_CLIENT_ID is not set".into()),
            None => Verdict::Skip("AZURE_CLIENT_ID is set but no AZURE_TENANT_ID with AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH (nor AZURE_USERNAME/AZURE_PASSWORD)".into()),
            Some(EnvCred::Secret { tenant, client_id }) => {
                let mut p = sub_profile(base, FlowKind::ClientCredentials, &client_id, &step_tenant(base, &tenant))?;
                p.secret = Some(SecretSource::Env("AZURE_CLIENT_SECRET".into()));
                p.settings.certificate_path = None;
                Verdict::Use(p)
            }
            Some(EnvCred::Certificate { tenant, client_id, path }) => {
                let mut p = sub_profile(base, FlowKind::ClientCredentials, &client_id, &step_tenant(base, &tenant))?;
                p.secret = None;
                p.settings.certificate_path = Some(path);
                p.settings.certificate_password_env = env("AZURE_CLIENT_CERTIFICATE_PASSWORD").map(|_| "AZURE_CLIENT_CERTIFICATE_PASSWORD".into());
                p.settings.send_certificate_chain = env("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN").map(|v| v == "1" || v.eq_ignore_ascii_case("true"));
                Verdict::Use(p)
            }
            Some(EnvCred::Password { tenant, client_id, username }) => {
                let mut p = sub_profile(base, FlowKind::Password, &client_id, &step_tenant(base, &tenant))?;
                p.settings.username = Some(username);
                p.settings.password_env = Some("AZURE_PASSWORD".into());
                p.settings.password_file = None;
                Verdict::Use(p)
            }
        },
        Source::WorkloadIdentity => {
            let Some(src) = workload_identity::token_source(&base.settings) else {
                let ado = if env(super::azure_pipelines::OIDC_URI_VAR).is_some() {
                    "; this is an Azure Pipelines step, but no service connection is named (service_connection_id or AZURESUBSCRIPTION_SERVICE_CONNECTION_ID)"
                } else {
                    ""
                };
                return Ok(Verdict::Skip(format!("no federated token (AZURE_FEDERATED_TOKEN_FILE, ARM_OIDC_TOKEN_FILE_PATH, GitHub's ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN or an Azure Pipelines service connection){ado}")));
            };
            if let Some(why) = src.unusable() {
                return Ok(Verdict::Skip(why));
            }
            let Some((client, tenant)) = wi_ids(base) else {
                return Ok(Verdict::Skip(format!("a federated token ({}) is there, but no client id and tenant (AZURE_CLIENT_ID and AZURE_TENANT_ID, or the profile's client_id and tenant)", src.describe())));
            };
            Verdict::Use(sub_profile(base, FlowKind::WorkloadIdentity, &client, &step_tenant(base, &tenant))?)
        }
        Source::ManagedIdentity => {
            if base.tenant_from_request {
                return Ok(Verdict::Skip(format!("a managed identity cannot sign in to another tenant (--tenant {})", base.authority.tenant)));
            }
            let mut p = base.clone();
            p.flow = FlowKind::ManagedIdentity;
            match managed_identity::detect() {
                managed_identity::Kind::Imds { .. } => Verdict::Try(p),
                _ => Verdict::Use(p),
            }
        }
        Source::AzureCli => Verdict::Try(cli_profile(base)),
        Source::Interactive => {
            let mut p = base.clone();
            p.flow = super::user::default_user_flow();
            Verdict::Try(p)
        }
    })
}

/// Runs the chain the plan lays out.
pub(crate) fn acquire(ctx: &FlowCtx<'_>) -> Result<TokenReply> {
    let plan = plan(ctx.profile)?;
    let mut notes: Vec<String> = Vec::new();
    for (source, verdict) in &plan.steps {
        let (p, certain) = match verdict {
            Verdict::Skip(why) => {
                crate::log::trace!(1, "auto: {}: {why}", source.name());
                notes.push(format!("{}: {why}", source.name()));
                continue;
            }
            Verdict::Use(p) => (p, true),
            Verdict::Try(p) => (p, false),
        };
        match with_profile(ctx, p, |sub| run(sub, *source)) {
            Step::Token(t) => {
                crate::log::trace!(1, "auto: {} gave the token", source.name());
                return Ok(t);
            }
            Step::Unavailable(why) if !certain => {
                crate::log::trace!(1, "auto: {}: {why}", source.name());
                notes.push(format!("{}: {why}", source.name()));
            }
            Step::Unavailable(why) => return Err(Error::auth(format!("{}: {why}", source.name()), None)),
            Step::Failed(e) => {
                crate::log::trace!(1, "auto: {} is set up but failed", source.name());
                return Err(e);
            }
        }
    }
    // One line (as every error): what to do first, then why each source was passed over.
    let first = format!(
        "no token source is set up for profile '{}': run `{}` in a terminal to sign in, or set one up (`entra-token doctor` says how)",
        ctx.profile.name,
        ctx.profile.login_command()
    );
    Err(Error::Auth { message: format!("{first}; passed over: {}", notes.join("; ")), aad: None, hint: None })
}

/// A profile for one step: the same request, another source.
fn sub_profile(base: &Profile, flow: FlowKind, client_id: &str, tenant: &str) -> Result<Profile> {
    let mut p = base.with_tenant(tenant)?;
    p.flow = flow;
    p.client_id = client_id.to_string();
    Ok(p)
}

fn with_profile<T>(ctx: &FlowCtx<'_>, profile: &Profile, f: impl FnOnce(&FlowCtx<'_>) -> T) -> T {
    let sub = FlowCtx { profile, target: ctx.target, http: ctx.http, deadline: ctx.deadline, claims: ctx.claims, cache: ctx.cache, prompt: ctx.prompt, binding: ctx.binding };
    f(&sub)
}

fn done(r: Result<TokenReply>) -> Step {
    match r {
        Ok(t) => Step::Token(t),
        Err(e) => Step::Failed(e),
    }
}

/// One step with the profile the plan made for it.
fn run(ctx: &FlowCtx<'_>, source: Source) -> Step {
    match source {
        Source::Environment | Source::WorkloadIdentity => done(super::acquire(ctx)),
        Source::ManagedIdentity if *ctx.binding != crate::oauth::Binding::Bearer => Step::Unavailable(crate::error::one_line(&super::managed_identity_cannot_bind(ctx))),
        Source::ManagedIdentity => managed_identity::acquire_step(ctx, true),
        Source::AzureCli => azure_cli::acquire_step(ctx),
        Source::Interactive => {
            // The signed-in account's refresh token first (no person needed), then a sign-in
            // only when someone can see it; otherwise exit 3 with the `login` command.
            match super::user::sign_in_user(ctx) {
                Err(Error::InteractionRequired { message, command }) => {
                    Step::Unavailable(format!("{message}; run `{command}` in a terminal"))
                }
                other => done(other),
            }
        }
    }
}

/// az's client is fixed; keep the profile's authority and tenant.
pub(crate) fn cli_profile(base: &Profile) -> Profile {
    let mut p = base.clone();
    p.flow = FlowKind::AzureCli;
    p.client_id = crate::config::AZURE_CLI_CLIENT_ID.to_string();
    p
}
