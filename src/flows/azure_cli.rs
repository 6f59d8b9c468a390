//! Azure CLI reuse: a developer who ran `az login` gets tokens without signing in again
//! and without starting Python. We read az's MSAL cache (`msal_token_cache.json`) and
//! `azureProfile.json`, serve a valid access token from it or redeem its refresh token
//! with the Azure CLI client id, and fall back to `az account get-access-token` when the
//! cache is encrypted or absent.
//!
//! We write nothing into az's files: az (through msal-extensions) owns their format and
//! their lock, and a half-understood write could break `az` itself. Entra does not revoke a
//! refresh token when it is redeemed, so az's own copy stays good; what we get is kept in
//! our cache like any other token.

use super::FlowCtx;
use super::auto::Step;
use super::az_cache::{self, MsalCache, MsalToken};
use crate::authority::{self, Endpoint};
use crate::config::AZURE_CLI_CLIENT_ID;
use crate::error::{Error, Result};
use crate::oauth::{self, TokenReply};
use crate::secret::Secret;
use serde::Deserialize;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use az_cache::MAX_FILE;
/// Set on the `az` we start, so a wrapper that leads back to us cannot loop. Our own `az`
/// shim (`protocols::az`) sets it on itself too, so it never runs any `az`.
pub(crate) use crate::env::AZ_SHIM_DEPTH as DEPTH_VAR;
/// Hosts that name the public cloud in MSAL cache entries.
const PUBLIC_ALIASES: &[&str] = &["login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"];

pub(crate) use crate::config::az_cloud::config_dir;

/// The account `az` uses now: the default subscription's user and tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AzAccount {
    pub user: String,
    /// `user` or `servicePrincipal`.
    pub user_type: String,
    pub tenant: String,
    /// The subscription's id (az reports it as `subscription`; a tenant-level account's is its tenant).
    pub subscription: String,
    /// Which managed identity an `az login --identity` account is (`MSI`, `MSIClient-…`,
    /// `MSIObject-…`, `MSIResource-…`): every user-assigned one has the same user name
    /// (`userAssignedIdentity`), so this alone tells them apart. Empty for other accounts.
    pub assigned_identity: String,
    /// When az last wrote `azureProfile.json` (nanoseconds since the epoch; empty where
    /// unknown). az rewrites it at every `az login` and `az logout` (and `az account set`),
    /// and its user name does not tell two home accounts apart (a deleted and re-created
    /// user, a work and a personal account with one address): a new sign-in under the same
    /// name is a new account as far as our cache is concerned.
    pub written: String,
}

/// Pure: `azureProfile.json` bytes (az writes them with a UTF-8 BOM) → the account az uses
/// for `subscription` (its id or name, any case, as `az --subscription` takes it; None when
/// az has no such subscription), or with none named the current account: the default
/// subscription's, else the first one's. Tenant-level accounts (`--allow-no-subscriptions`)
/// are subscriptions too; an entry of another shape is passed over, never the file. Only
/// the subscriptions of az's active `cloud` count, as in az (an entry naming no cloud counts).
pub(crate) fn parse_profile(bytes: &[u8], subscription: Option<&str>, cloud: &str) -> Option<AzAccount> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let file: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let str_of = |v: &serde_json::Value, k: &str| v.get(k).and_then(serde_json::Value::as_str).map(str::to_string);
    let mut subs: Vec<(bool, AzAccount)> = file
        .get("subscriptions")?
        .as_array()?
        .iter()
        .filter_map(|s| {
            let user = s.get("user")?;
            if str_of(s, "environmentName").is_some_and(|c| c != cloud) {
                return None;
            }
            if let Some(wanted) = subscription {
                let named = |k: &str| str_of(s, k).is_some_and(|v| v.trim().eq_ignore_ascii_case(wanted.trim()));
                if !named("id") && !named("name") {
                    return None;
                }
            }
            let account = AzAccount {
                user: str_of(user, "name").filter(|n| !n.is_empty())?,
                user_type: str_of(user, "type").unwrap_or_else(|| "user".into()),
                tenant: str_of(s, "tenantId").unwrap_or_default(),
                subscription: str_of(s, "id").unwrap_or_default(),
                assigned_identity: str_of(user, "assignedIdentityInfo").unwrap_or_default(),
                written: String::new(),
            };
            Some((s.get("isDefault").and_then(serde_json::Value::as_bool).unwrap_or(false), account))
        })
        .collect();
    let at = subs.iter().position(|(default, _)| *default).unwrap_or(0);
    (at < subs.len()).then(|| subs.swap_remove(at).1)
}

