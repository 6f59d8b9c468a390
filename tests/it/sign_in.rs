//! People sign in once: device code, browser (PKCE), password, refresh tokens with
//! rotation, dead refresh tokens, fail-fast without a terminal, and the commands around
//! a sign-in (login, logout, refresh, inspect, status), all through the built binary
//! against the mock authority. Run under Wine too (scripts/windows.sh): there the
//! browser stand-in is this test binary (no sh, no curl) and refresh tokens are read
//! from their DPAPI-sealed files.

mod accounts;
mod browser;
mod commands;
mod device_code;

use crate::support;

use serde_json::Value;
use std::ffi::OsString;
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use crate::support::{MockAuthority, Sandbox, code, jwt_claims, ok, run, run_with_stdin, text};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const CONTOSO: &str = "contoso.test";

/// A sandbox whose config has profile `name` with these settings against the mock.
///
/// On Windows every profile also says `storage = "file"` (the documented way to skip
/// Credential Manager): these tests read each refresh token from its DPAPI-sealed file,
/// and Credential Manager is one store per Windows account, shared by every test running
/// at once. The windows suite tests Credential Manager itself (`storage = "auto"`).
pub(crate) fn sandbox(mock: &MockAuthority, profiles: &[(&str, &str)]) -> Sandbox {
    let sb = Sandbox::new();
    let mut cfg = String::new();
    let storage = if cfg!(windows) { "storage = \"file\"\n" } else { "" };
    for (name, body) in profiles {
        cfg.push_str(&format!("[profiles.{name}]\nauthority = \"{}\"\n{storage}{body}\n", mock.url()));
    }
    sb.write_config(&cfg);
    sb
}

/// `Command::env` by value, so a command can be built in one expression.
trait WithEnv {
    fn e(self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Command;
}

impl WithEnv for Command {
    fn e(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Command {
        self.env(k, v);
        self
    }
}

fn device_profile() -> &'static str {
    "flow = \"device-code\"\ntenant = \"organizations\""
}

/// `login -p dev` by device code, approved at the first poll.
fn login_dev(mock: &MockAuthority, sb: &Sandbox) -> Output {
    mock.approve_device_codes(0);
    ok(run(sb.cmd_with(&["login", "-p", "dev"])))
}

fn token_requests_with(mock: &MockAuthority, field: &str) -> Vec<support::RecordedRequest> {
    mock.requests().into_iter().filter(|r| r.is_token_request() && r.form_get(field).is_some()).collect()
}

/// The refresh tokens in the sandbox's cache files (unsealed on Windows, where
/// `read_rt_entry` also fails a file that is not DPAPI-sealed).
fn stored_refresh_tokens(sb: &Sandbox) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(sb.path("cache")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        if name.starts_with("rt-") && name.ends_with(".json") {
            let v: Value = support::read_rt_entry(&e.path());
            out.push(v["refresh_token"].as_str().unwrap().to_string());
        }
    }
    out
}

/// Where the browser stand-in writes the URL it was given.
const BROWSER_LOG: &str = "STAND_IN_BROWSER_LOG";

/// A `$BROWSER` that records the URL it is given (in `$STAND_IN_BROWSER_LOG`), fetches it
/// from the mock and follows its 302 to our listener, as a browser would. On Linux a sh
/// script running curl; on Windows this test binary running [`browser_stand_in`] (Wine has
/// neither sh nor curl), started by entra-token directly, with no shell in between.
fn browser_script(sb: &Sandbox) -> Option<OsString> {
    if cfg!(windows) {
        let me = std::env::current_exe().expect("the test binary's path");
        return Some(format!("{} --exact sign_in::browser_stand_in --ignored --nocapture", me.display()).into());
    }
    if Command::new("curl").arg("--version").output().is_err() {
        support::skip::missing_tool("curl", "the $BROWSER stand-in");
        return None;
    }
    let script = "#!/bin/sh\n[ -n \"$STAND_IN_BROWSER_LOG\" ] && printf '%s' \"$1\" > \"$STAND_IN_BROWSER_LOG\"\nexec curl -sS -L --max-time 20 -o /dev/null \"$1\"\n";
    Some(sb.write_executable("browser.sh", script).into_os_string())
}

/// Not a test: the browser the sign-in tests start on Windows (see [`browser_script`]).
/// With no URL among its arguments (a plain `--ignored` run) it has nothing to do.
#[test]
#[ignore = "the $BROWSER stand-in of the sign-in tests, run by entra-token with the URL"]
fn browser_stand_in() {
    let Some(url) = std::env::args().find(|a| a.starts_with("http://") || a.starts_with("https://")) else { return };
    if let Some(log) = std::env::var_os(BROWSER_LOG) {
        std::fs::write(log, &url).expect("record the URL");
    }
    let agent: ureq::Agent = ureq::Agent::config_builder().proxy(None).max_redirects(0).http_status_as_error(false).build().into();
    let mut next = url;
    for _ in 0..5 {
        let reply = agent.get(&next).call().unwrap_or_else(|e| panic!("GET {next}: {e}"));
        match reply.headers().get("location").and_then(|l| l.to_str().ok()) {
            // To our listener on 127.0.0.1, as a browser resolves `localhost`. (Not by
            // name: Wine's getaddrinfo hands back a misaligned sockaddr, which the debug
            // std of the test build stops on with an abort.)
            Some(location) if reply.status().is_redirection() => next = location.replacen("http://localhost:", "http://127.0.0.1:", 1),
            _ => return,
        }
    }
    panic!("too many redirects");
}
