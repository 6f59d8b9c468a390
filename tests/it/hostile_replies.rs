//! What comes back from outside is checked once, where it is parsed, and what goes out
//! to a loopback stand-in never passes a proxy: proven through the binary.
//!
//! - Loopback authorities, OIDC endpoints and managed identity endpoints are reached
//!   directly even when every proxy variable points at a recording trap.
//! - Numbers (expires_in 2^63-1, 1e300, an expires_on in the year 10000) never make an
//!   expiry in the past or print as 1970.
//! - Tokens and token types with CR/LF/NUL/ESC/space never reach a header or an answer.
//! - Durations a person gives are bounded: one line, exit 1, never an abort.
//! - Claims and server text with escape sequences are shown escaped, never obeyed.
//! - A network failure names its likely cause and fix in one line.

use crate::support;

use serde_json::{Value, json};
use std::process::Output;
use crate::support::http::{Reply, StandIn, Trap};
use crate::support::{MockAuthority, Sandbox, TestCa, client_credentials_setup, code, refused_url, run, stderr, stdout};

const TENANT: &str = "contoso.test";
const APP: &str = "66666666-6666-6666-6666-666666666666";
const SECRET: &str = "proxy~must~never~see~this~secret";
const ARM: &str = "https://management.azure.com/";

fn with_env(mut c: std::process::Command, env: &[(String, String)]) -> std::process::Command {
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// stderr is one line (plus nothing else), prefixed, without raw control characters.
fn one_clean_line(o: &Output, case: &str) -> String {
    let err = stderr(o);
    assert_eq!(err.trim_end().lines().count(), 1, "{case}: not one line: {err:?}");
    assert!(err.starts_with("entra-token: "), "{case}: {err:?}");
    assert!(!err.trim_end().chars().any(|c| c.is_control()), "{case}: raw control characters: {err:?}");
    err
}

// ------------------------------------------------------------------- proxies

#[test]
#[cfg_attr(windows, ignore = "Wine's getaddrinfo gives misaligned addresses: a debug build aborts resolving `localhost`")]
fn loopback_authorities_are_never_reached_through_a_proxy() {
    let (mock, sb) = client_credentials_setup(TENANT, APP, SECRET);
    let trap = Trap::start();
    let localhost = mock.url().replace("127.0.0.1", "localhost");
    sb.write_config(&format!(
        "[profiles.ci]\nauthority = \"{}\"\ntenant = \"{TENANT}\"\nclient_id = \"{APP}\"\nflow = \"client-credentials\"\nclient_secret_env = \"CI_SECRET\"\n\
         [profiles.named]\nauthority = \"{localhost}\"\ntenant = \"{TENANT}\"\nclient_id = \"{APP}\"\nflow = \"client-credentials\"\nclient_secret_env = \"CI_SECRET\"\n",
        mock.url()
    ));
    for profile in ["ci", "named"] {
        let mut c = with_env(sb.cmd(), &trap.proxy_env());
        c.env("CI_SECRET", SECRET).args(["get-token", "-p", profile, "-r", ARM, "--timeout", "10s"]);
        let o = run(c);
        assert_eq!(code(&o), 0, "{profile}: {}", stderr(&o));
    }
    assert_eq!(mock.token_requests(), 2, "both reached the authority directly");
    trap.assert_untouched_by("a loopback authority with every proxy variable set");
}

#[test]
fn oidc_and_managed_identity_endpoints_on_this_host_are_never_proxied() {
    let trap = Trap::start();
    // GitHub Actions' OIDC endpoint (it gets the request token) and the authority on loopback.
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_app(APP, None);
    let federated = support::wire::jwt(&json!({"iss": "https://token.actions.githubusercontent.com", "sub": "repo:x/y", "aud": "api://AzureADTokenExchange"}));
    let gh = {
        let f = federated.clone();
        StandIn::start(move |_, _| Reply::json(200, &json!({"count": 1, "value": f})))
    };
    let sb = Sandbox::new();
    let mut c = with_env(sb.cmd(), &trap.proxy_env());
    c.args(["get-token", "-r", ARM, "--timeout", "10s"])
        .env("AZURE_AUTHORITY_HOST", mock.url())
        .env("AZURE_CLIENT_ID", APP)
        .env("AZURE_TENANT_ID", TENANT)
        .env("ACTIONS_ID_TOKEN_REQUEST_URL", format!("{}/_apis/token?api-version=2.0", gh.url()))
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "gh-request-token-secret");
    let o = run(c);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(gh.requests().len(), 1);
    // App Service's managed identity endpoint, with its header secret.
    let app = StandIn::start(|_, _| Reply::json(200, &json!({"access_token": "mi-token", "expires_on": (support::wire::now() + 3600).to_string(), "resource": ARM, "token_type": "Bearer"})));
    let sb = Sandbox::new();
    let mut c = with_env(sb.cmd(), &trap.proxy_env());
    c.args(["get-token", "-r", ARM, "--flow", "managed-identity"]).env("IDENTITY_ENDPOINT", format!("{}/msi/token", app.url())).env("IDENTITY_HEADER", "app-service-secret");
    let o = run(c);
    assert_eq!((code(&o), stdout(&o).trim()), (0, "mi-token"), "{}", stderr(&o));
    trap.assert_untouched_by("OIDC and managed identity on this host");
}

