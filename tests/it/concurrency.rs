//! Concurrency: many processes with a cold cache ask at once; the per-key lock lets
//! exactly one of them per key reach the authority, and all get the same token.

use crate::support;

use std::process::{Output, Stdio};
use std::time::Duration;
use crate::support::{MockAuthority, Sandbox};

const TENANT: &str = "contoso.test";
const APP: &str = "55555555-5555-5555-5555-555555555555";
const SECRET: &str = "herd~secret~value";

fn setup() -> (MockAuthority, Sandbox) {
    support::client_credentials_setup(TENANT, APP, SECRET)
}

/// Starts one process per resource, all at once, and waits for every one.
fn herd(sb: &Sandbox, resources: &[String]) -> Vec<Output> {
    let children: Vec<_> = resources
        .iter()
        .map(|r| {
            let mut cmd = sb.cmd();
            cmd.env("CI_SECRET", SECRET)
                .args(["get-token", "-p", "ci", "-r", r, "--timeout", "120s"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            cmd.spawn().expect("spawn entra-token")
        })
        .collect();
    children.into_iter().map(|c| c.wait_with_output().expect("wait")).collect()
}

fn token(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn fifty_cold_processes_for_one_key_make_one_token_request() {
    let (mock, sb) = setup();
    // Keep the first request in flight long enough for the whole herd to pile onto the lock.
    mock.set_delay(Duration::from_millis(500));
    let outs = herd(&sb, &vec!["graph".to_string(); 50]);
    let tokens: Vec<String> = outs.iter().map(token).collect();
    assert_eq!(mock.token_requests(), 1, "the herd was not collapsed into one request");
    assert!(tokens.iter().all(|t| t == &tokens[0]), "processes got different tokens");
}

#[test]
fn fifty_processes_over_ten_keys_make_ten_token_requests() {
    let (mock, sb) = setup();
    mock.set_delay(Duration::from_millis(300));
    let resources: Vec<String> = (0..50).map(|i| format!("api://herd-{}", i % 10)).collect();
    let outs = herd(&sb, &resources);
    let tokens: Vec<String> = outs.iter().map(token).collect();
    assert_eq!(mock.token_requests(), 10, "one request per key");
    for key in 0..10 {
        let same: Vec<&String> = tokens.iter().enumerate().filter(|(i, _)| i % 10 == key).map(|(_, t)| t).collect();
        assert!(same.iter().all(|t| *t == same[0]), "key {key}: processes got different tokens");
    }
    let distinct: std::collections::HashSet<&String> = tokens.iter().collect();
    assert_eq!(distinct.len(), 10, "keys shared a token");
}

const USER: &str = "ann@contoso.test";
const PASSWORD: &str = "correct horse battery";

fn signed_in(storage: &str) -> (MockAuthority, Sandbox) {
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_user(USER, PASSWORD);
    mock.set_rotate_refresh_tokens(true);
    let sb = Sandbox::new();
    sb.write_config(&format!(
        "[profiles.me]\nauthority = \"{}\"\ntenant = \"{TENANT}\"\nflow = \"password\"\nusername = \"{USER}\"\npassword_env = \"ANN_PASSWORD\"\nstorage = \"{storage}\"\n",
        mock.url()
    ));
    let mut c = sb.cmd();
    c.env("ANN_PASSWORD", PASSWORD).args(["get-token", "-p", "me", "-r", "graph"]);
    let o = support::run_with_stdin(c, "");
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    (mock, sb)
}

/// The refresh tokens in the file store.
fn stored_rts(sb: &Sandbox) -> Vec<String> {
    std::fs::read_dir(sb.path("cache"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("rt-") && e.file_name().to_string_lossy().ends_with(".json"))
        .map(|e| support::read_rt_entry(&e.path())["refresh_token"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn twenty_processes_rotating_one_refresh_token_never_lose_the_newest() {
    let (mock, sb) = signed_in("file");
    mock.set_delay(Duration::from_millis(50));
    // No password from here on: a lost refresh token would show up as a failure.
    let resources: Vec<String> = (0..20).map(|i| format!("api://rotate-{}", i % 10)).collect();
    let children: Vec<_> = resources
        .iter()
        .map(|r| {
            let mut c = sb.cmd();
            c.args(["get-token", "-p", "me", "-r", r, "--timeout", "120s"]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for c in children {
        token(&c.wait_with_output().unwrap());
    }
    assert_eq!(mock.grant_count("refresh_token"), 10, "one refresh per new resource");
    assert_eq!(mock.grant_count("password"), 1);
    let live = mock.live_refresh_tokens();
    assert_eq!(live.len(), 1, "rotation left {} live refresh tokens", live.len());
    assert_eq!(stored_rts(&sb), live, "the stored refresh token is not the newest");
}

#[test]
fn sigkill_mid_refresh_leaves_no_stuck_account_lock() {
    let (mock, sb) = signed_in("file");
    // Rotation off: the killed process may have been answered; the lock is what is tested.
    mock.set_rotate_refresh_tokens(false);
    mock.set_delay(Duration::from_secs(30));
    let before = mock.grant_count("refresh_token");
    let mut victim = sb.cmd().args(["get-token", "-p", "me", "-r", "storage"]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let start = std::time::Instant::now();
    while mock.grant_count("refresh_token") == before {
        assert!(start.elapsed() < Duration::from_secs(20), "never reached the refresh");
        std::thread::sleep(Duration::from_millis(10));
    }
    victim.kill().unwrap();
    victim.wait().unwrap();
    mock.set_delay(Duration::ZERO);
    let mut c = sb.cmd();
    c.args(["get-token", "-p", "me", "-r", "keyvault", "--timeout", "5s"]);
    let o = support::run_with_stdin(c, "");
    token(&o);
    assert_eq!(stored_rts(&sb).len(), 1, "the refresh token entry is gone or torn");
}
