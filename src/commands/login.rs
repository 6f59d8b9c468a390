//! `login`: a person signs in now, even without a terminal (the prompt goes to stderr), and
//! the profile is linked to whoever signed in; another person's tokens stop being served.

use crate::broker::{self, TokenEntry};
use crate::clock::{self, Deadline};
use crate::commands::TargetArgs;
use crate::commands::shared::{expiry_phrase, open_cache};
use crate::config::FlowKind;
use crate::error::{Error, Result};
use crate::flows::identity;
use crate::flows::{Prompt, auto, user};
use crate::log::{line, trace, warn};
use crate::rt_store;
use clap::Args;
use std::cell::Cell;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// How to sign in: device-code, interactive (browser) or password.
    #[arg(short, long)]
    pub flow: Option<String>,
    /// The account to sign in as (pre-fills the browser; the username for password). A
    /// sign-in that comes back as anyone else is refused; naming another account here is
    /// how a profile signed in as one person is switched to another.
    #[arg(long, visible_alias = "account", value_name = "USER")]
    pub login_hint: Option<String>,
    /// A claims challenge the sign-in must satisfy (JSON, or base64 of it), as a refused
    /// token request names it.
    #[arg(long, value_name = "CLAIMS")]
    pub claims: Option<String>,
}

pub(crate) fn run(args: &LoginArgs) -> Result<ExitCode> {
    crate::agent::refuse_local_sign_in()?;
    let req = args.target.to_request();
    let mut r = broker::resolve(&req)?;
    // An `auto` profile whose chain ends at its person (nothing in the environment decides
    // for another source): `get-token` keys its tokens by the chain's candidates, so the
    // sign-in's token goes under that same identity: one sign-in, one cache entry.
    let chain = (r.profile.flow == FlowKind::Auto && auto::plan(&r.profile)?.chosen().is_none()).then(|| r.profile.clone());
    let requested = args.flow.as_deref().map(FlowKind::parse).transpose()?;
    let flow = match requested.unwrap_or(r.profile.flow) {
        f if f.is_user_flow() => f,
        FlowKind::Auto => user::default_user_flow(),
        other => {
            return Err(Error::bad_input_hint(
                format!("profile '{}' uses flow {}, which signs in without a person", r.profile.name, other.name()),
                "`login` is for people: pass --flow device-code, interactive or password",
            ));
        }
    };
    r.profile.flow = flow;
    if let Some(h) = args.login_hint.as_ref().filter(|h| !h.trim().is_empty()) {
        r.profile.settings.login_hint = Some(h.trim().to_string());
    }
    let cache = open_cache()?;
    let keyed = |r: &mut broker::Resolved| -> Result<()> {
        r.identity = identity::of(chain.as_ref().unwrap_or(&r.profile), Some(&cache))?;
        r.rebind();
        Ok(())
    };
    keyed(&mut r)?;
    let deadline = Deadline::after(args.target.timeout);
    let claims = args.claims.as_deref().map(crate::flows::parse_claims).transpose()?;
    if let Some(done) = wait_for_another_login(&cache, &r, deadline, args.login_hint.is_none() && claims.is_none())? {
        return Ok(done);
    }
    // The person linked before this sign-in, read under the key's lock.
    let previous = Cell::new(None);
    let mut link = None;
    let entry = broker::acquire_locked(
        &cache,
        &mut r,
        deadline,
        Prompt::Forced,
        claims.as_deref(),
        |ctx| {
            previous.set(rt_store::linked(&cache, ctx.profile)?);
            user::sign_in(ctx, flow)
        },
        |r| {
            let previous = previous.take();
            link = rt_store::linked(&cache, &r.profile)?;
            if let Some(new) = &link {
                let dropped = rt_store::drop_other_people(&cache, &r.profile, new, previous.as_ref())?;
                if dropped > 0 {
                    trace!(1, "profile '{}' is now {}: dropped {dropped} sign-in(s) of the person before", r.profile.name, new.username.as_deref().unwrap_or("another account"));
                }
            }
            // The key names the person now linked.
            keyed(r)?;
            // Another account now: the old one's access tokens must not be served for this profile.
            // The same account at another tenant (`login --tenant B`) leaves the others' tokens be.
            let removed = broker::forget_tokens(&cache, |e| {
                e.profile == r.profile.name
                    && identity::names_person(&e.identity)
                    && match &link {
                        Some(new) => invalidated(e, previous.as_ref(), new),
                        None => previous.is_some(),
                    }
            })?;
            if removed > 0 {
                trace!(1, "removed {removed} cached access token(s) of the account signed in before");
            }
            Ok(())
        },
    )?;
    let expires_on = entry.expires_on;
    let who = link.as_ref().and_then(|l| l.username.clone()).or(entry.account.clone()).unwrap_or_else(|| "an account".into());
    let tenant = link.as_ref().and_then(|l| l.tenant_id.clone()).or(entry.tenant_id.clone()).unwrap_or_else(|| r.profile.authority.tenant.clone());
    line(format_args!("signed in as {who} (tenant {tenant}) for profile '{}'; {}", r.profile.name, expiry_phrase(expires_on, clock::now())));
    if link.is_none() {
        warn!("no refresh token was kept, so the next token will need another sign-in");
    }
    Ok(ExitCode::SUCCESS)
}

