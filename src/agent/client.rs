//! The client end: one request line to the socket `ENTRA_TOKEN_AGENT` names, one answer
//! line back. Nothing is cached on this side (the agent caches; a client cache would have
//! to be keyed by which agent answered), nothing is signed in here, and an agent that
//! cannot be reached is one error naming `ENTRA_TOKEN_AGENT` (exit 4), never a prompt.

use crate::tokens::{Credential, TokenRequest};
use crate::error::{Error, Result};
use crate::log::trace;
use crate::secret::Secret;
use serde::Deserialize;
use std::path::Path;

/// A native-protocol answer, as the agent sends it.
#[derive(Deserialize)]
struct Answer {
    v: u32,
    access_token: Secret<String>,
    token_type: String,
    expires_on: i64,
    profile: String,
    #[serde(default)]
    tenant_id: Option<String>,
    client_id: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    from_cache: bool,
    /// The registry (host[:port]) a registry's token is for, as the agent names it.
    #[serde(default)]
    registry: Option<String>,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    message: String,
    exit_code: u8,
    #[serde(default)]
    hint: Option<String>,
}

fn unreachable(socket: &Path, message: String) -> Error {
    Error::Network {
        url: format!("the token agent at {}={}", super::ENV, socket.display()),
        message,
        hint: Some(format!(
            "start `entra-token agent` (or forward its socket) and point {} at it, or unset {} to sign in on this machine",
            super::ENV,
            super::ENV
        )),
    }
}

/// A socket that is not our agent's: nothing was sent to it.
#[cfg(unix)]
fn not_ours(socket: &Path, message: String) -> Error {
    Error::Network {
        url: format!("the token agent at {}={}", super::ENV, socket.display()),
        message: format!("refused, nothing sent: {message}"),
        hint: Some(format!("point {} at the socket of your own agent (or one your ssh forwarded), in a directory only you can write", super::ENV)),
    }
}

/// Asks the agent at `socket` for the token `req` describes.
pub(crate) fn get_token(socket: &Path, req: &TokenRequest) -> Result<Credential> {
    // An SSH certificate request carries its public key (`ssh_public_key`); the answer
    // must be a certificate (`decode_answer`), whose key the caller checks.
    trace!(1, "asking the token agent at {}", socket.display());
    // A wait for a sign-in happens on the agent's side, after which it still needs its time.
    let patience = req.timeout + req.wait_for_login.unwrap_or_default().min(super::MAX_TIMEOUT);
    let answer = exchange(socket, &super::encode_request(req, None), patience)?;
    // A Docker request names its registry (from its url) in its binding; only it may take a registry's token.
    let registry = req.binding.registry().filter(|_| req.docker && req.url.is_some());
    decode_answer(socket, &answer, registry, &req.binding, crate::clock::now())
}

/// Asks the agent at `socket` to drop its cached token for `req` (the one whose SHA-256
/// is `rejected`, when given). True when it dropped one.
pub(crate) fn forget(socket: &Path, req: &TokenRequest, rejected: Option<&str>) -> Result<bool> {
    trace!(1, "asking the token agent at {} to drop its cached token", socket.display());
    let answer = exchange(socket, &super::encode_request(req, Some(rejected)), req.timeout)?;
    let line = first_line(socket, &answer)?;
    check_error(line)?;
    #[derive(Deserialize)]
    struct Forgotten {
        forgotten: bool,
    }
    serde_json::from_slice::<Forgotten>(line).map(|f| f.forgotten).map_err(|_| unreachable(socket, "the answer is not a protocol v1 answer".into()))
}

/// What an agent says it serves (`doctor`).
pub(crate) struct Info {
    pub profiles: Vec<String>,
    pub resources: Vec<String>,
    pub confirm: String,
}

/// Asks the agent at `socket` what it serves.
pub(crate) fn info(socket: &Path, timeout: std::time::Duration) -> Result<Info> {
    let request = format!("{}\n", serde_json::json!({ "v": super::VERSION, "op": "info", "timeout": timeout.as_secs().clamp(1, super::MAX_TIMEOUT.as_secs()) }));
    let answer = exchange(socket, &request, timeout)?;
    let line = first_line(socket, &answer)?;
    check_error(line)?;
    #[derive(Deserialize)]
    struct Wire {
        agent: Body,
    }
    #[derive(Deserialize)]
    struct Body {
        profiles: Vec<String>,
        resources: Vec<String>,
        confirm: String,
    }
    let w: Wire = serde_json::from_slice(line).map_err(|_| unreachable(socket, "the answer is not a protocol v1 answer".into()))?;
    let clean = |v: Vec<String>| v.iter().take(100).map(|s| printable(s)).collect();
    Ok(Info { profiles: clean(w.agent.profiles), resources: clean(w.agent.resources), confirm: printable(&w.agent.confirm) })
}

