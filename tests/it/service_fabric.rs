//! Service Fabric managed identity end to end through the binary: a stand-in token endpoint
//! on 127.0.0.1 over TLS, with a certificate from a throwaway CA the OS store does not
//! trust. The endpoint is verified by IDENTITY_SERVER_THUMBPRINT alone: the right pin gets
//! the token, a wrong one (even with the CA trusted through SSL_CERT_FILE) fails the
//! handshake before the `Secret` header is sent, and a server that shows the pinned
//! certificate without holding its key is refused too.

use crate::support;

use std::process::Command;
use std::sync::Arc;

use serde_json::json;
use crate::support::http::{Reply, Request, StandIn};
use crate::support::{Sandbox, TestCa, ok_stdout, run, stderr, stdout};

const ARM: &str = "https://management.azure.com/";
const SECRET: &str = "sf-secret-header-value";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha1(der: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der).as_ref())
}

fn sha256(der: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref())
}

/// A Service Fabric token endpoint stand-in over TLS that records every request it reads
/// (a request is recorded only once a TLS session carried it).
struct Fabric(StandIn);

impl Fabric {
    fn start(tls: Arc<rustls::ServerConfig>) -> Fabric {
        Fabric(StandIn::start_tls(Some(tls), |req, n| {
            if req.header("secret") != Some(SECRET) {
                return Reply::json(401, &json!({"error": {"code": "SecretHeaderNotFound", "message": "Secret is not found in the request headers."}}));
            }
            let resource = req.query.iter().find(|(k, _)| k == "resource").map(|(_, v)| v.clone()).unwrap_or_default();
            let now = support::wire::now();
            Reply::json(200, &json!({"access_token": format!("sf-token-{}", n + 1), "expires_on": (now + 3600).to_string(), "resource": resource, "token_type": "Bearer"}))
        }))
    }

    fn endpoint(&self) -> String {
        format!("{}/metadata/identity/oauth2/token", self.0.url())
    }

    fn requests(&self) -> Vec<Request> {
        self.0.requests()
    }
}

/// `get-token` for ARM through managed identity, with Service Fabric's three variables.
fn cmd(sb: &Sandbox, endpoint: &str, thumbprint: &str) -> Command {
    let mut c = sb.cmd();
    c.args(["get-token", "-r", ARM, "--flow", "managed-identity"])
        .env("IDENTITY_ENDPOINT", endpoint)
        .env("IDENTITY_HEADER", SECRET)
        .env("IDENTITY_SERVER_THUMBPRINT", thumbprint);
    c
}

#[test]
fn the_pinned_certificate_gets_the_token_and_the_cache_serves_the_next_call() {
    let ca = TestCa::new();
    let (tls, leaf) = ca.server_config_and_leaf();
    let sf = Fabric::start(tls);
    let sb = Sandbox::new();
    // As Service Fabric sets it (upper-case SHA-1 hex); the OS store does not know the CA.
    let pin = sha1(&leaf).to_ascii_uppercase();
    assert_eq!(ok_stdout(&run(cmd(&sb, &sf.endpoint(), &pin))), "sf-token-1");
    let reqs = sf.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].path, "/metadata/identity/oauth2/token");
    assert_eq!(reqs[0].header("secret"), Some(SECRET));
    let q = |k: &str| reqs[0].query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(q("api-version"), Some("2019-07-01-preview"));
    assert_eq!(q("resource"), Some(ARM));

    // Cached: the endpoint is not touched again, even with a pin that would now fail.
    assert_eq!(ok_stdout(&run(cmd(&sb, &sf.endpoint(), &pin))), "sf-token-1");
    assert_eq!(ok_stdout(&run(cmd(&sb, &sf.endpoint(), &"0".repeat(40)))), "sf-token-1");
    assert_eq!(sf.requests().len(), 1, "the second and third calls came from the cache");
    // Another IDENTITY_HEADER is another application on the same endpoint: the endpoint is
    // asked (and refuses that secret), the first application's cached token is never served.
    let mut c = cmd(&sb, &sf.endpoint(), &pin);
    c.env("IDENTITY_HEADER", "another-applications-secret");
    let out = run(c);
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).is_empty());
    assert_eq!(sf.requests().len(), 2);

    // Other spellings of the same pin: lower case, colon-separated, and SHA-256.
    let colons = sha1(&leaf).as_bytes().chunks(2).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join(":");
    for spelling in [sha1(&leaf), colons, sha256(&leaf)] {
        let mut c = cmd(&sb, &sf.endpoint(), &spelling);
        c.arg("--force");
        assert!(ok_stdout(&run(c)).starts_with("sf-token-"), "{spelling}");
    }
    assert_eq!(sf.requests().len(), 5);
}

