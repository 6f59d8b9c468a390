//! The kubectl exec plugin, proven with the real kubectl: a local HTTPS API server that
//! answers only bearer tokens the mock authority issued, a kubeconfig whose user runs
//! `entra-token kubectl`, and the cache serving the second call.

// On Windows the helpers and imports of this suite's Unix-only tests go unused.
#![cfg_attr(windows, allow(unused_imports, dead_code, unused_mut))]

use crate::support;

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use crate::support::http::{Reply, Request, Server};
use crate::support::{MockAuthority, Sandbox, TestCa, jwt_claims, run, text};

const TENANT: &str = "contoso.test";
const APP: &str = "33333333-3333-3333-3333-333333333333";
const SECRET: &str = "aks~secret";
const AKS: &str = "6dae42f8-4368-4678-94ff-3960e28e3630";
pub(crate) const KUBECTL: &str = "/usr/bin/kubectl";
const PODS: &str = r#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"7"},"items":[]}"#;

// Unix only: for the real kubectl (/usr/bin/kubectl, a Linux program).
#[cfg(unix)]
pub(crate) fn kubectl_missing() -> bool {
    if Path::new(KUBECTL).exists() {
        return false;
    }
    support::skip::missing_tool(KUBECTL, "the real kubectl check");
    true
}

/// An API server on 127.0.0.1 (https, TestCa) that serves the pod list only to a bearer
/// token the mock authority issued, and records every Authorization header it saw.
pub(crate) struct ApiServer {
    pub(crate) server: Server,
    pub(crate) seen: Arc<Mutex<Vec<String>>>,
}

pub(crate) fn api_server(ca: &TestCa, authority: &Arc<MockAuthority>) -> ApiServer {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handler = {
        let (seen, authority) = (Arc::clone(&seen), Arc::clone(authority));
        Arc::new(move |req: Request| {
            let auth = req.header("authorization").unwrap_or("").to_string();
            seen.lock().unwrap().push(auth.clone());
            let token = auth.strip_prefix("Bearer ").unwrap_or("");
            if token.is_empty() || !authority.issued_access_tokens().iter().any(|t| t == token) {
                let status = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Unauthorized","code":401}"#;
                return Reply::new(401, "application/json", status);
            }
            match req.path.as_str() {
                "/api/v1/namespaces/default/pods" => Reply::new(200, "application/json", PODS),
                _ => Reply::new(404, "application/json", r#"{"kind":"Status","code":404}"#),
            }
        })
    };
    ApiServer { server: Server::start(handler, Some(ca.server_config())), seen }
}

struct Fixture {
    sb: Sandbox,
    mock: Arc<MockAuthority>,
    ca: TestCa,
    api: ApiServer,
}

fn fixture() -> Fixture {
    let mock = Arc::new(MockAuthority::start());
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some(SECRET));
    let ca = TestCa::new();
    let api = api_server(&ca, &mock);
    let sb = Sandbox::new();
    let url = mock.url();
    sb.write_config(&format!(
        r#"
[profiles.aks]
tenant = "{TENANT}"
client_id = "{APP}"
flow = "client-credentials"
client_secret_env = "AKS_SECRET"
authority = "{url}"

[profiles.other]
tenant = "{TENANT}"
client_id = "{APP}"
flow = "client-credentials"
client_secret_env = "AKS_SECRET"
authority = "{url}"

[profiles.person]
tenant = "{TENANT}"
flow = "device-code"
authority = "{url}"
"#
    ));
    Fixture { sb, mock, ca, api }
}

/// A kubeconfig with one cluster (optionally carrying exec config) and one exec user.
// Unix only: for the real kubectl (/usr/bin/kubectl, a Linux program).
#[cfg(unix)]
fn kubeconfig(f: &Fixture, api_version: &str, args: &[&str], cluster_config: Option<&str>, interactive_mode: &str) -> std::path::PathBuf {
    let ca_pem = f.ca.write_pem(&f.sb.path("ca"));
    let exe = env!("CARGO_BIN_EXE_entra-token");
    let args_yaml: String = args.iter().map(|a| format!("      - {a:?}\n")).collect();
    let (provide, extension) = match cluster_config {
        Some(cfg) => (
            "      provideClusterInfo: true\n",
            format!("    extensions:\n    - name: client.authentication.k8s.io/exec\n      extension: {cfg}\n"),
        ),
        None => ("", String::new()),
    };
    let mode = if interactive_mode.is_empty() { String::new() } else { format!("      interactiveMode: {interactive_mode}\n") };
    let text = format!(
        r#"apiVersion: v1
kind: Config
clusters:
- name: aks
  cluster:
    server: {server}
    certificate-authority: {ca}
{extension}contexts:
- name: aks
  context:
    cluster: aks
    user: entra
current-context: aks
users:
- name: entra
  user:
    exec:
      apiVersion: {api_version}
      command: {exe:?}
      args:
      - kubectl
{args_yaml}{mode}{provide}"#,
        server = f.api.server.url(),
        ca = ca_pem.display(),
    );
    f.sb.write_file("kube/config", text)
}

