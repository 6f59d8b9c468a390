//! `entra-token serve`: a local token endpoint speaking the App Service managed-identity
//! protocol (`GET /msi/token?resource=R&api-version=2019-08-01` with `X-IDENTITY-HEADER`),
//! so any Azure SDK's ManagedIdentityCredential, or a container given IDENTITY_ENDPOINT and
//! IDENTITY_HEADER, gets tokens from a developer's profile through the same broker and
//! cache as every other front end. Loopback only, a random per-run header secret, and an
//! optional per-profile allow-list of resources. It answers for its profile's identity
//! alone: a request naming another (`client_id`, `object_id`, `mi_res_id`, …) is refused.
//! A blocking std listener with one thread per connection, bounded in total and per local
//! user, and each request head must arrive whole within a deadline (`http::server`), so a
//! slow client can neither hold a thread for long nor take every slot.

use crate::broker::{self, Credential, TokenRequest};
use crate::clock;
use crate::config;
use crate::error::{Error, Result};
use crate::http::server::{self, Request};
use crate::log::{trace, warn};
use crate::secret::Secret;
use clap::Args;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The protocol version App Service speaks and SDKs send.
pub(crate) const API_VERSION: &str = "2019-08-01";
/// Connections served at once; more get 503 at once instead of a thread.
const MAX_CONNECTIONS: usize = 16;
/// Connections one client (a local user, see `crate::peer`) may hold at once, so one
/// user cannot take every slot from another.
const MAX_PER_CLIENT: usize = 4;
/// The whole request head must arrive within this, however it trickles in: a client
/// sending one byte every few seconds is cut off here, not kept alive by each byte.
const HEAD_DEADLINE: Duration = Duration::from_secs(5);
/// A request head larger than 8 KiB is not an SDK asking for a token; a body is never read.
const LIMITS: server::Limits = server::Limits { head: 8 * 1024, body: None, deadline: HEAD_DEADLINE };
/// Writing the (small) answer may take this long.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Profile whose tokens are served (default: the one `get-token` would use).
    #[arg(short, long)]
    pub profile: Option<String>,
    /// Port on 127.0.0.1 (default: a free port chosen by the OS).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Network time limit for each token a request needs, e.g. 30s.
    #[arg(long, default_value = "60s", value_parser = clock::parse_duration)]
    pub timeout: Duration,
    /// Write IDENTITY_ENDPOINT and IDENTITY_HEADER to this file (created mode 0600,
    /// atomically; never through a symlink or over another user's file) instead of stdout.
    #[arg(long, value_name = "PATH")]
    pub env_file: Option<PathBuf>,
}

/// An answer: a status and a JSON body.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Response {
    pub status: u16,
    pub body: String,
}

impl Response {
    /// App Service's error shape, `{"statusCode":N,"message":"…"}` (MSAL and azure-identity
    /// show `statusCode, message`), plus OAuth's `error`/`error_description` that
    /// IMDS-style clients read.
    fn error(status: u16, message: &str) -> Response {
        let code = if status >= 500 { "server_error" } else { "invalid_request" };
        Response { status, body: serde_json::json!({ "statusCode": status, "message": message, "error": code, "error_description": message }).to_string() }
    }
}

/// The answer on the wire: JSON, never cached, and the connection closes after it.
pub(crate) fn encode_response(r: &Response) -> Vec<u8> {
    server::encode(r.status, &[("Content-Type", "application/json; charset=utf-8")], r.body.as_bytes())
}

/// What a request is checked against.
pub(crate) struct Policy {
    /// The profile served, for messages.
    profile: String,
    /// SHA-256 of the header secret: comparing digests leaks nothing about the secret's bytes.
    header_digest: Vec<u8>,
    /// Normalised allowed resources; None: any resource.
    allow: Option<Vec<String>>,
}

fn digest(s: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes()).as_ref().to_vec()
}

/// `keyvault`, `https://vault.azure.net/` and `HTTPS://VAULT.AZURE.NET` are one resource.
fn normalise(resource: &str) -> Option<String> {
    crate::authority::resolve_resource(resource).ok().map(|r| r.trim_end_matches('/').to_ascii_lowercase())
}

