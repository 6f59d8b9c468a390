//! `entra-token serve`: the App Service managed-identity endpoint on 127.0.0.1, proven
//! with the real azure-identity ManagedIdentityCredential, plus the refusals (401 without
//! or with a wrong header, 403 outside the allow-list) over a raw socket.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use support::{MockAuthority, Sandbox};

const TENANT: &str = "contoso.test";
const APP: &str = "55555555-5555-5555-5555-555555555555";
const SECRET: &str = "serve~secret";

/// A running `entra-token serve` and the two lines it printed.
struct Served {
    child: Child,
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
    sb.write_config(&format!(
        "[profiles.dev]\ntenant = \"{TENANT}\"\nclient_id = \"{APP}\"\nflow = \"client-credentials\"\nclient_secret_env = \"DEV_SECRET\"\nauthority = \"{}\"\n{allow}",
        mock.url()
    ));
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
