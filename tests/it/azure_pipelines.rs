//! Workload identity from Azure Pipelines, end to end through the binary: a stand-in for
//! Azure DevOps' OIDC endpoint on 127.0.0.1 (it checks the job's bearer token, the
//! api-version, the service connection and the headers azure-identity sends, and answers
//! `{"oidcToken": …}`), the mock Entra authority redeeming exactly that token as the client
//! assertion, the cache, every failure a pipeline author meets (each one line with its exit
//! code, none showing SYSTEM_ACCESSTOKEN), the `auto` chain, `doctor` and the conversion of
//! kubelogin's `--login azurepipelines` users driven by the real kubectl.

// On Windows the helpers and imports of this suite's Unix-only tests go unused.
#![cfg_attr(windows, allow(unused_imports, dead_code, unused_mut))]

use crate::support;

use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use crate::support::http::{Reply, Request, Server};
use crate::support::{Fault, MockAuthority, Sandbox, TestCa, jwt_claims, run, text, ok_stdout};

const TENANT: &str = "contoso.test";
const APP: &str = "77777777-7777-7777-7777-777777777777";
const CONNECTION: &str = "8a3f0c2e-1b4d-4e5f-9a6b-7c8d9e0f1a2b";
const OTHER_CONNECTION: &str = "0f9e8d7c-6b5a-4f3e-8d2c-1b0a9f8e7d6c";
/// The job's System.AccessToken: a secret that must never be shown.
const ACCESS_TOKEN: &str = "ado-job-access-token-6f1c9e2b7d";
const ARM: &str = "https://management.azure.com/";
const KUBECTL: &str = "/usr/bin/kubectl";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The OIDC token Azure DevOps issues for a service connection: the subject names it.
fn oidc_token(connection: &str) -> String {
    support::wire::jwt(&json!({
        "iss": "https://vstoken.dev.azure.com/11111111-2222-3333-4444-555555555555",
        "sub": format!("sc://contoso/web/{connection}"),
        "aud": "api://AzureADTokenExchange",
        // Fixed, so the stand-in and Entra's checker build the same token in different seconds.
        "exp": 4_102_444_800i64,
    }))
}

/// Azure DevOps' `…/jobs/{job}/oidctoken` endpoint: it checks what the real one checks
/// (the job's bearer, POST, api-version, a known connection) and answers `{"oidcToken": …}`,
/// or `answer` (when set) in its place. Headers it does not require are recorded and
/// asserted by the tests (and compared with azure-identity's own request).
struct Ado {
    server: Server,
    seen: Arc<Mutex<Vec<Request>>>,
}

type Answer = Box<dyn Fn(&Request) -> Reply + Send + Sync>;

impl Ado {
    fn start() -> Ado {
        Ado::answering(None)
    }

    fn answering(answer: Option<Answer>) -> Ado {
        let seen: Arc<Mutex<Vec<Request>>> = Arc::default();
        let log = Arc::clone(&seen);
        let handler = Arc::new(move |req: Request| {
            log.lock().unwrap().push(req.clone());
            if req.header("authorization") != Some(&format!("Bearer {ACCESS_TOKEN}")) {
                return Reply::json(401, &json!({"$id": "1", "message": "TF400813: The user '' is not authorized to access this resource."}));
            }
            let q = |k: &str| req.query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            let bad = req.method != "POST"
                || !req.path.ends_with("/oidctoken")
                || q("api-version").as_deref() != Some("7.1")
                || !req.body.is_empty();
            if bad {
                return Reply::json(400, &json!({"$id": "1", "message": format!("malformed request {} {} {:?}", req.method, req.path, req.query)}));
            }
            let Some(connection) = q("serviceConnectionId").filter(|c| [CONNECTION, OTHER_CONNECTION].contains(&c.as_str())) else {
                return Reply::json(404, &json!({"$id": "1", "message": "VS402360: The service connection does not exist or has not been authorized for use."}));
            };
            match &answer {
                Some(f) => f(&req),
                None => Reply::json(200, &json!({"oidcToken": oidc_token(&connection)})),
            }
        });
        Ado { server: Server::start(handler, None), seen }
    }