// Unix only: for the real kubectl (/usr/bin/kubectl, a Linux program).
#[cfg(unix)]
fn kubectl(f: &Fixture, config: &Path, extra: &[&str]) -> Command {
    let mut cmd = f.sb.tool(KUBECTL);
    cmd.env("KUBECONFIG", config).env("AKS_SECRET", SECRET).args(["get", "--raw", "/api/v1/namespaces/default/pods"]).args(extra);
    cmd
}

// Unix only: drives the real kubectl.
#[cfg(unix)]
#[test]
fn real_kubectl_v1_gets_our_token_and_the_second_call_is_cached() {
    if kubectl_missing() {
        return;
    }
    let f = fixture();
    let config = kubeconfig(&f, "client.authentication.k8s.io/v1", &["--profile", "aks"], None, "Never");
    let out = run(kubectl(&f, &config, &[]));
    assert!(out.status.success(), "kubectl failed: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), PODS);
    let issued = f.mock.issued_access_tokens();
    assert_eq!(issued.len(), 1);
    assert!(f.api.seen.lock().unwrap().contains(&format!("Bearer {}", issued[0])), "the API server never saw our token");
    let claims = jwt_claims(&issued[0]).unwrap();
    assert_eq!(claims["aud"], AKS, "the default resource is the AKS server id");

    let requests = f.mock.token_requests();
    let out = run(kubectl(&f, &config, &[]));
    assert!(out.status.success(), "second kubectl failed: {}", text(&out.stderr));
    assert_eq!(f.mock.token_requests(), requests, "the second kubectl call must be served from the cache");
    assert_eq!(f.api.seen.lock().unwrap().last().unwrap(), &format!("Bearer {}", issued[0]));
}

// Unix only: drives the real kubectl.
#[cfg(unix)]
#[test]
fn real_kubectl_v1beta1_without_interactive_mode() {
    if kubectl_missing() {
        return;
    }
    let f = fixture();
    let config = kubeconfig(&f, "client.authentication.k8s.io/v1beta1", &["--profile", "aks", "--resource", "api://my-cluster"], None, "");
    let out = run(kubectl(&f, &config, &[]));
    assert!(out.status.success(), "kubectl failed: {}", text(&out.stderr));
    let issued = f.mock.issued_access_tokens();
    assert_eq!(jwt_claims(&issued[0]).unwrap()["aud"], "api://my-cluster");
}

// Unix only: drives the real kubectl.
#[cfg(unix)]
#[test]
fn real_kubectl_honours_the_clusters_exec_config() {
    if kubectl_missing() {
        return;
    }
    let f = fixture();
    claim_the_api_server(&f, "other");
    let config = kubeconfig(&f, "client.authentication.k8s.io/v1", &[], Some(r#"{"profile":"other","resource":"api://per-cluster"}"#), "IfAvailable");
    let out = run(kubectl(&f, &config, &[]));
    assert!(out.status.success(), "kubectl failed: {}", text(&out.stderr));
    let issued = f.mock.issued_access_tokens();
    assert_eq!(issued.len(), 1);
    assert_eq!(jwt_claims(&issued[0]).unwrap()["aud"], "api://per-cluster");
    // The token was cached under profile "other": the plugin asked for nothing more.
    let direct = {
        let mut c = f.sb.cmd();
        c.env("AKS_SECRET", SECRET).args(["get-token", "-p", "other", "-r", "api://per-cluster"]);
        run(c)
    };
    assert!(direct.status.success(), "{}", text(&direct.stderr));
    assert_eq!(text(&direct.stdout).trim(), issued[0]);
    assert_eq!(f.mock.issued_access_tokens().len(), 1);
}

#[test]
fn plugin_answers_in_the_version_asked_with_an_early_expiry() {
    let f = fixture();
    for (info, want) in [
        (None, "client.authentication.k8s.io/v1beta1"),
        (Some(""), "client.authentication.k8s.io/v1beta1"),
        (Some(r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}"#), "client.authentication.k8s.io/v1"),
    ] {
        let mut c = f.sb.cmd();
        c.env("AKS_SECRET", SECRET).args(["kubectl", "-p", "aks"]);
        if let Some(i) = info {
            c.env("KUBERNETES_EXEC_INFO", i);
        }
        let out = run(c);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["apiVersion"], want);
        assert_eq!(v["kind"], "ExecCredential");
        let token = v["status"]["token"].as_str().unwrap();
        let exp = jwt_claims(token).unwrap()["exp"].as_i64().unwrap();
        let stamp = v["status"]["expirationTimestamp"].as_str().unwrap();
        assert!(stamp.ends_with('Z') && !stamp.contains('.'), "{stamp}");
        let reported = time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339).unwrap().unix_timestamp();
        assert_eq!(exp - reported, 300, "expirationTimestamp is five minutes before the token's exp");
    }
    let mut c = f.sb.cmd();
    c.env("AKS_SECRET", SECRET).env("KUBERNETES_EXEC_INFO", r#"{"apiVersion":"client.authentication.k8s.io/v2"}"#).args(["kubectl", "-p", "aks"]);
    let out = run(c);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).contains("client.authentication.k8s.io/v2"), "{}", text(&out.stderr));
    // A misspelt key in the cluster's exec config picks no identity: refused by name.
    let mut c = f.sb.cmd();
    c.env("AKS_SECRET", SECRET)
        .env("KUBERNETES_EXEC_INFO", r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false,"cluster":{"server":"https://x","config":{"profil":"other"}}}}"#)
        .args(["kubectl", "-p", "aks"]);
    let out = run(c);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).contains("unknown field `profil`, expected one of `profile`, `resource`, `tenant`"), "{}", text(&out.stderr));
}