/// The account az uses for the profile: that of its `subscription` when it names one
/// (`az account get-access-token --subscription S` routes here), else az's current one.
pub(crate) fn current_account(subscription: Option<&str>) -> Option<AzAccount> {
    let (bytes, written) = crate::fs::read_users_file_written(&config_dir()?.join("azureProfile.json"), MAX_FILE)?;
    let account = parse_profile(&bytes, subscription, &crate::config::az_cloud::active_name())?;
    let written = written.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_nanos().to_string()).unwrap_or_default();
    Some(AzAccount { written, ..account })
}

/// The `azure-cli` flow.
pub(crate) fn acquire(ctx: &FlowCtx<'_>) -> Result<TokenReply> {
    match acquire_step(ctx) {
        Step::Token(t) => Ok(t),
        Step::Unavailable(why) => Err(Error::auth(format!("azure cli: {why}"), Some("run `az login`, or pick another flow".into()))),
        Step::Failed(e) => Err(e),
    }
}

pub(crate) fn acquire_step(ctx: &FlowCtx<'_>) -> Step {
    let Some(dir) = config_dir() else {
        return Step::Unavailable("no home directory to find ~/.azure in".into());
    };
    let resource = match ctx.target.resource_for_v1() {
        Ok(r) => r,
        Err(e) => return Step::Failed(e),
    };
    let subscription = ctx.profile.settings.subscription.as_deref();
    let account = current_account(subscription);
    // Read only for a person signed in to az: the encrypted cache may cost a D-Bus round trip.
    let cache = || az_cache::load(&dir, ctx.cache);
    match &account {
        // az is signed in, but to no subscription of that id or name: az would refuse too.
        None if subscription.is_some() && current_account(None).is_some() => {
            Step::Unavailable(format!("the Azure CLI has no subscription '{}' (see `az account list`)", subscription.unwrap_or_default().escape_debug()))
        }
        None => match find_az() {
            Ok(Some(_)) => run_az(ctx, &resource, "no azureProfile.json"),
            _ => Step::Unavailable(format!("not signed in to the Azure CLI (no azureProfile.json in {})", dir.display())),
        },
        Some(a) if a.user_type != "user" => run_az(ctx, &resource, &format!("az is signed in as the service principal {}", a.user)),
        Some(a) => match cache() {
            Ok(cache) => from_msal_cache(ctx, a, &cache, &resource),
            Err(why) => run_az(ctx, &resource, &why),
        },
    }
}

/// Does an MSAL `environment` name the host we redeem at?
fn same_environment(env: &str, authority_host: &str) -> bool {
    // MSAL records the host without its port.
    let ours = authority::host_of(&authority_host.to_ascii_lowercase()).unwrap_or_default().to_string();
    let env = env.to_ascii_lowercase();
    env == ours || (PUBLIC_ALIASES.contains(&env.as_str()) && PUBLIC_ALIASES.contains(&ours.as_str()))
}

/// Does a cached target serve this request? Each scope asked for exactly (case aside),
/// and `R/.default` by a token whose scopes all belong to resource `R` itself (the v2
/// `.default` rule): never by a token of another resource that merely starts with `R`
/// (`api://contoso/payroll/.default` does not serve `api://contoso`). ARM answers to two
/// audiences; az signs in for `management.core.windows.net`, so a request for
/// `management.azure.com` is served by az's token too. Not the other way: a request for
/// `management.core.windows.net` gets a token of exactly that audience, as az gives it.
fn covers(target: &str, scopes: &[String], resource: &str) -> bool {
    let either_arm = arm_as_az(resource) != resource.to_ascii_lowercase();
    let norm = |s: &str| if either_arm { arm_as_az(s) } else { s.to_ascii_lowercase() };
    let have: Vec<String> = target.split_whitespace().filter(|s| !authority::is_oidc_scope(s)).map(norm).collect();
    // A scope's resource: everything before its last `/` (az writes ARM's with a double slash).
    let resource_of = |s: &str| s.rsplit_once('/').map(|(r, _)| r.trim_end_matches('/').to_string());
    let wanted = norm(resource).trim_end_matches('/').to_string();
    scopes.iter().filter(|s| !authority::is_oidc_scope(s)).all(|s| {
        let s = norm(s);
        have.contains(&s)
            || (s.ends_with("/.default")
                && resource_of(&s).as_deref() == Some(wanted.as_str())
                && !have.is_empty()
                && have.iter().all(|h| resource_of(h).as_deref() == Some(wanted.as_str())))
    })
}

