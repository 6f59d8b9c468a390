//! Tests of the mock Entra authority itself, driven with plain ureq: if the stand-in
//! drifts from Entra's wire behaviour, every other integration test proves the wrong thing.

use crate::support;

use std::net::TcpStream;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;
use crate::support::{Fault, MockAuthority, TestCa, jwt_claims};

mod faults;
mod people;
mod ssh_certs;

const CONTOSO: &str = "contoso.test";
const APP: &str = "22222222-2222-2222-2222-222222222222";
const SECRET: &str = "s3cret~value";
const ARM: &str = "https://management.azure.com//.default";

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The AADSTS code of an error body.
    fn aadsts(&self) -> u64 {
        self.json()["error_codes"][0]
            .as_u64()
            .unwrap_or_else(|| panic!("no error_codes: {}", self.body))
    }
}

fn agent_with(tls: Option<ureq::tls::TlsConfig>, timeout: Duration) -> ureq::Agent {
    let mut b = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .max_redirects(0)
        .timeout_global(Some(timeout));
    if let Some(tls) = tls {
        b = b.tls_config(tls);
    }
    b.build().into()
}

fn agent() -> ureq::Agent {
    agent_with(None, Duration::from_secs(10))
}

fn finish(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Resp {
    let mut r = r.expect("request failed");
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let status = r.status().as_u16();
    let body = r.body_mut().read_to_string().expect("read body");
    Resp {
        status,
        headers,
        body,
    }
}

fn post(url: &str, form: &[(&str, &str)]) -> Resp {
    finish(agent().post(url).send_form(form.iter().copied()))
}

fn get(url: &str) -> Resp {
    finish(agent().get(url).call())
}

fn v2_token(m: &MockAuthority, tenant: &str) -> String {
    format!("{}/{tenant}/oauth2/v2.0/token", m.url())
}

fn confidential() -> MockAuthority {
    let m = MockAuthority::start();
    m.add_tenant(CONTOSO);
    m.add_app(APP, Some(SECRET));
    m
}

fn client_credentials(m: &MockAuthority, secret: &str) -> Resp {
    post(
        &v2_token(m, CONTOSO),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", APP),
            ("client_secret", secret),
            ("scope", ARM),
        ],
    )
}

fn user_authority() -> MockAuthority {
    let m = MockAuthority::start();
    m.add_tenant(CONTOSO);
    m.add_app(APP, None);
    m.add_user("alice@contoso.test", "pa55word");
    m
}

fn ropc(m: &MockAuthority, tenant: &str, password: &str, scope: &str) -> Resp {
    post(
        &v2_token(m, tenant),
        &[
            ("grant_type", "password"),
            ("client_id", APP),
            ("username", "alice@contoso.test"),
            ("password", password),
            ("scope", scope),
        ],
    )
}

#[test]
fn v2_client_credentials_issue_an_app_token() {
    let m = confidential();
    let r = client_credentials(&m, SECRET);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("date").is_some_and(|d| d.ends_with(" GMT")));
    let j = r.json();
    assert_eq!(j["token_type"], "Bearer");
    assert_eq!(j["expires_in"], 3600);
    assert!(j["ext_expires_in"].is_i64());
    assert_eq!(j["scope"], ARM);
    assert!(j.get("refresh_token").is_none() && j.get("id_token").is_none());
    let claims = jwt_claims(j["access_token"].as_str().unwrap()).expect("a JWT");
    assert_eq!(claims["aud"], "https://management.azure.com/");
    assert_eq!(claims["tid"], m.tenant_id(CONTOSO));
    assert_eq!(
        claims["iss"],
        format!("{}/{}/v2.0", m.url(), m.tenant_id(CONTOSO))
    );
    assert_eq!(claims["azp"], APP);
    assert!(claims["roles"].is_array() && claims.get("scp").is_none());
    assert_eq!(m.token_requests(), 1);
    assert_eq!(m.grant_count("client_credentials"), 1);
    let req = &m.requests()[0];
    assert_eq!(req.form_get("client_secret"), Some(SECRET));
    assert_eq!(req.path, format!("/{CONTOSO}/oauth2/v2.0/token"));
    assert_eq!(
        m.issued_access_tokens(),
        vec![j["access_token"].as_str().unwrap().to_string()]
    );
}

