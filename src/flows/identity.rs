//! Whose token a request gets: the one function that names the identity a request
//! resolves to once every input is applied (the profile, `--tenant`, the `AZURE_*` and
//! managed-identity variables, the federated token's source, az's current account, the
//! person signed in). The cache key is made of it, so a token is only ever served to the
//! identity that minted it, whichever front end or command asks.
//!
//! Cost on the cached path: variables, plus at most two small files read — az's
//! `azureProfile.json` (for `azure-cli`, and for `auto` when az is one of its sources) and
//! the profile's account link (`acct-*.json`, for people). No HTTP client, no secret.

use super::auto::{self, Source};
use super::{azure_cli, managed_identity, workload_identity};
use crate::authority::{Endpoint, Target};
use crate::cache::{self, Cache};
use crate::config::{FlowKind, Profile};
use crate::error::{Error, Result};

/// A request's resolved identity: everything that decides which token Entra (or the
/// platform) hands out, apart from the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// The authority host tokens come from (`-` for managed identity: the platform's).
    pub authority: String,
    /// The tenant the token is issued in.
    pub tenant: String,
    pub client_id: String,
    /// Which principal of that client: the app itself, a person, a managed identity at an
    /// endpoint, az's account, a federated token's source.
    pub who: String,
    pub endpoint: Endpoint,
    /// The client capabilities its requests declare (`cp1`): a long-lived CAE token is
    /// served only to requests that declare it too, and a plain one only to those that do not.
    pub capabilities: Option<String>,
}

impl Identity {
    /// What a token bound as `bound` asks (a bearer token, a key-bound kind for its key, a
    /// registry's refresh token exchanged for the Entra token for `target`) is minted for:
    /// its cache entry's binding, whose `name()` is the entry's file name.
    pub(crate) fn binding(&self, target: &Target, bound: &crate::oauth::Binding) -> cache::Binding {
        let endpoint = self.endpoint_name();
        cache::Binding {
            token_type: bound.cache_type().to_string(),
            key_id: bound.key_id().map(str::to_string),
            authority: self.authority.clone(),
            tenant: self.tenant.clone(),
            client_id: self.client_id.clone(),
            identity: self.who.clone(),
            endpoint: endpoint.to_string(),
            target: target.key(),
            capabilities: self.capabilities.clone(),
            registry: bound.registry().map(str::to_ascii_lowercase),
        }
    }
}

impl Identity {
    /// The token endpoint's version as a binding records it (`v1`, `v2`).
    pub(crate) fn endpoint_name(&self) -> &'static str {
        match self.endpoint {
            Endpoint::V1 => "v1",
            Endpoint::V2 => "v2",
        }
    }
}

/// Does a cached token's `who` end at a person (someone who signed in), alone or as the
/// last of `auto`'s candidates?
pub(crate) fn names_person(who: &str) -> bool {
    who.split('|').any(|part| part.trim_start_matches("auto:").starts_with("user:"))
}

fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

fn base(profile: &Profile, who: String) -> Identity {
    Identity { authority: lower(&profile.authority.host), tenant: lower(&profile.authority.tenant), client_id: lower(&profile.client_id), who, endpoint: profile.endpoint, capabilities: None }
}

/// The identity `profile` (already carrying the request's tenant and flow) resolves to.
/// `cache` is where a person's account link is read; None (`--no-cache`) leaves it out.
/// Refuses `--tenant` for sources that cannot honour it.
pub(crate) fn of(profile: &Profile, cache: Option<&Cache>) -> Result<Identity> {
    let capabilities = profile.cae().then(|| crate::config::CP1.to_string());
    Ok(Identity { capabilities, ..principal(profile, cache)? })
}

