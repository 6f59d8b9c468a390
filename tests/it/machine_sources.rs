//! Machines sign in without secrets on disk, end to end through the binary against local
//! stand-ins: client certificates (the mock verifies the assertion's signature with the
//! certificate's public key), workload identity federation (a rotating token file, GitHub
//! Actions OIDC, Terraform's names) and every managed identity endpoint (App Service,
//! IMDS via AZURE_POD_IDENTITY_AUTHORITY_HOST, Azure Arc, Cloud Shell). Every answer is
//! cached: the second call makes no request.

use crate::support;

use std::process::Output;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};
use crate::support::http::{Reply, Request, StandIn};
use crate::support::{MockAuthority, Sandbox, ok_stdout, run, stderr, stdout};

const TENANT: &str = "contoso.test";
const APP: &str = "22222222-2222-2222-2222-222222222222";
const ARM: &str = "https://management.azure.com/";

const CERT: &str = include_str!("../fixtures/client-cert.pem");
const CA: &str = include_str!("../fixtures/test-ca.pem");
const KEY_PKCS8: &str = include_str!("../fixtures/client-key-pkcs8.pem");
const KEY_PKCS1: &str = include_str!("../fixtures/client-key-pkcs1.pem");
const KEY_ENCRYPTED: &str = include_str!("../fixtures/client-key-encrypted.pem");

fn run_args(sb: &Sandbox, args: &[&str]) -> Output {
    let mut c = sb.cmd();
    c.args(args);
    run(c)
}

fn query<'a>(r: &'a Request, k: &str) -> Option<&'a str> {
    r.query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

/// A managed identity answer as the platforms send it: numbers as strings, `expires_on`.
fn mi_reply(token: &str, resource: &str) -> Reply {
    let now = support::wire::now();
    Reply::json(
        200,
        &json!({"access_token": token, "expires_on": (now + 3600).to_string(), "expires_in": "3600", "resource": resource, "token_type": "Bearer", "client_id": "mi-client"}),
    )
}

// ---------------------------------------------------------------- certificates

fn cert_mock() -> MockAuthority {
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_app(APP, None);
    mock
}

/// Verifies what the binary sent: signature with the key's public half, header and claims.
fn check_assertion(jwt: &str, endpoint: &str, alg: &str, key_pem: &str) -> Result<(), String> {
    let key_der = rustls_pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| e.to_string())?;
    let pair = match &key_der {
        rustls_pki_types::PrivateKeyDer::Pkcs8(k) => signature::RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
        rustls_pki_types::PrivateKeyDer::Pkcs1(k) => signature::RsaKeyPair::from_der(k.secret_pkcs1_der()),
        _ => return Err("unexpected key type".into()),
    }
    .map_err(|e| e.to_string())?;
    let (input, sig) = jwt.rsplit_once('.').ok_or("no signature")?;
    let verify_alg: &dyn signature::VerificationAlgorithm = match alg {
        "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
        _ => &signature::RSA_PKCS1_2048_8192_SHA256,
    };
    let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|e| e.to_string())?;
    signature::UnparsedPublicKey::new(verify_alg, signature::KeyPair::public_key(&pair).as_ref())
        .verify(input.as_bytes(), &sig)
        .map_err(|_| "signature does not verify with the certificate's key".to_string())?;
    let (h, c) = support::wire::jwt_parts(jwt).ok_or("not a JWT")?;
    let leaf = rustls_pki_types::CertificateDer::from_pem_slice(CERT.as_bytes()).unwrap();
    if h["alg"] != alg {
        return Err(format!("alg {}", h["alg"]));
    }
    match alg {
        "PS256" if h["x5t#S256"] != URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &leaf)) => return Err("x5t#S256".into()),
        "RS256" if h["x5t"] != URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &leaf)) => return Err("x5t".into()),
        _ => {}
    }
    let now = support::wire::now();
    let (iat, nbf, exp) = (c["iat"].as_i64().unwrap_or(0), c["nbf"].as_i64().unwrap_or(0), c["exp"].as_i64().unwrap_or(0));
    if c["aud"] != endpoint || c["iss"] != APP || c["sub"] != APP {
        return Err(format!("claims {c}"));
    }
    if !support::wire::is_guid(c["jti"].as_str().unwrap_or("")) || (iat - now).abs() > 60 || nbf > now + 5 || exp <= now || exp - iat > 600 {
        return Err(format!("times or jti {c}"));
    }
    Ok(())
}

