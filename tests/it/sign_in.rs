//! People sign in once: device code, browser (PKCE), password, refresh tokens with
//! rotation, dead refresh tokens, fail-fast without a terminal, and the commands around
//! a sign-in (login, logout, refresh, inspect, status), all through the built binary
//! against the mock authority.

use crate::support;

use serde_json::Value;
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use crate::support::{MockAuthority, Sandbox, code, jwt_claims, ok, run, run_with_stdin, text};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const CONTOSO: &str = "contoso.test";


/// A sandbox whose config has profile `name` with these settings against the mock.
fn sandbox(mock: &MockAuthority, profiles: &[(&str, &str)]) -> Sandbox {
    let sb = Sandbox::new();
    let mut cfg = String::new();
    for (name, body) in profiles {
        cfg.push_str(&format!("[profiles.{name}]\nauthority = \"{}\"\n{body}\n", mock.url()));
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

fn cmd(sb: &Sandbox, args: &[&str]) -> Command {
    let mut c = sb.cmd();
    c.args(args);
    c
}

fn device_profile() -> &'static str {
    "flow = \"device-code\"\ntenant = \"organizations\""
}

/// `login -p dev` by device code, approved at the first poll.
fn login_dev(mock: &MockAuthority, sb: &Sandbox) -> Output {
    mock.approve_device_codes(0);
    ok(run(cmd(sb, &["login", "-p", "dev"])))
}

fn token_requests_with(mock: &MockAuthority, field: &str) -> Vec<support::RecordedRequest> {
    mock.requests().into_iter().filter(|r| r.is_token_request() && r.form_get(field).is_some()).collect()
}

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

#[test]
fn device_code_login_shows_the_code_on_stderr_and_polls_until_approved() {
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("dev", device_profile())]);
    mock.approve_device_codes(2);
    let out = ok(run(cmd(&sb, &["login", "-p", "dev"])));
    let err = text(&out.stderr);
    assert!(out.stdout.is_empty(), "login must keep stdout clean: {}", text(&out.stdout));
    assert!(err.contains("/devicelogin") && err.contains("enter the code"), "{err}");
    assert!(err.contains("signed in as user@contoso.test") && err.contains("profile 'dev'"), "{err}");
    // Two pending answers, then the token: three polls at the mock's 1 s interval.
    assert_eq!(mock.grant_count(DEVICE_GRANT), 3);
    let dc = mock.requests().into_iter().find(|r| r.path.ends_with("/devicecode")).unwrap();
    let scope = dc.form_get("scope").unwrap();
    assert!(scope.contains("offline_access") && scope.contains("https://management.azure.com//.default"), "{scope}");
    // The account's refresh token is kept, not per resource.
    assert_eq!(stored_refresh_tokens(&sb), mock.live_refresh_tokens());
}

#[test]
fn device_code_slow_down_adds_five_seconds() {
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("dev", device_profile())]);
    mock.approve_device_codes(0);
    mock.send_slow_down_once();
    let start = Instant::now();
    ok(run(cmd(&sb, &["login", "-p", "dev"])));
    let took = start.elapsed();
    assert_eq!(mock.grant_count(DEVICE_GRANT), 2);
    // First poll after 1 s answers slow_down; the next waits 1 + 5 s.
    assert!(took >= Duration::from_secs(7), "slow_down was not honoured: {took:?}");
}

#[test]
fn device_code_declined_and_expired_stop_with_a_clear_message() {
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("dev", device_profile())]);
    mock.decline_device_codes();
    let out = run(cmd(&sb, &["login", "-p", "dev"]));
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("declined"), "{}", text(&out.stderr));
    assert_eq!(mock.grant_count(DEVICE_GRANT), 1);

    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("dev", device_profile())]);
    mock.approve_device_codes(1000);
    mock.set_device_code_expiry(2);
    let start = Instant::now();
    let out = run(cmd(&sb, &["login", "-p", "dev", "--timeout", "30s"]));
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("expired"), "{}", text(&out.stderr));
    // The code's own limit ended the wait, not the network timeout.
    assert!(start.elapsed() < Duration::from_secs(20), "{:?}", start.elapsed());
    assert!(!sb.path("cache").exists() || stored_refresh_tokens(&sb).is_empty());
}

#[test]
fn a_second_resource_is_served_by_the_refresh_token_never_a_second_sign_in() {
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("dev", device_profile())]);
    login_dev(&mock, &sb);
    let devicecodes = || mock.requests().iter().filter(|r| r.path.ends_with("/devicecode")).count();
    assert_eq!((devicecodes(), mock.grant_count(DEVICE_GRANT)), (1, 1));

    // The login's resource (ARM) is already cached: no request at all.
    let before = mock.token_requests();
    let out = ok(run(cmd(&sb, &["get-token", "-p", "dev"])));
    assert_eq!(mock.token_requests(), before);
    let arm = text(&out.stdout).trim().to_string();
    assert_eq!(jwt_claims(&arm).unwrap()["aud"], "https://management.azure.com/");

    for (i, resource) in ["graph", "storage", "powerbi"].iter().enumerate() {
        let out = ok(run(cmd(&sb, &["get-token", "-p", "dev", "-r", resource, "-o", "json"])));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["account"], "user@contoso.test");
        assert_eq!(mock.grant_count("refresh_token"), i + 1);
    }
    // And again from the cache.
    ok(run(cmd(&sb, &["get-token", "-p", "dev", "-r", "graph"])));
    assert_eq!(mock.grant_count("refresh_token"), 3);
    assert_eq!((devicecodes(), mock.grant_count(DEVICE_GRANT)), (1, 1), "a second sign-in happened");
}