#[test]
fn nobody_to_sign_in_fails_fast_with_the_command_to_run() {
    let f = fixture();
    let mut c = f.sb.cmd();
    c.env("KUBERNETES_EXEC_INFO", r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}"#)
        .args(["kubectl", "-p", "person"]);
    let started = std::time::Instant::now();
    let out = run(c);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("entra-token login -p person"), "{err}");
    assert!(out.stdout.is_empty());
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "failing fast, not waiting out a timeout");
    assert_eq!(f.mock.grant_count("urn:ietf:params:oauth:grant-type:device_code"), 0);
}

// Unix only: drives the real kubectl.
#[cfg(unix)]
#[test]
fn real_kubectl_shows_the_login_command_when_nobody_can_sign_in() {
    if kubectl_missing() {
        return;
    }
    let f = fixture();
    let config = kubeconfig(&f, "client.authentication.k8s.io/v1", &["--profile", "person"], None, "Never");
    let started = std::time::Instant::now();
    let out = run(kubectl(&f, &config, &[]));
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("exit code 3"), "kubectl reports our exit code: {err}");
    assert!(err.contains("entra-token login -p person"), "the user sees what to run: {err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "no waiting out a sign-in timeout");
    assert_eq!(f.mock.grant_count("urn:ietf:params:oauth:grant-type:device_code"), 0);
    assert!(f.api.seen.lock().unwrap().iter().all(|a| a.is_empty()), "no token reached the API server");
}

/// Adds `urls = [the API server]` to `profile` in the fixture's config.
#[cfg(unix)]
fn claim_the_api_server(f: &Fixture, profile: &str) {
    let text = std::fs::read_to_string(f.sb.path("config.toml")).unwrap();
    let header = format!("[profiles.{profile}]\n");
    assert!(text.contains(&header), "{text}");
    f.sb.write_config(&text.replace(&header, &format!("{header}urls = [\"{}\"]\n", f.api.server.url())));
}

/// A cluster entry is not the user's choice (a kubeconfig handed over with a cluster, a
/// tool that writes cluster entries): its exec extension may pick the profile, resource or
/// tenant only for a server a profile's `urls` claims, as every URL-based helper does.
/// Otherwise the cluster's API server could ask for, and receive, a token for another API
/// (Azure management here) or of another identity.
// Unix only: drives the real kubectl.
#[cfg(unix)]
#[test]
fn a_clusters_exec_config_picks_nothing_for_a_server_no_profile_claims() {
    if kubectl_missing() {
        return;
    }
    let f = fixture();
    let arm = r#"{"profile":"aks","resource":"https://management.azure.com"}"#;
    let config = kubeconfig(&f, "client.authentication.k8s.io/v1", &[], Some(arm), "IfAvailable");
    let out = run(kubectl(&f, &config, &[]));
    assert!(!out.status.success(), "kubectl sent the cluster a token its entry asked for");
    assert!(f.mock.issued_access_tokens().is_empty(), "a token was fetched for the cluster's choice");
    assert!(f.api.seen.lock().unwrap().iter().all(|a| a.is_empty()), "the API server saw a token");
    assert!(text(&out.stderr).contains("urls"), "{}", text(&out.stderr));
    // Another identity, by profile name: refused the same way.
    let config = kubeconfig(&f, "client.authentication.k8s.io/v1", &[], Some(r#"{"profile":"other"}"#), "IfAvailable");
    assert!(!run(kubectl(&f, &config, &[])).status.success());
    assert!(f.mock.issued_access_tokens().is_empty());
    // A profile claiming the server: its choice is honoured (`aks` claims it, `other` does not).
    claim_the_api_server(&f, "aks");
    assert!(!run(kubectl(&f, &config, &[])).status.success(), "profile 'other' does not claim the server");
    let config = kubeconfig(&f, "client.authentication.k8s.io/v1", &[], Some(r#"{"resource":"api://per-cluster"}"#), "IfAvailable");
    let out = run(kubectl(&f, &config, &[]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(jwt_claims(&f.mock.issued_access_tokens()[0]).unwrap()["aud"], "api://per-cluster");
}
