//! The one entry every front end calls. It composes, from outside and top down, the
//! layers around the cache-and-acquire core (`tokens`): the token agent (ENTRA_TOKEN_AGENT:
//! the agent answers, nothing here runs) → ACR's exchange (a request naming a registry)
//! → the wait for a login elsewhere → the core. Each layer calls only inward, as a
//! provider chain and a cache wrap a credential provider (aws-sdk-rust): the core calls
//! none of them.

use crate::error::{Error, Result};
use crate::flows::Prompt;

pub(crate) use crate::tokens::{Credential, DEFAULT_MIN_VALIDITY, Resolved, TokenEntry, TokenRequest, acquire_locked, bound_to_identity, cached_tokens, existing_cache, fingerprint, forget_old_registry_tokens, forget_tokens, resolve};

/// The whole path: serve from cache when fresh, else acquire under the key's lock.
pub(crate) fn get_token(req: &TokenRequest) -> Result<Credential> {
    get_token_with(req, None)
}

/// `get_token` with the prompt decided by the caller (`refresh` never prompts).
pub(crate) fn get_token_with(req: &TokenRequest, prompt: Option<Prompt>) -> Result<Credential> {
    // ENTRA_TOKEN_AGENT: the agent's profiles, cache and sign-ins answer, never ours.
    if let Some(socket) = crate::agent::from_env() {
        // A caller that never prompts (`refresh`, `status --check`) never makes the agent
        // start a sign-in on its terminal either.
        if prompt == Some(Prompt::Never) && req.prompts {
            return crate::agent::client::get_token(&socket, &TokenRequest { prompts: false, ..req.clone() });
        }
        return crate::agent::client::get_token(&socket, req);
    }
    get_token_resolved(req, resolve(req)?, prompt)
}

/// `resolve` for a front end that also reads the profile (az, azd), or None when the
/// token agent answers (ENTRA_TOKEN_AGENT): its profiles are not ours to read.
pub(crate) fn resolve_here(req: &TokenRequest) -> Option<Result<Resolved>> {
    if crate::agent::from_env().is_some() { None } else { Some(resolve(req)) }
}

/// `get_token` for a request resolved on this machine (a front end that reads the
/// profile, or the token agent answering its client): the layers below the agent.
pub(crate) fn get_token_resolved(req: &TokenRequest, r: Resolved, prompt: Option<Prompt>) -> Result<Credential> {
    // Docker and ACR: the Entra token is traded at the registry, behind the broker, so no
    // codec does network and the token agent can answer with the registry's token. The
    // exchange is given the inner layers to get that Entra token from.
    match r.binding.registry().map(str::to_string) {
        Some(registry) => crate::acr::credential(req, &registry, r, |entra, r| waiting_for_login(entra, r, prompt)),
        None => waiting_for_login(req, r, prompt),
    }
}

/// The core's answer; when it needs a sign-in nobody here can give and the request may
/// wait, the wait for a `login` elsewhere (which asks the core again).
fn waiting_for_login(req: &TokenRequest, r: Resolved, prompt: Option<Prompt>) -> Result<Credential> {
    let wait = crate::login_wait::duration(req, &r.profile)?;
    match (crate::tokens::get(req, r, prompt), wait) {
        (Err(e @ Error::InteractionRequired { .. }), Some(limit)) => crate::login_wait::wait(req, e, limit),
        (result, _) => result,
    }
}

/// Removes the cached access token for a request, under its lock, when it is the one the
/// server rejected (`rejected`: its `fingerprint`; None when the caller did not say which).
/// Under ENTRA_TOKEN_AGENT the agent drops its own. True when something was removed.
pub(crate) fn forget(req: &TokenRequest, rejected: Option<&str>) -> Result<bool> {
    if let Some(socket) = crate::agent::from_env() {
        return crate::agent::client::forget(&socket, req, rejected);
    }
    forget_resolved(req, resolve(req)?, rejected)
}

/// `forget` for a request already resolved here (the token agent resolves it against its
/// policy first): a registry's token is the core's entry like any other.
pub(crate) fn forget_resolved(req: &TokenRequest, r: Resolved, rejected: Option<&str>) -> Result<bool> {
    crate::tokens::forget(req, r, rejected)
}