#[test]
fn a_wrong_pin_fails_the_handshake_before_the_secret_is_sent_even_with_the_ca_trusted() {
    let ca = TestCa::new();
    let (tls, leaf) = ca.server_config_and_leaf();
    let sf = Fabric::start(tls);
    let sb = Sandbox::new();
    let ca_pem = ca.write_pem(&sb.path("ca"));
    let wrong = "0123456789ABCDEF0123456789ABCDEF01234567";
    let presented = sha1(&leaf).to_ascii_uppercase();
    for trust_ca in [false, true] {
        let mut c = cmd(&sb, &sf.endpoint(), wrong);
        if trust_ca {
            // The OS store path would accept this certificate; the pin still decides.
            c.env("SSL_CERT_FILE", &ca_pem);
        }
        let out = run(c);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(4), "{err}");
        assert!(stdout(&out).is_empty());
        assert!(err.contains(&presented) && err.contains(wrong), "names both thumbprints: {err}");
        assert!(err.contains("IDENTITY_SERVER_THUMBPRINT") && err.contains("hint:"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(!err.contains(SECRET), "{err}");
    }
    // The server sent its certificate (the error names its thumbprint), yet no request,
    // and so no Secret header, ever reached it.
    assert!(sf.requests().is_empty(), "{:?}", sf.requests());
}

#[test]
fn a_server_showing_the_pinned_certificate_without_its_key_is_refused() {
    let ca = TestCa::new();
    let (_, leaf) = ca.server_config_and_leaf();
    let impostor = Fabric::start(ca.impostor_config(&leaf));
    let sb = Sandbox::new();
    let out = run(cmd(&sb, &impostor.endpoint(), &sha1(&leaf)));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("BadSignature"), "the pin matched; the signature is what failed: {err}");
    assert!(err.contains("holder of the pinned certificate") && !err.contains("corporate proxy"), "{err}");
    assert!(impostor.requests().is_empty(), "{:?}", impostor.requests());
}

#[test]
fn malformed_pins_and_plain_http_are_refused_and_network_errors_are_network_errors() {
    let ca = TestCa::new();
    let (tls, leaf) = ca.server_config_and_leaf();
    let sf = Fabric::start(tls);
    let sb = Sandbox::new();
    for bad in ["not-a-thumbprint", "0123", &format!("{}zz", &sha1(&leaf)[..38])] {
        let out = run(cmd(&sb, &sf.endpoint(), bad));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{bad}: {err}");
        assert!(err.contains("IDENTITY_SERVER_THUMBPRINT") && err.contains("hint:"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    // http, even on loopback: the pin would check nothing, so it is not an option.
    let plain = sf.endpoint().replacen("https://", "http://", 1);
    let out = run(cmd(&sb, &plain, &sha1(&leaf)));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not https"), "{err}");
    assert!(sf.requests().is_empty());
    // Nothing listening: a network error like any other endpoint's.
    let refused = format!("{}/metadata/identity/oauth2/token", support::refused_url().replacen("http://", "https://", 1));
    let out = run(cmd(&sb, &refused, &sha1(&leaf)));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("connection refused"), "{}", stderr(&out));
}

#[test]
fn doctor_reports_the_pin() {
    let sb = Sandbox::new();
    sb.write_config("[profiles.me]\nflow = \"auto\"\n");
    let https = support::refused_url().replacen("http://", "https://", 1);
    let doctor = |endpoint: &str, thumbprint: &str| {
        let mut c = sb.cmd();
        c.args(["doctor", "-p", "me", "--offline"])
            .env("IDENTITY_ENDPOINT", endpoint)
            .env("IDENTITY_HEADER", SECRET)
            .env("IDENTITY_SERVER_THUMBPRINT", thumbprint);
        String::from_utf8(run(c).stdout).unwrap()
    };
    let pin = "ab".repeat(20);
    let report = doctor(&https, &pin);
    assert!(report.contains(&format!("TLS pinned to SHA-1 thumbprint {}", pin.to_ascii_uppercase())), "{report}");
    assert!(!report.contains(SECRET), "{report}");
    // http and a malformed pin are named as the reason managed identity cannot be used.
    let report = doctor(&support::refused_url(), &pin);
    assert!(report.contains("is not https"), "{report}");
    let report = doctor(&https, "xyz");
    assert!(report.contains("IDENTITY_SERVER_THUMBPRINT 'xyz' is not a certificate thumbprint"), "{report}");
}
