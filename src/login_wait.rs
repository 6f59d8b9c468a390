//! Callers that cannot prompt (IDEs, Lens, MCP clients): instead of failing at once with
//! the `login` command nobody sees, an opt-in wait (`wait_for_login` in the profile, or
//! `--wait-for-login`) says on stderr what to run, raises a desktop notification, and
//! answers as soon as an `entra-token login` elsewhere has signed the profile in; when
//! the time is up it is a timeout (exit 5). Polling is cheap: one small link file and
//! one cache entry, read twice a second; the token endpoint is asked only after the
//! sign-in changed. A layer around the core (`tokens`), which it asks again; the broker
//! calls it, it never calls the broker.

use crate::tokens::{self, Credential, Lookup, TokenRequest};
use crate::clock::{self, Deadline};
use crate::config::Profile;
use crate::error::{Error, Result};
use crate::flows::Prompt;
use crate::log::{line, trace};
use std::time::Duration;

const POLL: Duration = Duration::from_millis(500);
/// A wait longer than this is a mistake, not a plan.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// How long this request may wait for a sign-in elsewhere: the request's own choice,
/// else the profile's `wait_for_login`; None when it may not.
pub(crate) fn duration(req: &TokenRequest, profile: &Profile) -> Result<Option<Duration>> {
    let wait = match (req.wait_for_login, profile.settings.wait_for_login.as_deref()) {
        (Some(d), _) => d,
        (None, Some(text)) => clock::parse_duration(text).map_err(|e| {
            Error::bad_input_hint(format!("profile '{}': wait_for_login = \"{text}\" is not a duration ({e})", profile.name), "write it like \"2m\" or \"90s\"")
        })?,
        (None, None) => return Ok(None),
    };
    if wait > MAX_WAIT {
        return Err(Error::bad_input(format!("a wait for a sign-in may be at most {}m", MAX_WAIT.as_secs() / 60)));
    }
    Ok((!wait.is_zero()).then_some(wait))
}

/// Who the profile is signed in as, and when: what a `login` elsewhere changes.
fn signature(cache: &crate::cache::Cache, profile: &Profile) -> Option<(String, i64)> {
    crate::rt_store::linked(cache, profile).ok().flatten().map(|l| (l.key.home_account_id, l.signed_in_at))
}

/// Waits up to `limit` for the sign-in `first` asked for, then answers `req`.
pub(crate) fn wait(req: &TokenRequest, first: Error, limit: Duration) -> Result<Credential> {
    let Error::InteractionRequired { message, command } = &first else { return Err(first) };
    let r = tokens::resolve(req)?;
    let Some(cache) = tokens::open_cache(req)? else {
        trace!(1, "no cache (--no-cache): a sign-in elsewhere cannot be seen; not waiting");
        return Err(first);
    };
    let minutes = crate::clock::short_duration(limit.as_secs());
    line(format_args!("{message}; run `{command}` in a terminal; waiting up to {minutes} for it"));
    crate::notify::send(
        "entra-token: sign-in needed",
        &format!("Run `{command}` in a terminal; the program asking for a token for profile '{}' waits up to {minutes}.", r.profile.name),
    );
    let deadline = Deadline::after(limit);
    let mut seen = signature(&cache, &r.profile);
    // The retries must not wait again, nor prompt.
    let retry = TokenRequest { wait_for_login: Some(Duration::ZERO), ..req.clone() };
    loop {
        let left = deadline.remaining();
        if left.is_zero() {
            return Err(Error::Timeout { what: format!("waiting for `{command}`"), after: limit });
        }
        std::thread::sleep(POLL.min(left));
        if !req.force_refresh
            && req.claims.is_none()
            && let Lookup::Fresh(e) = tokens::fresh(&cache, &r.key, &r.bound, req.min_validity, clock::now())?
        {
            trace!(1, "another process stored {} while we waited", r.key);
            return Ok(tokens::credential_from_entry(e, &r.profile.name, true));
        }
        let now = signature(&cache, &r.profile);
        if now != seen {
            seen = now;
            trace!(1, "profile '{}' was signed in elsewhere; trying again", r.profile.name);
            // The core again, inward: the request is already past the agent and the registry.
            match tokens::resolve(&retry).and_then(|r| tokens::get(&retry, r, Some(Prompt::Never))) {
                Err(Error::InteractionRequired { .. }) => {}
                done => {
                    if done.is_ok() {
                        line(format_args!("signed in; answering"));
                    }
                    return done;
                }
            }
        }
    }
}
