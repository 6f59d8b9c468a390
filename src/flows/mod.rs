//! One module per grant. The broker calls `acquire` with everything a flow may need; a
//! flow returns a token answer or a specific error. `identity` names whose token a
//! request gets, so tokens of different identities never mix.

use crate::authority::Target;
use crate::cache::Cache;
use crate::clock::Deadline;
use crate::config::{FlowKind, Profile};
use crate::error::Result;
use crate::http::Http;
use crate::oauth::TokenReply;

pub(crate) mod auto;
pub(crate) mod azure_cli;
pub(crate) mod azure_pipelines;
pub(crate) mod certificate;
pub(crate) mod client_credentials;
pub(crate) mod identity;
pub(crate) mod user;
pub(crate) mod managed_identity;
pub(crate) mod workload_identity;

/// Can a person answer a prompt right now?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prompt {
    /// Someone may be watching stderr (a terminal), and the profile allows prompts.
    Allowed,
    /// An explicit `login`: show the prompt on stderr even without a terminal.
    Forced,
    /// Nobody can answer: fail fast with the command to run.
    Never,
}

/// What a flow gets to work with.
pub(crate) struct FlowCtx<'a> {
    pub profile: &'a Profile,
    pub target: &'a Target,
    pub http: &'a Http,
    pub deadline: Deadline,
    /// A CAE / conditional-access claims challenge to pass to Entra.
    pub claims: Option<&'a str>,
    /// For flows that keep refresh tokens; None under `--no-cache`.
    pub cache: Option<&'a Cache>,
    pub prompt: Prompt,
}

/// Gets a new token through the profile's flow.
pub(crate) fn acquire(ctx: &FlowCtx<'_>) -> Result<TokenReply> {
    match ctx.profile.flow {
        FlowKind::ClientCredentials => client_credentials::acquire(ctx),
        FlowKind::DeviceCode | FlowKind::Interactive | FlowKind::AuthorizationCode | FlowKind::Password => user::acquire(ctx),
        FlowKind::WorkloadIdentity => workload_identity::acquire(ctx),
        FlowKind::ManagedIdentity => managed_identity::acquire(ctx),
        FlowKind::AzureCli => azure_cli::acquire(ctx),
        FlowKind::Auto => auto::acquire(ctx),
    }
}

/// Adds the claims challenge to a form when there is one.
pub(crate) fn with_claims<'a>(mut form: Vec<(&'a str, &'a str)>, claims: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    if let Some(c) = claims {
        form.push(("claims", c));
    }
    form
}