#[test]
fn rotated_refresh_tokens_are_stored_before_the_answer() {
    let mock = MockAuthority::start();
    mock.set_rotate_refresh_tokens(true);
    let sb = sandbox(&mock, &[("dev", device_profile())]);
    login_dev(&mock, &sb);
    let first = stored_refresh_tokens(&sb);
    for resource in ["graph", "storage", "keyvault"] {
        ok(run(cmd(&sb, &["get-token", "-p", "dev", "-r", resource])));
        let now = stored_refresh_tokens(&sb);
        // The mock kills the old refresh token on rotation: only the newest works, and it is the one stored.
        assert_eq!(now, mock.live_refresh_tokens(), "after {resource}");
        assert_ne!(now, first);
    }
    assert_eq!(mock.grant_count("refresh_token"), 3);
    // Each refresh sent the previous answer's refresh token.
    let sent: Vec<String> = token_requests_with(&mock, "refresh_token").iter().map(|r| r.form_get("refresh_token").unwrap().to_string()).collect();
    assert_eq!(sent[0], first[0]);
    assert_ne!(sent[1], sent[0]);
}

#[test]
fn a_dead_refresh_token_fails_fast_with_the_login_command_then_login_heals_it() {
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("dev", device_profile())]);
    login_dev(&mock, &sb);
    mock.kill_refresh_tokens(50173);
    let start = Instant::now();
    let out = run(cmd(&sb, &["get-token", "-p", "dev", "-r", "graph"]));
    let err = text(&out.stderr);
    assert_eq!(code(&out), 3, "{err}");
    assert!(err.contains("AADSTS50173") && err.contains("`entra-token login -p dev`"), "{err}");
    assert!(out.stdout.is_empty());
    assert!(start.elapsed() < Duration::from_secs(10));
    // No sign-in was started for a person who cannot see it.
    assert_eq!(mock.requests().iter().filter(|r| r.path.ends_with("/devicecode")).count(), 1);
    assert!(stored_refresh_tokens(&sb).is_empty(), "the dead refresh token was kept");

    login_dev(&mock, &sb);
    ok(run(cmd(&sb, &["get-token", "-p", "dev", "-r", "graph"])));
}

#[test]
fn without_a_terminal_a_needed_sign_in_exits_3_at_once() {
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("dev", device_profile()), ("web", "flow = \"interactive\"")]);
    for (profile, login) in [("dev", "entra-token login -p dev"), ("web", "entra-token login -p web")] {
        let start = Instant::now();
        let out = run(cmd(&sb, &["get-token", "-p", profile, "--timeout", "60s"]));
        let took = start.elapsed();
        let err = text(&out.stderr);
        assert_eq!(code(&out), 3, "{err}");
        assert!(err.contains(login) && err.contains("not signed in"), "{err}");
        assert!(took < Duration::from_secs(5), "waited {took:?} for nobody");
    }
    // The native protocol answers the same error as JSON.
    let out = run_with_stdin(sb.cmd(), r#"{"resource":"graph","profile":"dev"}"#);
    assert_eq!(code(&out), 3);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "interaction_required");
    assert!(v["error"]["hint"].as_str().unwrap().contains("entra-token login -p dev"));
    assert_eq!(mock.requests().len(), 0, "nothing should have been asked of the authority");

    // The built-in default profile (nothing configured) is a person too.
    let sb = Sandbox::new();
    let out = run(cmd(&sb, &["get-token"]).e("AZURE_AUTHORITY_HOST", mock.url()));
    assert_eq!(code(&out), 3);
    assert!(text(&out.stderr).contains("`entra-token login`"), "{}", text(&out.stderr));
}

#[test]
fn the_built_in_default_signs_in_with_the_azure_cli_client_in_organizations() {
    let mock = MockAuthority::start();
    let sb = Sandbox::new();
    mock.approve_device_codes(0);
    let out = ok(run(cmd(&sb, &["login"]).e("AZURE_AUTHORITY_HOST", mock.url())));
    assert!(text(&out.stderr).contains("profile 'default'"), "{}", text(&out.stderr));
    let dc = mock.requests().into_iter().find(|r| r.path.ends_with("/devicecode")).expect("no display: device code");
    assert_eq!(dc.path, "/organizations/oauth2/v2.0/devicecode");
    assert_eq!(dc.form_get("client_id"), Some("04b07795-8ddb-461a-bbee-02f9e1bf7b46"));
    let out = ok(run(cmd(&sb, &["get-token", "-r", "graph"]).e("AZURE_AUTHORITY_HOST", mock.url())));
    assert_eq!(jwt_claims(text(&out.stdout).trim()).unwrap()["aud"], "https://graph.microsoft.com");
    assert_eq!(mock.grant_count("refresh_token"), 1);
}

