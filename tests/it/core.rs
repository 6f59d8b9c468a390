//! The core engine end to end through the binary: get-token and its flags, profiles and
//! the environment, the disk cache (hits, expiry, early refresh, locking, corruption,
//! permissions), and the HTTP layer (TLS with a test CA, proxies, retries, Entra errors).

use crate::support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;
use crate::support::{CcProfile, Fault, MockAuthority, Sandbox, TestCa, run, run_with_stdin, stderr, code, ok};

const CLIENT: &str = "11111111-2222-3333-4444-555555555555";
const SECRET: &str = "s3cret-value-xyz";
const TENANT: &str = "contoso.onmicrosoft.com";

/// A mock with one tenant and one confidential app, and a sandbox whose `ci` profile points at it.
fn setup() -> (MockAuthority, Sandbox) {
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_app(CLIENT, Some(SECRET));
    let sb = Sandbox::new();
    sb.write_config(&profile_toml("ci", &mock.url(), ""));
    (mock, sb)
}

fn profile_toml(name: &str, authority: &str, extra: &str) -> String {
    CcProfile::new(name, authority, TENANT, CLIENT).with(extra).toml()
}

fn cmd(sb: &Sandbox, args: &[&str]) -> Command {
    let mut c = sb.cmd();
    c.args(args).env("CI_SECRET", SECRET);
    c
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}\nstderr: {}", stdout(o), stderr(o)))
}

