//! `entra-token emulator`: a local Microsoft Entra ID for demos and for other people's
//! tests, on 127.0.0.1 only. It serves what a client of Entra sees (token endpoints v2
//! and v1 with every grant, device code, authorize with PKCE, OpenID and instance
//! discovery, JWKS with RS256-signed tokens, Entra-shaped errors, managed-identity
//! endpoints), prints `export NAME=value` lines a shell can eval, then an empty line, and
//! serves until stopped. Tokens it mints name the emulator as issuer and carry
//! `"emulator": true`. Reached only through its own subcommand and `demo`, never from the
//! cached path.

mod config;
pub(crate) mod demo;
mod grants;
mod http;
mod keys;
mod routes;
mod signin;
mod sshcert;
mod state;
mod token_request;
mod wire;

pub(crate) use config::Approve;

use std::io::{BufRead, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::Args;

use crate::error::{Error, Result};
use crate::log::warn;

#[derive(Debug, Args, Clone)]
pub(crate) struct EmulatorArgs {
    /// Port on 127.0.0.1 (default: a free port chosen by the OS).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Address to listen on; only 127.0.0.1 (or localhost) is served.
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDR")]
    pub bind: String,
    /// Serve plain http instead of https (MSAL and the Azure SDKs refuse a plain-http authority).
    #[arg(long)]
    pub http: bool,
    /// TOML file with tenants, apps, users and token lifetimes (docs/emulator.md); default: one of each.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Device code and browser sign-ins: approved at once, or after a click on the emulator's page.
    #[arg(long, value_enum)]
    pub approve: Option<Approve>,
    /// The first tenant's domain instead of the config's (default contoso.com).
    #[arg(long, value_name = "DOMAIN")]
    pub tenant: Option<String>,
    /// The first app's client id instead of the config's.
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// The first person's username instead of the config's (default alice@contoso.com).
    #[arg(long, value_name = "USERNAME")]
    pub user: Option<String>,
    /// Access token lifetime, e.g. 3600, 10m, 2h.
    #[arg(long, value_name = "DURATION")]
    pub token_lifetime: Option<String>,
    /// Where the signing key, CA and the product's own config live (default: the cache's entra-token/emulator).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Also export IDENTITY_ENDPOINT/IDENTITY_HEADER (App Service) and AZURE_POD_IDENTITY_AUTHORITY_HOST (IMDS).
    #[arg(long)]
    pub managed_identity: bool,
    /// Write the serving process's id to this file.
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
    /// Print the exports, then keep serving in the background and return (stop it with `kill $(cat PID_FILE)`).
    #[arg(long)]
    pub background: bool,
    /// The shell the exports are printed for: `sh` (export NAME=value) or `powershell`
    /// ($env:NAME = 'value'; load them with `| Out-String | Invoke-Expression`).
    #[arg(long, value_enum, default_value_t = Shell::Sh)]
    pub shell: Shell,
}

/// The shell whose syntax the printed exports use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Shell {
    Sh,
    Powershell,
}

