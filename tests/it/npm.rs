//! npm, pnpm and yarn 1 against an Azure-Artifacts-shaped registry stand-in (https on 127.0.0.1,
//! every request needs a Bearer token the stand-in authority issued): `setup npm --apply`
//! writes `_authToken=${ENTRA_ACCESS_TOKEN}` into ~/.npmrc (no token), and `entra-token
//! exec` supplies the variable for the one install. The real npm of this machine, and pnpm
//! and yarn from the npm registry (.ci/run installs them into target/npm-tools).

use crate::support::http::{Reply, StandIn};
use crate::support::{MockAuthority, Sandbox, run, stderr, text};
use base64::Engine as _;
use serde_json::json;
#[cfg(unix)]
use std::path::Path;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

const TENANT: &str = "contoso.test";
const APP: &str = "77777777-7777-7777-7777-777777777777";
const SECRET: &str = "npm~secret";
const FEED_PATH: &str = "/contoso/_packaging/feed/npm/registry/";

struct Fixture {
    sb: Sandbox,
    // Read by the real-client tests, which run on Unix only.
    #[cfg_attr(windows, allow(dead_code))]
    mock: Arc<MockAuthority>,
    #[cfg_attr(windows, allow(dead_code))]
    registry: StandIn,
    #[cfg_attr(windows, allow(dead_code))]
    ca_pem: PathBuf,
}

/// `hello-entra-0.1.0.tgz` as npm packs it (a `package/` directory), made with tar.
fn tarball(sb: &Sandbox) -> Vec<u8> {
    let root = sb.path("pkg-src");
    std::fs::create_dir_all(root.join("package")).unwrap();
    std::fs::write(root.join("package/package.json"), r#"{"name":"hello-entra","version":"0.1.0","main":"index.js"}"#).unwrap();
    std::fs::write(root.join("package/index.js"), "module.exports = 'hello from the feed';\n").unwrap();
    let file = sb.path("hello-entra-0.1.0.tgz");
    let out = Command::new("tar").arg("-czf").arg(&file).arg("-C").arg(&root).arg("package").output().expect("tar");
    assert!(out.status.success(), "tar: {}", text(&out.stderr));
    std::fs::read(file).unwrap()
}

fn fixture() -> Fixture {
    let (mock, sb, ca, ca_pem) = crate::support::feed_setup(TENANT, APP, SECRET);
    let tgz = tarball(&sb);
    let sha512 = base64::engine::general_purpose::STANDARD.encode(ring::digest::digest(&ring::digest::SHA512, &tgz));
    let sha1: String = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &tgz).as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let base = Arc::new(Mutex::new(String::new()));
    let (issued, base_in) = (Arc::clone(&mock), Arc::clone(&base));
    let registry = StandIn::start_tls(Some(ca.server_config()), move |req, _| {
        let token = req.header("authorization").and_then(|a| a.strip_prefix("Bearer ")).unwrap_or("");
        if !issued.issued_access_tokens().iter().any(|t| t == token) {
            return Reply::json(401, &json!({"error": "a token is required"})).with_header("WWW-Authenticate", "Bearer");
        }
        let feed = format!("{}{FEED_PATH}", base_in.lock().unwrap());
        match req.path.strip_prefix(FEED_PATH) {
            Some("hello-entra") => Reply::json(
                200,
                &json!({"name": "hello-entra", "dist-tags": {"latest": "0.1.0"}, "versions": {"0.1.0": {
                    "name": "hello-entra", "version": "0.1.0", "main": "index.js",
                    "dist": {"tarball": format!("{feed}hello-entra/-/hello-entra-0.1.0.tgz"), "shasum": sha1, "integrity": format!("sha512-{sha512}")}}}}),
            ),
            Some("hello-entra/-/hello-entra-0.1.0.tgz") => Reply::new(200, "application/octet-stream", tgz.clone()),
            _ => Reply::json(404, &json!({"error": "not found"})),
        }
    });
    *base.lock().unwrap() = registry.url();
    sb.write_config(&format!(
        "[profiles.feed]\ntenant = \"{TENANT}\"\nclient_id = \"{APP}\"\nflow = \"client-credentials\"\nclient_secret_env = \"FEED_SECRET\"\nauthority = \"{}\"\nresource = \"499b84ac-1321-427f-aa17-267ca6975798\"\nurls = [\"{}/contoso/\"]\n",
        mock.url(),
        registry.url()
    ));
    Fixture { sb, mock, registry, ca_pem }
}