fn cache_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.ends_with(".json")).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn get_token_prints_the_issued_token_and_caches_it() {
    let (mock, sb) = setup();
    let out = ok(run(cmd(&sb, &["get-token", "-p", "ci", "-r", "powerbi"])));
    let token = stdout(&out).trim().to_string();
    assert_eq!(mock.issued_access_tokens(), vec![token.clone()]);
    let req = &mock.requests()[0];
    assert_eq!(req.path, format!("/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(req.form_get("grant_type"), Some("client_credentials"));
    assert_eq!(req.form_get("scope"), Some("https://analysis.windows.net/powerbi/api/.default"));
    // The second call is a cache hit: same token, no request.
    let again = ok(run(cmd(&sb, &["get-token", "-p", "ci", "-r", "https://analysis.windows.net/powerbi/api"])));
    assert_eq!(stdout(&again).trim(), token);
    assert_eq!(mock.token_requests(), 1);
}

#[test]
fn output_formats() {
    let (_mock, sb) = setup();
    let j = json(&ok(run(cmd(&sb, &["get-token", "-p", "ci", "-r", "graph", "-o", "json"]))));
    let token = j["access_token"].as_str().unwrap().to_string();
    assert_eq!(j["token_type"], "Bearer");
    assert_eq!(j["profile"], "ci");
    assert_eq!(j["resource"], "https://graph.microsoft.com");
    assert_eq!(j["scopes"], serde_json::json!(["https://graph.microsoft.com/.default"]));
    assert!(j.get("refresh_token").is_none());
    let exp = j["expires_on"].as_i64().unwrap();
    let at = j["expires_at"].as_str().unwrap();
    let parsed = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).unwrap();
    assert_eq!(parsed.unix_timestamp(), exp);
    assert!(at.ends_with('Z') && !at.contains('.'), "{at}");

    let h = ok(run(cmd(&sb, &["get-token", "-p", "ci", "-r", "graph", "-o", "header"])));
    assert_eq!(stdout(&h), format!("Authorization: Bearer {token}\n"));

    let y = stdout(&ok(run(cmd(&sb, &["get-token", "-p", "ci", "-r", "graph", "-o", "yaml"]))));
    assert!(y.contains(&format!("access_token: \"{token}\"\n")), "{y}");
    assert!(y.contains("token_type: \"Bearer\"\n"), "{y}");
    assert!(y.contains(&format!("expires_on: {exp}\n")), "{y}");
    assert!(y.contains("scopes:\n  - \"https://graph.microsoft.com/.default\"\n"), "{y}");
}

#[test]
fn file_output_is_private_and_stdout_stays_empty() {
    let (_mock, sb) = setup();
    let path = sb.path("out/token.txt");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    #[cfg_attr(windows, allow(unused_mut))]
    let mut c = cmd(&sb, &["get-token", "-p", "ci", "-r", "graph", "--file", path.to_str().unwrap()]);
    // Whatever the umask: run the binary with umask 000.
    #[cfg(unix)]
    unsafe {
        use std::os::unix::process::CommandExt;
        c.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    let out = ok(run(c));
    assert!(out.stdout.is_empty());
    let content = std::fs::read_to_string(&path).unwrap();
    assert!(content.trim().starts_with("eyJ"), "{content}");
    // (Windows: the user-only ACL of `fs`'s private writes is checked by its unit tests.)
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    }
    assert!(stderr(&out).contains("token written to"), "{}", stderr(&out));
    // --silent suppresses the note.
    let out = ok(run(cmd(&sb, &["get-token", "-p", "ci", "-r", "graph", "-q", "--file", path.to_str().unwrap()])));
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
}

#[test]
fn force_skips_the_cache_and_no_cache_never_touches_it() {
    let (mock, sb) = setup();
    let first = stdout(&ok(run(cmd(&sb, &["get-token", "-p", "ci", "-r", "graph"]))));
    let forced = stdout(&ok(run(cmd(&sb, &["get-token", "-p", "ci", "-r", "graph", "--force"]))));
    assert_ne!(first, forced);
    assert_eq!(mock.token_requests(), 2);
    // The forced token was stored: the next plain call serves it.
    let third = stdout(&ok(run(cmd(&sb, &["get-token", "-p", "ci", "-r", "graph"]))));
    assert_eq!(third, forced);
    assert_eq!(mock.token_requests(), 2);

    let (mock, sb) = setup();
    for _ in 0..2 {
        ok(run(cmd(&sb, &["get-token", "-p", "ci", "-r", "graph", "--no-cache"])));
    }
    assert_eq!(mock.token_requests(), 2);
    assert!(!sb.path("cache").exists() || cache_files(&sb.path("cache")).is_empty());
}

#[test]
fn min_validity_decides_whether_a_cached_token_is_good_enough() {
    let (mock, sb) = setup();
    mock.set_token_lifetime(1200);
    ok(run(cmd(&sb, &["get-token", "-p", "ci", "-r", "graph"])));
    ok(run(cmd(&sb, &["get-token", "-p", "ci", "-r", "graph", "--min-validity", "600"])));
    assert_eq!(mock.token_requests(), 1);
    ok(run(cmd(&sb, &["get-token", "-p", "ci", "-r", "graph", "--min-validity", "1800"])));
    assert_eq!(mock.token_requests(), 2);
    // Native protocol: same rule.
    let o = run_with_stdin(cmd(&sb, &[]), r#"{"resource":"graph","profile":"ci","min_validity":3000}"#);
    assert_eq!(json(&ok(o))["from_cache"], false);
    assert_eq!(mock.token_requests(), 3);
}

#[test]
fn refresh_in_triggers_an_early_refresh_and_a_failed_one_serves_the_cached_token() {
    let (mock, sb) = setup();
    mock.set_refresh_in(Some(1)); // refresh after one second
    let first = stdout(&ok(run(cmd(&sb, &["get-token", "-p", "ci", "-r", "graph"]))));
    std::thread::sleep(Duration::from_millis(2100));
    let second = stdout(&ok(run(cmd(&sb, &["get-token", "-p", "ci", "-r", "graph"]))));
    assert_ne!(first, second, "the token past its refresh_in was renewed");
    assert_eq!(mock.token_requests(), 2);
    std::thread::sleep(Duration::from_millis(2100));
    // The authority now fails: the still-valid cached token is served, exit 0.
    mock.push_fault(Fault::Status { status: 400, body: r#"{"error":"invalid_request","error_codes":[90002]}"#.into(), retry_after: None });
    let third = ok(run(cmd(&sb, &["get-token", "-p", "ci", "-r", "graph"])));
    assert_eq!(stdout(&third), second);
    assert!(stderr(&third).contains("early refresh failed"), "{}", stderr(&third));
}

#[test]
fn concurrent_cold_calls_make_one_request() {
    let (mock, sb) = setup();
    mock.set_delay(Duration::from_millis(300));
    let children: Vec<_> = (0..16)
        .map(|_| {
            let mut c = cmd(&sb, &["get-token", "-p", "ci", "-r", "graph"]);
            c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).stdin(std::process::Stdio::null());
            c.spawn().unwrap()
        })
        .collect();
    let outs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for o in &outs {
        assert_eq!(code(o), 0, "{}", stderr(o));
    }
    assert_eq!(mock.token_requests(), 1);
    let first = stdout(&outs[0]);
    assert!(outs.iter().all(|o| stdout(o) == first), "every process got the same token");
}

#[test]
fn a_corrupt_cache_entry_is_a_miss_not_a_crash() {
    let (mock, sb) = setup();
    ok(run(cmd(&sb, &["get-token", "-p", "ci", "-r", "graph"])));
    let files = cache_files(&sb.path("cache"));
    assert_eq!(files.len(), 1, "{files:?}");
    let entry = sb.path("cache").join(&files[0]);
    let text = std::fs::read_to_string(&entry).unwrap();
    std::fs::write(&entry, &text[..text.len() / 2]).unwrap(); // truncated; mode stays 0600
    let out = ok(run(cmd(&sb, &["get-token", "-p", "ci", "-r", "graph", "-v"])));
    assert!(stderr(&out).contains("corrupt"), "{}", stderr(&out));
    assert_eq!(mock.token_requests(), 2);
    // And it was replaced by a good entry.
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&entry).unwrap()).unwrap();
    assert_eq!(v["v"], 1);
}

/// POSIX modes; Windows ACLs have their own check in `fs`'s unit tests, run under Wine.
#[cfg(unix)]
#[test]
fn cache_files_are_private_and_a_loose_cache_dir_is_refused() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let (mock, sb) = setup();
    ok(run(cmd(&sb, &["get-token", "-p", "ci", "-r", "graph"])));
    let dir = sb.path("cache");
    assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
    for f in cache_files(&dir) {
        assert_eq!(std::fs::metadata(dir.join(&f)).unwrap().mode() & 0o777, 0o600, "{f}");
        let text = std::fs::read_to_string(dir.join(&f)).unwrap();
        assert!(!text.contains(SECRET), "the client secret is never cached");
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = run(cmd(&sb, &["get-token", "-p", "ci", "-r", "graph"]));
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("chmod 700 {}", dir.display())), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert_eq!(mock.token_requests(), 1);
}

