//! The cargo credential provider, proven with the real cargo: an HTTPS sparse registry
//! with `auth-required` that serves its index and crates only to a token the mock
//! authority issued, our binary as `registry.global-credential-providers`, and a registry
//! no profile claims getting no token.

// On Windows the helpers and imports of this suite's Unix-only tests go unused.
#![cfg_attr(windows, allow(unused_imports, dead_code))]


use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use crate::support::http::{Reply, Request, Server};
use crate::support::{MockAuthority, Sandbox, TestCa, jwt_claims, run, run_with_stdin, text};

const TENANT: &str = "contoso.test";
const APP: &str = "55555555-5555-5555-5555-555555555555";
const SECRET: &str = "cargo~secret";
const AZURE_DEVOPS: &str = "499b84ac-1321-427f-aa17-267ca6975798";

struct Fixture {
    sb: Sandbox,
    mock: Arc<MockAuthority>,
    ca_pem: PathBuf,
    server: Server,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

/// `hello-entra-0.1.0.crate`: a gzipped tarball cargo accepts, and its sha256.
// Unix only: made by `tar`.
#[cfg(unix)]
fn make_crate(sb: &Sandbox) -> (Vec<u8>, String) {
    let root = sb.path("crate-src");
    let dir = root.join("hello-entra-0.1.0");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("Cargo.toml"), "[package]\nname = \"hello-entra\"\nversion = \"0.1.0\"\nedition = \"2021\"\n").unwrap();
    std::fs::write(dir.join("src/lib.rs"), "pub fn hello() -> &'static str { \"hello\" }\n").unwrap();
    let file = sb.path("hello-entra-0.1.0.crate");
    let out = Command::new("tar").arg("-czf").arg(&file).arg("-C").arg(&root).arg("hello-entra-0.1.0").output().expect("tar");
    assert!(out.status.success(), "tar: {}", text(&out.stderr));
    let bytes = std::fs::read(&file).unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    (bytes, hex)
}

/// A sparse registry at `/reg/` (claimed by the profile) and the same at `/nope/` (not
/// claimed). Everything, config.json included, needs a mock-issued token.
fn registry(ca: &TestCa, mock: &Arc<MockAuthority>, crate_bytes: Vec<u8>, cksum: String, seen: Arc<Mutex<Vec<(String, String)>>>) -> Server {
    let mock = Arc::clone(mock);
    let base: Arc<Mutex<String>> = Arc::new(Mutex::new(String::new()));
    let base_in = Arc::clone(&base);
    let handler = Arc::new(move |req: Request| {
        let auth = req.header("authorization").unwrap_or("").to_string();
        seen.lock().unwrap().push((req.path.clone(), auth.clone()));
        let ok = auth.strip_prefix("Bearer ").is_some_and(|t| mock.issued_access_tokens().iter().any(|i| i == t));
        if !ok {
            return Reply::new(401, "text/plain", "token required\n").with_header("WWW-Authenticate", "Cargo login_url=\"https://example.test/login\"");
        }
        let base = base_in.lock().unwrap().clone();
        let path = req.path.as_str();
        let prefix = if path.starts_with("/reg/") { "/reg" } else if path.starts_with("/nope/") { "/nope" } else { "" };
        match path.strip_prefix(prefix) {
            Some("/config.json") => Reply::new(
                200,
                "application/json",
                serde_json::json!({"dl": format!("{base}{prefix}/dl"), "api": format!("{base}{prefix}"), "auth-required": true}).to_string(),
            ),
            Some("/he/ll/hello-entra") => Reply::new(
                200,
                "application/json",
                format!("{}\n", serde_json::json!({"name":"hello-entra","vers":"0.1.0","deps":[],"cksum":cksum,"features":{},"yanked":false})),
            ),
            Some("/dl/hello-entra/0.1.0/download") => Reply::new(200, "application/octet-stream", crate_bytes.clone()),
            _ => Reply::new(404, "text/plain", "not found\n"),
        }
    });
    let server = Server::start(handler, Some(ca.server_config()));
    *base.lock().unwrap() = server.url();
    server
}

