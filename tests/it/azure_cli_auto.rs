//! Azure CLI reuse and the `auto` chain, through the binary against local stand-ins.
//! az's token cache is written by the real MSAL for Python (the library az itself uses)
//! signing in to the https mock; `az` itself is a recording stand-in script; `auto` is
//! shown picking each source in turn and naming every step when none applies.

// On Windows the helpers and imports of this suite's Unix-only tests go unused.
#![cfg_attr(windows, allow(unused_imports, dead_code))]

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::json;
use crate::support::http::{Reply, Request, Server};
use crate::support::{HOME_TENANT, MockAuthority, Sandbox, TestCa, run, stderr, ok_stdout};

const TENANT: &str = "contoso.test";
const APP: &str = "22222222-2222-2222-2222-222222222222";
const SECRET: &str = "s3cret~value";
const USER: &str = "dev@contoso.test";
const AZ_RESOURCE: &str = "https://management.core.windows.net/";

mod clouds;
mod real_az;

#[cfg(unix)] // Unix only: Python's msal is installed for Linux here.
fn have_python_msal() -> bool {
    Command::new("python3").args(["-c", "import msal"]).output().is_ok_and(|o| o.status.success())
}

/// Signs `USER` in with MSAL for Python (ROPC, the Azure CLI client) against the https mock
/// and writes its serialized cache where az keeps it.
#[cfg(unix)] // Unix only: Python's msal is installed for Linux here.
fn msal_login(mock: &MockAuthority, ca_pem: &Path, cache_file: &Path) {
    let script = r#"
import sys, msal
# MSAL asks https://<host>:443/common/userrealm first; the mock has a port, so skip it as MSAL does after a 404.
msal.authority.Authority._domains_without_user_realm_discovery.add("127.0.0.1")
cache = msal.SerializableTokenCache()
app = msal.PublicClientApplication("04b07795-8ddb-461a-bbee-02f9e1bf7b46", authority=sys.argv[1], token_cache=cache, instance_discovery=False)
r = app.acquire_token_by_username_password(sys.argv[2], sys.argv[3], scopes=["https://management.core.windows.net//.default"])
if "access_token" not in r:
    sys.exit("msal: %s" % r)
open(sys.argv[4], "w").write(cache.serialize())
"#;
    std::fs::create_dir_all(cache_file.parent().unwrap()).unwrap();
    let out = Command::new("python3")
        .args(["-c", script, &format!("{}/{HOME_TENANT}", mock.url()), USER, "pw", &cache_file.display().to_string()])
        .env("REQUESTS_CA_BUNDLE", ca_pem)
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .output()
        .expect("run python3");
    assert!(out.status.success(), "msal login failed: {}", stderr(&out));
}

/// What MSAL for Python left after signing `USER` in against an https mock.
#[cfg(unix)] // Unix only: Python's msal is installed for Linux here.
struct SignedIn {
    _ca: TestCa,
    mock: MockAuthority,
    sb: Sandbox,
    /// The mock's CA, for SSL_CERT_FILE.
    ca_pem: PathBuf,
    /// az's MSAL token cache, as MSAL serialized it.
    cache_file: PathBuf,
}

/// An https mock with `USER`, a sandbox, and `USER` signed in there by MSAL for Python
/// into az's cache; None (said SKIPPED) without python3's msal.
#[cfg(unix)] // Unix only: Python's msal is installed for Linux here.
fn signed_in_with_msal(what: &str) -> Option<SignedIn> {
    if !have_python_msal() {
        support::skip::missing_tool("python3 with msal", what);
        return None;
    }
    let ca = TestCa::new();
    let mock = MockAuthority::start_https(&ca);
    mock.add_user(USER, "pw");
    let sb = Sandbox::new();
    let ca_pem = ca.write_pem(&sb.path("ca"));
    let cache_file = sb.path("azure/msal_token_cache.json");
    msal_login(&mock, &ca_pem, &cache_file);
    Some(SignedIn { _ca: ca, mock, sb, ca_pem, cache_file })
}

