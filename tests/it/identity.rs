//! A cached token is served only to the identity that minted it. For each token source,
//! every input that selects the identity (the ambient variables, `--tenant`, az's default
//! account, the managed-identity endpoint, the person) is changed between two calls
//! through the binary: the second call gets a new token of the new identity, or a clear
//! refusal, and never the first identity's cached token. Going back to the first identity
//! is served from the cache, so the cache still works.

use crate::support;

use serde_json::{Value, json};
#[cfg(unix)]
use std::path::PathBuf;
use std::process::{Command, Output};
use crate::support::http::{Reply, StandIn};
use crate::support::{MockAuthority, Sandbox, code, jwt_claims, ok_stdout, run, stderr};

const TA: &str = "contoso.test";
const TB: &str = "fabrikam.test";
const TC: &str = "northwind.test";
const APP1: &str = "11111111-aaaa-4000-8000-000000000001";
const APP2: &str = "22222222-aaaa-4000-8000-000000000002";
const SECRET: &str = "app-secret";

mod az;

fn mock() -> MockAuthority {
    let mock = MockAuthority::start();
    for t in [TA, TB, TC] {
        mock.add_tenant(t);
    }
    mock.add_app(APP1, Some(SECRET));
    mock.add_app(APP2, Some(SECRET));
    mock
}

/// A sandbox with `profiles` (TOML bodies) aimed at `mock`, and no `az` on PATH.
fn sandbox(mock: &MockAuthority, profiles: &[(&str, &str)]) -> Sandbox {
    let sb = Sandbox::new();
    let mut cfg = String::new();
    for (name, body) in profiles {
        cfg.push_str(&format!("[profiles.{name}]\nauthority = \"{}\"\n{body}\n", mock.url()));
    }
    sb.write_config(&cfg);
    std::fs::create_dir_all(sb.path("empty-bin")).unwrap();
    sb
}

fn get(sb: &Sandbox, args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut c = sb.cmd();
    c.args(["get-token"]).args(args).env("PATH", sb.path("empty-bin"));
    for (k, v) in vars {
        c.env(k, v);
    }
    c
}

fn token(sb: &Sandbox, args: &[&str], vars: &[(&str, &str)]) -> String {
    ok_stdout(&run(get(sb, args, vars)))
}

fn claim(token: &str, name: &str) -> String {
    jwt_claims(token).map(|c| c[name].as_str().unwrap_or_default().to_string()).unwrap_or_default()
}

// ------------------------------------------------------------------ service principals

#[test]
fn auto_environment_secret_follows_the_tenant_client_and_tenant_flag() {
    let mock = mock();
    let sb = sandbox(&mock, &[("a", "")]);
    let env = |tenant: &'static str, client: &'static str| [("AZURE_TENANT_ID", tenant), ("AZURE_CLIENT_ID", client), ("AZURE_CLIENT_SECRET", SECRET)];
    let a = token(&sb, &["-p", "a", "-r", "arm"], &env(TA, APP1));
    assert_eq!(claim(&a, "tid"), mock.tenant_id(TA));
    // AZURE_TENANT_ID moves: the other tenant's token, never tenant A's.
    let b = token(&sb, &["-p", "a", "-r", "arm"], &env(TB, APP1));
    assert_ne!(a, b);
    assert_eq!(claim(&b, "tid"), mock.tenant_id(TB));
    // AZURE_CLIENT_ID moves: the other app's token.
    let other_app = token(&sb, &["-p", "a", "-r", "arm"], &env(TA, APP2));
    assert_ne!(other_app, a);
    assert_eq!(claim(&other_app, "appid"), APP2);
    // --tenant is honoured (and its token is tenant C's, stored as tenant C's).
    let c = token(&sb, &["-p", "a", "-r", "arm", "--tenant", TC], &env(TA, APP1));
    assert_eq!(claim(&c, "tid"), mock.tenant_id(TC));
    assert_eq!(token(&sb, &["-p", "a", "-r", "arm", "--tenant", TC], &env(TA, APP1)), c, "tenant C's token is cached as tenant C's");
    // Back to the first identity: its own token, from the cache.
    assert_eq!(token(&sb, &["-p", "a", "-r", "arm"], &env(TA, APP1)), a);
    assert_eq!(mock.grant_count("client_credentials"), 4);
}