/// Another `entra-token login` of this profile (a second terminal) holds the sign-in: say
/// so rather than wait in silence, and when it ends signed in, that sign-in is this one's
/// (`take_theirs`: nothing asked of this login that the other may not have satisfied).
fn wait_for_another_login(cache: &crate::cache::Cache, r: &broker::Resolved, deadline: Deadline, take_theirs: bool) -> Result<Option<ExitCode>> {
    let started = clock::now();
    match cache.lock(&r.key, std::time::Duration::ZERO) {
        Ok(_free) => return Ok(None),
        Err(Error::Timeout { .. }) => {}
        Err(e) => return Err(e),
    }
    line(format_args!("another entra-token is signing in profile '{}'; waiting for it to finish (Ctrl-C to stop)", r.profile.name));
    drop(cache.lock(&r.key, deadline.remaining())?);
    match rt_store::linked(cache, &r.profile)? {
        Some(link) if take_theirs && link.signed_in_at >= started => {
            let who = link.username.as_deref().unwrap_or("an account");
            let tenant = link.tenant_id.as_deref().unwrap_or(&r.profile.authority.tenant);
            line(format_args!("signed in as {who} (tenant {tenant}) for profile '{}' by the other sign-in", r.profile.name));
            Ok(Some(ExitCode::SUCCESS))
        }
        _ => Ok(None),
    }
}

/// After `login` linked the profile to `new` at the tenant it signed in at (`before`: the
/// link there until now): is a cached access token of the profile no longer its sign-in's?
/// Yes when it names another account, or when the account at this tenant changed and the
/// token is this tenant's (or says no tenant). A first sign-in at another tenant as the
/// same person keeps every tenant's tokens.
fn invalidated(e: &TokenEntry, before: Option<&rt_store::AccountLink>, new: &rt_store::AccountLink) -> bool {
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    // Whose token: the home account when it was recorded (exact, at any tenant), else the name.
    let other_account = match (&e.home_account_id, &e.account, &new.username) {
        (Some(h), _, _) => !same(h, &new.key.home_account_id),
        (None, Some(a), Some(u)) => !same(a, u),
        _ => false,
    };
    let changed_here = before.is_some_and(|b| !same(&b.key.home_account_id, &new.key.home_account_id));
    let this_tenant = match (&e.tenant_id, &new.tenant_id) {
        (Some(t), Some(n)) => same(t, n),
        _ => true,
    };
    other_account || (changed_here && this_tenant)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_sign_in_invalidates_only_another_accounts_tokens() {
        let link = |hid: &str, user: &str, tid: &str| rt_store::AccountLink {
            v: 1,
            profile: "p".into(),
            key: rt_store::AccountKey { authority: "https://a".into(), tenant: tid.into(), client_id: "c".into(), home_account_id: hid.into() },
            username: Some(user.into()),
            tenant_id: Some(tid.into()),
            signed_in_at: 0,
        };
        let token = |user: Option<&str>, tid: Option<&str>| TokenEntry {
            v: 1,
            access_token: crate::secret::Secret::new(String::new()),
            token_type: "Bearer".into(),
            expires_on: 0,
            refresh_on: None,
            scopes: vec![],
            resource: None,
            tenant_id: tid.map(str::to_string),
            account: user.map(str::to_string),
            home_account_id: None,
            profile: "p".into(),
            authority: "https://a".into(),
            client_id: "c".into(),
            identity: "user:p".into(),
            cached_at: 0,
            bound: None,
        };
        let ann_b = link("ann.home", "ann@x", "tb");
        // Ann's first sign-in at B: her tokens at A stay.
        assert!(!invalidated(&token(Some("Ann@x"), Some("ta")), None, &ann_b));
        // Bob's: Ann's go at every tenant; Bob's own stay.
        let bob_b = link("bob.home", "bob@x", "tb");
        assert!(invalidated(&token(Some("ann@x"), Some("ta")), Some(&ann_b), &bob_b));
        assert!(invalidated(&token(Some("ann@x"), Some("ta")), None, &bob_b));
        assert!(!invalidated(&token(Some("bob@x"), Some("ta")), Some(&ann_b), &bob_b));
        // A token that names nobody: gone at B when B's account changed, kept elsewhere.
        assert!(invalidated(&token(None, Some("tb")), Some(&ann_b), &bob_b));
        assert!(invalidated(&token(None, None), Some(&ann_b), &bob_b));
        assert!(!invalidated(&token(None, Some("ta")), Some(&ann_b), &bob_b));
        assert!(!invalidated(&token(None, Some("tb")), Some(&ann_b), &ann_b));
        // A guest token whose name differs at another tenant is still Ann's by her home account.
        let guest = TokenEntry { home_account_id: Some("ANN.home".into()), ..token(Some("ann_x#EXT#@tenantc"), Some("tc")) };
        assert!(!invalidated(&guest, None, &ann_b));
        assert!(invalidated(&guest, Some(&ann_b), &bob_b));
    }
}