    /// What a pipeline sets as SYSTEM_OIDCREQUESTURI.
    fn uri(&self) -> String {
        format!("{}/contoso-project/_apis/distributedtask/hubs/build/plans/p-1/jobs/j-1/oidctoken", self.server.url())
    }

    fn requests(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }
}

fn entra() -> MockAuthority {
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_app(APP, None);
    // Entra redeems only a token its federated credential matches.
    mock.set_assertion_checker(|client, jwt, _| {
        let c = jwt_claims(jwt).ok_or("not a JWT")?;
        let connection = c["sub"].as_str().unwrap_or("").rsplit('/').next().unwrap_or("").to_string();
        if client != APP || c["aud"] != "api://AzureADTokenExchange" || jwt != oidc_token(&connection) {
            return Err(format!("no federated credential matches {c}"));
        }
        Ok(())
    });
    mock
}

fn assertions(mock: &MockAuthority) -> Vec<String> {
    mock.requests().iter().filter(|r| r.is_token_request()).filter_map(|r| r.form_get("client_assertion").map(str::to_string)).collect()
}

/// What AzureCLI@2 puts in a step's environment for its service connection (with the
/// job's token mapped), pointed at the stand-ins.
fn pipeline_env(c: &mut Command, ado: &Ado, mock: &MockAuthority, connection: &str) {
    c.env("AZURE_AUTHORITY_HOST", mock.url())
        .env("SYSTEM_OIDCREQUESTURI", ado.uri())
        .env("SYSTEM_ACCESSTOKEN", ACCESS_TOKEN)
        .env("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID", connection)
        .env("AZURESUBSCRIPTION_CLIENT_ID", APP)
        .env("AZURESUBSCRIPTION_TENANT_ID", TENANT)
        .env("PATH", "/nonexistent-bin");
}

fn profile_sandbox(mock: &MockAuthority) -> Sandbox {
    let sb = Sandbox::new();
    sb.write_config(&format!(
        "[profiles.ado]\nflow = \"workload-identity\"\nauthority = \"{}\"\ntenant = \"{TENANT}\"\nclient_id = \"{APP}\"\nservice_connection_id = \"{CONNECTION}\"\n",
        mock.url()
    ));
    sb
}

/// A `get-token -p ado` run in a pipeline step whose variables are `vars`.
fn get_token(sb: &Sandbox, vars: &[(&str, &str)], extra: &[&str]) -> Output {
    let mut c = sb.cmd();
    c.args(["get-token", "-p", "ado", "-r", ARM]).args(extra).env("PATH", "/nonexistent-bin");
    for (k, v) in vars {
        c.env(k, v);
    }
    run(c)
}

