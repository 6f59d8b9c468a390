//! The cache-and-acquire core every token passes, whatever protocol it arrived in and
//! whatever wraps it: cache lookup → per-key lock → re-check → acquire through the
//! profile's flow → store → answer. It calls nothing above it: the token agent, ACR's
//! exchange and the wait for a login are layers around it (`broker` composes them). The
//! cached path reads the config and one cache file; it builds no HTTP client and reads
//! no secret.

use crate::authority::Target;
use crate::cache::{self, Cache};
use crate::clock::{self, Deadline};
use crate::config::{self, FlowKind, Profile};
use crate::error::{Error, Result};
use crate::flows::identity::{self, Identity};
use crate::flows::{self, FlowCtx, Prompt};
use crate::http::Http;
use crate::log::{trace, warn};
use crate::oauth::{Binding, TokenReply};
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::io::IsTerminal;
use std::time::Duration;

pub(crate) use crate::oauth::DEFAULT_MIN_VALIDITY;
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The resource when neither the request nor the profile names one (as `az` does).
pub(crate) const DEFAULT_RESOURCE: &str = "https://management.azure.com/";

/// One request for a token, the same whatever front end it came from.
#[derive(Debug, Clone)]
pub(crate) struct TokenRequest {
    pub profile: Option<String>,
    pub resource: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub tenant: Option<String>,
    pub flow: Option<String>,
    pub min_validity: i64,
    /// Skip the cache read (but store the new token).
    pub force_refresh: bool,
    /// Neither read nor write the cache.
    pub no_cache: bool,
    pub claims: Option<String>,
    pub timeout: Duration,
    /// The front end can let a person answer a prompt (on stderr).
    pub prompts: bool,
    /// The URL a tool asked about, when the token agent picks the profile (its `urls`);
    /// `resource` then holds the protocol's default resource.
    pub url: Option<String>,
    /// With nobody to answer a prompt, wait this long for a `login` elsewhere (else the profile's `wait_for_login`).
    pub wait_for_login: Option<Duration>,
    /// With `url`: the URL is a Docker registry as Docker named it; the side holding the
    /// profiles (this machine, or the token agent's) decides who claims it and whether it
    /// is an Azure Container Registry.
    pub docker: bool,
    /// What the token is bound to: a bearer token (the default), an SSH certificate or PoP
    /// token for a public key, or a registry (`Binding::Registry`: the answer is that Azure
    /// Container Registry's refresh token from its exchange of this request's Entra token,
    /// `crate::acr`). Part of the cache binding; every new answer passes `Binding::check`.
    pub binding: Binding,
    /// `az --subscription S`: the subscription whose account answers (`protocols::az`
    /// routes it; the token agent routes it on its side with the same function).
    pub subscription: Option<String>,
}

impl Default for TokenRequest {
    fn default() -> Self {
        TokenRequest {
            profile: None,
            resource: None,
            scopes: None,
            tenant: None,
            flow: None,
            min_validity: DEFAULT_MIN_VALIDITY,
            force_refresh: false,
            no_cache: false,
            claims: None,
            timeout: DEFAULT_TIMEOUT,
            prompts: true,
            url: None,
            wait_for_login: None,
            docker: false,
            binding: Binding::Bearer,
            subscription: None,
        }
    }
}

/// The answer every front end formats in its own way.
#[derive(Debug, Clone)]
pub(crate) struct Credential {
    pub access_token: Secret<String>,
    pub token_type: String,
    pub expires_on: i64,
    pub profile: String,
    pub tenant_id: Option<String>,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub resource: Option<String>,
    pub account: Option<String>,
    pub from_cache: bool,
}

#[cfg(test)]
impl Credential {
    /// A credential for the codecs' unit tests: `token` until `expires_on`, profile `p`,
    /// client `c`, bearer, not from the cache.
    pub(crate) fn sample(token: &str, expires_on: i64) -> Credential {
        Credential {
            access_token: Secret::new(token.to_string()),
            token_type: "Bearer".into(),
            expires_on,
            profile: "p".into(),
            tenant_id: None,
            client_id: "c".into(),
            scopes: vec![],
            resource: None,
            account: None,
            from_cache: false,
        }
    }
}

