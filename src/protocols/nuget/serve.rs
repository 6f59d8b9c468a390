//! The NuGet plugin's adapter: reads NuGet's messages line by line, answers the small ones at
//! once and runs each `GetAuthenticationCredentials` on its own thread, so the reader stays
//! free for `Cancel` and `Close` while a sign-in waits. A request still working sends
//! `Progress` every couple of seconds (NuGet gives up on a request after 5 s without one).
//! Every message leaves through one lock, so a cancelled request gets its `Cancel`
//! acknowledgement and never a late answer.

use super::{AuthAnswer, Kind, Message};
use crate::broker;
use crate::error::{self, Error, Result};
use crate::log::trace;
use serde_json::Value;
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// NuGet's own plugins report progress every 2 s against its 5 s request timeout.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
const AUTH: &str = "GetAuthenticationCredentials";

/// The requests still being worked on, by id: `true` once NuGet cancelled it.
type InFlight = Arc<Mutex<HashMap<String, bool>>>;

fn send(line: &str) {
    // A closed pipe means NuGet went away; the next read sees end of input.
    let _ = super::super::write_stdout(line.as_bytes());
}

fn respond(m: &Message, payload: Value) {
    send(&super::encode(&m.request_id, "Response", &m.method, Some(payload)));
}

/// Without `-Plugin` a person ran us by hand: say what this is instead of waiting for NuGet.
pub(crate) fn run(args: &[std::ffi::OsString]) -> Result<ExitCode> {
    if !args.iter().skip(1).any(|a| a.eq_ignore_ascii_case("-plugin")) {
        return Err(Error::bad_input_hint(
            "this is entra-token's NuGet credential plugin; NuGet runs it with -Plugin and talks JSON on stdin",
            "run `entra-token setup nuget` to see how NuGet finds it",
        ));
    }
    serve()
}

pub(crate) fn serve() -> Result<ExitCode> {
    let ours = format!("entra-token-{}-handshake", std::process::id());
    send(&super::encode(&ours, "Request", "Handshake", Some(super::handshake_request())));
    let in_flight: InFlight = Arc::default();
    let mut progress_every = PROGRESS_EVERY;
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    while let Some(line) = crate::protocols::next_line(&mut input)? {
        let m = match super::decode(&line) {
            Ok(m) => m,
            Err(e) => {
                crate::log::warn!("{e}");
                continue;
            }
        };
        trace!(2, "NuGet: {:?} {} ({})", m.kind, crate::log::escape(&m.method), m.request_id);
        match (m.kind, m.method.as_str()) {
            (Kind::Response, "Handshake") if m.request_id == ours && super::handshake_accepted(m.payload.as_ref()).is_none() => {
                return Err(Error::bad_input("NuGet refused entra-token's plugin protocol version (2.0.0 is needed for authentication)"));
            }
            (Kind::Request, "Handshake") => respond(&m, super::handshake_payload(super::negotiate(m.payload.as_ref()))),
            // No response is expected: the plugin just exits promptly.
            (Kind::Request, "Close") => return Ok(ExitCode::SUCCESS),
            (Kind::Request, "Initialize") => {
                if let Some(t) = super::request_timeout(m.payload.as_ref()) {
                    progress_every = PROGRESS_EVERY.min(t / 2).max(Duration::from_millis(100));
                }
                respond(&m, super::success_payload());
            }
            // Our messages go to stderr, which NuGet leaves attached to its console; proxy
            // settings and feed passwords NuGet may hand over are not ours to use.
            (Kind::Request, "SetLogLevel" | "SetCredentials" | "MonitorNuGetProcessExit") => respond(&m, super::success_payload()),
            (Kind::Request, "GetOperationClaims") => {
                let ours = super::claims_source(m.payload.as_ref()).is_none_or(|source| claimed(&source));
                respond(&m, super::claims_payload(ours));
            }
            (Kind::Request, AUTH) => match super::auth_request(m.payload.as_ref()) {
                Ok(req) => start(m.request_id, req, &in_flight, progress_every),
                Err(e) => send(&super::fault(&m.request_id, &m.method, &e)),
            },
            (Kind::Request, other) => send(&super::fault(&m.request_id, other, &format!("entra-token's plugin does not handle {}", crate::log::escape(other)))),
            (Kind::Cancel, _) => {
                let mut map = in_flight.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(cancelled @ false) = map.get_mut(&m.request_id) {
                    *cancelled = true;
                    send(&super::encode(&m.request_id, "Cancel", &m.method, None));
                }
            }
            (Kind::Fault, _) => {
                let msg = m.payload.as_ref().and_then(|p| p.get("Message")).and_then(Value::as_str).unwrap_or("?");
                crate::log::warn!("NuGet reported a fault: {msg}");
            }
            // Progress, responses to requests we never sent, types of a later protocol.
            _ => {}
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Does a profile claim this feed (for `GetOperationClaims` with a source)?
fn claimed(source: &str) -> bool {
    let Some(parts) = crate::urlmatch::parse(source) else { return false };
    if crate::agent::from_env().is_some() {
        return true;
    }
    matches!(crate::urlmatch::profile_for(&parts), Ok(Some(_)))
}

/// Runs one credentials request on its own thread, with progress while it works.
fn start(id: String, req: super::AuthRequest, in_flight: &InFlight, every: Duration) {
    in_flight.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), false);
    let in_flight = Arc::clone(in_flight);
    std::thread::spawn(move || {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(credentials(&req));
        });
        let answer = loop {
            match rx.recv_timeout(every) {
                Ok(a) => break a,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let map = in_flight.lock().unwrap_or_else(|p| p.into_inner());
                    if map.get(&id) != Some(&false) {
                        break AuthAnswer::NotFound;
                    }
                    send(&super::progress(&id, AUTH));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break AuthAnswer::Error("entra-token failed while getting the token".into()),
            }
        };
        let mut map = in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if map.remove(&id) == Some(false) {
            send(&super::encode(&id, "Response", AUTH, Some(super::auth_payload(&answer))));
        }
    });
}

/// The answer for one feed URL: the profile that claims it signs in (without a prompt when
/// NuGet says nobody can answer one; a fresh token when NuGet says ours was refused).
fn credentials(req: &super::AuthRequest) -> AuthAnswer {
    let Some(parts) = crate::urlmatch::parse(&req.uri) else {
        trace!(1, "NuGet asks about {}, not an https URL a profile can claim", crate::log::escape(&req.uri));
        return AuthAnswer::NotFound;
    };
    let outcome = super::super::url_request(&parts).and_then(|r| match r {
        None => Ok(None),
        Some(mut token_req) => {
            token_req.prompts = !req.is_non_interactive;
            token_req.force_refresh = req.is_retry;
            broker::get_token(&token_req).map(Some)
        }
    });
    match outcome {
        Ok(Some(c)) => AuthAnswer::Token(c),
        Ok(None) => AuthAnswer::NotFound,
        Err(e) if super::super::unclaimed(&e) => AuthAnswer::NotFound,
        Err(e) => {
            let line = error::one_line(&e);
            crate::log::line(format_args!("{line}"));
            AuthAnswer::Error(crate::log::escape(&line).into_owned())
        }
    }
}