/// A failure: its exit code and its stderr, which must be one line without the job's token.
fn failure(o: &Output) -> (i32, String) {
    let err = text(&o.stderr);
    assert!(o.stdout.is_empty(), "stdout carries answers only: {}", text(&o.stdout));
    assert!(!err.contains(ACCESS_TOKEN), "SYSTEM_ACCESSTOKEN leaked: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    (o.status.code().unwrap_or(-1), err)
}

#[test]
fn a_service_connection_token_is_the_assertion_and_the_answer_is_cached() {
    let (mock, ado) = (entra(), Ado::start());
    let sb = profile_sandbox(&mock);
    let uri = ado.uri();
    let vars = [("SYSTEM_OIDCREQUESTURI", uri.as_str()), ("SYSTEM_ACCESSTOKEN", ACCESS_TOKEN)];
    let out = get_token(&sb, &vars, &["-vv"]);
    let token = ok_stdout(&out);
    assert!(!text(&out.stderr).contains(ACCESS_TOKEN), "a verbose log shows no job token: {}", text(&out.stderr));
    assert!(!text(&out.stderr).contains(&oidc_token(CONNECTION)), "nor the OIDC token");
    assert_eq!(mock.issued_access_tokens(), vec![token.clone()]);

    // Azure DevOps saw azure-identity's request: POST, bearer, api-version, connection, headers.
    let seen = ado.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].query, vec![("api-version".to_string(), "7.1".to_string()), ("serviceConnectionId".to_string(), CONNECTION.to_string())]);
    assert_eq!(seen[0].path, "/contoso-project/_apis/distributedtask/hubs/build/plans/p-1/jobs/j-1/oidctoken");
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].header("x-tfs-fedauthredirect"), Some("Suppress"), "a bad token must be a 401, not a sign-in page");
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    assert!(seen[0].body.is_empty());

    // Entra got exactly that OIDC token in a client-credentials grant.
    let grant = mock.requests().into_iter().rfind(|r| r.is_token_request()).unwrap();
    assert_eq!(grant.path, format!("/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(grant.form_get("grant_type"), Some("client_credentials"));
    assert_eq!(grant.form_get("client_id"), Some(APP));
    assert_eq!(grant.form_get("client_assertion_type"), Some(JWT_BEARER));
    assert_eq!(grant.form_get("client_assertion"), Some(oidc_token(CONNECTION).as_str()));
    assert_eq!(grant.form_get("scope"), Some("https://management.azure.com//.default"));
    assert_eq!(grant.form_get("client_secret"), None);

    // The cached path asks neither Azure DevOps nor Entra, and needs no job token at all.
    let before = mock.requests().len();
    let again = ok_stdout(&get_token(&sb, &[], &[]));
    assert_eq!(again, token);
    assert_eq!(ado.requests().len(), 1);
    assert_eq!(mock.requests().len(), before);
}

#[test]
fn auto_uses_the_azurecli_task_variables_and_keeps_connections_apart() {
    let (mock, ado) = (entra(), Ado::start());
    let sb = Sandbox::new();
    let token_for = |connection: &str| {
        let mut c = sb.cmd();
        c.args(["get-token", "-r", ARM]);
        pipeline_env(&mut c, &ado, &mock, connection);
        ok_stdout(&run(c))
    };
    let first = token_for(CONNECTION);
    assert_eq!(assertions(&mock), vec![oidc_token(CONNECTION)]);
    assert_eq!(token_for(CONNECTION), first, "served from the cache");
    assert_eq!(ado.requests().len(), 1);

    // Another service connection of the same app is another identity: not the cached token.
    let second = token_for(OTHER_CONNECTION);
    assert_ne!(second, first);
    assert_eq!(assertions(&mock), vec![oidc_token(CONNECTION), oidc_token(OTHER_CONNECTION)]);
    assert_eq!(ado.requests().iter().filter_map(|r| r.query.iter().find(|(k, _)| k == "serviceConnectionId").map(|(_, v)| v.clone())).collect::<Vec<_>>(), vec![CONNECTION, OTHER_CONNECTION]);
}

#[test]
fn an_unmapped_access_token_is_the_one_line_fix() {
    let (mock, ado) = (entra(), Ado::start());
    // A profile that names the connection: exit 1 with the YAML line to add.
    let sb = profile_sandbox(&mock);
    let uri = ado.uri();
    let (code, err) = failure(&get_token(&sb, &[("SYSTEM_OIDCREQUESTURI", uri.as_str())], &[]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("SYSTEM_ACCESSTOKEN is not set") && err.contains("env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)"), "{err}");

    // `auto` in an AzureCLI@2 step without the mapping: it moves on, and its final message says why.
    let mut c = sb.cmd();
    c.args(["get-token", "-r", ARM]);
    pipeline_env(&mut c, &ado, &mock, CONNECTION);
    c.env_remove("SYSTEM_ACCESSTOKEN");
    // Its first line says what to do; each source's reason follows on its own line.
    let out = run(c);
    let (code, err) = (out.status.code().unwrap_or(-1), text(&out.stderr));
    assert!(out.stdout.is_empty() && !err.contains(ACCESS_TOKEN), "{err}");
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("workload identity: SYSTEM_ACCESSTOKEN is not set in this step") && err.contains("$(System.AccessToken)"), "{err}");
    assert!(ado.requests().is_empty() && mock.token_requests() == 0, "nothing was asked without the token");
}

#[test]
fn refusals_and_odd_answers_from_azure_devops() {
    let mock = entra();
    let sb = profile_sandbox(&mock);
    let cases: Vec<(Answer, i32, &[&str])> = vec![
        // Azure DevOps echoing the caller's token must not put it on our stderr.
        (Box::new(|r: &Request| Reply::json(403, &json!({"$id": "1", "message": format!("Access denied: {} needs Use permission", r.header("authorization").unwrap_or(""))}))), 3, &["HTTP 403", "Access denied", "Pipeline permissions", CONNECTION]),
        (Box::new(|_: &Request| Reply::json(401, &json!({"$id": "1", "message": "TF400813: not authorized"}))), 3, &["HTTP 401", "$(System.AccessToken)"]),
        (Box::new(|_: &Request| Reply::json(200, &json!({"id": "x"}))), 4, &["no `oidcToken`", "workload identity federation"]),
        (Box::new(|_: &Request| Reply::new(200, "text/html", "<!DOCTYPE html><html><title>Sign In</title></html>")), 4, &["HTML page", "SYSTEM_OIDCREQUESTURI"]),
    ];
    for (answer, want, says) in cases {
        let ado = Ado::answering(Some(answer));
        let uri = ado.uri();
        let (code, err) = failure(&get_token(&sb, &[("SYSTEM_OIDCREQUESTURI", uri.as_str()), ("SYSTEM_ACCESSTOKEN", ACCESS_TOKEN)], &[]));
        assert_eq!(code, want, "{err}");
        for s in says {
            assert!(err.contains(s), "missing {s:?}: {err}");
        }
        assert_eq!(ado.requests().len(), 1, "4xx and 200 answers are not retried");
        assert_eq!(mock.token_requests(), 0, "Entra is not asked without an assertion");
    }
    // A wrong service connection id: Azure DevOps' own words and what the id is.
    let ado = Ado::start();
    sb.write_config(&format!("[profiles.ado]\nflow = \"workload-identity\"\nauthority = \"{}\"\ntenant = \"{TENANT}\"\nclient_id = \"{APP}\"\nservice_connection_id = \"my-connection-name\"\n", mock.url()));
    let uri = ado.uri();
    let (code, err) = failure(&get_token(&sb, &[("SYSTEM_OIDCREQUESTURI", uri.as_str()), ("SYSTEM_ACCESSTOKEN", ACCESS_TOKEN)], &[]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("VS402360") && err.contains("not its name"), "{err}");
}

#[test]
fn network_failure_timeout_and_insecure_uri() {
    let mock = entra();
    let sb = profile_sandbox(&mock);
    let refused = format!("{}/_apis/oidctoken", support::refused_url());
    let (code, err) = failure(&get_token(&sb, &[("SYSTEM_OIDCREQUESTURI", refused.as_str()), ("SYSTEM_ACCESSTOKEN", ACCESS_TOKEN)], &[]));
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("connection refused"), "{err}");

    let ado = Ado::answering(Some(Box::new(|_: &Request| Reply { status: 200, headers: Vec::new(), body: support::http::Body::Hang })));
    let uri = ado.uri();
    let started = std::time::Instant::now();
    let (code, err) = failure(&get_token(&sb, &[("SYSTEM_OIDCREQUESTURI", uri.as_str()), ("SYSTEM_ACCESSTOKEN", ACCESS_TOKEN)], &["--timeout", "2s"]));
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("timed out") && started.elapsed() < std::time::Duration::from_secs(10), "{err}");

    // Plain http off loopback is refused before any connection: a proxy that would see
    // such a connection is a refused local port, so a regression fails here (exit 4), safely.
    let proxy = support::refused_url();
    let insecure = [("SYSTEM_OIDCREQUESTURI", "http://dev.azure.example/_apis/oidctoken"), ("SYSTEM_ACCESSTOKEN", ACCESS_TOKEN), ("HTTP_PROXY", proxy.as_str()), ("http_proxy", proxy.as_str()), ("ALL_PROXY", proxy.as_str())];
    let (code, err) = failure(&get_token(&sb, &insecure, &[]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("SYSTEM_OIDCREQUESTURI") && err.contains("not https"), "{err}");
    assert_eq!(mock.token_requests(), 0);
}

#[test]
fn a_federated_credential_mismatch_names_the_issuer_and_subject() {
    let (mock, ado) = (entra(), Ado::start());
    let sb = profile_sandbox(&mock);
    // What Entra answers when the app has no credential for this subject (the mock adds "AADSTS700213: ").
    let body = support::wire::AadError::invalid_client(
        700213,
        "No matching federated identity record found for presented assertion subject 'sc://contoso/web/8a3f0c2e-1b4d-4e5f-9a6b-7c8d9e0f1a2b'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.",
    )
    .body();
    mock.push_fault(Fault::Status { status: 401, body: body.to_string(), retry_after: None });
    let uri = ado.uri();
    let (code, err) = failure(&get_token(&sb, &[("SYSTEM_OIDCREQUESTURI", uri.as_str()), ("SYSTEM_ACCESSTOKEN", ACCESS_TOKEN)], &[]));
    assert_eq!(code, 3, "{err}");
    assert_eq!(err.matches("AADSTS700213").count(), 1, "{err}");
    assert!(err.contains("issuer 'https://vstoken.dev.azure.com/11111111-2222-3333-4444-555555555555'") && err.contains(&format!("subject 'sc://contoso/web/{CONNECTION}'")), "{err}");
    assert!(err.contains(APP) && err.contains("Federated credentials"), "{err}");
    assert!(!err.contains(&oidc_token(CONNECTION)), "the token itself is never shown: {err}");
}

#[test]
fn doctor_reports_the_service_connection_and_the_missing_mapping() {
    let (mock, ado) = (entra(), Ado::start());
    let sb = Sandbox::new();
    let doctor = |token: bool| {
        let mut c = sb.cmd();
        c.args(["doctor", "--offline", "-o", "json"]);
        pipeline_env(&mut c, &ado, &mock, CONNECTION);
        if !token {
            c.env_remove("SYSTEM_ACCESSTOKEN");
        }
        let out = run(c);
        assert!(!text(&out.stdout).contains(ACCESS_TOKEN) && !text(&out.stderr).contains(ACCESS_TOKEN));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
        let checks = v["checks"].as_array().unwrap().clone();
        let find = |n: &str| checks.iter().find(|c| c["name"] == n).cloned().unwrap_or_else(|| panic!("no {n} check: {v}"));
        (find("pipelines"), find("auto"))
    };
    let (pipelines, auto) = doctor(true);
    assert_eq!(pipelines["status"], "ok", "{pipelines}");
    assert!(pipelines["message"].as_str().unwrap().contains(CONNECTION), "{pipelines}");
    assert!(auto["message"].as_str().unwrap().contains(&format!("workload identity (Azure Pipelines service connection {CONNECTION})")), "{auto}");
    let (pipelines, auto) = doctor(false);
    assert_eq!(pipelines["status"], "fail", "{pipelines}");
    assert!(pipelines["fix"].as_str().unwrap().contains("env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)"), "{pipelines}");
    assert!(!auto["message"].as_str().unwrap().contains("workload identity"), "auto would not pick it: {auto}");
    assert!(ado.requests().is_empty(), "doctor never asks for a token");
}

// Unix only: drives the real kubectl (/usr/bin/kubectl).
#[cfg(unix)]
#[test]
fn kubelogin_azurepipelines_users_convert_and_the_real_kubectl_works() {
    if !std::path::Path::new(KUBECTL).exists() {
        support::skip::missing_tool(KUBECTL, "the real kubectl check");
        return;
    }
    let (mock, ado) = (Arc::new(entra()), Ado::start());
    let ca = TestCa::new();
    let api = crate::kubectl::api_server(&ca, &mock);
    let sb = Sandbox::new();
    let ca_pem = ca.write_pem(&sb.path("ca"));
    // kubelogin's documented pipeline form: only the server id, the rest from AzureCLI@2's variables.
    let kubeconfig = sb.write_file(
        "kube/config",
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: aks\n  cluster:\n    server: {}\n    certificate-authority: {}\ncontexts:\n- name: aks\n  context: {{cluster: aks, user: pipeline}}\ncurrent-context: aks\nusers:\n- name: pipeline\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: kubelogin\n      args: [get-token, --login, azurepipelines, --server-id, 6dae42f8-4368-4678-94ff-3960e28e3630]\n",
            api.server.url(),
            ca_pem.display()
        ),
    );
    let mut c = sb.cmd();
    c.env("KUBECONFIG", &kubeconfig).args(["setup", "kubectl", "--from-kubelogin", "--apply"]);
    ok_stdout(&run(c));
    let config = std::fs::read_to_string(sb.path("config.toml")).unwrap();
    assert!(config.contains("flow = \"workload-identity\"") && !config.contains("client_id"), "{config}");

    let mut c = sb.tool(KUBECTL);
    c.env("KUBECONFIG", &kubeconfig).args(["get", "--raw", "/api/v1/namespaces/default/pods"]);
    pipeline_env(&mut c, &ado, &mock, CONNECTION);
    ok_stdout(&run(c));
    let issued = mock.issued_access_tokens();
    assert_eq!(issued.len(), 1);
    assert_eq!(jwt_claims(&issued[0]).unwrap()["aud"], "6dae42f8-4368-4678-94ff-3960e28e3630");
    assert_eq!(assertions(&mock), vec![oidc_token(CONNECTION)]);
    assert_eq!(ado.requests().len(), 1);

    // With the id written into kubelogin's args, the profile names the connection itself.
    let mut c = sb.cmd();
    c.env("KUBECONFIG", sb.write_file("kube/explicit", format!(
        "apiVersion: v1\nkind: Config\nusers:\n- name: p2\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: kubelogin\n      args: [get-token, --login, azurepipelines, --server-id, s2, --client-id, {APP}, --tenant-id, {TENANT}, --azure-pipelines-service-connection-id, {OTHER_CONNECTION}]\n"
    )))
    .args(["setup", "kubectl", "--from-kubelogin", "--apply"]);
    ok_stdout(&run(c));
    let config = std::fs::read_to_string(sb.path("config.toml")).unwrap();
    assert!(config.contains(&format!("service_connection_id = \"{OTHER_CONNECTION}\"")) && config.contains(&format!("client_id = \"{APP}\"")), "{config}");
}