/// `azureProfile.json` as az writes it (UTF-8 BOM included).
fn write_az_profile(sb: &Sandbox, user_type: &str) -> PathBuf {
    let profile = json!({
        "installationId": "00000000-0000-0000-0000-00000000abcd",
        "subscriptions": [
            {"id": "sub-other", "name": "Other", "state": "Enabled", "user": {"name": "someone@else.test", "type": "user"}, "isDefault": false, "tenantId": "99999999-9999-9999-9999-999999999999", "environmentName": "AzureCloud"},
            {"id": "sub-1", "name": "Dev", "state": "Enabled", "user": {"name": USER, "type": user_type}, "isDefault": true, "tenantId": HOME_TENANT, "environmentName": "AzureCloud", "homeTenantId": HOME_TENANT, "managedByTenants": []}
        ]
    });
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(serde_json::to_vec_pretty(&profile).unwrap());
    sb.write_file("azure/azureProfile.json", bytes)
}

/// A stand-in `az` that logs its arguments and prints get-access-token's JSON.
#[cfg(unix)] // Unix only: the stand-in az is an sh script.
fn fake_az(sb: &Sandbox, dir: &str, token: &str) -> PathBuf {
    let log = sb.path(&format!("{dir}/calls.log"));
    let exp = support::wire::now() + 3600;
    let script = format!(
        "#!/bin/sh\necho \"$@\" >> '{}'\nprintf '%s' '{{\"accessToken\":\"{token}\",\"expiresOn\":\"2030-01-01 00:00:00.000000\",\"expires_on\":{exp},\"subscription\":\"sub-1\",\"tenant\":\"{HOME_TENANT}\",\"tokenType\":\"Bearer\"}}'\n",
        log.display()
    );
    sb.write_executable(&format!("{dir}/az"), &script);
    log
}

#[cfg(unix)] // Unix only: the stand-in az is an sh script.
fn calls(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log).unwrap_or_default().lines().map(str::to_string).collect()
}

#[cfg(unix)] // Unix only: drives Python's msal.
#[test]
fn azure_cli_cache_written_by_msal_is_reused_and_left_alone() {
    let Some(SignedIn { mock, sb, ca_pem, cache_file, .. }) = signed_in_with_msal("the az cache written by MSAL") else { return };
    let profile_file = write_az_profile(&sb, "user");
    let before = (std::fs::read(&cache_file).unwrap(), std::fs::read(&profile_file).unwrap());
    let az_at = mock.issued_access_tokens().last().cloned().unwrap();
    let requests_after_login = mock.token_requests();
    std::fs::create_dir_all(sb.path("empty-bin")).unwrap();
    let cmd = |resource: &str| {
        let mut c = sb.cmd();
        c.args(["get-token", "--flow", "azure-cli", "-r", resource])
            .env("AZURE_AUTHORITY_HOST", mock.url())
            .env("SSL_CERT_FILE", &ca_pem)
            .env("PATH", sb.path("empty-bin"));
        c
    };
    // az's own access token is still valid: served without a request.
    assert_eq!(ok_stdout(&run(cmd(AZ_RESOURCE))), az_at);
    assert_eq!(mock.token_requests(), requests_after_login);
    // Another resource: az's refresh token, redeemed with the Azure CLI client id in az's tenant.
    let graph = ok_stdout(&run(cmd("graph")));
    assert_eq!(mock.token_requests(), requests_after_login + 1);
    assert_eq!(mock.issued_access_tokens().last(), Some(&graph));
    let req = mock.requests().into_iter().rfind(|r| r.is_token_request()).unwrap();
    assert_eq!(req.form_get("grant_type"), Some("refresh_token"));
    assert_eq!(req.form_get("client_id"), Some("04b07795-8ddb-461a-bbee-02f9e1bf7b46"));
    assert_eq!(req.path, format!("/{HOME_TENANT}/oauth2/v2.0/token"));
    assert!(req.form_get("scope").unwrap().contains("https://graph.microsoft.com/.default"));
    // Cached by us: no second request.
    assert_eq!(ok_stdout(&run(cmd("graph"))), graph);
    assert_eq!(mock.token_requests(), requests_after_login + 1);
    // We wrote nothing into az's files.
    assert_eq!((std::fs::read(&cache_file).unwrap(), std::fs::read(&profile_file).unwrap()), before);
    let json = support::jwt_claims(&graph).unwrap();
    assert_eq!(json["upn"].as_str().or(json["preferred_username"].as_str()), Some(USER));
}

