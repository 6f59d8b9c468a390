//! `entra-token serve`: the App Service managed-identity endpoint on 127.0.0.1, proven
//! with the real azure-identity ManagedIdentityCredential, plus the refusals (401 without
//! or with a wrong header, 403 outside the allow-list) over a raw socket. The raw-socket
//! tests run under Wine too (scripts/windows.sh); those needing Python, /proc or uids do not.

use crate::support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
#[cfg(unix)]
use std::process::Command;
use std::sync::Arc;
#[cfg(unix)]
use std::path::Path;
use std::time::Duration;
#[cfg(unix)]
use std::time::Instant;
use crate::support::{CcProfile, MockAuthority, Sandbox};

const TENANT: &str = "contoso.test";
const APP: &str = "55555555-5555-5555-5555-555555555555";
const SECRET: &str = "serve~secret";

/// A running `entra-token serve` and the two lines it printed.
struct Served {
    child: Child,
    #[cfg_attr(windows, allow(dead_code))]
    endpoint: String,
    header: String,
    port: u16,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fixture(allow: Option<&str>) -> (Sandbox, Arc<MockAuthority>) {
    let mock = Arc::new(MockAuthority::start());
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some(SECRET));
    let sb = Sandbox::new();
    let allow = allow.map(|a| format!("serve_resources = {a}\n")).unwrap_or_default();
    sb.write_config(&CcProfile::new("dev", &mock.url(), TENANT, APP).secret_env("DEV_SECRET").with(&allow).toml());
    (sb, mock)
}

