//! `logout` keeps its promise: after it says it removed a profile's tokens, no call of that
//! profile is answered from the cache, whether a fetch was under way while it ran or
//! another profile with the same identity stored the entry the profile would be served.

use crate::support;
use crate::support::{CcProfile, MockAuthority, Sandbox, run_with_stdin, stderr};
use std::process::Stdio;
use std::time::{Duration, Instant};

const TENANT: &str = "contoso.test";
const APP: &str = "88888888-8888-8888-8888-888888888888";
const SECRET: &str = "sign~out~secret";

/// Profiles `a` and `b`: the same app in the same tenant (one identity, one cache key).
fn setup() -> (MockAuthority, Sandbox) {
    let (mock, sb) = support::client_credentials_setup(TENANT, APP, SECRET);
    sb.write_config(&format!("{}\n{}", CcProfile::new("a", &mock.url(), TENANT, APP).toml(), CcProfile::new("b", &mock.url(), TENANT, APP).toml()));
    (mock, sb)
}

fn get_token(sb: &Sandbox, profile: &str) -> std::process::Command {
    let mut c = sb.cmd();
    c.env("CI_SECRET", SECRET).args(["get-token", "-v", "-p", profile, "-r", "graph", "--timeout", "30s"]);
    c
}

fn token(sb: &Sandbox, profile: &str) -> (String, String) {
    let out = run_with_stdin(get_token(sb, profile), "");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    (String::from_utf8_lossy(&out.stdout).trim().to_string(), stderr(&out))
}

fn logout(sb: &Sandbox, args: &[&str]) -> String {
    let mut c = sb.cmd();
    c.arg("logout").args(args);
    let out = run_with_stdin(c, "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stderr(&out)
}

/// The access-token entries in the sandbox's cache.
fn entries(sb: &Sandbox) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(sb.path("cache")) else { return Vec::new() };
    dir.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with("at-") && n.ends_with(".json")).collect()
}

/// A fetch holding its key's lock while the authority is slow, and a logout meanwhile:
/// the fetch answers its caller, but its token is not left in the cache, and the next
/// call fetches again.
#[test]
fn a_fetch_under_way_during_logout_leaves_no_token_behind() {
    let (mock, sb) = setup();
    let delay = Duration::from_secs(4);
    mock.set_delay(delay);
    let fetch = get_token(&sb, "a").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    while mock.token_requests() == 0 {
        assert!(start.elapsed() < Duration::from_secs(20), "the fetch never reached the authority");
        std::thread::sleep(Duration::from_millis(20));
    }
    let said = logout(&sb, &["-p", "a"]);
    // The authority answers `delay` after the request arrived (after `start`): still waiting.
    assert!(start.elapsed() < delay, "the logout ended after the authority answered: the test proves nothing ({said})");
    let out = fetch.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "the fetch under way failed: {}", stderr(&out));
    assert!(entries(&sb).is_empty(), "the fetch's token outlived the logout: {:?}; {}", entries(&sb), stderr(&out));
    mock.set_delay(Duration::ZERO);
    let (_, err) = token(&sb, "a");
    assert_eq!(mock.token_requests(), 2, "the next call was answered from the cache: {err}");
    // Without a logout meanwhile, a fetch is cached as always.
    let (_, err) = token(&sb, "a");
    assert_eq!(mock.token_requests(), 2, "{err}");
    assert!(err.contains("cache hit"), "{err}");
}

/// `logout -p b` removes what `b`'s calls would be answered with, whoever stored it: `a`
/// and `b` share one identity and so one entry, and `b`'s next call fetches anew.
#[test]
fn logout_of_a_profile_removes_its_identitys_entries_stored_by_another() {
    let (mock, sb) = setup();
    token(&sb, "a");
    let (_, err) = token(&sb, "b");
    assert!(err.contains("cache hit"), "a and b share the entry: {err}");
    assert_eq!(mock.token_requests(), 1);
    let said = logout(&sb, &["-p", "b"]);
    assert!(said.contains("removed 1 access token"), "{said}");
    assert!(entries(&sb).is_empty(), "{:?}", entries(&sb));
    let (_, err) = token(&sb, "b");
    assert_eq!(mock.token_requests(), 2, "b was answered from the cache after its logout: {err}");
}
