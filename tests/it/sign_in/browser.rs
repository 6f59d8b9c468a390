//! Browser sign-ins (PKCE, a confidential web app, another account) through the $BROWSER stand-in.

use super::*;

#[test]
fn browser_sign_in_with_pkce_through_a_browser_stand_in() {
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("web", "flow = \"interactive\"\ntenant = \"organizations\"\nlogin_hint = \"ann@contoso.test\"")]);
    let Some(browser) = browser_script(&sb) else { return };
    let opened = sb.path("opened-url");
    let out = ok(run(sb.cmd_with(&["login", "-p", "web"]).e("BROWSER", &browser).e(BROWSER_LOG, &opened)));
    let err = text(&out.stderr);
    assert!(err.contains("signed in as ann@contoso.test"), "{err}");
    assert!(out.stdout.is_empty());
    let auth = mock.requests().into_iter().find(|r| r.path.ends_with("/authorize")).unwrap();
    // The browser got the whole URL as one argument: no shell cut it at an `&` or ate a `%`.
    let url = std::fs::read_to_string(&opened).expect("the browser stand-in was not started");
    let (base, query) = url.split_once('?').unwrap_or_else(|| panic!("{url}"));
    assert_eq!(base, format!("{}{}", mock.url(), auth.path));
    let got: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    assert_eq!(got, auth.query, "the URL the browser got is not the one that reached the authority");
    assert!(query.matches('&').count() >= 7 && query.contains('%'), "{url}");
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
    ok(run(sb.cmd_with(&["get-token", "-p", "web", "-r", "graph"])));
    assert_eq!((mock.grant_count("authorization_code"), mock.grant_count("refresh_token")), (1, 1));
}

#[test]
fn authorization_code_with_a_client_secret_serves_a_confidential_app() {
    let mock = MockAuthority::start();
    mock.add_tenant(CONTOSO);
    let app = "33333333-3333-3333-3333-333333333333";
    mock.add_app(app, Some("web~secret"));
    let sb = sandbox(&mock, &[("webapp", &format!("flow = \"authorization-code\"\ntenant = \"{CONTOSO}\"\nclient_id = \"{app}\"\nclient_secret_env = \"WEBAPP_SECRET\""))]);
    let Some(browser) = browser_script(&sb) else { return };
    ok(run(sb.cmd_with(&["login", "-p", "webapp"]).e("BROWSER", &browser).e("WEBAPP_SECRET", "web~secret")));
    let redeem = token_requests_with(&mock, "code").pop().unwrap();
    assert_eq!(redeem.form_get("client_secret"), Some("web~secret"));
    // The refresh grant of a confidential client carries the secret too.
    ok(run(sb.cmd_with(&["get-token", "-p", "webapp", "-r", "graph"]).e("WEBAPP_SECRET", "web~secret")));
    let refresh = token_requests_with(&mock, "refresh_token").pop().unwrap();
    assert_eq!(refresh.form_get("client_secret"), Some("web~secret"));
}

#[test]
fn signing_in_as_another_account_never_serves_the_first_accounts_tokens() {
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("web", "flow = \"interactive\"\ntenant = \"organizations\"")]);
    let Some(browser) = browser_script(&sb) else { return };
    ok(run(sb.cmd_with(&["login", "-p", "web", "--login-hint", "ann@contoso.test", "-r", "graph"]).e("BROWSER", &browser)));
    let first = text(&ok(run(sb.cmd_with(&["get-token", "-p", "web", "-r", "storage"]))).stdout);
    assert_eq!(jwt_claims(first.trim()).unwrap()["upn"], "ann@contoso.test");
    ok(run(sb.cmd_with(&["login", "-p", "web", "--login-hint", "bob@contoso.test", "-r", "graph"]).e("BROWSER", &browser)));
    let out = ok(run(sb.cmd_with(&["get-token", "-p", "web", "-r", "storage", "-o", "json"])));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["account"], "bob@contoso.test", "ann's cached storage token was served after bob signed in");
    let s = text(&ok(run(sb.cmd_with(&["status"]))).stdout);
    assert!(s.contains("signed in as bob@contoso.test") && !s.contains("ann@"), "{s}");
}

/// A tenant refusing a sign-in reused from another tenant (MFA): with a person at the
/// terminal the browser opens at that tenant with `login_hint` set to the refused account,
/// so the person signs in as the same account, not whoever the browser defaults to.
/// Driven through a real pseudo-terminal (util-linux `script`) and the `$BROWSER` stand-in.
#[cfg_attr(windows, ignore = "drives a pseudo-terminal through util-linux `script`")]
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
    ok(run(sb.cmd_with(&["login", "-p", "web", "--login-hint", "ann@contoso.test"]).e("BROWSER", &browser)));
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
    let out = run(sb.cmd_with(&["login", "-p", "dev"]));
    let err = text(&out.stderr);
    assert_eq!(code(&out), 3, "{err}");
    assert!(err.contains("came back as bob@contoso.test") && err.contains("ann@contoso.test") && err.contains("--login-hint bob@contoso.test"), "{err}");
    assert!(out.stdout.is_empty());
    assert_eq!(stored_refresh_tokens(&sb), stored, "bob's sign-in was kept");
    let s = text(&ok(run(sb.cmd_with(&["status"]))).stdout);
    assert!(s.contains("ann@contoso.test") && !s.contains("bob@"), "{s}");
    // A login_hint in the profile is checked the same way, with no stored sign-in.
    mock.approve_device_codes(0);
    let out = run(sb.cmd_with(&["login", "-p", "hinted"]));
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("login_hint"), "{}", text(&out.stderr));
    // Deliberately: `login --account bob` makes the profile bob's.
    mock.approve_device_codes(0);
    let out = ok(run(sb.cmd_with(&["login", "-p", "dev", "--account", "bob@contoso.test"])));
    assert!(text(&out.stderr).contains("signed in as bob@contoso.test"), "{}", text(&out.stderr));
    // The browser: ann hinted, bob picked.
    let web = sandbox(&mock, &[("web", "flow = \"interactive\"\ntenant = \"organizations\"\nlogin_hint = \"ann@contoso.test\"")]);
    let Some(browser) = browser_script(&web) else { return };
    let out = run(web.cmd_with(&["login", "-p", "web"]).e("BROWSER", &browser));
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("came back as bob@contoso.test"), "{}", text(&out.stderr));
    assert!(stored_refresh_tokens(&web).is_empty());
}