fn fixture() -> Fixture {
    let (mock, sb, ca, ca_pem) = crate::support::feed_setup(TENANT, APP, SECRET);
    // Only the real cargo downloads the crate, and `tar` makes it: Unix only.
    #[cfg(unix)]
    let (bytes, cksum) = make_crate(&sb);
    #[cfg(not(unix))]
    let (bytes, cksum) = (Vec::new(), String::new());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = registry(&ca, &mock, bytes, cksum, Arc::clone(&seen));
    sb.write_config(&format!(
        r#"
[profiles.feed]
tenant = "{TENANT}"
client_id = "{APP}"
flow = "client-credentials"
client_secret_env = "FEED_SECRET"
authority = "{authority}"
resource = "499b84ac-1321-427f-aa17-267ca6975798"
urls = ["{server}/reg/"]
"#,
        authority = mock.url(),
        server = server.url(),
    ));
    Fixture { sb, mock, ca_pem, server, seen }
}

/// CARGO_HOME with our binary as the global credential provider (cargo:token as fallback)
/// and the two registries; a project depending on hello-entra from `registry`.
fn project(f: &Fixture, registry: &str) -> PathBuf {
    let exe = env!("CARGO_BIN_EXE_entra-token");
    f.sb.write_file(
        "cargo-home/config.toml",
        format!(
            "[registry]\nglobal-credential-providers = [\"cargo:token\", {exe:?}]\n\n[registries.entra]\nindex = \"sparse+{url}/reg/\"\n\n[registries.other]\nindex = \"sparse+{url}/nope/\"\n",
            url = f.server.url()
        ),
    );
    let dir = f.sb.path(&format!("proj-{registry}"));
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!("[package]\nname = \"consumer\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nhello-entra = {{ version = \"0.1\", registry = \"{registry}\" }}\n"),
    )
    .unwrap();
    std::fs::write(dir.join("src/lib.rs"), "").unwrap();
    dir
}