#[cfg(unix)] // Unix only: the stand-in az is an sh script.
#[test]
fn az_fallback_runs_az_but_never_ourselves() {
    let sb = Sandbox::new();
    write_az_profile(&sb, "user"); // no msal_token_cache.json: encrypted or absent
    let own = sb.path("own-bin");
    std::fs::create_dir_all(&own).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_entra-token"), own.join("az")).unwrap();
    let cmd = |path: String| {
        let mut c = sb.cmd();
        c.args(["get-token", "--flow", "azure-cli", "-r", "arm"]).env("PATH", path);
        c
    };
    let out = run(cmd(own.display().to_string()));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("no `az` (other than entra-token)"), "{}", stderr(&out));

    let log = fake_az(&sb, "real-bin", "az-subprocess-token");
    let path = format!("{}:{}", own.display(), sb.path("real-bin").display());
    assert_eq!(ok_stdout(&run(cmd(path.clone()))), "az-subprocess-token");
    assert_eq!(ok_stdout(&run(cmd(path))), "az-subprocess-token");
    assert_eq!(calls(&log), vec!["account get-access-token --output json --resource https://management.azure.com/".to_string()], "one call, then the cache");

    // entra-token answering as `az` (the shim) never runs another az, not even the real one.
    let mut shim = Command::new(own.join("az"));
    for (k, v) in sb.cmd().get_envs() {
        match v {
            Some(v) => shim.env(k, v),
            None => shim.env_remove(k),
        };
    }
    shim.args(["account", "get-access-token", "--resource", "https://vault.azure.net"]).env("PATH", format!("{}:{}", own.display(), sb.path("real-bin").display()));
    let out = run(shim);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("never runs another az"), "{}", stderr(&out));
    assert_eq!(calls(&log).len(), 1, "the shim did not call az");
}

// ---------------------------------------------------------------- auto

struct StandIn {
    server: Server,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl StandIn {
    fn managed_identity(token: &'static str) -> StandIn {
        let seen: Arc<Mutex<Vec<Request>>> = Arc::default();
        let s2 = Arc::clone(&seen);
        let handler = Arc::new(move |req: Request| {
            s2.lock().unwrap().push(req.clone());
            let exp = (support::wire::now() + 3600).to_string();
            Reply::json(200, &json!({"access_token": token, "expires_on": exp, "resource": "r", "token_type": "Bearer"}))
        });
        StandIn { server: Server::start(handler, None), seen }
    }
    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

fn federated() -> String {
    support::wire::jwt(&json!({"iss": "https://kubernetes.default.svc", "sub": "system:serviceaccount:ns:sa", "aud": "api://AzureADTokenExchange"}))
}

#[cfg(unix)] // Unix only: the stand-in az is an sh script.
#[test]
fn auto_picks_each_source_in_order() {
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some(SECRET));
    let app_service = StandIn::managed_identity("app-service-token");
    let imds = StandIn::managed_identity("imds-token");
    let sb = Sandbox::new();
    sb.write_config(&format!("[profiles.a]\nauthority = \"{}\"\n", mock.url()));
    let wi_file = sb.write_file("wi-token", federated());
    write_az_profile(&sb, "user");
    let az_log = fake_az(&sb, "bin", "az-token");

    // Each layer removes the source before it; the cache must never hand back the previous source's token.
    let layers: [&[&str]; 5] = [&[], &["AZURE_CLIENT_SECRET"], &["AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE"], &["AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_ENDPOINT"], &["AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_ENDPOINT", "IMDS"]];
    let mut answers = Vec::new();
    for removed in layers {
        let mut c = sb.cmd();
        c.args(["get-token", "-p", "a", "-r", "arm"]).env("AZURE_CLIENT_ID", APP).env("AZURE_TENANT_ID", TENANT).env("PATH", sb.path("bin"));
        let vars = [
            ("AZURE_CLIENT_SECRET", SECRET.to_string()),
            ("AZURE_FEDERATED_TOKEN_FILE", wi_file.display().to_string()),
            ("IDENTITY_ENDPOINT", format!("{}/msi/token", app_service.server.url())),
        ];
        for (k, v) in vars {
            if !removed.contains(&k) {
                c.env(k, v);
            }
        }
        if !removed.contains(&"IDENTITY_ENDPOINT") {
            c.env("IDENTITY_HEADER", "h");
        }
        if !removed.contains(&"IMDS") {
            c.env("AZURE_POD_IDENTITY_AUTHORITY_HOST", imds.server.url());
        }
        // Twice: the second is served from the cache (the request counts below prove it).
        let envs: Vec<(std::ffi::OsString, Option<std::ffi::OsString>)> = c.get_envs().map(|(k, v)| (k.to_owned(), v.map(|v| v.to_owned()))).collect();
        let first = ok_stdout(&run(c));
        let mut again = sb.cmd();
        again.args(["get-token", "-p", "a", "-r", "arm"]);
        for (k, v) in envs {
            match v {
                Some(v) => again.env(k, v),
                None => again.env_remove(k),
            };
        }
        assert_eq!(ok_stdout(&run(again)), first);
        answers.push(first);
    }
    let grants: Vec<(String, String)> = mock
        .requests()
        .iter()
        .filter(|r| r.is_token_request())
        .map(|r| (r.form_get("client_secret").map_or("assertion", |_| "secret").to_string(), r.form_get("client_assertion").unwrap_or("").to_string()))
        .collect();
    assert_eq!(grants, vec![("secret".to_string(), String::new()), ("assertion".to_string(), federated())], "environment first, then workload identity");
    let issued = mock.issued_access_tokens();
    assert_eq!(&answers[..2], &issued[..]);
    assert_eq!(answers[2], "app-service-token");
    assert_eq!(answers[3], "imds-token");
    assert_eq!(answers[4], "az-token");
    assert_eq!((app_service.count(), imds.count(), calls(&az_log).len()), (1, 1, 1));
    let az_call = &calls(&az_log)[0];
    assert!(az_call.contains("--resource https://management.azure.com/"), "{az_call}");
}

#[test]
fn auto_answers_are_cached_per_source() {
    let app_service = StandIn::managed_identity("app-service-token");
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("empty-bin")).unwrap();
    for _ in 0..3 {
        let mut c = sb.cmd();
        c.args(["get-token", "-r", "graph"]).env("IDENTITY_ENDPOINT", app_service.server.url()).env("IDENTITY_HEADER", "h").env("PATH", sb.path("empty-bin"));
        assert_eq!(ok_stdout(&run(c)), "app-service-token");
    }
    assert_eq!(app_service.count(), 1);
}