#[test]
fn the_cached_path_needs_no_network_no_secret_and_no_http_client() {
    let (mock, sb) = setup();
    ok(run(cmd(&sb, &["get-token", "-p", "ci", "-r", "graph"])));
    let url = mock.url();
    drop(mock); // the authority is gone
    let mut c = sb.cmd();
    c.args(["get-token", "-p", "ci", "-r", "graph", "-vv"]); // and CI_SECRET is not set
    let out = ok(run(c));
    assert!(stdout(&out).starts_with("eyJ"));
    let err = stderr(&out);
    assert!(err.contains("cache hit"), "{err}");
    assert!(!err.contains("building the HTTP client"), "{err}");
    assert!(!err.contains(&url), "{err}");
}

#[test]
fn verbose_traces_steps_but_never_secrets_or_tokens() {
    let (_mock, sb) = setup();
    let out = ok(run(cmd(&sb, &["get-token", "-p", "ci", "-r", "graph", "-vv"])));
    let token = stdout(&out).trim().to_string();
    let err = stderr(&out);
    assert!(err.contains("entra-token: profile 'ci'"), "{err}");
    assert!(err.contains("cache miss"), "{err}");
    assert!(err.contains("POST http://127.0.0.1"), "{err}");
    assert!(err.lines().all(|l| l.starts_with("entra-token: ")), "{err}");
    assert!(!err.contains(SECRET) && !err.contains(&token), "{err}");
}

#[test]
fn profiles_from_the_environment_and_selection_order() {
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_app(CLIENT, Some(SECRET));
    let sb = Sandbox::new();
    // No config file: AZURE_* form the default profile.
    let mut c = sb.cmd();
    c.args(["get-token", "-r", "graph", "-o", "json"])
        .env("AZURE_TENANT_ID", TENANT)
        .env("AZURE_CLIENT_ID", CLIENT)
        .env("AZURE_CLIENT_SECRET", SECRET)
        .env("AZURE_AUTHORITY_HOST", mock.url());
    let j = json(&ok(run(c)));
    assert_eq!(j["profile"], "default");
    assert_eq!(j["client_id"], CLIENT);
    assert_eq!(mock.token_requests(), 1);

    // ENTRA_TOKEN_PROFILE picks a profile; default_profile is used when nothing else names one.
    sb.write_config(&format!("default_profile = \"b\"\n{}\n{}", profile_toml("a", &mock.url(), ""), profile_toml("b", &mock.url(), "")));
    let mut c = cmd(&sb, &["get-token", "-r", "graph", "-o", "json"]);
    c.env("ENTRA_TOKEN_PROFILE", "a");
    assert_eq!(json(&ok(run(c)))["profile"], "a");
    assert_eq!(json(&ok(run(cmd(&sb, &["get-token", "-r", "graph", "-o", "json"]))))["profile"], "b");
    let mut c = cmd(&sb, &["get-token", "-p", "b", "-r", "graph", "-o", "json"]);
    c.env("ENTRA_TOKEN_PROFILE", "a");
    assert_eq!(json(&ok(run(c)))["profile"], "b", "the flag beats the environment");
}

