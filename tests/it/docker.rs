//! Docker credential helper: the exact wire of `docker-credential-entra-token` (errors
//! on stdout, exit 1, the byte-exact "not found" sentence), the ACR token exchange against
//! a mock registry on 127.0.0.1 that checks the Entra token it is given, and the real
//! docker CLI (`docker manifest inspect` and `docker logout` need no engine) pulling a
//! manifest with the credential we hand it.

// On Windows the helpers and imports of this suite's Unix-only tests go unused.
#![cfg_attr(windows, allow(unused_imports, dead_code, unused_mut))]

use crate::support;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use crate::support::http::{Reply, Request, Server};
use crate::support::{CcProfile, MockAuthority, Sandbox, TestCa, jwt_claims, run, run_with_stdin, text};

const TENANT: &str = "contoso.test";
const APP: &str = "22222222-2222-2222-2222-222222222222";
const SECRET: &str = "s3cret~value";
pub(crate) const NULL_USER: &str = "00000000-0000-0000-0000-000000000000";
const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// An OCI image manifest whose config is the blob `{}`.
const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}"#;

/// What the mock registry saw and handed out.
#[derive(Default)]
pub(crate) struct RegistryState {
    /// Each `/oauth2/exchange` form, as key/value pairs.
    pub exchanges: Vec<Vec<(String, String)>>,
    pub refresh_tokens: Vec<String>,
    pub registry_tokens: Vec<String>,
    pub manifests_served: usize,
}

/// A registry with ACR's token exchange: `/oauth2/exchange` trades an Entra ARM token for
/// a refresh token, `/oauth2/token` takes that as the null-GUID user's password, and
/// `/v2/…` wants the resulting bearer token.
pub(crate) struct MockRegistry {
    pub server: Server,
    state: Arc<Mutex<RegistryState>>,
}

impl MockRegistry {
    pub(crate) fn start(tls: Option<&TestCa>, expected_tid: String) -> MockRegistry {
        let state = Arc::new(Mutex::new(RegistryState::default()));
        let st = Arc::clone(&state);
        let handler = Arc::new(move |req: Request| handle(&st, &expected_tid, req));
        MockRegistry { server: Server::start(handler, tls.map(|ca| ca.server_config())), state }
    }
    pub(crate) fn host(&self) -> String {
        self.server.addr().to_string()
    }
    pub(crate) fn state(&self) -> std::sync::MutexGuard<'_, RegistryState> {
        self.state.lock().unwrap()
    }
}

fn acr_error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(status, &json!({"errors": [{"code": code, "message": message}]}))
}

fn handle(st: &Mutex<RegistryState>, expected_tid: &str, req: Request) -> Reply {
    let mut st = st.lock().unwrap();
    let host = req.header("host").unwrap_or("").to_string();
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/oauth2/exchange") => {
            let form: Vec<(String, String)> = form_urlencoded::parse(&req.body).into_owned().collect();
            let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
            st.exchanges.push(form.clone());
            let claims = jwt_claims(&get("access_token"));
            let aud_ok = claims.as_ref().is_some_and(|c| c["aud"].as_str().map(|a| a.trim_end_matches('/')) == Some("https://management.azure.com"));
            let tid_ok = claims.as_ref().is_some_and(|c| c["tid"] == expected_tid) && get("tenant") == expected_tid;
            if get("grant_type") != "access_token" || get("service").is_empty() || !aud_ok || !tid_ok {
                return acr_error(401, "UNAUTHORIZED", "the access token is not valid for this registry");
            }
            let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 3 * 3600;
            let rt = support::wire::jwt(&json!({"exp": exp, "grant_type": "refresh_token", "service": get("service"), "n": st.refresh_tokens.len()}));
            st.refresh_tokens.push(rt.clone());
            Reply::json(200, &json!({ "refresh_token": rt }))
        }
        ("GET", "/oauth2/token") => {
            use base64::Engine as _;
            let basic = req.header("authorization").and_then(|a| a.strip_prefix("Basic ")).and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
            let user_pass = basic.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
            let ok = user_pass.split_once(':').is_some_and(|(u, p)| u == NULL_USER && st.refresh_tokens.iter().any(|t| t == p));
            if !ok {
                return acr_error(401, "UNAUTHORIZED", "authentication required");
            }
            let t = format!("registry-token-{}", st.registry_tokens.len());
            st.registry_tokens.push(t.clone());
            Reply::json(200, &json!({ "access_token": t, "token": t }))
        }
        (_, path) if path.starts_with("/v2/") => {
            let bearer = req.header("authorization").and_then(|a| a.strip_prefix("Bearer ")).unwrap_or("");
            if !st.registry_tokens.iter().any(|t| t == bearer) {
                let challenge = format!("Bearer realm=\"https://{host}/oauth2/token\",service=\"{host}\",scope=\"repository:app:pull\"");
                return acr_error(401, "UNAUTHORIZED", "authentication required").with_header("WWW-Authenticate", &challenge);
            }
            if path == "/v2/" {
                return Reply::json(200, &json!({}));
            }
            if path.contains("/blobs/") {
                return Reply::new(200, "application/octet-stream", "{}");
            }
            st.manifests_served += 1;
            let digest = ring::digest::digest(&ring::digest::SHA256, MANIFEST.as_bytes());
            let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
            Reply::new(200, MANIFEST_TYPE, MANIFEST).with_header("Docker-Content-Digest", &format!("sha256:{hex}"))
        }
        _ => Reply::new(404, "text/plain", "not found"),
    }
}