#[test]
fn plain_http_off_this_host_is_refused_for_every_secret_bearing_call() {
    let trap = Trap::start();
    let (mock, sb) = client_credentials_setup(TENANT, APP, SECRET);
    let cases: &[(&str, &str)] = &[
        ("ACTIONS_ID_TOKEN_REQUEST_URL", "http://oidc.evil.test/_apis/token"),
        ("SYSTEM_OIDCREQUESTURI", "http://oidc.evil.test/oidc"),
    ];
    for (var, url) in cases {
        let mut c = with_env(sb.cmd(), &trap.proxy_env());
        c.args(["get-token", "-r", ARM, "--flow", "workload-identity", "--timeout", "5s"])
            .env("AZURE_AUTHORITY_HOST", mock.url())
            .env("AZURE_CLIENT_ID", APP)
            .env("AZURE_TENANT_ID", TENANT)
            .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "request-token-secret")
            .env("SYSTEM_ACCESSTOKEN", "pipeline-token-secret")
            .env("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID", "sc")
            .env(var, url);
        let o = run(c);
        assert_ne!(code(&o), 0, "{var}={url} was accepted: {}", stdout(&o));
        assert!(!stderr(&o).contains("secret"), "{}", stderr(&o));
    }
    trap.assert_untouched_by("plain-http OIDC endpoints off this host");
}

// ------------------------------------------------------------------- numbers

/// A token endpoint on loopback that answers every token request with `body`.
fn endpoint_answering(body: Value) -> (StandIn, Sandbox) {
    let authority = StandIn::start(move |_, _| Reply::json(200, &body));
    let sb = Sandbox::new();
    sb.write_config(&format!(
        "[profiles.ci]\nauthority = \"{}\"\ntenant = \"{TENANT}\"\nclient_id = \"{APP}\"\nflow = \"client-credentials\"\nclient_secret_env = \"CI_SECRET\"\n",
        authority.url()
    ));
    (authority, sb)
}

fn get_token(sb: &Sandbox, args: &[&str]) -> Output {
    let mut c = sb.cmd();
    c.env("CI_SECRET", SECRET).args(["get-token", "-p", "ci", "-r", ARM, "--timeout", "10s"]).args(args);
    run(c)
}

#[test]
fn huge_lifetimes_never_become_a_past_or_1970_expiry() {
    let now = support::wire::now();
    let week = 7 * 86_400;
    let bodies = [
        json!({"access_token": "tok-max", "token_type": "Bearer", "expires_in": i64::MAX}),
        json!({"access_token": "tok-u64", "token_type": "Bearer", "expires_in": u64::MAX}),
        json!({"access_token": "tok-1e300", "token_type": "Bearer", "expires_in": 1e300}),
        json!({"access_token": "tok-str", "token_type": "Bearer", "expires_in": "1e300", "ext_expires_in": "1e300"}),
        json!({"access_token": "tok-10000", "token_type": "Bearer", "expires_on": "253402300800"}),
        json!({"access_token": "tok-refresh", "token_type": "Bearer", "expires_in": 3600, "refresh_in": i64::MAX}),
    ];
    for body in bodies {
        let (_authority, sb) = endpoint_answering(body.clone());
        let o = get_token(&sb, &["-o", "json"]);
        assert_eq!(code(&o), 0, "{body}: {}", stderr(&o));
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
        let on = v["expires_on"].as_i64().unwrap();
        assert!(on > now && on <= now + week + 60, "{body}: expires_on {on}");
        let at = v["expires_at"].as_str().unwrap();
        assert!(!at.starts_with("1970") && at > "2026", "{body}: expires_at {at}");
        assert!(v["expires_in"].as_i64().unwrap() > 0, "{body}: {v}");
        // kubectl's expirationTimestamp comes from the same time.
        let mut c = sb.cmd();
        c.env("CI_SECRET", SECRET).env("KUBERNETES_EXEC_INFO", r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}"#).args(["kubectl", "-p", "ci", "-r", ARM]);
        let o = run(c);
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap_or_else(|_| panic!("{body}: {}", stderr(&o)));
        let ts = v["status"]["expirationTimestamp"].as_str().unwrap();
        assert!(!ts.starts_with("1970") && ts > "2026", "{body}: {ts}");
    }
}

