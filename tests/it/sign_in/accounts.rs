//! Passwords, auto profiles, real kubectl and parallel callers: whose refresh token serves which call.

use super::*;

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
            ("filepw", &format!("flow = \"password\"\ntenant = \"{CONTOSO}\"\nusername = \"ann@contoso.test\"\npassword_file = '{}'", pw_file.1.display())),
            ("envpw", &format!("flow = \"password\"\ntenant = \"{CONTOSO}\"")),
            // Not ann: ann's sign-in (profile legacy) would serve any profile naming her.
            ("nopw", &format!("flow = \"password\"\ntenant = \"{CONTOSO}\"\nusername = \"bob@contoso.test\"")),
        ],
    );
    // No terminal, but nobody needs to be asked: the password flow runs unattended.
    let out = ok(run(sb.cmd_with(&["get-token", "-p", "legacy", "-r", "graph", "-o", "json"]).e("ANN_PASSWORD", "correct horse")));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["account"], "ann@contoso.test");
    let req = token_requests_with(&mock, "password").pop().unwrap();
    assert_eq!(req.form_get("username"), Some("ann@contoso.test"));
    assert!(req.form_get("scope").unwrap().contains("offline_access"));
    assert!(!text(&out.stderr).contains("correct horse"));
    // The next resource comes from the refresh token, not the password.
    ok(run(sb.cmd_with(&["get-token", "-p", "legacy", "-r", "storage"])));
    assert_eq!((mock.grant_count("password"), mock.grant_count("refresh_token")), (1, 1));

    // --no-cache: with the cache, these would reuse ann's sign-in from profile legacy.
    ok(run(sb.cmd_with(&["get-token", "-p", "filepw", "-r", "graph", "--no-cache"])));
    ok(run(sb.cmd_with(&["get-token", "-p", "envpw", "-r", "graph", "--no-cache"]).e("AZURE_USERNAME", "ann@contoso.test").e("AZURE_PASSWORD", "correct horse")));
    assert_eq!(mock.grant_count("password"), 3);

    // Without a password source and without a terminal: exit 3 at once, no request.
    let before = mock.token_requests();
    let out = run(sb.cmd_with(&["get-token", "-p", "nopw", "-r", "keyvault"]));
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("entra-token login -p nopw"));
    assert_eq!(mock.token_requests(), before);

    mock.require_mfa_for_password(true);
    let out = run(sb.cmd_with(&["get-token", "-p", "legacy", "-r", "keyvault", "--force"]).e("ANN_PASSWORD", "correct horse"));
    // Forced past the cache, the refresh token still serves: MFA does not matter there.
    assert!(out.status.success(), "{}", text(&out.stderr));
    ok(run(sb.cmd_with(&["logout", "-p", "legacy"])));
    let out = run(sb.cmd_with(&["get-token", "-p", "legacy", "-r", "keyvault"]).e("ANN_PASSWORD", "correct horse"));
    let err = text(&out.stderr);
    assert_eq!(code(&out), 3, "{err}");
    assert!(err.contains("multi-factor") && err.contains("AADSTS50076") && err.contains("--flow device-code"), "{err}");
}

#[test]
fn an_auto_profile_after_login_is_served_by_the_refresh_token() {
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("me", "tenant = \"organizations\"")]);
    // Nothing else applies here (no env credential, no managed identity, no az): the chain
    // ends at the person, who is not signed in and cannot be asked.
    let out = run(sb.cmd_with(&["get-token", "-p", "me", "-r", "graph"]));
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("entra-token login -p me"), "{}", text(&out.stderr));
    mock.approve_device_codes(0);
    ok(run(sb.cmd_with(&["login", "-p", "me"])));
    let out = ok(run(sb.cmd_with(&["get-token", "-p", "me", "-r", "graph", "-o", "json"])));
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
        .map(|r| sb.cmd_with(&["get-token", "-p", "dev", "-r", r]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap())
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

#[test]
fn interactive_false_never_prompts_but_login_still_works() {
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, &[("dev", "flow = \"device-code\"\ntenant = \"organizations\"\ninteractive = false")]);
    let out = run(sb.cmd_with(&["get-token", "-p", "dev"]));
    assert_eq!(code(&out), 3);
    assert!(text(&out.stderr).contains("interactive = false") && text(&out.stderr).contains("entra-token login -p dev"), "{}", text(&out.stderr));
    assert_eq!(mock.requests().len(), 0);
    login_dev(&mock, &sb);
    ok(run(sb.cmd_with(&["get-token", "-p", "dev", "-r", "graph"])));
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
        ok(run(sb.cmd_with(&["login", "-p", profile, "--flow", "password"]).e("AZURE_USERNAME", user).e("AZURE_PASSWORD", pw)));
    }
    for (profile, who) in [("alice", "alice@contoso.test"), ("bob", "bob@contoso.test"), ("alice", "alice@contoso.test")] {
        let out = ok(run(sb.cmd_with(&["get-token", "-p", profile, "-r", "graph", "-o", "json"]).e("AZURE_POD_IDENTITY_AUTHORITY_HOST", &imds)));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["account"], who, "profile {profile}");
    }
}