#[test]
fn auto_names_every_step_when_all_fail() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("empty-bin")).unwrap();
    let mut c = sb.cmd();
    c.args(["get-token", "-r", "arm"]).env("PATH", sb.path("empty-bin"));
    let out = run(c);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    // One line, as every error: what to do first, then each source's reason.
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("entra-token: no token source is set up for profile 'default': run `entra-token login` in a terminal"), "{err}");
    let (_, reasons) = err.split_once("; passed over: ").expect("the reasons after what to do");
    for step in ["environment: AZURE_CLIENT_ID", "workload identity: no federated token", "managed identity: no IMDS endpoint answered", "azure cli: not signed in", "interactive sign-in: profile 'default' is not signed in, and nobody can answer a sign-in prompt here"] {
        assert!(reasons.contains(step), "missing '{step}' in: {err}");
    }
    // As the Azure CLI, the same one line.
    let mut c = sb.cmd();
    c.args(["az", "account", "get-access-token"]).env("PATH", sb.path("empty-bin"));
    let out = run(c);
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    // And through the native protocol on stdin: one prefixed line on stderr.
    let mut c = sb.cmd();
    c.env("PATH", sb.path("empty-bin"));
    let out = crate::support::run_with_stdin(c, r#"{"resource":"arm"}"#);
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(err.lines().count() == 1 && err.starts_with("entra-token: "), "{err}");
}

#[cfg(unix)] // Unix only: the stand-in az is an sh script.
#[test]
fn azure_token_credentials_narrows_the_chain() {
    let app_service = StandIn::managed_identity("app-service-token");
    let sb = Sandbox::new();
    write_az_profile(&sb, "user");
    let az_log = fake_az(&sb, "bin", "az-token");
    let cmd = |value: &str| {
        let mut c = sb.cmd();
        c.args(["get-token", "-r", "arm"])
            .env("IDENTITY_ENDPOINT", app_service.server.url())
            .env("IDENTITY_HEADER", "h")
            .env("PATH", sb.path("bin"))
            .env("AZURE_TOKEN_CREDENTIALS", value);
        c
    };
    // dev: developer tools only, so the managed identity is passed over.
    assert_eq!(ok_stdout(&run(cmd("dev"))), "az-token");
    assert_eq!(app_service.count(), 0);
    // prod: no developer tools.
    assert_eq!(ok_stdout(&run(cmd("prod"))), "app-service-token");
    assert_eq!(calls(&az_log).len(), 1);
    // One credential by its azure-identity name; the others are named as skipped.
    let out = run(cmd("WorkloadIdentityCredential"));
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(err.contains("managed identity: skipped (AZURE_TOKEN_CREDENTIALS=WorkloadIdentityCredential)") && err.contains("workload identity: no federated token"), "{err}");
    let out = run(cmd("VisualStudioCodeCredential"));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("AZURE_TOKEN_CREDENTIALS"));
}

