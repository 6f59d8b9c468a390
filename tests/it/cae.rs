//! Long-lived tokens, opt-in (continuous access evaluation): a profile with the `cp1`
//! client capability says so on every token request, merged with a caller's claims
//! challenge as MSAL does; its long-lived tokens are cached apart from a plain profile's,
//! and a challenge brought back through the native protocol gets a new one.

use crate::support::{CcProfile, MockAuthority, Sandbox, code, ok, run, run_with_stdin, stderr};
use serde_json::{Value, json};
use std::process::Command;

const CLIENT: &str = "11111111-2222-3333-4444-555555555555";
const SECRET: &str = "s3cret-value-xyz";
const TENANT: &str = "contoso.onmicrosoft.com";
/// What a cp1 profile's requests carry when the caller brings no challenge.
const CP1: &str = r#"{"access_token":{"xms_cc":{"values":["CP1"]}}}"#;
const CHALLENGE: &str = r#"{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}"#;

/// Two profiles of one app in one tenant: `cae` declares cp1, `plain` does not.
fn setup() -> (MockAuthority, Sandbox) {
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_app(CLIENT, Some(SECRET));
    let sb = Sandbox::new();
    let cae = CcProfile::new("cae", &mock.url(), TENANT, CLIENT).with("client_capabilities = [\"cp1\"]\n").toml();
    let plain = CcProfile::new("plain", &mock.url(), TENANT, CLIENT).toml();
    sb.write_config(&format!("{cae}\n{plain}"));
    (mock, sb)
}

fn cmd(sb: &Sandbox, args: &[&str]) -> Command {
    let mut c = sb.cmd();
    c.args(args).env("CI_SECRET", SECRET);
    c
}

/// A native-protocol answer for `profile` (graph), with the caller's claims challenge if any.
fn native(sb: &Sandbox, profile: &str, claims: Option<&str>) -> Value {
    let mut req = json!({"profile": profile, "resource": "graph"});
    if let Some(c) = claims {
        req["claims"] = c.into();
    }
    let o = ok(run_with_stdin(cmd(sb, &[]), &req.to_string()));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)))
}

/// The last token request's `claims`, as JSON (None when it sent none).
fn sent_claims(mock: &MockAuthority) -> Option<Value> {
    let last = mock.requests().into_iter().rev().find(|r| r.path.ends_with("/token")).expect("a token request");
    last.form_get("claims").map(|c| serde_json::from_str(c).unwrap_or_else(|e| panic!("claims is not JSON ({e}): {c}")))
}