#[test]
fn client_credentials_profile_honours_the_tenant_flag() {
    let mock = mock();
    let sb = sandbox(&mock, &[("ci", &format!("flow = \"client-credentials\"\ntenant = \"{TA}\"\nclient_id = \"{APP1}\"\nclient_secret_env = \"CI_SECRET\""))]);
    let vars = [("CI_SECRET", SECRET)];
    let a = token(&sb, &["-p", "ci", "-r", "arm"], &vars);
    let b = token(&sb, &["-p", "ci", "-r", "arm", "--tenant", TB], &vars);
    assert_ne!(a, b);
    assert_eq!(claim(&b, "tid"), mock.tenant_id(TB));
    // A stray AZURE_TENANT_ID does not move a profile that names its tenant.
    assert_eq!(token(&sb, &["-p", "ci", "-r", "arm"], &[("CI_SECRET", SECRET), ("AZURE_TENANT_ID", TC)]), a);
    assert_eq!(mock.grant_count("client_credentials"), 2);
}

#[test]
fn auto_environment_password_follows_the_username() {
    let mock = mock();
    mock.add_user("alice@contoso.test", "pw-a");
    mock.add_user("bob@contoso.test", "pw-b");
    let sb = sandbox(&mock, &[("a", "")]);
    let env = |user: &'static str, pw: &'static str| [("AZURE_CLIENT_ID", support::AZURE_CLI), ("AZURE_TENANT_ID", TA), ("AZURE_USERNAME", user), ("AZURE_PASSWORD", pw)];
    let upn = |t: &str| {
        let c = jwt_claims(t).unwrap();
        c["upn"].as_str().or(c["preferred_username"].as_str()).unwrap_or_default().to_string()
    };
    let alice = token(&sb, &["-p", "a", "-r", "graph"], &env("alice@contoso.test", "pw-a"));
    assert_eq!(upn(&alice), "alice@contoso.test");
    // Another AZURE_USERNAME: Bob signs in with his password; neither Alice's cached token
    // nor her refresh token answers for him.
    let bob = token(&sb, &["-p", "a", "-r", "graph"], &env("bob@contoso.test", "pw-b"));
    assert_eq!(upn(&bob), "bob@contoso.test");
    assert_eq!(mock.grant_count("password"), 2);
    // AZURE_TENANT_ID moves: tenant B's token.
    let mut vars = env("bob@contoso.test", "pw-b");
    vars[1] = ("AZURE_TENANT_ID", TB);
    let at_b = token(&sb, &["-p", "a", "-r", "graph"], &vars);
    assert_eq!(claim(&at_b, "tid"), mock.tenant_id(TB));
    assert_eq!(upn(&at_b), "bob@contoso.test");
}

// ------------------------------------------------------------------ workload identity

fn federated(sub: &str) -> String {
    support::wire::jwt(&json!({"iss": "https://kubernetes.default.svc", "sub": sub, "aud": "api://AzureADTokenExchange"}))
}

#[test]
fn workload_identity_follows_client_tenant_and_token_file() {
    let mock = mock();
    mock.set_assertion_checker(|_, _, _| Ok(()));
    let sb = sandbox(&mock, &[("wi", "flow = \"workload-identity\""), ("a", "")]);
    let f1 = sb.write_file("wi-1", federated("system:serviceaccount:ns:one"));
    let f2 = sb.write_file("wi-2", federated("system:serviceaccount:ns:two"));
    let (f1, f2) = (f1.display().to_string(), f2.display().to_string());
    for profile in ["wi", "a"] {
        let vars = |tenant: &'static str, client: &'static str, file: &str| vec![("AZURE_TENANT_ID", tenant.to_string()), ("AZURE_CLIENT_ID", client.to_string()), ("AZURE_FEDERATED_TOKEN_FILE", file.to_string())];
        let t = |v: Vec<(&str, String)>, extra: &[&str]| {
            let v: Vec<(&str, &str)> = v.iter().map(|(k, v)| (*k, v.as_str())).collect();
            token(&sb, &[&["-p", profile, "-r", "arm"], extra].concat(), &v)
        };
        let first = t(vars(TA, APP1, &f1), &[]);
        let tenant_b = t(vars(TB, APP1, &f1), &[]);
        assert_eq!(claim(&tenant_b, "tid"), mock.tenant_id(TB), "{profile}");
        let app2 = t(vars(TA, APP2, &f1), &[]);
        assert_eq!(claim(&app2, "appid"), APP2, "{profile}");
        let file2 = t(vars(TA, APP1, &f2), &[]);
        let flag = t(vars(TA, APP1, &f1), &["--tenant", TC]);
        assert_eq!(claim(&flag, "tid"), mock.tenant_id(TC), "{profile}");
        let all = [&first, &tenant_b, &app2, &file2, &flag];
        for (i, x) in all.iter().enumerate() {
            for y in &all[i + 1..] {
                assert_ne!(x, y, "{profile}: two identities got one token");
            }
        }
        assert_eq!(t(vars(TA, APP1, &f1), &[]), first, "{profile}: the first identity's own token, cached");
    }
}