/// One request line out, one answer line back, all within `timeout` (the caller's
/// `--timeout`: the agent may be waiting for its person, but we wait no longer).
#[cfg(unix)]
fn exchange(socket: &Path, line: &str, timeout: std::time::Duration) -> Result<Vec<u8>> {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    // Whose socket this is, before a byte of the request (which says what we want) goes
    // out: the file's owner, then the listening process's uid as the kernel recorded it
    // (SO_PEERCRED/getpeereid). Ours, or root's for a socket `sshd` forwards; another
    // user's socket in a shared directory would collect our requests and answer them.
    let me = crate::peer::my_uid();
    let owner = std::fs::metadata(socket).map_err(|e| unreachable(socket, format!("cannot connect: {e}")))?.uid();
    if owner != me && owner != 0 {
        return Err(not_ours(socket, format!("the socket is owned by uid {owner}, not by you (uid {me}) or root")));
    }
    let mut stream = UnixStream::connect(socket).map_err(|e| unreachable(socket, format!("cannot connect: {e}")))?;
    match crate::peer::of(stream.as_fd()) {
        Ok(p) if p.uid == me || p.uid == 0 => {}
        Ok(p) => return Err(not_ours(socket, format!("the process listening on it runs as uid {}, not as you (uid {me}) or root", p.uid))),
        Err(e) => return Err(not_ours(socket, format!("cannot tell who listens on it ({e})"))),
    }
    let deadline = crate::clock::Deadline::after(timeout);
    stream.set_write_timeout(Some(super::REQUEST_DEADLINE.min(timeout.max(std::time::Duration::from_millis(1))))).ok();
    // An agent that refuses us (another uid) answers and closes before reading: the
    // write then fails, and its answer is still there to read.
    let sent = stream.write_all(line.as_bytes());
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let left = deadline.remaining();
        if left.is_zero() {
            return Err(Error::Timeout { what: format!("waiting for the token agent ({}={})", super::ENV, socket.display()), after: timeout });
        }
        stream.set_read_timeout(Some(left)).ok();
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() as u64 > super::MAX_ANSWER {
                    return Err(unreachable(socket, format!("the answer is larger than {} KiB", super::MAX_ANSWER / 1024)));
                }
                if buf.contains(&b'\n') {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) if sent.is_err() && buf.is_empty() => return Err(unreachable(socket, format!("cannot send the request: {e}"))),
            Err(e) => return Err(unreachable(socket, format!("cannot read the answer: {e}"))),
        }
    }
    match sent {
        Err(e) if buf.is_empty() => Err(unreachable(socket, format!("cannot send the request: {e}"))),
        _ => Ok(buf),
    }
}

#[cfg(not(unix))]
fn exchange(socket: &Path, _line: &str, _timeout: std::time::Duration) -> Result<Vec<u8>> {
    Err(unreachable(socket, "the token agent needs Unix sockets, which this build does not have".into()))
}

/// The answer's first line; an empty one is the agent hanging up.
fn first_line<'a>(socket: &Path, bytes: &'a [u8]) -> Result<&'a [u8]> {
    let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    if line.is_empty() {
        return Err(unreachable(socket, "the agent closed the connection without an answer".into()));
    }
    Ok(line)
}

/// The agent's error answer as our error, with its exit code; Ok when the line is no error.
fn check_error(line: &[u8]) -> Result<()> {
    let Ok(e) = serde_json::from_slice::<ErrorAnswer>(line) else { return Ok(()) };
    let b = e.error;
    let exit = if (1..=5).contains(&b.exit_code) { b.exit_code } else { 1 };
    // The agent's own refusals already say whose they are.
    let message = b.message.strip_prefix("the token agent (ENTRA_TOKEN_AGENT): ").unwrap_or(&b.message);
    Err(Error::Agent { code: known_code(&b.code), message: printable(message), hint: b.hint.as_deref().map(printable), exit })
}