/// python3 with azure-identity, or None (and why) when this machine lacks it.
// Unix only: Python's azure-identity is installed for Linux here.
#[cfg(unix)]
fn python() -> Option<String> {
    let found = Command::new("python3").args(["-c", "import azure.identity, sys; print(sys.executable)"]).output().ok()?;
    if !found.status.success() {
        support::skip::missing_tool("python3 with azure-identity", "the real azure-identity check");
        return None;
    }
    Some(text(&found.stdout).trim().to_string())
}

const AZURE_IDENTITY: &str = r#"
import os
from azure.identity import AzurePipelinesCredential
c = AzurePipelinesCredential(tenant_id=os.environ["AZURESUBSCRIPTION_TENANT_ID"], client_id=os.environ["AZURESUBSCRIPTION_CLIENT_ID"],
    service_connection_id=os.environ["AZURESUBSCRIPTION_SERVICE_CONNECTION_ID"], system_access_token=os.environ["SYSTEM_ACCESSTOKEN"],
    authority=os.environ["AZURE_AUTHORITY_HOST"], disable_instance_discovery=True)
print(c.get_token("https://management.azure.com/.default").token)
"#;

/// azure-identity's AzurePipelinesCredential is the reference: against the same stand-ins it
/// gets a token, so the stand-in speaks the real contract, and our request to Azure DevOps
/// and our grant to Entra match the ones it sends.
// Unix only: drives Python's azure-identity.
#[cfg(unix)]
#[test]
fn the_request_matches_azure_identitys_azure_pipelines_credential() {
    let Some(python) = python() else { return };
    let ca = TestCa::new();
    let mock = MockAuthority::start_https(&ca);
    mock.add_tenant(TENANT);
    mock.add_app(APP, None);
    let ado = Ado::start();
    let sb = Sandbox::new();
    let ca_pem = ca.write_pem(&sb.path("ca"));

    let mut c = sb.tool(&python);
    c.args(["-c", AZURE_IDENTITY]).env("REQUESTS_CA_BUNDLE", &ca_pem).env_remove("PYTHONPATH");
    pipeline_env(&mut c, &ado, &mock, CONNECTION);
    let theirs = ok_stdout(&run(c));
    assert_eq!(mock.issued_access_tokens(), vec![theirs]);

    let mut c = sb.cmd();
    c.args(["get-token", "-r", "https://management.azure.com"]).env("SSL_CERT_FILE", &ca_pem);
    pipeline_env(&mut c, &ado, &mock, CONNECTION);
    let ours = ok_stdout(&run(c));
    assert_eq!(mock.issued_access_tokens().last(), Some(&ours));

    let seen = ado.requests();
    assert_eq!(seen.len(), 2);
    let shape = |r: &Request| {
        let h = |n: &str| r.header(n).map(str::to_string);
        (r.method.clone(), r.path.clone(), r.query.clone(), h("authorization"), h("x-tfs-fedauthredirect"), h("content-type"), r.body.clone())
    };
    assert_eq!(shape(&seen[1]), shape(&seen[0]), "ours (right) differs from azure-identity's (left)");

    let grants: Vec<_> = mock.requests().into_iter().filter(|r| r.is_token_request()).collect();
    assert_eq!(grants.len(), 2);
    for k in ["grant_type", "client_id", "client_assertion_type", "client_assertion", "scope"] {
        assert_eq!(grants[1].form_get(k), grants[0].form_get(k), "{k}");
    }
    assert_eq!(grants[0].path, grants[1].path);
}

