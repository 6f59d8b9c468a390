//! The refresh-token grant: a signed-in account's refresh token buys a token for any
//! resource it may reach, with no person involved — in the profile's own tenant, or, when
//! that holds none, the same person's from another tenant (one sign-in, every tenant, as
//! MSAL and az do). Runs under the account locks; a rotated refresh token is stored before
//! the answer goes back, and only a refresh token Entra calls dead is removed.

use crate::flows::{FlowCtx, user};
use crate::rt_store::{self, AccountKey, AccountLink, Elsewhere, RtStore, StoredRt};
use crate::cache::Cache;
use crate::clock;
use crate::error::{Error, Result, one_line};
use crate::log::{trace, warn};
use crate::oauth::TokenReply;
use crate::secret::Secret;

/// What the stored refresh token gave.
pub(crate) enum Refreshed {
    Reply(TokenReply),
    /// No account, or its refresh token is gone (signed out, or `--no-cache`).
    NotSignedIn,
    /// Entra no longer takes the refresh token (expired, revoked, password changed).
    Dead { link: AccountLink, why: Error },
    /// The refresh token is fine but Entra wants the person (MFA, consent, claims, an
    /// account not in this tenant). `link` is the account whose token was refused, which
    /// may be one signed in at another tenant.
    NeedsPerson { link: AccountLink, why: Error },
    /// Several people are signed in with this client elsewhere and the profile names none.
    Several(Vec<String>),
}

/// AADSTS codes that mean "this refresh token is finished": sign in again.
const DEAD_CODES: &[u32] = &[70043, 700082, 50173, 70008, 70000, 54005, 700084, 50132];
/// Codes that mean "a person must act" although the refresh token still works.
const PERSON_CODES: &[u32] = &[50076, 50079, 50158, 65001, 50072, 53003, 50097, 50074, 16000];
/// The account is not (or no longer) a member of this tenant: its token still works elsewhere.
const NOT_IN_TENANT_CODES: &[u32] = &[50020, 90072, 50034];

/// The refresh token itself is finished, wherever it is spent: only then is it removed.
/// A bare `invalid_grant` without a code (no Entra detail to go by) counts too.
pub(crate) fn is_dead(e: &Error) -> bool {
    e.aad().is_some_and(|a| a.codes.iter().any(|c| DEAD_CODES.contains(c)) || (a.error == "invalid_grant" && a.codes.is_empty()))
}

pub(crate) fn needs_person(e: &Error) -> bool {
    e.aad().is_some_and(|a| {
        matches!(a.error.as_str(), "interaction_required" | "consent_required" | "login_required") || a.codes.iter().any(|c| PERSON_CODES.contains(c) || NOT_IN_TENANT_CODES.contains(c))
    })
}

