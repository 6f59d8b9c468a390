//! A person's token: the stored account's refresh token first, and only when there is
//! none or it is dead, a sign-in through the profile's flow — and only when someone can
//! see the prompt. Otherwise fail at once (exit 3) with the exact `entra-token login`
//! command, never waiting on a person who is not there.

pub(crate) mod device_code;
pub(crate) mod interactive;
pub(crate) mod password;
pub(crate) mod refresh;

use super::{FlowCtx, Prompt};
use crate::config::{FlowKind, Profile};
use crate::error::{Error, Result, one_line};
use crate::log::{line, trace, warn};
use crate::oauth::TokenReply;
use crate::secret::Secret;
use refresh::Refreshed;

/// Scopes every user flow adds: an id token, the account's identity and a refresh token.
pub(crate) const USER_SCOPES: [&str; 3] = ["openid", "profile", "offline_access"];

/// The profile's own user flow (device code, browser, password).
pub(crate) fn acquire(ctx: &FlowCtx<'_>) -> Result<TokenReply> {
    acquire_as(ctx, ctx.profile.flow)
}

/// The seam for the `auto` chain's last step: the signed-in account's refresh token, else
/// a sign-in in the browser when there is a display, by device code otherwise.
pub(crate) fn sign_in_user(ctx: &FlowCtx<'_>) -> Result<TokenReply> {
    let flow = if ctx.profile.flow.is_user_flow() { ctx.profile.flow } else { default_user_flow() };
    acquire_as(ctx, flow)
}

/// The person a profile is told to be, whatever its stored sign-in: a password flow's
/// username (`username`, AZURE_USERNAME, the login hint), any other person flow's login
/// hint. The cache identity and the choice of refresh token both read this one answer, so
/// editing the hint to another person never serves the previous person's tokens.
pub(crate) fn asked_person(profile: &Profile, flow: FlowKind) -> Option<String> {
    match flow {
        FlowKind::Password => password::asked_username(profile),
        _ => profile.settings.login_hint.as_deref().map(str::trim).filter(|h| !h.is_empty()).map(str::to_string),
    }
}

/// Browser where a person would see it, device code otherwise (`console::browser_can_be_seen`).
pub(crate) fn default_user_flow() -> FlowKind {
    if crate::console::browser_can_be_seen() { FlowKind::Interactive } else { FlowKind::DeviceCode }
}

fn acquire_as(ctx: &FlowCtx<'_>, flow: FlowKind) -> Result<TokenReply> {
    let name = &ctx.profile.name;
    let tenant = &ctx.profile.authority.tenant;
    let at = if ctx.profile.tenant_from_request { format!(" at tenant {tenant}") } else { String::new() };
    let account = |l: &crate::rt_store::AccountLink| l.username.clone().unwrap_or_else(|| l.key.home_account_id.clone());
    // A refusal at this tenant of a person signed in elsewhere: sign in as them here.
    let mut hint_for_sign_in = None;
    // A stored sign-in refused here is healed by signing in here, whatever the flow's advice.
    let refused = |why: &Error| aadsts(why, Some((tenant.as_str(), sign_in_command(ctx, flow).as_str())));
    // A profile told to be someone else than the linked person (another username,
    // AZURE_USERNAME or login hint): that person's refresh token would mint their token,
    // not this one's.
    let asked = asked_person(ctx.profile, flow);
    let asked = asked.as_deref();
    let linked = match (asked, ctx.cache) {
        (Some(_), Some(c)) => crate::rt_store::linked(c, ctx.profile)?,
        _ => None,
    };
    let other = linked.filter(|l| asked.is_some_and(|u| !l.username.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(u))));
    let stored = match other {
        Some(l) => (Refreshed::NotSignedIn, Some(format!("profile '{name}' is signed in as {}, not {}", account(&l), asked.unwrap_or_default()))),
        // Only that person's sign-in may answer, this profile's or another's (the
        // stored-sign-in lookup narrows by the profile's login hint / username).
        None => match asked {
            Some(u) => {
                let mut told = ctx.profile.clone();
                told.settings.username = Some(u.to_string());
                told.settings.login_hint = Some(u.to_string());
                (refresh::with_stored(&FlowCtx { profile: &told, ..*ctx })?, None)
            }
            None => (refresh::with_stored(ctx)?, None),
        },
    };
    let why = match stored.0 {
        Refreshed::Reply(r) => return Ok(r),
        Refreshed::NotSignedIn => stored.1.unwrap_or_else(|| format!("profile '{name}' is not signed in{at}")),
        Refreshed::Dead { link, why } => format!("the sign-in of {} for profile '{name}' has ended ({})", account(&link), aadsts(&why, None)),
        Refreshed::NeedsPerson { link, why } if !link.key.tenant.eq_ignore_ascii_case(tenant) => {
            hint_for_sign_in = link.username.clone();
            format!("tenant {tenant} did not accept the sign-in of {} from tenant {} ({})", account(&link), link.key.tenant, refused(&why))
        }
        Refreshed::NeedsPerson { link, why } => format!("Entra wants {} to sign in again ({})", account(&link), refused(&why)),
        Refreshed::Several(names) => format!(
            "profile '{name}' has no sign-in{at} and {} people are signed in with its client elsewhere ({}); it does not guess which: set login_hint = \"<account>\" in profile '{name}' to use one of them without a new sign-in",
            names.len(),
            names.join(", ")
        ),
    };
    if ctx.prompt == Prompt::Never && needs_a_person(ctx.profile, flow) {
        let reason = if !ctx.profile.allows_prompts() {
            "the profile sets interactive = false"
        } else if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            "nobody can answer a sign-in prompt here (stderr is not a terminal)"
        } else {
            "this caller does not allow a sign-in prompt"
        };
        let command = format!("{}{}", ctx.profile.login_command(), super::claims_arg(ctx.claims));
        return Err(Error::InteractionRequired { message: format!("{why}, and {reason}"), command });
    }
    line(format_args!("{why}; signing in"));
    match hint_for_sign_in.filter(|_| ctx.profile.settings.login_hint.is_none()) {
        Some(h) => {
            let mut hinted = ctx.profile.clone();
            hinted.settings.login_hint = Some(h);
            sign_in(&FlowCtx { profile: &hinted, ..*ctx }, flow)
        }
        None => sign_in(ctx, flow),
    }
}

