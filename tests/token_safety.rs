//! Token safety: with `-vv`, through every flow and front end this build has, no access
//! token, refresh token, client secret or assertion appears anywhere except the protocol
//! answer on stdout and the files meant to hold it (cache entries, `--file`). Every file
//! we write is 0600 (directories 0700) even under umask 000.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::{Fault, MockAuthority, Sandbox, run_with_stdin};

const TENANT: &str = "contoso.test";
const APP: &str = "88888888-8888-8888-8888-888888888888";
const SECRET: &str = "Xq8~client.secret_VALUE-1234567890";

fn setup() -> (MockAuthority, Sandbox) {
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some(SECRET));
    let sb = Sandbox::new();
    sb.write_file("secret.txt", SECRET);
    sb.write_config(&format!(
        "[profiles.ci]\nauthority = \"{url}\"\ntenant = \"{TENANT}\"\nclient_id = \"{APP}\"\nflow = \"client-credentials\"\nclient_secret_env = \"CI_SECRET\"\n\
         [profiles.v1]\nauthority = \"{url}\"\ntenant = \"{TENANT}\"\nclient_id = \"{APP}\"\nflow = \"client-credentials\"\nendpoint = \"v1\"\nclient_secret_file = \"{file}\"\n",
        url = mock.url(),
        file = sb.path("secret.txt").display()
    ));
    (mock, sb)
}