/// `profile add --service-connection-id` writes a profile that works as it is: the token
/// request runs through it to this stand-in and to Entra, and its connection wins over the
/// one AzureCLI@2 exported for the step.
#[test]
fn profile_add_with_a_service_connection_writes_a_working_profile() {
    let (mock, ado) = (entra(), Ado::start());
    let sb = Sandbox::new();
    let mut add = sb.cmd();
    add.args(["profile", "add", "ado", "--flow", "workload-identity", "--tenant", TENANT, "--client-id", APP, "--service-connection-id", CONNECTION])
        .args(["--authority", &mock.url(), "--no-prompt"]);
    let out = run(add);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(sb.path("config.toml")).unwrap();
    assert!(written.contains(&format!("service_connection_id = \"{CONNECTION}\"")), "{written}");

    let uri = ado.uri();
    let vars = [("SYSTEM_OIDCREQUESTURI", uri.as_str()), ("SYSTEM_ACCESSTOKEN", ACCESS_TOKEN), ("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID", OTHER_CONNECTION)];
    let token = ok_stdout(&get_token(&sb, &vars, &[]));
    assert_eq!(mock.issued_access_tokens(), vec![token]);
    let seen = ado.requests();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].query.contains(&("serviceConnectionId".to_string(), CONNECTION.to_string())), "{:?}", seen[0].query);
    assert_eq!(assertions(&mock), vec![oidc_token(CONNECTION)]);

    // --update to a token file drops the connection (the two are exclusive), and back.
    let mut upd = sb.cmd();
    upd.args(["profile", "add", "ado", "--update", "--federated-token-file", "/var/run/token"]);
    assert!(run(upd).status.success());
    let written = std::fs::read_to_string(sb.path("config.toml")).unwrap();
    assert!(written.contains("federated_token_file = \"/var/run/token\"") && !written.contains("service_connection_id"), "{written}");
    let mut upd = sb.cmd();
    upd.args(["profile", "add", "ado", "--update", "--service-connection-id", CONNECTION]);
    let out = run(upd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(sb.path("config.toml")).unwrap();
    assert!(!written.contains("federated_token_file") && written.contains("service_connection_id"), "{written}");
}