#[test]
fn a_missing_profile_is_exit_2_and_lists_the_others() {
    let (mock, sb) = setup();
    let out = run(cmd(&sb, &["get-token", "-p", "prod", "-r", "graph"]));
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains("profile 'prod' not found") && err.contains("ci"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert_eq!(mock.token_requests(), 0);
}

#[test]
fn explicit_profile_settings_beat_ambient_env_and_say_so() {
    let (mock, sb) = setup();
    let mut c = cmd(&sb, &["get-token", "-p", "ci", "-r", "graph", "-o", "json"]);
    c.env("AZURE_CLIENT_ID", "99999999-9999-9999-9999-999999999999");
    let out = ok(run(c));
    assert_eq!(json(&out)["client_id"], CLIENT);
    assert!(stderr(&out).contains("ignoring AZURE_CLIENT_ID=99999999-9999-9999-9999-999999999999"), "{}", stderr(&out));
    assert_eq!(mock.requests()[0].form_get("client_id"), Some(CLIENT));
}

#[test]
fn bad_config_and_bad_flags_are_one_line_and_exit_1() {
    let (mock, sb) = setup();
    sb.write_config("[profiles.ci\ntenant = ");
    let out = run(cmd(&sb, &["get-token", "-p", "ci"]));
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("config.toml"), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));

    sb.write_config(&profile_toml("ci", &mock.url(), "client_secert_file = \"x\"\n"));
    let out = run(cmd(&sb, &["get-token", "-p", "ci"]));
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("client_secert_file"), "{}", stderr(&out));

    sb.write_config(&profile_toml("ci", "http://login.example.test", ""));
    let out = run(cmd(&sb, &["get-token", "-p", "ci", "-r", "graph"]));
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("not https"), "{}", stderr(&out));

    sb.write_config(&profile_toml("ci", &mock.url(), ""));
    for args in [&["get-token", "--timeout", "soon"][..], &["get-token", "--bogus"], &["get-token", "-r", "nonsense", "-p", "ci"], &["get-token", "-r", "graph", "-s", "x/.default"]] {
        let out = run(cmd(&sb, args));
        assert_eq!(code(&out), 1, "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out).lines().count(), 1, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).starts_with("entra-token: "), "{}", stderr(&out));
        assert!(out.stdout.is_empty());
    }
    assert_eq!(mock.token_requests(), 0);
}

#[test]
fn entra_errors_become_specific_messages_with_exit_3() {
    let (mock, sb) = setup();
    let mut c = sb.cmd();
    c.args(["get-token", "-p", "ci", "-r", "graph"]).env("CI_SECRET", "WRONG-SECRET-123");
    let out = run(c);
    assert_eq!(code(&out), 3);
    let err = stderr(&out);
    assert!(err.contains("AADSTS7000215") && err.contains("not its ID") && err.contains("correlation id"), "{err}");
    assert!(!err.contains("WRONG-SECRET-123"), "the secret is not echoed: {err}");

    sb.write_config(&profile_toml("ci", &mock.url(), "").replace(TENANT, "nosuch.onmicrosoft.com"));
    let out = run(cmd(&sb, &["get-token", "-p", "ci", "-r", "graph"]));
    assert_eq!(code(&out), 3);
    assert!(stderr(&out).contains("AADSTS90002") && stderr(&out).contains("tenant was not found"), "{}", stderr(&out));
}

