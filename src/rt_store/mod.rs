//! Signed-in people. A refresh token belongs to an account (authority host, tenant,
//! client, home account id), never to a resource, so one sign-in serves every resource
//! the account may reach. A profile links to the account it signed in as (`acct-*.json`);
//! the refresh token itself sits behind `RtStore`, so an OS keyring can hold it instead
//! of a file (`storage = keyring`) without the flows noticing. A person's refresh token
//! is not bound to the tenant it was issued in (MSAL keys it by home account, cloud and
//! client only), so `elsewhere` finds one from another tenant when a profile's own has none.

pub(crate) mod keyring;

use crate::cache::{self, Cache, Lock};
use crate::clock;
use crate::config::Profile;
use crate::error::Result;
use crate::oauth::TokenReply;
use crate::secret::Secret;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// Which refresh token: the account it was issued to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AccountKey {
    /// The authority host, e.g. `https://login.microsoftonline.com`.
    pub authority: String,
    /// The tenant the profile signs in through (`organizations`, a GUID, a domain).
    pub tenant: String,
    pub client_id: String,
    /// `uid.utid` from client_info, or `oid.tid` from the tokens.
    pub home_account_id: String,
}

impl AccountKey {
    /// `rt-<hash>.json`: the refresh token's name in a store.
    pub(crate) fn name(&self) -> String {
        cache::key_name(
            "rt",
            &["1", &self.authority.to_ascii_lowercase(), &self.tenant.to_ascii_lowercase(), &self.client_id.to_ascii_lowercase(), &self.home_account_id.to_ascii_lowercase()],
        )
    }
}

/// A refresh token as a store keeps it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredRt {
    pub v: u32,
    pub refresh_token: Secret<String>,
    /// `"1"`: works for the family of Microsoft first-party clients.
    #[serde(default)]
    pub foci: Option<String>,
    pub key: AccountKey,
    pub updated_at: i64,
}

/// Where refresh tokens live. The file store is the default; a keyring store slots in
/// beside it (`storage = keyring`). Every call runs under the account's lock.
pub(crate) trait RtStore {
    fn load(&self, key: &AccountKey) -> Result<Option<StoredRt>>;
    fn save(&self, rt: &StoredRt) -> Result<()>;
    /// True when something was removed.
    fn remove(&self, key: &AccountKey) -> Result<bool>;
    /// For `status` and `logout` messages: where the tokens are kept.
    fn describe(&self) -> String;
}

/// Refresh tokens as 0600 files in the cache directory, written through `Cache`.
pub(crate) struct FileRtStore<'a> {
    pub cache: &'a Cache,
}

impl RtStore for FileRtStore<'_> {
    fn load(&self, key: &AccountKey) -> Result<Option<StoredRt>> {
        let file = self.cache.read::<serde_json::Value>(&key.name())?;
        Ok(file.and_then(crate::at_rest::from_file::<StoredRt>).filter(|r| r.v == 1 && r.key == *key && !r.refresh_token.expose().is_empty()))
    }
    /// Sealed with DPAPI on Windows (`at_rest`); a private file elsewhere.
    fn save(&self, rt: &StoredRt) -> Result<()> {
        self.cache.write(&rt.key.name(), &crate::at_rest::to_file(rt)?)
    }
    fn remove(&self, key: &AccountKey) -> Result<bool> {
        self.cache.remove(&key.name())
    }
    fn describe(&self) -> String {
        format!("file in {}", self.cache.dir().display())
    }
}

/// The store a profile's refresh tokens go to (`storage`: auto, keyring, file).
pub(crate) fn store_for<'a>(cache: &'a Cache, profile: &Profile) -> Result<Box<dyn RtStore + 'a>> {
    keyring::store_for(cache, profile.storage)
}

/// A profile's link to the account it signed in as. Holds no secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AccountLink {
    pub v: u32,
    pub profile: String,
    pub key: AccountKey,
    /// What a person calls the account: preferred_username / upn.
    #[serde(default)]
    pub username: Option<String>,
    /// The tenant id the account's tokens carry.
    #[serde(default)]
    pub tenant_id: Option<String>,
    pub signed_in_at: i64,
}

