//! `az account get-access-token --subscription S`: which profile, or which of az's
//! accounts, answers for S (as az picks the account holding the subscription), and which
//! subscription the answer reports.

use crate::broker::{self, TokenRequest};
use crate::error::{Error, Result};
use crate::log::trace;

/// `--subscription S` picks the profile whose `subscription` is S (id or name, any case),
/// as az picks the account that holds the subscription; no such profile leaves the choice
/// to the usual order (ENTRA_TOKEN_PROFILE, then the default). Two such profiles is an error.
pub(super) fn profile_for_subscription(s: &str) -> Result<Option<String>> {
    let Some(path) = crate::config::config_path() else { return Ok(None) };
    let file = crate::config::load_file(&path)?;
    let mut found = file.profiles.iter().filter(|(_, p)| p.subscription.as_deref().is_some_and(|x| x.trim().eq_ignore_ascii_case(s.trim()))).map(|(n, _)| n.clone());
    match (found.next(), found.next()) {
        (Some(name), None) => {
            trace!(1, "--subscription {s} is profile '{name}'");
            Ok(Some(name))
        }
        (None, _) => Ok(None),
        (Some(a), Some(b)) => Err(Error::bad_input_hint(
            format!("--subscription {s} is the subscription of more than one profile ('{a}', '{b}')"),
            "keep each subscription in one profile, or set ENTRA_TOKEN_PROFILE for this call",
        )),
    }
}

/// `--subscription S` that no profile holds. A profile that signs in through az gets az's
/// account for S, as `az` itself picks the account holding the subscription (and its
/// tenant); so does `auto` when az is one of the sources it would try (the request is then
/// az's alone: no other source may answer for S). Any other profile would answer with its
/// own identity labelled S, a token of perhaps another tenant: refused, unless
/// ENTRA_TOKEN_PROFILE chose the profile on purpose.
pub(super) fn route_subscription(r: &mut broker::Resolved, s: &str, chosen_by_env: bool) -> Result<()> {
    use crate::config::FlowKind;
    use crate::flows::auto::{self, Source};
    let via_az = match r.profile.flow {
        FlowKind::AzureCli => true,
        FlowKind::Auto => {
            let plan = auto::plan(&r.profile)?;
            match plan.chosen() {
                Some((source, _)) => source == Source::AzureCli,
                None => plan.candidates().any(|(source, _)| source == Source::AzureCli),
            }
        }
        _ => false,
    };
    if via_az {
        if r.profile.flow == FlowKind::Auto {
            r.profile = auto::cli_profile(&r.profile);
        }
        r.profile.settings.subscription = Some(s.to_string());
        return r.reidentify(broker::existing_cache().as_ref());
    }
    if chosen_by_env {
        return Ok(());
    }
    Err(Error::bad_input_hint(
        format!("--subscription {s} is not the subscription of any profile, and profile '{}' does not sign in through az", r.profile.name),
        format!("add subscription = \"{s}\" to the profile that reaches it, or set ENTRA_TOKEN_PROFILE to choose one for this call"),
    ))
}

/// The subscription az reports when its own login answered: the id of az's account for the
/// request (the one `--subscription` named, else its default). An `auto` request counts as
/// az's when az is one of its sources and the token is of az's account's tenant.
pub(super) fn az_subscription(profile: &crate::config::Profile, token_tenant: Option<&str>) -> Option<String> {
    use crate::config::FlowKind;
    use crate::flows::auto::{self, Source};
    let account = || crate::flows::azure_cli::current_account(profile.settings.subscription.as_deref()).filter(|a| !a.subscription.is_empty());
    match profile.flow {
        FlowKind::AzureCli => account().map(|a| a.subscription),
        FlowKind::Auto if auto::plan(profile).is_ok_and(|p| p.chosen().is_none() && p.candidates().any(|(s, _)| s == Source::AzureCli)) => {
            account().filter(|a| token_tenant.is_some_and(|t| t.eq_ignore_ascii_case(&a.tenant))).map(|a| a.subscription)
        }
        _ => None,
    }
}

/// `--subscription S` on the token agent's side, routed as `get_access_token` routes it
/// here (a profile the client named is its ENTRA_TOKEN_PROFILE): the profile holding S,
/// else the request's profile sent to az's account for S, or refused.
#[cfg_attr(not(unix), allow(dead_code))] // the agent is Unix-only
pub(crate) fn route_on_agent(req: &mut TokenRequest, s: &str) -> Result<broker::Resolved> {
    let chosen = req.profile.is_some();
    let holder = if chosen { None } else { profile_for_subscription(s)? };
    let unheld = holder.is_none();
    req.profile = holder.or(req.profile.take());
    let mut r = broker::resolve(req)?;
    if unheld {
        route_subscription(&mut r, s, chosen)?;
    }
    Ok(r)
}
