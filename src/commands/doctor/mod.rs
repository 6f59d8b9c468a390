//! `entra-token doctor`: one screen of ✓/✗ lines saying whether a token can be had here
//! and, for every ✗, the command that fixes it: the config and the profile (and where it
//! came from), which source `auto` would use, the cache's permissions, where refresh
//! tokens are kept, the authority's reachability and the clock skew against it, and
//! which tools are wired to us. Exit 1 when anything is broken; `-o json` for scripts.

mod agent;
mod wiring;

use crate::cache;
use crate::commands::OutputFormat;
use crate::clock::{self, Deadline};
use crate::config::{self, ConfigFile, FlowKind, Profile};
use crate::error::Error;
use crate::http::{Http, RetryPolicy};
use clap::Args;
use serde::Serialize;
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// A clock this far from the authority's makes tokens look expired or not yet valid.
const MAX_SKEW: i64 = 300;

#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    /// Profile to check (default: the one `get-token` would use).
    #[arg(short, long)]
    pub profile: Option<String>,
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Skip the network check of the authority.
    #[arg(long)]
    pub offline: bool,
    /// Time limit for the authority check.
    #[arg(long, default_value = "5s", value_parser = clock::parse_duration)]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    Ok,
    Fail,
    /// A fact, neither good nor bad (a tool not wired, a check skipped).
    Info,
    /// Works, but not as one may think (a `cp1` profile wired to a tool that cannot bring
    /// a claims challenge back); not a failure.
    Warn,
}