/// A `$BROWSER` that fetches the authorize URL from the mock and follows its 302 to our listener.
fn browser_script(sb: &Sandbox) -> Option<std::path::PathBuf> {
    if Command::new("curl").arg("--version").output().is_err() {
        support::skip::missing_tool("curl", "the $BROWSER stand-in");
        return None;
    }
    Some(sb.write_executable("browser.sh", "#!/bin/sh\nexec curl -sS -L --max-time 20 -o /dev/null \"$1\"\n"))
}

#[cfg_attr(windows, ignore = "the $BROWSER stand-in is a sh script running curl")]
#[test]
fn browser_sign_in_with_pkce_through_a_browser_stand_in() {
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("web", "flow = \"interactive\"\ntenant = \"organizations\"\nlogin_hint = \"ann@contoso.test\"")]);
    let Some(browser) = browser_script(&sb) else { return };
    let out = ok(run(cmd(&sb, &["login", "-p", "web"]).e("BROWSER", &browser)));
    let err = text(&out.stderr);
    assert!(err.contains("signed in as ann@contoso.test"), "{err}");
    assert!(out.stdout.is_empty());
    let auth = mock.requests().into_iter().find(|r| r.path.ends_with("/authorize")).unwrap();
    assert_eq!(auth.query_get("code_challenge_method"), Some("S256"));
    assert_eq!(auth.query_get("login_hint"), Some("ann@contoso.test"));
    let redirect = auth.query_get("redirect_uri").unwrap().to_string();
    assert!(redirect.starts_with("http://localhost:"), "{redirect}");
    let state = auth.query_get("state").unwrap();
    assert!(state.len() >= 20, "{state}");
    let redeem = token_requests_with(&mock, "code").pop().unwrap();
    assert_eq!(redeem.form_get("grant_type"), Some("authorization_code"));
    assert_eq!(redeem.form_get("redirect_uri"), Some(redirect.as_str()));
    assert!(redeem.form_get("code_verifier").unwrap().len() >= 43);
    // Then silently, for another resource.
    ok(run(cmd(&sb, &["get-token", "-p", "web", "-r", "graph"])));
    assert_eq!((mock.grant_count("authorization_code"), mock.grant_count("refresh_token")), (1, 1));
}

#[cfg_attr(windows, ignore = "the $BROWSER stand-in is a sh script running curl")]
#[test]
fn authorization_code_with_a_client_secret_serves_a_confidential_app() {
    let mock = MockAuthority::start();
    mock.add_tenant(CONTOSO);
    let app = "33333333-3333-3333-3333-333333333333";
    mock.add_app(app, Some("web~secret"));
    let sb = sandbox(&mock, &[("webapp", &format!("flow = \"authorization-code\"\ntenant = \"{CONTOSO}\"\nclient_id = \"{app}\"\nclient_secret_env = \"WEBAPP_SECRET\""))]);
    let Some(browser) = browser_script(&sb) else { return };
    ok(run(cmd(&sb, &["login", "-p", "webapp"]).e("BROWSER", &browser).e("WEBAPP_SECRET", "web~secret")));
    let redeem = token_requests_with(&mock, "code").pop().unwrap();
    assert_eq!(redeem.form_get("client_secret"), Some("web~secret"));
    // The refresh grant of a confidential client carries the secret too.
    ok(run(cmd(&sb, &["get-token", "-p", "webapp", "-r", "graph"]).e("WEBAPP_SECRET", "web~secret")));
    let refresh = token_requests_with(&mock, "refresh_token").pop().unwrap();
    assert_eq!(refresh.form_get("client_secret"), Some("web~secret"));
}

