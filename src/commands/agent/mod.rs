//! The agent end: a Unix socket (0600, in a 0700 directory of ours), one thread per
//! connection (bounded in all and per peer), the peer's uid checked before a byte is
//! read, a bounded request read under a total deadline, the policy, an optional
//! confirmation, then the broker with the agent's own profiles and cache. Every failure
//! is one native-protocol error line to that client (naming no profile outside the
//! allow-list); the agent keeps serving.

mod confirm;
mod policy;
mod slots;

use crate::agent::{self as wire, AgentArgs, Confirm};
use policy::Policy;
use serde::Deserialize;
use crate::broker::{self, Credential};
use crate::error::{self, Error, Result};
use crate::log::{line, trace};
use crate::protocols::native;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Connections being read at once, in all and from one peer (a silent client holds its
/// slot for at most the request deadline); more are refused as busy.
const READING: (usize, usize) = (16, 4);
/// Requests being worked on at once (the broker, a sign-in, a confirmation, a wait for a
/// login), in all and for one peer.
const WORKING: (usize, usize) = (32, 8);

struct Shared {
    policy: Policy,
    confirm: Option<Confirm>,
    /// One confirmation question on the terminal at a time.
    tty: Mutex<()>,
    working: Arc<slots::Limit>,
    uid: u32,
}

pub(crate) fn run(args: &AgentArgs) -> Result<ExitCode> {
    // A shell that points at this agent must not make the agent (or what it starts) ask
    // itself: empty is unset to every reader (setenv, not unsetenv, which the binary would
    // otherwise link and resolve at every start).
    // SAFETY: the agent's entry point runs on the main thread before any other thread exists.
    unsafe { std::env::set_var(wire::ENV, "") };
    let policy = Policy::new(&args.allow_profiles, &args.allow_resources)?;
    let socket = match &args.socket {
        Some(s) => s.clone(),
        None => wire::default_socket()?,
    };
    let listener = bind(&socket)?;
    let reading = slots::Limit::new(READING.0, READING.1);
    let shared = Arc::new(Shared { policy, confirm: args.confirm, tty: Mutex::new(()), working: slots::Limit::new(WORKING.0, WORKING.1), uid: crate::peer::my_uid() });
    // ssh-agent's convention: a line a shell can eval, on stdout; the rest goes to stderr.
    crate::protocols::write_stdout(format!("{}={}; export {};\n", wire::ENV, shell_quote(&socket), wire::ENV).as_bytes())?;
    line(format_args!("agent listening on {} (profiles: {}; resources: {}{})", socket.display(), list(&shared.policy.profiles), list(&shared.policy.resources), match args.confirm { Some(c) => format!("; confirming each request ({})", c.name()), None => String::new() }));
    let end = args.timeout.map(|t| std::time::Instant::now() + t);
    loop {
        let left = end.map(|e| e.saturating_duration_since(std::time::Instant::now()));
        if !crate::peer::wait_for_connection(listener.as_fd(), left) {
            let _ = std::fs::remove_file(&socket);
            line(format_args!("agent lifetime ({}) is over; stopped", crate::clock::short_duration(args.timeout.unwrap_or_default().as_secs())));
            return Ok(ExitCode::SUCCESS);
        }
        let conn = listener.accept().map(|(s, _)| s);
        let mut stream = match conn {
            Ok(s) => s,
            Err(e) => {
                trace!(1, "accept failed: {e}");
                continue;
            }
        };
        // Who, before a thread or a byte read: another uid is refused here, and each peer
        // (a process; one `ssh` for a forwarded host) gets its share of the reading slots.
        let peer = match crate::peer::of(stream.as_fd()) {
            Ok(p) => p,
            Err(e) => {
                answer(&mut stream, Err(Error::general(format!("cannot tell who connected ({e}); refused"))));
                continue;
            }
        };
        let who = match peer.pid {
            Some(pid) => format!("uid {} pid {pid}", peer.uid),
            None => format!("uid {}", peer.uid),
        };
        if peer.uid != shared.uid {
            line(format_args!("refused a connection from {who}: not this agent's user (uid {})", shared.uid));
            let e = Error::Agent { code: "forbidden", message: format!("uid {} may not use the agent of uid {}", peer.uid, shared.uid), hint: Some("each user runs their own agent".into()), exit: 3 };
            answer(&mut stream, Err(e));
            continue;
        }
        let Some(reading) = reading.take((peer.uid, peer.pid)) else {
            trace!(1, "{who} has too many connections open; refused as busy");
            answer(&mut stream, Err(busy()));
            continue;
        };
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || serve_one(&shared, &mut stream, (peer.uid, peer.pid), &who, reading));
    }
}

