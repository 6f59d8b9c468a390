//! One sign-in, every tenant: a person signed in at one tenant gets tokens for another
//! through the same refresh token (as MSAL and az do), the rotated token is kept under
//! both tenants, a tenant's refusal (MFA, not a member, consent) ends in the login command
//! without harming the token that works elsewhere, several people are never guessed
//! between, and az's `--tenant` takes the same path. All against the mock authority.

use crate::support;

use serde_json::Value;
use std::process::{Command, Output};
use crate::support::{MockAuthority, Sandbox, code, jwt_claims, ok, run, text};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const A: &str = "contoso.test";
const B: &str = "fabrikam.test";
const C: &str = "northwind.test";

/// A mock with tenants A, B and C, and a sandbox with these profiles aimed at it.
fn setup(profiles: &[(&str, &str)]) -> (MockAuthority, Sandbox) {
    let mock = MockAuthority::start();
    for t in [A, B, C] {
        mock.add_tenant(t);
    }
    // On Windows the refresh tokens go to files (DPAPI-sealed), as in sign_in.rs.
    let sb = crate::sign_in::sandbox(&mock, profiles);
    (mock, sb)
}

/// `cmd` with the password variable the password profiles read.
fn cmd_pw(sb: &Sandbox, args: &[&str], pw: &str) -> Command {
    let mut c = sb.cmd_with(args);
    c.env("PW", pw);
    c
}

/// `login -p NAME` by device code, approved at the first poll.
fn login(mock: &MockAuthority, sb: &Sandbox, name: &str) {
    mock.approve_device_codes(0);
    ok(run(sb.cmd_with(&["login", "-p", name])));
}

/// The access token's claims from a `get-token` answer on stdout.
fn claims(out: &Output) -> Value {
    jwt_claims(text(&out.stdout).trim()).expect("an access token on stdout")
}

/// Paths of the refresh-token grants the mock saw, in order.
fn refresh_paths(mock: &MockAuthority) -> Vec<String> {
    mock.requests().into_iter().filter(|r| r.is_token_request() && r.form_get("grant_type") == Some("refresh_token")).map(|r| r.path).collect()
}

/// The refresh tokens on disk, by the tenant their key names.
fn stored(sb: &Sandbox) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(sb.path("cache")) else {
        return out;
    };
    for e in dir {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        if name.starts_with("rt-") && name.ends_with(".json") {
            let v: Value = support::read_rt_entry(&e.path());
            out.push((v["key"]["tenant"].as_str().unwrap().to_string(), v["refresh_token"].as_str().unwrap().to_string()));
        }
    }
    out.sort();
    out
}

fn device_profile(tenant: &str) -> String {
    format!("flow = \"device-code\"\ntenant = \"{tenant}\"")
}

#[test]
fn one_sign_in_serves_another_tenant_and_keeps_the_rotated_token_for_both() {
    let (mock, sb) = setup(&[("dev", &device_profile(A))]);
    login(&mock, &sb, "dev");
    assert_eq!(mock.grant_count(DEVICE_GRANT), 1);

    // Tenant B: no sign-in, the account's refresh token redeemed at B's token endpoint.
    let out = ok(run(sb.cmd_with(&["get-token", "-p", "dev", "--tenant", B])));
    assert_eq!(claims(&out)["tid"], mock.tenant_id(B), "the token must be B's");
    assert_eq!(mock.grant_count(DEVICE_GRANT), 1, "no second sign-in");
    assert_eq!(refresh_paths(&mock), vec![format!("/{B}/oauth2/v2.0/token")]);
    // The mock rotates and kills the spent token: the new one is kept for B and for A.
    let live = mock.live_refresh_tokens();
    assert_eq!(live.len(), 1);
    assert_eq!(stored(&sb), vec![(A.to_string(), live[0].clone()), (B.to_string(), live[0].clone())]);

    // The cached path stays as it was: B's token is on disk, Entra is not asked.
    let before = mock.token_requests();
    ok(run(sb.cmd_with(&["get-token", "-p", "dev", "-t", B])));
    assert_eq!(mock.token_requests(), before);

    // A third call without the cached token: B's own stored refresh token, at B.
    let out = ok(run(sb.cmd_with(&["get-token", "-p", "dev", "--tenant", B, "--force"])));
    assert_eq!(claims(&out)["tid"], mock.tenant_id(B));
    assert_eq!(refresh_paths(&mock).len(), 2);
    assert_eq!(refresh_paths(&mock)[1], format!("/{B}/oauth2/v2.0/token"));

    // A's copy was the one B just spent (dead at the mock now): A's call finds it dead,
    // removes only that copy, and takes B's instead. Still no sign-in.
    let out = ok(run(sb.cmd_with(&["get-token", "-p", "dev", "--force"])));
    assert_eq!(claims(&out)["tid"], mock.tenant_id(A));
    assert_eq!(mock.grant_count(DEVICE_GRANT), 1);
    let live = mock.live_refresh_tokens();
    assert_eq!(stored(&sb), vec![(A.to_string(), live[0].clone()), (B.to_string(), live[0].clone())]);

    // Signing out the profile signs it out at every tenant.
    let out = ok(run(sb.cmd_with(&["logout", "-p", "dev"])));
    assert!(text(&out.stderr).contains("in 2 tenants"), "{}", text(&out.stderr));
    assert!(stored(&sb).is_empty(), "{:?}", stored(&sb));
    let out = run(sb.cmd_with(&["get-token", "-p", "dev", "--tenant", B, "--force"]));
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert_eq!(refresh_paths(&mock).len(), 4, "nothing left to redeem");
}