#[test]
fn password_flow_from_the_environment_and_a_clear_mfa_message() {
    let mock = MockAuthority::start();
    mock.add_tenant(CONTOSO);
    mock.add_user("ann@contoso.test", "correct horse");
    let pw_file = {
        let sb = Sandbox::new();
        let p = sb.write_file("pw", "correct horse\n");
        (sb, p)
    };
    let sb = sandbox(
        &mock,
        &[
            ("legacy", &format!("flow = \"password\"\ntenant = \"{CONTOSO}\"\nusername = \"ann@contoso.test\"\npassword_env = \"ANN_PASSWORD\"")),
            ("filepw", &format!("flow = \"password\"\ntenant = \"{CONTOSO}\"\nusername = \"ann@contoso.test\"\npassword_file = \"{}\"", pw_file.1.display())),
            ("envpw", &format!("flow = \"password\"\ntenant = \"{CONTOSO}\"")),
            // Not ann: ann's sign-in (profile legacy) would serve any profile naming her.
            ("nopw", &format!("flow = \"password\"\ntenant = \"{CONTOSO}\"\nusername = \"bob@contoso.test\"")),
        ],
    );
    // No terminal, but nobody needs to be asked: the password flow runs unattended.
    let out = ok(run(cmd(&sb, &["get-token", "-p", "legacy", "-r", "graph", "-o", "json"]).e("ANN_PASSWORD", "correct horse")));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["account"], "ann@contoso.test");
    let req = token_requests_with(&mock, "password").pop().unwrap();
    assert_eq!(req.form_get("username"), Some("ann@contoso.test"));
    assert!(req.form_get("scope").unwrap().contains("offline_access"));
    assert!(!text(&out.stderr).contains("correct horse"));
    // The next resource comes from the refresh token, not the password.
    ok(run(cmd(&sb, &["get-token", "-p", "legacy", "-r", "storage"])));
    assert_eq!((mock.grant_count("password"), mock.grant_count("refresh_token")), (1, 1));

    // --no-cache: with the cache, these would reuse ann's sign-in from profile legacy.
    ok(run(cmd(&sb, &["get-token", "-p", "filepw", "-r", "graph", "--no-cache"])));
    ok(run(cmd(&sb, &["get-token", "-p", "envpw", "-r", "graph", "--no-cache"]).e("AZURE_USERNAME", "ann@contoso.test").e("AZURE_PASSWORD", "correct horse")));
    assert_eq!(mock.grant_count("password"), 3);

    // Without a password source and without a terminal: exit 3 at once, no request.
    let before = mock.token_requests();
    let out = run(cmd(&sb, &["get-token", "-p", "nopw", "-r", "keyvault"]));
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("entra-token login -p nopw"));
    assert_eq!(mock.token_requests(), before);

    mock.require_mfa_for_password(true);
    let out = run(cmd(&sb, &["get-token", "-p", "legacy", "-r", "keyvault", "--force"]).e("ANN_PASSWORD", "correct horse"));
    // Forced past the cache, the refresh token still serves: MFA does not matter there.
    assert!(out.status.success(), "{}", text(&out.stderr));
    ok(run(cmd(&sb, &["logout", "-p", "legacy"])));
    let out = run(cmd(&sb, &["get-token", "-p", "legacy", "-r", "keyvault"]).e("ANN_PASSWORD", "correct horse"));
    let err = text(&out.stderr);
    assert_eq!(code(&out), 3, "{err}");
    assert!(err.contains("multi-factor") && err.contains("AADSTS50076") && err.contains("--flow device-code"), "{err}");
}

#[test]
fn a_claims_challenge_bypasses_the_cache_and_reaches_entra() {
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("dev", device_profile())]);
    login_dev(&mock, &sb);
    ok(run(cmd(&sb, &["get-token", "-p", "dev", "-r", "graph"])));
    let before = mock.grant_count("refresh_token");
    let claims = r#"{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}"#;
    ok(run(cmd(&sb, &["get-token", "-p", "dev", "-r", "graph", "--claims", claims])));
    assert_eq!(mock.grant_count("refresh_token"), before + 1, "the cached token was served despite the challenge");
    let req = token_requests_with(&mock, "claims").pop().expect("claims not sent");
    assert_eq!(req.form_get("claims"), Some(claims));
    assert_eq!(req.form_get("grant_type"), Some("refresh_token"));
    // The native protocol's `claims` does the same.
    let out = run_with_stdin(sb.cmd(), &serde_json::json!({"profile":"dev","resource":"graph","claims":claims}).to_string());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mock.grant_count("refresh_token"), before + 2);
}

#[test]
fn refresh_forces_a_new_token_through_the_refresh_token() {
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("dev", device_profile())]);
    let out = run(cmd(&sb, &["refresh", "-p", "dev"]));
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("entra-token login -p dev"));
    login_dev(&mock, &sb);
    let out = ok(run(cmd(&sb, &["refresh", "-p", "dev", "-r", "graph"])));
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).contains("new token for https://graph.microsoft.com") && text(&out.stderr).contains("expires in"), "{}", text(&out.stderr));
    ok(run(cmd(&sb, &["refresh", "-p", "dev", "-r", "graph"])));
    assert_eq!(mock.grant_count("refresh_token"), 2, "refresh must not serve the cached token");
    assert_eq!(mock.grant_count(DEVICE_GRANT), 1);
}

#[test]
fn inspect_decodes_from_stdin_the_cache_or_an_argument() {
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("dev", device_profile())]);
    login_dev(&mock, &sb);
    let token = text(&ok(run(cmd(&sb, &["get-token", "-p", "dev", "-r", "graph"]))).stdout).trim().to_string();
    let claims = jwt_claims(&token).unwrap();

    let out = ok(run_with_stdin(cmd(&sb, &["inspect", "-"]), &token));
    let shown = text(&out.stdout);
    for want in ["audience", "https://graph.microsoft.com", claims["tid"].as_str().unwrap(), "user@contoso.test", "expires in", "not verified"] {
        assert!(shown.contains(want), "{want} missing:\n{shown}");
    }
    assert!(!shown.contains(&token));
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));

    let before = mock.token_requests();
    let out = ok(run(cmd(&sb, &["inspect", "-p", "dev", "-r", "graph", "-o", "json"])));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["claims"]["aud"], "https://graph.microsoft.com");
    assert_eq!(v["signature_verified"], false);
    assert!(v["expires_in"].as_i64().unwrap() > 3000);
    assert_eq!(mock.token_requests(), before, "inspect of a cached token went to the network");

    let out = ok(run(cmd(&sb, &["inspect", &token])));
    assert!(text(&out.stderr).contains("visible to other users"), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("audience"));

    let out = run_with_stdin(cmd(&sb, &["inspect", "-"]), "not-a-token");
    assert_eq!(code(&out), 1);
    assert!(text(&out.stderr).contains("not a JWT"));
}