/// The agent's answer line: a credential, or its error with its exit code. A token
/// passes the gate every token from outside passes (`oauth::accept`: a token's
/// characters, Bearer or pop, an expiry at most a week away); a registry's refresh token
/// (ACR's exchange, made on the agent's side, which alone knows which registries are ACRs)
/// only answers a Docker request for `registry` (the one it asked about), and only when
/// the agent's answer names that registry; any other Docker answer is a bearer token.
fn decode_answer(socket: &Path, bytes: &[u8], registry: Option<&str>, binding: &crate::oauth::Binding, now: i64) -> Result<Credential> {
    let line = first_line(socket, bytes)?;
    check_error(line)?;
    let a: Answer = serde_json::from_slice(line).map_err(|_| unreachable(socket, "the answer is not a protocol v1 answer".into()))?;
    if a.v != super::VERSION {
        return Err(unreachable(socket, format!("the agent speaks protocol v{}, not v{}", a.v, super::VERSION)));
    }
    let registry_token = a.token_type.eq_ignore_ascii_case(crate::acr::TOKEN_TYPE);
    if registry_token && (registry.is_none() || a.registry.as_deref() != registry) {
        return Err(unreachable(socket, match registry {
            None => "the answer is a registry's token, but this request is for no registry".into(),
            Some(r) if a.registry.is_none() => format!("the answer is a registry's token that names no registry (an agent older than this client?), and {r} was asked about"),
            Some(r) => format!("the answer is a registry's token for another registry than {r}, the one asked about"),
        }));
    }
    // A Docker request takes a bearer token too (a registry that is not an ACR).
    let binding = if registry.is_some() && !registry_token { &crate::oauth::Binding::Bearer } else { binding };
    let reply = crate::oauth::TokenReply {
        access_token: a.access_token,
        token_type: if registry_token { String::new() } else { a.token_type },
        expires_on: a.expires_on,
        refresh_on: None,
        refresh_token: None,
        id_token: None,
        client_info: None,
        resource: None,
        foci: None,
    };
    let source = format!("the token agent at {}={}", super::ENV, socket.display());
    let reply = crate::oauth::accept(reply, now, &source)?;
    // A bearer request gets a bearer token, never a certificate or a key-bound token; an
    // SSH certificate request gets a certificate (whose key the caller checks).
    if !registry_token {
        binding.check(&reply.token_type, binding.key_id()).map_err(|why| unreachable(socket, why))?;
    }
    // A PoP token must be bound to our own key (its `cnf.kid`), or our SHR would prove nothing.
    if let crate::oauth::Binding::Pop(key) = binding {
        let kid = crate::jwt::decode(reply.access_token.expose()).and_then(|(_, c)| c.get("cnf")?.get("kid")?.as_str().map(str::to_string));
        if kid.as_deref() != Some(key.kid.as_str()) {
            return Err(unreachable(socket, "the pop answer is not bound to this machine's PoP key (its cnf.kid)".into()));
        }
    }
    trace!(1, "the token agent answered for profile '{}'", crate::log::escape(&a.profile));
    let clean = |s: String| printable(&s);
    Ok(Credential {
        access_token: reply.access_token,
        token_type: if registry_token { crate::acr::TOKEN_TYPE.into() } else { reply.token_type },
        expires_on: reply.expires_on,
        profile: clean(a.profile),
        tenant_id: a.tenant_id.map(clean),
        client_id: clean(a.client_id),
        scopes: a.scopes.into_iter().take(100).map(clean).collect(),
        resource: a.resource.map(clean),
        account: a.account.map(clean),
        from_cache: a.from_cache,
    })
}

/// The agent's text without control characters (it reaches a terminal), at most 1000 characters.
fn printable(s: &str) -> String {
    s.chars().take(1000).map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect()
}