/// `cmd` with -vv, the secret in the environment, and umask 000.
fn verbose(sb: &Sandbox, args: &[&str]) -> Command {
    let mut c = sb.cmd();
    c.env("CI_SECRET", SECRET).arg("-vv").args(args);
    // SAFETY: umask is async-signal-safe and touches only the child's own state.
    unsafe {
        c.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    c
}

/// Every value that must stay secret: the client secret and each token the mock issued,
/// whole and as its distinctive tail (a log that truncates the front still leaks).
fn secrets(mock: &MockAuthority) -> Vec<(String, String)> {
    let mut v = vec![("client secret".to_string(), SECRET.to_string())];
    for t in mock.issued_access_tokens() {
        v.push(("access token".into(), t.clone()));
        v.push(("access token tail".into(), t[t.len().saturating_sub(24)..].to_string()));
    }
    for t in mock.live_refresh_tokens() {
        v.push(("refresh token".into(), t));
    }
    v
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return out };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Files that may hold a token: cache entries and the `--file` outputs the test asked for.
fn may_hold_tokens(p: &Path, sb: &Sandbox) -> bool {
    let name = p.file_name().unwrap().to_string_lossy();
    (p.starts_with(sb.path("cache")) && name.starts_with("at-") && name.ends_with(".json")) || p.starts_with(sb.path("out"))
}

struct Run {
    what: String,
    out: Output,
    /// stdout is this protocol's answer and may hold the access token.
    stdout_may_hold_token: bool,
}

fn check(mock: &MockAuthority, sb: &Sandbox, runs: &[Run]) {
    let secrets = secrets(mock);
    assert!(secrets.len() > 2, "no tokens were issued; nothing was checked");
    for r in runs {
        let err = String::from_utf8_lossy(&r.out.stderr);
        let out = String::from_utf8_lossy(&r.out.stdout);
        assert!(err.contains("entra-token: "), "{}: -vv traced nothing, so this proved nothing", r.what);
        for (kind, s) in &secrets {
            assert!(!err.contains(s.as_str()), "{}: {kind} on stderr:\n{err}", r.what);
            if kind == "client secret" || !r.stdout_may_hold_token {
                assert!(!out.contains(s.as_str()), "{}: {kind} on stdout:\n{out}", r.what);
            }
        }
    }
    for f in files_under(sb.dir.path()) {
        if f == sb.path("secret.txt") || f == sb.path("config.toml") {
            continue;
        }
        let bytes = std::fs::read(&f).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        for (kind, s) in &secrets {
            if kind == "client secret" || !may_hold_tokens(&f, sb) {
                assert!(!text.contains(s.as_str()), "{kind} written to {}", f.display());
            }
        }
    }
}

/// Every file and directory entra-token created is private, whatever the umask.
fn check_modes(sb: &Sandbox) {
    let mut checked = 0;
    for dir in [sb.path("cache"), sb.path("out")] {
        if !dir.exists() {
            continue;
        }
        let m = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        if dir == sb.path("cache") {
            assert_eq!(m, 0o700, "{} is {m:o}", dir.display());
        }
        for f in files_under(&dir) {
            let m = std::fs::symlink_metadata(&f).unwrap().permissions().mode() & 0o777;
            assert_eq!(m, 0o600, "{} is {m:o} under umask 000", f.display());
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} files were checked");
}

#[test]
fn verbose_runs_leak_nothing_and_write_only_private_files() {
    let (mock, sb) = setup();
    std::fs::create_dir(sb.path("out")).unwrap();
    std::fs::set_permissions(sb.path("out"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut runs = Vec::new();
    let mut go = |what: &str, args: &[&str], stdin: &str, answer: bool| {
        let out = run_with_stdin(verbose(&sb, args), stdin);
        assert_eq!(out.status.code(), Some(0), "{what}: {}", String::from_utf8_lossy(&out.stderr));
        runs.push(Run { what: what.into(), out, stdout_may_hold_token: answer });
    };
    // Client credentials, v2 and v1 (secret from a file), cold and cached, every output.
    for o in ["token", "json", "yaml", "header"] {
        go(&format!("get-token -o {o}"), &["get-token", "-p", "ci", "-r", "graph", "-o", o], "", true);
    }
    go("get-token --force", &["get-token", "-p", "ci", "-r", "graph", "--force"], "", true);
    go("get-token v1", &["get-token", "-p", "v1", "-r", "arm"], "", true);
    go("get-token --no-cache", &["get-token", "-p", "v1", "-r", "keyvault", "--no-cache"], "", true);
    let file = sb.path("out/token.txt");
    go("get-token --file", &["get-token", "-p", "ci", "-r", "storage", "--file", file.to_str().unwrap()], "", false);
    let jfile = sb.path("out/token.json");
    go("get-token --file -o json", &["get-token", "-p", "ci", "-r", "storage", "-o", "json", "--file", jfile.to_str().unwrap()], "", false);
    go("native", &[], r#"{"resource":"powerbi","profile":"ci"}"#, true);
    go("native cached", &[], r#"{"resource":"powerbi","profile":"ci"}"#, true);
    go("native scopes", &[], r#"{"scopes":["https://graph.microsoft.com/.default"],"profile":"v1","force_refresh":true}"#, true);
    drop(go);
    let mut env = verbose(&sb, &["get-token", "-r", "sql"]);
    env.env("AZURE_TENANT_ID", TENANT).env("AZURE_CLIENT_ID", APP).env("AZURE_CLIENT_SECRET", SECRET).env("AZURE_AUTHORITY_HOST", mock.url());
    let out = run_with_stdin(env, "");
    assert_eq!(out.status.code(), Some(0), "env profile: {}", String::from_utf8_lossy(&out.stderr));
    runs.push(Run { what: "env profile".into(), out, stdout_may_hold_token: true });
    // Failures are traced too: a refused secret, a server error, garbage answers.
    let mut fail = |what: &str, args: &[&str], stdin: &str| {
        let out = run_with_stdin(verbose(&sb, args), stdin);
        assert_ne!(out.status.code(), Some(0), "{what} should fail");
        runs.push(Run { what: what.into(), out, stdout_may_hold_token: false });
    };
    mock.push_fault(Fault::Truncated200);
    fail("truncated answer", &["get-token", "-p", "ci", "-r", "fabric"], "");
    mock.push_fault(Fault::Html200);
    fail("html answer", &[], r#"{"resource":"fabric","profile":"ci"}"#);
    for _ in 0..3 {
        mock.push_fault(Fault::Status { status: 500, body: format!(r#"{{"error":"server_error","error_description":"echo {SECRET}"}}"#), retry_after: Some(0) });
    }
    fail("500 echoing the secret", &["get-token", "-p", "ci", "-r", "fabric"], "");
    let mut bad = sb.cmd();
    bad.env("CI_SECRET", "wrong-secret-value").arg("-vv").args(["get-token", "-p", "ci", "-r", "fabric"]);
    let out = run_with_stdin(bad, "");
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("wrong-secret-value"), "a rejected secret was printed");
    runs.push(Run { what: "wrong secret".into(), out, stdout_may_hold_token: false });

    // The --file outputs hold exactly a token the authority issued.
    let issued = mock.issued_access_tokens();
    assert!(issued.iter().any(|t| std::fs::read_to_string(&file).unwrap().trim() == t));
    check(&mock, &sb, &runs);
    check_modes(&sb);
}
