//! The token agent's `--confirm`: each request waits for its person's yes. On a desktop
//! (`--confirm=notify`, or plain `--confirm` without a terminal) the agent raises a
//! freedesktop notification with Allow and Deny over the session D-Bus and waits for
//! ActionInvoked; here a private bus and this test, playing the notification server,
//! answer. On a terminal (`--confirm=terminal`) it asks on its controlling terminal, here a
//! pseudo-terminal the test types into.

use crate::agent::{AZURE_DEVOPS, client, laptop_as};
use crate::support::{self, code, run, stderr, stdout};
use dbus::blocking::Connection;
use dbus::channel::{Channel, MatchingReceiver};
use dbus::message::MatchRule;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const NAME: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";

/// One notification as the server received it.
#[derive(Debug, Clone)]
struct Shown {
    summary: String,
    body: String,
    actions: Vec<String>,
}

/// This test as the desktop's notification server: it records each Notify, and answers
/// with the action `click` holds (None: nobody clicks), as a real server would.
struct Desktop {
    shown: Arc<Mutex<Vec<Shown>>>,
    closed: Arc<Mutex<Vec<u32>>>,
    click: Arc<Mutex<Option<&'static str>>>,
    /// Whether it says it renders markup (`body-markup`), as GNOME's and KDE's do.
    markup: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Drop for Desktop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn desktop(address: &str) -> Desktop {
    let d = Desktop { shown: Arc::default(), closed: Arc::default(), click: Arc::default(), markup: Arc::new(AtomicBool::new(true)), stop: Arc::default() };
    let (shown, closed, click, stop, markup) = (d.shown.clone(), d.closed.clone(), d.click.clone(), d.stop.clone(), d.markup.clone());
    let address = address.to_string();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut ch = Channel::open_private(&address).expect("connect to the private bus");
        ch.register().expect("hello");
        let conn = Connection::from(ch);
        conn.request_name(NAME, false, true, true).expect("own org.freedesktop.Notifications");
        let next_id = std::cell::Cell::new(0u32);
        conn.start_receive(
            MatchRule::new_method_call(),
            Box::new(move |msg, conn| {
                let reply = match msg.member().as_deref() {
                    Some("Notify") => {
                        let mut it = msg.iter_init();
                        let _app: String = it.read().unwrap_or_default();
                        let _replaces: u32 = it.read().unwrap_or_default();
                        let _icon: String = it.read().unwrap_or_default();
                        let summary: String = it.read().unwrap_or_default();
                        let body: String = it.read().unwrap_or_default();
                        let actions: Vec<String> = it.read().unwrap_or_default();
                        shown.lock().unwrap().push(Shown { summary, body, actions });
                        next_id.set(next_id.get() + 1);
                        let id = next_id.get();
                        let _ = conn.channel().send(msg.method_return().append1(id));
                        if let Some(key) = *click.lock().unwrap() {
                            let signal = dbus::Message::new_signal(PATH, NAME, "ActionInvoked").unwrap().append2(id, key);
                            let _ = conn.channel().send(signal);
                        }
                        None
                    }
                    Some("CloseNotification") => {
                        let id: u32 = msg.read1().unwrap_or_default();
                        closed.lock().unwrap().push(id);
                        let signal = dbus::Message::new_signal(PATH, NAME, "NotificationClosed").unwrap().append2(id, 3u32);
                        let _ = conn.channel().send(signal);
                        Some(msg.method_return())
                    }
                    Some("GetCapabilities") if markup.load(Ordering::SeqCst) => Some(msg.method_return().append1(vec!["actions", "body", "body-markup"])),
                    Some("GetCapabilities") => Some(msg.method_return().append1(vec!["actions", "body"])),
                    _ => dbus::channel::default_reply(&msg),
                };
                if let Some(r) = reply {
                    let _ = conn.channel().send(r);
                }
                true
            }),
        );
        ready_tx.send(()).unwrap();
        while !stop.load(Ordering::SeqCst) {
            let _ = conn.process(Duration::from_millis(100));
        }
    });
    ready_rx.recv_timeout(Duration::from_secs(20)).expect("the notification server started");
    d
}