/// The cache's registry-token entries: the core's token entries (`at-*.json`) that hold a
/// registry's refresh token, sealed (`dpapi`, Windows) or bound as `acr_refresh_token`.
pub(crate) fn registry_entries(cache: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            let v = || serde_json::from_slice::<Value>(&std::fs::read(p).unwrap()).unwrap_or_default();
            name.starts_with("at-") && name.ends_with(".json") && (v().get("dpapi").is_some() || v()["bound"]["token_type"] == "acr_refresh_token")
        })
        .collect();
    out.sort();
    out
}

fn configured(mock: &MockAuthority, profile_extra: &str) -> Sandbox {
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some(SECRET));
    let sb = Sandbox::new();
    sb.write_config(&CcProfile::new("images", &mock.url(), TENANT, APP).secret_env("APP_SECRET").with(profile_extra).toml());
    sb
}

/// `program` with exactly the sandbox's (scrubbed) environment and `bin/` first on PATH.
fn sandboxed(sb: &Sandbox, program: &Path) -> Command {
    let mut cmd = sb.tool_with_links(program);
    cmd.env("APP_SECRET", SECRET);
    cmd
}

fn helper(sb: &Sandbox, action: &str, stdin: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = sandboxed(sb, &sb.link("docker-credential-entra-token"));
    cmd.arg(action).envs(env.iter().copied());
    run_with_stdin(cmd, stdin)
}

