//! `logout`: drop the account's refresh token and the profile's cached tokens (access
//! tokens and registries' refresh tokens; `--all`: every account's), through the
//! refresh-token store and the broker's own `forget_tokens`.

use crate::broker;
use crate::commands::shared::open_cache;
use crate::config;
use crate::error::Result;
use crate::log::{line, trace};
use crate::rt_store;
use clap::Args;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub(crate) struct LogoutArgs {
    /// Profile to sign out.
    #[arg(short, long, conflicts_with = "all")]
    pub profile: Option<String>,
    /// Sign out every account and drop every cached token.
    #[arg(long)]
    pub all: bool,
}

pub(crate) fn run(args: &LogoutArgs) -> Result<ExitCode> {
    let cache = open_cache()?;
    // Registry tokens of the shape before they were the core's entries (`acr-*.json`)
    // answer nobody any more: whoever signs out, they go.
    let old = broker::forget_old_registry_tokens(&cache)?;
    if old > 0 {
        trace!(1, "removed {old} registry token(s) stored in the old shape");
    }
    if args.all {
        let (links, rts) = rt_store::forget_all(&cache)?;
        // After the sign-ins, before the tokens: a fetch under way keeps nothing (tokens::store).
        cache.sign_out()?;
        let ats = broker::forget_tokens(&cache, |_| true)?;
        let keys = pop_keys(crate::pop::forget_keys(&cache, &configured_profiles(&links), true)?);
        cache.sweep_locks();
        // Each account and profile once: a profile signed in at several tenants has a link at each.
        let mut who: Vec<String> = links.iter().map(|l| format!("{} ({})", l.username.as_deref().unwrap_or(&l.key.home_account_id), l.profile)).collect();
        who.sort();
        who.dedup();
        line(format_args!(
            "signed out {} account link(s){}; removed {rts} refresh token(s) and {ats} access token(s){keys}",
            links.len(),
            if who.is_empty() { String::new() } else { format!(": {}", who.join(", ")) }
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let profile = config::resolve(args.profile.as_deref())?;
    // Whose tokens the profile's calls are answered with (`resolve`'s identity, named
    // before its sign-in goes): another profile with the same identity shares its entries,
    // and they go too, whoever stored them (as az logout and MSAL's remove_account drop
    // the account's tokens, not one caller's).
    let identity = crate::flows::identity::of(&profile, Some(&cache)).inspect_err(|e| trace!(1, "cannot name the profile's identity ({}); removing the tokens it stored", crate::error::one_line(e))).ok();
    let forgotten = rt_store::forget(&cache, &profile)?;
    cache.sign_out()?;
    let ats = broker::forget_tokens(&cache, |e| e.profile == profile.name || identity.as_ref().is_some_and(|id| broker::bound_to_identity(e, id)))?;
    let keys = pop_keys(crate::pop::forget_keys(&cache, &[(profile.name.clone(), profile.storage)], false)?);
    cache.sweep_locks();
    match forgotten {
        Some(f) => {
            let what = if f.removed_rt {
                "its refresh token(s)".to_string()
            } else if !f.kept_for.is_empty() {
                format!("the link to it (its refresh token stays: profile(s) {} signed in as the same account; `logout --all` removes it)", f.kept_for.join(", "))
            } else {
                "the link to it (its refresh token was already gone)".to_string()
            };
            let tenants = if f.tenants > 1 { format!(" in {} tenants", f.tenants) } else { String::new() };
            line(format_args!("signed out {} from profile '{}'{tenants}: removed {what} and {ats} access token(s){keys}", f.link.username.as_deref().unwrap_or(&f.link.key.home_account_id), profile.name))
        }
        None => line(format_args!("profile '{}' was not signed in; removed {ats} access token(s){keys}", profile.name)),
    }
    Ok(ExitCode::SUCCESS)
}

/// Every profile the config file names, and every one a sign-in link names, each with its
/// `storage` (the config's, else `auto`): whose PoP keys the OS keyring may hold, as the
/// keyring cannot be listed.
fn configured_profiles(links: &[rt_store::AccountLink]) -> Vec<(String, config::Storage)> {
    let file = config::config_path().and_then(|p| config::load_file(&p).ok());
    let mut out: Vec<(String, config::Storage)> = file
        .map(|f| f.profiles.into_iter().map(|(n, c)| {
            let storage = config::Storage::parse(c.storage.as_deref(), &n).unwrap_or(config::Storage::Auto);
            (n, storage)
        }).collect())
        .unwrap_or_default();
    for l in links {
        if !out.iter().any(|(n, _)| *n == l.profile) {
            out.push((l.profile.clone(), config::Storage::Auto));
        }
    }
    out
}

/// The removed PoP keys, for the summary line (nothing when there were none).
fn pop_keys(n: usize) -> String {
    if n == 0 { String::new() } else { format!(" and {n} PoP key(s)") }
}