/// A private session bus for the agent (its daemon lives as long as the returned child).
fn bus(sb: &support::Sandbox) -> Option<(Child, String)> {
    if !support::dbus::have_tools(&["dbus-daemon"], "the agent's desktop confirmation") {
        return None;
    }
    support::dbus::session_bus(sb)
}

/// An agent with `--confirm=notify` on a private session bus, and this test as the
/// notification server there; None (said SKIPPED) without dbus-daemon.
fn notifying_agent() -> Option<(crate::agent::Laptop, Desktop, Child)> {
    let mut daemon = None;
    let mut address = String::new();
    let lap = laptop_as(&["--confirm=notify"], |sb, c| {
        if let Some((d, a)) = bus(sb) {
            c.env("DBUS_SESSION_BUS_ADDRESS", &a);
            (daemon, address) = (Some(d), a);
        }
    });
    let daemon = daemon?;
    Some((lap, desktop(&address), daemon))
}

/// Stops the notification server, then the bus.
fn end(desk: Desktop, mut daemon: Child) {
    drop(desk);
    let _ = daemon.kill();
    let _ = daemon.wait();
}

/// A command in a new session: no controlling terminal, whatever the test runner has.
fn detached(c: &mut Command) {
    // SAFETY: setsid is async-signal-safe and touches nothing of the parent's.
    unsafe {
        c.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
}

#[test]
fn a_desktop_notification_with_allow_and_deny_decides_each_request() {
    let Some((lap, desk, daemon)) = notifying_agent() else { return };
    let (_c, cmd) = client(&lap.socket);

    *desk.click.lock().unwrap() = Some("allow");
    let out = run(cmd(&["get-token", "-p", "ado", "-r", AZURE_DEVOPS]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), lap.mock.issued_access_tokens()[0]);
    let shown = desk.shown.lock().unwrap().clone();
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].actions, ["allow", "Allow", "deny", "Deny"]);
    assert!(shown[0].summary.contains("allow a token"), "{shown:?}");
    assert!(shown[0].body.contains("uid ") && shown[0].body.contains("profile 'ado'"), "the notification does not say who asks for what: {shown:?}");

    // Deny: refused (exit 3), and the cached token is not handed out either.
    *desk.click.lock().unwrap() = Some("deny");
    let out = run(cmd(&["get-token", "-p", "ado", "-r", AZURE_DEVOPS]));
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("declined") && stdout(&out).is_empty(), "{}", stderr(&out));

    // Nobody clicks: refused before the client's own time is up, and the notification is withdrawn.
    *desk.click.lock().unwrap() = None;
    let out = run(cmd(&["get-token", "-p", "ado", "-r", AZURE_DEVOPS, "--timeout", "3s"]));
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("in time"), "{}", stderr(&out));
    assert_eq!(desk.closed.lock().unwrap().len(), 1);
    assert_eq!(desk.shown.lock().unwrap().len(), 3);
    assert_eq!(lap.mock.token_requests(), 1);
    end(desk, daemon);
}

#[test]
fn the_question_says_a_claims_challenge_is_asked_and_shows_outside_text_as_text() {
    let Some((lap, desk, daemon)) = notifying_agent() else { return };
    let (_c, cmd) = client(&lap.socket);
    *desk.click.lock().unwrap() = Some("deny");
    let claims = r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#;
    let out = run(cmd(&["get-token", "-p", "arm", "-r", "arm", "--claims", claims]));
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    // A scope is the client's text; a server that renders the spec's markup must show it as text.
    let out = run(cmd(&["get-token", "-p", "ado", "--scope", "api://x/<b>bold</b><a href=\"https://evil.test\">ok</a>/.default"]));
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    // A server that renders no markup shows the text as it is.
    desk.markup.store(false, Ordering::SeqCst);
    let out = run(cmd(&["get-token", "-p", "ado", "--scope", "api://x/<b>bold</b>/.default"]));
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let shown = desk.shown.lock().unwrap().clone();
    assert_eq!(shown.len(), 3, "{shown:?}");
    assert!(shown[0].body.contains("claims challenge") && shown[0].body.contains("step-up"), "the question hides the step-up: {:?}", shown[0].body);
    assert!(!shown[1].body.contains('<') && shown[1].body.contains("&lt;b&gt;bold&lt;/b&gt;&lt;a href="), "{:?}", shown[1].body);
    assert!(shown[2].body.contains("api://x/<b>bold</b>") && !shown[2].body.contains("&lt;"), "{:?}", shown[2].body);
    assert_eq!(lap.mock.token_requests(), 0);
    end(desk, daemon);
}