/// `acct-<hash>.json`: one per (authority, tenant, client, profile).
pub(crate) fn link_name(profile: &Profile) -> String {
    link_name_of(&profile.authority.host, &profile.authority.tenant, &profile.client_id, &profile.name)
}

fn link_name_of(host: &str, tenant: &str, client_id: &str, profile: &str) -> String {
    cache::key_name("acct", &["1", &host.to_ascii_lowercase(), &tenant.to_ascii_lowercase(), &client_id.to_ascii_lowercase(), profile])
}

/// The profile's link, when the file under its name was written for it: the profile, at
/// its authority, tenant and client (a link renamed onto another's name is no link).
pub(crate) fn linked(cache: &Cache, profile: &Profile) -> Result<Option<AccountLink>> {
    let name = link_name(profile);
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    Ok(cache.read::<AccountLink>(&name)?.filter(|l| l.v == 1).filter(|l| {
        let k = &l.key;
        let ours = l.profile == profile.name && same(&k.authority, &profile.authority.host) && same(&k.tenant, &profile.authority.tenant) && same(&k.client_id, &profile.client_id);
        if !ours {
            crate::log::trace!(1, "account link {name} was written for another profile or account; ignoring it");
        }
        ours
    }))
}

/// Every link in the cache (for `status` and `logout --all`), each under the name its
/// profile, authority, tenant and client give it (one renamed or copied is left out).
pub(crate) fn all_links(cache: &Cache) -> Result<Vec<(String, AccountLink)>> {
    let mut out = Vec::new();
    for name in cache.list("acct-")? {
        let own = |l: &AccountLink| link_name_of(&l.key.authority, &l.key.tenant, &l.key.client_id, &l.profile) == name;
        if let Some(l) = cache.read::<AccountLink>(&name)?.filter(|l| l.v == 1 && own(l)) {
            out.push((name, l));
        }
    }
    Ok(out)
}

/// The account's lock, held across load → refresh → save so two processes never spend
/// the same (rotating) refresh token. Taken after the access-token key's lock.
pub(crate) fn lock(cache: &Cache, key: &AccountKey, wait: std::time::Duration) -> Result<Lock> {
    cache.lock(&key.name(), wait)
}

/// Both accounts' locks, always in the same (name) order so two processes spending each
/// other's refresh token for their own tenant never wait on each other forever.
pub(crate) fn lock_pair(cache: &Cache, a: &AccountKey, b: &AccountKey, wait: std::time::Duration) -> Result<(Lock, Option<Lock>)> {
    let (first, second) = if a.name() <= b.name() { (a, b) } else { (b, a) };
    let l1 = lock(cache, first, wait)?;
    let l2 = if first.name() == second.name() { None } else { Some(lock(cache, second, wait)?) };
    Ok((l1, l2))
}

/// Links `profile` (at its request's tenant) to `key`, whose refresh token is stored.
pub(crate) fn link_to(cache: &Cache, profile: &Profile, key: AccountKey, username: Option<String>, tenant_id: Option<String>, signed_in_at: i64) -> Result<AccountLink> {
    let link = AccountLink { v: 1, profile: profile.name.clone(), key, username, tenant_id, signed_in_at };
    cache.write(&link_name(profile), &link)?;
    Ok(link)
}

/// Signed-in people whose refresh token the profile may spend in its own tenant.
#[derive(Debug)]
pub(crate) enum Elsewhere {
    /// Nobody signed in with this client in this cloud (or nobody the hint names).
    Nobody,
    /// One person: their links in any tenant, the latest sign-in first.
    One(Vec<AccountLink>),
    /// Several people and nothing to choose by: what they are called.
    Several(Vec<String>),
}

/// The profile's `login_hint`, else its `username`.
fn hint(profile: &Profile) -> Option<&str> {
    let s = &profile.settings;
    s.login_hint.as_deref().or(s.username.as_deref()).map(str::trim).filter(|h| !h.is_empty())
}