// ------------------------------------------------------------------- strings

#[test]
fn tokens_and_types_that_could_inject_a_header_are_refused() {
    let bodies = [
        json!({"access_token": "tok\r\nX-Injected: 1", "token_type": "Bearer", "expires_in": 3600}),
        json!({"access_token": "tok\n", "token_type": "Bearer", "expires_in": 3600}),
        json!({"access_token": "tok\u{0}x", "token_type": "Bearer", "expires_in": 3600}),
        json!({"access_token": "tok x", "token_type": "Bearer", "expires_in": 3600}),
        json!({"access_token": "tok\u{1b}[2J", "token_type": "Bearer", "expires_in": 3600}),
        json!({"access_token": "tok", "token_type": "Bearer\r\nX-Injected: 1", "expires_in": 3600}),
        json!({"access_token": "tok", "token_type": "Basic", "expires_in": 3600}),
        json!({"access_token": "x".repeat(64 * 1024), "token_type": "Bearer", "expires_in": 3600}),
    ];
    for body in bodies {
        let (authority, sb) = endpoint_answering(body.clone());
        let o = get_token(&sb, &["-o", "header"]);
        let shown = format!("{body}").chars().take(80).collect::<String>();
        assert_eq!(code(&o), 4, "{shown}: {}", stderr(&o));
        assert_eq!(stdout(&o), "", "{shown}: something was answered");
        one_clean_line(&o, &shown);
        // Nothing was cached: the next call asks again.
        let _ = get_token(&sb, &["-o", "header"]);
        assert_eq!(authority.requests().len(), 2, "{shown}: a refused token was cached");
    }
    // Case-insensitive types are answered in their canonical spelling.
    let (_a, sb) = endpoint_answering(json!({"access_token": "eyJ0.eyJ1.c2ln", "token_type": "bearer", "expires_in": 3600}));
    let o = get_token(&sb, &["-o", "header"]);
    assert_eq!(stdout(&o).trim_end(), "Authorization: Bearer eyJ0.eyJ1.c2ln", "{}", stderr(&o));
}

#[test]
fn managed_identity_answers_pass_the_same_checks() {
    let app = StandIn::start(|_, _| Reply::json(200, &json!({"access_token": "mi\r\nX-Injected: 1", "expires_on": "253402300800", "resource": ARM, "token_type": "Bearer"})));
    let sb = Sandbox::new();
    let mut c = sb.cmd();
    c.args(["get-token", "-r", ARM, "--flow", "managed-identity", "-o", "header"]).env("IDENTITY_ENDPOINT", format!("{}/msi/token", app.url())).env("IDENTITY_HEADER", "h");
    let o = run(c);
    assert_eq!((code(&o), stdout(&o)), (4, String::new()), "{}", stderr(&o));
    one_clean_line(&o, "managed identity");
}

// ------------------------------------------------------------------- durations

#[test]
fn durations_a_person_gives_are_bounded_never_an_abort() {
    let sb = Sandbox::new();
    let commands: &[&[&str]] = &[&["get-token", "-r", ARM], &["login"], &["serve"], &["doctor"], &["kubectl"], &["refresh"]];
    for cmd in commands {
        for huge in ["18446744073709551615", "99999999999999999999h", "5124095576030431h", "2562047788015216m", "25h"] {
            let mut c = sb.cmd();
            c.args(*cmd).args(["--timeout", huge]);
            let o = run(c);
            let case = format!("{cmd:?} --timeout {huge}");
            assert_eq!(code(&o), 1, "{case}: {}", stderr(&o));
            let err = one_clean_line(&o, &case);
            assert!(err.contains("longest accepted"), "{case}: {err}");
        }
    }
}