#[test]
fn certificate_ps256_assertion_is_verified_and_cached() {
    let mock = cert_mock();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    {
        let seen = Arc::clone(&seen);
        mock.set_assertion_checker(move |client, jwt, endpoint| {
            seen.lock().unwrap().push(jwt.to_string());
            assert_eq!(client, APP);
            check_assertion(jwt, endpoint, "PS256", KEY_PKCS8)
        });
    }
    let sb = Sandbox::new();
    let pem = sb.write_file("cert.pem", format!("{CERT}{KEY_PKCS8}"));
    sb.write_config(&format!(
        "[profiles.ci]\nflow = \"client-credentials\"\ntenant = \"{TENANT}\"\nclient_id = \"{APP}\"\nauthority = \"{}\"\ncertificate_path = '{}'\n",
        mock.url(),
        pem.display()
    ));
    let token = ok_stdout(&run_args(&sb, &["get-token", "-p", "ci", "-r", ARM]));
    assert_eq!(mock.issued_access_tokens(), vec![token.clone()]);
    let jwts = seen.lock().unwrap().clone();
    assert_eq!(jwts.len(), 1);
    let (h, _) = support::wire::jwt_parts(&jwts[0]).unwrap();
    assert!(h.get("x5c").is_none(), "no chain unless asked: {h}");
    let req = mock.requests().into_iter().find(|r| r.is_token_request()).unwrap();
    assert_eq!(req.form_get("client_assertion_type"), Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"));
    assert!(req.form_get("client_secret").is_none());
    // Cached: no second request, and a forced one signs a fresh assertion (new jti).
    assert_eq!(ok_stdout(&run_args(&sb, &["get-token", "-p", "ci", "-r", ARM])), token);
    assert_eq!(mock.token_requests(), 1);
    ok_stdout(&run_args(&sb, &["get-token", "-p", "ci", "-r", ARM, "--force"]));
    let jwts = seen.lock().unwrap().clone();
    assert_eq!(jwts.len(), 2);
    let jti = |j: &str| support::wire::jwt_parts(j).unwrap().1["jti"].clone();
    assert_ne!(jti(&jwts[0]), jti(&jwts[1]));
}

#[test]
fn certificate_rs256_for_adfs_with_pkcs1_key_and_chain() {
    let mock = cert_mock();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    {
        let seen = Arc::clone(&seen);
        mock.set_assertion_checker(move |_, jwt, endpoint| {
            seen.lock().unwrap().push(jwt.to_string());
            check_assertion(jwt, endpoint, "RS256", KEY_PKCS1)
        });
    }
    let sb = Sandbox::new();
    // CA first: the binary must find the leaf that matches the key.
    let pem = sb.write_file("cert.pem", format!("{CA}{KEY_PKCS1}{CERT}"));
    sb.write_config(&format!(
        "[profiles.adfs]\nflow = \"client-credentials\"\ntenant = \"{TENANT}\"\nclient_id = \"{APP}\"\nauthority = \"{}\"\ncertificate_path = '{}'\nassertion_alg = \"RS256\"\nsend_certificate_chain = true\n",
        mock.url(),
        pem.display()
    ));
    ok_stdout(&run_args(&sb, &["get-token", "-p", "adfs", "-r", ARM]));
    let jwts = seen.lock().unwrap().clone();
    let (h, _) = support::wire::jwt_parts(&jwts[0]).unwrap();
    let der = |pem: &str| STANDARD.encode(rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap());
    assert_eq!(h["x5c"], json!([der(CERT), der(CA)]), "leaf first, then the chain");
}

#[test]
fn certificate_from_environment_variables() {
    let mock = cert_mock();
    mock.set_assertion_checker(|_, jwt, endpoint| check_assertion(jwt, endpoint, "PS256", KEY_PKCS8));
    let sb = Sandbox::new();
    let pem = sb.write_file("env-cert.pem", format!("{KEY_PKCS8}{CERT}"));
    let mut cmd = sb.cmd();
    cmd.args(["get-token", "-r", ARM])
        .env("AZURE_AUTHORITY_HOST", mock.url())
        .env("AZURE_TENANT_ID", TENANT)
        .env("AZURE_CLIENT_ID", APP)
        .env("AZURE_CLIENT_CERTIFICATE_PATH", &pem);
    let token = ok_stdout(&run(cmd));
    assert_eq!(mock.issued_access_tokens(), vec![token]);
}

#[test]
fn encrypted_keys_and_pfx_files_get_a_clear_error() {
    let mock = cert_mock();
    let sb = Sandbox::new();
    for (name, contents) in [("enc.pem", format!("{CERT}{KEY_ENCRYPTED}").into_bytes()), ("cert.pfx", vec![0x30, 0x82, 0x0a, 0x01, 0x02, 0x01, 0x03])] {
        let path = sb.write_file(name, contents);
        let mut cmd = sb.cmd();
        cmd.args(["get-token", "-r", ARM])
            .env("AZURE_AUTHORITY_HOST", mock.url())
            .env("AZURE_TENANT_ID", TENANT)
            .env("AZURE_CLIENT_ID", APP)
            .env("AZURE_CLIENT_CERTIFICATE_PATH", &path)
            .env("AZURE_CLIENT_CERTIFICATE_PASSWORD", "test");
        let out = run(cmd);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("openssl") && err.contains(name), "{err}");
        assert!(!err.contains("test\n") && stdout(&out).is_empty());
    }
    assert_eq!(mock.token_requests(), 0);
}

