//! kubectl on an Azure Arc cluster with PoP tokens (docs/pop.md), proven with the real
//! kubectl: kubeconfig exec args as kubelogin's (`--pop-enabled --pop-claims "u=<ARM id>"`),
//! and an API-server stand-in that admits a request only with a signed HTTP request (SHR)
//! it verifies (signature with `cnf.jwk`, thumbprint bound to the token, `ts` window, `u`,
//! a nonce) over a token the stand-in authority issued; another kubectl process brings a new SHR.

#![cfg(unix)]

use crate::support::http::{Reply, Request, Server};
use crate::support::pop::verify_shr;
use crate::support::{MockAuthority, Sandbox, TestCa, run, text};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const TENANT: &str = "contoso.test";
const APP: &str = "88888888-8888-4888-8888-888888888888";
const SECRET: &str = "arc~secret";
const KUBECTL: &str = "/usr/bin/kubectl";
const AKS: &str = "6dae42f8-4368-4678-94ff-3960e28e3630";
const ARC: &str = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/arc1";
const PODS: &str = r#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"7"},"items":[]}"#;

/// Every request's verdict: Ok((the SHR's nonce, its key id)) or why it was refused.
type Seen = Arc<Mutex<Vec<Result<(String, String), String>>>>;

fn api_server(ca: &TestCa, authority: &Arc<MockAuthority>) -> (Server, Seen) {
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let handler = {
        let (seen, authority) = (Arc::clone(&seen), Arc::clone(authority));
        Arc::new(move |req: Request| {
            let shr = req.header("authorization").unwrap_or("").strip_prefix("Bearer ").unwrap_or("").to_string();
            let verdict = verify_shr(&shr).and_then(|v| {
                if v.u.as_deref() != Some(ARC) {
                    return Err(format!("u is {:?}, not the cluster's ARM id", v.u));
                }
                if !authority.issued_access_tokens().contains(&v.at) {
                    return Err("the token inside is none the authority issued".into());
                }
                Ok((v.nonce, v.kid))
            });
            // client-go keeps one answer for every request of its process (as with
            // kubelogin), so one SHR may come several times; the test compares processes.
            seen.lock().unwrap().push(verdict.clone());
            if verdict.is_err() {
                return Reply::new(401, "application/json", r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Unauthorized","code":401}"#);
            }
            Reply::new(200, "application/json", PODS)
        })
    };
    (Server::start(handler, Some(ca.server_config())), seen)
}

/// What each real-kubectl test starts from: the authority with the cluster's app, the
/// API-server stand-in, a sandbox. None (said SKIPPED) without kubectl or ssh-keygen.
struct ArcCluster {
    mock: Arc<MockAuthority>,
    ca: TestCa,
    server: Server,
    seen: Seen,
    sb: Sandbox,
}

fn arc() -> Option<ArcCluster> {
    if !Path::new(KUBECTL).exists() {
        crate::support::skip::missing_tool(KUBECTL, "kubectl with PoP tokens");
        return None;
    }
    if std::process::Command::new("ssh-keygen").arg("-?").output().is_err() {
        crate::support::skip::missing_tool("ssh-keygen", "kubectl with PoP tokens");
        return None;
    }
    let mock = Arc::new(MockAuthority::start());
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some(SECRET));
    let ca = TestCa::new();
    let (server, seen) = api_server(&ca, &mock);
    Some(ArcCluster { mock, ca, server, seen, sb: Sandbox::new() })
}

fn kubeconfig(sb: &Sandbox, ca: &TestCa, server: &Server, args: &[&str]) -> PathBuf {
    let ca_pem = ca.write_pem(&sb.path("ca"));
    let exe = env!("CARGO_BIN_EXE_entra-token");
    let args_yaml: String = args.iter().map(|a| format!("      - {a:?}\n")).collect();
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: arc\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\ncontexts:\n- name: arc\n  context:\n    cluster: arc\n    user: entra\ncurrent-context: arc\nusers:\n- name: entra\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {exe:?}\n      args:\n      - kubectl\n{args_yaml}      interactiveMode: Never\n",
        server = server.url(),
        ca = ca_pem.display(),
    );
    sb.write_file(&format!("kube/config-{}", args.len()), text)
}

fn kubectl(sb: &Sandbox, config: &Path) -> std::process::Output {
    let mut cmd = sb.tool(KUBECTL);
    cmd.env("KUBECONFIG", config).env("ARC_SECRET", SECRET).args(["get", "--raw", "/api/v1/namespaces/default/pods"]);
    run(cmd)
}