#[test]
fn status_lists_accounts_and_tokens_never_the_tokens_themselves() {
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("dev", device_profile()), ("other", "flow = \"device-code\"")]);
    login_dev(&mock, &sb);
    let token = text(&ok(run(cmd(&sb, &["get-token", "-p", "dev", "-r", "graph"]))).stdout).trim().to_string();
    let out = ok(run(cmd(&sb, &["status"])));
    let s = text(&out.stdout);
    assert!(s.contains("dev") && s.contains("signed in as user@contoso.test"), "{s}");
    assert!(s.contains("https://graph.microsoft.com") && s.contains("https://management.azure.com/") && s.contains("expires in"), "{s}");
    assert!(s.contains("other") && s.contains("not signed in"), "{s}");
    assert!(s.contains("default"), "{s}");
    assert!(!s.contains(&token));
    for rt in mock.live_refresh_tokens() {
        assert!(!s.contains(&rt));
    }
    let listed = ok(run(cmd(&sb, &["cache", "list"])));
    // The same report (times may have ticked over a minute between the two runs).
    let strip = |t: &str| t.lines().map(|l| l.split("expires in").next().unwrap_or(l).to_string()).collect::<Vec<_>>();
    assert_eq!(strip(&text(&listed.stdout)), strip(&s));
    let out = ok(run(cmd(&sb, &["status", "-o", "json"])));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let dev = v["profiles"].as_array().unwrap().iter().find(|p| p["name"] == "dev").unwrap();
    assert_eq!(dev["account"]["username"], "user@contoso.test");
    assert_eq!(dev["account"]["refresh_token"], "stored");
    assert_eq!(dev["tokens"].as_array().unwrap().len(), 2);
    assert!(!text(&out.stdout).contains(&token));
}

#[test]
fn logout_removes_the_account_and_its_tokens() {
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("dev", device_profile()), ("dev2", device_profile())]);
    login_dev(&mock, &sb);
    ok(run(cmd(&sb, &["get-token", "-p", "dev", "-r", "graph"])));
    mock.approve_device_codes(0);
    ok(run(cmd(&sb, &["login", "-p", "dev2"])));
    let out = ok(run(cmd(&sb, &["logout", "-p", "dev"])));
    let err = text(&out.stderr);
    assert!(err.contains("signed out user@contoso.test from profile 'dev'") && err.contains("2 access token(s)"), "{err}");
    // dev2 signed in as the same account, so the account's refresh token stays for it.
    assert!(err.contains("refresh token stays") && err.contains("dev2"), "{err}");
    let out = run(cmd(&sb, &["get-token", "-p", "dev", "-r", "graph"]));
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    ok(run(cmd(&sb, &["get-token", "-p", "dev2", "-r", "graph"])));
    let out = ok(run(cmd(&sb, &["logout", "-p", "dev2"])));
    assert!(text(&out.stderr).contains("removed its refresh token"), "{}", text(&out.stderr));
    assert!(stored_refresh_tokens(&sb).is_empty());
    login_dev(&mock, &sb);
    let out = ok(run(cmd(&sb, &["logout", "--all"])));
    assert!(text(&out.stderr).contains("removed 1 refresh token(s)") && text(&out.stderr).contains("user@contoso.test (dev)"), "{}", text(&out.stderr));
    let left: Vec<String> = std::fs::read_dir(sb.path("cache")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).filter(|n| n.ends_with(".json")).collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(code(&run(cmd(&sb, &["get-token", "-p", "dev"]))), 3);
}

#[test]
fn the_native_protocol_uses_the_signed_in_account() {
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("dev", device_profile())]);
    login_dev(&mock, &sb);
    let out = run_with_stdin(sb.cmd(), r#"{"resource":"https://vault.azure.net","profile":"dev"}"#);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["account"], "user@contoso.test");
    assert_eq!(v["from_cache"], false);
    assert_eq!(jwt_claims(v["access_token"].as_str().unwrap()).unwrap()["aud"], "https://vault.azure.net");
    assert_eq!((mock.grant_count("refresh_token"), mock.grant_count(DEVICE_GRANT)), (1, 1));
}

#[test]
fn an_auto_profile_after_login_is_served_by_the_refresh_token() {
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("me", "tenant = \"organizations\"")]);
    // Nothing else applies here (no env credential, no managed identity, no az): the chain
    // ends at the person, who is not signed in and cannot be asked.
    let out = run(cmd(&sb, &["get-token", "-p", "me", "-r", "graph"]));
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("entra-token login -p me"), "{}", text(&out.stderr));
    mock.approve_device_codes(0);
    ok(run(cmd(&sb, &["login", "-p", "me"])));
    let out = ok(run(cmd(&sb, &["get-token", "-p", "me", "-r", "graph", "-o", "json"])));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["account"], "user@contoso.test");
    assert_eq!((mock.grant_count("refresh_token"), mock.grant_count(DEVICE_GRANT)), (1, 1));
}

const KUBECTL: &str = "/usr/bin/kubectl";
const AKS: &str = "6dae42f8-4368-4678-94ff-3960e28e3630";