/// An access token on disk.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TokenEntry {
    pub v: u32,
    pub access_token: Secret<String>,
    pub token_type: String,
    pub expires_on: i64,
    #[serde(default)]
    pub refresh_on: Option<i64>,
    pub scopes: Vec<String>,
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub tenant_id: Option<String>,
    #[serde(default)]
    pub account: Option<String>,
    /// The person's home account (`uid.utid` from client_info), for tokens of people: the
    /// exact way to tell whose a token is, where `account` names may differ by tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_account_id: Option<String>,
    pub profile: String,
    pub authority: String,
    pub client_id: String,
    pub identity: String,
    pub cached_at: i64,
    /// What the entry was minted for; a read serves it only to that request (an entry
    /// without one, from before it was recorded, is a miss).
    #[serde(default)]
    pub bound: Option<cache::Binding>,
}

/// A request resolved against its profile: what the broker and the flows work on.
pub(crate) struct Resolved {
    pub profile: Profile,
    pub target: Target,
    /// Whose token this is, after every input was applied (`flows::identity`).
    pub identity: Identity,
    /// What a token for this request is minted for (stored in its entry, compared on read).
    pub bound: cache::Binding,
    /// `bound`'s file name in the cache.
    pub key: String,
    /// What the request asks the token to be bound to (the flows send it; `bound` records it).
    pub binding: Binding,
    /// The cache directory resolving found (already checked), so the lookup does not open
    /// it again; None under `--no-cache` or before it exists.
    pub cache: Option<Cache>,
}

impl Resolved {
    /// Names the identity again, after something that may have changed it (a sign-in
    /// links the profile to its person): the token is stored under whose it is.
    pub(crate) fn reidentify(&mut self, cache: Option<&Cache>) -> Result<()> {
        self.identity = identity::of(&self.profile, cache)?;
        self.rebind();
        Ok(())
    }

    /// Binds the request to its (possibly renamed) identity and target again.
    pub(crate) fn rebind(&mut self) {
        self.bound = self.identity.binding(&self.target, &self.binding);
        self.key = self.bound.name();
    }

    /// The same request (profile, target, identity) for a token bound as `binding`: the
    /// Entra token a registry's token is exchanged for is the registry request's, bearer.
    pub(crate) fn with_binding(&self, binding: Binding) -> Resolved {
        let bound = self.identity.binding(&self.target, &binding);
        let key = bound.name();
        Resolved { profile: self.profile.clone(), target: self.target.clone(), identity: self.identity.clone(), bound, key, binding, cache: self.cache.clone() }
    }
}

/// Profile, target, identity and cache key for a request. Reads the config, and what
/// `flows::identity` reads (az's profile file, the person's account link); no network,
/// no secret. `--tenant` on a source that cannot honour it is refused here.
pub(crate) fn resolve(req: &TokenRequest) -> Result<Resolved> {
    let mut profile = config::resolve(req.profile.as_deref())?;
    if let Some(t) = req.tenant.as_deref().filter(|t| !t.is_empty()) {
        profile = profile.with_tenant(t)?;
    }
    if let Some(f) = req.flow.as_deref() {
        profile.flow = FlowKind::parse(f)?;
    }
    let target = target_for(req, &profile)?;
    let cache = if req.no_cache { None } else { existing_cache() };
    let identity = identity::of(&profile, cache.as_ref())?;
    let bound = identity.binding(&target, &req.binding);
    let key = bound.name();
    Ok(Resolved { profile, target, identity, bound, key, binding: req.binding.clone(), cache })
}

/// The cache directory when it already exists (resolving never creates it).
pub(crate) fn existing_cache() -> Option<Cache> {
    cache::default_dir().ok().and_then(|d| Cache::open_existing(&d))
}