#[test]
fn auto_uses_the_profiles_own_app_credential_first() {
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some(SECRET));
    let app_service = StandIn::managed_identity("app-service-token");
    let sb = Sandbox::new();
    sb.write_config(&format!("[profiles.app]\nauthority = \"{}\"\ntenant = \"{TENANT}\"\nclient_id = \"{APP}\"\nclient_secret_env = \"MY_SECRET\"\n", mock.url()));
    for _ in 0..2 {
        let mut c = sb.cmd();
        c.args(["get-token", "-p", "app", "-r", "arm"]).env("MY_SECRET", SECRET).env("IDENTITY_ENDPOINT", app_service.server.url()).env("IDENTITY_HEADER", "h");
        let token = ok_stdout(&run(c));
        assert_eq!(mock.issued_access_tokens(), vec![token]);
    }
    assert_eq!((mock.grant_count("client_credentials"), app_service.count()), (1, 0));
}

#[test]
fn auto_environment_username_and_password() {
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_user(USER, "user-pw");
    let sb = Sandbox::new();
    sb.write_config(&format!("[profiles.a]\nauthority = \"{}\"\n", mock.url()));
    std::fs::create_dir_all(sb.path("empty-bin")).unwrap();
    for _ in 0..2 {
        let mut c = sb.cmd();
        c.args(["get-token", "-p", "a", "-r", "graph"])
            .env("AZURE_CLIENT_ID", "04b07795-8ddb-461a-bbee-02f9e1bf7b46")
            .env("AZURE_TENANT_ID", TENANT)
            .env("AZURE_USERNAME", USER)
            .env("AZURE_PASSWORD", "user-pw")
            .env("PATH", sb.path("empty-bin"));
        let token = ok_stdout(&run(c));
        assert_eq!(mock.issued_access_tokens().first(), Some(&token));
        assert_eq!(support::jwt_claims(&token).unwrap()["upn"].as_str().or(support::jwt_claims(&token).unwrap()["preferred_username"].as_str()), Some(USER));
    }
    assert_eq!(mock.grant_count("password"), 1, "the second answer came from the cache");
}

/// A stand-in answering every request with `reply(n)`.
fn imds_like(reply: impl Fn(usize) -> Reply + Send + Sync + 'static) -> (Server, Arc<Mutex<usize>>) {
    let n = Arc::new(Mutex::new(0usize));
    let n2 = Arc::clone(&n);
    let server = Server::start(
        Arc::new(move |_req: Request| {
            let i = {
                let mut g = n2.lock().unwrap();
                *g += 1;
                *g - 1
            };
            reply(i)
        }),
        None,
    );
    (server, n)
}

#[test]
fn auto_passes_over_something_that_is_not_imds() {
    // A transparent proxy answering the IMDS address with an HTML 404: no identity here, move on at once.
    let (proxy, hits) = imds_like(|_| Reply::new(404, "text/html", "<html><body>Not Found</body></html>"));
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("empty-bin")).unwrap();
    let mut c = sb.cmd();
    c.args(["get-token", "-r", "arm"]).env("AZURE_POD_IDENTITY_AUTHORITY_HOST", proxy.url()).env("PATH", sb.path("empty-bin"));
    let started = std::time::Instant::now();
    let out = run(c);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("managed identity: ") && stderr(&out).contains("not IMDS"), "{}", stderr(&out));
    assert_eq!(*hits.lock().unwrap(), 1, "one probe, no retries");
    println!("auto over a non-IMDS 404 took {:?}", started.elapsed());
}

