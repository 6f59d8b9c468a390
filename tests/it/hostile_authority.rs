//! A client secret (or refresh token) must never travel to a non-https, non-loopback
//! authority, whoever names it: a profile, AZURE_AUTHORITY_HOST, or a request's tenant.
//!
//! To prove nothing was sent (not just that the exit code was 1), every run has
//! HTTP_PROXY/HTTPS_PROXY pointing at a local listener: a request to `http://evil.test`
//! would have to go through it, and the listener records every byte it receives.

use crate::support;

use std::process::Output;
use crate::support::http::Trap;
use crate::support::{Sandbox, run_with_stdin};

const TENANT: &str = "contoso.test";
const APP: &str = "77777777-7777-7777-7777-777777777777";
const SECRET: &str = "never~leave~home~secret";

fn run(sb: &Sandbox, trap: &Trap, envs: &[(&str, &str)], args: &[&str], stdin: &str) -> Output {
    let mut c = sb.cmd();
    c.env("CI_SECRET", SECRET).env("HTTP_PROXY", &trap.url).env("HTTPS_PROXY", &trap.url).env("ALL_PROXY", &trap.url).env("NO_PROXY", "");
    for (k, v) in envs {
        c.env(k, v);
    }
    c.args(args);
    run_with_stdin(c, stdin)
}

fn assert_refused(o: &Output, case: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{case}: not refused: {err}");
    assert!(err.contains("is not https") || err.contains("not a tenant"), "{case}: unclear refusal: {err}");
    assert!(!err.contains(SECRET) && !String::from_utf8_lossy(&o.stdout).contains(SECRET), "{case}: the secret was printed");
}

/// Authority URLs that must be refused before any secret is read or sent.
const HOSTILE: &[&str] = &[
    "http://evil.test",
    "HTTP://EVIL.TEST",
    "http://login.microsoftonline.com",
    "http://127.0.0.1.evil.test",
    "http://localhost.evil.test",
    "http://127.0.0.1@evil.test",
    "http://evil.test\\@127.0.0.1",
    "http://evil.test:80@127.0.0.1",
    "http://127.1",
    "http://2130706433",
    "http://0x7f.0.0.1",
    "http://[::ffff:7f00:1].evil.test",
    "https://login.microsoftonline.com@evil.test",
    "ftp://127.0.0.1",
    "file:///etc/passwd",
    "//evil.test",
    "evil.test",
];

