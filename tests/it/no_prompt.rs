//! Callers that cannot prompt (IDEs, Lens, MCP clients): `status --check` says whether a
//! token can be had without a person (exit 0) or a sign-in is needed (exit 3) and prints
//! nothing on stdout; an opt-in wait (`wait_for_login`, `--wait-for-login`) answers as
//! soon as an `entra-token login` in another terminal completes (device code against
//! the stand-in), times out with exit 5 otherwise, and raises a desktop notification
//! over the session D-Bus (a private bus here, watched with dbus-monitor) that names the
//! command to run.

use crate::support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use crate::support::{MockAuthority, Sandbox, code, ok, run, stderr, stdout};

const APP: &str = "66666666-6666-4666-8666-666666666666";
const SECRET: &str = "np~secret";

fn setup(dev_extra: &str) -> (MockAuthority, Sandbox) {
    let mock = MockAuthority::start();
    mock.add_tenant("contoso.test");
    mock.add_app(APP, Some(SECRET));
    let sb = Sandbox::new();
    sb.write_config(&format!(
        "[profiles.dev]\nauthority = \"{u}\"\nflow = \"device-code\"\ntenant = \"organizations\"\n{dev_extra}\n\
         [profiles.ci]\nauthority = \"{u}\"\ntenant = \"contoso.test\"\nclient_id = \"{APP}\"\nflow = \"client-credentials\"\nclient_secret_env = \"NP_SECRET\"\n",
        u = mock.url()
    ));
    (mock, sb)
}

fn cmd(sb: &Sandbox, args: &[&str]) -> Command {
    let mut c = sb.cmd();
    c.args(args).env("NP_SECRET", SECRET);
    c
}

