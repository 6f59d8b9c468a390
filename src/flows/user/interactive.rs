//! Browser sign-in: authorization code with PKCE (S256). A one-shot listener on
//! 127.0.0.1 takes the redirect (`http://localhost:PORT`, or the profile's
//! `redirect_uri`), `state` is checked, and the code is redeemed. Over SSH, or when no
//! browser opens, the person may paste the final address from the browser instead (read
//! from /dev/tty: stdin may carry a protocol request). With a client secret the same
//! flow serves a confidential web app (`authorization-code`).

use crate::flows::{FlowCtx, user};
use crate::error::{Error, Result};
use crate::log::{line, trace, warn};
use crate::oauth::TokenReply;
use crate::secret::Secret;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::io::{BufRead, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a person gets to finish in the browser.
const SIGN_IN_WAIT: Duration = Duration::from_secs(600);
const MAX_REQUEST_HEAD: usize = 16 * 1024;

/// PKCE verifier and challenge, and the anti-forgery `state`, from the OS RNG.
pub(crate) struct Pkce {
    pub verifier: Secret<String>,
    pub challenge: String,
    pub state: String,
}

pub(crate) fn pkce() -> Result<Pkce> {
    let rng = ring::rand::SystemRandom::new();
    let mut v = [0u8; 32];
    let mut s = [0u8; 16];
    ring::rand::SecureRandom::fill(&rng, &mut v).map_err(|_| Error::general("the OS random number generator failed"))?;
    ring::rand::SecureRandom::fill(&rng, &mut s).map_err(|_| Error::general("the OS random number generator failed"))?;
    let verifier = URL_SAFE_NO_PAD.encode(v);
    Ok(Pkce { challenge: challenge_of(&verifier), verifier: Secret::new(verifier), state: URL_SAFE_NO_PAD.encode(s) })
}

/// `base64url(SHA-256(verifier))`, RFC 7636 S256.
pub(crate) fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()))
}

/// What came back to the redirect URI.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// Parses the query of a redirect (a request target `/?code=…`, a full URL, or a bare query).
pub(crate) fn parse_callback(text: &str) -> Callback {
    let text = text.trim();
    let query = match text.split_once('?') {
        Some((_, q)) => q,
        None if text.contains('=') => text,
        None => "",
    };
    let query = query.split('#').next().unwrap_or("");
    let mut cb = Callback::default();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let v = Some(v.into_owned());
        match k.as_ref() {
            "code" => cb.code = v,
            "state" => cb.state = v,
            "error" => cb.error = v,
            "error_description" => cb.error_description = v,
            _ => {}
        }
    }
    cb
}

/// Where the redirect lands: our listener, or (for a non-loopback `redirect_uri`) only a paste.
struct Redirect {
    uri: String,
    listener: Option<TcpListener>,
}

fn redirect_for(configured: Option<&str>) -> Result<Redirect> {
    let bind = |port: u16| {
        TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
            Error::bad_input_hint(format!("cannot listen on 127.0.0.1:{port} for the sign-in redirect"), "free the port, or change redirect_uri in the profile").because(e)
        })
    };
    let Some(uri) = configured.map(str::trim).filter(|u| !u.is_empty()) else {
        let l = bind(0)?;
        let port = l.local_addr().map_err(|e| Error::caused("cannot read the listening address", e))?.port();
        return Ok(Redirect { uri: format!("http://localhost:{port}"), listener: Some(l) });
    };
    let lower = uri.to_ascii_lowercase();
    let host = crate::authority::host_of(&lower).unwrap_or("");
    if !lower.starts_with("http://") || !crate::authority::is_loopback_host(host) {
        return Ok(Redirect { uri: uri.to_string(), listener: None });
    }
    let rest = &uri["http://".len()..];
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    let explicit_port = authority.rsplit_once(':').filter(|(h, _)| !h.ends_with(']') || authority.starts_with('[')).and_then(|(_, p)| p.parse::<u16>().ok());
    match explicit_port {
        Some(port) => Ok(Redirect { uri: uri.to_string(), listener: Some(bind(port)?) }),
        None => {
            let l = bind(0)?;
            let port = l.local_addr().map_err(|e| Error::caused("cannot read the listening address", e))?.port();
            Ok(Redirect { uri: format!("http://{authority}:{port}{tail}"), listener: Some(l) })
        }
    }
}