/// Tries the profile's signed-in account, then the same person's (or, for a profile that
/// never signed in, the one signed-in person's) refresh token from another tenant.
pub(crate) fn with_stored(ctx: &FlowCtx<'_>) -> Result<Refreshed> {
    let Some(cache) = ctx.cache else {
        return Ok(Refreshed::NotSignedIn);
    };
    let own = rt_store::linked(cache, ctx.profile)?;
    // Opened only when there is an account: an `auto` store probes the keyring.
    let mut store = None;
    let mut ended: Option<(AccountLink, Error)> = None;
    match &own {
        None => trace!(1, "profile '{}' has no signed-in account at tenant {}", ctx.profile.name, ctx.profile.authority.tenant),
        Some(link) => {
            let store = &**store.insert(rt_store::store_for(cache, ctx.profile)?);
            let _lock = rt_store::lock(cache, &link.key, ctx.deadline.remaining())?;
            match store.load(&link.key)? {
                None => trace!(1, "the account of profile '{}' has no refresh token", ctx.profile.name),
                Some(stored) => match spend(ctx, &stored, store, store, link)? {
                    Spent::Reply(r) => return Ok(Refreshed::Reply(r)),
                    // Its own link is always its own client's: no family borrow here.
                    Spent::Refused(why) | Spent::FamilyRefused(why) => return Ok(Refreshed::NeedsPerson { link: link.clone(), why }),
                    Spent::Dead(why) => ended = Some((link.clone(), why)),
                },
            }
        }
    }
    let person = own.as_ref().map(|l| l.key.home_account_id.clone());
    let not_signed_in = |ended: Option<(AccountLink, Error)>| match ended {
        Some((link, why)) => Refreshed::Dead { link, why },
        None => Refreshed::NotSignedIn,
    };
    let links = match rt_store::elsewhere(cache, ctx.profile, person.as_deref())? {
        Elsewhere::Nobody => return Ok(not_signed_in(ended)),
        Elsewhere::Several(names) => return Ok(Refreshed::Several(names)),
        Elsewhere::One(links) => links,
    };
    let store = match store {
        Some(s) => s,
        None => rt_store::store_for(cache, ctx.profile)?,
    };
    let to = |hid: &str| AccountKey {
        authority: ctx.profile.authority.host.clone(),
        tenant: ctx.profile.authority.tenant.clone(),
        client_id: ctx.profile.client_id.clone(),
        home_account_id: hid.to_string(),
    };
    for link in links {
        let target = to(&link.key.home_account_id);
        let other;
        let from: &dyn RtStore = match store_of(cache, &link, ctx) {
            Some(s) => {
                other = s;
                &*other
            }
            None => &*store,
        };
        let lender = &link.key.client_id;
        let cross_client = !lender.eq_ignore_ascii_case(&ctx.profile.client_id);
        if cross_client && rt_store::family_refused(cache, ctx.profile, lender) {
            trace!(1, "Entra refused client {lender}'s family refresh token for client {} at tenant {} lately; not asking again", ctx.profile.client_id, target.tenant);
            continue;
        }
        let _locks = rt_store::lock_pair(cache, &link.key, &target, ctx.deadline.remaining())?;
        // Another process may have stored one for this tenant while we waited.
        let (held, from, source) = match store.load(&target)? {
            Some(rt) => (rt, &*store, AccountLink { key: target.clone(), ..link.clone() }),
            None => match from.load(&link.key)? {
                // Another client's token serves only when Entra made it a family token.
                Some(rt) if rt_store::family(&link.key.client_id, &ctx.profile.client_id) && rt.foci.as_deref() != Some("1") => {
                    trace!(1, "the refresh token of client {} is not a family token; not spending it", link.key.client_id);
                    continue;
                }
                Some(rt) => (rt, from, link.clone()),
                None => continue,
            },
        };
        trace!(1, "no refresh token at tenant {}; spending the one of {} from tenant {}", target.tenant, who(&source), source.key.tenant);
        match spend(ctx, &held, from, &*store, &source)? {
            Spent::Reply(reply) => {
                let w = rt_store::who(&reply);
                if let Err(e) = rt_store::link_to(cache, ctx.profile, target, w.username.or(link.username.clone()), w.tenant_id, link.signed_in_at) {
                    warn!("could not link profile '{}' to the account at tenant {} ({})", ctx.profile.name, ctx.profile.authority.tenant, one_line(&e));
                }
                return Ok(Refreshed::Reply(reply));
            }
            // The tenant's answer, not the token's: the same person's other tokens get it too.
            Spent::Refused(why) => return Ok(Refreshed::NeedsPerson { link: source, why }),
            Spent::Dead(why) => ended = Some((source, why)),
            Spent::FamilyRefused(why) => {
                let (error, codes) = why.aad().map(|a| (a.error.clone(), a.codes.clone())).unwrap_or_default();
                let code = codes.first().map(|c| format!(" AADSTS{c}")).unwrap_or_default();
                warn!(
                    "Entra refused the family sign-in of client {} for profile '{}' (client {}) at tenant {} ({error}{code}); it stays for its own client, and this profile needs its own sign-in (not asked again for a day)",
                    source.key.client_id, ctx.profile.name, ctx.profile.client_id, ctx.profile.authority.tenant
                );
                if let Err(e) = rt_store::remember_family_refusal(cache, ctx.profile, &source.key.client_id, &error, &codes) {
                    warn!("could not remember the refusal ({})", one_line(&e));
                }
            }
        }
    }
    Ok(not_signed_in(ended))
}

fn who(l: &AccountLink) -> &str {
    l.username.as_deref().unwrap_or(&l.key.home_account_id)
}

/// The store of the profile `link` belongs to, when it is another profile (its `storage`
/// may differ); None: use the requesting profile's.
fn store_of<'a>(cache: &'a Cache, link: &AccountLink, ctx: &FlowCtx<'_>) -> Option<Box<dyn RtStore + 'a>> {
    if link.profile == ctx.profile.name {
        return None;
    }
    crate::config::resolve(Some(&link.profile)).and_then(|p| rt_store::store_for(cache, &p)).ok()
}

/// What spending one refresh token gave.
enum Spent {
    Reply(TokenReply),
    /// Entra refused for a reason a person can fix; the token stays.
    Refused(Error),
    /// The token is finished and was removed from where it was held.
    Dead(Error),
    /// Entra would not let the profile's client spend another (family) client's refresh
    /// token. The lender's token is untouched: it may work for its own client still.
    FamilyRefused(Error),
}