/// Accounts signed in with the profile's client at the profile's authority host, in any
/// tenant (`organizations`/`common` included), by any profile — the account cache MSAL and
/// az share per client — narrowed by, in this order: `person` (the
/// home account of the profile's own link), the profile's `login_hint`/`username`, the
/// people this profile itself signed in as. More than one person left is `Several`:
/// never a guess. A profile signed out with `logout -p` borrows nothing until it signs in.
pub(crate) fn elsewhere(cache: &Cache, profile: &Profile, person: Option<&str>) -> Result<Elsewhere> {
    if signed_out(cache, profile) {
        return Ok(Elsewhere::Nobody);
    }
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let mut links: Vec<AccountLink> = all_links(cache)?
        .into_iter()
        .map(|(_, l)| l)
        .filter(|l| same(&l.key.authority, &profile.authority.host) && (same(&l.key.client_id, &profile.client_id) || family(&l.key.client_id, &profile.client_id)))
        .collect();
    if let Some(p) = person {
        links.retain(|l| same(&l.key.home_account_id, p));
    } else if let Some(h) = hint(profile) {
        links.retain(|l| l.username.as_deref().is_some_and(|u| same(u, h)));
    } else {
        let mine: Vec<String> = links.iter().filter(|l| l.profile == profile.name).map(|l| l.key.home_account_id.to_ascii_lowercase()).collect();
        if !mine.is_empty() {
            links.retain(|l| mine.contains(&l.key.home_account_id.to_ascii_lowercase()));
        }
    }
    // The profile's own client first; a family member's sign-in only after it.
    let own_client = |l: &AccountLink| !same(&l.key.client_id, &profile.client_id);
    links.sort_by(|a, b| own_client(a).cmp(&own_client(b)).then_with(|| b.signed_in_at.cmp(&a.signed_in_at)).then_with(|| a.key.name().cmp(&b.key.name())));
    let mut seen = Vec::new();
    links.retain(|l| {
        let n = l.key.name();
        let new = !seen.contains(&n);
        seen.push(n);
        new
    });
    let mut people: Vec<(String, String)> = Vec::new();
    for l in &links {
        let id = l.key.home_account_id.to_ascii_lowercase();
        if !people.iter().any(|(p, _)| *p == id) {
            people.push((id, l.username.clone().unwrap_or_else(|| l.key.home_account_id.clone())));
        }
    }
    Ok(match people.len() {
        0 => Elsewhere::Nobody,
        1 => Elsewhere::One(links),
        _ => {
            let mut names: Vec<String> = people.into_iter().map(|(_, n)| n).collect();
            names.sort();
            Elsewhere::Several(names)
        }
    })
}

/// Microsoft's first-party public clients in the "family of client ids" (FOCI) that our
/// users sign in with: a refresh token Entra marks `foci: 1` for one of them is redeemed
/// by the others too (MSAL's family refresh token), so signing in with the Azure CLI's
/// client also serves a profile that uses Azure PowerShell's, and the other way round.
const FAMILY: &[&str] = &[crate::config::AZURE_CLI_CLIENT_ID, "1950a258-227b-4e31-a9cf-717495945fc2"];

/// Two different clients of the family.
pub(crate) fn family(a: &str, b: &str) -> bool {
    let member = |c: &str| FAMILY.iter().any(|f| f.eq_ignore_ascii_case(c));
    !a.eq_ignore_ascii_case(b) && member(a) && member(b)
}

/// How long a refused family borrow is remembered: Entra's answer for a client pair does
/// not change from call to call, but Microsoft may put a client back in the family.
const FAMILY_REFUSAL_TTL: i64 = 24 * 3600;