#[test]
fn status_check_says_whether_a_person_is_needed_and_prints_nothing() {
    let (mock, sb) = setup("");
    let out = run(cmd(&sb, &["status", "--check", "-p", "dev"]));
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    assert!(stderr(&out).contains("entra-token login -p dev"), "{}", stderr(&out));
    assert_eq!(mock.token_requests(), 0, "a profile nobody signed in to needs no network to know");

    mock.approve_device_codes(0);
    ok(run(cmd(&sb, &["login", "-p", "dev"])));
    let before = mock.token_requests();
    let out = run(cmd(&sb, &["status", "--check", "-p", "dev"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).is_empty() && stderr(&out).is_empty(), "{}", stderr(&out));
    assert_eq!(mock.token_requests(), before, "a cached token answers the check alone");
    // Another resource: the refresh token is redeemed (no person), and the check passes.
    let out = run(cmd(&sb, &["status", "--check", "-p", "dev", "-r", "graph"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // A service principal: 0 with its secret, 3 with a wrong one.
    let out = run(cmd(&sb, &["status", "--check", "-p", "ci"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut c = cmd(&sb, &["status", "--check", "-p", "ci", "-r", "graph"]);
    c.env("NP_SECRET", "wrong");
    let out = run(c);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
}

/// Spawns `get-token` with piped stderr; returns the child once its "waiting" line is out.
fn start_waiting(c: &mut Command) -> (Child, String) {
    let mut child = c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let start = Instant::now();
    while !seen.contains("waiting up to") {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 || start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("no waiting line; stderr: {seen}");
        }
        seen.push_str(&line);
    }
    // Keep draining stderr so the child never blocks on it.
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = err.read_to_string(&mut rest);
    });
    (child, seen)
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_waiting_helper_answers_as_soon_as_a_login_elsewhere_completes() {
    let (mock, sb) = setup("wait_for_login = \"2m\"");
    let started = Instant::now();
    let (mut waiter, said) = start_waiting(&mut cmd(&sb, &["get-token", "-p", "dev"]));
    assert!(said.contains("run `entra-token login -p dev` in a terminal"), "{said}");
    assert_eq!(mock.token_requests(), 0);

    // The person signs in in another terminal (device code, approved at the first poll).
    mock.approve_device_codes(0);
    ok(run(cmd(&sb, &["login", "-p", "dev"])));
    let status = wait_exit(&mut waiter, Duration::from_secs(30));
    assert!(status.success(), "the waiter failed");
    let mut token = String::new();
    waiter.stdout.take().unwrap().read_to_string(&mut token).unwrap();
    assert!(mock.issued_access_tokens().contains(&token.trim().to_string()), "{token}");
    assert!(started.elapsed() < Duration::from_secs(60), "it waited for the whole limit");
}

#[test]
fn the_wait_ends_with_a_timeout_when_nobody_signs_in() {
    let (mock, sb) = setup("");
    let started = Instant::now();
    let out = run(cmd(&sb, &["get-token", "-p", "dev", "--wait-for-login", "2s"]));
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    let err = stderr(&out);
    assert!(err.contains("entra-token login -p dev") && err.contains("timed out"), "{err}");
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(mock.token_requests(), 0);
    // A profile's value that is not a duration is one clear line.
    let (_m, sb) = setup("wait_for_login = \"soon\"");
    let out = run(cmd(&sb, &["get-token", "-p", "dev"]));
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("wait_for_login"), "{}", stderr(&out));
}

/// A private session bus and a dbus-monitor recording the Notifications calls on it.
struct Bus {
    daemon: Child,
    monitor: Child,
    address: String,
    /// Everything the monitor printed, once it is killed.
    seen: std::sync::mpsc::Receiver<String>,
}

impl Drop for Bus {
    fn drop(&mut self) {
        for c in [&mut self.monitor, &mut self.daemon] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn private_bus(sb: &Sandbox) -> Option<Bus> {
    if !support::dbus::have_tools(&["dbus-daemon", "dbus-monitor"], "the desktop-notification check") {
        return None;
    }
    let (daemon, address) = support::dbus::session_bus(sb)?;
    let mut monitor = Command::new("dbus-monitor")
        .args(["--address", &address, "type='method_call',interface='org.freedesktop.Notifications'"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    // The monitor is listening once it has said hello (its NameAcquired/NameLost lines).
    let mut out = BufReader::new(monitor.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).ok()?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = out.read_to_string(&mut rest);
        let _ = tx.send(rest);
    });
    Some(Bus { daemon, monitor, address, seen: rx })
}

#[test]
fn the_desktop_notification_names_the_command_to_run() {
    let (_mock, sb) = setup("");
    let Some(mut bus) = private_bus(&sb) else { return };
    let mut c = cmd(&sb, &["get-token", "-p", "dev", "--wait-for-login", "1s"]);
    c.env("DBUS_SESSION_BUS_ADDRESS", &bus.address);
    let out = run(c);
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    std::thread::sleep(Duration::from_millis(300));
    let _ = bus.monitor.kill();
    let seen = bus.seen.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(seen.contains("member=Notify"), "no Notify call seen:\n{seen}");
    assert!(seen.contains("entra-token login -p dev"), "the notification does not name the command:\n{seen}");
    // Without a bus nothing breaks: the same run without DBUS_SESSION_BUS_ADDRESS is the same timeout.
    let out = run(cmd(&sb, &["get-token", "-p", "dev", "--wait-for-login", "1s"]));
    assert_eq!(code(&out), 5, "{}", stderr(&out));
}

#[test]
fn kubectls_exec_args_carry_the_wait_too() {
    let (mock, sb) = setup("");
    let mut c = cmd(&sb, &["kubectl", "-p", "dev", "--wait-for-login", "2m"]);
    c.env("KUBERNETES_EXEC_INFO", r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}"#);
    let (mut waiter, said) = start_waiting(&mut c);
    assert!(said.contains("run `entra-token login -p dev` in a terminal"), "{said}");
    mock.approve_device_codes(0);
    ok(run(cmd(&sb, &["login", "-p", "dev"])));
    assert!(wait_exit(&mut waiter, Duration::from_secs(30)).success(), "the waiter failed");
    let mut answer = String::new();
    waiter.stdout.take().unwrap().read_to_string(&mut answer).unwrap();
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert!(mock.issued_access_tokens().contains(&v["status"]["token"].as_str().unwrap().to_string()), "{answer}");
}
