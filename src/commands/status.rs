//! `status` / `cache list`: who is signed in and what is cached, per profile (never tokens);
//! `status --check`: can a token be had without a person (exit 0) or not (exit 3).

use crate::broker::{self, TokenEntry, TokenRequest};
use crate::cache::{self, Cache};
use crate::clock;
use crate::commands::OutputFormat;
use crate::commands::shared::expiry_phrase;
use crate::config::{self, FlowKind};
use crate::error::Result;
use crate::flows::Prompt;
use crate::log::trace;
use crate::rt_store;
use clap::Args;
use serde_json::json;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// text (default) or json.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Print nothing on stdout; exit 0 when a token can be had without a person, 3 when a
    /// sign-in is needed (for scripts, IDEs and MCP clients deciding whether to ask).
    #[arg(long)]
    pub check: bool,
    /// Show only this profile (with --check: the profile to check).
    #[arg(short, long)]
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
                "token_type": e.token_type,
                "key_id": e.bound.as_ref().and_then(|b| b.key_id.clone()),
                // A registry's refresh token (ACR's exchange): the registry it is for.
                "registry": e.bound.as_ref().and_then(|b| b.registry.clone()),
                // `cp1`: a long-lived CAE token (docs/cae.md), cached apart from a plain one.
                "capabilities": e.bound.as_ref().and_then(|b| b.capabilities.clone()),
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

pub(crate) fn run(args: &StatusArgs) -> Result<ExitCode> {
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
    let mut tokens: Vec<TokenEntry> = match &cache {
        Some(c) => broker::cached_tokens(c)?,
        None => Vec::new(),
    };
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
    // `status -p NAME`: that profile alone; a name neither configured nor cached is not
    // found (exit 2, with the name meant), as everywhere else.
    if let Some(want) = args.profile.as_deref().map(str::trim) {
        let name = match names.iter().find(|(n, _)| n == want) {
            Some((n, _)) => n.clone(),
            None => config::resolve_in(&file, config::config_path().as_deref(), Some(want))?.name,
        };
        names.retain(|(n, _)| *n == name);
        if names.is_empty() {
            names.push((name, false));
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

/// A cached token's resource as one spelling: the alias table's for a well-known one,
/// else without a trailing `/`; a lone `X/.default` scope as `X`; other scopes as they are.
fn display_resource(t: &serde_json::Value) -> String {
    let scopes: Vec<&str> = t["scopes"].as_array().map(|a| a.iter().filter_map(|x| x.as_str()).collect()).unwrap_or_default();
    let resource = t["resource"].as_str().map(str::to_string).or_else(|| match scopes.as_slice() {
        [one] => crate::authority::resource_of_scope(one),
        _ => None,
    });
    // A well-known resource as the alias table spells it (ARM with its slash), others without one.
    match resource {
        Some(r) => {
            let bare = r.trim_end_matches('/');
            crate::authority::ALIASES.iter().map(|(_, v)| *v).find(|v| v.trim_end_matches('/') == bare).unwrap_or(bare).to_string()
        }
        None => scopes.join(" "),
    }
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
        // One line per resource and tenant, however it was asked for (an alias, the URI with
        // or without its slash, its `/.default` scope): the token that lasts longest.
        let mut lines: Vec<(String, String, i64)> = Vec::new();
        for t in tokens {
            let what = match t["registry"].as_str() {
                Some(registry) => format!("{registry} (a registry's refresh token)"),
                None => display_resource(&t),
            };
            let what = match t["key_id"].as_str() {
                Some(kid) => format!("{what} ({} for the key {})", s(&t["token_type"]), &kid[..kid.len().min(16)]),
                None => what,
            };
            let what = match t["capabilities"].as_str() {
                Some(c) => format!("{what} ({c})"),
                None => what,
            };
            let exp = t["expires_on"].as_i64().unwrap_or(0);
            // Several tenants' tokens for one resource: say whose each is.
            let tenant = t["tenant_id"].as_str().filter(|_| !others.is_empty()).map(|id| format!("  (tenant {id})")).unwrap_or_default();
            match lines.iter_mut().find(|(w, tn, _)| *w == what && *tn == tenant) {
                Some(line) => line.2 = line.2.max(exp),
                None => lines.push((what, tenant, exp)),
            }
        }
        for (what, tenant, exp) in lines {
            out.push_str(&format!("    {what}  {}{tenant}\n", expiry_phrase(exp, now)));
        }
    }
    out
}