fn busy() -> Error {
    Error::general("the agent is busy with other requests of this client or of others; try again")
}

fn list(items: &[String]) -> String {
    if items.is_empty() { "all".into() } else { items.join(", ") }
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// Binds `socket` with mode 0600 in a 0700 directory of ours (creating it if missing). A socket file left by a dead agent is replaced;
/// a live agent's is not.
fn bind(socket: &Path) -> Result<UnixListener> {
    let dir = socket.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    // Walked from / as every directory we use is (no link, other owner or open mode on
    // the way inside a directory others can change), and created 0700 if missing.
    crate::fs::create_private_dir(&dir).map_err(|e| Error::bad_input_hint(e.to_string(), "pick another --socket"))?;
    check_dir(&dir)?;
    match std::fs::symlink_metadata(socket) {
        Ok(m) if m.file_type().is_socket() => {
            if UnixStream::connect(socket).is_ok() {
                return Err(Error::bad_input_hint(
                    format!("an agent is already listening on {}", socket.display()),
                    format!("use it (export {}={}), or stop it first", wire::ENV, socket.display()),
                ));
            }
            std::fs::remove_file(socket).map_err(|e| Error::general(format!("cannot remove the stale socket {}: {e}", socket.display())))?;
        }
        Ok(_) => return Err(Error::bad_input(format!("{} exists and is not a socket; pick another --socket", socket.display()))),
        Err(_) => {}
    }
    // Between bind and chmod the socket has the umask's mode, but it sits in a directory
    // only we can enter (checked above), so nobody else can reach it in that window.
    let listener = UnixListener::bind(socket).map_err(|e| Error::general(format!("cannot listen on {}: {e}", socket.display())))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600)).map_err(|e| Error::general(format!("cannot chmod {}: {e}", socket.display())))?;
    Ok(listener)
}

/// The socket's directory: a real directory, ours, closed to everyone else (0700).
fn check_dir(dir: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| Error::general(format!("cannot read {}: {e}", dir.display())))?;
    let me = crate::peer::my_uid();
    if !meta.is_dir() {
        return Err(Error::bad_input(format!("{} is not a directory (a symlink?); the agent's socket needs a real directory", dir.display())));
    }
    if meta.uid() != me {
        return Err(Error::bad_input_hint(format!("{} is owned by uid {}, not by you (uid {me})", dir.display(), meta.uid()), "put the socket in a directory of your own (--socket)"));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(Error::bad_input_hint(
            format!("{} is open to other users (mode {:o}); the agent's socket needs a directory only you can use", dir.display(), meta.mode() & 0o777),
            format!("chmod 700 {}, or pick another --socket", dir.display()),
        ));
    }
    Ok(())
}

/// One connection of our own user: what, whether, then the answer. The reading slot is
/// given back once the request is read; the work (a sign-in, a confirmation) holds a
/// working slot instead.
fn serve_one(shared: &Shared, stream: &mut UnixStream, peer: slots::Peer, who: &str, reading: slots::Slot) {
    let request = read_request(stream).and_then(|bytes| decode_request(&bytes));
    drop(reading);
    let named = request.as_ref().ok().and_then(|(req, _)| req.profile.clone());
    let result = request.and_then(|(req, op)| {
        let _working = shared.working.take(peer).ok_or_else(busy)?;
        handle(shared, &req, &op, who)
    });
    if let Err(e) = &result {
        line(format_args!("request from {who} refused or failed: {}", error::one_line(e)));
    }
    answer(stream, result.map_err(|e| shared.policy.hide_other_profiles(e, named.as_deref())));
}