#[test]
fn a_tenant_refusal_ends_in_its_login_command_and_never_harms_the_token_that_works_elsewhere() {
    for (aadsts, words) in [(50076, "multi-factor"), (50020, "not a member of this tenant"), (65001, "consent")] {
        let (mock, sb) = setup(&[("dev", &device_profile(A))]);
        login(&mock, &sb, "dev");
        let before = stored(&sb);
        mock.refuse_refresh_tokens_in(B, aadsts);
        // stderr is a pipe here: nobody can answer a prompt, so exit 3 at once.
        let out = run(sb.cmd_with(&["get-token", "-p", "dev", "--tenant", B]));
        let err = text(&out.stderr);
        assert_eq!(code(&out), 3, "{aadsts}: {err}");
        assert!(out.stdout.is_empty());
        assert!(err.contains(&format!("entra-token login -p dev --tenant {B}")), "{aadsts}: {err}");
        assert!(err.contains(&format!("AADSTS{aadsts}")) && err.contains(words), "{aadsts}: {err}");
        assert!(err.contains("user@contoso.test") && err.contains(&format!("tenant {B}")), "{aadsts}: {err}");
        assert_eq!(mock.grant_count(DEVICE_GRANT), 1, "no sign-in was started");
        // A's refresh token is untouched (the mock did not rotate on a refusal) and works.
        assert_eq!(stored(&sb), before, "{aadsts}");
        let out = ok(run(sb.cmd_with(&["get-token", "-p", "dev", "--force"])));
        assert_eq!(claims(&out)["tid"], mock.tenant_id(A));
        assert_eq!(refresh_paths(&mock).last().unwrap(), &format!("/{A}/oauth2/v2.0/token"));
    }
}

#[test]
fn login_with_a_tenant_signs_in_there_and_later_tokens_use_it() {
    let (mock, sb) = setup(&[("dev", &device_profile(A))]);
    mock.approve_device_codes(0);
    let out = ok(run(sb.cmd_with(&["login", "-p", "dev", "--tenant", B])));
    assert!(text(&out.stderr).contains(&format!("tenant {}", mock.tenant_id(B))), "{}", text(&out.stderr));
    let dc = mock.requests().into_iter().find(|r| r.path.ends_with("/devicecode")).unwrap();
    assert_eq!(dc.path, format!("/{B}/oauth2/v2.0/devicecode"));
    let out = ok(run(sb.cmd_with(&["get-token", "-p", "dev", "--tenant", B, "-r", "https://graph.microsoft.com"])));
    assert_eq!(claims(&out)["tid"], mock.tenant_id(B));
    // And the profile's own tenant, from the same sign-in.
    let out = ok(run(sb.cmd_with(&["get-token", "-p", "dev"])));
    assert_eq!(claims(&out)["tid"], mock.tenant_id(A));
    assert_eq!(mock.grant_count(DEVICE_GRANT), 1);
    assert_eq!(refresh_paths(&mock), vec![format!("/{B}/oauth2/v2.0/token"), format!("/{A}/oauth2/v2.0/token")]);
}