/// A project depending on hello-entra from the feed (its .npmrc names the registry and the
/// test CA, as a project's checked-in .npmrc would name the feed).
#[cfg(unix)]
fn project(f: &Fixture, name: &str) -> PathBuf {
    let dir = f.sb.path(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("package.json"), r#"{"name":"consumer","version":"1.0.0","private":true,"dependencies":{"hello-entra":"0.1.0"}}"#).unwrap();
    std::fs::write(dir.join(".npmrc"), format!("registry={}{FEED_PATH}\ncafile={}\n", f.registry.url(), f.ca_pem.display())).unwrap();
    dir
}

/// `program args` in the sandbox, in `dir`, with npm's cache and notifier kept local.
#[cfg(unix)]
fn tool(f: &Fixture, dir: &Path, program: &str, args: &[&str]) -> Command {
    let mut c = f.sb.tool(program);
    c.args(args).current_dir(dir).env("FEED_SECRET", SECRET).env("npm_config_cache", f.sb.path("npm-cache")).env("npm_config_update_notifier", "false").env("npm_config_audit", "false").env("npm_config_fund", "false");
    c
}

/// `entra-token exec -p feed -r devops -- program args`, as `setup npm` says to run it.
#[cfg(unix)]
fn through_exec(f: &Fixture, dir: &Path, program: &str, args: &[&str]) -> Command {
    let mut c = tool(f, dir, env!("CARGO_BIN_EXE_entra-token"), &["exec", "-p", "feed", "-r", "devops", "--", program]);
    c.args(args);
    c
}

#[cfg(unix)]
fn setup_npm(f: &Fixture) {
    let mut c = f.sb.cmd();
    c.args(["setup", "npm", "--registry", &format!("{}{FEED_PATH}", f.registry.url())]);
    let printed = run(c);
    assert!(printed.status.success(), "{}", stderr(&printed));
    assert!(text(&printed.stdout).contains(":_authToken=${ENTRA_ACCESS_TOKEN}"), "{}", text(&printed.stdout));
    assert!(!f.sb.path("home/.npmrc").exists(), "printing writes nothing");
    let mut c = f.sb.cmd();
    c.args(["setup", "npm", "--apply", "--registry", &format!("{}{FEED_PATH}", f.registry.url())]);
    let out = run(c);
    assert!(out.status.success(), "{}", stderr(&out));
    let npmrc = std::fs::read_to_string(f.sb.path("home/.npmrc")).unwrap();
    let host = f.registry.url().trim_start_matches("https://").to_string();
    assert_eq!(npmrc, format!("//{host}{FEED_PATH}:_authToken=${{ENTRA_ACCESS_TOKEN}}\n//{host}/contoso/_packaging/feed/npm/:_authToken=${{ENTRA_ACCESS_TOKEN}}\n"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(f.sb.path("home/.npmrc")).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

/// No file the clients keep holds a token the authority issued.
#[cfg(unix)]
fn no_token_on_disk(f: &Fixture, files: &[PathBuf]) {
    for t in f.mock.issued_access_tokens() {
        for file in files {
            let body = std::fs::read_to_string(file).unwrap_or_default();
            assert!(!body.contains(&t), "{} holds a token", file.display());
        }
    }
}

#[cfg(unix)]
#[test]
fn npm_installs_from_the_feed_with_the_token_exec_supplies() {
    if Command::new("npm").arg("--version").output().is_err() {
        return crate::support::skip::missing_tool("npm", "the npm feed test");
    }
    let f = fixture();
    setup_npm(&f);
    let dir = project(&f, "proj-npm");
    // Without exec the variable is empty: the feed refuses npm.
    let out = run(tool(&f, &dir, "npm", &["install"]));
    assert!(!out.status.success(), "npm installed without a token");
    assert!(text(&out.stderr).contains("401") || text(&out.stderr).contains("E401"), "{}", text(&out.stderr));
    assert!(f.mock.issued_access_tokens().is_empty());
    // Through exec: one token, sent as Bearer, and the package installed.
    let out = run(through_exec(&f, &dir, "npm", &["install"]));
    assert!(out.status.success(), "npm install: {}\n{}", text(&out.stdout), text(&out.stderr));
    assert!(dir.join("node_modules/hello-entra/index.js").is_file());
    assert_eq!(f.mock.issued_access_tokens().len(), 1);
    let authed = f.registry.requests().iter().filter(|r| r.header("authorization").is_some_and(|a| a.starts_with("Bearer ey"))).count();
    assert!(authed >= 2, "the packument and the tarball came with the token ({authed})");
    no_token_on_disk(&f, &[f.sb.path("home/.npmrc"), dir.join(".npmrc"), dir.join("package-lock.json"), dir.join("package.json")]);
}

#[cfg(unix)]
#[test]
fn pnpm_from_the_npm_registry_installs_through_the_same_lines() {
    let pnpm = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/npm-tools/node_modules/.bin/pnpm");
    if !pnpm.is_file() {
        return crate::support::skip::missing_tool("pnpm", "target/npm-tools (npm install --prefix target/npm-tools pnpm)");
    }
    let f = fixture();
    setup_npm(&f);
    let dir = project(&f, "proj-pnpm");
    let pnpm = pnpm.to_string_lossy().into_owned();
    let store = f.sb.path("pnpm-store").to_string_lossy().into_owned();
    let out = run(tool(&f, &dir, &pnpm, &["install", "--store-dir", &store]));
    assert!(!out.status.success(), "pnpm installed without a token");
    let out = run(through_exec(&f, &dir, &pnpm, &["install", "--store-dir", &store]));
    assert!(out.status.success(), "pnpm install: {}\n{}", text(&out.stdout), text(&out.stderr));
    assert!(dir.join("node_modules/hello-entra/index.js").exists());
    assert_eq!(f.mock.issued_access_tokens().len(), 1);
    no_token_on_disk(&f, &[f.sb.path("home/.npmrc"), dir.join(".npmrc"), dir.join("pnpm-lock.yaml")]);
}

#[test]
fn setup_npm_refuses_a_registry_no_profile_claims() {
    let f = fixture();
    let mut c = f.sb.cmd();
    c.args(["setup", "npm", "--apply", "--registry", "https://registry.npmjs.org/"]);
    let out = run(c);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no profile claims https://registry.npmjs.org/"), "{}", stderr(&out));
    assert!(!f.sb.path("home/.npmrc").exists());
}

#[cfg(unix)]
#[test]
fn yarn_classic_from_the_npm_registry_installs_through_the_same_lines() {
    let yarn = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/npm-tools/node_modules/.bin/yarn");
    if !yarn.is_file() {
        return crate::support::skip::missing_tool("yarn", "target/npm-tools (npm install --prefix target/npm-tools yarn@1)");
    }
    let f = fixture();
    setup_npm(&f);
    let dir = project(&f, "proj-yarn");
    // yarn 1 sends a token for an unscoped package only with always-auth, which Azure
    // Artifacts' project .npmrc for yarn carries too.
    let npmrc = std::fs::read_to_string(dir.join(".npmrc")).unwrap();
    std::fs::write(dir.join(".npmrc"), format!("{npmrc}always-auth=true\n")).unwrap();
    let yarn = yarn.to_string_lossy().into_owned();
    let cache = f.sb.path("yarn-cache").to_string_lossy().into_owned();
    let args = ["install", "--non-interactive", "--no-progress", "--cache-folder", &cache];
    let out = run(tool(&f, &dir, &yarn, &args));
    assert!(!out.status.success(), "yarn installed without a token");
    let out = run(through_exec(&f, &dir, &yarn, &args));
    assert!(out.status.success(), "yarn install: {}\n{}", text(&out.stdout), text(&out.stderr));
    assert!(dir.join("node_modules/hello-entra/index.js").exists());
    assert_eq!(f.mock.issued_access_tokens().len(), 1);
    no_token_on_disk(&f, &[f.sb.path("home/.npmrc"), dir.join(".npmrc"), dir.join("yarn.lock")]);
}