fn target_for(req: &TokenRequest, profile: &Profile) -> Result<Target> {
    // An SSH certificate is for Entra's SSH service of the profile's cloud, nothing else.
    if let Binding::SshCert(_) = req.binding {
        if req.resource.is_some() || req.scopes.as_ref().is_some_and(|s| !s.is_empty()) {
            return Err(Error::bad_input(format!("an {} is for Entra's SSH service only: give no resource or scopes with it", req.binding.token_type())));
        }
        return Target::from_scopes(&[crate::authority::ssh_cert_scope(&profile.authority.host)]);
    }
    if let Some(scopes) = req.scopes.as_ref().filter(|s| !s.is_empty()) {
        if req.resource.is_some() {
            return Err(Error::bad_input("give either a resource or scopes, not both"));
        }
        return Target::from_scopes(scopes);
    }
    if let Some(r) = &req.resource {
        return Target::from_resource(r);
    }
    if let Some(scopes) = profile.settings.scopes.as_ref().filter(|s| !s.is_empty()) {
        return Target::from_scopes(scopes);
    }
    if let Some(r) = &profile.settings.resource {
        return Target::from_resource(r);
    }
    trace!(1, "no resource given; using {DEFAULT_RESOURCE}");
    Target::from_resource(DEFAULT_RESOURCE)
}

/// Opens the cache for a request, or None under `--no-cache`.
pub(crate) fn open_cache(req: &TokenRequest) -> Result<Option<Cache>> {
    if req.no_cache {
        return Ok(None);
    }
    Cache::open_or_skip(cache::default_dir()?)
}

/// The core: serve `r` from the cache when fresh, else lock its key, look again, acquire
/// through the profile's flow and store. It knows no agent, registry or wait: those wrap
/// it from outside (`broker`).
pub(crate) fn get(req: &TokenRequest, r: Resolved, prompt: Option<Prompt>) -> Result<Credential> {
    get_with(req, r, prompt, flows::acquire)
}

/// `get` with the acquire step given: the one loop (lookup → lock → re-check → acquire →
/// gate → store) for every token type. The profile's flow is `get`'s step; ACR's is "the
/// Entra token from the layers inside, then the registry's exchange" (`crate::acr`),
/// handed in from above so the core calls nothing above it.
pub(crate) fn get_with(req: &TokenRequest, r: Resolved, prompt: Option<Prompt>, acquire: impl FnOnce(&FlowCtx) -> Result<TokenReply>) -> Result<Credential> {
    let cache = match &r.cache {
        Some(c) => Some(c.clone()),
        None => open_cache(req)?,
    };
    let now = clock::now();
    let mut stale: Option<TokenEntry> = None;
    match &cache {
        Some(c) if !req.force_refresh && req.claims.is_none() => match fresh(c, &r.key, &r.bound, req.min_validity, now)? {
            Lookup::Fresh(e) => {
                trace!(1, "cache hit {} ({}s left)", r.key, e.expires_on - now);
                return Ok(credential_from_entry(e, &r.profile.name, true));
            }
            Lookup::RefreshDue(e) => {
                trace!(1, "cache hit {} but past its refresh time; refreshing early", r.key);
                stale = Some(e);
            }
            Lookup::Miss(why) => trace!(1, "cache miss {}: {why}", r.key),
        },
        Some(_) if req.force_refresh => trace!(1, "cache skipped: a new token was forced"),
        Some(_) => trace!(1, "cache skipped: a claims challenge needs a new token"),
        None => trace!(1, "cache off (--no-cache)"),
    }
    let deadline = Deadline::after(req.timeout);
    // Hold the per-key lock across re-check → acquire → store.
    let _lock = match &cache {
        Some(c) => match c.lock(&r.key, deadline.remaining()) {
            Ok(l) => Some(l),
            Err(e @ Error::Timeout { .. }) => return Err(e),
            Err(e) => {
                warn!("{}; continuing without the cache lock", crate::error::one_line(&e));
                None
            }
        },
        None => None,
    };
    // A `logout` from here on leaves nothing this fetch gets in the cache (`store`).
    let began = cache.as_ref().and_then(Cache::sign_out_generation);
    if let (Some(c), false, None) = (&cache, req.force_refresh, &req.claims)
        && let Lookup::Fresh(e) = fresh(c, &r.key, &r.bound, req.min_validity, clock::now())?
    {
        trace!(1, "another process stored {} while we waited", r.key);
        return Ok(credential_from_entry(e, &r.profile.name, true));
    }
    let http = Http::new();
    let prompt = prompt.unwrap_or_else(|| prompt_for(req, &r.profile));
    let ctx = FlowCtx { profile: &r.profile, target: &r.target, http: &http, deadline, claims: req.claims.as_deref(), cache: cache.as_ref(), prompt, binding: &r.binding };
    trace!(1, "acquiring {} through flow {} for {}", r.binding.a_kind(), r.profile.flow.name(), r.target.key());
    let reply = match acquire(&ctx).and_then(|reply| bound_as_asked(&r.binding, reply)) {
        Ok(reply) => reply,
        Err(e) => {
            if let Some(entry) = stale.filter(|s| s.expires_on - clock::now() > req.min_validity) {
                warn!("early refresh failed ({}); serving the cached token", crate::error::one_line(&e));
                return Ok(credential_from_entry(entry, &r.profile.name, true));
            }
            return Err(e);
        }
    };
    // A first sign-in links the profile to its person: store under whose the token is.
    let mut r = r;
    r.reidentify(cache.as_ref())?;
    let entry = entry_from_reply(&r, reply);
    let stored = cache.as_ref().map(|c| store(c, &r, &entry, began.as_deref()));
    if let Some(Err(e)) = stored {
        warn!("could not store the token ({}); answering anyway", crate::error::one_line(&e));
    }
    Ok(credential_from_entry(entry, &r.profile.name, false))
}