/// The request as the agent's own profiles answer it: a URL (git, cargo, Bazel, Docker)
/// picks the profile by the agent's `urls`; a Docker registry that is an ACR becomes the
/// broker's registry request, so the exchange happens here and only its token crosses.
fn localize(req: &broker::TokenRequest) -> Result<broker::TokenRequest> {
    let Some(url) = &req.url else { return Ok(req.clone()) };
    let not_claimed = |what: String| Error::Agent {
        code: "profile_not_found",
        message: format!("no profile of the agent claims {what}"),
        hint: Some("add the URL to a profile's `urls` in the agent's config".into()),
        exit: 2,
    };
    let mut r = if req.docker {
        crate::protocols::docker::request(url)?.ok_or_else(|| not_claimed(url.clone()))?
    } else {
        let parts = crate::urlmatch::parse(url).ok_or_else(|| Error::bad_input("the request's url is not an https URL a profile could claim"))?;
        let name = match &req.profile {
            // A profile the client named (cargo's `--profile`) answers only for a URL its own `urls` claim.
            Some(name) => {
                let file = crate::config::config_path().map(|p| crate::config::load_file(&p)).transpose()?.unwrap_or_default();
                let claims = file.profiles.get(name).is_some_and(|p| p.urls.iter().any(|prefix| crate::urlmatch::under(prefix, &parts)));
                if !claims {
                    return Err(not_claimed(format!("{parts} as profile '{name}'")));
                }
                name.clone()
            }
            None => crate::urlmatch::profile_for(&parts)?.ok_or_else(|| not_claimed(parts.to_string()))?,
        };
        match &req.resource {
            // A resource the client named (cargo's `--resource`); the allow-lists still decide.
            Some(resource) => broker::TokenRequest { profile: Some(name), resource: Some(resource.clone()), ..Default::default() },
            None => crate::protocols::request_for_profile(&name, &parts)?,
        }
    };
    r.min_validity = req.min_validity;
    r.force_refresh = req.force_refresh;
    r.claims = req.claims.clone();
    r.timeout = req.timeout;
    r.wait_for_login = req.wait_for_login;
    r.prompts = req.prompts;
    Ok(r)
}

fn handle(shared: &Shared, req: &broker::TokenRequest, op: &Op, who: &str) -> Result<Answer> {
    if *op == Op::Info {
        let p = &shared.policy;
        return Ok(Answer::Info(serde_json::json!({ "profiles": p.profiles, "resources": p.resources, "confirm": shared.confirm.map_or("off", Confirm::name) })));
    }
    shared.policy.check_request(req)?;
    let mut req = localize(req)?;
    // az's `--subscription`, routed here exactly as az's front end routes it locally.
    let resolved = match req.subscription.clone() {
        Some(s) => crate::protocols::az::route_on_agent(&mut req, &s)?,
        None => broker::resolve(&req)?,
    };
    shared.policy.check(&req, &resolved)?;
    let target = resolved.target.resource_for_v1().unwrap_or_else(|_| resolved.target.scopes.join(" "));
    let mut what = match req.binding.registry() {
        Some(registry) => format!("profile '{}' for the registry {registry} (exchanging a token for {target})", resolved.profile.name),
        None => format!("profile '{}' for {target}", resolved.profile.name),
    };
    if let Some(kid) = req.binding.key_id() {
        let kind = if matches!(req.binding, crate::oauth::Binding::Pop(_)) { "a PoP token" } else { "an SSH certificate" };
        what.push_str(&format!(", {kind} for the key {}", &kid[..kid.len().min(16)]));
    }
    if let Some(s) = &req.subscription {
        what.push_str(&format!(", subscription {s}"));
    }
    if req.claims.is_some() {
        what.push_str(", with a claims challenge (a step-up: Entra may want a new sign-in or stronger proof, e.g. MFA)");
    }
    if let Op::Forget(rejected) = op {
        let dropped = broker::forget_resolved(&req, resolved, rejected.as_deref())?;
        line(format_args!("{who} asked to drop the cached token: {what}; {}", if dropped { "dropped" } else { "none matched" }));
        return Ok(Answer::Forgotten(dropped));
    }
    if let Some(how) = shared.confirm {
        confirm::confirm(shared, how, &what, who, req.timeout)?;
    }
    let cred = broker::get_token_resolved(&req, resolved, None)?;
    line(format_args!("gave {who} a token: {what}{}", if cred.from_cache { " (cached)" } else { "" }));
    // A registry's token says which registry it is for: the client takes it only for the one it asked about.
    let registry = req.binding.registry().filter(|_| cred.token_type == crate::acr::TOKEN_TYPE).map(str::to_string);
    Ok(Answer::Token(cred, registry))
}

/// What the agent answers: a token (with the registry a registry's token is for), or whether a cached one was dropped.
enum Answer {
    Token(Credential, Option<String>),
    Forgotten(bool),
    /// The allow-lists and the confirmation mode.
    Info(serde_json::Value),
}