// ---------------------------------------------------------------- workload identity

fn federated(n: u32) -> String {
    support::wire::jwt(&json!({"iss": "https://token.actions.githubusercontent.com", "sub": format!("repo:x/y:{n}"), "aud": "api://AzureADTokenExchange"}))
}

fn assertions(mock: &MockAuthority) -> Vec<String> {
    mock.requests().iter().filter(|r| r.is_token_request()).filter_map(|r| r.form_get("client_assertion").map(str::to_string)).collect()
}

#[test]
fn federated_token_file_is_reread_on_every_acquisition() {
    let mock = cert_mock();
    let sb = Sandbox::new();
    let file = sb.write_file("sa-token", federated(1));
    sb.write_config(&format!("[profiles.wi]\nflow = \"workload-identity\"\nauthority = \"{}\"\n", mock.url()));
    let cmd = |extra: &[&str]| {
        let mut c = sb.cmd();
        c.args(["get-token", "-p", "wi", "-r", ARM]).args(extra).env("AZURE_CLIENT_ID", APP).env("AZURE_TENANT_ID", TENANT).env("AZURE_FEDERATED_TOKEN_FILE", &file);
        c
    };
    let first = ok_stdout(&run(cmd(&[])));
    assert_eq!(ok_stdout(&run(cmd(&[]))), first, "second call is served from the cache");
    assert_eq!(assertions(&mock), vec![federated(1)]);
    std::fs::write(&file, format!("{}\n", federated(2))).unwrap();
    ok_stdout(&run(cmd(&["--force"])));
    assert_eq!(assertions(&mock), vec![federated(1), federated(2)], "the rotated file was read again");
    let req = mock.requests().into_iter().rfind(|r| r.is_token_request()).unwrap();
    assert_eq!(req.form_get("client_id"), Some(APP));
    assert_eq!(req.form_get("grant_type"), Some("client_credentials"));
    assert_eq!(req.path, format!("/{TENANT}/oauth2/v2.0/token"));
}

#[test]
fn github_actions_oidc_through_auto() {
    let mock = cert_mock();
    let gh = StandIn::start(|req, _| {
        if req.header("authorization") != Some("Bearer gh-request-token") {
            return Reply::json(401, &json!({"message": "bad bearer"}));
        }
        if query(req, "audience") != Some("api://AzureADTokenExchange") || query(req, "api-version") != Some("2.0") {
            return Reply::json(400, &json!({"message": "bad query"}));
        }
        Reply::json(200, &json!({"count": 1, "value": federated(7)}))
    });
    let sb = Sandbox::new();
    let mut cmd = sb.cmd();
    cmd.args(["get-token", "-r", ARM])
        .env("AZURE_AUTHORITY_HOST", mock.url())
        .env("AZURE_CLIENT_ID", APP)
        .env("AZURE_TENANT_ID", TENANT)
        .env("ACTIONS_ID_TOKEN_REQUEST_URL", format!("{}/_apis/token?api-version=2.0", gh.url()))
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "gh-request-token");
    let token = ok_stdout(&run(cmd));
    assert_eq!(mock.issued_access_tokens(), vec![token]);
    assert_eq!(assertions(&mock), vec![federated(7)]);
    assert_eq!(gh.requests().len(), 1);
}