#[test]
fn plain_confirm_without_a_terminal_notifies_and_without_a_desktop_refuses() {
    // A bus with no notification server on it: the request cannot be confirmed, so it is refused.
    let mut daemon = None;
    let lap = laptop_as(&["--confirm"], |sb, c| {
        detached(c);
        if let Some((d, a)) = bus(sb) {
            c.env("DBUS_SESSION_BUS_ADDRESS", &a);
            daemon = Some((d, a));
        }
    });
    let Some((daemon, address)) = daemon else { return };
    let (_c, cmd) = client(&lap.socket);
    let out = run(cmd(&["get-token", "-p", "ado", "-r", AZURE_DEVOPS]));
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot be asked") && stderr(&out).contains("no terminal"), "{}", stderr(&out));
    assert_eq!(lap.mock.token_requests(), 0);
    // With a notification server, the same agent asks there (it has no terminal) and an Allow lets the token through.
    let desk = desktop(&address);
    *desk.click.lock().unwrap() = Some("allow");
    let out = run(cmd(&["get-token", "-p", "ado", "-r", AZURE_DEVOPS]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(desk.shown.lock().unwrap().len(), 1);
    end(desk, daemon);
}

/// A pseudo-terminal: (controller, the terminal's end).
pub(crate) fn pty() -> (std::fs::File, OwnedFd) {
    let (mut controller, mut terminal) = (-1, -1);
    // SAFETY: openpty writes two descriptors we then own; null name/termios/winsize are allowed.
    let rc = unsafe { libc::openpty(&mut controller, &mut terminal, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and are owned by nobody else.
    unsafe { (std::fs::File::from_raw_fd(controller), OwnedFd::from_raw_fd(terminal)) }
}

/// An agent with `--confirm=terminal` on a pseudo-terminal: the laptop, what its terminal
/// shows (as it comes), and the keyboard.
fn terminal_agent() -> (crate::agent::Laptop, std::sync::mpsc::Receiver<String>, std::fs::File) {
    let (controller, terminal) = pty();
    let lap = laptop_as(&["--confirm=terminal"], move |_, c| {
        c.stdin(terminal);
        // A new session whose controlling terminal is the pty on stdin: /dev/tty is that pty.
        // SAFETY: setsid and ioctl are async-signal-safe.
        unsafe {
            c.pre_exec(|| {
                libc::setsid();
                if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let mut reader = controller.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(String::from_utf8_lossy(&buf[..n]).into_owned()).is_err() {
                break;
            }
        }
    });
    (lap, rx, controller)
}

/// Waits for the next question on the agent's terminal; returns it and the code it shows.
fn question(rx: &std::sync::mpsc::Receiver<String>) -> (String, String) {
    let mut seen = String::new();
    while !seen.contains("(anything else refuses): ") {
        seen.push_str(&rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("no question on the agent's terminal; it showed {seen:?}")));
    }
    let code = seen.rsplit("Type ").next().and_then(|r| r.split(' ').next()).unwrap_or_default().to_string();
    assert_eq!(code.len(), 4, "no code in the question: {seen}");
    (seen, code)
}

#[test]
fn terminal_confirmation_asks_on_the_agents_terminal_and_takes_the_questions_code() {
    let (lap, rx, mut typed) = terminal_agent();
    let (_c, cmd) = client(&lap.socket);
    let mut ask = |answer: Option<&str>| {
        let request = cmd(&["get-token", "-p", "ado", "-r", AZURE_DEVOPS]);
        let pending = std::thread::spawn(move || run(request));
        let (seen, code) = question(&rx);
        assert!(seen.contains("asks for a token: profile 'ado'") && seen.contains("Allow?"), "{seen}");
        typed.write_all(format!("{}\n", answer.unwrap_or(&code)).as_bytes()).unwrap();
        pending.join().unwrap()
    };
    let out = ask(None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), lap.mock.issued_access_tokens()[0]);
    for no in ["n", "y", "yes"] {
        let out = ask(Some(no));
        assert_eq!(code(&out), 3, "{no}: {}", stderr(&out));
        assert!(stderr(&out).contains("declined"), "{}", stderr(&out));
    }
}

#[test]
fn a_keypress_before_the_question_or_after_its_time_approves_nothing() {
    let (lap, rx, mut typed) = terminal_agent();
    let (_c, cmd) = client(&lap.socket);
    // Typed before the question was shown: dropped, so this request runs out of time unanswered.
    typed.write_all(b"y\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let request = cmd(&["get-token", "-p", "ado", "-r", AZURE_DEVOPS, "--timeout", "4s"]);
    let pending = std::thread::spawn(move || run(request));
    let (_, first) = question(&rx);
    let out = pending.join().unwrap();
    assert_eq!(code(&out), 3, "a keypress typed before the question approved it: {}", stderr(&out));
    assert!(stderr(&out).contains("in time"), "{}", stderr(&out));
    // Nothing is left reading the terminal after that timeout: the next question gets its answer.
    let request = cmd(&["get-token", "-p", "ado", "-r", AZURE_DEVOPS, "--timeout", "20s"]);
    let pending = std::thread::spawn(move || run(request));
    let (_, second) = question(&rx);
    typed.write_all(format!("{second}\n").as_bytes()).unwrap();
    let out = pending.join().unwrap();
    assert_eq!(code(&out), 0, "the answer to the second question was lost: {}", stderr(&out));
    // The code of another question approves nothing.
    let request = cmd(&["get-token", "-p", "ado", "-r", AZURE_DEVOPS, "--timeout", "20s"]);
    let pending = std::thread::spawn(move || run(request));
    let (_, third) = question(&rx);
    let stale = if first != third { first } else { second };
    typed.write_all(format!("{stale}\n").as_bytes()).unwrap();
    let out = pending.join().unwrap();
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert_eq!(lap.mock.token_requests(), 1);
}

#[test]
fn an_agent_in_its_terminals_background_is_never_stopped_by_asking_there() {
    // `entra-token agent --confirm &` from a shell with job control: the terminal belongs to
    // the shell's foreground job, and a background read would stop the agent (SIGTTIN).
    let (_controller, terminal) = pty();
    let lap = laptop_as(&["--confirm", "--timeout", "60s"], move |_, c| {
        let mut sh = Command::new("sh");
        for (k, v) in c.get_envs() {
            match v {
                Some(v) => sh.env(k, v),
                None => sh.env_remove(k),
            };
        }
        if let Some(d) = c.get_current_dir() {
            sh.current_dir(d);
        }
        sh.arg("-c").arg("set -m; \"$@\" & wait").arg("sh").arg(c.get_program()).args(c.get_args());
        sh.stdin(terminal).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).env_remove("DBUS_SESSION_BUS_ADDRESS");
        // SAFETY: setsid and ioctl are async-signal-safe.
        unsafe {
            sh.pre_exec(|| {
                libc::setsid();
                if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        *c = sh;
    });
    let (_c, cmd) = client(&lap.socket);
    // No desktop either: refused at once, twice (the agent was not stopped), never a hang.
    for _ in 0..2 {
        let out = run(cmd(&["get-token", "-p", "ado", "-r", AZURE_DEVOPS, "--timeout", "20s"]));
        assert_eq!(code(&out), 3, "{}", stderr(&out));
        assert!(stderr(&out).contains("cannot be asked"), "{}", stderr(&out));
    }
    assert_eq!(lap.mock.token_requests(), 0);
}