#[cfg_attr(windows, ignore = "needs the real kubectl, a Linux binary here")]
#[test]
fn real_kubectl_gets_the_signed_in_persons_token_silently() {
    use std::sync::{Arc, Mutex};
    use crate::support::TestCa;
    use crate::support::http::{Reply, Request, Server};
    if !std::path::Path::new(KUBECTL).exists() {
        support::skip::missing_tool(KUBECTL, "the real kubectl check");
        return;
    }
    let mock = Arc::new(MockAuthority::start());
    let ca = TestCa::new();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let api = {
        let (seen, mock) = (Arc::clone(&seen), Arc::clone(&mock));
        Server::start(
            Arc::new(move |req: Request| {
                let token = req.header("authorization").and_then(|h| h.strip_prefix("Bearer ")).unwrap_or("").to_string();
                seen.lock().unwrap().push(token.clone());
                if token.is_empty() || !mock.issued_access_tokens().contains(&token) {
                    return Reply::new(401, "application/json", r#"{"kind":"Status","apiVersion":"v1","status":"Failure","code":401}"#);
                }
                Reply::new(200, "application/json", r#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[]}"#)
            }),
            Some(ca.server_config()),
        )
    };
    let sb = sandbox(&mock, &[("dev", device_profile())]);
    let kubeconfig = sb.write_file(
        "kube/config",
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: aks\n  cluster:\n    server: {}\n    certificate-authority: {}\ncontexts:\n- name: aks\n  context:\n    cluster: aks\n    user: me\ncurrent-context: aks\nusers:\n- name: me\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {:?}\n      args: [kubectl, -p, dev]\n      interactiveMode: Never\n",
            api.url(),
            ca.write_pem(&sb.path("ca")).display(),
            env!("CARGO_BIN_EXE_entra-token"),
        ),
    );
    let kubectl = || {
        let mut c = sb.tool(KUBECTL);
        c.env("KUBECONFIG", &kubeconfig).args(["get", "--raw", "/api/v1/namespaces/default/pods"]);
        c
    };
    // Not signed in: kubectl shows our one line with the command, at once.
    let start = Instant::now();
    let out = run(kubectl());
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("entra-token login -p dev"), "{}", text(&out.stderr));
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(mock.grant_count(DEVICE_GRANT), 0);

    login_dev(&mock, &sb);
    let out = run(kubectl());
    assert!(out.status.success(), "kubectl failed: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("PodList"));
    let token = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(jwt_claims(&token).unwrap()["aud"], AKS);
    assert_eq!(mock.grant_count("refresh_token"), 1, "the AKS token comes from the refresh token");
    let out = run(kubectl());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mock.grant_count("refresh_token"), 1, "the second kubectl call is served from the cache");
    assert_eq!(mock.grant_count(DEVICE_GRANT), 1);
}

#[test]
fn parallel_calls_for_many_resources_share_one_rotating_refresh_token_safely() {
    let mock = MockAuthority::start();
    mock.set_rotate_refresh_tokens(true);
    mock.set_delay(Duration::from_millis(100));
    let sb = sandbox(&mock, &[("dev", device_profile())]);
    login_dev(&mock, &sb);
    let resources = ["graph", "storage", "keyvault", "sql", "powerbi", "fabric"];
    let children: Vec<_> = resources
        .iter()
        .map(|r| cmd(&sb, &["get-token", "-p", "dev", "-r", r]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap())
        .collect();
    for (child, r) in children.into_iter().zip(resources) {
        let out = child.wait_with_output().unwrap();
        // Without the account lock, two processes would spend the same refresh token and
        // the loser would find it dead (the mock kills a rotated one, AADSTS70008).
        assert!(out.status.success(), "{r}: {}", text(&out.stderr));
    }
    assert_eq!(mock.grant_count("refresh_token"), resources.len());
    assert_eq!(stored_refresh_tokens(&sb), mock.live_refresh_tokens());
}

#[cfg_attr(windows, ignore = "the $BROWSER stand-in is a sh script running curl")]
#[test]
fn signing_in_as_another_account_never_serves_the_first_accounts_tokens() {
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("web", "flow = \"interactive\"\ntenant = \"organizations\"")]);
    let Some(browser) = browser_script(&sb) else { return };
    ok(run(cmd(&sb, &["login", "-p", "web", "--login-hint", "ann@contoso.test", "-r", "graph"]).e("BROWSER", &browser)));
    let first = text(&ok(run(cmd(&sb, &["get-token", "-p", "web", "-r", "storage"]))).stdout);
    assert_eq!(jwt_claims(first.trim()).unwrap()["upn"], "ann@contoso.test");
    ok(run(cmd(&sb, &["login", "-p", "web", "--login-hint", "bob@contoso.test", "-r", "graph"]).e("BROWSER", &browser)));
    let out = ok(run(cmd(&sb, &["get-token", "-p", "web", "-r", "storage", "-o", "json"])));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["account"], "bob@contoso.test", "ann's cached storage token was served after bob signed in");
    let s = text(&ok(run(cmd(&sb, &["status"]))).stdout);
    assert!(s.contains("signed in as bob@contoso.test") && !s.contains("ann@"), "{s}");
}