impl Policy {
    pub(crate) fn new(profile: &str, header_secret: &Secret<String>, allow: Option<&[String]>) -> Result<Policy> {
        let allow = match allow {
            None => None,
            Some(list) => Some(
                list.iter()
                    .map(|r| normalise(r).ok_or_else(|| Error::bad_input_hint(format!("serve_resources: '{r}' is not a resource"), "use aliases, App ID URIs or GUIDs")))
                    .collect::<Result<Vec<_>>>()?,
            ),
        };
        Ok(Policy { profile: profile.to_string(), header_digest: digest(header_secret.expose()), allow })
    }
}

/// How a request may name a (user-assigned) identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Names {
    Client,
    Object,
    ManagedIdentityResource,
}

/// Every spelling SDKs send: App Service 2019-08-01 (`client_id`, `object_id`,
/// `mi_res_id`), its 2017 protocol (`clientid`, `principal_id`) and IMDS (`client_id`,
/// `object_id`, `msi_res_id`).
const IDENTITY_PARAMS: &[(&str, Names)] = &[
    ("client_id", Names::Client),
    ("clientid", Names::Client),
    ("object_id", Names::Object),
    ("principal_id", Names::Object),
    ("mi_res_id", Names::ManagedIdentityResource),
    ("msi_res_id", Names::ManagedIdentityResource),
];

/// True when `value` names the identity `c` was minted for, judged by the token itself:
/// its application (`appid`/`azp`, for an application's token only, never a person's),
/// its principal (`oid`), or its managed identity's resource id (`xms_mirid`).
fn names_identity(kind: Names, value: &str, c: &Credential) -> bool {
    let claims = crate::jwt::decode(c.access_token.expose()).map(|(_, claims)| claims);
    let claim = |k: &str| claims.as_ref().and_then(|m| m.get(k)).and_then(serde_json::Value::as_str).map(str::to_string);
    let same = |a: Option<String>| a.is_some_and(|a| !value.is_empty() && a.trim_end_matches('/').eq_ignore_ascii_case(value.trim_end_matches('/')));
    match kind {
        Names::Client => {
            let app = c.account.is_none() && claim("idtyp").is_none_or(|t| t == "app");
            app && (same(claim("appid")) || same(claim("azp")) || (claims.is_none() && same(Some(c.client_id.clone()))))
        }
        Names::Object => same(claim("oid")),
        Names::ManagedIdentityResource => same(claim("xms_mirid")),
    }
}

/// The whole protocol: checks, then one broker call. `get` is the broker in real use.
pub(crate) fn handle(req: &Request, peer: IpAddr, policy: &Policy, get: &dyn Fn(&str) -> Result<Credential>) -> Response {
    if !peer.is_loopback() {
        return Response::error(403, "only loopback clients are served");
    }
    match req.header("X-IDENTITY-HEADER") {
        Some(h) if digest(h) == policy.header_digest => {}
        Some(_) => return Response::error(401, "the X-IDENTITY-HEADER value is wrong: use IDENTITY_HEADER as printed by `entra-token serve`"),
        None => return Response::error(401, "missing X-IDENTITY-HEADER: set IDENTITY_HEADER as printed by `entra-token serve`"),
    }
    if req.method != "GET" {
        return Response::error(405, "only GET is served");
    }
    if !matches!(req.path.as_str(), "/" | "/msi/token") {
        return Response::error(404, "the token endpoint is /msi/token");
    }
    match req.query("api-version") {
        Some(API_VERSION) => {}
        Some(other) => return Response::error(400, &format!("api-version {other} is not supported; use {API_VERSION}")),
        None => return Response::error(400, &format!("api-version is missing; use {API_VERSION}")),
    }
    let Some(resource) = req.query("resource").filter(|r| !r.trim().is_empty()) else {
        return Response::error(400, "resource is missing");
    };
    let Some(wanted) = normalise(resource) else {
        return Response::error(400, &format!("'{resource}' is not a resource"));
    };
    if let Some(allow) = &policy.allow
        && !allow.contains(&wanted)
    {
        return Response::error(403, &format!("resource '{resource}' is not in this profile's serve_resources"));
    }
    let named: Vec<(&str, &str, Names)> = IDENTITY_PARAMS.iter().filter_map(|(p, kind)| req.query(p).map(|v| (*p, v, *kind))).collect();
    match get(resource) {
        Ok(c) if !named.iter().all(|(_, v, kind)| names_identity(*kind, v, &c)) => {
            let (param, value) = named.iter().find(|(_, v, kind)| !names_identity(*kind, v, &c)).map(|(p, v, _)| (*p, *v)).unwrap_or_default();
            let shown: String = value.chars().take(200).flat_map(char::escape_debug).collect();
            Response::error(
                400,
                &format!(
                    "this endpoint serves only profile '{}' (client_id {}); {param}={shown} names another identity: run `entra-token serve --profile <that identity's profile>` for it",
                    policy.profile, c.client_id
                ),
            )
        }
        Ok(c) => Response {
            status: 200,
            body: serde_json::json!({
                "access_token": c.access_token.expose(),
                "expires_on": c.expires_on.to_string(),
                "resource": resource,
                "token_type": c.token_type,
                "client_id": c.client_id,
            })
            .to_string(),
        },
        Err(e) => {
            let status = match e.exit_code() {
                4 => 502,
                5 => 504,
                1 if matches!(e, Error::General { .. } | Error::Cache { .. } | Error::Config { .. }) => 500,
                _ => 400,
            };
            Response::error(status, &crate::error::one_line(&e))
        }
    }
}