/// `foci-<hash>.json`, beside the refresh tokens: Entra refused to let `profile`'s client
/// redeem `lender`'s family refresh token at the profile's authority and tenant.
fn family_refusal_name(profile: &Profile, lender: &str) -> String {
    cache::key_name(
        "foci",
        &["1", &profile.authority.host.to_ascii_lowercase(), &profile.authority.tenant.to_ascii_lowercase(), &lender.to_ascii_lowercase(), &profile.client_id.to_ascii_lowercase()],
    )
}

#[derive(Serialize, Deserialize)]
struct FamilyRefusal {
    v: u32,
    lender_client_id: String,
    client_id: String,
    authority: String,
    tenant: String,
    /// The OAuth error and AADSTS codes Entra gave (no description: it may echo input).
    error: String,
    #[serde(default)]
    codes: Vec<u32>,
    refused_at: i64,
}

/// Entra refused (within the last day) to let the profile's client spend `lender`'s family
/// refresh token at the profile's tenant: skip the borrow without asking again.
pub(crate) fn family_refused(cache: &Cache, profile: &Profile, lender: &str) -> bool {
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    matches!(cache.read::<FamilyRefusal>(&family_refusal_name(profile, lender)),
        Ok(Some(r)) if r.v == 1 && (0..FAMILY_REFUSAL_TTL).contains(&(clock::now() - r.refused_at))
            && same(&r.lender_client_id, lender) && same(&r.client_id, &profile.client_id)
            && same(&r.authority, &profile.authority.host) && same(&r.tenant, &profile.authority.tenant))
}

/// Remembers that Entra refused the family borrow (see `family_refused`).
pub(crate) fn remember_family_refusal(cache: &Cache, profile: &Profile, lender: &str, error: &str, codes: &[u32]) -> Result<()> {
    let r = FamilyRefusal {
        v: 1,
        lender_client_id: lender.to_string(),
        client_id: profile.client_id.clone(),
        authority: profile.authority.host.clone(),
        tenant: profile.authority.tenant.clone(),
        error: error.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(64).collect(),
        codes: codes.iter().take(8).copied().collect(),
        refused_at: clock::now(),
    };
    cache.write(&family_refusal_name(profile, lender), &r)
}

/// `out-<hash>.json`: `logout -p P` leaves it so that P does not quietly go on with
/// another profile's sign-in; P's own next sign-in (or `logout --all`) removes it.
fn signed_out_name(profile: &Profile) -> String {
    cache::key_name("out", &["1", &profile.name])
}

pub(crate) fn signed_out(cache: &Cache, profile: &Profile) -> bool {
    matches!(cache.read::<serde_json::Value>(&signed_out_name(profile)), Ok(Some(v)) if v["profile"] == profile.name.as_str())
}

/// Who a token answer is for, from client_info (`{uid,utid}`), else the id token's or
/// the access token's `oid`/`tid`.
pub(crate) struct Who {
    pub home_account_id: String,
    pub username: Option<String>,
    pub tenant_id: Option<String>,
}

pub(crate) fn who(reply: &TokenReply) -> Who {
    let id_claims = reply.id_token.as_ref().and_then(|t| crate::jwt::decode(t.expose())).map(|(_, c)| c);
    let at_claims = crate::jwt::decode(reply.access_token.expose()).map(|(_, c)| c);
    let claim = |n: &str| {
        id_claims.as_ref().and_then(|c| crate::jwt::claim(c, n)).or_else(|| at_claims.as_ref().and_then(|c| crate::jwt::claim(c, n))).map(str::to_string)
    };
    let home_account_id = reply
        .client_info
        .as_deref()
        .and_then(home_account_of)
        .or_else(|| Some(format!("{}.{}", claim("oid")?, claim("tid")?)))
        .or_else(|| claim("sub"))
        .unwrap_or_else(|| "unknown".into());
    Who {
        home_account_id,
        username: claim("preferred_username").or_else(|| claim("upn")).or_else(|| claim("unique_name")).or_else(|| claim("email")),
        tenant_id: claim("tid"),
    }
}