#[test]
fn terraform_style_variables_are_accepted() {
    let mock = cert_mock();
    let sb = Sandbox::new();
    let file = sb.write_file("oidc", federated(3));
    sb.write_config(&format!("[profiles.tf]\nflow = \"workload-identity\"\nauthority = \"{}\"\n", mock.url()));
    let mut cmd = sb.cmd();
    cmd.args(["get-token", "-p", "tf", "-r", ARM])
        .env("ARM_USE_OIDC", "true")
        .env("ARM_CLIENT_ID", APP)
        .env("ARM_TENANT_ID", TENANT)
        .env("ARM_OIDC_TOKEN_FILE_PATH", &file);
    ok_stdout(&run(cmd));
    assert_eq!(assertions(&mock), vec![federated(3)]);
}

// ---------------------------------------------------------------- managed identity

#[test]
fn app_service_endpoint_with_identity_header() {
    let app = StandIn::start(|req, n| {
        if req.header("x-identity-header") != Some("app-service-secret") {
            return Reply::json(401, &json!({"error": "unauthorized"}));
        }
        assert_eq!(query(req, "api-version"), Some("2019-08-01"));
        mi_reply(&format!("app-service-token-{n}"), query(req, "resource").unwrap_or(""))
    });
    let sb = Sandbox::new();
    let cmd = |flow: &[&str]| {
        let mut c = sb.cmd();
        c.args(["get-token", "-r", ARM]).args(flow).env("IDENTITY_ENDPOINT", format!("{}/msi/token", app.url())).env("IDENTITY_HEADER", "app-service-secret");
        c
    };
    // Explicitly, and through auto (the default flow): the same identity at the same
    // endpoint, so one token and one request.
    assert_eq!(ok_stdout(&run(cmd(&["--flow", "managed-identity"]))), "app-service-token-0");
    assert_eq!(ok_stdout(&run(cmd(&["--flow", "managed-identity"]))), "app-service-token-0");
    assert_eq!(ok_stdout(&run(cmd(&[]))), "app-service-token-0");
    let reqs = app.requests();
    assert_eq!(reqs.len(), 1, "every answer cached");
    assert_eq!(query(&reqs[0], "resource"), Some(ARM));
    assert_eq!(reqs[0].path, "/msi/token");
}

#[test]
fn imds_retries_410_then_answers_and_sends_metadata_header() {
    let imds = StandIn::start(|req, n| {
        if req.header("metadata") != Some("true") {
            return Reply::json(400, &json!({"error": "invalid_request", "error_description": "Required metadata header not specified"}));
        }
        if n == 0 {
            return Reply::new(410, "text/plain", "IMDS is updating");
        }
        mi_reply("imds-token", query(req, "resource").unwrap_or(""))
    });
    let sb = Sandbox::new();
    sb.write_config("[profiles.vm]\nflow = \"managed-identity\"\nmi_client_id = \"33333333-3333-3333-3333-333333333333\"\n");
    let cmd = || {
        let mut c = sb.cmd();
        c.args(["get-token", "-p", "vm", "-r", "storage"]).env("AZURE_POD_IDENTITY_AUTHORITY_HOST", imds.url());
        c
    };
    assert_eq!(ok_stdout(&run(cmd())), "imds-token");
    assert_eq!(ok_stdout(&run(cmd())), "imds-token");
    let reqs = imds.requests();
    assert_eq!(reqs.len(), 2, "one 410, one success, then the cache");
    assert_eq!(reqs[1].path, "/metadata/identity/oauth2/token");
    assert_eq!(query(&reqs[1], "api-version"), Some("2018-02-01"));
    assert_eq!(query(&reqs[1], "resource"), Some("https://storage.azure.com"));
    assert_eq!(query(&reqs[1], "client_id"), Some("33333333-3333-3333-3333-333333333333"));
}