/// The agent's error code, if it is one of ours (the answer is untrusted text).
fn known_code(code: &str) -> &'static str {
    const CODES: &[&str] =
        &["bad_input", "config_error", "profile_not_found", "auth_failed", "interaction_required", "network_error", "timeout", "cache_error", "forbidden"];
    CODES.iter().find(|c| **c == code).copied().unwrap_or("error")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_errors_decode_and_junk_is_one_clear_error() {
        let p = Path::new("/s");
        let ok = br#"{"v":1,"access_token":"eyJ.a.b","token_type":"Bearer","expires_on":1795328884,"expires_at":"x","expires_in":3,"profile":"ado","client_id":"c","scopes":["s"],"from_cache":true}"#;
        let c = decode_answer(p, ok, None, &crate::oauth::Binding::Bearer, 1795320000).unwrap();
        assert_eq!((c.access_token.expose().as_str(), c.profile.as_str()), ("eyJ.a.b", "ado"));
        let e = decode_answer(p, br#"{"error":{"code":"forbidden","message":"no","exit_code":3,"hint":"h"}}"#, None, &crate::oauth::Binding::Bearer, 0).unwrap_err();
        assert_eq!((e.exit_code(), e.code()), (3, "forbidden"));
        let e = decode_answer(p, br#"{"error":{"code":"x\u001b[2J","message":"m\u001b[2J","exit_code":200}}"#, None, &crate::oauth::Binding::Bearer, 0).unwrap_err();
        assert_eq!((e.exit_code(), e.code()), (1, "error"));
        assert!(!e.to_string().contains('\u{1b}'), "{e}");
        for junk in [&b""[..], b"\n", b"garbage\n", br#"{"v":2,"access_token":"a","token_type":"B","expires_on":1,"profile":"p","client_id":"c"}"#] {
            let e = decode_answer(p, junk, None, &crate::oauth::Binding::Bearer, 0).unwrap_err();
            assert_eq!(e.exit_code(), 4, "{junk:?}");
            assert!(crate::error::one_line(&e).contains("ENTRA_TOKEN_AGENT"), "{e}");
        }
        let bad = br#"{"v":1,"access_token":"a\nb","token_type":"B","expires_on":1,"profile":"p","client_id":"c"}"#;
        assert_eq!(decode_answer(p, bad, None, &crate::oauth::Binding::Bearer, 0).unwrap_err().exit_code(), 4);
        // The gate of every token source: a token's characters, Bearer or pop, a bounded expiry.
        let answer = |token: &str, ty: &str, exp: i64| format!(r#"{{"v":1,"access_token":"{token}","token_type":"{ty}","expires_on":{exp},"profile":"p","client_id":"c"}}"#);
        for (token, ty) in [("a<script>", "Bearer"), ("a%0d", "Bearer"), ("eyJ.a.b", "Basic"), ("eyJ.a.b", "acr_refresh_token"), ("eyJ.a.b", "ssh-cert"), ("eyJ.a.b", "pop")] {
            assert_eq!(decode_answer(p, answer(token, ty, 100).as_bytes(), None, &crate::oauth::Binding::Bearer, 0).unwrap_err().exit_code(), 4, "{token} {ty}");
        }
        let far = decode_answer(p, answer("eyJ.a.b", "bearer", 1 << 40).as_bytes(), None, &crate::oauth::Binding::Bearer, 0).unwrap();
        assert_eq!((far.expires_on, far.token_type.as_str()), (crate::oauth::MAX_LIFETIME, "Bearer"));
    }

    /// A registry's token answers only a Docker request, for exactly the registry it asked
    /// about, as the agent names it in its answer; a Docker request takes a bearer token too.
    #[test]
    fn a_registry_token_answers_only_the_docker_request_for_its_own_registry() {
        let p = Path::new("/s");
        let answer = |ty: &str, registry: Option<&str>| {
            let mut v = serde_json::json!({"v": 1, "access_token": "eyJ.a.b", "token_type": ty, "expires_on": 100, "profile": "p", "client_id": "c"});
            if let Some(r) = registry {
                v["registry"] = r.into();
            }
            v.to_string()
        };
        let asked = crate::oauth::Binding::Registry("contoso.azurecr.io".into());
        let c = decode_answer(p, answer("acr_refresh_token", Some("contoso.azurecr.io")).as_bytes(), Some("contoso.azurecr.io"), &asked, 0).unwrap();
        assert_eq!(c.token_type, "acr_refresh_token");
        let c = decode_answer(p, answer("Bearer", None).as_bytes(), Some("contoso.azurecr.io"), &asked, 0).unwrap();
        assert_eq!(c.token_type, "Bearer", "a registry that is no ACR gets the Entra token for its profile");
        // Another registry's token, or one the agent does not say is for this registry.
        for named in [Some("fabrikam.azurecr.io"), Some("contoso.azurecr.io:5000"), Some(""), None] {
            let e = decode_answer(p, answer("acr_refresh_token", named).as_bytes(), Some("contoso.azurecr.io"), &asked, 0).unwrap_err();
            assert_eq!(e.exit_code(), 4, "{named:?}");
            assert!(!e.to_string().contains("eyJ.a.b"), "{e}");
        }
        // A request for no registry never takes one, whatever the answer names.
        for binding in [crate::oauth::Binding::Bearer, asked.clone()] {
            for named in [Some("contoso.azurecr.io"), None] {
                let e = decode_answer(p, answer("acr_refresh_token", named).as_bytes(), None, &binding, 0).unwrap_err();
                assert_eq!(e.exit_code(), 4, "{binding:?} {named:?}");
            }
        }
        // Nor a certificate or a PoP token for a Docker request.
        for ty in ["ssh-cert", "pop"] {
            assert!(decode_answer(p, answer(ty, Some("contoso.azurecr.io")).as_bytes(), Some("contoso.azurecr.io"), &asked, 0).is_err(), "{ty}");
        }
    }

    /// A PoP answer must be a pop token whose `cnf.kid` is this machine's key: an agent that
    /// answers with a bearer token, or one bound to another key, is refused.
    #[test]
    fn a_pop_answer_must_be_bound_to_our_own_key() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let ours = crate::pop::PopKey::from_jwk(&b64(&"n".repeat(256)), "AQAB");
        let theirs = crate::pop::PopKey::from_jwk(&b64(&"m".repeat(256)), "AQAB");
        let token = |kid: &str| format!("e30.{}.sig", b64(&serde_json::json!({"cnf": {"kid": kid, "xms_ksl": "sw"}}).to_string()));
        let answer = |token: &str, ty: &str| format!(r#"{{"v":1,"access_token":"{token}","token_type":"{ty}","expires_on":100,"profile":"p","client_id":"c"}}"#);
        let pop = crate::oauth::Binding::Pop(ours.clone());
        let p = Path::new("/s");
        let c = decode_answer(p, answer(&token(&ours.kid), "pop").as_bytes(), None, &pop, 0).unwrap();
        assert_eq!(c.token_type, "pop");
        for (t, ty) in [(token(&theirs.kid), "pop"), (token(&ours.kid), "Bearer"), ("e30.e30.sig".to_string(), "pop")] {
            let e = decode_answer(p, answer(&t, ty).as_bytes(), None, &pop, 0).unwrap_err();
            assert_eq!(e.exit_code(), 4, "{ty}: {e}");
        }
        // A bearer request never takes a pop answer, and the request carries only the public key.
        assert!(decode_answer(p, answer(&token(&ours.kid), "pop").as_bytes(), None, &crate::oauth::Binding::Bearer, 0).is_err());
        let req = TokenRequest { binding: pop, ..TokenRequest::default() };
        let sent: serde_json::Value = serde_json::from_str(&super::super::encode_request(&req, None)).unwrap();
        assert_eq!(sent["pop_public_key"], serde_json::json!({"kty": "RSA", "n": ours.n, "e": "AQAB"}));
        assert_eq!(crate::pop::PopKey::from_public_jwk(&sent["pop_public_key"]).unwrap(), ours);
    }

    #[test]
    fn requests_carry_only_what_the_agent_needs() {
        let req = TokenRequest { resource: Some("graph".into()), url: Some("https://h/x".into()), force_refresh: true, ..TokenRequest::default() };
        let line = super::super::encode_request(&req, None);
        assert!(line.ends_with('\n'));
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!((back["resource"].as_str(), back["url"].as_str(), back["force_refresh"].as_bool()), (Some("graph"), Some("https://h/x"), Some(true)));
        assert_eq!(back["timeout"], 60);
        assert!(back.get("wait_for_login").is_none() && back.get("op").is_none() && back.get("docker").is_none());
        let fp = crate::tokens::fingerprint("tok");
        let back: serde_json::Value = serde_json::from_str(&super::super::encode_request(&req, Some(Some(&fp)))).unwrap();
        assert_eq!((back["op"].as_str(), back["rejected_sha256"].as_str()), (Some("forget"), Some(fp.as_str())));
        assert!(!back.to_string().contains("\"tok\""));
    }
}
