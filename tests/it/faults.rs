//! Faults at the token endpoint: each failure is injected by the mock authority and the
//! binary must still answer, or fail cleanly with the documented exit code and a clear
//! message, within its time limit and in bounded memory.

// On Windows the helpers and imports of this suite's Unix-only tests go unused.
#![cfg_attr(windows, allow(unused_imports, dead_code, unused_mut))]

use crate::support;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use crate::support::{CcProfile, Fault, MockAuthority, Sandbox, run_with_stdin, stderr};

const TENANT: &str = "contoso.test";
const APP: &str = "33333333-3333-3333-3333-333333333333";
const SECRET: &str = "fault~secret~value";

fn setup() -> (MockAuthority, Sandbox) {
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some(SECRET));
    let sb = Sandbox::new();
    sb.write_config(&config_for(&mock.url()));
    (mock, sb)
}

fn config_for(authority: &str) -> String {
    CcProfile::new("ci", authority, TENANT, APP).toml()
}

fn get_token(sb: &Sandbox, extra: &[&str]) -> (Output, Duration) {
    let mut cmd = sb.cmd();
    cmd.env("CI_SECRET", SECRET).args(["get-token", "-p", "ci", "-r", "graph"]).args(extra);
    let start = Instant::now();
    let out = run_with_stdin(cmd, "");
    (out, start.elapsed())
}

fn assert_token(o: &Output) {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(o));
    let tok = String::from_utf8_lossy(&o.stdout);
    assert!(tok.trim().starts_with("eyJ"), "stdout is not a token: {tok:?}");
}

fn cache_files(sb: &Sandbox) -> Vec<String> {
    std::fs::read_dir(sb.path("cache"))
        .map(|rd| rd.filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|n| n.ends_with(".json")).collect())
        .unwrap_or_default()
}

#[test]
fn server_errors_then_success_are_retried() {
    let (mock, sb) = setup();
    mock.push_fault(Fault::Status { status: 500, body: "oops".into(), retry_after: Some(0) });
    mock.push_fault(Fault::Status { status: 503, body: "busy".into(), retry_after: Some(1) });
    let (out, _) = get_token(&sb, &[]);
    assert_token(&out);
    assert_eq!(mock.token_requests(), 3, "two failures and one success");
    assert_eq!(cache_files(&sb).len(), 1, "the token was cached");
}

/// A 503 in Entra's own error shape that outlasts the retries is the service's state: a
/// network/service error (exit 4) saying to retry later, not "authentication failed".
#[test]
fn a_503_that_outlasts_the_retries_is_a_service_error_to_retry_later() {
    let (mock, sb) = setup();
    for _ in 0..3 {
        let body = r#"{"error":"temporarily_unavailable","error_description":"AADSTS50196: The server is temporarily unavailable.","error_codes":[50196]}"#;
        mock.push_fault(Fault::Status { status: 503, body: body.into(), retry_after: Some(0) });
    }
    let (out, _) = get_token(&sb, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("503") && err.contains("retry later"), "{err}");
}