#[test]
fn retries_5xx_and_429_within_the_timeout() {
    let (mock, sb) = setup();
    mock.push_fault(Fault::Status { status: 503, body: "busy".into(), retry_after: None });
    mock.push_fault(Fault::Status { status: 429, body: "{}".into(), retry_after: Some(1) });
    let out = ok(run(cmd(&sb, &["get-token", "-p", "ci", "-r", "graph"])));
    assert!(stdout(&out).starts_with("eyJ"));
    assert_eq!(mock.token_requests(), 3);

    // A Retry-After longer than the time left is not waited out.
    mock.push_fault(Fault::Status { status: 429, body: "{}".into(), retry_after: Some(30) });
    let started = std::time::Instant::now();
    let out = run(cmd(&sb, &["get-token", "-p", "ci", "-r", "storage", "--timeout", "3s"]));
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(stderr(&out).contains("throttled"), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn garbage_answers_are_network_errors() {
    let (mock, sb) = setup();
    mock.push_fault(Fault::Html200);
    let out = run(cmd(&sb, &["get-token", "-p", "ci", "-r", "graph"]));
    assert_eq!(code(&out), 4);
    assert!(stderr(&out).contains("not a token response (HTML)"), "{}", stderr(&out));
    mock.push_fault(Fault::Truncated200);
    let out = run(cmd(&sb, &["get-token", "-p", "ci", "-r", "graph"]));
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert_eq!(cache_files(&sb.path("cache")).len(), 0, "nothing was cached");
}

#[test]
fn https_authority_trusted_through_ssl_cert_file() {
    let ca = TestCa::new();
    let mock = MockAuthority::start_https(&ca);
    mock.add_tenant(TENANT);
    mock.add_app(CLIENT, Some(SECRET));
    let sb = Sandbox::new();
    sb.write_config(&profile_toml("ci", &mock.url(), ""));
    assert!(mock.url().starts_with("https://"));
    let ca_file = ca.write_pem(sb.dir.path());

    // Without the CA: TLS fails, exit 4 with a hint about SSL_CERT_FILE.
    let mut c = cmd(&sb, &["get-token", "-p", "ci", "-r", "graph"]);
    c.env("SSL_CERT_FILE", sb.path("empty.pem"));
    std::fs::write(sb.path("empty.pem"), "").unwrap();
    let out = run(c);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(stderr(&out).contains("SSL_CERT_FILE"), "{}", stderr(&out));

    let mut c = cmd(&sb, &["get-token", "-p", "ci", "-r", "graph"]);
    c.env("SSL_CERT_FILE", &ca_file);
    let out = ok(run(c));
    assert_eq!(mock.issued_access_tokens(), vec![stdout(&out).trim().to_string()]);
}

#[test]
fn proxies_from_the_environment_are_honoured_for_remote_hosts_never_for_loopback() {
    let (mock, sb) = setup();
    // A remote authority goes through HTTPS_PROXY: the proxy sees the CONNECT.
    let trap = support::http::Trap::start();
    sb.write_config(&format!("{}{}", profile_toml("ci", &mock.url(), ""), profile_toml("remote", "https://login.proxied.test", "")));
    let mut c = cmd(&sb, &["get-token", "-p", "remote", "-r", "graph", "--timeout", "3s"]);
    c.env("HTTPS_PROXY", &trap.url).env("NO_PROXY", "");
    let out = run(c);
    assert!(matches!(code(&out), 4 | 5), "{}", stderr(&out));
    let seen = String::from_utf8_lossy(&trap.seen()).into_owned();
    assert!(seen.starts_with("CONNECT login.proxied.test:443"), "the proxy was not used: {seen:?}");
    assert!(!seen.contains(SECRET), "the secret reached the proxy outside TLS");
    // A loopback authority never does, even when NO_PROXY does not name it.
    let mut c = cmd(&sb, &["get-token", "-p", "ci", "-r", "graph"]);
    c.env("HTTP_PROXY", support::refused_url()).env("HTTPS_PROXY", support::refused_url()).env("ALL_PROXY", support::refused_url()).env("NO_PROXY", "");
    ok(run(c));
    assert_eq!(mock.token_requests(), 1);
}

#[test]
fn connection_refused_is_exit_4_and_a_hang_is_exit_5() {
    let sb = Sandbox::new();
    sb.write_config(&profile_toml("ci", &support::refused_url(), ""));
    let out = run(cmd(&sb, &["get-token", "-p", "ci", "-r", "graph"]));
    assert_eq!(code(&out), 4, "{}", stderr(&out));

    let (mock, sb) = setup();
    mock.push_fault(Fault::Hang);
    let started = std::time::Instant::now();
    let out = run(cmd(&sb, &["get-token", "-p", "ci", "-r", "graph", "--timeout", "2s"]));
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(6), "{:?}", started.elapsed());
}

#[test]
fn v1_endpoint_parses_string_numbers() {
    let (mock, sb) = setup();
    sb.write_config(&profile_toml("ci", &mock.url(), "endpoint = \"v1\"\n"));
    let j = json(&ok(run(cmd(&sb, &["get-token", "-p", "ci", "-r", "arm", "-o", "json"]))));
    let req = &mock.requests()[0];
    assert_eq!(req.path, format!("/{TENANT}/oauth2/token"));
    assert_eq!(req.form_get("resource"), Some("https://management.azure.com/"));
    assert!(req.form_get("scope").is_none());
    assert!(j["expires_in"].as_i64().unwrap() > 3000);
    assert_eq!(j["resource"], "https://management.azure.com/");
}

#[test]
fn a_request_tenant_overrides_the_profile_and_keys_its_own_cache_entry() {
    let (mock, sb) = setup();
    mock.add_tenant("fabrikam.onmicrosoft.com");
    ok(run(cmd(&sb, &["get-token", "-p", "ci", "-r", "graph"])));
    let o = run_with_stdin(cmd(&sb, &[]), r#"{"resource":"graph","profile":"ci","tenant":"fabrikam.onmicrosoft.com"}"#);
    let j = json(&ok(o));
    assert_eq!(j["from_cache"], false);
    assert_eq!(mock.requests().last().unwrap().path, "/fabrikam.onmicrosoft.com/oauth2/v2.0/token");
    assert_eq!(j["tenant_id"], mock.tenant_id("fabrikam.onmicrosoft.com"));
}

#[test]
fn scopes_that_differ_only_in_case_are_one_cache_entry() {
    let (mock, sb) = setup();
    let ask = |scope: &str| json(&ok(run_with_stdin(cmd(&sb, &[]), &serde_json::json!({"profile":"ci","scopes":[scope]}).to_string())));
    let first = ask("https://Graph.Microsoft.com/.default");
    assert_eq!(first["from_cache"], false);
    let second = ask("https://graph.microsoft.com/.default");
    assert_eq!(second["from_cache"], true);
    assert_eq!(second["access_token"], first["access_token"]);
    assert_eq!(mock.token_requests(), 1);
    // Another resource is another token.
    assert_eq!(ask("https://vault.azure.net/.default")["from_cache"], false);
    assert_eq!(mock.token_requests(), 2);
}

#[test]
fn claims_bypass_the_cached_token_and_reach_entra() {
    let (mock, sb) = setup();
    ok(run(cmd(&sb, &["get-token", "-p", "ci", "-r", "graph"])));
    let claims = r#"{"access_token":{"nbf":{"essential":true,"value":"1"}}}"#;
    let o = run_with_stdin(cmd(&sb, &[]), &serde_json::json!({"resource":"graph","profile":"ci","claims":claims}).to_string());
    assert_eq!(json(&ok(o))["from_cache"], false);
    assert_eq!(mock.requests().last().unwrap().form_get("claims"), Some(claims));
}

#[test]
fn native_errors_are_json_on_stdout_with_one_stderr_line() {
    let (_mock, sb) = setup();
    for (input, exit, code_name) in [
        ("not json", 1, "bad_input"),
        ("", 1, "bad_input"),
        (r#"{"v":7}"#, 1, "bad_input"),
        (r#"{"resource":"graph","profile":"zzz"}"#, 2, "profile_not_found"),
        (r#"{"resource":"graph","scopes":["a/.default"]}"#, 1, "bad_input"),
    ] {
        let o = run_with_stdin(cmd(&sb, &[]), input);
        assert_eq!(code(&o), exit, "{input}: {}", stderr(&o));
        let j = json(&o);
        assert_eq!(j["error"]["code"], code_name, "{input}");
        assert_eq!(j["error"]["exit_code"], exit, "{input}");
        assert_eq!(stderr(&o).lines().count(), 1, "{input}: {}", stderr(&o));
    }
    let big = format!(r#"{{"resource":"graph","pad":"{}"}}"#, "x".repeat(100_000));
    let o = run_with_stdin(cmd(&sb, &[]), &big);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("larger than"), "{}", stderr(&o));
}
