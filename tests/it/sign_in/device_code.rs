//! Device code sign-ins, refresh tokens serving later calls, and failing fast when nobody can answer.

use super::*;

#[test]
fn device_code_login_shows_the_code_on_stderr_and_polls_until_approved() {
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("dev", device_profile())]);
    mock.approve_device_codes(2);
    let out = ok(run(sb.cmd_with(&["login", "-p", "dev"])));
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
    ok(run(sb.cmd_with(&["login", "-p", "dev"])));
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
    let out = run(sb.cmd_with(&["login", "-p", "dev"]));
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("declined"), "{}", text(&out.stderr));
    assert_eq!(mock.grant_count(DEVICE_GRANT), 1);

    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("dev", device_profile())]);
    mock.approve_device_codes(1000);
    mock.set_device_code_expiry(2);
    let start = Instant::now();
    let out = run(sb.cmd_with(&["login", "-p", "dev", "--timeout", "30s"]));
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
    let out = ok(run(sb.cmd_with(&["get-token", "-p", "dev"])));
    assert_eq!(mock.token_requests(), before);
    let arm = text(&out.stdout).trim().to_string();
    assert_eq!(jwt_claims(&arm).unwrap()["aud"], "https://management.azure.com/");

    for (i, resource) in ["graph", "storage", "powerbi"].iter().enumerate() {
        let out = ok(run(sb.cmd_with(&["get-token", "-p", "dev", "-r", resource, "-o", "json"])));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["account"], "user@contoso.test");
        assert_eq!(mock.grant_count("refresh_token"), i + 1);
    }
    // And again from the cache.
    ok(run(sb.cmd_with(&["get-token", "-p", "dev", "-r", "graph"])));
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
        ok(run(sb.cmd_with(&["get-token", "-p", "dev", "-r", resource])));
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
    let out = run(sb.cmd_with(&["get-token", "-p", "dev", "-r", "graph"]));
    let err = text(&out.stderr);
    assert_eq!(code(&out), 3, "{err}");
    assert!(err.contains("AADSTS50173") && err.contains("`entra-token login -p dev`"), "{err}");
    assert!(out.stdout.is_empty());
    assert!(start.elapsed() < Duration::from_secs(10));
    // No sign-in was started for a person who cannot see it.
    assert_eq!(mock.requests().iter().filter(|r| r.path.ends_with("/devicecode")).count(), 1);
    assert!(stored_refresh_tokens(&sb).is_empty(), "the dead refresh token was kept");

    login_dev(&mock, &sb);
    ok(run(sb.cmd_with(&["get-token", "-p", "dev", "-r", "graph"])));
}

#[test]
fn without_a_terminal_a_needed_sign_in_exits_3_at_once() {
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("dev", device_profile()), ("web", "flow = \"interactive\"")]);
    for (profile, login) in [("dev", "entra-token login -p dev"), ("web", "entra-token login -p web")] {
        let start = Instant::now();
        let out = run(sb.cmd_with(&["get-token", "-p", profile, "--timeout", "60s"]));
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
    let out = run(sb.cmd_with(&["get-token"]).e("AZURE_AUTHORITY_HOST", mock.url()));
    assert_eq!(code(&out), 3);
    assert!(text(&out.stderr).contains("`entra-token login`"), "{}", text(&out.stderr));
}

#[test]
fn the_built_in_default_signs_in_with_the_azure_cli_client_in_organizations() {
    let mock = MockAuthority::start();
    let sb = Sandbox::new();
    mock.approve_device_codes(0);
    let out = ok(run(sb.cmd_with(&["login"]).e("AZURE_AUTHORITY_HOST", mock.url())));
    assert!(text(&out.stderr).contains("profile 'default'"), "{}", text(&out.stderr));
    let dc = mock.requests().into_iter().find(|r| r.path.ends_with("/devicecode")).expect("no display: device code");
    assert_eq!(dc.path, "/organizations/oauth2/v2.0/devicecode");
    assert_eq!(dc.form_get("client_id"), Some("04b07795-8ddb-461a-bbee-02f9e1bf7b46"));
    let out = ok(run(sb.cmd_with(&["get-token", "-r", "graph"]).e("AZURE_AUTHORITY_HOST", mock.url())));
    assert_eq!(jwt_claims(text(&out.stdout).trim()).unwrap()["aud"], "https://graph.microsoft.com");
    assert_eq!(mock.grant_count("refresh_token"), 1);
}

/// `login` for an auto profile where no person would see a browser (no display on Linux;
/// on Windows no console, as under a service, a scheduled task or a pipe-only parent)
/// signs in by device code and never starts a browser to wait for.
#[test]
fn login_where_no_browser_can_be_seen_uses_a_device_code_and_starts_no_browser() {
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("me", "tenant = \"organizations\"")]);
    let Some(browser) = browser_script(&sb) else { return };
    let opened = sb.path("opened-url");
    mock.approve_device_codes(0);
    let start = Instant::now();
    let out = ok(run(sb.cmd_with(&["login", "-p", "me"]).e("BROWSER", &browser).e(BROWSER_LOG, &opened)));
    let err = text(&out.stderr);
    assert!(err.contains("enter the code") && err.contains("signed in as user@contoso.test"), "{err}");
    assert!(!opened.exists(), "a browser was started for nobody");
    assert_eq!(mock.requests().iter().filter(|r| r.path.ends_with("/authorize")).count(), 0);
    assert_eq!(mock.grant_count(DEVICE_GRANT), 1);
    assert!(start.elapsed() < Duration::from_secs(30), "{:?}", start.elapsed());
}
