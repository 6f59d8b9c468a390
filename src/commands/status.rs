//! The commands a person uses around a sign-in: `login` (sign in now, even without a
//! terminal: the prompt goes to stderr), `logout` (drop the account's refresh token and
//! access tokens), `refresh` (a new access token through the refresh token, never a
//! prompt) and `status` / `cache list` (who is signed in, what is cached; never tokens).

use crate::rt_store;
use crate::commands::{OutputFormat, TargetArgs};
use crate::broker::{self, TokenEntry, TokenRequest};
use crate::cache::{self, Cache};
use crate::clock::{self, Deadline};
use crate::config::{self, FlowKind};
use crate::error::{Error, Result};
use crate::flows::identity;
use crate::flows::{FlowCtx, Prompt, auto, user};
use crate::http::Http;
use crate::log::{line, trace, warn};
use clap::Args;
use serde_json::json;
use std::process::ExitCode;
use std::time::Duration;

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

#[derive(Debug, Args)]
pub(crate) struct LogoutArgs {
    /// Profile to sign out.
    #[arg(short, long, conflicts_with = "all")]
    pub profile: Option<String>,
    /// Sign out every account and drop every cached token.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RefreshArgs {
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// text (default) or json.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Print nothing on stdout; exit 0 when a token can be had without a person, 3 when a
    /// sign-in is needed (for scripts, IDEs and MCP clients deciding whether to ask).
    #[arg(long)]
    pub check: bool,
    /// The profile to check (with --check).
    #[arg(short, long, requires = "check")]
    pub profile: Option<String>,
    /// The resource to check (with --check; default: the profile's, else ARM).
    #[arg(short, long, requires = "check")]
    pub resource: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct CacheArgs {
    #[command(subcommand)]
    pub command: CacheCommand,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum CacheCommand {
    /// Same as `entra-token status`.
    List(StatusArgs),
}

/// "42m", "1h 05m", "2d 3h", "30s".
pub(crate) fn human_duration(secs: i64) -> String {
    let s = secs.abs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

/// "expires in 42m" / "expired 3m ago".
pub(crate) fn expiry_phrase(expires_on: i64, now: i64) -> String {
    if expires_on > now { format!("expires in {}", human_duration(expires_on - now)) } else { format!("expired {} ago", human_duration(now - expires_on)) }
}

fn open_cache() -> Result<Cache> {
    Cache::open(cache::default_dir()?)
}

pub(crate) fn login(args: &LoginArgs) -> Result<ExitCode> {
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
        r.key = r.identity.key(&r.target);
        Ok(())
    };
    keyed(&mut r)?;
    let deadline = Deadline::after(args.target.timeout);
    let _lock = cache.lock(&r.key, deadline.remaining())?;
    let http = Http::new();
    let claims = args.claims.as_deref().map(crate::flows::parse_claims).transpose()?;
    let ctx = FlowCtx { profile: &r.profile, target: &r.target, http: &http, deadline, claims: claims.as_deref(), cache: Some(&cache), prompt: Prompt::Forced };
    let previous = rt_store::linked(&cache, &r.profile)?;
    let reply = user::sign_in(&ctx, flow)?;
    let link = rt_store::linked(&cache, &r.profile)?;
    if let Some(new) = &link {
        let dropped = rt_store::drop_other_people(&cache, &r.profile, new, previous.as_ref())?;
        if dropped > 0 {
            trace!(1, "profile '{}' is now {}: dropped {dropped} sign-in(s) of the person before", r.profile.name, new.username.as_deref().unwrap_or("another account"));
        }
    }
    // The key names the person now linked.
    keyed(&mut r)?;
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
    let entry = broker::entry_from_reply(&r, reply);
    let expires_on = entry.expires_on;
    if let Err(e) = cache.write(&r.key, &entry) {
        warn!("could not store the token ({})", crate::error::one_line(&e));
    }
    let who = link.as_ref().and_then(|l| l.username.clone()).or(entry.account.clone()).unwrap_or_else(|| "an account".into());
    let tenant = link.as_ref().and_then(|l| l.tenant_id.clone()).or(entry.tenant_id.clone()).unwrap_or_else(|| r.profile.authority.tenant.clone());
    line(format_args!("signed in as {who} (tenant {tenant}) for profile '{}'; {}", r.profile.name, expiry_phrase(expires_on, clock::now())));
    if link.is_none() {
        warn!("no refresh token was kept, so the next token will need another sign-in");
    }
    Ok(ExitCode::SUCCESS)
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

pub(crate) fn logout(args: &LogoutArgs) -> Result<ExitCode> {
    let cache = open_cache()?;
    if args.all {
        let links = rt_store::all_links(&cache)?;
        let mut rts = 0;
        // Through each account's own store first (a keyring holds no files), then any file left.
        for (_, l) in &links {
            if let Ok(store) = config::resolve(Some(&l.profile)).and_then(|p| rt_store::store_for(&cache, &p)) {
                let _lock = rt_store::lock(&cache, &l.key, Duration::from_secs(10))?;
                rts += store.remove(&l.key).unwrap_or(false) as usize;
            }
        }
        for name in cache.list("rt-")? {
            rts += cache.remove(&name)? as usize;
        }
        // Everyone is signed out now: no profile's own sign-out needs remembering.
        for name in cache.list("out-")? {
            cache.remove(&name)?;
        }
        for (name, _) in &links {
            cache.remove(name)?;
        }
        let ats = broker::forget_tokens(&cache, |_| true)?;
        let who: Vec<String> = links.iter().map(|(_, l)| format!("{} ({})", l.username.as_deref().unwrap_or(&l.key.home_account_id), l.profile)).collect();
        line(format_args!(
            "signed out {} account link(s){}; removed {rts} refresh token(s) and {ats} access token(s)",
            links.len(),
            if who.is_empty() { String::new() } else { format!(": {}", who.join(", ")) }
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let profile = config::resolve(args.profile.as_deref())?;
    let forgotten = rt_store::forget(&cache, &profile)?;
    let ats = broker::forget_tokens(&cache, |e| e.profile == profile.name)?;
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
            line(format_args!("signed out {} from profile '{}'{tenants}: removed {what} and {ats} access token(s)", f.link.username.as_deref().unwrap_or(&f.link.key.home_account_id), profile.name))
        }
        None => line(format_args!("profile '{}' was not signed in; removed {ats} access token(s)", profile.name)),
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn refresh(args: &RefreshArgs) -> Result<ExitCode> {
    let req = TokenRequest { force_refresh: true, ..args.target.to_request() };
    let c = broker::get_token_with(&req, Some(Prompt::Never))?;
    let what = c.resource.clone().unwrap_or_else(|| c.scopes.join(" "));
    let who = c.account.as_deref().map(|a| format!(" as {a}")).unwrap_or_default();
    line(format_args!("new token for {what} (profile '{}'{who}); {}", c.profile, expiry_phrase(c.expires_on, clock::now())));
    Ok(ExitCode::SUCCESS)
}

/// One profile as `status` shows it.
fn profile_report(cache: Option<&Cache>, name: &str, configured: bool, tokens: &[TokenEntry], now: i64) -> serde_json::Value {
    let mut v = json!({ "name": name, "configured": configured });
    match config::resolve(Some(name)) {
        Ok(p) => {
            v["flow"] = json!(p.flow.name());
            v["origin"] = json!(match &p.origin {
                config::Origin::File(_) => "file",
                config::Origin::Environment => "environment",
                config::Origin::BuiltIn => "built-in",
            });
            v["tenant"] = json!(p.authority.tenant);
            v["client_id"] = json!(p.client_id);
            if let Some(c) = cache {
                let store = rt_store::store_for(c, &p).ok();
                // Whether a refresh token is there, never what it is.
                let account = |link: &rt_store::AccountLink| {
                    let rt = store.as_ref().and_then(|s| s.load(&link.key).ok()).flatten().is_some();
                    json!({
                        "username": link.username,
                        "tenant": link.key.tenant,
                        "tenant_id": link.tenant_id,
                        "home_account_id": link.key.home_account_id,
                        "signed_in_at": clock::rfc3339(link.signed_in_at),
                        "refresh_token": if rt { "stored" } else { "missing" },
                        "stored_in": store.as_ref().map(|s| s.describe()),
                    })
                };
                if let Ok(Some(link)) = rt_store::linked(c, &p) {
                    v["account"] = account(&link);
                }
                // Links at other tenants: `--tenant`, or a sign-in from one tenant reused at another.
                let own = rt_store::link_name(&p);
                let mut others: Vec<rt_store::AccountLink> =
                    rt_store::all_links(c).unwrap_or_default().into_iter().filter(|(n, l)| l.profile == name && *n != own).map(|(_, l)| l).collect();
                others.sort_by(|a, b| a.key.tenant.cmp(&b.key.tenant).then_with(|| a.key.name().cmp(&b.key.name())));
                if !others.is_empty() {
                    v["other_tenants"] = others.iter().map(account).collect();
                }
            }
        }
        Err(e) => v["error"] = json!(crate::error::one_line(&e)),
    }
    v["tokens"] = tokens
        .iter()
        .filter(|e| e.profile == name)
        .map(|e| {
            json!({
                "resource": e.resource,
                "scopes": e.scopes,
                "account": e.account,
                "tenant_id": e.tenant_id,
                "expires_on": e.expires_on,
                "expires_at": clock::rfc3339(e.expires_on),
                "expires_in": (e.expires_on - now).max(0),
                "expired": e.expires_on <= now,
            })
        })
        .collect();
    v
}

/// `status --check`: the token path with no prompt and no wait. A cached token answers
/// from the cache alone; a profile with nobody signed in fails before any network call;
/// otherwise the token is fetched (and cached), since only the authority knows whether a
/// refresh token or a secret still works. Under ENTRA_TOKEN_AGENT the agent is asked.
fn check(args: &StatusArgs) -> Result<ExitCode> {
    let req = TokenRequest {
        profile: args.profile.clone(),
        resource: args.resource.clone(),
        prompts: false,
        wait_for_login: Some(Duration::ZERO),
        ..TokenRequest::default()
    };
    let c = broker::get_token_with(&req, Some(Prompt::Never))?;
    trace!(1, "a token for profile '{}' can be had without a person{}", c.profile, if c.from_cache { " (cached)" } else { "" });
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn status(args: &StatusArgs) -> Result<ExitCode> {
    if args.check {
        return check(args);
    }
    let now = clock::now();
    let file = match config::config_path() {
        Some(p) => config::load_file(&p)?,
        None => config::ConfigFile::default(),
    };
    let cache = match cache::default_dir() {
        Ok(d) if d.exists() => Some(Cache::open(d)?),
        _ => None,
    };
    let mut tokens: Vec<TokenEntry> = Vec::new();
    if let Some(c) = &cache {
        for name in c.list("at-")? {
            if let Some(e) = c.read::<TokenEntry>(&name)? {
                tokens.push(e);
            }
        }
    }
    tokens.sort_by(|a, b| (&a.profile, &a.resource, &a.scopes).cmp(&(&b.profile, &b.resource, &b.scopes)));
    let mut names: Vec<(String, bool)> = file.profiles.keys().map(|n| (n.clone(), true)).collect();
    if !names.iter().any(|(n, _)| n == "default") {
        names.insert(0, ("default".into(), false));
    }
    for e in &tokens {
        if !names.iter().any(|(n, _)| *n == e.profile) {
            names.push((e.profile.clone(), false));
        }
    }
    let reports: Vec<serde_json::Value> = names.iter().map(|(n, configured)| profile_report(cache.as_ref(), n, *configured, &tokens, now)).collect();
    let text = match args.output {
        OutputFormat::Json => format!("{}\n", json!({ "profiles": reports, "cache_dir": cache.as_ref().map(|c| c.dir().display().to_string()) })),
        // Account and tenant names came from tokens and az's files: escaped for the terminal.
        OutputFormat::Text => crate::log::escape_report(&render_status(&reports, now)).into_owned(),
    };
    crate::protocols::write_stdout(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn render_status(reports: &[serde_json::Value], now: i64) -> String {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    let mut out = String::new();
    for r in reports {
        let mut head = s(&r["name"]).to_string();
        if let Some(e) = r["error"].as_str() {
            out.push_str(&format!("{head}: {e}\n"));
            continue;
        }
        head.push_str(&format!("  [{} · {}]", s(&r["flow"]), s(&r["origin"])));
        match r.get("account") {
            Some(a) => {
                let who = a["username"].as_str().unwrap_or(a["home_account_id"].as_str().unwrap_or("?"));
                let tenant = a["tenant_id"].as_str().map(|t| format!(" (tenant {t})")).unwrap_or_default();
                let state = if a["refresh_token"] == "stored" { "" } else { "; refresh token missing, run `entra-token login`" };
                head.push_str(&format!("  signed in as {who}{tenant}{state}"));
            }
            None if r.get("other_tenants").is_some() => head.push_str(&format!("  not signed in at tenant {}", s(&r["tenant"]))),
            None if FlowKind::parse(&s(&r["flow"])).is_ok_and(|f| f.is_user_flow()) => head.push_str("  not signed in"),
            None => {}
        }
        out.push_str(&head);
        out.push('\n');
        let others = r["other_tenants"].as_array().cloned().unwrap_or_default();
        for a in &others {
            let who = a["username"].as_str().unwrap_or(a["home_account_id"].as_str().unwrap_or("?"));
            let id = a["tenant_id"].as_str().filter(|t| Some(*t) != a["tenant"].as_str()).map(|t| format!(" ({t})")).unwrap_or_default();
            let state = if a["refresh_token"] == "stored" { String::new() } else { format!("; refresh token missing, run `entra-token login -p {} --tenant {}`", s(&r["name"]), s(&a["tenant"])) };
            out.push_str(&format!("    also at tenant {}{id}: signed in as {who}{state}\n", s(&a["tenant"])));
        }
        let tokens = r["tokens"].as_array().cloned().unwrap_or_default();
        if tokens.is_empty() {
            out.push_str("    no cached tokens\n");
        }
        for t in tokens {
            let what = t["resource"].as_str().map(str::to_string).unwrap_or_else(|| t["scopes"].as_array().map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(" ")).unwrap_or_default());
            let exp = t["expires_on"].as_i64().unwrap_or(0);
            // Several tenants' tokens for one resource: say whose each is.
            let tenant = t["tenant_id"].as_str().filter(|_| !others.is_empty()).map(|id| format!("  (tenant {id})")).unwrap_or_default();
            out.push_str(&format!("    {what}  {}{tenant}\n", expiry_phrase(exp, now)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_person_would_say_them() {
        assert_eq!(human_duration(42 * 60 + 10), "42m");
        assert_eq!(human_duration(30), "30s");
        assert_eq!(human_duration(3600 + 300), "1h 05m");
        assert_eq!(human_duration(2 * 86400 + 3 * 3600), "2d 3h");
        assert_eq!(expiry_phrase(1000 + 42 * 60, 1000), "expires in 42m");
        assert_eq!(expiry_phrase(1000, 1000 + 180), "expired 3m ago");
    }

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