/// Stores a fetched entry under its key (the caller holds the key's lock) unless a
/// `logout` ran since the fetch began (`began`: the sign-out generation then): logout
/// promised that nothing of what it signed out stays cached. Written first and checked
/// after: logout starts its generation before it removes the tokens, so either its
/// removal comes after our write and takes the entry, or our check sees the generation
/// and takes it back.
fn store(c: &Cache, r: &Resolved, entry: &TokenEntry, began: Option<&str>) -> Result<()> {
    let signed_out = || c.sign_out_generation().as_deref() != began;
    if signed_out() {
        trace!(1, "a logout ran while the token was fetched; not caching it");
        return Ok(());
    }
    // An access token can simply be fetched again; a refresh token (ACR's) is sealed.
    if r.bound.sealed() { c.write_sealed(&r.key, entry) } else { c.write_refetchable(&r.key, entry) }?;
    if signed_out() {
        trace!(1, "a logout ran while the token was stored; removing it");
        c.remove(&r.key)?;
    }
    Ok(())
}

/// Per-key lock → acquire → store for a caller that wants a new token whatever the cache
/// holds (`login`: a person signs in now): `get`'s miss path without the re-check.
/// `acquire` gets the reply; `rekey` then names whose the token is, still under the lock
/// (a sign-in links the profile to its person; `login` drops the previous person's tokens
/// there). The entry is stored under the new key (a failed write is only a warning: the
/// sign-in happened) and returned.
pub(crate) fn acquire_locked(
    cache: &Cache,
    r: &mut Resolved,
    deadline: Deadline,
    prompt: Prompt,
    claims: Option<&str>,
    acquire: impl FnOnce(&FlowCtx) -> Result<TokenReply>,
    rekey: impl FnOnce(&mut Resolved) -> Result<()>,
) -> Result<TokenEntry> {
    let _lock = cache.lock(&r.key, deadline.remaining())?;
    let http = Http::new();
    let ctx = FlowCtx { profile: &r.profile, target: &r.target, http: &http, deadline, claims, cache: Some(cache), prompt, binding: &r.binding };
    let reply = bound_as_asked(&r.binding, acquire(&ctx)?)?;
    rekey(r)?;
    let entry = entry_from_reply(r, reply);
    if let Err(e) = if r.bound.sealed() { cache.write_sealed(&r.key, &entry) } else { cache.write(&r.key, &entry) } {
        warn!("could not store the token ({})", crate::error::one_line(&e));
    }
    Ok(entry)
}