#[test]
fn azurecr_io_gets_an_exchanged_refresh_token_cached_across_calls() {
    let mock = MockAuthority::start();
    let registry = MockRegistry::start(None, mock.tenant_id(TENANT));
    let sb = configured(&mock, "urls = [\"contoso.azurecr.io\"]\n");
    let exchange = format!("{}/oauth2/exchange", registry.server.url());
    let env = [("ENTRA_TOKEN_ACR_EXCHANGE_URL", exchange.as_str())];
    let out = helper(&sb, "get", "contoso.azurecr.io\n", &env);
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let rt = registry.state().refresh_tokens[0].clone();
    assert_eq!(text(&out.stdout), format!("{{\"ServerURL\":\"contoso.azurecr.io\",\"Username\":\"{NULL_USER}\",\"Secret\":\"{rt}\"}}\n"));
    {
        let st = registry.state();
        let form = &st.exchanges[0];
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("grant_type"), Some("access_token"));
        assert_eq!(get("service"), Some("contoso.azurecr.io"));
        assert_eq!(get("tenant"), Some(mock.tenant_id(TENANT).as_str()));
        assert_eq!(get("access_token"), Some(mock.issued_access_tokens()[0].as_str()));
    }
    // The registry's refresh token is a refresh token: sealed at rest where the OS can
    // (DPAPI on Windows), else in a private file as every other.
    let entries = registry_entries(&sb.path("cache"));
    assert_eq!(entries.len(), 1, "{entries:?}");
    let on_disk = std::fs::read_to_string(&entries[0]).unwrap();
    assert_eq!(on_disk.contains(&rt), cfg!(not(windows)), "sealed only on Windows: {on_disk}");
    // Second call: the cached refresh token, no exchange, no Entra request.
    let out = helper(&sb, "get", "https://contoso.azurecr.io", &env);
    assert!(out.status.success(), "{}", text(&out.stdout));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Secret"], rt.as_str());
    assert_eq!(v["ServerURL"], "https://contoso.azurecr.io");
    assert_eq!(registry.state().exchanges.len(), 1);
    assert_eq!(mock.token_requests(), 1);
    // erase drops the registry token (the Entra token stays cached): a new exchange follows.
    let out = helper(&sb, "erase", "contoso.azurecr.io", &env);
    assert!(out.status.success() && out.stdout.is_empty(), "{}", text(&out.stdout));
    let out = helper(&sb, "get", "contoso.azurecr.io", &env);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert_eq!(registry.state().exchanges.len(), 2);
    assert_eq!(mock.token_requests(), 1);
    // Nothing secret on stderr.
    assert!(!text(&out.stderr).contains(&rt));
}