// ------------------------------------------------------------------ managed identity

/// A managed identity endpoint whose every answer names the endpoint, the serial and the
/// identity it was asked for.
fn endpoint(name: &'static str) -> StandIn {
    StandIn::start(move |req, n| {
        let who = req.query.iter().find(|(k, _)| k == "client_id" || k == "object_id" || k == "principal_id" || k == "msi_res_id").map(|(_, v)| v.clone()).unwrap_or_else(|| "system".into());
        let exp = (support::wire::now() + 3600).to_string();
        Reply::json(200, &json!({"access_token": format!("{name}-{who}-{n}"), "expires_on": exp, "resource": "r", "token_type": "Bearer"}))
    })
}

#[test]
fn managed_identity_follows_the_endpoint_and_the_identity_and_refuses_a_tenant() {
    let (app1, app2, imds1, imds2, shell) = (endpoint("app1"), endpoint("app2"), endpoint("imds1"), endpoint("imds2"), endpoint("shell"));
    let mock = mock();
    let sb = sandbox(&mock, &[("mi", "flow = \"managed-identity\"")]);
    let app_service_as = |url: &str, client: Option<&str>, header: &str| {
        let mut v = vec![("IDENTITY_ENDPOINT".to_string(), format!("{url}/msi/token")), ("IDENTITY_HEADER".to_string(), header.to_string())];
        if let Some(c) = client {
            v.push(("AZURE_CLIENT_ID".into(), c.into()));
        }
        v
    };
    let app_service = |url: &str, client: Option<&str>| app_service_as(url, client, "h");
    let t = |profile: &str, v: Vec<(String, String)>| {
        let v: Vec<(&str, &str)> = v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        token(&sb, &["-p", profile, "-r", "arm"], &v)
    };
    // Explicit managed identity and `auto` (the built-in default) alike.
    for profile in ["mi", "default"] {
        let first = t(profile, app_service(&app1.url(), None));
        assert!(first.starts_with("app1-system-"), "{first}");
        // IDENTITY_ENDPOINT points at another endpoint (another identity): its token.
        assert!(t(profile, app_service(&app2.url(), None)).starts_with("app2-system-"));
        // IDENTITY_HEADER is another application's (one endpoint, many apps): its token.
        let other_app = t(profile, app_service_as(&app1.url(), None, "h2"));
        assert!(other_app.starts_with("app1-system-") && other_app != first, "{other_app}");
        // AZURE_CLIENT_ID names a user-assigned identity: its token.
        assert!(t(profile, app_service(&app1.url(), Some(APP2))).starts_with(&format!("app1-{APP2}-")));
        // Cloud Shell's MSI_ENDPOINT.
        assert!(t(profile, vec![("MSI_ENDPOINT".into(), format!("{}/msi", shell.url()))]).starts_with("shell-system-"));
        assert_eq!(t(profile, app_service(&app1.url(), None)), first, "the first identity's own token, cached");
    }
    // IMDS: another IMDS base is another identity.
    let imds = |url: &str| vec![("AZURE_POD_IDENTITY_AUTHORITY_HOST".to_string(), url.to_string())];
    let first = t("mi", imds(&imds1.url()));
    assert!(first.starts_with("imds1-system-"), "{first}");
    assert!(t("mi", imds(&imds2.url())).starts_with("imds2-system-"));
    assert_eq!(t("mi", imds(&imds1.url())), first);
    // --tenant cannot be honoured by a managed identity: a clear refusal, exit 1, no request.
    let before = app1.requests().len();
    let mut c = get(&sb, &["-p", "mi", "-r", "arm", "--tenant", TB], &[]);
    for (k, v) in app_service(&app1.url(), None) {
        c.env(k, v);
    }
    let out = run(c);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert!(stderr(&out).contains("managed identity, which cannot sign in to another tenant (--tenant fabrikam.test)"), "{}", stderr(&out));
    assert_eq!(app1.requests().len(), before);
}