#[test]
fn several_people_are_never_guessed_between() {
    let pw = |user: &str| format!("flow = \"password\"\ntenant = \"{A}\"\nusername = \"{user}\"\npassword_env = \"PW\"");
    let (mock, sb) = setup(&[
        ("ann", &pw("ann@contoso.test")),
        ("bob", &pw("bob@contoso.test")),
        ("other", &device_profile(B)),
        ("hinted", &format!("{}\nlogin_hint = \"BOB@contoso.test\"", device_profile(B))),
    ]);
    mock.add_user("ann@contoso.test", "pw-ann");
    mock.add_user("bob@contoso.test", "pw-bob");
    ok(run(cmd_pw(&sb, &["login", "-p", "ann"], "pw-ann")));
    ok(run(cmd_pw(&sb, &["login", "-p", "bob"], "pw-bob")));
    let refreshes = refresh_paths(&mock).len();

    // Two people signed in with the client, a profile that names neither: no guess.
    let out = run(sb.cmd_with(&["get-token", "-p", "other"]));
    let err = text(&out.stderr);
    assert_eq!(code(&out), 3, "{err}");
    assert!(err.contains("ann@contoso.test") && err.contains("bob@contoso.test") && err.contains("login_hint"), "{err}");
    assert!(err.contains("entra-token login -p other"), "{err}");
    assert_eq!(refresh_paths(&mock).len(), refreshes, "no refresh token was spent");
    assert_eq!(mock.grant_count(DEVICE_GRANT), 0);

    // The profile's login_hint picks one (case aside), at the profile's tenant.
    let out = ok(run(sb.cmd_with(&["get-token", "-p", "hinted"])));
    let c = claims(&out);
    assert_eq!(c["tid"], mock.tenant_id(B));
    assert_eq!(c["upn"].as_str().or(c["preferred_username"].as_str()), Some("bob@contoso.test"), "{c}");

    // A profile that signed in itself is that person at another tenant, whoever else is here.
    let out = ok(run(cmd_pw(&sb, &["get-token", "-p", "ann", "--tenant", C], "wrong")));
    let c = claims(&out);
    assert_eq!(c["tid"], mock.tenant_id(C));
    assert_eq!(c["upn"].as_str().or(c["preferred_username"].as_str()), Some("ann@contoso.test"), "{c}");
    assert_eq!(mock.grant_count("password"), 2, "no new password sign-in");
    assert_eq!(mock.grant_count(DEVICE_GRANT), 0);
}