fn serve(sb: &Sandbox) -> Served {
    let mut cmd = sb.cmd();
    cmd.env("DEV_SECRET", SECRET).args(["serve", "-p", "dev"]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn entra-token serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a first line").unwrap();
    let second = lines.next().expect("a second line").unwrap();
    let endpoint = first.strip_prefix("IDENTITY_ENDPOINT=").unwrap_or_else(|| panic!("{first}")).to_string();
    let header = second.strip_prefix("IDENTITY_HEADER=").unwrap_or_else(|| panic!("{second}")).to_string();
    let port = endpoint.strip_prefix("http://127.0.0.1:").and_then(|r| r.strip_suffix("/msi/token")).unwrap_or_else(|| panic!("{endpoint}")).parse().unwrap();
    assert!(header.len() >= 32, "the header secret is long and random: {header}");
    Served { child, endpoint, header, port }
}

/// One raw HTTP/1.1 GET; (status, JSON body).
fn get(port: u16, target: &str, header: Option<&str>) -> (u16, serde_json::Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let h = header.map(|h| format!("X-IDENTITY-HEADER: {h}\r\n")).unwrap_or_default();
    write!(s, "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{h}Connection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
    let body = raw.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {raw}")))
}

#[test]
fn refuses_callers_without_the_header_and_resources_outside_the_allow_list() {
    let (sb, mock) = fixture(Some(r#"["keyvault", "https://storage.azure.com"]"#));
    let s = serve(&sb);
    let q = "/msi/token?api-version=2019-08-01&resource=https://vault.azure.net";

    let (status, body) = get(s.port, q, None);
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["statusCode"], 401);
    let (status, _) = get(s.port, q, Some("not-the-secret"));
    assert_eq!(status, 401);
    assert_eq!(mock.token_requests(), 0, "no token for a caller without the header");

    let (status, body) = get(s.port, "/msi/token?api-version=2019-08-01&resource=https://management.azure.com/", Some(&s.header));
    assert_eq!(status, 403, "{body}");
    assert!(body["message"].as_str().unwrap().contains("serve_resources"), "{body}");
    assert_eq!(mock.token_requests(), 0);

    let (status, _) = get(s.port, "/msi/token?resource=https://vault.azure.net", Some(&s.header));
    assert_eq!(status, 400, "api-version is required");

    // Allowed: the App Service reply shape, then the same token from the cache.
    let (status, body) = get(s.port, q, Some(&s.header));
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_string();
    assert!(mock.issued_access_tokens().contains(&token));
    assert!(body["expires_on"].as_str().unwrap().parse::<i64>().unwrap() > support::wire::now());
    assert_eq!(body["resource"], "https://vault.azure.net");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["client_id"], APP);
    let (status, again) = get(s.port, "/?api-version=2019-08-01&resource=keyvault", Some(&s.header));
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["access_token"], token.as_str(), "an alias of the same resource is served from the cache");
    assert_eq!(mock.token_requests(), 1);
}

// Unix only: the real azure-identity (Python) is not in the Wine prefix.
#[cfg(unix)]
#[test]
fn azure_identity_managed_identity_credential_gets_a_token() {
    let probe = Command::new("python3").args(["-c", "import azure.identity"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        support::skip::missing_tool("python3 with azure-identity", "the real azure-identity check");
        return;
    }
    let (sb, mock) = fixture(None);
    let s = serve(&sb);
    let script = r#"
import sys
from azure.identity import ManagedIdentityCredential
cred = ManagedIdentityCredential()
for scope in sys.argv[1:]:
    t = cred.get_token(scope)
    print(t.token, t.expires_on)
"#;
    let mut py = sb.tool("python3");
    py.env("IDENTITY_ENDPOINT", &s.endpoint)
        .env("IDENTITY_HEADER", &s.header)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .args(["-c", script, "https://vault.azure.net/.default", "https://storage.azure.com/.default"]);
    let out = support::run(py);
    assert!(out.status.success(), "azure-identity failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let issued = mock.issued_access_tokens();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for line in lines {
        let (token, expires_on) = line.split_once(' ').unwrap();
        assert!(issued.iter().any(|t| t == token), "azure-identity got a token the mock authority did not issue");
        assert!(expires_on.parse::<i64>().unwrap() > support::wire::now() + 300);
    }
    let scopes: Vec<String> = mock.requests().iter().filter(|r| r.is_token_request()).filter_map(|r| r.form_get("scope").map(str::to_string)).collect();
    assert_eq!(scopes, vec!["https://vault.azure.net/.default", "https://storage.azure.com/.default"]);
}

#[test]
fn a_profile_that_does_not_exist_fails_at_start() {
    let (sb, _mock) = fixture(None);
    let mut cmd = sb.cmd();
    cmd.args(["serve", "-p", "nope"]);
    let out = support::run(cmd);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "no endpoint lines for a server that never started");
}

#[cfg(unix)]
/// `serve` with `--env-file`: waits for the file (it appears whole, by rename).
fn serve_to_file(sb: &Sandbox, file: &Path) -> (Served, String) {
    let mut cmd = sb.cmd();
    cmd.env("DEV_SECRET", SECRET).args(["serve", "-p", "dev", "--env-file"]).arg(file).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn entra-token serve");
    let start = Instant::now();
    let text = loop {
        // It appears whole (renamed into place), replacing any earlier file at once.
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text.contains("IDENTITY_HEADER=") {
            break text;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "serve wrote no env file: {text:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let var = |k: &str| text.lines().find_map(|l| l.strip_prefix(&format!("{k}="))).unwrap_or_else(|| panic!("{text}")).to_string();
    let (endpoint, header) = (var("IDENTITY_ENDPOINT"), var("IDENTITY_HEADER"));
    let port = endpoint.strip_prefix("http://127.0.0.1:").and_then(|r| r.strip_suffix("/msi/token")).unwrap().parse().unwrap();
    let mut stdout = String::new();
    // Nothing secret on stdout: it closes empty when the server is stopped.
    let mut out = child.stdout.take().unwrap();
    let served = Served { child, endpoint, header, port };
    let (status, _) = get(port, "/msi/token?api-version=2019-08-01&resource=graph", Some(&served.header));
    assert_eq!(status, 200);
    let mut s = served;
    let _ = s.child.kill();
    let _ = s.child.wait();
    out.read_to_string(&mut stdout).unwrap();
    (s, stdout)
}

// Unix only: file modes, symlinks and another uid (Windows ACLs are tested in fs).
#[cfg(unix)]
#[test]
fn env_file_is_private_atomic_and_never_written_through_a_symlink_or_over_a_strangers_file() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let (sb, _mock) = fixture(None);
    let dir = sb.path("shared");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let file = dir.join("serve.env");
    let (served, stdout) = serve_to_file(&sb, &file);
    assert!(stdout.is_empty(), "the header must not go to stdout with --env-file: {stdout}");
    let meta = std::fs::symlink_metadata(&file).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600, "only its owner may read the header");
    assert!(std::fs::read_to_string(&file).unwrap().contains(&format!("IDENTITY_HEADER={}\n", served.header)));

    // An existing file of ours, readable by all: replaced by a 0600 one.
    std::fs::remove_file(&file).unwrap();
    std::fs::write(&file, "old\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    serve_to_file(&sb, &file);
    assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
    assert!(!std::fs::read_to_string(&file).unwrap().contains("old"));

    let refused = |path: &Path| {
        let mut cmd = sb.cmd();
        cmd.env("DEV_SECRET", SECRET).args(["serve", "-p", "dev", "--env-file"]).arg(path);
        let out = support::run(cmd);
        assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout.is_empty());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // A symlink planted where the file goes: refused, its target untouched.
    let target = sb.path("victim.txt");
    std::fs::write(&target, "precious\n").unwrap();
    let link = dir.join("planted.env");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let err = refused(&link);
    assert!(err.contains("is a symlink"), "{err}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
    // Another user's file: refused, left as it was (only root can make one here).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let theirs = dir.join("theirs.env");
        std::fs::write(&theirs, "theirs\n").unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        let err = refused(&theirs);
        assert!(err.contains("belongs to uid 65534"), "{err}");
        assert_eq!(std::fs::read_to_string(&theirs).unwrap(), "theirs\n");
    }
}

const OTHER_ID: &str = "99999999-9999-9999-9999-999999999999";

#[test]
fn a_request_naming_another_identity_is_refused_in_every_spelling() {
    let (sb, mock) = fixture(None);
    let s = serve(&sb);
    let q = "/msi/token?api-version=2019-08-01&resource=https://vault.azure.net";
    let (status, body) = get(s.port, &format!("{q}&client_id={APP}"), Some(&s.header));
    assert_eq!(status, 200, "its own client id names it: {body}");
    let oid = support::jwt_claims(body["access_token"].as_str().unwrap()).unwrap()["oid"].as_str().unwrap().to_string();
    let (status, body) = get(s.port, &format!("{q}&object_id={oid}&principal_id={}", oid.to_uppercase()), Some(&s.header));
    assert_eq!(status, 200, "its own object id names it: {body}");
    let mirid = "/subscriptions/0000/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/other";
    for param in [
        format!("client_id={OTHER_ID}"),
        format!("clientid={OTHER_ID}"),
        format!("object_id={OTHER_ID}"),
        format!("principal_id={OTHER_ID}"),
        format!("mi_res_id={mirid}"),
        format!("msi_res_id={mirid}"),
        format!("client_id={APP}&object_id={OTHER_ID}"),
        "client_id=".to_string(),
    ] {
        let (status, body) = get(s.port, &format!("{q}&{param}"), Some(&s.header));
        assert_eq!(status, 400, "{param}: {body}");
        assert!(body.get("access_token").is_none(), "{param}: {body}");
        assert_eq!(body["statusCode"], 400);
        let msg = body["message"].as_str().unwrap();
        assert!(msg.starts_with("this endpoint serves only profile 'dev'") && msg.contains("names another identity"), "{msg}");
        assert_eq!(body["error_description"], msg);
    }
    let _ = mock;
}

// Unix only: the real azure-identity (Python) is not in the Wine prefix.
#[cfg(unix)]
#[test]
fn azure_identity_asking_for_another_client_id_gets_the_refusal_not_our_token() {
    let probe = Command::new("python3").args(["-c", "import azure.identity"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("skipping: python3 with azure-identity is not installed (CI installs it)");
        return;
    }
    let (sb, mock) = fixture(None);
    let s = serve(&sb);
    let script = r#"
import sys
from azure.identity import ManagedIdentityCredential
kind, value = sys.argv[1], sys.argv[2]
cred = ManagedIdentityCredential(client_id=value) if kind == "client_id" else ManagedIdentityCredential(identity_config={kind: value})
try:
    t = cred.get_token("https://vault.azure.net/.default")
    print("TOKEN", t.token)
except Exception as e:
    print("REFUSED", type(e).__name__, str(e).replace("\n", " "))
"#;
    let run_py = |kind: &str, value: &str| {
        let mut py = sb.tool("python3");
        py.env("IDENTITY_ENDPOINT", &s.endpoint).env("IDENTITY_HEADER", &s.header).env("NO_PROXY", "127.0.0.1,localhost").args(["-c", script, kind, value]);
        let out = support::run(py);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let own = run_py("client_id", APP);
    assert!(own.starts_with("TOKEN "), "its own client id: {own}");
    let issued = mock.issued_access_tokens();
    for (kind, value) in [("client_id", OTHER_ID), ("object_id", OTHER_ID), ("resource_id", "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/other")] {
        let got = run_py(kind, value);
        assert!(got.starts_with("REFUSED ") && got.contains("names another identity"), "{kind}: {got}");
        assert!(!issued.iter().any(|t| got.contains(t.as_str())), "{kind}: a token leaked into the error");
    }
}

// Unix only: reads the kernel's socket table from /proc/net/tcp.
#[cfg(unix)]
#[test]
fn a_slow_client_is_cut_off_and_does_not_block_others_and_serve_listens_on_loopback_only() {
    let (sb, _mock) = fixture(None);
    let s = serve(&sb);
    // The listening socket is 127.0.0.1's (from the kernel's table; no packet leaves loopback).
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let listening: Vec<&str> = table.lines().filter(|l| l.split_whitespace().nth(3) == Some("0A")).filter_map(|l| l.split_whitespace().nth(1)).filter(|a| a.ends_with(&format!(":{:04X}", s.port))).collect();
    assert_eq!(listening, vec![format!("{:08X}:{:04X}", u32::from_ne_bytes([127, 0, 0, 1]), s.port)], "serve listens on 127.0.0.1 only");

    // A client trickling one byte a second, which no per-read timeout would ever cut off.
    let mut slow = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    slow.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let started = Instant::now();
    let request = b"GET /msi/token?api-version=2019-08-01&resource=graph HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    let mut answer = Vec::new();
    let mut normal_served = false;
    for byte in request.iter().cycle() {
        if slow.write_all(&[*byte]).is_err() {
            break;
        }
        let mut buf = [0u8; 512];
        match slow.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        if !normal_served {
            // Meanwhile a normal client is answered at once.
            let t = Instant::now();
            let (status, body) = get(s.port, "/msi/token?api-version=2019-08-01&resource=graph", Some(&s.header));
            assert_eq!(status, 200, "{body}");
            assert!(t.elapsed() < Duration::from_secs(4), "a normal request waited {:?} behind a slow one", t.elapsed());
            normal_served = true;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the slow client was never cut off");
        std::thread::sleep(Duration::from_millis(700));
    }
    let _ = slow.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
    assert!(started.elapsed() >= Duration::from_secs(4), "cut off after the whole-request deadline, not before: {:?}", started.elapsed());
}

/// Another local user (uid 65534, run from root) opens many idle connections: it gets its
/// share of slots and no more, and our own requests keep being answered.
// Unix only: a second uid, from root.
#[cfg(unix)]
#[test]
fn another_local_user_cannot_take_every_connection_slot() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: needs root to act as another local user");
        return;
    }
    let (sb, _mock) = fixture(None);
    let s = serve(&sb);
    let script = r#"
import encodings.idna, os, socket, sys, time
os.setgid(65534); os.setuid(65534)
port = int(sys.argv[1])
conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(24)]
print("opened", flush=True)
answers = {}
for c in conns:
    c.settimeout(20)
    status = c.recv(64)[9:12].decode()
    answers[status] = answers.get(status, 0) + 1
print(" ".join(f"{k}={v}" for k, v in sorted(answers.items())), flush=True)
"#;
    let mut py = Command::new("python3");
    py.args(["-c", script, &s.port.to_string()]).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = py.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "opened");
    // While its connections are held, ours are served.
    let t = Instant::now();
    let (status, body) = get(s.port, "/msi/token?api-version=2019-08-01&resource=graph", Some(&s.header));
    assert_eq!(status, 200, "{body}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let counts = lines.next().unwrap().unwrap();
    let _ = child.wait();
    // Four held until the request deadline cut them off (408); the other twenty turned away.
    assert_eq!(counts, "408=4 503=20", "one local user holds at most 4 connections");
}

/// A second `serve` given the file of one still running is refused with one line and
/// leaves the file (the first one's endpoint and header) as it was; once the first has
/// stopped, the file is free again.
#[cfg(unix)]
#[test]
fn env_file_of_a_serve_still_running_is_not_overwritten() {
    let (sb, _mock) = fixture(None);
    let file = sb.path("serve.env");
    let mut cmd = sb.cmd();
    cmd.env("DEV_SECRET", SECRET).args(["serve", "-p", "dev", "--env-file"]).arg(&file).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let first = Served { child: cmd.spawn().expect("spawn entra-token serve"), endpoint: String::new(), header: String::new(), port: 0 };
    let start = Instant::now();
    while !std::fs::read_to_string(&file).unwrap_or_default().contains("IDENTITY_HEADER=") {
        assert!(start.elapsed() < Duration::from_secs(30), "serve wrote no env file");
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = std::fs::read_to_string(&file).unwrap();
    let mut cmd = sb.cmd();
    cmd.env("DEV_SECRET", SECRET).args(["serve", "-p", "dev", "--env-file"]).arg(&file);
    let out = support::run(cmd);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("still running") && err.contains("serve.env"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before, "the running serve's file is untouched");
    drop(first);
    std::fs::remove_file(&file).unwrap();
    let (again, _) = serve_to_file(&sb, &file);
    assert!(!before.contains(&again.header), "free again once the first has stopped, with a new header");
}

/// App Service's token revocation, as MSAL sends it when given a claims challenge: the
/// revoked token's SHA-256 gets a new token; a hash of anything else gets the cached one.
#[test]
fn a_revoked_token_named_by_its_sha256_is_replaced() {
    let (sb, mock) = fixture(None);
    mock.set_token_lifetime(28 * 3600);
    let s = serve(&sb);
    let at = |extra: &str| {
        let (status, body) = get(s.port, &format!("/msi/token?api-version=2019-08-01&resource=https://vault.azure.net{extra}"), Some(&s.header));
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    };
    let sha256 = |t: &str| ring::digest::digest(&ring::digest::SHA256, t.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>();
    let first = at("");
    assert_eq!(at(&format!("&token_sha256_to_refresh={}", sha256("another token"))), first, "not our token: the cached one stays");
    assert_eq!(mock.token_requests(), 1);
    let fresh = at(&format!("&token_sha256_to_refresh={}", sha256(&first)));
    assert_ne!(fresh, first, "the revoked token is replaced");
    assert_eq!(mock.token_requests(), 2);
    assert_eq!(at(""), fresh, "and the new one is what the cache holds now");
}