/// Lower-cased, with ARM's newer audience written as az's (`https://management.core.windows.net/`).
fn arm_as_az(s: &str) -> String {
    let s = s.to_ascii_lowercase();
    match s.strip_prefix("https://management.azure.com") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("https://management.core.windows.net{}", if rest.is_empty() { "/" } else { rest }),
        _ => s,
    }
}

fn from_msal_cache(ctx: &FlowCtx<'_>, account: &AzAccount, cache: &MsalCache, resource: &str) -> Step {
    let host = &ctx.profile.authority.host;
    let tenant = if ctx.profile.authority.is_multi_tenant() { account.tenant.clone() } else { ctx.profile.authority.tenant.clone() };
    // MSAL's get_accounts(username): one account per home account id. Two people with one
    // username (a work and a personal account, a B2B guest of two home tenants) are
    // refused, as az refuses them: never the first one found.
    let mut homes: Vec<&str> = cache.accounts.values().filter(|a| a.username.eq_ignore_ascii_case(&account.user) && same_environment(&a.environment, host)).map(|a| a.home_account_id.as_str()).collect();
    homes.sort_unstable();
    homes.dedup();
    let home = match homes.as_slice() {
        [] => return run_az(ctx, resource, &format!("az's token cache has no account {} for {host}", account.user)),
        [one] => one.to_string(),
        _ => {
            return Step::Failed(Error::auth(
                format!("az's token cache holds multiple accounts with the username '{}' ({} home accounts); az refuses to choose between them, and so does entra-token", account.user.escape_debug(), homes.len()),
                Some(format!("run `az logout --username {}` and `az login` again as the one you mean", account.user.escape_debug())),
            ));
        }
    };
    let now = crate::clock::now();
    let ours = |t: &MsalToken| t.home_account_id == home && same_environment(&t.environment, host);
    let at = cache.access_tokens.values().find(|t| {
        ours(t)
            && t.client_id == AZURE_CLI_CLIENT_ID
            && t.is_bearer()
            && t.realm.as_deref().is_some_and(|r| r.eq_ignore_ascii_case(&tenant))
            && t.target.as_deref().is_some_and(|tg| covers(tg, &ctx.target.scopes, resource))
            && t.expires_on.is_some_and(|e| e - now > crate::oauth::DEFAULT_MIN_VALIDITY)
            && t.refresh_on.is_none_or(|r| r > now)
    });
    // az's cached access tokens are bearer tokens: a key-bound request redeems the refresh
    // token; so do a challenge and cp1 (az's cached token was not asked for with it).
    let bearer = *ctx.binding == crate::oauth::Binding::Bearer;
    if let Some(at) = at.filter(|_| ctx.claims.is_none() && bearer && !ctx.profile.cae()) {
        crate::log::trace!(1, "serving an access token from az's cache for {}", account.user);
        let reply = TokenReply {
            access_token: at.secret.clone(),
            token_type: "Bearer".into(),
            expires_on: at.expires_on.unwrap_or(now),
            refresh_on: None,
            refresh_token: None,
            id_token: None,
            client_info: None,
            resource: Some(resource.to_string()),
            foci: None,
        };
        // The same gate as a token endpoint's answer: az's cache file is outside input too.
        return match oauth::accept(reply, now, "az's token cache (msal_token_cache)") {
            Ok(t) => Step::Token(t),
            Err(e) => Step::Failed(e),
        };
    }
    let rt = cache.refresh_tokens.values().find(|t| ours(t) && (t.client_id == AZURE_CLI_CLIENT_ID || t.family_id.as_deref() == Some("1")));
    let Some(rt) = rt else {
        return run_az(ctx, resource, &format!("az's token cache has no refresh token for {}", account.user));
    };
    crate::log::trace!(1, "redeeming az's refresh token for {} in tenant {tenant}", account.user);
    match redeem(ctx, &tenant, &rt.secret) {
        Ok(t) => Step::Token(t),
        Err(Error::Auth { message, aad, .. }) if aad.as_ref().is_some_and(|a| a.error == "invalid_grant") => {
            Step::Unavailable(format!("the az login of {} has expired ({message}); run `az login`", account.user))
        }
        Err(e) => Step::Failed(e),
    }
}

