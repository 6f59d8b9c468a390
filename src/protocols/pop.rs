//! The PoP step the front ends share (`get-token --pop-enabled`, the native protocol's
//! `"token_type":"pop"`, kubectl's `--pop-enabled`): the profile's PoP key, a token bound
//! to it through the broker (one gate, one cache shape: cached under the key's id), and a
//! new signed HTTP request over it, which is what the caller gets and nothing stores.

use crate::broker::{self, Credential, TokenRequest};
use crate::error::Result;
use crate::oauth::Binding;
use crate::pop::{KeyPair, Shr};
use crate::secret::Secret;

/// How long an SHR is offered for (its `expires_on`): resource servers accept one for a
/// few minutes after its `ts`, so a caller that keeps answers (client-go) asks again well within.
pub(crate) const SHR_LIFETIME: i64 = 300;

/// The SHR for `req` and `shr` as the credential's token (`token_type` `pop`), good for
/// [`SHR_LIFETIME`] or until the token expires, whichever is first.
pub(crate) fn credential(req: &TokenRequest, shr: &Shr) -> Result<Credential> {
    // Through the token agent (ENTRA_TOKEN_AGENT) the key is still this machine's: only its
    // public half goes to the agent, which answers with a token bound to it; the SHR is
    // signed here. The agent's profiles are not ours: a key of the name asked for.
    let agent = crate::agent::from_env().is_some();
    let (name, storage) = match crate::config::resolve(req.profile.as_deref()) {
        Ok(p) if !agent && p.flow == crate::config::FlowKind::ManagedIdentity => return Err(crate::flows::managed_identity_cannot_get(&p.name, "a PoP token")),
        Ok(p) => (p.name, p.storage),
        Err(_) if agent => (req.profile.clone().unwrap_or_else(|| "default".into()), crate::config::Storage::Auto),
        Err(e) => return Err(e),
    };
    // The key is no token: it is kept even under --no-cache, or bound tokens could never be reused.
    let cache = crate::cache::Cache::open(crate::cache::default_dir()?)?;
    let key = KeyPair::for_profile(&cache, &name, storage)?;
    let req = TokenRequest { binding: Binding::Pop(key.public.clone()), ..req.clone() };
    let mut c = broker::get_token(&req)?;
    let now = crate::clock::now();
    c.access_token = Secret::new(key.sign(c.access_token.expose(), shr, now)?);
    c.expires_on = c.expires_on.min(now + SHR_LIFETIME);
    Ok(c)
}