/// The real cargo (the one running this test), sealed into the sandbox.
fn cargo(f: &Fixture, dir: &Path, args: &[&str]) -> Command {
    let mut c = f.sb.tool(env!("CARGO"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if (k.starts_with("CARGO_") && k != "CARGO_HOME") || k.starts_with("RUSTC") || k == "RUSTFLAGS" || k == "RUSTDOCFLAGS" {
            c.env_remove(&k);
        }
    }
    c.current_dir(dir)
        .env("CARGO_HOME", f.sb.path("cargo-home"))
        .env("CARGO_TARGET_DIR", f.sb.path("target"))
        .env("CARGO_HTTP_CAINFO", &f.ca_pem)
        .env("CARGO_NET_RETRY", "0")
        .env("CARGO_TERM_COLOR", "never")
        .env("FEED_SECRET", SECRET)
        .args(args);
    c
}

// Unix only: drives the real cargo (a Linux program here).
#[cfg(unix)]
#[test]
fn real_cargo_fetches_from_an_auth_required_registry_with_our_token() {
    let f = fixture();
    let dir = project(&f, "entra");
    let out = run(cargo(&f, &dir, &["fetch"]));
    assert!(out.status.success(), "cargo fetch failed: {}", text(&out.stderr));
    let lock = std::fs::read_to_string(dir.join("Cargo.lock")).unwrap();
    assert!(lock.contains("name = \"hello-entra\"") && lock.contains(&format!("sparse+{}/reg/", f.server.url())), "{lock}");

    let issued = f.mock.issued_access_tokens();
    assert_eq!(issued.len(), 1, "one token for the whole cargo run");
    assert_eq!(jwt_claims(&issued[0]).unwrap()["aud"], AZURE_DEVOPS);
    let seen = f.seen.lock().unwrap();
    let want = format!("Bearer {}", issued[0]);
    for path in ["/reg/config.json", "/reg/he/ll/hello-entra", "/reg/dl/hello-entra/0.1.0/download"] {
        assert!(seen.iter().any(|(p, a)| p == path && *a == want), "{path} was never fetched with our token");
    }
}

// Unix only: drives the real cargo (a Linux program here).
#[cfg(unix)]
#[test]
fn a_registry_no_profile_claims_gets_no_token() {
    let f = fixture();
    let dir = project(&f, "other");
    let out = run(cargo(&f, &dir, &["fetch"]));
    assert!(!out.status.success(), "cargo fetched from an unclaimed registry");
    assert_eq!(f.mock.token_requests(), 0, "no token may be fetched for a registry nobody claims");
    assert!(f.seen.lock().unwrap().iter().all(|(_, a)| a.is_empty()), "a credential reached the unclaimed registry");
}

#[test]
fn provider_protocol_by_hand() {
    let f = fixture();
    let url = f.server.url();
    let talk = |lines: &str| {
        let mut c = f.sb.cmd();
        c.env("FEED_SECRET", SECRET).arg("--cargo-plugin");
        let out = run_with_stdin(c, lines);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).collect::<Vec<_>>()
    };
    let get = |index: &str, args: &str| format!(r#"{{"v":1,"registry":{{"index-url":"{index}","name":"r"}},"kind":"get","operation":"read","args":{args},"x":1}}"#);

    let answers = talk(&format!("{}\n", get(&format!("sparse+{url}/reg/"), "[]")));
    assert_eq!(answers[0], serde_json::json!({"v":[1]}));
    let ok = &answers[1]["Ok"];
    assert_eq!(ok["kind"], "get");
    assert_eq!(ok["cache"], "expires");
    assert_eq!(ok["operation_independent"], true);
    let token = ok["token"].as_str().unwrap().strip_prefix("Bearer ").unwrap();
    // Five minutes before the token's end; that end comes from `expires_in` counted from
    // when the answer arrived, so on a loaded machine it may be a second or two past `exp`.
    let early = jwt_claims(token).unwrap()["exp"].as_i64().unwrap() - 300 - ok["expiration"].as_i64().unwrap();
    assert!((-3..=0).contains(&early), "expiration is exp - 300 (give or take the answer's transit): off by {early} s");

    // --resource from the config's args; --profile must itself claim the URL.
    let answers = talk(&format!("{}\n", get(&format!("sparse+{url}/reg/"), r#"["--profile","feed","--resource","api://feed"]"#)));
    let t = answers[1]["Ok"]["token"].as_str().unwrap().strip_prefix("Bearer ").unwrap().to_string();
    assert_eq!(jwt_claims(&t).unwrap()["aud"], "api://feed");
    let before = f.mock.token_requests();
    let answers = talk(&format!("{}\n{}\n", get(&format!("sparse+{url}/nope/"), r#"["--profile","feed"]"#), get("sparse+https://index.crates.io/", "[]")));
    assert_eq!(answers[1], serde_json::json!({"Err":{"kind":"url-not-supported"}}));
    assert_eq!(answers[2], serde_json::json!({"Err":{"kind":"url-not-supported"}}));
    assert_eq!(f.mock.token_requests(), before);

    // logout drops the cached token (then there is nothing left to drop); unknown kinds are refused politely.
    let logout = format!(r#"{{"v":1,"registry":{{"index-url":"sparse+{url}/reg/"}},"kind":"logout","args":[]}}"#);
    let unknown = format!(r#"{{"v":1,"registry":{{"index-url":"sparse+{url}/reg/"}},"kind":"rotate","args":[]}}"#);
    let answers = talk(&format!("{logout}\n{logout}\n{unknown}\n"));
    assert_eq!(answers[1], serde_json::json!({"Ok":{"kind":"logout"}}));
    assert_eq!(answers[2], serde_json::json!({"Err":{"kind":"not-found"}}));
    assert_eq!(answers[3], serde_json::json!({"Err":{"kind":"operation-not-supported"}}));
    let answers = talk(&format!("{}\n", get(&format!("sparse+{url}/reg/"), r#"["--bogus"]"#)));
    assert_eq!(answers[1]["Err"]["kind"], "other");
}