// ------------------------------------------------------------------ Azure CLI: identity/az.rs

// ------------------------------------------------------------------ people

fn status_tokens(sb: &Sandbox) -> Vec<Value> {
    let mut c = sb.cmd();
    c.args(["status", "-o", "json"]);
    let v: Value = serde_json::from_str(&ok_stdout(&run(c))).unwrap();
    v["profiles"].as_array().unwrap().iter().flat_map(|p| p["tokens"].as_array().cloned().unwrap_or_default()).collect()
}

/// The quick start: `login`, then `get-token` on the same (auto, built-in) profile is one
/// sign-in and one cache entry: no refresh grant, and `status` lists the token once.
#[test]
fn login_then_get_token_is_one_sign_in_and_one_entry() {
    let mock = mock();
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("empty-bin")).unwrap();
    // One host: the same (absent) IMDS for every command.
    let imds = support::refused_url();
    for profile in [None, Some("dev")] {
        if profile.is_some() {
            sb.write_config(&format!("[profiles.dev]\nauthority = \"{}\"\nresource = \"graph\"\n", mock.url()));
        }
        let p: Vec<&str> = profile.map(|p| vec!["-p", p]).unwrap_or_default();
        mock.approve_device_codes(0);
        let mut login = sb.cmd();
        login.arg("login").args(&p).env("AZURE_AUTHORITY_HOST", mock.url()).env("AZURE_POD_IDENTITY_AUTHORITY_HOST", &imds).env("PATH", sb.path("empty-bin"));
        support::ok(run(login));
        let signed_in = mock.issued_access_tokens().last().cloned().unwrap();
        let mut c = sb.cmd();
        c.arg("get-token").args(&p).env("AZURE_AUTHORITY_HOST", mock.url()).env("AZURE_POD_IDENTITY_AUTHORITY_HOST", &imds).env("PATH", sb.path("empty-bin"));
        let out = run(c);
        assert_eq!(ok_stdout(&out), signed_in, "get-token answers with the login's token: {}", stderr(&out));
        assert_eq!(mock.grant_count("refresh_token"), 0, "no extra refresh grant");
    }
    assert_eq!(status_tokens(&sb).len(), 2, "one entry per profile: {:?}", status_tokens(&sb));
}

/// Two people on one device-code profile: after `login` as another person the first
/// person's cached token is never served, and a password profile asked for another
/// username never spends the first person's refresh token.
#[test]
fn a_profile_serves_only_the_person_signed_in() {
    let mock = mock();
    mock.add_user("alice@contoso.test", "pw-a");
    mock.add_user("bob@contoso.test", "pw-b");
    let sb = sandbox(&mock, &[("dev", &format!("flow = \"password\"\ntenant = \"{TA}\"\npassword_env = \"PW\""))]);
    let upn = |t: &str| {
        let c = jwt_claims(t).unwrap();
        c["upn"].as_str().or(c["preferred_username"].as_str()).unwrap_or_default().to_string()
    };
    let login = |user: &str, pw: &str| {
        let mut c = sb.cmd();
        c.args(["login", "-p", "dev", "--login-hint", user]).env("PW", pw);
        support::ok(run(c));
    };
    login("alice@contoso.test", "pw-a");
    let alice = token(&sb, &["-p", "dev", "-r", "arm"], &[]);
    assert_eq!(upn(&alice), "alice@contoso.test");
    login("bob@contoso.test", "pw-b");
    let bob = token(&sb, &["-p", "dev", "-r", "arm"], &[]);
    assert_eq!(upn(&bob), "bob@contoso.test", "Alice's cached token is not Bob's");
    assert_eq!(mock.grant_count("refresh_token"), 0);
}