fn parse(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

#[test]
fn a_cp1_profile_declares_the_capability_on_every_request_merged_with_a_challenge() {
    let (mock, sb) = setup();
    ok(run(cmd(&sb, &["get-token", "-p", "cae", "-r", "graph"])));
    assert_eq!(sent_claims(&mock), Some(parse(CP1)), "no challenge: the capability alone");
    ok(run(cmd(&sb, &["get-token", "-p", "plain", "-r", "graph"])));
    assert_eq!(sent_claims(&mock), None, "a profile without cp1 sends no claims");

    let merged = json!({"access_token": {"nbf": {"essential": true, "value": "1700000000"}, "xms_cc": {"values": ["CP1"]}}});
    native(&sb, "cae", Some(CHALLENGE));
    assert_eq!(sent_claims(&mock), Some(merged.clone()), "native protocol: the challenge and the capability, merged");
    ok(run(cmd(&sb, &["get-token", "-p", "cae", "-r", "graph", "--claims", CHALLENGE])));
    assert_eq!(sent_claims(&mock), Some(merged), "get-token --claims: the same");
    native(&sb, "plain", Some(CHALLENGE));
    assert_eq!(sent_claims(&mock), Some(parse(CHALLENGE)), "without cp1 the challenge goes as it came");
}

#[test]
fn a_long_lived_cp1_token_is_served_to_the_cp1_profile_only() {
    let (mock, sb) = setup();
    // Entra's CAE tokens live up to about 28 hours.
    mock.set_token_lifetime(28 * 3600);
    let cae = native(&sb, "cae", None);
    assert_eq!(cae["from_cache"], false);
    assert!(cae["expires_in"].as_i64().unwrap() > 27 * 3600, "{cae}");
    assert_eq!(native(&sb, "cae", None)["access_token"], cae["access_token"], "the cp1 profile gets its cached token");
    assert_eq!(mock.token_requests(), 1);

    let plain = native(&sb, "plain", None);
    assert_eq!(plain["from_cache"], false, "a profile without cp1 never gets the cp1 token");
    assert_ne!(plain["access_token"], cae["access_token"]);
    assert_eq!(mock.token_requests(), 2);
    let again = native(&sb, "plain", None);
    assert_eq!((again["from_cache"].clone(), again["access_token"].clone()), (json!(true), plain["access_token"].clone()));
    let again = native(&sb, "cae", None);
    assert_eq!((again["from_cache"].clone(), again["access_token"].clone()), (json!(true), cae["access_token"].clone()), "and the cp1 profile never gets the plain one");
    assert_eq!(mock.token_requests(), 2);
}

#[test]
fn a_claims_challenge_through_the_native_protocol_gets_a_fresh_cp1_token() {
    let (mock, sb) = setup();
    mock.set_token_lifetime(28 * 3600);
    let first = native(&sb, "cae", None);
    // The resource revoked it (insufficient_claims): the caller brings the challenge back.
    let fresh = native(&sb, "cae", Some(CHALLENGE));
    assert_eq!(fresh["from_cache"], false, "a challenge never gets the cached token");
    assert_ne!(fresh["access_token"], first["access_token"]);
    assert_eq!(mock.token_requests(), 2);
    assert_eq!(sent_claims(&mock).unwrap()["access_token"]["nbf"]["value"], "1700000000");
    // The new token replaced the revoked one for the next caller.
    let next = native(&sb, "cae", None);
    assert_eq!((next["from_cache"].clone(), next["access_token"].clone()), (json!(true), fresh["access_token"].clone()));
}

#[test]
fn an_unknown_client_capability_is_refused_in_one_line() {
    let (mock, sb) = setup();
    sb.write_config(&CcProfile::new("cae", &mock.url(), TENANT, CLIENT).with("client_capabilities = [\"cp2\"]\n").toml());
    let o = run(cmd(&sb, &["get-token", "-p", "cae", "-r", "graph"]));
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("unknown client capability \"cp2\"") && err.contains("cp1"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(mock.token_requests(), 0);
}

#[test]
fn a_person_s_sign_in_and_refresh_grants_carry_the_capability() {
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_user("ann@contoso.test", "pw-ann");
    let sb = Sandbox::new();
    sb.write_config(&format!(
        "[profiles.me]\nauthority = \"{}\"\ntenant = \"{TENANT}\"\nflow = \"password\"\nusername = \"ann@contoso.test\"\npassword_env = \"ANN_PW\"\nstorage = \"file\"\nclient_capabilities = [\"CP1\"]\n",
        mock.url()
    ));
    let get = |resource: &str| {
        let mut c = sb.cmd();
        c.env("ANN_PW", "pw-ann").args(["get-token", "-p", "me", "-r", resource]);
        ok(run_with_stdin(c, ""));
    };
    get("graph");
    get("arm");
    let grants: Vec<(String, Option<Value>)> = mock
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/token"))
        .map(|r| (r.form_get("grant_type").unwrap_or("").to_string(), r.form_get("claims").map(parse)))
        .collect();
    assert_eq!(grants, vec![("password".to_string(), Some(parse(CP1))), ("refresh_token".to_string(), Some(parse(CP1)))]);
}

#[test]
fn status_names_a_cp1_token() {
    let (mock, sb) = setup();
    mock.set_token_lifetime(28 * 3600);
    native(&sb, "cae", None);
    native(&sb, "plain", None);
    let status = |o: &str| String::from_utf8(ok(run(cmd(&sb, &["status", "-o", o]))).stdout).unwrap();
    let v: Value = serde_json::from_str(&status("json")).unwrap();
    let tokens = |name: &str| v["profiles"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("{v}"))["tokens"].clone();
    assert_eq!(tokens("cae")[0]["capabilities"], "cp1", "{v}");
    assert_eq!(tokens("plain")[0]["capabilities"], Value::Null, "{v}");
    let text = status("text");
    assert_eq!(text.matches("(cp1)").count(), 1, "{text}");
}

/// Through the token agent the agent's profile decides: its cp1 goes to Entra with the
/// client's challenge merged in, and the agent's long-lived token is what the client gets.
#[cfg(unix)]
#[test]
fn through_the_token_agent_the_agents_cp1_profile_merges_the_clients_challenge() {
    use crate::agent::{client, laptop_as};
    // The laptop's `arm` profile, with cp1 added before the agent starts.
    let lap = laptop_as(&[], |sb, _| {
        let config = std::fs::read_to_string(sb.path("config.toml")).unwrap();
        sb.write_config(&config.replace("[profiles.arm]\n", "[profiles.arm]\nclient_capabilities = [\"cp1\"]\n"));
    });
    let (_c, cmd) = client(&lap.socket);
    let last_claims = || lap.mock.requests().into_iter().rev().find(|r| r.path.ends_with("/token")).and_then(|r| r.form_get("claims").map(parse));
    ok(run(cmd(&["get-token", "-p", "arm", "-r", "arm"])));
    assert_eq!(last_claims(), Some(parse(CP1)));
    ok(run_with_stdin(cmd(&[]), &json!({"profile": "arm", "resource": "arm", "claims": CHALLENGE}).to_string()));
    assert_eq!(lap.mock.token_requests(), 2, "the challenge got a new token");
    assert_eq!(last_claims(), Some(json!({"access_token": {"nbf": {"essential": true, "value": "1700000000"}, "xms_cc": {"values": ["CP1"]}}})));
}

/// The capability is the profile's to declare, never a caller's: a challenge naming
/// `xms_cc` CP1 for a profile without `client_capabilities` reaches Entra without it, so
/// no long-lived CAE token is minted and then cached as that profile's plain token (and
/// served to tools that cannot bring a revocation challenge back).
#[test]
fn a_challenge_cannot_declare_cp1_for_a_profile_that_does_not() {
    let (mock, sb) = setup();
    let smuggled = json!({"access_token": {"nbf": {"essential": true, "value": "1700000000"}, "xms_cc": {"values": ["CP1"]}}});
    native(&sb, "plain", Some(&smuggled.to_string()));
    assert_eq!(sent_claims(&mock), Some(parse(CHALLENGE)), "the caller's xms_cc reached Entra");
    // Only the capability: nothing is left to send.
    native(&sb, "plain", Some(r#"{"access_token":{"XMS_CC":{"values":["cp1"]}}}"#));
    assert_eq!(sent_claims(&mock), None, "the caller's xms_cc reached Entra");
}