/// Spends `held` (kept under `source.key` in `from`) at the request's tenant, under the
/// caller's locks. A rotated token replaces the spent one under `source.key` and is stored
/// under the request's own key too (into `to`), so each key keeps a token that works and
/// none is overwritten by a worse one. Without rotation, a borrowed token is copied.
fn spend(ctx: &FlowCtx<'_>, held: &StoredRt, from: &dyn RtStore, to: &dyn RtStore, source: &AccountLink) -> Result<Spent> {
    trace!(1, "redeeming the refresh token of {}", who(source));
    let own_key = AccountKey {
        authority: ctx.profile.authority.host.clone(),
        tenant: ctx.profile.authority.tenant.clone(),
        client_id: ctx.profile.client_id.clone(),
        home_account_id: source.key.home_account_id.clone(),
    };
    let borrowed = source.key.name() != own_key.name();
    // A family (FOCI) borrow: the token was issued to another client. Whatever Entra says
    // to it, the lender's token is neither removed nor replaced by one issued to us (which
    // its own client could not spend if the two ever leave the family).
    let cross_client = !source.key.client_id.eq_ignore_ascii_case(&own_key.client_id);
    match redeem(ctx, &held.refresh_token) {
        Ok(reply) => {
            let rt = reply.refresh_token.clone().unwrap_or_else(|| held.refresh_token.clone());
            let foci = reply.foci.clone().or(held.foci.clone());
            let entry = |key: &AccountKey| StoredRt { v: 1, refresh_token: rt.clone(), foci: foci.clone(), key: key.clone(), updated_at: clock::now() };
            if borrowed {
                to.save(&entry(&own_key))?;
                trace!(1, "stored the refresh token for tenant {}", own_key.tenant);
            }
            if reply.refresh_token.is_some() && !cross_client {
                // Rotation: the spent token may already be dead; its key gets the new one.
                let saved = from.save(&entry(&source.key));
                match saved {
                    Ok(()) => trace!(1, "stored the rotated refresh token"),
                    Err(e) if borrowed => warn!("could not store the rotated refresh token for tenant {} ({})", source.key.tenant, one_line(&e)),
                    Err(e) => return Err(e),
                }
            }
            Ok(Spent::Reply(reply))
        }
        Err(e) if cross_client && e.aad().is_some() && !needs_person(&e) => Ok(Spent::FamilyRefused(e)),
        Err(e) if is_dead(&e) => {
            from.remove(&source.key)?;
            trace!(1, "removed the dead refresh token of {} at tenant {}", who(source), source.key.tenant);
            Ok(Spent::Dead(e))
        }
        Err(e) if needs_person(&e) => Ok(Spent::Refused(e)),
        // Any other grant refusal leads to a sign-in but removes nothing; borrowed at another
        // tenant, so does any refusal that is that tenant's word, unless the client itself
        // is misconfigured (a sign-in would not help).
        Err(e) if e.aad().is_some_and(|a| a.error == "invalid_grant" || (borrowed && a.error != "invalid_client")) => Ok(Spent::Refused(e)),
        Err(e) => Err(e),
    }
}

/// `grant_type=refresh_token` for the request's target (and claims, when challenged).
pub(crate) fn redeem(ctx: &FlowCtx<'_>, rt: &Secret<String>) -> Result<TokenReply> {
    let p = ctx.profile;
    let secret = user::client_secret(p)?;
    let grant = [("grant_type", "refresh_token"), ("client_id", p.client_id.as_str()), ("refresh_token", rt.expose().as_str())];
    user::redeem_grant(ctx, &grant, secret.as_ref(), ctx.deadline)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AadError;
    use crate::oauth;

    fn aad(error: &str, code: u32) -> Error {
        oauth::auth_error(AadError { error: error.into(), codes: vec![code], ..AadError::default() })
    }

    #[test]
    fn classifies_refresh_failures() {
        for code in [70043, 700082, 50173, 70008] {
            assert!(is_dead(&aad("invalid_grant", code)), "{code}");
            assert!(!needs_person(&aad("invalid_grant", code)), "{code}");
        }
        assert!(needs_person(&aad("invalid_grant", 50076)));
        assert!(needs_person(&aad("interaction_required", 50079)));
        assert!(!is_dead(&aad("invalid_client", 7000215)));
        assert!(!needs_person(&aad("invalid_client", 7000215)));
        assert!(!is_dead(&Error::general("x")));
        // A tenant's refusal is not the token's death: it works elsewhere.
        for code in [50020, 90072, 50076, 65001] {
            assert!(!is_dead(&aad("invalid_grant", code)), "{code}");
            assert!(needs_person(&aad("invalid_grant", code)), "{code}");
        }
        assert!(!is_dead(&aad("invalid_grant", 9_999_999)));
        assert!(is_dead(&oauth::auth_error(AadError { error: "invalid_grant".into(), ..AadError::default() })));
    }
}