#[test]
fn auto_waits_for_a_busy_imds() {
    // IMDS itself, updating (JSON 410): the probe found it, so the retrying request follows.
    let (imds, hits) = imds_like(|i| {
        if i == 0 {
            Reply::json(410, &json!({"error": "unavailable", "error_description": "IMDS is updating"}))
        } else {
            let exp = (support::wire::now() + 3600).to_string();
            Reply::json(200, &json!({"access_token": "imds-after-410", "expires_on": exp, "expires_in": "3600", "resource": "r", "token_type": "Bearer"}))
        }
    });
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("empty-bin")).unwrap();
    for _ in 0..2 {
        let mut c = sb.cmd();
        c.args(["get-token", "-r", "arm"]).env("AZURE_POD_IDENTITY_AUTHORITY_HOST", imds.url()).env("PATH", sb.path("empty-bin"));
        assert_eq!(ok_stdout(&run(c)), "imds-after-410");
    }
    assert_eq!(*hits.lock().unwrap(), 2, "probe (410), retrying request (200), then the cache");
}

/// The entries a service-principal `az login` leaves in az's cache (azure-cli 2.91): access
/// tokens with `"home_account_id": null`, kept after a later user login. Plus an entry of
/// a shape nobody writes, which must cost only itself.
#[cfg(unix)] // Unix only: for the Python msal test.
fn add_service_principal_entries(cache_file: &Path) {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(cache_file).unwrap()).unwrap();
    let exp = (support::wire::now() + 3600).to_string();
    v["AccessToken"]["-login.microsoftonline.com-accesstoken-app-tenant-https://management.core.windows.net//.default"] = json!({
        "credential_type": "AccessToken", "secret": "sp-token", "home_account_id": null, "environment": "login.microsoftonline.com",
        "client_id": APP, "target": "https://management.core.windows.net//.default", "realm": HOME_TENANT, "token_type": "Bearer",
        "cached_at": "1", "expires_on": exp, "extended_expires_on": exp
    });
    v["AccessToken"]["broken"] = json!({"secret": null, "home_account_id": 5});
    v["Account"]["odd"] = json!(["not", "an", "account"]);
    std::fs::write(cache_file, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

#[cfg(unix)] // Unix only: drives Python's msal.
#[test]
fn az_cache_with_service_principal_nulls_is_read_and_arm_is_served_by_azs_token() {
    let Some(SignedIn { mock, sb, ca_pem, cache_file, .. }) = signed_in_with_msal("az's cache with a service principal's entries") else { return };
    add_service_principal_entries(&cache_file);
    write_az_profile(&sb, "user");
    let az_at = mock.issued_access_tokens().last().cloned().unwrap();
    let requests = mock.token_requests();
    std::fs::create_dir_all(sb.path("empty-bin")).unwrap();
    // `-r arm` (management.azure.com) is served by the token az cached for management.core.windows.net.
    let mut c = sb.cmd();
    c.args(["get-token", "--flow", "azure-cli", "-r", "arm"])
        .env("AZURE_AUTHORITY_HOST", mock.url())
        .env("SSL_CERT_FILE", &ca_pem)
        .env("PATH", sb.path("empty-bin"));
    let out = run(c);
    assert_eq!(ok_stdout(&out), az_at, "the user's token, not the service principal's");
    assert!(!stderr(&out).contains("encrypted"), "{}", stderr(&out));
    assert_eq!(mock.token_requests(), requests, "Entra was asked although az's token serves");
}

#[cfg(unix)] // Unix only: the stand-in az is an sh script.
#[test]
fn a_service_principals_az_token_reports_the_service_principals_client_id() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    write_az_profile(&sb, "servicePrincipal");
    let exp = support::wire::now() + 3600;
    let token = support::wire::jwt(&json!({"aud": "https://management.core.windows.net/", "appid": APP, "tid": HOME_TENANT, "exp": exp}));
    let script = format!("#!/bin/sh\nprintf '%s' '{{\"accessToken\":\"{token}\",\"expires_on\":{exp},\"tenant\":\"{HOME_TENANT}\",\"tokenType\":\"Bearer\"}}'\n");
    let az = sb.write_file("real-bin/az", script);
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut c = sb.cmd();
    c.args(["get-token", "--flow", "azure-cli", "-r", "arm", "-o", "json"]).env("PATH", sb.path("real-bin"));
    let out = run(c);
    let v: serde_json::Value = serde_json::from_str(&ok_stdout(&out)).unwrap();
    assert_eq!(v["client_id"], APP, "{v}");
}

// ------------------------------------------------------- the real Azure CLI: azure_cli_auto/real_az.rs