#[test]
fn real_kubectl_reaches_an_arc_cluster_with_a_verified_shr_and_reuses_the_bound_token() {
    let Some(ArcCluster { mock, ca, server, seen, sb }) = arc() else { return };
    sb.write_config(&format!(
        "[profiles.arc]\ntenant = \"{TENANT}\"\nclient_id = \"{APP}\"\nflow = \"client-credentials\"\nclient_secret_env = \"ARC_SECRET\"\nauthority = \"{}\"\n",
        mock.url()
    ));
    let pop = kubeconfig(&sb, &ca, &server, &["-p", "arc", "--pop-enabled", "--pop-claims", &format!("u={ARC}")]);

    let out = kubectl(&sb, &pop);
    assert!(out.status.success(), "kubectl failed: {}\nserver saw: {:?}", text(&out.stderr), seen.lock().unwrap());
    assert_eq!(text(&out.stdout).trim(), PODS);
    assert_eq!(mock.token_requests(), 1);
    let form = mock.requests().into_iter().rev().find(|r| r.form_get("grant_type").is_some()).unwrap();
    assert_eq!(form.form_get("token_type"), Some("pop"));

    let first: Vec<String> = seen.lock().unwrap().drain(..).map(|v| v.unwrap().0).collect();

    // Another kubectl process: the cached bound token, a new SHR the server has not seen.
    let out = kubectl(&sb, &pop);
    assert!(out.status.success(), "second kubectl failed: {}\nserver saw: {:?}", text(&out.stderr), seen.lock().unwrap());
    assert_eq!(mock.token_requests(), 1, "the second call must use the cached PoP token");
    let second: Vec<String> = seen.lock().unwrap().iter().cloned().map(|v| v.unwrap().0).collect();
    assert!(!second.is_empty() && second.iter().all(|n| !first.contains(n)), "an SHR of the first process came again: {first:?} {second:?}");

    // The server has teeth: the same user without --pop-enabled sends a bearer token, refused.
    let bearer = kubeconfig(&sb, &ca, &server, &["-p", "arc"]);
    let out = kubectl(&sb, &bearer);
    assert!(!out.status.success(), "a bearer token got past the PoP check");
    assert!(seen.lock().unwrap().last().unwrap().is_err());
}

/// A child process stopped when the test ends, passed or not.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The cache directory's `popkey-*.json` files.
fn key_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|rd| rd.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("popkey-") && e.file_name().to_string_lossy().ends_with(".json")).count()).unwrap_or(0)
}