/// A registry's token is one of the core's cache entries: `status` lists it with the
/// profile's other tokens (never its value), and `logout -p` removes it with them, so the
/// next `get` exchanges anew. Registry tokens of the old shape (`acr-*.json`) go too.
#[test]
fn status_lists_a_registry_token_and_logout_removes_it() {
    let mock = MockAuthority::start();
    let registry = MockRegistry::start(None, mock.tenant_id(TENANT));
    let sb = configured(&mock, "urls = [\"contoso.azurecr.io\"]\n");
    let exchange = format!("{}/oauth2/exchange", registry.server.url());
    let env = [("ENTRA_TOKEN_ACR_EXCHANGE_URL", exchange.as_str())];
    let out = helper(&sb, "get", "contoso.azurecr.io", &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rt = registry.state().refresh_tokens[0].clone();
    let entra = |args: &[&str]| {
        let mut c = sb.cmd();
        c.args(args);
        run(c)
    };
    let out = entra(&["status", "-o", "json"]);
    assert!(out.status.success() && !text(&out.stdout).contains(&rt), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let images = v["profiles"].as_array().unwrap().iter().find(|p| p["name"] == "images").unwrap().clone();
    let listed: Vec<&Value> = images["tokens"].as_array().unwrap().iter().filter(|t| t["registry"] == "contoso.azurecr.io").collect();
    assert_eq!(listed.len(), 1, "{images}");
    assert_eq!(listed[0]["token_type"], "acr_refresh_token");
    let out = entra(&["status"]);
    assert!(text(&out.stdout).contains("contoso.azurecr.io (a registry's refresh token)"), "{}", text(&out.stdout));
    // An entry of the old shape, as the last version wrote it.
    let old = sb.path("cache").join("acr-0123456789abcdef0123456789abcdef01234567.json");
    std::fs::write(&old, br#"{"v":1,"refresh_token":"old","expires_on":1,"registry":"contoso.azurecr.io","profile":"images","cached_at":0}"#).unwrap();
    let out = entra(&["logout", "-p", "images"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(registry_entries(&sb.path("cache")).is_empty() && !old.exists(), "{}", text(&out.stderr));
    let out = helper(&sb, "get", "contoso.azurecr.io", &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(registry.state().exchanges.len(), 2);
}

#[test]
fn unclaimed_registries_are_not_found_byte_for_byte_and_get_nothing() {
    let mock = MockAuthority::start();
    let registry = MockRegistry::start(None, mock.tenant_id(TENANT));
    let sb = configured(&mock, "urls = [\"contoso.azurecr.io\"]\n");
    let exchange = format!("{}/oauth2/exchange", registry.server.url());
    let env = [("ENTRA_TOKEN_ACR_EXCHANGE_URL", exchange.as_str())];
    for server in ["other.azurecr.io", "https://index.docker.io/v1/", "contoso.azurecr.io.evil.test", "http://contoso.azurecr.io", "contoso.azurecr.io:444"] {
        let out = helper(&sb, "get", server, &env);
        assert_eq!(out.status.code(), Some(1), "{server}");
        assert_eq!(text(&out.stdout), "credentials not found in native keychain\n", "{server}");
    }
    assert_eq!(mock.token_requests(), 0);
    assert!(registry.state().exchanges.is_empty());
}

#[test]
fn a_plain_registry_gets_a_token_for_its_profiles_resource_and_acr_the_management_one() {
    let mock = MockAuthority::start();
    let registry = MockRegistry::start(None, mock.tenant_id(TENANT));
    let sb = configured(&mock, "urls = [\"https://images.contoso.test/\"]\nresource = \"api://images\"\n[profiles.acr]\nflow = \"client-credentials\"\nclient_secret_env = \"APP_SECRET\"\n");
    // The second profile repeats the first's identity for ACR, without a resource.
    let config = std::fs::read_to_string(sb.path("config.toml")).unwrap();
    sb.write_config(&format!("{config}tenant = \"{TENANT}\"\nclient_id = \"{APP}\"\nauthority = \"{}\"\nurls = [\"contoso.azurecr.io\"]\n", mock.url()));
    let out = helper(&sb, "get", "images.contoso.test", &[]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Username"], "entra-token");
    assert_eq!(jwt_claims(v["Secret"].as_str().unwrap()).unwrap()["aud"], "api://images");
    // ACR's exchange alone takes the management token, and only the claimed registry sees it.
    let exchange = format!("{}/oauth2/exchange", registry.server.url());
    let out = helper(&sb, "get", "contoso.azurecr.io", &[("ENTRA_TOKEN_ACR_EXCHANGE_URL", exchange.as_str())]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    let st = registry.state();
    let sent = st.exchanges[0].iter().find(|(k, _)| k == "access_token").map(|(_, v)| v.clone()).unwrap();
    assert_eq!(jwt_claims(&sent).unwrap()["aud"], "https://management.azure.com/");
    assert_eq!(st.exchanges[0].iter().find(|(k, _)| k == "service").map(|(_, v)| v.as_str()), Some("contoso.azurecr.io"));
}

#[test]
fn list_version_store_and_errors_on_stdout() {
    let mock = MockAuthority::start();
    // A registry that refuses every exchange (the identity has no pull role).
    let registry = MockRegistry::start(None, "some-other-tenant".into());
    let sb = configured(&mock, "urls = [\"contoso.azurecr.io\", \"https://images.contoso.test/\"]\n");
    let exchange = format!("{}/oauth2/exchange", registry.server.url());
    let env = [("ENTRA_TOKEN_ACR_EXCHANGE_URL", exchange.as_str())];

    let out = helper(&sb, "list", "", &env);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), format!("{{\"contoso.azurecr.io\":\"{NULL_USER}\",\"images.contoso.test\":\"entra-token\"}}\n"));
    let out = helper(&sb, "version", "", &env);
    assert!(out.status.success() && text(&out.stdout).starts_with("docker-credential-entra-token (entra-token) "), "{}", text(&out.stdout));
    let out = helper(&sb, "store", r#"{"ServerURL":"contoso.azurecr.io","Username":"u","Secret":"typed-password"}"#, &env);
    assert!(out.status.success() && out.stdout.is_empty(), "{}", text(&out.stdout));
    assert!(!std::fs::read_dir(sb.path("")).unwrap().any(|e| std::fs::read(e.unwrap().path()).is_ok_and(|b| text(&b).contains("typed-password"))));
    // A registry no profile claims: refused, so docker login says the password was not saved.
    let out = helper(&sb, "store", r#"{"ServerURL":"https://index.docker.io/v1/","Username":"u","Secret":"typed-password"}"#, &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("keeps no passwords"), "{}", text(&out.stdout));

    // The exchange is refused: ACR's reason on stdout, exit 1, no token in it.
    let out = helper(&sb, "get", "contoso.azurecr.io", &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("UNAUTHORIZED"), "{}", text(&out.stdout));
    assert!(!text(&out.stdout).contains(&mock.issued_access_tokens()[0]));
    // A plain (non-ACR) registry whose profile names no `resource`: refused, and no
    // token is made (before, it got the Azure management token ACR's exchange uses).
    let before = mock.token_requests();
    let out = helper(&sb, "get", "images.contoso.test", &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).starts_with("profile 'images' claims https://images.contoso.test/ but names no `resource`"), "{}", text(&out.stdout));
    assert_eq!(mock.token_requests(), before);
    // Unknown action, and an exchange URL that is not https: errors on stdout.
    let out = helper(&sb, "frobnicate", "", &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("frobnicate"));
    let out = helper(&sb, "erase", "contoso.azurecr.io", &[]);
    assert!(out.status.success());
    let out = helper(&sb, "get", "contoso.azurecr.io", &[("ENTRA_TOKEN_ACR_EXCHANGE_URL", "http://registry.evil.test/oauth2/exchange")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("not https"), "{}", text(&out.stdout));
}

// Unix only: the real docker CLI (a Debian package) is a Linux program here.
#[cfg(unix)]
pub(crate) fn docker() -> Option<PathBuf> {
    let out = Command::new("docker").arg("--version").output().ok()?;
    if !out.status.success() {
        support::skip::missing_tool("docker (the CLI)", "the real docker check");
        return None;
    }
    Some(PathBuf::from("docker"))
}

// Unix only: drives the real docker CLI.
#[cfg(unix)]
#[test]
fn real_docker_cli_pulls_a_manifest_with_our_credential() {
    let Some(docker) = docker() else { return };
    let mock = MockAuthority::start();
    let ca = TestCa::new();
    let registry = MockRegistry::start(Some(&ca), mock.tenant_id(TENANT));
    let host = registry.host();
    // A private registry (not *.azurecr.io by name) that is an ACR: `acr = true`.
    let sb = configured(&mock, &format!("acr = true\nurls = [\"https://{host}\"]\n"));
    let ca_pem = ca.write_pem(&sb.path("tls"));
    std::fs::create_dir_all(sb.path("docker")).unwrap();
    std::fs::write(sb.path("docker/config.json"), json!({"credHelpers": {host.clone(): "entra-token"}}).to_string()).unwrap();
    sb.link("docker-credential-entra-token");
    let docker_cmd = |args: &[&str]| {
        let mut cmd = sandboxed(&sb, &docker);
        cmd.args(args).env("DOCKER_CONFIG", sb.path("docker")).env("SSL_CERT_FILE", &ca_pem);
        run(cmd)
    };
    let image = format!("{host}/app:1");
    let out = docker_cmd(&["manifest", "inspect", &image]);
    assert!(out.status.success(), "docker: {}\n{}", text(&out.stdout), text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out.stdout)));
    assert_eq!(v["schemaVersion"], 2);
    {
        let st = registry.state();
        assert!(st.manifests_served >= 1);
        assert_eq!(st.exchanges.len(), 1);
        let form = &st.exchanges[0];
        assert!(form.contains(&("service".to_string(), host.clone())), "{form:?}");
        assert!(form.contains(&("access_token".to_string(), mock.issued_access_tokens()[0].clone())));
    }
    // Again: docker asks us again, the cache answers (no exchange, no Entra request).
    let out = docker_cmd(&["manifest", "inspect", &image]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(registry.state().exchanges.len(), 1);
    assert_eq!(mock.token_requests(), 1);
    // `docker logout` runs our erase: the next pull exchanges anew.
    let out = docker_cmd(&["logout", &host]);
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let out = docker_cmd(&["manifest", "inspect", &image]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(registry.state().exchanges.len(), 2);
    assert_eq!(mock.token_requests(), 1);
}