#[test]
fn client_credentials_errors_carry_entra_codes() {
    let m = confidential();
    let bad = client_credentials(&m, "wrong");
    assert_eq!(bad.status, 401);
    let j = bad.json();
    assert_eq!(j["error"], "invalid_client");
    assert_eq!(bad.aadsts(), 7000215);
    let desc = j["error_description"].as_str().unwrap();
    assert!(
        desc.starts_with("AADSTS7000215: Invalid client secret provided."),
        "{desc}"
    );
    assert!(
        desc.contains("Trace ID: ")
            && desc.contains("Correlation ID: ")
            && desc.contains("Timestamp: ")
    );
    for field in ["timestamp", "trace_id", "correlation_id"] {
        assert!(j[field].is_string(), "{field} missing");
    }

    let unknown_tenant = post(
        &v2_token(&m, "nowhere.test"),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", APP),
            ("client_secret", SECRET),
            ("scope", ARM),
        ],
    );
    assert_eq!(
        (unknown_tenant.status, unknown_tenant.aadsts()),
        (400, 90002)
    );

    let unknown_app = post(
        &v2_token(&m, CONTOSO),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "nope"),
            ("client_secret", SECRET),
            ("scope", ARM),
        ],
    );
    assert_eq!(unknown_app.json()["error"], "unauthorized_client");
    assert_eq!(unknown_app.aadsts(), 700016);

    let on_common = post(
        &v2_token(&m, "organizations"),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", APP),
            ("client_secret", SECRET),
            ("scope", ARM),
        ],
    );
    assert_eq!((on_common.status, on_common.aadsts()), (400, 9001023));

    let cc_scope = |scope: &str| {
        post(
            &v2_token(&m, CONTOSO),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", APP),
                ("client_secret", SECRET),
                ("scope", scope),
            ],
        )
    };
    let two = cc_scope("https://graph.microsoft.com/.default https://vault.azure.net/.default");
    assert_eq!(
        (two.json()["error"].clone(), two.aadsts()),
        ("invalid_scope".into(), 700022)
    );
    assert_eq!(
        cc_scope("https://graph.microsoft.com/User.Read").aadsts(),
        1002012
    );
    assert_eq!(cc_scope("").aadsts(), 1002012);

    let no_secret = post(
        &v2_token(&m, CONTOSO),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", APP),
            ("scope", ARM),
        ],
    );
    assert_eq!((no_secret.status, no_secret.aadsts()), (401, 7000218));
    assert_eq!(m.token_requests(), 8);
}

#[test]
fn client_assertions_go_through_the_checker() {
    let m = confidential();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    m.set_assertion_checker(move |client, jwt, endpoint| {
        log.lock()
            .unwrap()
            .push((client.to_string(), endpoint.to_string()));
        if jwt.starts_with("good.") {
            Ok(())
        } else {
            Err("bad signature".into())
        }
    });
    let send = |assertion: &str| {
        post(
            &v2_token(&m, CONTOSO),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", APP),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion),
                ("scope", ARM),
            ],
        )
    };
    let ok = send("good.e30.c2ln");
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(
        jwt_claims(ok.json()["access_token"].as_str().unwrap()).unwrap()["azpacr"],
        "2"
    );
    let bad = send("evil.e30.c2ln");
    assert_eq!((bad.status, bad.aadsts()), (401, 700027));
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0], (APP.to_string(), v2_token(&m, CONTOSO)));
}

#[test]
fn discovery_names_the_mock_endpoints() {
    let m = confidential();
    let r = get(&format!(
        "{}/{CONTOSO}/v2.0/.well-known/openid-configuration",
        m.url()
    ));
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["token_endpoint"], v2_token(&m, CONTOSO));
    assert_eq!(
        j["device_authorization_endpoint"],
        format!("{}/{CONTOSO}/oauth2/v2.0/devicecode", m.url())
    );
    assert_eq!(
        j["authorization_endpoint"],
        format!("{}/{CONTOSO}/oauth2/v2.0/authorize", m.url())
    );
    assert_eq!(
        j["issuer"],
        format!("{}/{}/v2.0", m.url(), m.tenant_id(CONTOSO))
    );
    let common = get(&format!(
        "{}/organizations/v2.0/.well-known/openid-configuration",
        m.url()
    ));
    assert_eq!(common.status, 200);
    let missing = get(&format!(
        "{}/nowhere.test/v2.0/.well-known/openid-configuration",
        m.url()
    ));
    assert_eq!((missing.status, missing.aadsts()), (400, 90002));
    assert_eq!(m.token_requests(), 0);
}