#[test]
fn interactive_false_never_prompts_but_login_still_works() {
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("dev", "flow = \"device-code\"\ntenant = \"organizations\"\ninteractive = false")]);
    let out = run(cmd(&sb, &["get-token", "-p", "dev"]));
    assert_eq!(code(&out), 3);
    assert!(text(&out.stderr).contains("interactive = false") && text(&out.stderr).contains("entra-token login -p dev"), "{}", text(&out.stderr));
    assert_eq!(mock.requests().len(), 0);
    login_dev(&mock, &sb);
    ok(run(cmd(&sb, &["get-token", "-p", "dev", "-r", "graph"])));
}

#[test]
fn two_auto_profiles_never_share_one_persons_cached_token() {
    let mock = MockAuthority::start();
    mock.add_tenant(CONTOSO);
    mock.add_user("alice@contoso.test", "alice pw");
    mock.add_user("bob@contoso.test", "bob pw");
    // Same authority, tenant and (default) client, no flow: the chain ends at each
    // profile's signed-in person, and only that person differs.
    let tenant = format!("tenant = \"{CONTOSO}\"");
    let sb = sandbox(&mock, &[("alice", &tenant), ("bob", &tenant)]);
    // One (absent) IMDS for every call, as on a real host, so the calls share auto's view.
    let imds = support::refused_url();
    for (profile, user, pw) in [("alice", "alice@contoso.test", "alice pw"), ("bob", "bob@contoso.test", "bob pw")] {
        ok(run(cmd(&sb, &["login", "-p", profile, "--flow", "password"]).e("AZURE_USERNAME", user).e("AZURE_PASSWORD", pw)));
    }
    for (profile, who) in [("alice", "alice@contoso.test"), ("bob", "bob@contoso.test"), ("alice", "alice@contoso.test")] {
        let out = ok(run(cmd(&sb, &["get-token", "-p", profile, "-r", "graph", "-o", "json"]).e("AZURE_POD_IDENTITY_AUTHORITY_HOST", &imds)));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["account"], who, "profile {profile}");
    }
}

/// A tenant refusing a sign-in reused from another tenant (MFA): with a person at the
/// terminal the browser opens at that tenant with `login_hint` set to the refused account,
/// so the person signs in as the same account, not whoever the browser defaults to.
/// Driven through a real pseudo-terminal (util-linux `script`) and the `$BROWSER` stand-in.
#[cfg_attr(windows, ignore = "the $BROWSER stand-in is a sh script running curl")]
#[test]
fn the_browser_fallback_after_a_tenant_refusal_pre_fills_the_refused_account() {
    if Command::new("script").arg("--version").output().is_err() {
        support::skip::missing_tool("script (util-linux)", "the terminal check");
        return;
    }
    const FABRIKAM: &str = "fabrikam.test";
    let mock = MockAuthority::start();
    mock.add_tenant(CONTOSO);
    mock.add_tenant(FABRIKAM);
    let sb = sandbox(&mock, &[("web", &format!("flow = \"interactive\"\ntenant = \"{CONTOSO}\""))]);
    let Some(browser) = browser_script(&sb) else { return };
    // Ann signs in at contoso (the mock's default account would be someone else).
    ok(run(cmd(&sb, &["login", "-p", "web", "--login-hint", "ann@contoso.test"]).e("BROWSER", &browser)));
    assert_ne!(support::DEFAULT_USER, "ann@contoso.test");
    mock.refuse_refresh_tokens_in(FABRIKAM, 50076);

    let line = [env!("CARGO_BIN_EXE_entra-token"), "get-token", "-p", "web", "--tenant", FABRIKAM].map(|a| format!("'{a}'")).join(" ");
    let mut script = sb.tool("script");
    script.env("BROWSER", &browser).args(["-qfec", &line, "/dev/null"]);
    let out = run(script);
    let screen = text(&out.stdout);
    assert_eq!(code(&out), 0, "{screen}");
    assert!(screen.contains("AADSTS50076") && screen.contains("signing in"), "{screen}");
    let authorizes: Vec<_> = mock.requests().into_iter().filter(|r| r.path.ends_with("/authorize")).collect();
    assert_eq!(authorizes.len(), 2, "one sign-in at each tenant");
    let fallback = authorizes.last().unwrap();
    assert_eq!(fallback.path, format!("/{FABRIKAM}/oauth2/v2.0/authorize"));
    assert_eq!(fallback.query_get("login_hint"), Some("ann@contoso.test"), "the refused account is pre-filled");
    // And the token is ann's, at fabrikam.
    let token = screen.lines().map(str::trim).find(|l| l.starts_with("ey")).expect("the token on the terminal");
    let c = jwt_claims(token).unwrap();
    assert_eq!(c["upn"], "ann@contoso.test");
    assert_eq!(c["tid"], mock.tenant_id(FABRIKAM));
}