/// The `login` command that signs the profile's person in: a password flow cannot do the
/// MFA a tenant may ask for, so it names a flow that can; a claims challenge goes along.
fn sign_in_command(ctx: &FlowCtx<'_>, flow: FlowKind) -> String {
    let base = ctx.profile.login_command();
    let flow = if flow == FlowKind::Password { " --flow device-code" } else { "" };
    format!("{base}{flow}{}", super::claims_arg(ctx.claims))
}

/// The AADSTS code, error and our hint for it, for one-line messages. `stored`: the refused
/// grant spent a stored sign-in at (tenant, with this login command), which changes the advice.
fn aadsts(e: &Error, stored: Option<(&str, &str)>) -> String {
    match e.aad() {
        Some(a) => match a.codes.first() {
            Some(c) => match stored.map_or_else(|| crate::oauth::hint_for(*c).map(str::to_string), |(t, login)| crate::oauth::hint_for_stored_sign_in(*c, t, login)) {
                Some(h) => format!("AADSTS{c} {}: {h}", a.error),
                None => format!("AADSTS{c} {}", a.error),
            },
            None => a.error.clone(),
        },
        None => one_line(e),
    }
}

/// Can this flow run with nobody at the terminal? Only a password flow whose username
/// and password come from the profile or the environment.
pub(crate) fn needs_a_person(profile: &Profile, flow: FlowKind) -> bool {
    match flow {
        FlowKind::Password => !password::unattended(profile),
        _ => true,
    }
}

/// A fresh sign-in through `flow` (no refresh token tried); the account is remembered
/// (refresh token first) before the answer goes back.
pub(crate) fn sign_in(ctx: &FlowCtx<'_>, flow: FlowKind) -> Result<TokenReply> {
    let reply = match flow {
        FlowKind::DeviceCode => device_code::sign_in(ctx)?,
        FlowKind::Interactive | FlowKind::AuthorizationCode => interactive::sign_in(ctx)?,
        FlowKind::Password => password::sign_in(ctx)?,
        other => {
            return Err(Error::bad_input_hint(
                format!("flow {} does not sign a person in", other.name()),
                "use --flow device-code, interactive or password",
            ));
        }
    };
    if flow != FlowKind::Password {
        check_account(ctx, &reply)?;
    }
    match ctx.cache {
        Some(cache) => match crate::rt_store::remember(cache, ctx.profile, &reply) {
            Ok(link) => {
                let who = link.username.as_deref().unwrap_or(&link.key.home_account_id);
                trace!(1, "stored the account {who} for profile '{}'", ctx.profile.name);
                // `login` says it itself; a sign-in a token request started says it here.
                if ctx.prompt == Prompt::Allowed {
                    line(format_args!("signed in as {who} for profile '{}'", ctx.profile.name));
                }
            }
            Err(e) => warn!("could not store the sign-in ({}); the next call will ask again", one_line(&e)),
        },
        None => trace!(1, "--no-cache: the sign-in is not kept"),
    }
    Ok(reply)
}