#[test]
fn server_error_without_retry_after_backs_off_and_gives_up_cleanly() {
    let (mock, sb) = setup();
    for _ in 0..3 {
        mock.push_fault(Fault::Status { status: 502, body: "<html>bad gateway</html>".into(), retry_after: None });
    }
    let (out, _) = get_token(&sb, &[]);
    assert_eq!(out.status.code(), Some(4), "stderr: {}", stderr(&out));
    assert_eq!(mock.token_requests(), 3, "three attempts in all");
    assert!(stderr(&out).contains("502"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert!(cache_files(&sb).is_empty(), "nothing cached from a failure");
}

#[test]
fn throttling_honours_retry_after() {
    let (mock, sb) = setup();
    mock.push_fault(Fault::Status {
        status: 429,
        body: r#"{"error":"temporarily_unavailable","error_description":"slow down"}"#.into(),
        retry_after: Some(2),
    });
    let (out, took) = get_token(&sb, &[]);
    assert_token(&out);
    assert_eq!(mock.token_requests(), 2);
    assert!(took >= Duration::from_secs(2), "retried after {took:?}, before Retry-After: 2");
}

#[test]
fn throttling_longer_than_the_timeout_fails_fast_with_the_wait() {
    let (mock, sb) = setup();
    mock.push_fault(Fault::Status { status: 429, body: "Too Many Requests".into(), retry_after: Some(120) });
    let (out, took) = get_token(&sb, &["--timeout", "10s"]);
    assert_eq!(out.status.code(), Some(4), "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("429") && err.contains("120s"), "no throttling message with the wait: {err}");
    assert!(took < Duration::from_secs(10), "slept into a Retry-After beyond the deadline ({took:?})");
    assert_eq!(mock.token_requests(), 1);
}

#[test]
fn a_hung_endpoint_times_out_with_exit_5() {
    let (mock, sb) = setup();
    mock.push_fault(Fault::Hang);
    let (out, took) = get_token(&sb, &["--timeout", "2s"]);
    assert_eq!(out.status.code(), Some(5), "stderr: {}", stderr(&out));
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));
    assert!(took < Duration::from_secs(2 + 3), "took {took:?} for --timeout 2s");
    assert!(took >= Duration::from_secs(2), "gave up before the timeout ({took:?})");
}

#[test]
fn native_protocol_answers_a_failure_as_a_json_error() {
    let (mock, sb) = setup();
    mock.push_fault(Fault::Status { status: 500, body: "x".into(), retry_after: Some(0) });
    mock.push_fault(Fault::Status { status: 500, body: "x".into(), retry_after: Some(0) });
    mock.push_fault(Fault::Status { status: 500, body: "x".into(), retry_after: Some(0) });
    let mut cmd = sb.cmd();
    cmd.env("CI_SECRET", SECRET);
    let out = run_with_stdin(cmd, r#"{"resource":"graph","profile":"ci"}"#);
    assert_eq!(out.status.code(), Some(4));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON error answer on stdout");
    assert_eq!(v["error"]["code"], "network_error", "{v}");
    assert_eq!(v["error"]["exit_code"], 4, "{v}");
}

#[test]
fn connection_refused_exits_4() {
    let sb = Sandbox::new();
    sb.write_config(&config_for(&support::refused_url()));
    let (out, _) = get_token(&sb, &["--timeout", "10s"]);
    assert_eq!(out.status.code(), Some(4), "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("refused") || err.contains("connection failed"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_closed_connection_exits_4() {
    let (mock, sb) = setup();
    mock.push_fault(Fault::CloseConnection);
    let (out, _) = get_token(&sb, &[]);
    assert_eq!(out.status.code(), Some(4), "stderr: {}", stderr(&out));
}

#[test]
fn html_with_status_200_is_a_clear_network_error() {
    let (mock, sb) = setup();
    mock.push_fault(Fault::Html200);
    let (out, _) = get_token(&sb, &[]);
    assert_eq!(out.status.code(), Some(4), "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("not a token response") && err.contains("HTML"), "{err}");
    assert!(err.contains("hint:"), "no hint: {err}");
    assert!(!err.contains("<html") && !err.contains("DOCTYPE"), "dumped the page: {err}");
    assert!(cache_files(&sb).is_empty());
}

#[test]
fn truncated_json_with_status_200_is_a_clear_network_error() {
    let (mock, sb) = setup();
    mock.push_fault(Fault::Truncated200);
    let (out, _) = get_token(&sb, &[]);
    assert_eq!(out.status.code(), Some(4), "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("not a token response"), "{err}");
    assert!(!err.contains("eyJ0eXAi"), "echoed the partial token: {err}");
    assert!(cache_files(&sb).is_empty());
}

/// Runs `cmd` to completion and returns its output with its peak resident set in KiB.
///
/// Linux counts into a child's peak the memory of the process it was spawned from (exec
/// records the old address space's high-water mark), and this test process can be large
/// (another test's backtrace loads the debug info). So a fresh copy of this test binary,
/// running only [`rss_probe`], spawns `cmd` and measures it there.
#[cfg(unix)]
fn run_measuring_rss(cmd: Command) -> (Output, i64) {
    let result = tempfile::NamedTempFile::new().expect("a result file");
    let spec = serde_json::json!({
        "program": cmd.get_program().to_string_lossy(),
        "args": cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>(),
        "env": cmd.get_envs().map(|(k, v)| (k.to_string_lossy().into_owned(), v.map(|v| v.to_string_lossy().into_owned()))).collect::<Vec<_>>(),
        "cwd": cmd.get_current_dir().map(|d| d.to_string_lossy().into_owned()),
        "result": result.path().to_string_lossy(),
    });
    let mut probe = Command::new(std::env::current_exe().expect("the test binary"));
    probe.args(["faults::rss_probe", "--exact", "--include-ignored", "--test-threads=1"]).env(RSS_PROBE, spec.to_string());
    let out = support::run(probe);
    assert!(out.status.success(), "the probe failed: {}{}", support::text(&out.stdout), support::text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(result.path()).unwrap()).expect("the probe's result");
    let output = Output {
        status: std::os::unix::process::ExitStatusExt::from_raw(v["status"].as_i64().unwrap() as i32),
        stdout: v["stdout"].as_str().unwrap().as_bytes().to_vec(),
        stderr: v["stderr"].as_str().unwrap().as_bytes().to_vec(),
    };
    (output, v["maxrss"].as_i64().unwrap())
}

/// Where [`run_measuring_rss`] passes the command to [`rss_probe`].
const RSS_PROBE: &str = "ENTRA_TOKEN_TEST_RSS_PROBE";

/// Not a check: the other half of [`run_measuring_rss`], in a fresh, small process. Spawns
/// the command it is given, reaps it with wait4 and writes its output and peak RSS (KiB).
#[cfg(unix)]
#[test]
#[ignore = "run by run_measuring_rss in a fresh process"]
#[allow(clippy::zombie_processes)] // reaped below by wait4, which std's Child cannot see
fn rss_probe() {
    let Some(spec) = std::env::var_os(RSS_PROBE) else { return };
    let spec: serde_json::Value = serde_json::from_str(&spec.to_string_lossy()).expect("a probe spec");
    let mut cmd = Command::new(spec["program"].as_str().unwrap());
    cmd.args(spec["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap())).env_remove(RSS_PROBE);
    for e in spec["env"].as_array().unwrap() {
        match e[1].as_str() {
            Some(v) => cmd.env(e[0].as_str().unwrap(), v),
            None => cmd.env_remove(e[0].as_str().unwrap()),
        };
    }
    if let Some(d) = spec["cwd"].as_str() {
        cmd.current_dir(d);
    }
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    let (mut out, mut err) = (child.stdout.unwrap(), child.stderr.unwrap());
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut b).ok();
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut b).ok();
        b
    });
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid out-parameter; pid is our own child, reaped once here.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4 failed");
    let result = serde_json::json!({
        "status": status,
        "stdout": String::from_utf8_lossy(&t_out.join().unwrap()),
        "stderr": String::from_utf8_lossy(&t_err.join().unwrap()),
        "maxrss": usage.ru_maxrss,
    });
    std::fs::write(spec["result"].as_str().unwrap(), result.to_string()).expect("write the probe's result");
}

/// Not a check: a test that panics with a backtrace when `ENTRA_TOKEN_TEST_PANIC` is set,
/// so test_env.rs can run it just before the memory test below in one process (its
/// backtrace makes this process large, which no child's measurement may count).
#[test]
#[ignore = "run by test_env::a_backtrace_in_another_test_leaves_the_memory_test_alone"]
fn a_backtrace_first() {
    if std::env::var_os("ENTRA_TOKEN_TEST_PANIC").is_some() {
        panic!("a panic with a backtrace, on purpose");
    }
}

// Unix only: measures the peak resident set with wait4 (run_measuring_rss).
#[cfg(unix)]
#[test]
fn a_huge_answer_is_a_bounded_error_in_bounded_memory() {
    let (mock, sb) = setup();
    mock.push_fault(Fault::Huge200 { bytes: 200 * 1024 * 1024 });
    let mut cmd = sb.cmd();
    cmd.env("CI_SECRET", SECRET).args(["get-token", "-p", "ci", "-r", "graph", "--timeout", "30s"]);
    let (out, peak_kib) = run_measuring_rss(cmd);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "stderr: {err}");
    assert!(err.contains("larger than"), "{err}");
    assert!(err.len() < 1024, "the error is not one bounded line: {} bytes", err.len());
    println!("peak RSS with a 200 MiB answer: {peak_kib} KiB");
    assert!(peak_kib < 64 * 1024, "peak RSS {peak_kib} KiB for a 200 MiB answer: the body was not bounded");
}