/// Removes the cached access token for a resolved request, under its lock, when it is
/// the one the server rejected (`rejected`: its `fingerprint`; None when the caller did
/// not say which). True when something was removed.
pub(crate) fn forget(req: &TokenRequest, r: Resolved, rejected: Option<&str>) -> Result<bool> {
    let Some(cache) = open_cache(req)? else { return Ok(false) };
    let _lock = cache.lock(&r.key, req.timeout)?;
    let Some(entry) = read_entry(&cache, &r.key, &r.bound)?.filter(|e| r.bound.admits(e.bound.as_ref(), &r.key)) else { return Ok(false) };
    if rejected.is_some_and(|fp| fp != fingerprint(entry.access_token.expose())) {
        trace!(1, "the rejected credential is not our cached token; keeping it");
        return Ok(false);
    }
    cache.remove(&r.key)
}

/// A token's SHA-256 in hex: how a rejected token is named without sending it anywhere
/// (git's `erase` through the token agent).
pub(crate) fn fingerprint(token: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Removes cached tokens (access tokens, registries' refresh tokens) that `select`
/// selects; returns how many. An entry that does not say what it was stored for, or is
/// not under its own name, says nothing `select` could trust: it goes too.
pub(crate) fn forget_tokens(cache: &Cache, select: impl Fn(&TokenEntry) -> bool) -> Result<usize> {
    let mut n = 0;
    for name in cache.list("at-")? {
        if let Some(e) = cache.read_sealed::<TokenEntry>(&name)?
            && (!under_own_name(&e, &name) || select(&e))
            && cache.remove(&name)?
        {
            n += 1;
        }
    }
    Ok(n)
}

/// Could `e` answer a request of a profile that is `id` (`resolve`'s identity)? Its
/// binding names the same authority, client, principal, endpoint and client capabilities,
/// in any tenant (a request may name its tenant) and for any target or token type. Two
/// profiles with one identity share their entries; `logout` of either removes them.
pub(crate) fn bound_to_identity(e: &TokenEntry, id: &Identity) -> bool {
    e.bound.as_ref().is_some_and(|b| b.authority == id.authority && b.client_id == id.client_id && b.identity == id.who && b.endpoint == id.endpoint_name() && b.capabilities == id.capabilities)
}

/// Removes the registry tokens of the shape before the core stored them (`acr-*.json`):
/// no read serves them any more. Returns how many.
pub(crate) fn forget_old_registry_tokens(cache: &Cache) -> Result<usize> {
    let mut n = 0;
    for name in cache.list("acr-")? {
        n += usize::from(cache.remove(&name)?);
    }
    Ok(n)
}

/// The cached tokens (access tokens, registries' refresh tokens: one listing), each under
/// the name its binding gives it (for `status`); an entry elsewhere (renamed, copied, from
/// before bindings) is left out, with a `-v` line.
pub(crate) fn cached_tokens(cache: &Cache) -> Result<Vec<TokenEntry>> {
    let mut out = Vec::new();
    for name in cache.list("at-")? {
        if let Some(e) = cache.read_sealed::<TokenEntry>(&name)?.filter(|e| under_own_name(e, &name)) {
            out.push(e);
        }
    }
    Ok(out)
}

fn under_own_name(e: &TokenEntry, name: &str) -> bool {
    let own = e.bound.as_ref().is_some_and(|b| b.name() == name);
    if !own {
        trace!(1, "cache entry {name} is not under the name of what it was stored for; ignoring it");
    }
    own
}

/// Decides whether a flow may show a prompt on stderr.
pub(crate) fn prompt_for(req: &TokenRequest, profile: &Profile) -> Prompt {
    if !req.prompts || !profile.allows_prompts() {
        Prompt::Never
    } else if std::io::stderr().is_terminal() {
        Prompt::Allowed
    } else {
        Prompt::Never
    }
}

pub(crate) enum Lookup {
    Fresh(TokenEntry),
    /// Valid, but past its refresh_on: try a new one, fall back to this.
    RefreshDue(TokenEntry),
    Miss(&'static str),
}

/// The entry at `key`, read as what `bound` says it holds: an access token as it is (the
/// cached path reads no secret), a refresh token through its seal.
fn read_entry(cache: &Cache, key: &str, bound: &cache::Binding) -> Result<Option<TokenEntry>> {
    if bound.sealed() { cache.read_sealed(key) } else { cache.read(key) }
}

/// The entry at `key` when it was stored for `bound` and is fresh enough.
pub(crate) fn fresh(cache: &Cache, key: &str, bound: &cache::Binding, min_validity: i64, now: i64) -> Result<Lookup> {
    let Some(entry) = read_entry(cache, key, bound)? else {
        return Ok(Lookup::Miss("no entry"));
    };
    if entry.v != 1 {
        return Ok(Lookup::Miss("entry from another version"));
    }
    if !bound.admits(entry.bound.as_ref(), key) {
        return Ok(Lookup::Miss("entry stored for another request"));
    }
    if entry.expires_on - now <= min_validity {
        return Ok(Lookup::Miss("expires too soon"));
    }
    if entry.refresh_on.is_some_and(|r| now >= r) {
        return Ok(Lookup::RefreshDue(entry));
    }
    Ok(Lookup::Fresh(entry))
}

/// The gate every new answer passes: the token type (and key) the request asked for, or
/// an authentication error naming what came instead (a source that cannot bind answered
/// with a bearer token, a bearer request got something else, an exchange's answer came
/// for a request that is not a registry's). Cached entries pass `cache::Binding::admits`,
/// which compares the same type, key id and registry.
fn bound_as_asked(binding: &Binding, reply: TokenReply) -> Result<TokenReply> {
    match binding.check(&reply.token_type, binding.key_id()) {
        Ok(()) => Ok(reply),
        Err(why) => Err(Error::auth(format!("the token source's answer is not what was asked for: {why}"), Some("nothing was stored; use a profile whose source can issue it".into()))),
    }
}

pub(crate) fn entry_from_reply(r: &Resolved, reply: TokenReply) -> TokenEntry {
    let claims = crate::jwt::account_claims(reply.access_token.expose()).unwrap_or_default();
    let tenant_id = claims.tid.or_else(|| (!r.profile.authority.is_multi_tenant()).then(|| r.profile.authority.tenant.clone()));
    let account = claims.upn.or(claims.preferred_username).or(claims.unique_name);
    let home_account_id = reply.client_info.as_deref().and_then(crate::rt_store::home_account_of);
    // A registry's token is for the registry (its binding names it), not for the target
    // of the Entra token it was exchanged for.
    let registry = r.bound.registry.is_some();
    TokenEntry {
        v: 1,
        access_token: reply.access_token,
        token_type: reply.token_type,
        expires_on: reply.expires_on,
        refresh_on: reply.refresh_on,
        scopes: if registry { Vec::new() } else { r.target.scopes.clone() },
        resource: if registry { None } else { r.target.resource.clone() },
        tenant_id,
        account,
        home_account_id,
        profile: r.profile.name.clone(),
        authority: r.profile.authority.host.clone(),
        // Whom the token was issued to, when it says: a token az minted for its service
        // principal is that principal's, not the profile's (Azure CLI) client's.
        client_id: claims.appid.or(claims.azp).unwrap_or_else(|| r.profile.client_id.clone()),
        identity: r.identity.who.clone(),
        cached_at: clock::now(),
        bound: Some(r.bound.clone()),
    }
}

/// The answer for `profile` (a cached entry may have been stored by another profile with
/// the same authority, tenant, client and identity; the answer names the one asked).
pub(crate) fn credential_from_entry(e: TokenEntry, profile: &str, from_cache: bool) -> Credential {
    Credential {
        access_token: e.access_token,
        token_type: e.token_type,
        expires_on: e.expires_on,
        profile: profile.to_string(),
        tenant_id: e.tenant_id,
        client_id: e.client_id,
        scopes: e.scopes,
        resource: e.resource,
        account: e.account,
        from_cache,
    }
}