fn serve_connection(mut stream: TcpStream, peer: SocketAddr, policy: &Policy, profile: &Option<String>, timeout: Duration) {
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let response = match server::read_request(&mut stream, &LIMITS) {
        Ok(req) => {
            // App Service's token revocation (MSAL given a claims challenge, docs/cae.md): the
            // caller names the revoked token by its SHA-256 (hex); only when it is the token we
            // hold is a new one fetched, so nobody can make us refresh at will.
            let revoked = req.query("token_sha256_to_refresh").map(str::to_ascii_lowercase);
            let get = |resource: &str| {
                let ask = |force_refresh: bool| {
                    broker::get_token(&TokenRequest {
                        profile: profile.clone(),
                        resource: Some(resource.to_string()),
                        timeout,
                        prompts: false,
                        force_refresh,
                        ..TokenRequest::default()
                    })
                };
                match ask(false)? {
                    c if c.from_cache && revoked.as_deref() == Some(broker::fingerprint(c.access_token.expose()).as_str()) => {
                        trace!(1, "serve: the caller reports the cached token revoked; getting a new one");
                        ask(true)
                    }
                    c => Ok(c),
                }
            };
            let r = handle(&req, peer.ip(), policy, &get);
            trace!(1, "serve: {} {} resource={} from {peer} → {}", req.method, req.path, req.query("resource").unwrap_or("-"), r.status);
            r
        }
        Err(408) => {
            trace!(1, "serve: {peer} sent no whole request within {} s; cut off", HEAD_DEADLINE.as_secs());
            Response::error(408, &format!("the request did not arrive within {} s", HEAD_DEADLINE.as_secs()))
        }
        Err(431) => Response::error(431, "the request head is too large"),
        Err(status) => Response::error(status, "not an HTTP/1.1 request"),
    };
    let _ = stream.write_all(&encode_response(&response));
    let _ = stream.flush();
}

/// Live connections, in total and per client.
#[derive(Default)]
struct Slots {
    total: usize,
    per_client: HashMap<crate::peer::Client, usize>,
}

/// One admitted connection; its slot is freed when the guard drops.
struct Slot(Arc<Mutex<Slots>>, crate::peer::Client);

impl Slot {
    /// A slot for `client`, or None when all are taken or the client holds its share.
    fn take(slots: &Arc<Mutex<Slots>>, client: crate::peer::Client) -> Option<Slot> {
        let mut s = slots.lock().unwrap_or_else(|e| e.into_inner());
        let mine = s.per_client.get(&client).copied().unwrap_or(0);
        if s.total >= MAX_CONNECTIONS || mine >= MAX_PER_CLIENT {
            return None;
        }
        s.total += 1;
        s.per_client.insert(client, mine + 1);
        Some(Slot(slots.clone(), client))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        s.total = s.total.saturating_sub(1);
        if let Some(n) = s.per_client.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                s.per_client.remove(&self.1);
            }
        }
    }
}