fn redeem(ctx: &FlowCtx<'_>, tenant: &str, rt: &Secret<String>) -> Result<TokenReply> {
    let authority = authority::Authority::new(&ctx.profile.authority.host, tenant)?;
    let url = authority.token_url(Endpoint::V2);
    let mut scopes: Vec<String> = ctx.target.scopes.clone();
    for s in ["openid", "profile", "offline_access"] {
        if !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_string());
        }
    }
    let scope = scopes.join(" ");
    let form = vec![("grant_type", "refresh_token"), ("client_id", AZURE_CLI_CLIENT_ID), ("refresh_token", rt.expose().as_str()), ("scope", scope.as_str())];
    let claims = crate::flows::sent_claims(ctx);
    let mut form = super::with_claims(form, claims.as_deref());
    ctx.binding.add_to(&mut form);
    oauth::redeem(ctx.http, &url, &form, ctx.deadline)
}

/// The first `az` on PATH that is not this program (our own `az` shim must never call
/// itself): not a symlink to it, nor on Windows a hard link or copy of our .exe.
pub(crate) fn find_az() -> Result<Option<PathBuf>> {
    let me = std::env::current_exe().and_then(std::fs::canonicalize).ok();
    let names: &[&str] = if cfg!(windows) { &["az.cmd", "az.exe", "az.bat"] } else { &["az"] };
    let Some(path) = crate::env::os(crate::env::PATH) else { return Ok(None) };
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            let Ok(real) = std::fs::canonicalize(&candidate) else { continue };
            if !real.is_file() {
                continue;
            }
            // The check `setup` uses: on Windows our az.exe is a hard link or copy.
            if me.as_ref().is_some_and(|me| crate::fs::program::runs(me, &candidate)) {
                crate::log::trace!(1, "skipping {}: it is entra-token itself", candidate.display());
                continue;
            }
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

/// `az account get-access-token`: the fallback when az's cache cannot be read directly.
fn run_az(ctx: &FlowCtx<'_>, resource: &str, why_not_cache: &str) -> Step {
    if *ctx.binding != crate::oauth::Binding::Bearer {
        return Step::Unavailable(format!("{why_not_cache}, and `az account get-access-token` gives bearer tokens only, not {}", ctx.binding.a_kind()));
    }
    if crate::env::is_present(DEPTH_VAR) {
        return Step::Unavailable(format!("{why_not_cache}, and entra-token answering as `az` never runs another az"));
    }
    let az = match find_az() {
        Ok(Some(az)) => az,
        _ => return Step::Unavailable(format!("{why_not_cache}, and no `az` (other than entra-token) is on PATH")),
    };
    let mut cmd = Command::new(&az);
    cmd.args(["account", "get-access-token", "--output", "json", "--resource", resource]);
    if !ctx.profile.authority.is_multi_tenant() {
        cmd.args(["--tenant", &ctx.profile.authority.tenant]);
    } else if let Some(sub) = ctx.profile.settings.subscription.as_deref() {
        // az refuses --tenant with --subscription; the subscription names the tenant.
        cmd.args(["--subscription", sub]);
    }
    cmd.env(DEPTH_VAR, "1").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    crate::log::trace!(1, "{why_not_cache}; running {} account get-access-token", az.display());
    let out = match run_with_deadline(cmd, ctx.deadline) {
        Ok(o) => o,
        Err(e) => return Step::Failed(e),
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("no message").trim_start_matches("ERROR: ").to_string();
        let first: String = first.chars().take(300).collect();
        if err.contains("az login") {
            return Step::Unavailable(format!("az is not signed in ({first})"));
        }
        return Step::Failed(Error::auth(format!("`az account get-access-token` failed: {first}"), Some("run it yourself to see why; `az login` may be needed".into())));
    }
    match parse_az_output(&out.stdout, crate::clock::now()) {
        Ok(mut t) => {
            t.resource = Some(resource.to_string());
            Step::Token(t)
        }
        Err(e) => Step::Failed(e),
    }
}

/// Pure: az's JSON → a token. `expires_on` (epoch, az ≥ 2.54) or `expiresOn` (local time).
/// The token, its type and times pass the same gate as a token endpoint's ([`oauth::accept`]).
pub(crate) fn parse_az_output(stdout: &[u8], now: i64) -> Result<TokenReply> {
    #[derive(Deserialize)]
    struct Out {
        #[serde(rename = "accessToken")]
        access_token: Secret<String>,
        #[serde(default, deserialize_with = "oauth::num")]
        expires_on: Option<i64>,
        #[serde(rename = "expiresOn")]
        expires_on_local: Option<String>,
        #[serde(rename = "tokenType")]
        token_type: Option<String>,
    }
    let o: Out = serde_json::from_slice(stdout).map_err(|_| Error::general("`az account get-access-token` printed something that is not its JSON answer"))?;
    let expires_on = o.expires_on.or_else(|| o.expires_on_local.as_deref().and_then(parse_local_time)).unwrap_or(now + 300);
    let reply = TokenReply {
        access_token: o.access_token,
        token_type: o.token_type.unwrap_or_default(),
        expires_on,
        refresh_on: None,
        refresh_token: None,
        id_token: None,
        client_info: None,
        resource: None,
        foci: None,
    };
    oauth::accept(reply, now, "az account get-access-token")
}

/// `2026-11-22 07:00:00.000000` in local time → epoch seconds.
fn parse_local_time(s: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let head = s.split('.').next()?;
    let dt = time::PrimitiveDateTime::parse(head, &format).ok()?;
    let offset = time::UtcOffset::current_local_offset().unwrap_or(time::UtcOffset::UTC);
    Some(dt.assume_offset(offset).unix_timestamp())
}

fn run_with_deadline(mut cmd: Command, deadline: crate::clock::Deadline) -> Result<std::process::Output> {
    let mut child = cmd.spawn().map_err(|e| Error::caused("cannot start az", e))?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let read = |r: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = std::io::Read::read_to_end(&mut r, &mut buf);
            }
            buf
        })
    };
    let out_t = read(stdout.map(|s| Box::new(s) as Box<dyn std::io::Read + Send>));
    let err_t = read(stderr.map(|s| Box::new(s) as Box<dyn std::io::Read + Send>));
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if !deadline.expired() => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Timeout { what: "waiting for `az account get-access-token`".into(), after: deadline.total });
            }
            Err(e) => return Err(Error::caused("waiting for az", e)),
        }
    };
    Ok(std::process::Output { status, stdout: out_t.join().unwrap_or_default(), stderr: err_t.join().unwrap_or_default() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_with_bom_and_default_subscription() {
        let p = b"\xEF\xBB\xBF{\"subscriptions\":[{\"id\":\"1\",\"tenantId\":\"t1\",\"isDefault\":false,\"user\":{\"name\":\"a@x\",\"type\":\"user\"}},{\"id\":\"2\",\"tenantId\":\"t2\",\"isDefault\":true,\"user\":{\"name\":\"b@x\",\"type\":\"user\"}}]}";
        let a = parse_profile(p, None, "AzureCloud").unwrap();
        assert_eq!((a.user.as_str(), a.tenant.as_str()), ("b@x", "t2"));
        // `--subscription`: the account holding it, by id or name; none when az has no such one.
        let a = parse_profile(p, Some("1"), "AzureCloud").unwrap();
        assert_eq!((a.user.as_str(), a.tenant.as_str(), a.subscription.as_str()), ("a@x", "t1", "1"));
        assert!(parse_profile(p, Some("3"), "AzureCloud").is_none());
        // Only the active cloud's subscriptions: az in another cloud has no account here.
        let clouds = br#"{"subscriptions":[{"id":"1","tenantId":"t1","isDefault":true,"environmentName":"AzureCloud","user":{"name":"a@x"}},{"id":"2","tenantId":"t2","environmentName":"EntraTest","user":{"name":"b@x"}}]}"#;
        assert_eq!(parse_profile(clouds, None, "EntraTest").unwrap().user, "b@x");
        assert_eq!(parse_profile(clouds, None, "AzureCloud").unwrap().user, "a@x");
        assert!(parse_profile(clouds, Some("1"), "EntraTest").is_none());
        assert!(parse_profile(b"{\"subscriptions\":[]}", None, "AzureCloud").is_none());
        assert!(parse_profile(b"garbage", None, "AzureCloud").is_none());
        // A tenant-level account, an entry without a user and a null isDefault pass; none is lost to another.
        let p = br#"{"subscriptions":[{"id":"x","user":null},{"id":"t3","name":"N/A(tenant level account)","tenantId":"t3","isDefault":null,"user":{"name":"c@x","type":"user"}},{"id":"sp","tenantId":"t4","isDefault":true,"user":{"name":"app-id","type":"servicePrincipal"}}]}"#;
        let a = parse_profile(p, None, "AzureCloud").unwrap();
        assert_eq!((a.user.as_str(), a.user_type.as_str(), a.tenant.as_str()), ("app-id", "servicePrincipal", "t4"));
        let a = parse_profile(br#"{"subscriptions":[{"user":{"type":"user"}},{"tenantId":"t3","isDefault":null,"user":{"name":"c@x"}}]}"#, None, "AzureCloud").unwrap();
        let a3 = parse_profile(br#"{"subscriptions":[{"id":"t3","name":"N/A(tenant level account)","tenantId":"t3","user":{"name":"c@x"}}]}"#, Some("N/A(TENANT LEVEL ACCOUNT)"), "AzureCloud").unwrap();
        assert_eq!(a3.tenant, "t3");
        assert_eq!((a.user.as_str(), a.user_type.as_str()), ("c@x", "user"));
    }

    #[test]
    fn az_output_both_shapes() {
        let t = parse_az_output(br#"{"accessToken":"a","expiresOn":"2026-11-22 07:00:00.000000","expires_on":1795330800,"tokenType":"Bearer"}"#, 1795327200).unwrap();
        assert_eq!(t.expires_on, 1795330800);
        let t = parse_az_output(br#"{"accessToken":"a","expiresOn":"2026-11-22 07:00:00.000000"}"#, 1795327200).unwrap();
        assert!((t.expires_on - 1795330800).abs() <= 14 * 3600, "{}", t.expires_on);
        assert!(parse_az_output(b"ERROR", 0).is_err());
        for hostile in [r#"{"accessToken":"a\r\nX-Evil: 1","expires_on":1795330800}"#, r#"{"accessToken":"a","tokenType":"Bearer\r\nX: y","expires_on":1795330800}"#] {
            assert!(parse_az_output(hostile.as_bytes(), 1795327200).is_err(), "{hostile}");
        }
        let far = parse_az_output(br#"{"accessToken":"a","expires_on":1e300}"#, 1795327200).unwrap();
        assert_eq!(far.expires_on, 1795327200 + oauth::MAX_LIFETIME);
    }

    #[test]
    fn targets_and_environments() {
        let scopes = vec!["https://management.core.windows.net//.default".to_string()];
        assert!(covers("https://management.core.windows.net//.default", &scopes, "https://management.core.windows.net/"));
        assert!(covers("https://management.core.windows.net//user_impersonation", &scopes, "https://management.core.windows.net/"));
        assert!(!covers("https://graph.microsoft.com/.default", &scopes, "https://management.core.windows.net/"));
        // ARM's two audiences: `-r arm` is served by the token az caches for its own.
        let arm = vec!["https://management.azure.com//.default".to_string()];
        assert!(covers("https://management.core.windows.net//.default", &arm, "https://management.azure.com/"));
        assert!(covers("https://management.core.windows.net//user_impersonation", &arm, "https://management.azure.com/"));
        assert!(!covers("https://management.azure.com.evil.test//.default", &arm, "https://management.azure.com/"));
        // …but az's own audience is answered by a token of exactly that audience, as az does.
        assert!(!covers("https://management.azure.com//.default", &scopes, "https://management.core.windows.net/"));
        assert!(!covers("https://management.azure.com/.default", &scopes, "https://management.core.windows.net/"));
        // A longer resource is another audience, not a narrower scope of this one.
        let contoso = vec!["api://contoso/.default".to_string()];
        assert!(!covers("api://contoso/payroll/.default", &contoso, "api://contoso"));
        assert!(!covers("api://contoso/payroll/read", &contoso, "api://contoso"));
        assert!(covers("api://Contoso/read api://contoso/write", &contoso, "api://contoso"));
        assert!(!covers("api://contosox/read", &contoso, "api://contoso"));
        let exact = vec!["api://contoso/read".to_string()];
        assert!(covers("api://contoso/read openid", &exact, "api://contoso"));
        assert!(!covers("api://contoso/read.all", &exact, "api://contoso"));
        assert!(same_environment("login.microsoftonline.com", "https://login.microsoftonline.com"));
        assert!(same_environment("login.windows.net", "https://login.microsoftonline.com"));
        assert!(same_environment("127.0.0.1", "https://127.0.0.1:8443"));
        assert!(!same_environment("login.microsoftonline.us", "https://login.microsoftonline.com"));
    }
}