#[derive(Debug, Serialize)]
pub(crate) struct Check {
    pub name: &'static str,
    pub status: Status,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

fn ok(name: &'static str, message: String) -> Check {
    Check { name, status: Status::Ok, message, fix: None, details: Vec::new() }
}
fn fail(name: &'static str, message: String, fix: impl Into<String>) -> Check {
    Check { name, status: Status::Fail, message, fix: Some(fix.into()), details: Vec::new() }
}
fn info(name: &'static str, message: String) -> Check {
    Check { name, status: Status::Info, message, fix: None, details: Vec::new() }
}

pub(crate) fn run(args: &DoctorArgs) -> crate::error::Result<ExitCode> {
    let checks = checks(args);
    let broken = checks.iter().any(|c| c.status == Status::Fail);
    let text = match args.output {
        OutputFormat::Json => format!("{}\n", serde_json::json!({ "ok": !broken, "checks": checks })),
        OutputFormat::Text => {
            let colour = crate::log::colour_wanted(std::io::stdout().is_terminal(), crate::env::os(crate::env::NO_COLOR).as_deref(), crate::env::os(crate::env::TERM).as_deref());
            render(&checks, colour)
        }
    };
    crate::protocols::write_stdout(text.as_bytes())?;
    Ok(if broken { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// One line per check, its details and fix indented below it.
pub(crate) fn render(checks: &[Check], colour: bool) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        let (mark, style) = match c.status {
            Status::Ok => ("✓", "\x1b[32m"),
            Status::Fail => ("✗", "\x1b[1;31m"),
            Status::Info => ("·", "\x1b[2m"),
            Status::Warn => ("!", "\x1b[33m"),
        };
        let mark = if colour { format!("{style}{mark}\x1b[0m") } else { mark.to_string() };
        // Messages may quote outside text (server errors, account names): escaped; the marks' colours are ours.
        let esc = crate::log::escape;
        let message = esc(&c.message);
        match (&c.fix, c.status) {
            // A fact's hint fits on its own line: the screen stays short.
            (Some(f), Status::Info) => out.push_str(&format!("{mark} {:width$}  {message} ({})\n", c.name, esc(f))),
            _ => out.push_str(&format!("{mark} {:width$}  {message}\n", c.name)),
        }
        for d in &c.details {
            out.push_str(&format!("  {:width$}    {}\n", "", esc(d)));
        }
        if let (Some(f), Status::Fail | Status::Warn) = (&c.fix, c.status) {
            out.push_str(&format!("  {:width$}    fix: {}\n", "", esc(f)));
        }
    }
    out
}

fn checks(args: &DoctorArgs) -> Vec<Check> {
    let mut out = Vec::new();
    let path = config::config_path();
    let file = config_check(path.as_deref(), &mut out);
    // Under ENTRA_TOKEN_AGENT the agent's profiles answer: this machine's are not checked.
    let agent = agent::check(args.timeout);
    let under_agent = agent.is_some();
    out.extend(agent);
    let profile = if under_agent { None } else { profile_check(file.as_ref(), path.as_deref(), args.profile.as_deref(), &mut out) };
    if let Some(p) = &profile {
        secrets_check(p, &mut out);
        out.push(auto_check(p));
        out.extend(pipelines_check(p));
        out.extend(account_check(p));
    }
    out.push(cache_check());
    out.push(store_check(profile.as_ref()));
    match &profile {
        Some(_) if args.offline => out.push(info("authority", "not checked (--offline)".into())),
        Some(p) if matches!(p.flow, FlowKind::ManagedIdentity | FlowKind::AzureCli) => {
            out.push(info("authority", format!("not used by flow {}", p.flow.name())));
        }
        Some(p) => out.extend(authority_check(p, args.timeout)),
        None if under_agent => out.push(info("authority", "not checked here: the token agent signs in".into())),
        None => out.push(info("authority", "not checked: no profile".into())),
    }
    let ctx = wiring::Ctx { file: file.as_ref(), config_path: path.as_deref(), self_exe: crate::commands::setup::self_exe().ok() };
    out.push(wiring::git(&ctx));
    out.push(wiring::kubectl(&ctx));
    out.push(wiring::cargo(&ctx));
    out.push(wiring::on_path(&ctx, "az"));
    out.push(wiring::on_path(&ctx, "azd"));
    out.push(wiring::docker(&ctx));
    out
}

fn config_check(path: Option<&Path>, out: &mut Vec<Check>) -> Option<ConfigFile> {
    let Some(path) = path else {
        out.push(fail("config", "no config location: HOME is not set".into(), "set ENTRA_TOKEN_CONFIG to a file path"));
        return None;
    };
    if !path.exists() {
        out.push(ok("config", format!("no file at {} (profiles come from the environment or the built-in default)", path.display())));
        return Some(ConfigFile::default());
    }
    // The same verdict loading it gives: someone else's, or open to others' changes.
    if let Err(e @ crate::fs::FsError { cause: crate::fs::Cause::Unsafe { .. }, .. }) = crate::fs::check_trusted_file(path) {
        out.push(fail("config", format!("{} is refused: {}", path.display(), e.cause_text()), e.hint().unwrap_or_default()));
        return None;
    }
    match config::load_file(path) {
        Ok(f) => {
            out.push(ok("config", format!("{} parses ({})", path.display(), crate::log::count(f.profiles.len(), "profile", "profiles"))));
            Some(f)
        }
        Err(e) => {
            let message = e.detail();
            out.push(fail("config", format!("{} does not parse: {message}", path.display()), format!("fix {} (or move it aside and run `entra-token profile add NAME`)", path.display())));
            None
        }
    }
}

fn profile_check(file: Option<&ConfigFile>, path: Option<&Path>, requested: Option<&str>, out: &mut Vec<Check>) -> Option<Profile> {
    let Some(file) = file else {
        out.push(fail("profile", "not resolved: the config file does not parse".into(), "fix the config file first"));
        return None;
    };
    match config::resolve_in(file, path, requested) {
        Ok(p) => {
            let mut c = ok("profile", format!("'{}' chosen by {}, from {}", p.name, p.name_source.describe(), p.origin.describe()));
            c.details.push(format!("flow {}, tenant {}, client {}", p.flow.name(), p.authority.tenant, p.client_id));
            out.push(c);
            Some(p)
        }
        Err(e @ Error::ProfileNotFound { .. }) => {
            out.push(fail("profile", e.to_string(), "entra-token profile list; entra-token profile add NAME"));
            None
        }
        Err(e) => {
            let fix = e.hint().unwrap_or_else(|| "fix the profile in the config file".into());
            out.push(fail("profile", e.to_string(), fix));
            None
        }
    }
}

/// Secrets are checked for presence only: their values are never read into the report.
fn secrets_check(p: &Profile, out: &mut Vec<Check>) {
    for (what, kind, place, present) in crate::commands::profile::secret_places(p) {
        let c = match (kind.as_str(), present) {
            ("env", true) => ok("secret", format!("{what}: {place} is set")),
            ("env", false) => fail("secret", format!("{what}: {place} is not set"), format!("export {place}=… (the value is never shown or logged)")),
            (_, false) => fail("secret", format!("{what}: file {place} is missing"), format!("create it, or fix the path in profile '{}'", p.name)),
            (_, true) => match (crate::fs::check_trusted_file(Path::new(&place)), std::fs::metadata(&place)) {
                // The same verdict the flow's read gives.
                (Err(e @ crate::fs::FsError { cause: crate::fs::Cause::Unsafe { .. }, .. }), _) => {
                    fail("secret", format!("{what}: file {place} is refused: {}", e.cause_text()), e.hint().unwrap_or_default())
                }
                (_, Ok(m)) if loose(&m) => fail("secret", format!("{what}: file {place} is readable by other users"), format!("chmod 600 {place}")),
                _ => ok("secret", format!("{what}: file {place} exists")),
            },
        };
        out.push(c);
    }
}

#[cfg(unix)]
fn loose(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    m.permissions().mode() & 0o077 != 0
}
#[cfg(not(unix))]
fn loose(_: &std::fs::Metadata) -> bool {
    false
}

use crate::env::is_set as env_set;

/// Which source `auto` would use, and why each earlier one does not apply: the chain's own
/// plan (`flows::auto::plan`), so doctor and the chain cannot disagree. Where the plan
/// leaves it to run time (IMDS, az, the person), doctor adds what it can see without the
/// network: IMDS is never probed by doctor.
fn auto_check(p: &Profile) -> Check {
    use crate::flows::auto::{self, Source, Verdict};
    use crate::flows::{azure_cli, managed_identity, workload_identity};
    if p.flow != FlowKind::Auto {
        return info("auto", format!("not used: profile '{}' names flow {}", p.name, p.flow.name()));
    }
    let plan = match auto::plan(p) {
        Ok(plan) => plan,
        Err(e) => return fail("auto", e.to_string(), e.hint().unwrap_or_default()),
    };
    let sources: Vec<(&str, Result<String, String>)> = plan
        .steps
        .iter()
        .map(|(source, verdict)| {
            let v = match (source, verdict) {
                (_, Verdict::Skip(why)) => Err(why.clone()),
                (Source::Environment, Verdict::Use(sp)) if sp.flow == FlowKind::Password => Ok("AZURE_CLIENT_ID/AZURE_USERNAME/AZURE_PASSWORD".to_string()),
                (Source::Environment, Verdict::Use(sp)) if sp.settings.client_id.is_some() && sp.settings.client_id == p.settings.client_id => {
                    Ok(format!("the profile's own app {} and its {}", sp.client_id, if sp.secret.is_some() { "secret" } else { "certificate" }))
                }
                (Source::Environment, Verdict::Use(sp)) if sp.secret.is_some() => Ok("AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET".to_string()),
                (Source::Environment, Verdict::Use(_)) => Ok("AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_CERTIFICATE_PATH".to_string()),
                (Source::WorkloadIdentity, Verdict::Use(sp)) => Ok(workload_identity::token_source(&sp.settings).map(|s| s.describe()).unwrap_or_default()),
                (Source::ManagedIdentity, Verdict::Use(_) | Verdict::Try(_)) => match managed_identity::detect() {
                    managed_identity::Kind::Imds { base } => Err(format!("no IDENTITY_ENDPOINT or MSI_ENDPOINT; IMDS ({base}) answers only on Azure VMs and is probed for 1s by the chain, not by doctor")),
                    managed_identity::Kind::ServiceFabric { endpoint } => match managed_identity::service_fabric_pin(&endpoint) {
                        Ok(pin) => Ok(format!("Service Fabric endpoint in the environment, TLS pinned to {} thumbprint {} (IDENTITY_SERVER_THUMBPRINT)", pin.digest_name(), pin.display())),
                        Err(e) => Err(crate::error::one_line(&e)),
                    },
                    kind => Ok(format!("{} endpoint in the environment", kind.name())),
                },
                (Source::AzureCli, _) => match (azure_cli::current_account(p.settings.subscription.as_deref()), azure_cli::find_az()) {
                    (Some(a), _) => Ok(format!("az is signed in as {}", a.user)),
                    (None, Ok(Some(az))) => Ok(format!("{} (not signed in yet, so it may fail)", az.display())),
                    (None, _) => Err(format!("not signed in (no azureProfile.json in {})", azure_cli::config_dir().map(|d| d.display().to_string()).unwrap_or_else(|| "~/.azure".into()))),
                },
                (Source::Interactive, _) => {
                    let terminal = std::io::stderr().is_terminal() || std::io::stdin().is_terminal();
                    if let Some(who) = signed_in(p) {
                        Ok(format!("signed in as {who}: its refresh token, no prompt"))
                    } else if !p.allows_prompts() {
                        Err("the profile sets interactive = false".into())
                    } else if terminal {
                        Ok("a terminal to sign in on".into())
                    } else {
                        Err(format!("no terminal to prompt on (run `{}` in one)", p.login_command()))
                    }
                }
                (s, _) => Ok(s.name().to_string()),
            };
            (source.name(), v)
        })
        .collect();
    let chosen = sources.iter().position(|(_, r)| r.is_ok());
    let mut c = match chosen {
        Some(i) => ok("auto", format!("would use {} ({})", sources[i].0, sources[i].1.as_ref().map(String::as_str).unwrap_or(""))),
        None => fail("auto", "no source applies here".into(), format!("run `{}` in a terminal, run `az login`, or set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET", p.login_command())),
    };
    for (i, (name, r)) in sources.iter().enumerate() {
        match r {
            Err(why) if chosen.is_none_or(|c| i < c) => c.details.push(format!("{name}: {why}")),
            _ => {}
        }
    }
    c
}

/// Azure Pipelines: the service connection, the OIDC endpoint and whether the job's
/// token reached this step (presence only; its value is never read into the report).
fn pipelines_check(p: &Profile) -> Option<Check> {
    use crate::flows::azure_pipelines::{ACCESS_TOKEN_VAR, MAP_TOKEN_HINT, OIDC_URI_VAR};
    use crate::flows::workload_identity::{self, TokenSource};
    if !matches!(p.flow, FlowKind::WorkloadIdentity | FlowKind::Auto) {
        return None;
    }
    let in_step = env_set(OIDC_URI_VAR);
    let Some(TokenSource::AzurePipelines { url, service_connection_id: id }) = workload_identity::token_source(&p.settings) else {
        return in_step.then(|| {
            let mut c = info("pipelines", "an Azure Pipelines step, but no service connection is named".into());
            c.fix = Some("set service_connection_id in the profile, or run in AzureCLI@2 (it sets AZURESUBSCRIPTION_SERVICE_CONNECTION_ID)".into());
            c
        });
    };
    let Some(url) = url else {
        let message = format!("service connection {id}, but {OIDC_URI_VAR} is not set: not an Azure Pipelines step");
        return Some(match p.flow {
            FlowKind::Auto => info("pipelines", format!("{message}; auto moves on")),
            _ => fail("pipelines", message, "run this profile in a pipeline step"),
        });
    };
    if let Err(e) = crate::authority::check_secure_url(&url, OIDC_URI_VAR) {
        return Some(fail("pipelines", e.to_string(), "use the value Azure Pipelines sets (https)"));
    }
    if !env_set(ACCESS_TOKEN_VAR) {
        return Some(fail("pipelines", format!("service connection {id}: {ACCESS_TOKEN_VAR} is not set in this step"), MAP_TOKEN_HINT));
    }
    let host = crate::authority::host_of(&url.to_ascii_lowercase()).unwrap_or_default().to_string();
    Some(ok("pipelines", format!("service connection {id} through {host}; {ACCESS_TOKEN_VAR} is set")))
}

/// The account a profile signed in as (`entra-token login`), read without creating anything.
fn signed_in(p: &Profile) -> Option<String> {
    let dir = cache::default_dir().ok().filter(|d| d.is_dir())?;
    let cache = cache::Cache::open(dir).ok()?;
    let link = crate::rt_store::linked(&cache, p).ok()??;
    Some(link.username.unwrap_or(link.key.home_account_id))
}

/// For flows where a person signs in: whether this profile has an account yet.
fn account_check(p: &Profile) -> Option<Check> {
    if !p.flow.is_user_flow() {
        return None;
    }
    Some(match signed_in(p) {
        Some(who) => ok("account", format!("signed in as {who}")),
        None => {
            let mut c = info("account", "not signed in yet".into());
            c.fix = Some(format!("`{}` in a terminal", p.login_command()));
            c
        }
    })
}

/// How the cache directory and its files are kept to their owner, in this platform's words.
const PRIVATE_DIR: &str = if cfg!(windows) { "an ACL for you alone" } else { "0700" };
const PRIVATE_FILES: &str = if cfg!(windows) { "each yours alone" } else { "all 0600 and yours" };

fn cache_check() -> Check {
    let dir = match cache::default_dir() {
        Ok(d) => d,
        Err(e) => return fail("cache", e.to_string(), e.hint().unwrap_or_else(|| "set ENTRA_TOKEN_CACHE_DIR".into())),
    };
    let meta = match std::fs::metadata(&dir) {
        Ok(m) => m,
        Err(_) => return ok("cache", format!("{} does not exist yet (created {PRIVATE_DIR} on first use)", dir.display())),
    };
    if !meta.is_dir() {
        return fail("cache", format!("{} is not a directory", dir.display()), "remove it, or point ENTRA_TOKEN_CACHE_DIR at a directory".to_string());
    }
    // The same walk and checks every command's open makes (links, owners and modes on the way).
    if let Err(e) = crate::fs::open_private_dir(&dir, false) {
        return fail("cache", e.to_string(), e.hint().unwrap_or_default());
    }
    let mut entries = 0;
    let mut bad: Vec<(String, String)> = Vec::new();
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(m) = entry.path().symlink_metadata() else { continue };
        if m.file_type().is_symlink() {
            bad.push((name, "is a symlink".into()));
            continue;
        }
        if !m.is_file() {
            continue;
        }
        entries += 1;
        if let Err(e) = cache::check_private(&entry.path(), &m, false) {
            bad.push((name, e.detail()));
        }
    }
    if bad.is_empty() {
        return ok("cache", format!("{} is private ({PRIVATE_DIR}, {}, {PRIVATE_FILES})", dir.display(), crate::log::count(entries, "file", "files")));
    }
    let fix = if cfg!(windows) {
        format!("remove the files listed (they are fetched again), or icacls \"{}\" /reset /T, then run `entra-token doctor`", dir.display())
    } else {
        format!("chmod 600 {}/*  (and remove any symlinks in it)", dir.display())
    };
    let mut c = fail("cache", format!("{} has {}: refused until fixed", dir.display(), crate::log::count(bad.len(), "unsafe file", "unsafe files")), fix);
    c.details = bad.into_iter().take(5).map(|(n, m)| format!("{n}: {m}")).collect();
    c
}

/// Where the profile's secrets live: its refresh tokens (the person flows) and its PoP key
/// (any flow but managed identity's) go where its `storage` says, one choice for both
/// (`os_keyring`), and whether the OS secret store answers here (the probe sign-in uses; read-only).
fn store_check(p: Option<&Profile>) -> Check {
    use crate::rt_store::keyring::{self as keyring_store, FALLBACK_MARKER, Storage};
    let Some(p) = p else {
        return info("store", "not checked: no profile".into());
    };
    if p.flow == FlowKind::ManagedIdentity {
        return info("store", format!("no refresh tokens or PoP keys: flow {} keeps none", p.flow.name()));
    }
    let what = if p.flow.is_user_flow() || p.flow == FlowKind::Auto { "refresh tokens and PoP keys" } else { "PoP keys" };
    let dir = cache::default_dir().unwrap_or_default();
    let files = format!("{} files in {}", crate::os_keyring::private_files(), dir.display());
    let mut c = match p.storage {
        Storage::File => ok("store", format!("storage = \"file\": {what} in {files}")),
        Storage::Keyring => match keyring_store::probe() {
            Ok(()) => ok("store", format!("storage = \"keyring\": the OS secret store answers: {what} go there")),
            Err(why) => fail("store", format!("storage = \"keyring\", but no OS secret store is usable here for {what} ({why})"), "start a Secret Service (e.g. gnome-keyring), or set storage = \"auto\" or \"file\""),
        },
        Storage::Auto => {
            let marker = dir.join(FALLBACK_MARKER);
            if marker.exists() {
                let why = std::fs::read_to_string(&marker).unwrap_or_default();
                let mut c = ok("store", format!("{what} in {files} (the OS secret store was unusable: {})", why.trim()));
                c.details.push(format!("delete {} to try the OS secret store again", marker.display()));
                c
            } else {
                match keyring_store::probe() {
                    Ok(()) => ok("store", format!("the OS secret store answers: {what} go there")),
                    Err(why) => ok("store", format!("{what} in {files} (no OS secret store: {why})")),
                }
            }
        }
    };
    if what == "PoP keys" {
        c.details.push(format!("no refresh tokens: flow {} keeps none", p.flow.name()));
    }
    c
}

/// GETs the tenant's OpenID configuration: reachability, and the clock against `Date`.
fn authority_check(p: &Profile, timeout: Duration) -> Vec<Check> {
    let url = format!("{}/{}/v2.0/.well-known/openid-configuration", p.authority.host, p.authority.tenant);
    let http = Http::new();
    let start = Instant::now();
    let reply = match http.get(&url, &[("Accept", "application/json")], Deadline::after(timeout), RetryPolicy::NONE) {
        Ok(r) => r,
        Err(e) => {
            let fix = e.hint().unwrap_or_else(|| "check the network path to the authority".into());
            return vec![fail("authority", e.to_string(), fix)];
        }
    };
    let ms = start.elapsed().as_millis();
    let mut out = Vec::new();
    if reply.status == 200 && serde_json::from_slice::<serde_json::Value>(&reply.body).is_ok_and(|v| v["token_endpoint"].is_string()) {
        out.push(ok("authority", format!("{url} answered in {ms} ms")));
    } else {
        let e = crate::oauth::error_from_reply(&reply, &url);
        let fix = e.hint().unwrap_or_else(|| "check the profile's authority and tenant".into());
        out.push(fail("authority", format!("{} (HTTP {})", e, reply.status), fix));
    }
    out.push(match reply.date.as_deref().and_then(parse_http_date) {
        Some(server) => {
            let skew = clock::now() - server;
            if skew.abs() > MAX_SKEW {
                let dir = if skew > 0 { "ahead of" } else { "behind" };
                fail("clock", format!("this clock is {}s {dir} the authority's", skew.abs()), "sync the clock (e.g. `sudo timedatectl set-ntp true`); tokens look expired or not yet valid otherwise")
            } else {
                ok("clock", format!("within {}s of the authority's", skew.abs()))
            }
        }
        None => info("clock", "the authority sent no Date header; skew not measured".into()),
    });
    out
}

/// RFC 9110 IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) to unix seconds.
pub(crate) fn parse_http_date(s: &str) -> Option<i64> {
    let fmt = time::macros::format_description!("[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT");
    time::PrimitiveDateTime::parse(s.trim(), &fmt).ok().map(|t| t.assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784111777));
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("garbage"), None);
    }

    #[test]
    fn render_marks_and_fixes() {
        let mut git = info("git", "not wired".into());
        git.fix = Some("entra-token setup git".into());
        let checks = vec![ok("config", "fine".into()), fail("cache", "loose".into(), "chmod 700 d"), git];
        let text = render(&checks, false);
        assert_eq!(text, "✓ config  fine\n✗ cache   loose\n            fix: chmod 700 d\n· git     not wired (entra-token setup git)\n");
        assert!(render(&checks, true).contains("\x1b[1;31m✗\x1b[0m"));
    }
}
