//! The refresh-token grant: a signed-in account's refresh token buys a token for any
//! resource it may reach, with no person involved. Runs under the account's lock; a
//! rotated refresh token is stored before the answer goes back, and a dead one is
//! removed so the next step is a clean sign-in.

use super::{FlowCtx, user};
use crate::accounts::{self, AccountLink, StoredRt};
use crate::clock;
use crate::error::{Error, Result};
use crate::log::trace;
use crate::oauth::{self, TokenReply};
use crate::secret::Secret;

/// What the stored refresh token gave.
pub(crate) enum Refreshed {
    Reply(TokenReply),
    /// No account, or its refresh token is gone (signed out, or `--no-cache`).
    NotSignedIn,
    /// Entra no longer takes the refresh token (expired, revoked, password changed).
    Dead { link: AccountLink, why: Error },
    /// The refresh token is fine but Entra wants the person (MFA, consent, claims).
    NeedsPerson { link: AccountLink, why: Error },
}

/// AADSTS codes that mean "this refresh token is finished": sign in again.
const DEAD_CODES: &[u32] = &[70043, 700082, 50173, 70008, 70000, 54005, 700084, 50132];
/// Codes that mean "a person must act" although the refresh token still works.
const PERSON_CODES: &[u32] = &[50076, 50079, 50158, 65001, 50072, 53003, 50097, 50074, 16000];

pub(crate) fn is_dead(e: &Error) -> bool {
    e.aad().is_some_and(|a| a.error == "invalid_grant" && !a.codes.iter().any(|c| PERSON_CODES.contains(c)) || a.codes.iter().any(|c| DEAD_CODES.contains(c)))
}

pub(crate) fn needs_person(e: &Error) -> bool {
    e.aad().is_some_and(|a| matches!(a.error.as_str(), "interaction_required" | "consent_required" | "login_required") || a.codes.iter().any(|c| PERSON_CODES.contains(c)))
}

/// Tries the profile's signed-in account. Holds the account lock across load → grant → save.
pub(crate) fn with_stored(ctx: &FlowCtx<'_>) -> Result<Refreshed> {
    let Some(cache) = ctx.cache else {
        return Ok(Refreshed::NotSignedIn);
    };
    let Some(link) = accounts::linked(cache, ctx.profile)? else {
        trace!(1, "profile '{}' has no signed-in account", ctx.profile.name);
        return Ok(Refreshed::NotSignedIn);
    };
    let store = accounts::store_for(cache, ctx.profile)?;
    let _lock = accounts::lock(cache, &link.key, ctx.deadline.remaining())?;
    let Some(stored) = store.load(&link.key)? else {
        trace!(1, "the account of profile '{}' has no refresh token", ctx.profile.name);
        return Ok(Refreshed::NotSignedIn);
    };
    trace!(1, "redeeming the refresh token of {}", link.username.as_deref().unwrap_or(&link.key.home_account_id));
    match redeem(ctx, &stored.refresh_token) {
        Ok(reply) => {
            if let Some(new_rt) = &reply.refresh_token {
                // Rotation: the old refresh token may already be dead; store the new one
                // before anyone sees the access token.
                store.save(&StoredRt { v: 1, refresh_token: new_rt.clone(), foci: reply.foci.clone().or(stored.foci), key: link.key.clone(), updated_at: clock::now() })?;
                trace!(1, "stored the rotated refresh token");
            }
            Ok(Refreshed::Reply(reply))
        }
        Err(e) if needs_person(&e) => Ok(Refreshed::NeedsPerson { link, why: e }),
        Err(e) if is_dead(&e) => {
            store.remove(&link.key)?;
            Ok(Refreshed::Dead { link, why: e })
        }
        Err(e) => Err(e),
    }
}

/// `grant_type=refresh_token` for the request's target (and claims, when challenged).
pub(crate) fn redeem(ctx: &FlowCtx<'_>, rt: &Secret<String>) -> Result<TokenReply> {
    let p = ctx.profile;
    let secret = user::client_secret(p)?;
    let target = user::TargetForm::new(ctx)?;
    let mut form: Vec<(&str, &str)> = vec![("grant_type", "refresh_token"), ("client_id", p.client_id.as_str()), ("refresh_token", rt.expose().as_str())];
    target.add_to(&mut form);
    if let Some(s) = &secret {
        form.push(("client_secret", s.expose().as_str()));
    }
    let form = super::with_claims(form, ctx.claims);
    oauth::redeem(ctx.http, &p.authority.token_url(p.endpoint), &form, ctx.deadline)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AadError;

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
    }
}
