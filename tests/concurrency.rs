//! Concurrency: many processes with a cold cache ask at once; the per-key lock lets
//! exactly one of them per key reach the authority, and all get the same token.

mod support;

use std::process::{Output, Stdio};
use std::time::Duration;
use support::{MockAuthority, Sandbox};

const TENANT: &str = "contoso.test";
const APP: &str = "55555555-5555-5555-5555-555555555555";
const SECRET: &str = "herd~secret~value";

fn setup() -> (MockAuthority, Sandbox) {
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some(SECRET));
    let sb = Sandbox::new();
    sb.write_config(&format!(
        "[profiles.ci]\nauthority = \"{}\"\ntenant = \"{TENANT}\"\nclient_id = \"{APP}\"\nflow = \"client-credentials\"\nclient_secret_env = \"CI_SECRET\"\n",
        mock.url()
    ));
    (mock, sb)
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