/// `of` without the capabilities: who the principal is.
fn principal(profile: &Profile, cache: Option<&Cache>) -> Result<Identity> {
    Ok(match profile.flow {
        FlowKind::ClientCredentials => base(profile, "app".into()),
        f if f.is_user_flow() => base(profile, person(profile, cache)),
        FlowKind::WorkloadIdentity => {
            let src = match workload_identity::token_source(&profile.settings) {
                // Both identities: the app (client, tenant) and the managed identity signing for it.
                Some(workload_identity::TokenSource::ManagedIdentity) => format!("mi:{}@{}", managed_identity::identity_of(managed_identity::named(profile)), lower(&endpoint())),
                s => s.map(|s| s.identity_part()).unwrap_or_else(|| "none".into()),
            };
            base(profile, format!("wi:{src}"))
        }
        FlowKind::ManagedIdentity => {
            if profile.tenant_from_request {
                return Err(Error::bad_input_hint(
                    format!("profile '{}' uses a managed identity, which cannot sign in to another tenant (--tenant {})", profile.name, profile.authority.tenant),
                    "drop --tenant, or use a profile whose flow can sign in to that tenant",
                ));
            }
            Identity { authority: "-".into(), tenant: "-".into(), client_id: "-".into(), who: managed(profile), endpoint: profile.endpoint, capabilities: None }
        }
        FlowKind::AzureCli => {
            let (tenant, who) = az(profile);
            Identity { tenant, ..base(profile, who) }
        }
        FlowKind::Auto => {
            let plan = auto::plan(profile)?;
            if let Some((_, chosen)) = plan.chosen() {
                return principal(chosen, cache);
            }
            // The source answering depends on what answers at run time (IMDS, az, the
            // person's sign-in), in the chain's fixed order: key by every candidate, so the
            // key changes whenever any of them does.
            let parts: Vec<String> = plan
                .candidates()
                .map(|(s, p)| match s {
                    Source::ManagedIdentity => managed(p),
                    Source::AzureCli => {
                        let (tenant, who) = az(p);
                        format!("{who}@{tenant}")
                    }
                    Source::Interactive => person(p, cache),
                    other => other.name().to_string(),
                })
                .collect();
            base(profile, format!("auto:{}", parts.join("|")))
        }
        other => base(profile, format!("{}:{}", other.name(), profile.name)),
    })
}

/// A person of this profile: the profile (one person per profile) and the home account
/// it signed in as; a profile told to be someone its link is not (a password flow's other
/// `username` or AZURE_USERNAME, any person flow's other login hint) is that username,
/// with no home yet. A link
/// that matches keys the same with or without the name, so `login --login-hint X` and a
/// plain `get-token` share one entry.
fn person(profile: &Profile, cache: Option<&Cache>) -> String {
    let username = super::user::asked_person(profile, profile.flow).map(|u| lower(&u));
    let link = cache.and_then(|c| crate::rt_store::linked(c, profile).ok().flatten());
    // A link to someone other than the username asked for is not this request's person.
    let home = link.filter(|l| username.as_deref().is_none_or(|u| l.username.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(u)))).map(|l| lower(&l.key.home_account_id));
    // JSON keeps the parts apart whatever a hand-written profile name holds (`a:b`).
    let parts = match home {
        Some(home) => [profile.name.as_str(), "", &home].map(str::to_string),
        None => [profile.name.clone(), username.unwrap_or_default(), String::new()],
    };
    format!("user:{}", serde_json::to_string(&parts).unwrap_or_default())
}

/// A managed identity: which one (system or user-assigned, by which id) at which endpoint,
/// for which application of the endpoints that serve many (IDENTITY_HEADER's digest).
fn managed(profile: &Profile) -> String {
    format!("{}@{}", managed_identity::identity(profile), lower(&endpoint()))
}

/// The managed identity endpoint this host has (with IDENTITY_HEADER's digest where one
/// endpoint serves many applications).
fn endpoint() -> String {
    match managed_identity::detect() {
        managed_identity::Kind::ServiceFabric { endpoint } => format!("sf:{endpoint}#{}", managed_identity::header_digest()),
        managed_identity::Kind::AppService { endpoint } => format!("appservice:{endpoint}#{}", managed_identity::header_digest()),
        managed_identity::Kind::Arc { endpoint } => format!("arc:{endpoint}"),
        managed_identity::Kind::CloudShell { endpoint } => format!("cloudshell:{endpoint}"),
        managed_identity::Kind::Imds { base } => format!("imds:{base}"),
    }
}

/// az's current account (its default subscription's user and tenant) and the tenant the
/// token is issued in: the profile's when it names one, else az's.
fn az(profile: &Profile) -> (String, String) {
    let account = azure_cli::current_account(profile.settings.subscription.as_deref());
    let tenant = match &account {
        Some(a) if profile.authority.is_multi_tenant() && !a.tenant.is_empty() => lower(&a.tenant),
        _ => lower(&profile.authority.tenant),
    };
    // JSON keeps the parts apart; a managed identity's user name is the same for every
    // user-assigned identity (`userAssignedIdentity`): which one is `assignedIdentityInfo`.
    // A person's name does not tell home accounts apart, and az's profile names none: when
    // az last wrote it (every login and logout does) stands in for the home account.
    let who = match account {
        Some(a) => {
            let written = if a.user_type == "user" { a.written } else { String::new() };
            format!("azcli:{}", serde_json::to_string(&[a.user_type, a.user, a.tenant, a.assigned_identity, written].map(|p| lower(&p))).unwrap_or_default())
        }
        None => "azcli:-".into(),
    };
    (tenant, who)
}