/// A password profile whose configured `username` changes: the new person's token, never
/// the first person's cached token nor a grant spending their refresh token.
#[test]
fn a_password_profile_follows_its_username() {
    let mock = mock();
    mock.add_user("alice@contoso.test", "pw");
    mock.add_user("bob@contoso.test", "pw");
    let body = |user: &str| format!("flow = \"password\"\ntenant = \"{TA}\"\nusername = \"{user}\"\npassword_env = \"PW\"");
    let sb = sandbox(&mock, &[("dev", &body("alice@contoso.test"))]);
    let upn = |t: &str| claim(t, "upn");
    let alice = token(&sb, &["-p", "dev", "-r", "arm"], &[("PW", "pw")]);
    assert_eq!(upn(&alice), "alice@contoso.test");
    // The profile is edited to name Bob.
    sb.write_config(&format!("[profiles.dev]\nauthority = \"{}\"\n{}\n", mock.url(), body("bob@contoso.test")));
    let bob = token(&sb, &["-p", "dev", "-r", "arm"], &[("PW", "pw")]);
    assert_eq!(upn(&bob), "bob@contoso.test", "Alice's token is not Bob's");
    assert_eq!(mock.grant_count("refresh_token"), 0, "Alice's refresh token was not spent for Bob");
    assert_eq!(mock.grant_count("password"), 2);
}

// ------------------------------------------------------------------ certificates

#[test]
fn auto_environment_certificate_follows_tenant_and_client() {
    let mock = mock();
    mock.set_assertion_checker(|_, _, _| Ok(()));
    let sb = sandbox(&mock, &[("a", "")]);
    let pem = sb.write_file("cert.pem", format!("{}{}", include_str!("../fixtures/client-cert.pem"), include_str!("../fixtures/client-key-pkcs8.pem")));
    let pem = pem.display().to_string();
    let env = |tenant: &'static str, client: &'static str| vec![("AZURE_TENANT_ID", tenant), ("AZURE_CLIENT_ID", client), ("AZURE_CLIENT_CERTIFICATE_PATH", pem.as_str())];
    let a = token(&sb, &["-p", "a", "-r", "arm"], &env(TA, APP1));
    let b = token(&sb, &["-p", "a", "-r", "arm"], &env(TB, APP1));
    assert_eq!(claim(&b, "tid"), mock.tenant_id(TB));
    let other = token(&sb, &["-p", "a", "-r", "arm"], &env(TA, APP2));
    assert_eq!(claim(&other, "appid"), APP2);
    let c = token(&sb, &["-p", "a", "-r", "arm", "--tenant", TC], &env(TA, APP1));
    assert_eq!(claim(&c, "tid"), mock.tenant_id(TC));
    assert_eq!(token(&sb, &["-p", "a", "-r", "arm"], &env(TA, APP1)), a);
    assert_eq!(mock.grant_count("client_credentials"), 4);
}

// ------------------------------------------------------------------ Azure Pipelines

#[test]
fn azure_pipelines_follows_the_service_connection_client_and_tenant() {
    let mock = mock();
    mock.set_assertion_checker(|_, _, _| Ok(()));
    let ado = StandIn::start(|req, _| {
        let conn = req.query.iter().find(|(k, _)| k == "serviceConnectionId").map(|(_, v)| v.clone()).unwrap_or_default();
        Reply::json(200, &json!({"oidcToken": federated(&format!("sc://contoso/web/{conn}"))}))
    });
    let sb = sandbox(&mock, &[("a", "")]);
    let uri = format!("{}/p/_apis/distributedtask/hubs/build/plans/p-1/jobs/j-1/oidctoken", ado.url());
    let t = |conn: &str, client: &str, tenant: &str, extra: &[&str]| {
        let vars = [
            ("SYSTEM_OIDCREQUESTURI", uri.as_str()),
            ("SYSTEM_ACCESSTOKEN", "job-token"),
            ("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID", conn),
            ("AZURESUBSCRIPTION_CLIENT_ID", client),
            ("AZURESUBSCRIPTION_TENANT_ID", tenant),
        ];
        token(&sb, &[&["-p", "a", "-r", "arm"], extra].concat(), &vars)
    };
    let first = t("conn-1", APP1, TA, &[]);
    let conn2 = t("conn-2", APP1, TA, &[]);
    let app2 = t("conn-1", APP2, TA, &[]);
    let tenant_b = t("conn-1", APP1, TB, &[]);
    let flag = t("conn-1", APP1, TA, &["--tenant", TC]);
    assert_eq!(claim(&app2, "appid"), APP2);
    assert_eq!(claim(&tenant_b, "tid"), mock.tenant_id(TB));
    assert_eq!(claim(&flag, "tid"), mock.tenant_id(TC));
    let all = [&first, &conn2, &app2, &tenant_b, &flag];
    for (i, x) in all.iter().enumerate() {
        for y in &all[i + 1..] {
            assert_ne!(x, y, "two identities got one token");
        }
    }
    assert_eq!(t("conn-1", APP1, TA, &[]), first, "the first identity's own token, cached");
}