fn authorize_url(ctx: &FlowCtx<'_>, redirect: &str, pkce: &Pkce) -> Result<String> {
    let p = ctx.profile;
    let target = user::TargetForm::new(ctx)?;
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("client_id", &p.client_id).append_pair("response_type", "code").append_pair("redirect_uri", redirect);
    if let Some(s) = &target.scope {
        q.append_pair("scope", s);
    }
    if let Some(r) = &target.resource {
        q.append_pair("resource", r);
    }
    q.append_pair("state", &pkce.state).append_pair("code_challenge", &pkce.challenge).append_pair("code_challenge_method", "S256").append_pair("response_mode", "query");
    match p.settings.login_hint.as_deref().filter(|h| !h.is_empty()) {
        Some(h) => q.append_pair("login_hint", h),
        None => q.append_pair("prompt", "select_account"),
    };
    if let Some(c) = crate::flows::sent_claims(ctx) {
        q.append_pair("claims", &c);
    }
    Ok(format!("{}?{}", p.authority.authorize_url(p.endpoint), q.finish()))
}

pub(crate) fn sign_in(ctx: &FlowCtx<'_>) -> Result<TokenReply> {
    let p = ctx.profile;
    let secret = user::client_secret(p)?;
    let pkce = pkce()?;
    let redirect = redirect_for(p.settings.redirect_uri.as_deref())?;
    let url = authorize_url(ctx, &redirect.uri, &pkce)?;
    let over_ssh = crate::env::over_ssh();
    let mut opener = if redirect.listener.is_some() { open_browser(&url) } else { None };
    let mut pasted: Option<mpsc::Receiver<String>> = None;
    if opener.is_some() && !over_ssh {
        line(format_args!("opened the sign-in page in your browser; waiting for you to finish there"));
        trace!(1, "sign-in URL: {url}");
    } else {
        line(format_args!("to sign in, open this address in a browser:\n  {url}"));
        pasted = offer_paste();
        if pasted.is_none() && redirect.listener.is_none() {
            return Err(Error::bad_input_hint(
                format!("redirect_uri {} is not a loopback address, and there is no terminal to paste the result into", redirect.uri),
                "run `entra-token login` in a terminal, or use a http://localhost redirect_uri",
            ));
        }
    }
    let cb = wait_for_callback(redirect.listener.as_ref(), &mut opener, &mut pasted, &url, &pkce.state)?;
    if let Some(err) = cb.error {
        let desc = cb.error_description.unwrap_or_default();
        let first = desc.lines().next().unwrap_or("").to_string();
        return Err(Error::auth(format!("the browser sign-in failed: {err}{}", if first.is_empty() { String::new() } else { format!(": {first}") }), Some("run the command again; check that the account may use this app".into())));
    }
    let code = Secret::new(cb.code.unwrap_or_default());
    let grant = [
        ("grant_type", "authorization_code"),
        ("client_id", p.client_id.as_str()),
        ("code", code.expose().as_str()),
        ("redirect_uri", redirect.uri.as_str()),
        ("code_verifier", pkce.verifier.expose().as_str()),
    ];
    user::redeem_grant(ctx, &grant, secret.as_ref(), crate::clock::Deadline::after(ctx.deadline.total))
}

