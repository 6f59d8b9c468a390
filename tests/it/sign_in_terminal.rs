//! Sign-ins with a person at a terminal, through a real pseudo-terminal (`script`): the
//! device code countdown, a dead refresh token healed by a new sign-in, and the browser
//! flow's paste-back over SSH, where the person pastes the address the browser ended on.

use crate::support;

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use crate::support::{MockAuthority, Sandbox, run};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

fn script_missing() -> bool {
    if Command::new("script").arg("--version").output().is_ok() {
        return false;
    }
    support::skip::missing_tool("script (util-linux)", "the terminal check");
    true
}

/// The binary with `args` on a fresh pseudo-terminal (stdin, stdout and stderr are the
/// terminal); what the terminal shows is collected as it comes.
struct Pty {
    child: Child,
    screen: Arc<Mutex<Vec<u8>>>,
}

impl Pty {
    fn start(sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> Pty {
        let line = std::iter::once(env!("CARGO_BIN_EXE_entra-token")).chain(args.iter().copied()).map(|a| format!("'{a}'")).collect::<Vec<_>>().join(" ");
        let mut cmd = sb.tool("script");
        cmd.args(["-qfec", &line, "/dev/null"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn script");
        let screen = Arc::new(Mutex::new(Vec::new()));
        let mut out = child.stdout.take().unwrap();
        let sink = Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Pty { child, screen }
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    /// Waits until the screen shows `what`; panics after 20 s.
    fn wait_for(&self, what: &str) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(what) {
                return s;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "'{what}' never showed; screen:\n{s}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn type_line(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{text}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// The exit code, waiting at most 30 s.
    fn finish(mut self) -> (i32, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(50));
                return (status.code().unwrap_or(-1), self.screen());
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                panic!("still running; screen:\n{}", self.screen());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn sandbox(mock: &MockAuthority, profile: &str) -> Sandbox {
    let sb = Sandbox::new();
    sb.write_config(&format!("[profiles.me]\nauthority = \"{}\"\ntenant = \"organizations\"\n{profile}\n", mock.url()));
    sb
}

#[test]
fn on_a_terminal_the_device_code_counts_down_and_a_dead_refresh_token_leads_to_a_new_sign_in() {
    if script_missing() {
        return;
    }
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, "flow = \"device-code\"");
    mock.approve_device_codes(0);
    let mut login = sb.cmd();
    login.args(["login", "-p", "me"]);
    assert!(run(login).status.success());
    mock.kill_refresh_tokens(700082);
    mock.approve_device_codes(2);
    let pty = Pty::start(&sb, &["get-token", "-p", "me", "-r", "graph"], &[]);
    let (code, screen) = pty.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("AADSTS700082") && screen.contains("signing in"), "{screen}");
    assert!(screen.contains("enter the code"), "{screen}");
    // One line rewritten in place: carriage return, then the time left.
    assert!(screen.contains("\rentra-token: waiting for the sign-in") || screen.contains("\r\x1b[2Kentra-token: waiting for the sign-in"), "{screen:?}");
    assert!(screen.contains(" left"), "{screen}");
    assert_eq!(mock.grant_count(DEVICE_GRANT), 1 + 3);
    assert_eq!(mock.live_refresh_tokens().len(), 1);
}

/// The authorize URL the sign-in printed, fetched as the person's browser would: the mock
/// answers 302 to the loopback redirect, which the browser on another machine cannot open.
fn browser_lands_on(screen: &str) -> String {
    let start = screen.find("http://127.0.0.1").expect("no authorize URL shown");
    let url: String = screen[start..].chars().take_while(|c| !c.is_whitespace()).collect();
    assert!(url.contains("/oauth2/v2.0/authorize?"), "{url}");
    let agent: ureq::Agent = ureq::Agent::config_builder().max_redirects(0).http_status_as_error(false).proxy(None).build().into();
    let resp = agent.get(&url).call().expect("authorize request");
    assert_eq!(resp.status().as_u16(), 302);
    resp.headers().get("location").unwrap().to_str().unwrap().to_string()
}

#[test]
fn over_ssh_the_browser_sign_in_takes_the_pasted_redirect_and_checks_its_state() {
    if script_missing() {
        return;
    }
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, "flow = \"interactive\"");
    let mut pty = Pty::start(&sb, &["login", "-p", "me"], &[("SSH_CONNECTION", "192.0.2.1 50000 192.0.2.2 22")]);
    let screen = pty.wait_for("press Enter");
    let landed = browser_lands_on(&screen);
    assert!(landed.starts_with("http://localhost:") && landed.contains("code="), "{landed}");
    // A forged answer (another state) is refused; the real one is taken.
    pty.type_line("http://localhost:1/?code=forged&state=not-this-one");
    pty.wait_for("does not carry this sign-in's state");
    pty.type_line(&landed);
    let (code, screen) = pty.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("signed in as user@contoso.test"), "{screen}");
    assert_eq!(mock.grant_count("authorization_code"), 1);
    let redeemed: Vec<_> = mock.requests().into_iter().filter(|r| r.is_token_request()).collect();
    assert_eq!(redeemed.len(), 1, "the forged code must never be redeemed");
    assert_ne!(redeemed[0].form_get("code"), Some("forged"));
    // From now on, silently.
    let mut c = sb.cmd();
    c.args(["get-token", "-p", "me", "-r", "graph"]);
    assert!(run(c).status.success());
    assert_eq!(mock.grant_count("refresh_token"), 1);
}

#[test]
fn the_password_prompt_reads_the_terminal_without_echo() {
    if script_missing() {
        return;
    }
    let mock = MockAuthority::start();
    mock.add_tenant("contoso.test");
    mock.add_user("ann@contoso.test", "s3cret-typed");
    let sb = Sandbox::new();
    sb.write_config(&format!("[profiles.me]\nauthority = \"{}\"\ntenant = \"contoso.test\"\nflow = \"password\"\nusername = \"ann@contoso.test\"\n", mock.url()));
    let mut pty = Pty::start(&sb, &["get-token", "-p", "me", "-r", "graph"], &[]);
    pty.wait_for("password for ann@contoso.test:");
    pty.type_line("s3cret-typed");
    let (code, screen) = pty.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(!screen.contains("s3cret-typed"), "the password was echoed: {screen}");
    let req = mock.requests().into_iter().find(|r| r.form_get("grant_type") == Some("password")).unwrap();
    assert_eq!(req.form_get("password"), Some("s3cret-typed"));
}

#[test]
fn without_a_browser_login_prints_the_address_and_takes_the_redirect_on_its_listener() {
    let mock = MockAuthority::start();
    let sb = sandbox(&mock, "flow = \"interactive\"");
    // No terminal, no $BROWSER, no display: `login` still proceeds and shows the address.
    let mut child = sb.cmd().args(["login", "-p", "me"]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut err = child.stderr.take().unwrap();
    let shown = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&shown);
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let start = Instant::now();
    let text = loop {
        let t = String::from_utf8_lossy(&shown.lock().unwrap()).into_owned();
        if t.contains("authorize?") && t.ends_with('\n') {
            break t;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no address shown: {t}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(text.contains("open this address in a browser"), "{text}");
    // The person's browser, on this machine: follow the 302 to the listener.
    let landed = browser_lands_on(&text);
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).proxy(None).build().into();
    let mut page = agent.get(landed.replace("http://localhost:", "http://127.0.0.1:")).call().expect("the listener answers");
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.body_mut().read_to_string().unwrap().contains("You can close this tab"));
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let all = String::from_utf8_lossy(&shown.lock().unwrap()).into_owned();
    assert!(status.success(), "{all}");
    assert!(all.contains("signed in as user@contoso.test"), "{all}");
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(out.is_empty(), "stdout must stay clean: {out}");
}