#[test]
fn imds_400_means_no_identity() {
    let imds = StandIn::start(|_, _| Reply::json(400, &json!({"error": "invalid_request", "error_description": "Identity not found"})));
    let sb = Sandbox::new();
    let mut cmd = sb.cmd();
    cmd.args(["get-token", "--flow", "managed-identity", "-r", ARM]).env("AZURE_POD_IDENTITY_AUTHORITY_HOST", imds.url());
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("no managed identity assigned"), "{}", stderr(&out));
    assert_eq!(imds.requests().len(), 1, "400 is final, not retried");
}

#[test]
fn azure_arc_challenge_with_key_file() {
    let sb = Sandbox::new();
    let key = sb.write_file("azcmagent/tokens/challenge.key", "arc-key-content");
    let key_for_server = key.display().to_string();
    let arc = StandIn::start(move |req, _| {
        assert_eq!(req.header("metadata"), Some("true"));
        match req.header("authorization") {
            None => Reply::new(401, "text/plain", "").with_header("WWW-Authenticate", &format!("Basic realm={key_for_server}")),
            Some("Basic arc-key-content") => mi_reply("arc-token", query(req, "resource").unwrap_or("")),
            Some(_) => Reply::json(401, &json!({"error": "bad key"})),
        }
    });
    let cmd = || {
        let mut c = sb.cmd();
        c.args(["get-token", "-r", ARM])
            .env("IDENTITY_ENDPOINT", format!("{}/metadata/identity/oauth2/token", arc.url()))
            .env("IMDS_ENDPOINT", arc.url())
            .env("ENTRA_TOKEN_ARC_KEY_DIR", sb.path("azcmagent/tokens"));
        c
    };
    assert_eq!(ok_stdout(&run(cmd())), "arc-token");
    assert_eq!(ok_stdout(&run(cmd())), "arc-token");
    let reqs = arc.requests();
    assert_eq!(reqs.len(), 2, "challenge, answer, then the cache");
    assert_eq!(query(&reqs[0], "api-version"), Some("2020-06-01"));

    // A challenge naming a file outside the key directory is refused, and the file is not sent.
    let outside = sb.write_file("elsewhere/stolen.key", "do-not-send");
    let evil = StandIn::start(move |req, _| {
        Reply::new(401, "text/plain", "").with_header("WWW-Authenticate", &format!("Basic realm={}", outside.display())).with_header("x-auth", req.header("authorization").unwrap_or("none"))
    });
    let mut c = sb.cmd();
    c.args(["get-token", "-r", "graph"])
        .env("IDENTITY_ENDPOINT", format!("{}/metadata/identity/oauth2/token", evil.url()))
        .env("IMDS_ENDPOINT", evil.url())
        .env("ENTRA_TOKEN_ARC_KEY_DIR", sb.path("azcmagent/tokens"));
    let out = run(c);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("outside"), "{}", stderr(&out));
    assert_eq!(evil.requests().len(), 1);
}

#[test]
fn cloud_shell_posts_the_resource() {
    let shell = StandIn::start(|req, _| {
        assert_eq!(req.method, "POST");
        assert_eq!(req.header("metadata"), Some("true"));
        let form: Vec<(String, String)> = form_urlencoded::parse(&req.body).into_owned().collect();
        mi_reply("cloud-shell-token", &form.iter().find(|(k, _)| k == "resource").map(|(_, v)| v.clone()).unwrap_or_default())
    });
    let sb = Sandbox::new();
    let cmd = || {
        let mut c = sb.cmd();
        c.args(["get-token", "-r", ARM, "-o", "json"]).env("MSI_ENDPOINT", format!("{}/oauth2/token", shell.url()));
        c
    };
    let out: Value = serde_json::from_str(&ok_stdout(&run(cmd()))).unwrap();
    assert_eq!(out["access_token"], "cloud-shell-token");
    ok_stdout(&run(cmd()));
    let reqs = shell.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(form_urlencoded::parse(&reqs[0].body).into_owned().collect::<Vec<_>>(), vec![("resource".to_string(), ARM.to_string())]);
}

// Service Fabric (TLS pinned to IDENTITY_SERVER_THUMBPRINT): tests/it/service_fabric.rs.