/// The lock beside `--env-file` (`FILE.lock`), taken without waiting: held, it means a
/// `serve` still running owns the file.
fn own_env_file(path: &std::path::Path) -> Result<crate::fs::FileLock> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    match crate::fs::lock(&path.with_file_name(name), Duration::ZERO, || {}) {
        Ok(l) => Ok(l),
        Err(crate::fs::LockError::TimedOut) => Err(Error::bad_input_hint(
            format!("another `entra-token serve` is still running with {}", path.display()),
            "stop it first (its clients use the endpoint and header in that file), or pick another --env-file",
        )),
        Err(crate::fs::LockError::Fs(e)) => Err(Error::BadInput { message: String::new(), hint: e.hint(), source: Some(e.into()) }),
    }
}

pub(crate) fn run(args: &ServeArgs) -> Result<ExitCode> {
    // Under ENTRA_TOKEN_AGENT the agent's profiles answer (a devcontainer or SSH host has no
    // config of its own): none is read here, and the agent's allow-lists decide what each
    // resource gets; `serve_resources` is a local profile's.
    let through_agent = crate::agent::from_env().is_some();
    let (profile, shown, allow) = if through_agent {
        (args.profile.clone(), args.profile.clone().unwrap_or_else(|| "the token agent's default".into()), None)
    } else {
        let p = config::resolve(args.profile.as_deref())?;
        (Some(p.name.clone()), p.name, p.settings.serve_resources)
    };
    let header = new_secret()?;
    let policy = Arc::new(Policy::new(&shown, &header, allow.as_deref())?);
    let listener = TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), args.port)).map_err(|e| {
        Error::bad_input_hint(format!("cannot listen on 127.0.0.1:{}", args.port), "pick another --port, or omit it for a free one").because(e)
    })?;
    let port = listener.local_addr().map_err(|e| Error::caused("cannot read the listening address", e))?.port();
    // The protocol answer of this command: two lines a shell or `docker --env-file` reads,
    // on stdout or in a file only this user can read.
    let vars = Secret::new(format!("IDENTITY_ENDPOINT=http://127.0.0.1:{port}/msi/token\nIDENTITY_HEADER={}\n", header.expose()));
    // Held while this serve runs: a second serve with the same file must not replace the
    // endpoint and header the first one's clients are using.
    let _owner = args.env_file.as_deref().map(own_env_file).transpose()?;
    match &args.env_file {
        Some(path) => {
            crate::fs::write_private_at(path, vars.expose().as_bytes()).map_err(|e| Error::BadInput { message: String::new(), hint: e.hint(), source: Some(e.into()) })?;
            warn!("wrote IDENTITY_ENDPOINT and IDENTITY_HEADER to {} (mode 0600)", path.display());
        }
        None => crate::protocols::write_stdout(vars.expose().as_bytes())?,
    }
    let allowed = match &allow {
        Some(list) => list.join(", "),
        None if through_agent => "what the token agent allows".into(),
        None => "any resource".into(),
    };
    warn!("serving profile '{shown}' on http://127.0.0.1:{port}/msi/token ({allowed}); stop with Ctrl-C");
    let slots = Arc::new(Mutex::new(Slots::default()));
    let name = Arc::new(profile);
    for conn in listener.incoming() {
        let Ok(mut stream) = conn else { continue };
        let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else { continue };
        let client = crate::peer::client(local, peer);
        trace!(2, "serve: connection from {peer} ({client:?})");
        let Some(slot) = Slot::take(&slots, client) else {
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = stream.write_all(&encode_response(&Response::error(503, "too many requests at once; try again")));
            continue;
        };
        let (policy, name, timeout) = (policy.clone(), name.clone(), args.timeout);
        let spawned = std::thread::Builder::new().name("serve".into()).spawn(move || {
            let _slot = slot;
            serve_connection(stream, peer, &policy, &name, timeout);
        });
        if let Err(e) = spawned {
            warn!("cannot start a thread for {peer}: {e}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// 32 random bytes, base64url: the per-run IDENTITY_HEADER.
fn new_secret() -> Result<Secret<String>> {
    use base64::Engine;
    let mut b = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).map_err(|_| Error::general("no randomness available for the header secret"))?;
    Ok(Secret::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn cred() -> Credential {
        Credential { client_id: "cid".into(), ..Credential::sample("tok", 1_900_000_000) }
    }

    fn req(head: &str) -> Request {
        server::parse_head(head.as_bytes()).unwrap()
    }

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn parses_a_request_head() {
        let r = req("GET /msi/token?resource=https%3A%2F%2Fvault.azure.net&api-version=2019-08-01 HTTP/1.1\r\nHost: x\r\nx-identity-header: s\r\n\r\n");
        assert_eq!(r.path, "/msi/token");
        assert_eq!(r.query("resource"), Some("https://vault.azure.net"));
        assert_eq!(r.header("X-IDENTITY-HEADER"), Some("s"));
        assert_eq!(server::parse_head(b"GARBAGE\r\n\r\n"), Err(400));
    }

    #[test]
    fn header_is_required_and_checked() {
        let policy = Policy::new("dev", &Secret::new("s3cret".into()), None).unwrap();
        let called = Cell::new(0);
        let get = |_: &str| {
            called.set(called.get() + 1);
            Ok(cred())
        };
        let q = "GET /msi/token?resource=graph&api-version=2019-08-01 HTTP/1.1\r\n";
        assert_eq!(handle(&req(&format!("{q}\r\n")), LOCAL, &policy, &get).status, 401);
        assert_eq!(handle(&req(&format!("{q}X-IDENTITY-HEADER: nope\r\n\r\n")), LOCAL, &policy, &get).status, 401);
        assert_eq!(called.get(), 0, "no token for an unauthenticated caller");
        let ok = handle(&req(&format!("{q}X-IDENTITY-HEADER: s3cret\r\n\r\n")), LOCAL, &policy, &get);
        assert_eq!(ok.status, 200);
        let v: serde_json::Value = serde_json::from_str(&ok.body).unwrap();
        assert_eq!(v, serde_json::json!({"access_token":"tok","expires_on":"1900000000","resource":"graph","token_type":"Bearer","client_id":"cid"}));
        let remote = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7));
        assert_eq!(handle(&req(&format!("{q}X-IDENTITY-HEADER: s3cret\r\n\r\n")), remote, &policy, &get).status, 403);
        assert_eq!(called.get(), 1);
    }

    #[test]
    fn allow_list_and_parameters() {
        let policy = Policy::new("dev", &Secret::new("s".into()), Some(&["keyvault".into(), "https://graph.microsoft.com/".into()])).unwrap();
        let get = |_: &str| Ok(cred());
        let call = |target: &str| handle(&req(&format!("GET {target} HTTP/1.1\r\nX-IDENTITY-HEADER: s\r\n\r\n")), LOCAL, &policy, &get);
        assert_eq!(call("/msi/token?api-version=2019-08-01&resource=https://vault.azure.net/").status, 200);
        assert_eq!(call("/?api-version=2019-08-01&resource=https%3A%2F%2Fgraph.microsoft.com").status, 200);
        let denied = call("/msi/token?api-version=2019-08-01&resource=https://management.azure.com/");
        assert_eq!(denied.status, 403);
        assert!(denied.body.contains("serve_resources"), "{}", denied.body);
        assert_eq!(call("/msi/token?api-version=2017-09-01&resource=graph").status, 400);
        assert_eq!(call("/msi/token?resource=graph").status, 400);
        assert_eq!(call("/msi/token?api-version=2019-08-01").status, 400);
        assert_eq!(call("/other?api-version=2019-08-01&resource=graph").status, 404);
    }

    #[test]
    fn broker_errors_keep_the_app_service_shape() {
        let policy = Policy::new("dev", &Secret::new("s".into()), None).unwrap();
        let get = |_: &str| Err(Error::Network { url: "u".into(), message: "connection refused".into(), hint: None });
        let r = handle(&req("GET /msi/token?api-version=2019-08-01&resource=graph HTTP/1.1\r\nX-IDENTITY-HEADER: s\r\n\r\n"), LOCAL, &policy, &get);
        assert_eq!(r.status, 502);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["statusCode"], 502);
        assert!(v["message"].as_str().unwrap().contains("connection refused"));
        let wire = String::from_utf8(encode_response(&r)).unwrap();
        assert!(wire.starts_with("HTTP/1.1 502 Bad Gateway\r\n") && wire.contains(&format!("Content-Length: {}\r\n", r.body.len())), "{wire}");
    }
}