// ------------------------------------------------------------------ one plan

/// `doctor` reads the chain's own plan: an `auto` profile with its own app secret is
/// signed in as that app by the chain, and doctor says so (it used to say the environment
/// step did not apply and name a later source).
#[test]
fn doctor_names_the_source_the_chain_uses() {
    let mock = mock();
    let sb = sandbox(&mock, &[("a", &format!("tenant = \"{TA}\"\nclient_id = \"{APP1}\"\nclient_secret_env = \"CI_SECRET\""))]);
    let mut c = sb.cmd();
    c.args(["doctor", "-p", "a", "--offline"]).env("CI_SECRET", SECRET).env("PATH", sb.path("empty-bin"));
    let report = support::text(&run(c).stdout);
    let auto = report.lines().find(|l| l.starts_with("✓ auto ")).unwrap_or_else(|| panic!("no ✓ auto line in:\n{report}"));
    assert!(auto.contains(&format!("would use environment (the profile's own app {APP1}")), "{report}");
    // The chain agrees: the app's token, by its secret.
    let t = token(&sb, &["-p", "a", "-r", "arm"], &[("CI_SECRET", SECRET)]);
    assert_eq!(claim(&t, "appid"), APP1);
    assert_eq!(mock.grant_count("client_credentials"), 1);
}

/// A password profile that names no `username` takes it from AZURE_USERNAME (or its
/// `login_hint`): when that variable names another person, that person's token, never the
/// first person's cached token nor a grant spending their refresh token.
#[test]
fn a_password_profile_follows_azure_username() {
    let mock = mock();
    mock.add_user("alice@contoso.test", "pw-a");
    mock.add_user("bob@contoso.test", "pw-b");
    let sb = sandbox(&mock, &[("dev", &format!("flow = \"password\"\ntenant = \"{TA}\""))]);
    let upn = |t: &str| claim(t, "upn");
    let alice = token(&sb, &["-p", "dev", "-r", "arm"], &[("AZURE_USERNAME", "alice@contoso.test"), ("AZURE_PASSWORD", "pw-a")]);
    assert_eq!(upn(&alice), "alice@contoso.test");
    let bob = token(&sb, &["-p", "dev", "-r", "arm"], &[("AZURE_USERNAME", "bob@contoso.test"), ("AZURE_PASSWORD", "pw-b")]);
    assert_eq!(upn(&bob), "bob@contoso.test", "Alice's cached token is not Bob's");
    assert_eq!(mock.grant_count("refresh_token"), 0, "Alice's refresh token was not spent for Bob");
    // Back to Alice: her token again (the profile's one sign-in link is Bob's now), never Bob's.
    let again = token(&sb, &["-p", "dev", "-r", "arm"], &[("AZURE_USERNAME", "alice@contoso.test"), ("AZURE_PASSWORD", "pw-a")]);
    assert_eq!(upn(&again), "alice@contoso.test");
    assert_eq!(mock.grant_count("refresh_token"), 0, "Bob's refresh token was not spent for Alice");
}