/// A person picks the account in the browser (or on the device code page), whoever the
/// request hinted at: the account that comes back must be the one the profile expects —
/// its `login_hint` (the profile's or `login --login-hint`), else the person it is signed
/// in as (at any tenant). Another account is refused before anything is kept (exit 3),
/// naming both and the command that switches deliberately. (A password sign-in names its
/// user itself.)
fn check_account(ctx: &FlowCtx<'_>, reply: &TokenReply) -> Result<()> {
    let got = crate::rt_store::who(reply);
    let shown = got.username.clone().unwrap_or_else(|| got.home_account_id.clone());
    let name = &ctx.profile.name;
    let refuse = |expected: &str, why: &str| {
        Err(Error::auth(
            format!("the sign-in came back as {shown}, but profile '{name}' is {expected}'s ({why}); nothing was kept"),
            Some(format!("to make profile '{name}' {shown}'s, run `entra-token login -p {name} --login-hint {shown}`; otherwise sign in again as {expected}")),
        ))
    };
    if let Some(hint) = ctx.profile.settings.login_hint.as_deref().map(str::trim).filter(|h| !h.is_empty()) {
        return match &got.username {
            Some(u) if !u.eq_ignore_ascii_case(hint) => refuse(hint, "its login_hint"),
            Some(_) => Ok(()),
            None => {
                trace!(1, "the sign-in names no username to compare with login_hint {hint}");
                Ok(())
            }
        };
    }
    let Some(cache) = ctx.cache else { return Ok(()) };
    let links: Vec<crate::rt_store::AccountLink> = crate::rt_store::all_links(cache)?.into_iter().map(|(_, l)| l).filter(|l| l.profile == *name).collect();
    let same = |l: &crate::rt_store::AccountLink| {
        l.key.home_account_id.eq_ignore_ascii_case(&got.home_account_id) || matches!((&l.username, &got.username), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b))
    };
    match links.first() {
        Some(first) if !links.iter().any(same) => {
            let expected = first.username.clone().unwrap_or_else(|| first.key.home_account_id.clone());
            refuse(&expected, "its stored sign-in")
        }
        _ => Ok(()),
    }
}

/// A confidential client's secret (authorization-code web apps); None for public clients.
pub(crate) fn client_secret(profile: &Profile) -> Result<Option<Secret<String>>> {
    profile.secret.as_ref().map(|s| s.read()).transpose()
}

/// The target as user-flow form fields: v2 `scope` (plus the OIDC scopes), v1 `resource`.
pub(crate) struct TargetForm {
    pub scope: Option<String>,
    pub resource: Option<String>,
}

impl TargetForm {
    pub(crate) fn new(ctx: &FlowCtx<'_>) -> Result<TargetForm> {
        Ok(match ctx.profile.endpoint {
            crate::authority::Endpoint::V2 => TargetForm { scope: Some(user_scope(&ctx.target.scopes)), resource: None },
            crate::authority::Endpoint::V1 => TargetForm { scope: None, resource: Some(ctx.target.resource_for_v1()?) },
        })
    }

    pub(crate) fn add_to<'a>(&'a self, form: &mut Vec<(&'a str, &'a str)>) {
        if let Some(s) = &self.scope {
            form.push(("scope", s));
        }
        if let Some(r) = &self.resource {
            form.push(("resource", r));
        }
    }
}

/// Redeems a person's grant (`grant`: grant_type, client_id and the grant's own fields)
/// as every person flow sends it: with the request's target, the client secret of a
/// confidential client, the claims (a challenge, or the CAE capability) and the token
/// type's binding, at the profile's token endpoint.
pub(crate) fn redeem_grant(ctx: &FlowCtx<'_>, grant: &[(&str, &str)], secret: Option<&Secret<String>>, deadline: crate::clock::Deadline) -> Result<TokenReply> {
    let p = ctx.profile;
    let target = TargetForm::new(ctx)?;
    let mut form = grant.to_vec();
    target.add_to(&mut form);
    if let Some(s) = secret {
        form.push(("client_secret", s.expose().as_str()));
    }
    let claims = crate::flows::sent_claims(ctx);
    let mut form = crate::flows::with_claims(form, claims.as_deref());
    ctx.binding.add_to(&mut form);
    crate::oauth::redeem(ctx.http, &p.authority.token_url(p.endpoint), &form, deadline)
}

/// The request's scopes plus `openid profile offline_access`, each once.
pub(crate) fn user_scope(scopes: &[String]) -> String {
    let mut all: Vec<&str> = scopes.iter().map(String::as_str).collect();
    for s in USER_SCOPES {
        if !all.contains(&s) {
            all.push(s);
        }
    }
    all.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_scope_adds_oidc_scopes_once() {
        assert_eq!(user_scope(&["https://graph.microsoft.com/.default".into()]), "https://graph.microsoft.com/.default openid profile offline_access");
        assert_eq!(user_scope(&["a/.default".into(), "openid".into()]), "a/.default openid profile offline_access");
    }
}