#[test]
fn profile_authority_must_be_https_or_loopback() {
    let trap = Trap::start();
    let sb = Sandbox::new();
    for a in HOSTILE {
        sb.write_config(&format!(
            "[profiles.ci]\nauthority = \"{}\"\ntenant = \"{TENANT}\"\nclient_id = \"{APP}\"\nflow = \"client-credentials\"\nclient_secret_env = \"CI_SECRET\"\n",
            a.replace('\\', "\\\\")
        ));
        let o = run(&sb, &trap, &[], &["get-token", "-p", "ci", "-r", "graph", "--timeout", "5s"], "");
        assert_refused(&o, a);
        let o = run(&sb, &trap, &[], &[], r#"{"resource":"graph","profile":"ci"}"#);
        assert_refused(&o, a);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{a}: no JSON error answer"));
        assert_eq!(v["error"]["code"], "bad_input", "{a}: {v}");
    }
    trap.assert_untouched_by("profile authority");
}

#[test]
fn environment_authority_must_be_https_or_loopback() {
    let trap = Trap::start();
    let sb = Sandbox::new();
    for a in HOSTILE {
        let envs = [("AZURE_TENANT_ID", TENANT), ("AZURE_CLIENT_ID", APP), ("AZURE_CLIENT_SECRET", SECRET), ("AZURE_AUTHORITY_HOST", a)];
        let o = run(&sb, &trap, &envs, &["get-token", "-r", "graph", "--timeout", "5s"], "");
        assert_refused(&o, a);
        // A profile from the file with no authority of its own takes AZURE_AUTHORITY_HOST too.
        sb.write_config(&format!("[profiles.ci]\ntenant = \"{TENANT}\"\nclient_id = \"{APP}\"\nflow = \"client-credentials\"\nclient_secret_env = \"CI_SECRET\"\n"));
        let o = run(&sb, &trap, &[("AZURE_AUTHORITY_HOST", a)], &["get-token", "-p", "ci", "-r", "graph", "--timeout", "5s"], "");
        assert_refused(&o, a);
        std::fs::remove_file(sb.path("config.toml")).unwrap();
    }
    trap.assert_untouched_by("AZURE_AUTHORITY_HOST");
}

#[test]
fn a_request_cannot_steer_the_tenant_out_of_the_authority() {
    let trap = Trap::start();
    let (mock, sb) = support::client_credentials_setup(TENANT, APP, SECRET);
    for t in ["@evil.test", "../../evil.test", "x/../../evil", "evil.test#", "evil.test?x=", "a b", "%2e%2e"] {
        let req = serde_json::json!({"resource": "graph", "profile": "ci", "tenant": t}).to_string();
        let o = run(&sb, &trap, &[("NO_PROXY", "127.0.0.1")], &[], &req);
        assert_refused(&o, t);
        let o = run(&sb, &trap, &[("NO_PROXY", "127.0.0.1")], &["get-token", "-p", "ci", "-r", "graph", "-t", t], "");
        assert_refused(&o, t);
    }
    assert_eq!(mock.token_requests(), 0, "a hostile tenant reached the token endpoint");
    trap.assert_untouched_by("request tenant");
}

#[test]
fn loopback_http_is_allowed_and_does_not_use_the_proxy() {
    // The control: the same setup with a loopback authority works, so the refusals above
    // are about the URL and not about the harness.
    let trap = Trap::start();
    let (mock, sb) = support::client_credentials_setup(TENANT, APP, SECRET);
    let o = run(&sb, &trap, &[("NO_PROXY", "127.0.0.1")], &["get-token", "-p", "ci", "-r", "graph"], "");
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(mock.token_requests(), 1);
    trap.assert_untouched_by("loopback");
}

#[test]
fn the_trap_sees_what_would_leave_the_machine() {
    // The control for the trap itself: an https authority that is not loopback does go
    // out through the proxy (as a CONNECT, so TLS protects the secret), and the trap sees it.
    let trap = Trap::start();
    let sb = Sandbox::new();
    sb.write_config(&format!(
        "[profiles.ci]\nauthority = \"https://evil.test\"\ntenant = \"{TENANT}\"\nclient_id = \"{APP}\"\nflow = \"client-credentials\"\nclient_secret_env = \"CI_SECRET\"\n"
    ));
    let o = run(&sb, &trap, &[], &["get-token", "-p", "ci", "-r", "graph", "--timeout", "2s"], "");
    assert_ne!(o.status.code(), Some(0));
    std::thread::sleep(std::time::Duration::from_millis(200));
    let seen = String::from_utf8_lossy(&trap.seen()).into_owned();
    assert!(seen.starts_with("CONNECT evil.test:443"), "the trap saw {seen:?}");
    assert!(!seen.contains(SECRET));
}

#[test]
fn a_kubeconfig_cluster_config_cannot_redirect_the_secret() {
    let trap = Trap::start();
    let (mock, sb) = support::client_credentials_setup(TENANT, APP, SECRET);
    // ci claims the cluster's server, so its exec config may pick (b386d0e): what it picks is still checked.
    sb.write_config(&support::CcProfile::new("ci", &mock.url(), TENANT, APP).with("urls = [\"https://aks.example/\"]\n").toml());
    let exec_info = |config: serde_json::Value| {
        serde_json::json!({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
            "spec": {"interactive": false, "cluster": {"server": "https://aks.example", "config": config}}})
        .to_string()
    };
    // Hostile tenants are refused before anything is sent.
    for t in ["@evil.test", "../../evil.test", "evil.test/x", "evil.test#"] {
        let info = exec_info(serde_json::json!({"profile": "ci", "tenant": t}));
        let o = run(&sb, &trap, &[("KUBERNETES_EXEC_INFO", &info), ("NO_PROXY", "127.0.0.1")], &["kubectl"], "");
        assert_refused(&o, t);
    }
    assert_eq!(mock.token_requests(), 0);
    // Authority-like keys in the cluster config are not settings: refused by name, nothing sent.
    for key in ["authority", "authority_host", "cloud"] {
        let info = exec_info(serde_json::json!({"profile": "ci", key: "http://evil.test"}));
        let o = run(&sb, &trap, &[("KUBERNETES_EXEC_INFO", &info), ("NO_PROXY", "127.0.0.1")], &["kubectl"], "");
        assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("unknown field `{key}`")), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(mock.token_requests(), 0);
    // The profile's own settings still work.
    let o = run(&sb, &trap, &[("KUBERNETES_EXEC_INFO", &exec_info(serde_json::json!({"profile": "ci"}))), ("NO_PROXY", "127.0.0.1")], &["kubectl"], "");
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(mock.token_requests(), 1, "the token came from the profile's own authority");
    trap.assert_untouched_by("kubeconfig cluster config");
}