/// The home account id (`uid.utid`) in a token answer's `client_info`, which Entra returns
/// for people only: the same person at every tenant, guests included.
pub(crate) fn home_account_of(client_info: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(client_info.trim().trim_end_matches('=')).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some(format!("{}.{}", v.get("uid")?.as_str()?, v.get("utid")?.as_str()?))
}

/// After a sign-in: stores the refresh token first, then links the profile to the
/// account. Returns the link. Without a refresh token in the answer, only the link.
pub(crate) fn remember(cache: &Cache, profile: &Profile, reply: &TokenReply) -> Result<AccountLink> {
    let w = who(reply);
    let key = AccountKey {
        authority: profile.authority.host.clone(),
        tenant: profile.authority.tenant.clone(),
        client_id: profile.client_id.clone(),
        home_account_id: w.home_account_id,
    };
    if let Some(rt) = &reply.refresh_token {
        let store = store_for(cache, profile)?;
        let _lock = lock(cache, &key, std::time::Duration::from_secs(10))?;
        store.save(&StoredRt { v: 1, refresh_token: rt.clone(), foci: reply.foci.clone(), key: key.clone(), updated_at: clock::now() })?;
    } else {
        crate::log::warn!("Entra sent no refresh token (was offline_access refused?); the next token will need a new sign-in");
    }
    let link = AccountLink { v: 1, profile: profile.name.clone(), key, username: w.username, tenant_id: w.tenant_id, signed_in_at: clock::now() };
    cache.write(&link_name(profile), &link)?;
    cache.remove(&signed_out_name(profile))?;
    Ok(link)
}

/// What `forget` did.
pub(crate) struct Forgotten {
    /// The profile's link at its own tenant, else one of its other tenants'.
    pub link: AccountLink,
    /// How many tenants the profile was linked in.
    pub tenants: usize,
    pub removed_rt: bool,
    /// Other profiles signed in as the same account: its refresh token stays for them.
    pub kept_for: Vec<String>,
}

/// After `profile` signed in as someone else (`now`, at its own tenant; `before`: who it
/// was there until now): its links in other tenants that name another person go, so the
/// profile is one person again and never mints the previous person's tokens elsewhere;
/// each such refresh token that no other profile is linked to goes too, as nothing could
/// reach it any more. Returns how many sign-ins were dropped.
pub(crate) fn drop_other_people(cache: &Cache, profile: &Profile, now: &AccountLink, before: Option<&AccountLink>) -> Result<usize> {
    let other = |k: &AccountKey| !k.home_account_id.eq_ignore_ascii_case(&now.key.home_account_id);
    let own = link_name(profile);
    let mut stale: Vec<(Option<String>, AccountKey)> =
        all_links(cache)?.into_iter().filter(|(n, l)| *n != own && l.profile == profile.name && other(&l.key)).map(|(n, l)| (Some(n), l.key)).collect();
    if let Some(b) = before.filter(|b| other(&b.key)) {
        stale.push((None, b.key.clone()));
    }
    if stale.is_empty() {
        return Ok(0);
    }
    let links = all_links(cache)?;
    let store = store_for(cache, profile)?;
    for (name, key) in &stale {
        release(cache, &*store, key, &links, &profile.name)?;
        if let Some(n) = name {
            cache.remove(n)?;
        }
    }
    Ok(stale.len())
}

/// A profile lets go of `key`: its refresh token is removed (under the account's lock)
/// unless another profile is linked to the same account, whose names are returned; true
/// in the first field when a token was removed.
fn release(cache: &Cache, store: &dyn RtStore, key: &AccountKey, links: &[(String, AccountLink)], profile: &str) -> Result<(bool, Vec<String>)> {
    let others: Vec<String> = links.iter().filter(|(_, l)| l.key == *key && l.profile != profile).map(|(_, l)| l.profile.clone()).collect();
    if !others.is_empty() {
        return Ok((false, others));
    }
    let _lock = lock(cache, key, std::time::Duration::from_secs(10))?;
    Ok((store.remove(key)?, others))
}