impl Shell {
    /// One variable's line: `export K=V` (POSIX-quoted) or `$env:K = 'V'` (PowerShell).
    fn line(self, k: &str, v: &str) -> String {
        match self {
            Shell::Sh => format!("export {k}={}\n", quote(v)),
            // In a single-quoted PowerShell string only quotes are special (`'` and the
            // typographic single quotes PowerShell takes as `'`), each written twice.
            Shell::Powershell => {
                let quoted: String = v.chars().flat_map(|c| if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') { vec![c, c] } else { vec![c] }).collect();
                format!("$env:{k} = '{quoted}'\n")
            }
        }
    }
}

/// A running emulator: where it is and what a client needs to use it.
pub(crate) struct Running {
    pub url: String,
    /// NAME, value: the exports, in order.
    pub exports: Vec<(String, String)>,
    /// Held while it serves: one emulator per state directory.
    _lock: crate::fs::FileLock,
}

fn default_state_dir() -> Result<PathBuf> {
    crate::fs::cache_home().map(|c| c.join("entra-token").join("emulator")).ok_or_else(|| Error::bad_input("no cache directory for the emulator's state: give --state-dir DIR"))
}

/// Binds, makes keys and certificates, and serves on a background thread of this process.
pub(crate) fn start(args: &EmulatorArgs) -> Result<Running> {
    if !matches!(args.bind.as_str(), "127.0.0.1" | "localhost") {
        return Err(Error::bad_input(format!("the emulator serves on 127.0.0.1 only, not on '{}': it is a local test double, never a network service", args.bind)));
    }
    let mut settings = config::Settings::load(args.config.as_deref())?;
    if let Some(a) = args.approve {
        settings.approve = a;
    }
    if let Some(l) = &args.token_lifetime {
        settings.lifetime = config::lifetime(l)?;
    }
    settings.override_first(args.tenant.as_deref(), args.client_id.as_deref(), args.user.as_deref())?;
    let dir = match &args.state_dir {
        Some(d) => d.clone(),
        None => default_state_dir()?,
    };
    crate::fs::create_private_dir(&dir).map_err(|e| Error::bad_input_hint(format!("cannot create the emulator's state directory {}", dir.display()), "give another --state-dir").because(e))?;
    // One emulator per state directory: a second would replace the CA and config the first's
    // clients use (breaking its TLS) and take over its pid file.
    let lock = crate::fs::lock(&dir.join("emulator.lock"), std::time::Duration::ZERO, || {}).map_err(|e| match e {
        crate::fs::LockError::TimedOut => already_serving(&dir),
        crate::fs::LockError::Fs(e) => Error::caused("cannot lock the emulator's state directory", e),
    })?;
    let signer = Arc::new(keys::Signer::load_or_make(&dir)?);
    let listener = TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), args.port))
        .map_err(|e| Error::bad_input_hint(format!("cannot listen on 127.0.0.1:{}", args.port), "pick another --port, or omit it for a free one").because(e))?;
    let port = listener.local_addr().map_err(|e| Error::caused("cannot read the listening address", e))?.port();
    let (tls, scheme) = if args.http { (None, "http") } else { (Some(keys::tls(&dir)?), "https") };
    let url = format!("{scheme}://127.0.0.1:{port}");
    let identity_header = config::made_up_secret();
    let ssh_ca = sshcert::SshCa::new().map_err(|_| Error::general("the emulator could not make its SSH CA key"))?;
    let ca_line = dir.join("ssh-user-ca.pub");
    crate::fs::write_private_at(&ca_line, format!("{}\n", ssh_ca.public_line()).as_bytes()).map_err(|e| Error::caused(format!("cannot write {}", ca_line.display()), e))?;
    // entra-token's cache beside the state holds what an earlier start issued: its refresh
    // tokens died with that process and its authority (port) is gone, so `status` would
    // show them as another tenant's sign-in. Each start begins with an empty one.
    match std::fs::remove_dir_all(dir.join("cache")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => warn!("cannot empty {}: {e}", dir.join("cache").display()),
        _ => {}
    }
    let exports = exports(&url, &settings, tls.as_ref(), &dir, args.managed_identity.then_some(identity_header.as_str()))?;
    // The same lines for another terminal (`. DIR/exports.sh`, PowerShell: `. DIR/exports.ps1`),
    // and who serves them.
    for (shell, file) in [(Shell::Sh, "exports.sh"), (Shell::Powershell, "exports.ps1")] {
        let mut text = format!("# entra-token emulator: process {} at {url}\n", std::process::id());
        text.extend(exports.iter().map(|(k, v)| shell.line(k, v)));
        let path = dir.join(file);
        crate::fs::write_private_at(&path, text.as_bytes()).map_err(|e| Error::caused(format!("cannot write {}", path.display()), e))?;
    }
    let shared: state::Shared = Arc::new(Mutex::new(state::State::new(url.clone(), settings, signer, ssh_ca, identity_header)));
    let handler: http::Handler = Arc::new(move |req: &http::Request| routes::handle(&shared, req));
    let config = tls.map(|t| t.config);
    std::thread::Builder::new().name("emulator-accept".into()).spawn(move || http::serve(listener, config, handler)).map_err(|e| Error::caused("cannot start the emulator's thread", e))?;
    Ok(Running { url, exports, _lock: lock })
}

/// The error for a second start on a state directory an emulator serves from.
fn already_serving(dir: &Path) -> Error {
    let sh = dir.join("exports.sh");
    let who = std::fs::read_to_string(&sh).ok().and_then(|t| t.lines().next().and_then(|l| l.strip_prefix("# entra-token emulator: ")).map(str::to_string));
    let pid = who.as_deref().and_then(|w| w.strip_prefix("process ")).and_then(|w| w.split(' ').next()).unwrap_or("PID").to_string();
    Error::bad_input_hint(
        format!("an emulator already serves from {} ({}); to use it from another shell, load its exports: . {} (PowerShell: . {})", dir.display(), who.as_deref().unwrap_or("another process"), sh.display(), dir.join("exports.ps1").display()),
        format!("stop it first (`kill {pid}`) to start a new one, or give this one its own --state-dir"),
    )
}

/// `'…'` for a POSIX shell.
fn quote(v: &str) -> String {
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:@=+,".contains(&b)) {
        return v.to_string();
    }
    format!("'{}'", v.replace('\'', "'\\''"))
}