/// A password profile told by AZURE_USERNAME to be Bob, with no sign-in of its own, never
/// borrows another profile's sign-in of Alice (same client): Bob signs in as himself.
#[test]
fn a_password_profile_never_borrows_another_persons_sign_in() {
    let mock = mock();
    mock.add_user("alice@contoso.test", "pw-a");
    mock.add_user("bob@contoso.test", "pw-b");
    let sb = sandbox(
        &mock,
        &[
            ("alice", &format!("flow = \"password\"\ntenant = \"{TA}\"\nusername = \"alice@contoso.test\"\npassword_env = \"PW_A\"")),
            ("dev", &format!("flow = \"password\"\ntenant = \"{TA}\"")),
        ],
    );
    let alice = token(&sb, &["-p", "alice", "-r", "arm"], &[("PW_A", "pw-a")]);
    assert_eq!(claim(&alice, "upn"), "alice@contoso.test");
    let bob = token(&sb, &["-p", "dev", "-r", "graph"], &[("AZURE_USERNAME", "bob@contoso.test"), ("AZURE_PASSWORD", "pw-b")]);
    assert_eq!(claim(&bob, "upn"), "bob@contoso.test", "Alice's sign-in does not answer for Bob");
    assert_eq!(mock.grant_count("refresh_token"), 0, "Alice's refresh token was not spent for Bob");
}

/// A password profile naming its person by `login_hint` (no `username`): edited to name
/// Bob, it serves Bob, never Alice's cached token nor her refresh token.
#[test]
fn a_password_profile_follows_its_login_hint() {
    let mock = mock();
    mock.add_user("alice@contoso.test", "pw");
    mock.add_user("bob@contoso.test", "pw");
    let body = |user: &str| format!("flow = \"password\"\ntenant = \"{TA}\"\nlogin_hint = \"{user}\"\npassword_env = \"PW\"");
    let sb = sandbox(&mock, &[("dev", &body("alice@contoso.test"))]);
    let alice = token(&sb, &["-p", "dev", "-r", "arm"], &[("PW", "pw")]);
    assert_eq!(claim(&alice, "upn"), "alice@contoso.test");
    assert_eq!(token(&sb, &["-p", "dev", "-r", "arm"], &[("PW", "pw")]), alice, "cached");
    sb.write_config(&format!("[profiles.dev]\nauthority = \"{}\"\n{}\n", mock.url(), body("bob@contoso.test")));
    let bob = token(&sb, &["-p", "dev", "-r", "arm"], &[("PW", "pw")]);
    assert_eq!(claim(&bob, "upn"), "bob@contoso.test", "Alice's token is not Bob's");
    assert_eq!(mock.grant_count("refresh_token"), 0, "Alice's refresh token was not spent for Bob");
    assert_eq!(token(&sb, &["-p", "dev", "-r", "arm"], &[("PW", "pw")]), bob, "Bob's token is cached as his");
}

/// A device-code (or browser) profile whose login hint is edited to another person: the
/// signed-in person's cached token and refresh token never answer for the new name; with
/// nobody to sign in, the request ends with the login command (exit 3) and nothing on
/// stdout. Back to the signed-in person's name, their cached token answers again.
#[test]
fn a_device_code_profile_follows_its_login_hint() {
    let mock = mock();
    let body = |hint: Option<&str>| {
        let hint = hint.map(|h| format!("login_hint = \"{h}\"\n")).unwrap_or_default();
        format!("[profiles.dev]\nauthority = \"{}\"\nflow = \"device-code\"\ntenant = \"{TA}\"\n{hint}", mock.url())
    };
    let sb = sandbox(&mock, &[]);
    sb.write_config(&body(None));
    mock.approve_device_codes(0);
    support::ok(run({
        let mut c = sb.cmd();
        c.args(["login", "-p", "dev"]);
        c
    }));
    let first = token(&sb, &["-p", "dev", "-r", "arm"], &[]);
    let person = claim(&first, "upn");
    assert_eq!(person, support::DEFAULT_USER);
    let grants = mock.grant_count("refresh_token");
    sb.write_config(&body(Some("bob@contoso.test")));
    let out = run(get(&sb, &["-p", "dev", "-r", "arm"], &[]));
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "another person's token was answered for bob");
    assert!(stderr(&out).contains("bob@contoso.test") && stderr(&out).contains("entra-token login -p dev"), "{}", stderr(&out));
    assert_eq!(mock.grant_count("refresh_token"), grants, "the signed-in person's refresh token was spent for bob");
    sb.write_config(&body(Some(&person)));
    assert_eq!(token(&sb, &["-p", "dev", "-r", "arm"], &[]), first, "the signed-in person's own name finds their cached token");
}