#[test]
fn v1_answers_numbers_as_strings() {
    let m = confidential();
    let r = post(
        &format!("{}/{CONTOSO}/oauth2/token", m.url()),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", APP),
            ("client_secret", SECRET),
            ("resource", "https://vault.azure.net"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(j["expires_in"], "3600");
    assert!(j["ext_expires_in"].is_string() && j["not_before"].is_string());
    let expires_on: i64 = j["expires_on"].as_str().unwrap().parse().unwrap();
    assert!((expires_on - time::OffsetDateTime::now_utc().unix_timestamp() - 3600).abs() < 5);
    assert_eq!(j["resource"], "https://vault.azure.net");
    let claims = jwt_claims(j["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["aud"], "https://vault.azure.net");
    assert_eq!(claims["ver"], "1.0");
    assert_eq!(m.token_requests(), 1);
}

#[test]
#[cfg_attr(windows, ignore = "Wine's getaddrinfo gives misaligned addresses: a debug build aborts resolving `localhost`")]
fn https_with_the_test_ca() {
    let ca = TestCa::new();
    let m = MockAuthority::start_https(&ca);
    m.add_tenant(CONTOSO);
    assert!(m.url().starts_with("https://127.0.0.1:"));
    let trusting = agent_with(
        Some(
            ureq::tls::TlsConfig::builder()
                .root_certs(ca.ureq_roots())
                .build(),
        ),
        Duration::from_secs(10),
    );
    let url = format!(
        "{}/{CONTOSO}/v2.0/.well-known/openid-configuration",
        m.url()
    );
    let r = finish(trusting.get(&url).call());
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["token_endpoint"], v2_token(&m, CONTOSO));
    let localhost = url.replace("127.0.0.1", "localhost");
    assert_eq!(finish(trusting.get(&localhost).call()).status, 200);
    // Default roots do not know the test CA.
    assert!(agent().get(&url).call().is_err());

    let dir = tempfile::tempdir().unwrap();
    let pem = ca.write_pem(dir.path());
    assert!(
        std::fs::read_to_string(pem)
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
}

#[test]
fn one_agent_makes_many_requests() {
    // `Connection: close` on every answer: a pooling client must not reuse the socket.
    let m = confidential();
    let a = agent();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", APP),
        ("client_secret", SECRET),
        ("scope", ARM),
    ];
    for _ in 0..5 {
        assert_eq!(
            finish(a.post(v2_token(&m, CONTOSO)).send_form(form)).status,
            200
        );
    }
    let tid = m.tenant_id(CONTOSO);
    assert_eq!(
        finish(a.post(v2_token(&m, &tid)).send_form(form)).status,
        200,
        "a domain's tenant id exists too"
    );
    assert_eq!(m.token_requests(), 6);
}

#[test]
fn concurrent_token_requests_are_counted_exactly() {
    let m = Arc::new(confidential());
    m.set_delay(Duration::from_millis(200));
    let started = Instant::now();
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let m = Arc::clone(&m);
            thread::spawn(move || client_credentials(&m, SECRET).status)
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "connections are served concurrently (serially: 4 s)"
    );
    assert_eq!(m.token_requests(), 20);
    let mut tokens = m.issued_access_tokens();
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 20, "every access token is unique");
}

#[test]
fn dropping_the_mock_stops_it_and_releases_hung_clients() {
    let m = confidential();
    let addr = m.url().trim_start_matches("http://").to_string();
    m.push_fault(Fault::Hang);
    let url = v2_token(&m, CONTOSO);
    let hung = thread::spawn(move || {
        let started = Instant::now();
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", APP),
            ("client_secret", SECRET),
            ("scope", ARM),
        ];
        let result = agent_with(None, Duration::from_secs(20))
            .post(&url)
            .send_form(form);
        (result.is_err(), started.elapsed())
    });
    while m.token_requests() == 0 {
        thread::sleep(Duration::from_millis(5));
    }
    drop(m);
    let (failed, waited) = hung.join().unwrap();
    assert!(
        failed && waited < Duration::from_secs(5),
        "hung client released after {waited:?}"
    );
    assert!(
        TcpStream::connect(&addr).is_err(),
        "nothing listens after drop"
    );
}

#[test]
fn refused_url_refuses() {
    let url = support::refused_url();
    assert!(url.starts_with("http://127.0.0.1:"));
    assert!(TcpStream::connect(url.trim_start_matches("http://")).is_err());
}

#[test]
fn sandbox_and_scrubbed_environment() {
    let sb = support::Sandbox::new();
    sb.write_config("[profile.default]\n");
    assert_eq!(
        std::fs::read_to_string(sb.path("config.toml")).unwrap(),
        "[profile.default]\n"
    );
    let cmd = sb.cmd();
    let envs: Vec<(String, String)> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v?.to_str()?.to_string())))
        .collect();
    let env = |k: &str| envs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(
        env("ENTRA_TOKEN_CACHE_DIR"),
        Some(sb.path("cache").display().to_string())
    );
    assert_eq!(env("NO_PROXY").as_deref(), Some("127.0.0.1,localhost"));
    assert!(
        env("AZURE_POD_IDENTITY_AUTHORITY_HOST")
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    for name in [
        "AZURE_CLIENT_SECRET",
        "IDENTITY_ENDPOINT",
        "https_proxy",
        "Http_Proxy",
        "GIT_ASKPASS",
        "SSH_AUTH_SOCK",
    ] {
        assert!(support::env::is_scrubbed(name), "{name}");
    }
    assert!(!support::env::is_scrubbed("PATH") && !support::env::is_scrubbed("HOME"));
    let dir = sb.dir.path().to_path_buf();
    drop(sb);
    assert!(!dir.exists(), "the sandbox is removed on drop");
}

// Unix only: runs the Unix `cat` and `sleep`.
#[cfg(unix)]
#[test]
fn run_with_stdin_pipes_and_watches() {
    let out = support::run_with_stdin(std::process::Command::new("cat"), "hello\n");
    assert!(out.status.success());
    assert_eq!(out.stdout, b"hello\n");
    let mut sleeper = std::process::Command::new("sleep");
    sleeper.arg("30");
    let started = Instant::now();
    let overrun = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        support::env::run_with_timeout(sleeper, "", Duration::from_millis(200))
    }));
    assert!(overrun.is_err(), "an overrun panics");
    assert!(started.elapsed() < Duration::from_secs(10));
}