/// The variables that point clients (ours, MSAL, the Azure SDKs, curl, Python, Node) at the emulator.
fn exports(url: &str, s: &config::Settings, tls: Option<&keys::Tls>, dir: &Path, identity_header: Option<&str>) -> Result<Vec<(String, String)>> {
    let tenant = s.first_tenant();
    let mut out: Vec<(String, String)> = vec![("AZURE_AUTHORITY_HOST".into(), url.into()), ("AZURE_TENANT_ID".into(), tenant.domain.clone())];
    if let Some((id, app)) = s.apps.iter().find(|(_, a)| a.secret.is_some()) {
        out.push(("AZURE_CLIENT_ID".into(), id.clone()));
        out.push(("AZURE_CLIENT_SECRET".into(), app.secret.clone().unwrap_or_default()));
    }
    if let Some(u) = s.users.first() {
        out.push(("ENTRA_EMULATOR_USERNAME".into(), u.username.clone()));
        out.push(("ENTRA_EMULATOR_PASSWORD".into(), u.password.clone()));
    }
    if let Some(t) = tls {
        let (bundle, ca) = (t.bundle_file.display().to_string(), t.ca_file.display().to_string());
        out.extend([("SSL_CERT_FILE".into(), bundle.clone()), ("REQUESTS_CA_BUNDLE".into(), bundle.clone()), ("CURL_CA_BUNDLE".into(), bundle), ("NODE_EXTRA_CA_CERTS".into(), ca)]);
    }
    // entra-token itself: its own config (a `default` profile signing the person in at the
    // emulator's tenant, an `app` profile for the exported service principal) and cache,
    // beside the emulator's state, so the user's real ones are never touched.
    let product_config = dir.join("entra-token.toml");
    let profiles = format!(
        "# Written by `entra-token emulator` for the emulator at {url}; its tokens are for local tests only.\n[profiles.default]\nflow = \"device-code\"\ntenant = \"{t}\"\nstorage = \"file\"\n\n[profiles.app]\nflow = \"client-credentials\"\ntenant = \"{t}\"\nclient_id = \"{c}\"\nclient_secret_env = \"AZURE_CLIENT_SECRET\"\nstorage = \"file\"\n",
        t = tenant.domain,
        c = s.apps.iter().find(|(_, a)| a.secret.is_some()).map(|(id, _)| id.as_str()).unwrap_or(""),
    );
    let profiles = keep_added_profiles(&product_config, profiles);
    crate::fs::write_private_at(&product_config, profiles.as_bytes()).map_err(|e| Error::caused(format!("cannot write {}", product_config.display()), e))?;
    out.push(("ENTRA_TOKEN_CONFIG".into(), product_config.display().to_string()));
    out.push(("ENTRA_TOKEN_CACHE_DIR".into(), dir.join("cache").display().to_string()));
    if let Some(h) = identity_header {
        out.push(("IDENTITY_ENDPOINT".into(), format!("{url}/msi/token")));
        out.push(("IDENTITY_HEADER".into(), h.to_string()));
        out.push(("AZURE_POD_IDENTITY_AUTHORITY_HOST".into(), url.to_string()));
    }
    Ok(out)
}

/// The config this start writes (`fresh`: its own `default` and `app` profiles), with what
/// the user added to the last one kept: profiles made with `profile add` (the README's
/// `ci`), a default chosen with `profile default`. Restarting the emulator must not lose them.
fn keep_added_profiles(path: &Path, fresh: String) -> String {
    use toml_edit::{DocumentMut, Item};
    let Ok(old) = std::fs::read_to_string(path) else { return fresh };
    // The first line, which says whose file this is, stays first.
    let (header, body) = fresh.split_once('\n').unwrap_or(("", &fresh));
    let (Ok(old), Ok(mut new)) = (old.parse::<DocumentMut>(), body.parse::<DocumentMut>()) else {
        warn!("{} did not parse; writing the emulator's profiles anew", path.display());
        return fresh;
    };
    let mut position = 100;
    for (key, item) in old.iter() {
        match (key, item.as_table()) {
            ("profiles", Some(profiles)) => {
                for (name, profile) in profiles.iter().filter(|(n, _)| !matches!(*n, "default" | "app")) {
                    let mut profile = profile.clone();
                    if let Item::Table(t) = &mut profile {
                        t.set_position(Some(position));
                        position += 1;
                    }
                    if let Some(into) = new.get_mut("profiles").and_then(Item::as_table_mut) {
                        into.insert(name, profile);
                    }
                }
            }
            (_, _) if item.is_value() => {
                new.insert(key, item.clone());
            }
            _ => {}
        }
    }
    format!("{header}\n{new}")
}