/// Reads one request line: at most `MAX_REQUEST` bytes within `REQUEST_DEADLINE` in all.
fn read_request(stream: &mut UnixStream) -> Result<Vec<u8>> {
    let deadline = crate::clock::Deadline::after(wire::REQUEST_DEADLINE);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.remaining();
        if left.is_zero() {
            return Err(Error::bad_input(format!("no complete request line within {}s", wire::REQUEST_DEADLINE.as_secs())));
        }
        stream.set_read_timeout(Some(left)).ok();
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(buf),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() as u64 > wire::MAX_REQUEST {
                    return Err(Error::bad_input(format!("the request is larger than {} KiB", wire::MAX_REQUEST / 1024)));
                }
                if let Some(end) = buf.iter().position(|b| *b == b'\n') {
                    buf.truncate(end);
                    return Ok(buf);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => return Err(Error::general(format!("cannot read the request: {e}"))),
        }
    }
}

/// Writes the answer line (a credential, what was dropped, or one error) and closes; a client that left is not our error.
fn answer(stream: &mut UnixStream, result: Result<Answer>) {
    let text = match &result {
        Ok(Answer::Token(c, None)) => native::encode(c, crate::clock::now()),
        Ok(Answer::Token(c, Some(registry))) => {
            let mut v: serde_json::Value = serde_json::from_str(&native::encode(c, crate::clock::now())).unwrap_or_default();
            v["registry"] = registry.as_str().into();
            v.to_string()
        }
        Ok(Answer::Forgotten(dropped)) => serde_json::json!({ "v": wire::VERSION, "forgotten": dropped }).to_string(),
        Ok(Answer::Info(info)) => serde_json::json!({ "v": wire::VERSION, "agent": info }).to_string(),
        Err(e) => native::encode_error(e),
    };
    stream.set_write_timeout(Some(wire::REQUEST_DEADLINE)).ok();
    let _ = stream.write_all(format!("{text}\n").as_bytes());
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// What a request carries beyond the native protocol's fields: the URL a tool asked
/// about (git, cargo, Bazel, Docker), so the agent's own profiles' `urls` pick the profile;
/// whether that URL is a Docker registry; how long the client waits; and the operation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Extra {
    url: Option<String>,
    #[serde(default)]
    docker: bool,
    timeout: Option<u64>,
    wait_for_login: Option<u64>,
    op: Option<String>,
    rejected_sha256: Option<String>,
    prompts: Option<bool>,
    subscription: Option<String>,
    /// An SSH certificate is asked for this RSA public key (a JWK; `oauth::SshKey::from_jwk`).
    ssh_public_key: Option<serde_json::Value>,
    /// A PoP token is asked for, bound to this RSA public key (a JWK; `pop::PopKey::from_public_jwk`).
    pop_public_key: Option<serde_json::Value>,
}

/// What a client asks of the agent.
#[derive(Debug, PartialEq)]
pub(crate) enum Op {
    Get,
    /// Drop the cached token (git's `erase`, `docker logout`, cargo's logout): the one
    /// whose SHA-256 this is, or whichever is cached.
    Forget(Option<String>),
    /// What this agent serves (`doctor`): its allow-lists, nothing else.
    Info,
}

const EXTRA_FIELDS: [&str; 10] = ["url", "docker", "timeout", "wait_for_login", "op", "rejected_sha256", "prompts", "subscription", "ssh_public_key", "pop_public_key"];