/// Through the token agent (ENTRA_TOKEN_AGENT), as an SSH certificate: the remote host
/// keeps its own PoP key and sends only the public key; the agent gets a token bound to it
/// with its own sign-in (cached there under that key) and the remote signs the SHR.
#[test]
fn through_the_token_agent_a_remote_kubectl_signs_with_its_own_key_over_the_agents_token() {
    if !Path::new(KUBECTL).exists() || std::process::Command::new("ssh-keygen").arg("-?").output().is_err() {
        crate::support::skip::missing_tool("kubectl and ssh-keygen", "kubectl with PoP tokens through the agent");
        return;
    }
    let mock = Arc::new(MockAuthority::start());
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some(SECRET));
    let ca = TestCa::new();
    let (server, seen) = api_server(&ca, &mock);
    let laptop = Sandbox::new();
    laptop.write_config(&format!(
        "[profiles.arc]\ntenant = \"{TENANT}\"\nclient_id = \"{APP}\"\nflow = \"client-credentials\"\nclient_secret_env = \"ARC_SECRET\"\nauthority = \"{}\"\n",
        mock.url()
    ));
    let mut agent = crate::agent::start_agent_with(&laptop, &["--allow-profile", "arc"], &[("ARC_SECRET", SECRET)]);
    let agent_log = agent.stderr.take().unwrap();
    let agent = Stopped(agent);
    // The remote: nothing configured, no secret, only ENTRA_TOKEN_AGENT (and no keyring).
    let (remote, on_remote) = crate::agent::client(&laptop.path("run/entra-token/agent.sock"));
    let config = kubeconfig(&remote, &ca, &server, &["-p", "arc", "--pop-enabled", "--pop-claims", &format!("u={ARC}")]);
    let kubectl_on_remote = || {
        let template = on_remote(&[]);
        let mut cmd = std::process::Command::new(KUBECTL);
        for (k, v) in template.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.current_dir(template.get_current_dir().unwrap()).env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent").env("KUBECONFIG", &config);
        cmd.args(["get", "--raw", "/api/v1/namespaces/default/pods"]);
        run(cmd)
    };
    let out = kubectl_on_remote();
    assert!(out.status.success(), "kubectl failed: {}\nserver saw: {:?}", text(&out.stderr), seen.lock().unwrap());
    assert_eq!(text(&out.stdout).trim(), PODS);
    let (nonce, kid) = seen.lock().unwrap().drain(..).next().unwrap().unwrap();
    // The agent asked Entra for a token bound to the remote's key, and keeps no key itself;
    // the remote keeps its key and no token.
    let form = mock.requests().into_iter().rev().find(|r| r.form_get("grant_type").is_some()).unwrap();
    let cnf: serde_json::Value = serde_json::from_slice(&crate::support::wire::b64url_decode(form.form_get("req_cnf").unwrap()).unwrap()).unwrap();
    assert_eq!((form.form_get("token_type"), cnf["kid"].as_str()), (Some("pop"), Some(kid.as_str())));
    assert_eq!((key_files(&remote.path("cache")), key_files(&laptop.path("cache"))), (1, 0));
    let remote_files: Vec<String> = std::fs::read_dir(remote.path("cache")).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert!(remote_files.iter().all(|n| !n.starts_with("at-")), "the remote cached a token: {remote_files:?}");
    let bound: Vec<serde_json::Value> = std::fs::read_dir(laptop.path("cache")).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with("at-") && e.file_name().to_string_lossy().ends_with(".json")).map(|e| serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap()).collect();
    assert!(bound.iter().any(|e| e["bound"]["key_id"] == kid.as_str()), "the agent did not cache it under the key id: {bound:?}");

    // Another kubectl process: the agent's cached token, the same remote key, a new SHR.
    let out = kubectl_on_remote();
    assert!(out.status.success(), "second kubectl failed: {}", text(&out.stderr));
    let (nonce2, kid2) = seen.lock().unwrap().drain(..).next().unwrap().unwrap();
    assert_eq!((kid2.as_str(), mock.token_requests()), (kid.as_str(), 1));
    assert_ne!(nonce2, nonce);
    drop(agent);
    let mut said = String::new();
    std::io::Read::read_to_string(&mut { agent_log }, &mut said).unwrap();
    assert!(said.contains(&format!("a PoP token for the key {}", &kid[..16])), "the agent says what it gave: {said}");
}

#[test]
fn a_kubelogin_pop_user_converted_by_setup_reaches_the_arc_cluster_with_real_kubectl() {
    let Some(ArcCluster { mock, ca, server, seen, sb }) = arc() else { return };
    let ca_pem = ca.write_pem(&sb.path("ca"));
    let kubeconfig = sb.write_file(
        "kube/kubelogin",
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: arc\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\ncontexts:\n- name: arc\n  context:\n    cluster: arc\n    user: arc-user\ncurrent-context: arc\nusers:\n- name: arc-user\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: kubelogin\n      args: [get-token, --login, spn, --server-id, {AKS}, --client-id, {APP}, --tenant-id, {TENANT}, --authority-host, {authority}, --pop-enabled, --pop-claims, \"u={ARC}\"]\n",
            server = server.url(),
            ca = ca_pem.display(),
            authority = mock.url(),
        ),
    );
    let mut c = sb.cmd();
    c.env("KUBECONFIG", &kubeconfig).args(["setup", "kubectl", "--from-kubelogin", "--apply"]);
    let out = run(c);
    assert!(out.status.success(), "setup failed: {}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("ignoring kubelogin flags"), "{}", text(&out.stderr));
    let mut cmd = sb.tool(KUBECTL);
    cmd.env("KUBECONFIG", &kubeconfig).env("AAD_SERVICE_PRINCIPAL_CLIENT_SECRET", SECRET).args(["get", "--raw", "/api/v1/namespaces/default/pods"]);
    let out = run(cmd);
    assert!(out.status.success(), "kubectl failed: {}\nserver saw: {:?}", text(&out.stderr), seen.lock().unwrap());
    assert_eq!(text(&out.stdout).trim(), PODS);
    assert!(!seen.lock().unwrap().is_empty() && seen.lock().unwrap().iter().all(Result::is_ok));
}

#[test]
fn the_plugin_refuses_pop_flags_that_bind_nothing() {
    let sb = Sandbox::new();
    let mut cmd = sb.cmd();
    cmd.args(["kubectl", "--pop-enabled"]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("go together"), "{}", text(&out.stderr));
    let mut cmd = sb.cmd();
    cmd.args(["kubectl", "--pop-enabled", "--pop-claims", "p=/x"]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("u=<the cluster's ARM id>"), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
}