/// The command: start, print the exports and an empty line, serve until stopped.
pub(crate) fn run(args: &EmulatorArgs) -> Result<ExitCode> {
    if args.background {
        return background(args);
    }
    let running = start(args)?;
    let mut text = String::new();
    for (k, v) in &running.exports {
        text.push_str(&args.shell.line(k, v));
    }
    text.push('\n');
    // The pid file exists by the time a script has read the empty line.
    if let Some(p) = &args.pid_file {
        crate::fs::write_private_at(p, format!("{}\n", std::process::id()).as_bytes()).map_err(|e| Error::caused(format!("cannot write the pid file {}", p.display()), e))?;
    }
    crate::protocols::write_stdout(text.as_bytes())?;
    warn!("emulator serving {} (not Microsoft Entra ID: tokens say so); stop with Ctrl-C", running.url);
    loop {
        std::thread::park();
    }
}

/// `--background`: the same command without it, in a child whose exports we pass on.
fn background(args: &EmulatorArgs) -> Result<ExitCode> {
    // The child's stderr is not ours: say here why it would stop (one already serving).
    let dir = match &args.state_dir {
        Some(d) => d.clone(),
        None => default_state_dir()?,
    };
    if let Err(crate::fs::LockError::TimedOut) = crate::fs::lock(&dir.join("emulator.lock"), std::time::Duration::ZERO, || {}) {
        return Err(already_serving(&dir));
    }
    let exe = std::env::current_exe().map_err(|e| Error::caused("cannot find this program to start it in the background", e))?;
    let mut argv: Vec<std::ffi::OsString> = vec!["emulator".into(), "--bind".into(), args.bind.clone().into(), "--port".into(), args.port.to_string().into()];
    let flags: [(&str, Option<std::ffi::OsString>); 9] = [
        ("--config", args.config.as_ref().map(|p| p.clone().into_os_string())),
        ("--tenant", args.tenant.clone().map(Into::into)),
        ("--client-id", args.client_id.clone().map(Into::into)),
        ("--user", args.user.clone().map(Into::into)),
        ("--token-lifetime", args.token_lifetime.clone().map(Into::into)),
        ("--state-dir", args.state_dir.as_ref().map(|p| p.clone().into_os_string())),
        ("--pid-file", args.pid_file.as_ref().map(|p| p.clone().into_os_string())),
        ("--approve", args.approve.map(|a| if a == Approve::Click { "click" } else { "auto" }.into())),
        ("--shell", Some(if args.shell == Shell::Powershell { "powershell" } else { "sh" }.into())),
    ];
    for (flag, value) in flags {
        if let Some(v) = value {
            argv.push(flag.into());
            argv.push(v);
        }
    }
    argv.extend(args.http.then(|| "--http".into()));
    argv.extend(args.managed_identity.then(|| "--managed-identity".into()));
    crate::child::keep_our_std_handles();
    let mut child = std::process::Command::new(exe)
        .args(argv)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| Error::caused("cannot start the emulator in the background", e))?;
    let mut text = String::new();
    if let Some(out) = child.stdout.take() {
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            text.push_str(&line);
            text.push('\n');
            if line.is_empty() {
                break;
            }
        }
    }
    if !text.ends_with("\n\n") {
        let _ = child.kill();
        let _ = child.wait();
        return Err(Error::general("the background emulator stopped before it served; run `entra-token emulator` in the foreground to see why"));
    }
    std::io::stdout().write_all(text.as_bytes()).map_err(|e| Error::caused("cannot write to stdout", e))?;
    warn!("emulator serving in the background as process {}", child.id());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_values_survive_a_posix_shell() {
        assert_eq!(quote("https://127.0.0.1:8443"), "https://127.0.0.1:8443");
        assert_eq!(quote("/tmp/a b/ca.pem"), "'/tmp/a b/ca.pem'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$(rm -rf ~)"), "'$(rm -rf ~)'");
    }

    #[test]
    fn export_values_survive_powershell() {
        assert_eq!(Shell::Powershell.line("AZURE_AUTHORITY_HOST", "https://127.0.0.1:8443"), "$env:AZURE_AUTHORITY_HOST = 'https://127.0.0.1:8443'\n");
        assert_eq!(Shell::Powershell.line("X", "C:\\Users\\o'brien\\ca.pem"), "$env:X = 'C:\\Users\\o''brien\\ca.pem'\n");
        // No expansion inside single quotes: `$(...)` and backticks stay text.
        assert_eq!(Shell::Powershell.line("X", "$(Remove-Item ~) `n"), "$env:X = '$(Remove-Item ~) `n'\n");
        assert_eq!(Shell::Powershell.line("X", "a\u{2019}; rm"), "$env:X = 'a\u{2019}\u{2019}; rm'\n");
        assert_eq!(Shell::Sh.line("X", "a b"), "export X='a b'\n");
    }
}