/// Waits for the browser's redirect on the listener, or a pasted address, up to SIGN_IN_WAIT.
fn wait_for_callback(listener: Option<&TcpListener>, opener: &mut Option<Child>, pasted: &mut Option<mpsc::Receiver<String>>, url: &str, state: &str) -> Result<Callback> {
    if let Some(l) = listener {
        l.set_nonblocking(true).map_err(|e| Error::caused("cannot poll the redirect listener", e))?;
    }
    let until = Instant::now() + SIGN_IN_WAIT;
    while Instant::now() < until {
        if let Some(l) = listener {
            match l.accept() {
                Ok((stream, _)) => {
                    if let Some(cb) = serve_redirect(stream, state) {
                        return Ok(cb);
                    }
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => trace!(1, "accept on the redirect listener failed: {e}"),
            }
        }
        if let Some(rx) = pasted {
            match rx.try_recv() {
                Ok(text) => {
                    let cb = parse_callback(&text);
                    if cb.state.as_deref() != Some(state) {
                        warn!("that address does not carry this sign-in's state; paste the address the browser ended on");
                        *pasted = offer_paste();
                    } else if cb.code.is_some() || cb.error.is_some() {
                        return Ok(cb);
                    }
                }
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => *pasted = None,
            }
        }
        if let Some(child) = opener
            && let Ok(Some(status)) = child.try_wait()
        {
            *opener = None;
            if !status.success() {
                line(format_args!("the browser could not be opened ({status}); open this address yourself:\n  {url}"));
                if pasted.is_none() {
                    *pasted = offer_paste();
                }
            }
        }
        if listener.is_none() && pasted.is_none() {
            return Err(Error::auth("no sign-in result was pasted", Some("run `entra-token login` again".into())));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Err(Error::Timeout { what: "waiting for the browser sign-in".into(), after: SIGN_IN_WAIT })
}

/// Answers one request on the listener. Returns the callback when it is ours.
fn serve_redirect(mut stream: TcpStream, state: &str) -> Option<Callback> {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST_HEAD {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut parts = text.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let cb = parse_callback(target);
    if method != "GET" || (cb.code.is_none() && cb.error.is_none()) {
        respond(&mut stream, "404 Not Found", "Not found", "This address only takes the sign-in redirect.");
        return None;
    }
    if cb.state.as_deref() != Some(state) {
        warn!("ignored a redirect whose state does not match this sign-in");
        respond(&mut stream, "400 Bad Request", "Sign-in not accepted", "This answer does not belong to the sign-in entra-token started. Go back to the terminal.");
        return None;
    }
    if cb.error.is_some() {
        respond(&mut stream, "200 OK", "Sign-in failed", "The sign-in did not complete. Go back to the terminal for details.");
    } else {
        respond(&mut stream, "200 OK", "Signed in", "entra-token has what it needs. You can close this tab.");
    }
    Some(cb)
}

fn respond(stream: &mut TcpStream, status: &str, title: &str, text: &str) {
    let body = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title} - entra-token</title></head>\
         <body style=\"font-family:sans-serif;margin:3em\"><h2>{title}</h2><p>{text}</p></body></html>\n"
    );
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

/// Starts the browser on `url`: `$BROWSER` (a command, or a `:`-separated list, `;` on
/// Windows; `%s` marks
/// where the URL goes, else it is the last argument; never run through a shell), else the
/// platform opener. None when nothing could be started.
fn open_browser(url: &str) -> Option<Child> {
    let candidates = browser_commands(url, crate::env::raw(crate::env::BROWSER).as_deref(), crate::env::graphical());
    for argv in candidates {
        match Command::new(&argv[0]).args(&argv[1..]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn() {
            Ok(child) => {
                trace!(1, "started the browser with {}", argv[0]);
                return Some(child);
            }
            Err(e) => trace!(1, "cannot start {}: {e}", argv[0]),
        }
    }
    None
}

/// The commands that may open `url`, in order: `$BROWSER`'s, then the platform's opener.
/// Each is an argv started directly (no shell): the URL is one argument, `&` and `%` intact.
fn browser_commands(url: &str, browser: Option<&str>, display: bool) -> Vec<Vec<String>> {
    let mut candidates: Vec<Vec<String>> = Vec::new();
    if let Some(b) = browser {
        // Windows paths hold `:` (C:\\…): there the list separator is `;`, as in PATH.
        for cmd in b.split(if cfg!(windows) { ';' } else { ':' }).map(str::trim).filter(|c| !c.is_empty()) {
            // A program path with spaces (C:\Program Files\…) is one word: the whole entry
            // when it names a file, else as quoted ("C:\Program Files\…\firefox.exe" %s).
            let words: Vec<String> = if std::path::Path::new(cmd).is_file() { vec![cmd.to_string()] } else { command_words(cmd) };
            let mut argv: Vec<String> = words.iter().map(|w| w.replace("%s", url)).collect();
            if !words.iter().any(|w| w.contains("%s")) {
                argv.push(url.to_string());
            }
            candidates.push(argv);
        }
    }
    if cfg!(target_os = "macos") {
        candidates.push(vec!["open".into(), url.into()]);
    } else if cfg!(target_os = "windows") {
        // rundll32 hands the URL to the default browser's protocol handler; `cmd /c start`
        // would parse `&` in it as a command separator.
        candidates.push(vec!["rundll32".into(), "url.dll,FileProtocolHandler".into(), url.into()]);
    } else if display {
        candidates.push(vec!["xdg-open".into(), url.into()]);
    }
    candidates
}

/// A BROWSER entry's words: split at whitespace, except inside double quotes (which go).
fn command_words(cmd: &str) -> Vec<String> {
    let (mut words, mut word, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
    for c in cmd.chars() {
        match c {
            '"' => (quoted, any) = (!quoted, true),
            c if c.is_whitespace() && !quoted => {
                if any {
                    words.push(std::mem::take(&mut word));
                }
                any = false;
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(word);
    }
    words
}

/// Offers to read the final redirect address from the terminal (over SSH the browser's
/// machine cannot reach our listener). None when there is no terminal.
fn offer_paste() -> Option<mpsc::Receiver<String>> {
    let mut tty = crate::console::open_tty()?;
    let _ = writeln!(
        tty,
        "entra-token: if the browser is on another machine, it ends on a page that cannot be reached;\n\
         entra-token: copy that page's whole address from the address bar, paste it here and press Enter:"
    );
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let mut reader = std::io::BufReader::new(tty);
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            if !line.trim().is_empty() {
                let _ = tx.send(line.trim().to_string());
                return;
            }
            line.clear();
        }
    });
    Some(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_is_s256_of_a_fresh_verifier() {
        // RFC 7636 appendix B.
        assert_eq!(challenge_of("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        let (a, b) = (pkce().unwrap(), pkce().unwrap());
        assert_eq!(a.verifier.expose().len(), 43);
        assert_ne!(a.verifier.expose(), b.verifier.expose());
        assert_ne!(a.state, b.state);
        assert_eq!(a.challenge, challenge_of(a.verifier.expose()));
    }

    #[test]
    fn parses_callbacks_from_targets_urls_and_queries() {
        let cb = parse_callback("/?code=abc&state=s1&session_state=x");
        assert_eq!((cb.code.as_deref(), cb.state.as_deref()), (Some("abc"), Some("s1")));
        let cb = parse_callback("http://localhost:1234/?error=access_denied&error_description=AADSTS65004%3A+declined&state=s");
        assert_eq!(cb.error.as_deref(), Some("access_denied"));
        assert_eq!(cb.error_description.as_deref(), Some("AADSTS65004: declined"));
        assert_eq!(parse_callback("code=c&state=s#frag").code.as_deref(), Some("c"));
        assert_eq!(parse_callback("/favicon.ico"), Callback::default());
    }

    #[test]
    fn redirect_uris() {
        let r = redirect_for(None).unwrap();
        let port = r.listener.as_ref().unwrap().local_addr().unwrap().port();
        assert_eq!(r.uri, format!("http://localhost:{port}"));
        let r = redirect_for(Some("http://localhost/callback")).unwrap();
        let port = r.listener.as_ref().unwrap().local_addr().unwrap().port();
        assert_eq!(r.uri, format!("http://localhost:{port}/callback"));
        let r = redirect_for(Some("https://app.contoso.test/auth")).unwrap();
        assert!(r.listener.is_none());
        assert_eq!(r.uri, "https://app.contoso.test/auth");
    }

    /// The URL is one argument of a directly started program on every platform: `&`,
    /// `%` and `;` reach the browser intact (no `cmd /c start`, no `sh -c`).
    #[test]
    fn the_browser_gets_the_url_as_one_argument() {
        let url = "https://login.test/t/oauth2/v2.0/authorize?client_id=a&redirect_uri=http%3A%2F%2Flocalhost%3A5&state=x;y";
        let platform = browser_commands(url, None, true);
        let last = platform.last().unwrap();
        assert_eq!(last.last().unwrap(), url);
        if cfg!(windows) {
            assert_eq!(last, &["rundll32", "url.dll,FileProtocolHandler", url]);
        } else if !cfg!(target_os = "macos") {
            assert_eq!(last, &["xdg-open", url]);
            assert!(browser_commands(url, None, false).is_empty(), "no display, no opener");
        }
        let sep = if cfg!(windows) { ";" } else { ":" };
        let listed = browser_commands(url, Some(&format!("firefox --new-tab{sep}chrome %s --incognito")), false);
        assert_eq!(listed[0], ["firefox", "--new-tab", url]);
        assert_eq!(listed[1], ["chrome", url, "--incognito"]);
        // Paths with spaces: quoted, or the whole entry when it is a file.
        let quoted = browser_commands(url, Some(r#""/opt/Web Browser/run" --new-tab %s"#), false);
        assert_eq!(quoted[0], ["/opt/Web Browser/run", "--new-tab", url]);
        let dir = std::env::temp_dir().join(format!("entra-token browser {}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("my browser");
        std::fs::write(&file, b"").unwrap();
        let whole = browser_commands(url, Some(file.to_str().unwrap()), false);
        assert_eq!(whole[0], [file.to_str().unwrap(), url]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