/// Removes a profile's links in every tenant, and each account's refresh token unless
/// another profile is linked to the same one, and keeps it from borrowing another
/// profile's sign-in until it signs in again. None when the profile was not signed in.
pub(crate) fn forget(cache: &Cache, profile: &Profile) -> Result<Option<Forgotten>> {
    cache.write(&signed_out_name(profile), &serde_json::json!({ "v": 1, "profile": profile.name, "signed_out_at": clock::now() }))?;
    let links = all_links(cache)?;
    let own = link_name(profile);
    let mut mine: Vec<&(String, AccountLink)> = links.iter().filter(|(_, l)| l.profile == profile.name).collect();
    mine.sort_by_key(|(n, _)| *n != own);
    let Some((_, first)) = mine.first() else {
        return Ok(None);
    };
    let (mut removed_rt, mut kept_for) = (false, Vec::new());
    let store = store_for(cache, profile)?;
    for (name, link) in &mine {
        let (removed, others) = release(cache, &*store, &link.key, &links, &profile.name)?;
        removed_rt |= removed;
        for o in others {
            if !kept_for.contains(&o) {
                kept_for.push(o);
            }
        }
        cache.remove(name)?;
    }
    Ok(Some(Forgotten { link: first.clone(), tenants: mine.len(), removed_rt, kept_for }))
}

/// Everyone signs out (`logout --all`): each account's refresh token through its own store
/// (a keyring holds no files) under the account's lock, then any refresh-token file left,
/// every sign-out marker (nobody's own sign-out needs remembering now) and every link.
/// Returns the links there were and how many refresh tokens were removed.
pub(crate) fn forget_all(cache: &Cache) -> Result<(Vec<AccountLink>, usize)> {
    let links = all_links(cache)?;
    let mut rts = 0;
    for (_, l) in &links {
        if let Ok(store) = crate::config::resolve(Some(&l.profile)).and_then(|p| store_for(cache, &p)) {
            let _lock = lock(cache, &l.key, std::time::Duration::from_secs(10))?;
            rts += store.remove(&l.key).unwrap_or(false) as usize;
        }
    }
    for name in cache.list("rt-")? {
        rts += cache.remove(&name)? as usize;
    }
    for name in cache.list("out-")? {
        cache.remove(&name)?;
    }
    // Every link file, also one not under its own name (which no read believes).
    for name in cache.list("acct-")? {
        cache.remove(&name)?;
    }
    Ok((links.into_iter().map(|(_, l)| l).collect(), rts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(client_info: Option<&str>) -> TokenReply {
        let claims = URL_SAFE_NO_PAD.encode(br#"{"oid":"o1","tid":"t1","upn":"ann@contoso.test"}"#);
        TokenReply {
            access_token: Secret::new(format!("e30.{claims}.sig")),
            token_type: "Bearer".into(),
            expires_on: 0,
            refresh_on: None,
            refresh_token: None,
            id_token: None,
            client_info: client_info.map(str::to_string),
            resource: None,
            foci: None,
        }
    }

    #[test]
    fn home_account_from_client_info_or_claims() {
        let ci = URL_SAFE_NO_PAD.encode(br#"{"uid":"u9","utid":"t9"}"#);
        let w = who(&reply(Some(&ci)));
        assert_eq!(w.home_account_id, "u9.t9");
        assert_eq!(w.username.as_deref(), Some("ann@contoso.test"));
        let w = who(&reply(Some("!!garbage")));
        assert_eq!(w.home_account_id, "o1.t1");
        assert_eq!(w.tenant_id.as_deref(), Some("t1"));
    }

    #[test]
    fn account_keys_differ_per_account_and_never_mention_a_resource() {
        let k = |h: &str| AccountKey { authority: "https://login.microsoftonline.com".into(), tenant: "organizations".into(), client_id: "c".into(), home_account_id: h.into() };
        assert_ne!(k("a.b").name(), k("c.d").name());
        assert_eq!(k("A.B").name(), k("a.b").name());
        assert!(k("a.b").name().starts_with("rt-"));
    }
}
