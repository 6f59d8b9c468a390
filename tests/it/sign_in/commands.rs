//! The commands around a sign-in: claims challenges, refresh, inspect, status, logout, the native protocol.

use super::*;

#[test]
fn a_claims_challenge_bypasses_the_cache_and_reaches_entra() {
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("dev", device_profile())]);
    login_dev(&mock, &sb);
    ok(run(sb.cmd_with(&["get-token", "-p", "dev", "-r", "graph"])));
    let before = mock.grant_count("refresh_token");
    let claims = r#"{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}"#;
    ok(run(sb.cmd_with(&["get-token", "-p", "dev", "-r", "graph", "--claims", claims])));
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
    let out = run(sb.cmd_with(&["refresh", "-p", "dev"]));
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("entra-token login -p dev"));
    login_dev(&mock, &sb);
    let out = ok(run(sb.cmd_with(&["refresh", "-p", "dev", "-r", "graph"])));
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).contains("new token for https://graph.microsoft.com") && text(&out.stderr).contains("expires in"), "{}", text(&out.stderr));
    ok(run(sb.cmd_with(&["refresh", "-p", "dev", "-r", "graph"])));
    assert_eq!(mock.grant_count("refresh_token"), 2, "refresh must not serve the cached token");
    assert_eq!(mock.grant_count(DEVICE_GRANT), 1);
}

#[test]
fn inspect_decodes_from_stdin_the_cache_or_an_argument() {
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("dev", device_profile())]);
    login_dev(&mock, &sb);
    let token = text(&ok(run(sb.cmd_with(&["get-token", "-p", "dev", "-r", "graph"]))).stdout).trim().to_string();
    let claims = jwt_claims(&token).unwrap();

    let out = ok(run_with_stdin(sb.cmd_with(&["inspect", "-"]), &token));
    let shown = text(&out.stdout);
    for want in ["audience", "https://graph.microsoft.com", claims["tid"].as_str().unwrap(), "user@contoso.test", "expires in", "not verified"] {
        assert!(shown.contains(want), "{want} missing:\n{shown}");
    }
    assert!(!shown.contains(&token));
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));

    let before = mock.token_requests();
    let out = ok(run(sb.cmd_with(&["inspect", "-p", "dev", "-r", "graph", "-o", "json"])));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["claims"]["aud"], "https://graph.microsoft.com");
    assert_eq!(v["signature_verified"], false);
    assert!(v["expires_in"].as_i64().unwrap() > 3000);
    assert_eq!(mock.token_requests(), before, "inspect of a cached token went to the network");

    let out = ok(run(sb.cmd_with(&["inspect", &token])));
    assert!(text(&out.stderr).contains("visible to other users"), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("audience"));

    let out = run_with_stdin(sb.cmd_with(&["inspect", "-"]), "not-a-token");
    assert_eq!(code(&out), 1);
    assert!(text(&out.stderr).contains("not a JWT"));
}

#[test]
fn status_lists_accounts_and_tokens_never_the_tokens_themselves() {
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("dev", device_profile()), ("other", "flow = \"device-code\"")]);
    login_dev(&mock, &sb);
    let token = text(&ok(run(sb.cmd_with(&["get-token", "-p", "dev", "-r", "graph"]))).stdout).trim().to_string();
    let out = ok(run(sb.cmd_with(&["status"])));
    let s = text(&out.stdout);
    assert!(s.contains("dev") && s.contains("signed in as user@contoso.test"), "{s}");
    assert!(s.contains("https://graph.microsoft.com") && s.contains("https://management.azure.com/") && s.contains("expires in"), "{s}");
    assert!(s.contains("other") && s.contains("not signed in"), "{s}");
    assert!(s.contains("default"), "{s}");
    assert!(!s.contains(&token));
    for rt in mock.live_refresh_tokens() {
        assert!(!s.contains(&rt));
    }
    let listed = ok(run(sb.cmd_with(&["cache", "list"])));
    // The same report (times may have ticked over a minute between the two runs).
    let strip = |t: &str| t.lines().map(|l| l.split("expires in").next().unwrap_or(l).to_string()).collect::<Vec<_>>();
    assert_eq!(strip(&text(&listed.stdout)), strip(&s));
    let out = ok(run(sb.cmd_with(&["status", "-o", "json"])));
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
    ok(run(sb.cmd_with(&["get-token", "-p", "dev", "-r", "graph"])));
    mock.approve_device_codes(0);
    ok(run(sb.cmd_with(&["login", "-p", "dev2"])));
    let out = ok(run(sb.cmd_with(&["logout", "-p", "dev"])));
    let err = text(&out.stderr);
    assert!(err.contains("signed out user@contoso.test from profile 'dev'") && err.contains("2 access token(s)"), "{err}");
    // dev2 signed in as the same account, so the account's refresh token stays for it.
    assert!(err.contains("refresh token stays") && err.contains("dev2"), "{err}");
    let out = run(sb.cmd_with(&["get-token", "-p", "dev", "-r", "graph"]));
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    ok(run(sb.cmd_with(&["get-token", "-p", "dev2", "-r", "graph"])));
    let out = ok(run(sb.cmd_with(&["logout", "-p", "dev2"])));
    assert!(text(&out.stderr).contains("removed its refresh token"), "{}", text(&out.stderr));
    assert!(stored_refresh_tokens(&sb).is_empty());
    login_dev(&mock, &sb);
    let out = ok(run(sb.cmd_with(&["logout", "--all"])));
    assert!(text(&out.stderr).contains("removed 1 refresh token(s)") && text(&out.stderr).contains("user@contoso.test (dev)"), "{}", text(&out.stderr));
    // Only the sign-out generation stays (a random value, no account or token): a fetch
    // under way compares it before it keeps what it fetched.
    let left: Vec<String> = std::fs::read_dir(sb.path("cache")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).filter(|n| n.ends_with(".json") && n != "signouts.json").collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(code(&run(sb.cmd_with(&["get-token", "-p", "dev"]))), 3);
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

#[cfg(unix)]
#[test]
fn a_claims_challenge_that_needs_a_person_names_the_login_that_carries_it() {
    use base64::Engine;
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("dev", device_profile())]);
    login_dev(&mock, &sb);
    ok(run(sb.cmd_with(&["get-token", "-p", "dev", "-r", "graph"])));
    // The challenge demands MFA: the refresh token cannot answer it, a sign-in must.
    mock.require_sign_in_for_claims(true);
    // Text a shell would act on, inside the challenge.
    let claims = r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}},"x":"it's $(touch pwned) `touch pwned2` \"q\""}"#;
    let b64 = base64::engine::general_purpose::STANDARD.encode(claims);
    let expected = format!("entra-token login -p dev --claims {b64}");
    let fronts: Vec<(&str, Command, Option<String>)> = vec![
        ("get-token --claims JSON", sb.cmd_with(&["get-token", "-p", "dev", "-r", "graph", "--claims", claims]), None),
        ("get-token --claims base64", sb.cmd_with(&["get-token", "-p", "dev", "-r", "graph", "--claims", &b64]), None),
        ("native claims", sb.cmd(), Some(serde_json::json!({"profile": "dev", "resource": "graph", "claims": claims}).to_string())),
        ("azd --claims", {
            let mut c = sb.cmd_with(&["azd", "auth", "token", "--output", "json", "--scope", "https://graph.microsoft.com/.default", "--claims", &b64]);
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
    let out = run(sb.cmd_with(&["get-token", "-p", "dev", "-r", "graph", "--claims", "not-json"]));
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    assert_eq!(mock.token_requests(), before);
}