#[test]
fn parallel_calls_for_a_new_tenant_spend_the_rotating_token_one_at_a_time() {
    let (mock, sb) = setup(&[("dev", &device_profile(A))]);
    login(&mock, &sb, "dev");
    mock.set_delay(std::time::Duration::from_millis(150));
    // Different resources, so the access-token locks do not serialise them: only the
    // account locks do. Each spends the latest token; none finds a dead one.
    let resources = ["https://graph.microsoft.com", "https://vault.azure.net", "https://storage.azure.com", "https://management.azure.com"];
    let children: Vec<_> = resources
        .iter()
        .map(|r| {
            let mut c = sb.cmd_with(&["get-token", "-p", "dev", "--tenant", B, "-r", r]);
            c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for child in children {
        let out = ok(child.wait_with_output().unwrap());
        assert_eq!(claims(&out)["tid"], mock.tenant_id(B));
    }
    assert_eq!(mock.grant_count(DEVICE_GRANT), 1);
    assert_eq!(refresh_paths(&mock).len(), 4, "one redemption per resource, none retried");
    let live = mock.live_refresh_tokens();
    assert_eq!(live.len(), 1);
    assert!(stored(&sb).contains(&(B.to_string(), live[0].clone())), "B keeps the live token: {:?}", stored(&sb));
}

#[test]
fn az_get_access_token_with_tenant_reuses_the_sign_in() {
    let (mock, sb) = setup(&[("default", &device_profile(A))]);
    login(&mock, &sb, "default");
    let mut az = sb.tool(sb.link("az"));
    az.args(["account", "get-access-token", "--output", "json", "--resource", "https://management.azure.com", "--tenant", B]);
    let out = ok(run(az));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tenant"], mock.tenant_id(B));
    assert_eq!(jwt_claims(v["accessToken"].as_str().unwrap()).unwrap()["tid"], mock.tenant_id(B));
    assert_eq!(mock.grant_count(DEVICE_GRANT), 1);
    assert_eq!(refresh_paths(&mock), vec![format!("/{B}/oauth2/v2.0/token")]);

    // Refused at C: az's callers get "not logged in" (so SDK chains move on) and the command.
    mock.refuse_refresh_tokens_in(C, 50079);
    let mut az = sb.tool(sb.link("az"));
    az.args(["account", "get-access-token", "--output", "json", "--tenant", C]);
    let out = run(az);
    let err = text(&out.stderr);
    assert_eq!(code(&out), 3, "{err}");
    assert!(err.contains("az login") && err.contains(&format!("entra-token login --tenant {C}")), "{err}");
}

// Unix only: needs a pseudo-terminal from util-linux `script`.
#[cfg(unix)]
#[test]
fn with_a_person_at_the_terminal_a_refusal_leads_to_a_sign_in_at_that_tenant() {
    if std::process::Command::new("script").arg("--version").output().is_err() {
        support::skip::missing_tool("script (util-linux)", "the terminal check");
        return;
    }
    let (mock, sb) = setup(&[("dev", &device_profile(A))]);
    login(&mock, &sb, "dev");
    let a_before = stored(&sb);
    mock.refuse_refresh_tokens_in(B, 50076);
    let line = [env!("CARGO_BIN_EXE_entra-token"), "get-token", "-p", "dev", "--tenant", B].map(|a| format!("'{a}'")).join(" ");
    let mut script = sb.tool("script");
    script.args(["-qfec", &line, "/dev/null"]);
    let out = run(script);
    let screen = text(&out.stdout);
    assert_eq!(code(&out), 0, "{screen}");
    assert!(screen.contains("AADSTS50076") && screen.contains("signing in") && screen.contains("enter the code"), "{screen}");
    // The new sign-in happened at B, and A's token is as it was.
    assert_eq!(mock.grant_count(DEVICE_GRANT), 2);
    let dcs: Vec<String> = mock.requests().into_iter().filter(|r| r.path.ends_with("/devicecode")).map(|r| r.path).collect();
    assert_eq!(dcs.last().unwrap(), &format!("/{B}/oauth2/v2.0/devicecode"));
    let now = stored(&sb);
    assert!(a_before.iter().all(|a| now.contains(a)), "{a_before:?} {now:?}");
    assert!(now.iter().any(|(t, _)| t == B), "{now:?}");
}

#[test]
fn a_profile_at_another_tenant_borrows_the_sign_in_until_it_is_signed_out() {
    let (mock, sb) = setup(&[("a", &device_profile(A)), ("b", &device_profile(B)), ("a2", &device_profile(A))]);
    login(&mock, &sb, "a");
    let out = ok(run(sb.cmd_with(&["get-token", "-p", "b"])));
    assert_eq!(claims(&out)["tid"], mock.tenant_id(B));
    assert_eq!(mock.grant_count(DEVICE_GRANT), 1);
    // Another profile at the same tenant and client: the same account, the same token.
    let out = ok(run(sb.cmd_with(&["get-token", "-p", "a2", "-r", "graph"])));
    assert_eq!(claims(&out)["tid"], mock.tenant_id(A));
    assert_eq!(mock.grant_count(DEVICE_GRANT), 1);

    // `logout -p b` means b is signed out, although a still is: b borrows nothing now.
    let out = ok(run(sb.cmd_with(&["logout", "-p", "b"])));
    assert!(text(&out.stderr).contains("signed out user@contoso.test from profile 'b'"), "{}", text(&out.stderr));
    let spent = refresh_paths(&mock).len();
    let out = run(sb.cmd_with(&["get-token", "-p", "b", "--force"]));
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("entra-token login -p b"), "{}", text(&out.stderr));
    assert_eq!(refresh_paths(&mock).len(), spent);
    // a is untouched.
    let out = ok(run(sb.cmd_with(&["get-token", "-p", "a", "--force"])));
    assert_eq!(claims(&out)["tid"], mock.tenant_id(A));
    // b's own sign-in lifts the sign-out.
    login(&mock, &sb, "b");
    ok(run(sb.cmd_with(&["logout", "-p", "b"])));
    ok(run(sb.cmd_with(&["logout", "--all"])));
    login(&mock, &sb, "a");
    let out = ok(run(sb.cmd_with(&["get-token", "-p", "b", "--force"])));
    assert_eq!(claims(&out)["tid"], mock.tenant_id(B), "logout --all forgets every sign-out");
    assert_eq!(mock.grant_count(DEVICE_GRANT), 3);
}

/// `status` (and `cache list`) shows a profile's sign-ins at other tenants, text and JSON,
/// with whether each keeps a refresh token, and never a token.
#[test]
fn status_shows_the_sign_ins_at_other_tenants_never_a_token() {
    let (mock, sb) = setup(&[("dev", &device_profile(A)), ("elsewhere", &device_profile(A))]);
    login(&mock, &sb, "dev");
    ok(run(sb.cmd_with(&["get-token", "-p", "dev", "--tenant", B])));
    // A profile signed in only at another tenant than its own.
    mock.approve_device_codes(0);
    ok(run(sb.cmd_with(&["login", "-p", "elsewhere", "--tenant", C])));

    let out = ok(run(sb.cmd_with(&["status"])));
    let s = text(&out.stdout);
    let section = |name: &str| s.split('\n').skip_while(|l| !l.starts_with(&format!("{name}  "))).take_while(|l| l.starts_with(name) || l.starts_with("    ")).collect::<Vec<_>>().join("\n");
    let dev = section("dev");
    assert!(dev.contains(&format!("signed in as user@contoso.test (tenant {})", mock.tenant_id(A))), "{s}");
    assert!(dev.contains(&format!("also at tenant {B} ({}): signed in as user@contoso.test\n", mock.tenant_id(B))), "{s}");
    assert!(dev.contains(&format!("(tenant {})", mock.tenant_id(B))), "B's cached token says whose it is: {s}");
    let elsewhere = section("elsewhere");
    assert!(elsewhere.contains(&format!("not signed in at tenant {A}")) && elsewhere.contains(&format!("also at tenant {C}")), "{s}");
    let listed = ok(run(sb.cmd_with(&["cache", "list"])));
    assert!(text(&listed.stdout).contains(&format!("also at tenant {B}")), "{}", text(&listed.stdout));

    let out = ok(run(sb.cmd_with(&["status", "-o", "json"])));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let profile = |n: &str| v["profiles"].as_array().unwrap().iter().find(|p| p["name"] == n).unwrap().clone();
    let dev = profile("dev");
    assert_eq!(dev["account"]["tenant"], A);
    let others = dev["other_tenants"].as_array().unwrap();
    assert_eq!(others.len(), 1, "{dev}");
    assert_eq!(others[0]["tenant"], B);
    assert_eq!(others[0]["tenant_id"], mock.tenant_id(B));
    assert_eq!(others[0]["username"], "user@contoso.test");
    assert_eq!(others[0]["refresh_token"], "stored");
    let tenants: Vec<&str> = dev["tokens"].as_array().unwrap().iter().filter_map(|t| t["tenant_id"].as_str()).collect();
    assert!(tenants.contains(&mock.tenant_id(A).as_str()) && tenants.contains(&mock.tenant_id(B).as_str()), "{dev}");
    let elsewhere = profile("elsewhere");
    assert!(elsewhere.get("account").is_none(), "{elsewhere}");
    assert_eq!(elsewhere["other_tenants"][0]["tenant"], C);

    // A refresh token gone at B shows as missing there, with the command that heals it.
    let rt_b = std::fs::read_dir(sb.path("cache")).unwrap().map(|e| e.unwrap().path()).find(|p| {
        let name = p.file_name().unwrap().to_str().unwrap();
        name.starts_with("rt-") && name.ends_with(".json") && support::read_rt_entry(p)["key"]["tenant"] == B
    });
    std::fs::remove_file(rt_b.expect("B's refresh token file")).unwrap();
    let s = text(&ok(run(sb.cmd_with(&["status"]))).stdout);
    assert!(s.contains(&format!("refresh token missing, run `entra-token login -p dev --tenant {B}`")), "{s}");

    let everything = format!("{s}{}{}", text(&out.stdout), text(&listed.stdout));
    for t in mock.issued_access_tokens().iter().chain(mock.live_refresh_tokens().iter()) {
        assert!(!everything.contains(t.as_str()), "a token was printed");
    }
}

/// MFA (AADSTS50076/50079) advice depends on where it was asked: a tenant refusing a stored
/// sign-in wants the person to sign in *there* (`login -p P --tenant T`), while a password
/// grant under MFA wants a flow that can do MFA.
#[test]
fn mfa_advice_fits_the_situation() {
    let pw = format!("flow = \"password\"\ntenant = \"{A}\"\nusername = \"ann@contoso.test\"\npassword_env = \"PW\"");
    let (mock, sb) = setup(&[("dev", &device_profile(A)), ("legacy", &pw), ("fresh", &format!("flow = \"password\"\ntenant = \"{C}\"\nusername = \"bob@contoso.test\"\npassword_env = \"PW\""))]);
    mock.add_user("ann@contoso.test", "pw-ann");
    mock.add_user("bob@contoso.test", "pw-bob");
    login(&mock, &sb, "dev");
    for aadsts in [50076, 50079] {
        mock.refuse_refresh_tokens_in(B, aadsts);
        let out = run(sb.cmd_with(&["get-token", "-p", "dev", "--tenant", B, "--force"]));
        let err = text(&out.stderr);
        assert_eq!(code(&out), 3, "{err}");
        assert!(err.contains(&format!("tenant {B} requires multi-factor authentication: sign in there with `entra-token login -p dev --tenant {B}`")), "{err}");
        assert!(!err.contains("--flow device-code or --flow interactive"), "the password flow's advice does not fit here: {err}");
    }

    // A password profile refused at another tenant: sign in there, by a flow that can do MFA.
    ok(run(cmd_pw(&sb, &["login", "-p", "legacy"], "pw-ann")));
    let out = run(sb.cmd_with(&["get-token", "-p", "legacy", "--tenant", B]));
    let err = text(&out.stderr);
    assert_eq!(code(&out), 3, "{err}");
    assert!(err.contains(&format!("sign in there with `entra-token login -p legacy --tenant {B} --flow device-code`")), "{err}");

    // The password grant itself under MFA: the advice is another flow.
    mock.require_mfa_for_password(true);
    let out = run(cmd_pw(&sb, &["get-token", "-p", "fresh", "--no-cache"], "pw-bob"));
    let err = text(&out.stderr);
    assert_eq!(code(&out), 3, "{err}");
    assert!(err.contains("AADSTS50076") && err.contains("password sign-in cannot do") && err.contains("--flow device-code"), "{err}");
    assert!(!err.contains("sign in there"), "{err}");
}

/// `login` removes only the cached access tokens its sign-in invalidates: the same person
/// signing in at another tenant keeps the first tenant's tokens (served from the cache
/// after), while another person signing in removes the first person's, at every tenant.
#[test]
fn login_removes_only_the_tokens_the_new_sign_in_invalidates() {
    let (mock, sb) = setup(&[("dev", &device_profile(A))]);
    mock.add_user("ann@contoso.test", "pw-ann");
    mock.add_user("bob@contoso.test", "pw-bob");
    login(&mock, &sb, "dev");
    let graph_a = text(&ok(run(sb.cmd_with(&["get-token", "-p", "dev", "-r", "graph"]))).stdout);
    assert_eq!(claims(&ok(run(sb.cmd_with(&["get-token", "-p", "dev"])))) ["upn"], "ann@contoso.test");
    let accounts = |sb: &Sandbox| -> Vec<(String, String)> {
        let v: Value = serde_json::from_slice(&ok(run(sb.cmd_with(&["status", "-o", "json"]))).stdout).unwrap();
        let dev = v["profiles"].as_array().unwrap().iter().find(|p| p["name"] == "dev").unwrap().clone();
        let mut t: Vec<(String, String)> = dev["tokens"].as_array().unwrap().iter().map(|t| (t["account"].as_str().unwrap().to_string(), t["tenant_id"].as_str().unwrap().to_string())).collect();
        t.sort();
        t
    };
    let (ann, a_id, b_id) = ("ann@contoso.test".to_string(), mock.tenant_id(A), mock.tenant_id(B));
    assert_eq!(accounts(&sb), vec![(ann.clone(), a_id.clone()), (ann.clone(), a_id.clone())]);

    // The same person's first sign-in at B: A's two tokens stay, and serve without Entra.
    mock.approve_device_codes(0);
    ok(run(sb.cmd_with(&["login", "-p", "dev", "--tenant", B])));
    assert_eq!(accounts(&sb), vec![(ann.clone(), a_id.clone()), (ann.clone(), a_id.clone()), (ann.clone(), b_id.clone())]);
    let before = mock.token_requests();
    assert_eq!(text(&ok(run(sb.cmd_with(&["get-token", "-p", "dev", "-r", "graph"]))).stdout), graph_a);
    assert_eq!(mock.token_requests(), before, "A's cached token was served");

    // Another person signs in at B: ann's tokens go, at B and at A; only bob's is left.
    let mut bob = sb.cmd_with(&["login", "-p", "dev", "--tenant", B, "--flow", "password", "--login-hint", "bob@contoso.test"]);
    bob.env("AZURE_PASSWORD", "pw-bob");
    ok(run(bob));
    assert_eq!(accounts(&sb), vec![("bob@contoso.test".to_string(), b_id.clone())]);
    let out = ok(run(sb.cmd_with(&["get-token", "-p", "dev", "--tenant", B, "-r", "graph"])));
    assert_eq!(claims(&out)["upn"], "bob@contoso.test", "ann's cached token at B is not served after bob signed in there");
    // The profile is bob now at every tenant: back at A it spends bob's sign-in (no new
    // sign-in), never ann's, and ann's refresh tokens, which nothing links to, are gone.
    let sign_ins = mock.requests().iter().filter(|r| r.form_get("grant_type").is_some_and(|g| g != "refresh_token")).count();
    let out = ok(run(sb.cmd_with(&["get-token", "-p", "dev", "-r", "graph"])));
    assert_eq!(claims(&out)["upn"], "bob@contoso.test", "the profile minted the previous person's token at A");
    assert_eq!(mock.requests().iter().filter(|r| r.form_get("grant_type").is_some_and(|g| g != "refresh_token")).count(), sign_ins);
    let live = mock.live_refresh_tokens_by_user();
    for (tenant, rt) in stored(&sb) {
        assert!(live.iter().any(|(user, t)| t == &rt && user == "bob@contoso.test"), "a refresh token of someone other than bob is still stored (tenant {tenant})");
    }
}

#[test]
fn a_family_client_spends_the_family_refresh_token_and_others_do_not() {
    use crate::support::{AKS_CLIENT, AZURE_CLI, AZURE_POWERSHELL};
    let profile = |client: &str| format!("{}\nclient_id = \"{client}\"", device_profile(A));
    let (mock, sb) = setup(&[("cli", &profile(AZURE_CLI)), ("ps", &profile(AZURE_POWERSHELL)), ("aks", &profile(AKS_CLIENT))]);
    login(&mock, &sb, "cli");
    let sign_ins = mock.grant_count(DEVICE_GRANT);
    // Azure PowerShell's client is in Microsoft's family with the Azure CLI's: no sign-in.
    let out = ok(run(sb.cmd_with(&["get-token", "-p", "ps", "-r", "graph"])));
    assert_eq!(claims(&out)["appid"], AZURE_POWERSHELL);
    assert_eq!(mock.grant_count(DEVICE_GRANT), sign_ins);
    let last = mock.requests().into_iter().rev().find(|r| r.is_token_request()).unwrap();
    assert_eq!((last.form_get("grant_type"), last.form_get("client_id")), (Some("refresh_token"), Some(AZURE_POWERSHELL)));
    // Its own refresh token is stored now: the next one is its own, after the cache.
    let out = ok(run(sb.cmd_with(&["get-token", "-p", "ps", "-r", "arm", "--force"])));
    assert_eq!(claims(&out)["appid"], AZURE_POWERSHELL);
    // A client outside the family gets nothing from it: a sign-in nobody can answer here.
    let before = mock.token_requests();
    let out = run(sb.cmd_with(&["get-token", "-p", "aks", "-r", "graph"]));
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("entra-token login -p aks"), "{}", text(&out.stderr));
    assert_eq!(mock.token_requests(), before, "a non-family client must not be handed the family token");

    // A token Entra did not mark as a family token stays with its own client.
    let (mock, sb) = setup(&[("cli", &profile(AZURE_CLI)), ("ps", &profile(AZURE_POWERSHELL))]);
    login(&mock, &sb, "cli");
    for e in std::fs::read_dir(sb.path("cache")).unwrap().flatten() {
        let name = e.file_name().into_string().unwrap();
        if name.starts_with("rt-") && name.ends_with(".json") {
            let mut v = support::read_rt_entry(&e.path());
            assert_eq!(v["foci"], "1", "the Azure CLI's sign-in was a family token");
            v["foci"] = Value::Null;
            support::write_rt_entry(&e.path(), &v);
        }
    }
    let before = mock.token_requests();
    assert_eq!(code(&run(sb.cmd_with(&["get-token", "-p", "ps", "-r", "graph"]))), 3);
    assert_eq!(mock.token_requests(), before);
}