/// Parses a request line: the agent's own fields taken out, the rest through the native
/// protocol's decoder (so its checks, and its refusal of unknown fields, are the agent's too).
pub(crate) fn decode_request(bytes: &[u8]) -> Result<(broker::TokenRequest, Op)> {
    let mut extra = Extra::default();
    let mut rest = bytes.to_vec();
    if let Ok(serde_json::Value::Object(mut map)) = serde_json::from_slice::<serde_json::Value>(bytes) {
        let mine: serde_json::Map<String, serde_json::Value> = EXTRA_FIELDS.iter().filter_map(|k| map.remove(*k).map(|v| (k.to_string(), v))).collect();
        extra = serde_json::from_value(serde_json::Value::Object(mine))
            .map_err(|e| Error::bad_input(format!("the request's agent fields ({}) are malformed: {e}", EXTRA_FIELDS.join(", "))))?;
        rest = serde_json::Value::Object(map).to_string().into_bytes();
    }
    let mut req = crate::protocols::native::decode(&rest)?;
    if let Some(url) = extra.url {
        if url.len() > 2048 || url.chars().any(char::is_control) {
            return Err(Error::bad_input("the request's url is too long or has control characters"));
        }
        req.url = Some(url);
    }
    if extra.docker && req.url.is_none() {
        return Err(Error::bad_input("a docker request needs the registry's url"));
    }
    req.docker = extra.docker;
    match (&extra.ssh_public_key, &extra.pop_public_key) {
        (Some(_), Some(_)) => return Err(Error::bad_input("a request asks for an SSH certificate or a PoP token, not both")),
        (Some(jwk), None) => req.binding = crate::oauth::Binding::SshCert(crate::oauth::SshKey::from_jwk(jwk).map_err(Error::bad_input)?),
        (None, Some(_)) if req.docker => return Err(Error::bad_input("a docker request takes no PoP key")),
        (None, Some(jwk)) => req.binding = crate::oauth::Binding::Pop(crate::pop::PopKey::from_public_jwk(jwk).map_err(Error::bad_input)?),
        (None, None) => {}
    }
    // A caller that never prompts: no sign-in starts on the agent's terminal for it.
    req.prompts = extra.prompts.unwrap_or(true);
    if let Some(s) = extra.subscription {
        if s.trim().is_empty() || s.len() > 256 || s.chars().any(char::is_control) {
            return Err(Error::bad_input("the request's subscription is empty, too long or has control characters"));
        }
        req.subscription = Some(s);
    }
    if let Some(t) = extra.timeout {
        if t == 0 || t > wire::MAX_TIMEOUT.as_secs() {
            return Err(Error::bad_input(format!("timeout must be between 1 and {} seconds, not {t}", wire::MAX_TIMEOUT.as_secs())));
        }
        req.timeout = Duration::from_secs(t);
    }
    if let Some(w) = extra.wait_for_login {
        if w > wire::MAX_TIMEOUT.as_secs() {
            return Err(Error::bad_input(format!("wait_for_login may be at most {} seconds, not {w}", wire::MAX_TIMEOUT.as_secs())));
        }
        req.wait_for_login = Some(Duration::from_secs(w));
    }
    let op = match extra.op.as_deref() {
        None | Some("get") => {
            if extra.rejected_sha256.is_some() {
                return Err(Error::bad_input("rejected_sha256 goes with op \"forget\""));
            }
            Op::Get
        }
        Some("forget") => {
            if let Some(fp) = &extra.rejected_sha256
                && (fp.len() != 64 || !fp.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                return Err(Error::bad_input("rejected_sha256 must be 64 hex digits"));
            }
            Op::Forget(extra.rejected_sha256.map(|f| f.to_ascii_lowercase()))
        }
        Some("info") => Op::Info,
        Some(other) => {
            let shown: String = other.chars().take(40).flat_map(char::escape_debug).collect();
            return Err(Error::bad_input(format!("unknown op `{shown}`; the agent knows get, forget and info")));
        }
    };
    Ok((req, op))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PoP request's key binding is checked where it arrives: an RSA JWK of 2048 bits or
    /// more, its thumbprint computed here; never with an SSH key or a Docker request.
    #[test]
    fn a_pop_public_key_is_checked_on_arrival() {
        use base64::Engine;
        let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xc5u8; 256]);
        let jwk = serde_json::json!({"kty": "RSA", "n": n, "e": "AQAB", "kid": "whatever-the-client-says"});
        let line = |extra: serde_json::Value| {
            let mut v = serde_json::json!({"v": 1, "profile": "p", "resource": "https://graph.microsoft.com"});
            v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            decode_request(v.to_string().as_bytes())
        };
        let (req, op) = line(serde_json::json!({"pop_public_key": jwk})).unwrap();
        assert_eq!((req.binding, op), (crate::oauth::Binding::Pop(crate::pop::PopKey::from_jwk(&n, "AQAB")), Op::Get));
        for (bad, says) in [
            (serde_json::json!({"pop_public_key": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}}), "2048 bits"),
            (serde_json::json!({"pop_public_key": {"kty": "oct", "k": "x"}}), "not an RSA JWK"),
            (serde_json::json!({"pop_public_key": jwk, "ssh_public_key": jwk}), "not both"),
            (serde_json::json!({"pop_public_key": jwk, "docker": true, "url": "https://r.azurecr.io"}), "docker"),
        ] {
            let e = line(bad.clone()).unwrap_err();
            assert!(e.to_string().contains(says), "{bad}: {e}");
        }
    }
}