/// The person at the browser (or the device code page) may pick any account: one other
/// than the profile's login_hint or its stored sign-in is refused (exit 3, both named,
/// the switching command given) and nothing of it is kept; `login --login-hint` (alias
/// `--account`) switches deliberately.
#[test]
fn a_sign_in_that_comes_back_as_another_account_is_refused() {
    let mock = MockAuthority::start();
    mock.add_user("ann@contoso.test", "pw-ann");
    mock.add_user("bob@contoso.test", "pw-bob");
    let sb = sandbox(&mock, &[("dev", device_profile()), ("hinted", "flow = \"device-code\"\ntenant = \"organizations\"\nlogin_hint = \"ann@contoso.test\"")]);
    // A stored sign-in as ann; then bob approves the device code.
    login_dev(&mock, &sb);
    let stored = stored_refresh_tokens(&sb);
    mock.set_person_at_browser(Some("bob@contoso.test"));
    // (A sign-in a token request starts goes through the same check: flows::user::sign_in.)
    mock.approve_device_codes(0);
    let out = run(cmd(&sb, &["login", "-p", "dev"]));
    let err = text(&out.stderr);
    assert_eq!(code(&out), 3, "{err}");
    assert!(err.contains("came back as bob@contoso.test") && err.contains("ann@contoso.test") && err.contains("--login-hint bob@contoso.test"), "{err}");
    assert!(out.stdout.is_empty());
    assert_eq!(stored_refresh_tokens(&sb), stored, "bob's sign-in was kept");
    let s = text(&ok(run(cmd(&sb, &["status"]))).stdout);
    assert!(s.contains("ann@contoso.test") && !s.contains("bob@"), "{s}");
    // A login_hint in the profile is checked the same way, with no stored sign-in.
    mock.approve_device_codes(0);
    let out = run(cmd(&sb, &["login", "-p", "hinted"]));
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("login_hint"), "{}", text(&out.stderr));
    // Deliberately: `login --account bob` makes the profile bob's.
    mock.approve_device_codes(0);
    let out = ok(run(cmd(&sb, &["login", "-p", "dev", "--account", "bob@contoso.test"])));
    assert!(text(&out.stderr).contains("signed in as bob@contoso.test"), "{}", text(&out.stderr));
    // The browser: ann hinted, bob picked.
    let web = sandbox(&mock, &[("web", "flow = \"interactive\"\ntenant = \"organizations\"\nlogin_hint = \"ann@contoso.test\"")]);
    let Some(browser) = browser_script(&web) else { return };
    let out = run(cmd(&web, &["login", "-p", "web"]).e("BROWSER", &browser));
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("came back as bob@contoso.test"), "{}", text(&out.stderr));
    assert!(stored_refresh_tokens(&web).is_empty());
}

#[cfg(unix)]
#[test]
fn a_claims_challenge_that_needs_a_person_names_the_login_that_carries_it() {
    use base64::Engine;
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("dev", device_profile())]);
    login_dev(&mock, &sb);
    ok(run(cmd(&sb, &["get-token", "-p", "dev", "-r", "graph"])));
    // The challenge demands MFA: the refresh token cannot answer it, a sign-in must.
    mock.require_sign_in_for_claims(true);
    // Text a shell would act on, inside the challenge.
    let claims = r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}},"x":"it's $(touch pwned) `touch pwned2` \"q\""}"#;
    let b64 = base64::engine::general_purpose::STANDARD.encode(claims);
    let expected = format!("entra-token login -p dev --claims {b64}");
    let fronts: Vec<(&str, Command, Option<String>)> = vec![
        ("get-token --claims JSON", cmd(&sb, &["get-token", "-p", "dev", "-r", "graph", "--claims", claims]), None),
        ("get-token --claims base64", cmd(&sb, &["get-token", "-p", "dev", "-r", "graph", "--claims", &b64]), None),
        ("native claims", sb.cmd(), Some(serde_json::json!({"profile": "dev", "resource": "graph", "claims": claims}).to_string())),
        ("azd --claims", {
            let mut c = cmd(&sb, &["azd", "auth", "token", "--output", "json", "--scope", "https://graph.microsoft.com/.default", "--claims", &b64]);
            c.env("ENTRA_TOKEN_PROFILE", "dev");
            c
        }, None),
    ];
    for (name, c, stdin) in fronts {
        let before = mock.grant_count("refresh_token");
        let out = run_with_stdin(c, stdin.as_deref().unwrap_or(""));
        let err = text(&out.stderr);
        assert_ne!(code(&out), 0, "{name}: {err}");
        assert_eq!(mock.grant_count("refresh_token"), before + 1, "{name}: the cached token was served despite the challenge");
        let said = format!("{err}{}", text(&out.stdout));
        assert!(said.contains(&expected), "{name}: the login command does not carry the claims: {said}");
    }
    // The command as printed, run by a shell: it signs in with the challenge, and nothing in it ran.
    sb.link("entra-token");
    mock.approve_device_codes(0);
    let mut sh = sb.tool_with_links("sh");
    sh.current_dir(sb.path("home")).args(["-c", &expected]);
    ok(run(sh));
    assert!(!sb.path("home/pwned").exists() && !sb.path("home/pwned2").exists());
    let sent: Vec<_> = mock.requests().into_iter().filter(|r| r.form_get("claims") == Some(claims)).map(|r| r.path).collect();
    assert!(sent.iter().any(|p| p.ends_with("/devicecode")), "the sign-in did not carry the claims: {sent:?}");
    // A challenge that is not one is bad input (exit 1), not a request.
    let before = mock.token_requests();
    let out = run(cmd(&sb, &["get-token", "-p", "dev", "-r", "graph", "--claims", "not-json"]));
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    assert_eq!(mock.token_requests(), before);
}