#[test]
fn a_refused_family_borrow_leaves_the_lenders_token_and_is_not_retried() {
    use crate::support::{AZURE_CLI, AZURE_POWERSHELL};
    let profile = |client: &str| format!("{}\nclient_id = \"{client}\"", device_profile(A));
    // As after Microsoft took the Azure CLI out of the family: both shapes Entra is reported to answer.
    for refusal in [("invalid_grant", 700007), ("unauthorized_client", 700007)] {
        let (mock, sb) = setup(&[("cli", &profile(AZURE_CLI)), ("ps", &profile(AZURE_POWERSHELL))]);
        login(&mock, &sb, "cli");
        let lender = stored(&sb);
        assert_eq!(lender.len(), 1);
        mock.refuse_family_redemption(Some(refusal));
        let before = mock.token_requests();
        let out = run(sb.cmd_with(&["get-token", "-p", "ps", "-r", "graph"]));
        let err = text(&out.stderr);
        assert_eq!(code(&out), 3, "{refusal:?}: {err}");
        assert!(err.contains("entra-token login -p ps"), "{refusal:?}: no login command: {err}");
        assert_eq!(err.matches("refused the family sign-in").count(), 1, "{refusal:?}: {err}");
        assert_eq!(mock.token_requests(), before + 1, "{refusal:?}: one borrow attempt");
        // The lender's refresh token is neither removed nor replaced, and Entra still takes it.
        assert_eq!(stored(&sb), lender, "{refusal:?}: the lender's refresh token changed");
        assert!(mock.live_refresh_tokens().contains(&lender[0].1), "{refusal:?}");
        // Remembered beside the refresh tokens: the next calls do not ask Entra again, nor repeat the message.
        let memo = std::fs::read_dir(sb.path("cache")).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with("foci-")).count();
        assert_eq!(memo, 1, "{refusal:?}: the refusal is not on disk");
        for r in ["graph", "arm"] {
            let out = run(sb.cmd_with(&["get-token", "-p", "ps", "-r", r]));
            assert_eq!(code(&out), 3, "{refusal:?}: {}", text(&out.stderr));
            assert!(text(&out.stderr).contains("entra-token login -p ps"));
            assert!(!text(&out.stderr).contains("refused the family sign-in"), "{refusal:?}: said again");
        }
        assert_eq!(mock.token_requests(), before + 1, "{refusal:?}: the refused borrow was retried");
        // The lender goes on with its own token.
        let out = ok(run(sb.cmd_with(&["get-token", "-p", "cli", "-r", "arm"])));
        assert_eq!(claims(&out)["appid"], AZURE_CLI);
        // The borrower's own path: its own sign-in, then its own refresh token.
        login(&mock, &sb, "ps");
        let out = ok(run(sb.cmd_with(&["get-token", "-p", "ps", "-r", "storage"])));
        assert_eq!(claims(&out)["appid"], AZURE_POWERSHELL);
        let last = mock.requests().into_iter().rev().find(|r| r.is_token_request()).unwrap();
        assert_eq!((last.form_get("grant_type"), last.form_get("client_id")), (Some("refresh_token"), Some(AZURE_POWERSHELL)));
    }
}

/// `logout --all` names each account and profile once, though a profile signed in at two
/// tenants has a link at each (it read "user@contoso.test (dev), user@contoso.test (dev)").
#[test]
fn logout_all_names_each_sign_in_once() {
    let (mock, sb) = setup(&[("dev", &device_profile(A))]);
    login(&mock, &sb, "dev");
    ok(run(sb.cmd_with(&["login", "-p", "dev", "--tenant", B])));
    let out = ok(run(sb.cmd_with(&["logout", "--all"])));
    let err = text(&out.stderr);
    assert_eq!(err.matches("user@contoso.test (dev)").count(), 1, "{err}");
}