// ------------------------------------------------------------------- terminal

#[test]
fn claims_and_server_text_are_shown_escaped_never_obeyed() {
    let hostile = "ann\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}31m\u{202e}moc.liam@";
    let token = support::wire::jwt(&json!({"aud": format!("api://x\u{1b}[1A\raudience    {ARM}"), "upn": hostile, "tid": "t\u{0}", "exp": 4_102_444_800_i64}));
    let sb = Sandbox::new();
    let mut c = sb.cmd();
    c.args(["inspect", "-"]);
    let o = support::run_with_stdin(c, &token);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    for bad in ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}', '\r', '\0'] {
        assert!(!out.contains(bad), "raw {:?} in inspect's output:\n{out}", bad);
    }
    assert!(out.contains("\\x1b]0;owned") && out.contains("\\u{202e}"), "{out}");
    assert_eq!(out.lines().filter(|l| l.starts_with("audience")).count(), 1, "a claim faked a line:\n{out}");
    // Entra's error text (AADSTS description) on stderr.
    let authority = StandIn::start(|_, _| {
        Reply::json(400, &json!({"error": "invalid_client", "error_description": "AADSTS7000215: bad\u{1b}]0;owned\u{7} secret\r\nentra-token: all good\u{202e}", "error_codes": [7000215]}))
    });
    sb.write_config(&format!("[profiles.ci]\nauthority = \"{}\"\ntenant = \"{TENANT}\"\nclient_id = \"{APP}\"\nflow = \"client-credentials\"\nclient_secret_env = \"CI_SECRET\"\n", authority.url()));
    let o = get_token(&sb, &[]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let err = one_clean_line(&o, "AADSTS description");
    assert!(err.contains("AADSTS7000215") && err.contains("\\x1b]0;owned"), "{err}");
    assert!(!err.contains('\u{202e}'), "{err}");
}

// ------------------------------------------------------------------- network errors

#[test]
fn network_errors_name_the_cause_and_the_fix() {
    let sb = Sandbox::new();
    let profile = |authority: &str| format!("[profiles.ci]\nauthority = \"{authority}\"\ntenant = \"{TENANT}\"\nclient_id = \"{APP}\"\nflow = \"client-credentials\"\nclient_secret_env = \"CI_SECRET\"\n");
    // Nothing listens.
    sb.write_config(&profile(&refused_url()));
    let o = get_token(&sb, &[]);
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    let err = one_clean_line(&o, "refused");
    // Loopback is never proxied, so no proxy advice for it (#22: it suggested HTTPS_PROXY).
    assert!(err.contains("nothing accepts connections") && err.contains("is the local endpoint running") && !err.contains("PROXY"), "{err}");
    // TLS interception: a certificate from a CA this machine does not know.
    let ca = TestCa::new();
    let mock = MockAuthority::start_https(&ca);
    sb.write_config(&profile(&mock.url()));
    let o = get_token(&sb, &[]);
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    let err = one_clean_line(&o, "unknown issuer");
    assert!(err.contains("does not trust") && err.contains("SSL_CERT_FILE"), "{err}");
    // A proxy that is not there, for a host reached through it.
    sb.write_config(&profile("https://login.proxied.test"));
    let mut c = sb.cmd();
    c.env("CI_SECRET", SECRET).env("HTTPS_PROXY", refused_url()).env("NO_PROXY", "").args(["get-token", "-p", "ci", "-r", ARM, "--timeout", "10s"]);
    let o = run(c);
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    let err = one_clean_line(&o, "proxy down");
    assert!(err.contains("refused by the proxy") && err.contains("HTTPS_PROXY"), "{err}");
    // An endpoint that accepts and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    sb.write_config(&profile(&format!("http://{}", silent.local_addr().unwrap())));
    let mut c = sb.cmd();
    c.env("CI_SECRET", SECRET).args(["get-token", "-p", "ci", "-r", ARM, "--timeout", "1s"]);
    let o = run(c);
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    let err = one_clean_line(&o, "silent");
    assert!(err.contains("no answer") && err.contains("--timeout"), "{err}");
}
