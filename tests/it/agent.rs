//! `entra-token agent`: one machine's sign-ins answer another's requests over a Unix
//! socket. Local clients with an empty HOME get tokens only within the agent's
//! allow-lists; a dead agent is one error naming ENTRA_TOKEN_AGENT; hostile requests get
//! one error each and the agent keeps serving; another uid is refused; and through real
//! OpenSSH (`sshd` on 127.0.0.1, `ssh -R`), `git credential fill` and `get-token` on the
//! "remote" side get the agent's tokens.

use crate::support;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use crate::support::{CcProfile, MockAuthority, Sandbox, code, run, run_with_stdin, stderr, stdout};

pub(crate) const TENANT: &str = "contoso.test";
pub(crate) const APP: &str = "55555555-5555-4555-8555-555555555555";
pub(crate) const SECRET: &str = "agent~secret";
pub(crate) const AZURE_DEVOPS: &str = "499b84ac-1321-427f-aa17-267ca6975798";
const STRANGER: u32 = 65534;

mod openssh;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The laptop: a mock authority, a sandbox whose profile `ado` (Azure DevOps URLs) and
/// `arm` sign a service principal in, and a running agent.
pub(crate) struct Laptop {
    pub mock: MockAuthority,
    pub sb: Sandbox,
    pub agent: Child,
    pub socket: PathBuf,
}

impl Drop for Laptop {
    fn drop(&mut self) {
        let _ = self.agent.kill();
        let _ = self.agent.wait();
    }
}

pub(crate) fn laptop(extra_args: &[&str]) -> Laptop {
    laptop_as(extra_args, |_, _| {})
}

/// [`laptop`], with `adjust` given the laptop's sandbox and the agent's command before it starts.
pub(crate) fn laptop_as(extra_args: &[&str], adjust: impl FnOnce(&Sandbox, &mut Command)) -> Laptop {
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some(SECRET));
    let sb = Sandbox::new();
    let profile = |name: &str, rest: &str| {
        CcProfile::new(name, &mock.url(), TENANT, APP).secret_env("AGENT_SECRET").with(rest).with("\n").toml()
    };
    sb.write_config(&format!("{}{}", profile("ado", "urls = [\"https://dev.azure.com/org/\"]\n"), profile("arm", "")));
    let socket = sb.path("run/entra-token/agent.sock");
    let agent = start_agent_as(&sb, extra_args, &[], |c| adjust(&sb, c));
    Laptop { mock, sb, agent, socket }
}

/// Starts `entra-token agent` in `sb`, with more variables in its environment, and waits
/// for its `ENTRA_TOKEN_AGENT=…` line.
pub(crate) fn start_agent_with(sb: &Sandbox, extra_args: &[&str], env: &[(&str, &str)]) -> Child {
    start_agent_as(sb, extra_args, env, |_| {})
}

/// [`start_agent_with`], with `adjust` applied to the command last (its stdin, a new session, …).
pub(crate) fn start_agent_as(sb: &Sandbox, extra_args: &[&str], env: &[(&str, &str)], adjust: impl FnOnce(&mut Command)) -> Child {
    let mut c = sb.cmd();
    c.arg("agent").args(extra_args).env("AGENT_SECRET", SECRET).envs(env.iter().copied()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    adjust(&mut c);
    let mut child = c.spawn().expect("start the agent");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.starts_with("ENTRA_TOKEN_AGENT='") && first.contains("; export ENTRA_TOKEN_AGENT;"), "agent said {first:?}");
    child
}

/// A client machine: nothing configured, an empty HOME, only ENTRA_TOKEN_AGENT.
pub(crate) fn client(socket: &Path) -> (Sandbox, impl Fn(&[&str]) -> Command + use<>) {
    let sb = Sandbox::new();
    let socket = socket.to_path_buf();
    let dir = sb.path("");
    let make = move |args: &[&str]| {
        let mut c = support::bin();
        c.env("HOME", dir.join("home"))
            .env("XDG_CONFIG_HOME", dir.join("home/.config"))
            .env("XDG_CACHE_HOME", dir.join("home/.cache"))
            .env("ENTRA_TOKEN_CONFIG", dir.join("config.toml"))
            .env("ENTRA_TOKEN_CACHE_DIR", dir.join("cache"))
            .env("AZURE_CONFIG_DIR", dir.join("azure"))
            .env("ENTRA_TOKEN_AGENT", &socket)
            .current_dir(&dir)
            .args(args);
        c
    };
    (sb, make)
}

/// One raw exchange with the agent: what it answers to `bytes`.
fn raw(socket: &Path, bytes: &[u8]) -> serde_json::Value {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("agent answered {out:?}: {e}"))
}

#[test]
fn clients_with_an_empty_home_get_only_what_the_agent_allows() {
    let lap = laptop(&["--allow-profile", "ado", "--allow-resource", "devops"]);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&lap.socket), 0o600);
    assert_eq!(mode(lap.socket.parent().unwrap()), 0o700);
    let (client_sb, cmd) = client(&lap.socket);

    let out = run(cmd(&["get-token", "-p", "ado", "-r", AZURE_DEVOPS]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let issued = lap.mock.issued_access_tokens();
    assert_eq!(stdout(&out).trim(), issued.last().unwrap());
    // The native protocol, from cache on the agent's side this time; nothing was written here.
    let out = run_with_stdin(cmd(&[]), &format!(r#"{{"profile":"ado","resource":"{AZURE_DEVOPS}"}}"#));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["access_token"], issued.last().unwrap().as_str());
    assert_eq!(v["from_cache"], true);
    assert!(!client_sb.path("cache").exists(), "the client cached an agent answer");
    assert_eq!(lap.mock.token_requests(), 1);
    // The agent's secret and refresh tokens never cross: the answer has only the access token's fields.
    assert!(!stdout(&out).contains(SECRET) && !stdout(&out).contains("refresh"), "{}", stdout(&out));

    // Outside the allow-lists: one clear refusal each, exit 3, nothing asked of Entra.
    for args in [&["get-token", "-p", "ado", "-r", "arm"][..], &["get-token", "-p", "arm", "-r", AZURE_DEVOPS], &["get-token", "-r", "graph"]] {
        let out = run(cmd(args));
        assert_eq!(code(&out), 3, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("this agent does not serve"), "{args:?}: {}", stderr(&out));
    }
    let out = run(cmd(&["get-token", "-p", "ado", "-r", AZURE_DEVOPS, "-f", "interactive"]));
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let out = run(cmd(&["get-token", "-p", "ado", "-r", AZURE_DEVOPS, "--tenant", "other.test"]));
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert_eq!(lap.mock.token_requests(), 1);

    // az and azd front ends ask the agent too (ENTRA_TOKEN_PROFILE picks the agent's profile).
    let az = client_sb.link("az");
    let mut c = cmd(&["account", "get-access-token", "--resource", AZURE_DEVOPS, "-o", "json"]);
    c.env("ENTRA_TOKEN_PROFILE", "ado");
    let mut c2 = Command::new(&az);
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => c2.env(k, v),
            None => c2.env_remove(k),
        };
    }
    c2.args(c.get_args());
    let out = run(c2);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["accessToken"], issued.last().unwrap().as_str());
}

#[test]
fn a_dead_agent_is_one_error_naming_entra_token_agent_never_a_prompt() {
    let sb = Sandbox::new();
    for socket in [sb.path("nothing-here.sock"), sb.path("")] {
        let (_c, cmd) = client(&socket);
        let out = run(cmd(&["get-token", "-r", "graph"]));
        assert_eq!(code(&out), 4, "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("ENTRA_TOKEN_AGENT") && !err.contains("login") && !err.contains("device"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(stdout(&out).is_empty());
    }
}

#[test]
fn hostile_requests_get_one_error_each_and_the_agent_keeps_serving() {
    let lap = laptop(&[]);
    for bad in [&b"garbage\n"[..], b"{\"v\":9}\n", b"\xff\xfe\n", b"[1,2]\n", b"\n", br#"{"profile":"ado","url":"https://x/\u0000"}"#] {
        let v = raw(&lap.socket, bad);
        assert_eq!(v["error"]["exit_code"], 1, "{bad:?}: {v}");
    }
    // The agent's own fields, malformed: one error each, nothing dropped or fetched.
    for bad in [
        r#"{"op":"frobnicate"}"#,
        r#"{"op":"forget","profile":"ado","rejected_sha256":"not-hex"}"#,
        r#"{"profile":"ado","rejected_sha256":"0000000000000000000000000000000000000000000000000000000000000000"}"#,
        r#"{"profile":"ado","timeout":0}"#,
        r#"{"profile":"ado","timeout":99999999}"#,
        r#"{"profile":"ado","wait_for_login":-1}"#,
        r#"{"profile":"ado","docker":true}"#,
        r#"{"profile":"ado","docker":"yes","url":"https://dev.azure.com/org/"}"#,
        r#"{"profile":"ado","url":7}"#,
    ] {
        let v = raw(&lap.socket, format!("{bad}\n").as_bytes());
        assert_eq!(v["error"]["exit_code"], 1, "{bad}: {v}");
    }
    assert_eq!(lap.mock.token_requests(), 0);
    // Larger than the limit, with no newline: refused without reading it all (the
    // refusal, or a reset when the kernel drops what the agent did not read).
    let mut s = UnixStream::connect(&lap.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(&vec![b'a'; 1024 * 1024]);
    let mut out = String::new();
    match s.read_to_string(&mut out) {
        Ok(_) => assert!(out.contains("larger than"), "{out}"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    // A silent client holds one connection; another is answered meanwhile.
    let _silent = UnixStream::connect(&lap.socket).unwrap();
    let v = raw(&lap.socket, format!("{{\"profile\":\"ado\",\"resource\":\"{AZURE_DEVOPS}\"}}\n").as_bytes());
    assert!(v["access_token"].is_string(), "{v}");
    // A URL no profile claims is "not mine" (exit 2), never a token.
    let v = raw(&lap.socket, b"{\"url\":\"https://evil.test/org/_git/r\"}\n");
    assert_eq!(v["error"]["exit_code"], 2, "{v}");
}

#[test]
fn the_agent_stops_after_its_lifetime_and_removes_its_socket() {
    let mut lap = laptop(&["--timeout", "1s"]);
    let start = Instant::now();
    let status = loop {
        if let Some(s) = lap.agent.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "the agent outlived its lifetime");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    assert!(!lap.socket.exists());
}

#[test]
fn another_user_is_refused_even_when_the_socket_is_open_to_them() {
    if !is_root() {
        support::skip::not_here("connecting as another uid needs root");
        return;
    }
    let lap = laptop(&[]);
    // As a socket bind-mounted into a container for another uid would be: reachable and writable.
    std::fs::set_permissions(lap.sb.path("run"), std::fs::Permissions::from_mode(0o711)).unwrap();
    std::fs::set_permissions(lap.socket.parent().unwrap(), std::fs::Permissions::from_mode(0o711)).unwrap();
    std::fs::set_permissions(&lap.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::set_permissions(lap.sb.path(""), std::fs::Permissions::from_mode(0o711)).unwrap();
    let public = tempfile::tempdir().unwrap();
    std::fs::set_permissions(public.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = public.path().join("entra-token");
    // Copied by `cp`, not by this process: see support::install_executable (ETXTBSY).
    support::copy_executable(env!("CARGO_BIN_EXE_entra-token"), &copy);
    let mut c = support::bin_at(&copy);
    c.env("HOME", public.path())
        .env("ENTRA_TOKEN_CACHE_DIR", public.path().join("cache"))
        .env("ENTRA_TOKEN_AGENT", &lap.socket)
        .current_dir(public.path())
        .args(["get-token", "-p", "ado", "-r", AZURE_DEVOPS]);
    std::os::unix::process::CommandExt::uid(&mut c, STRANGER);
    std::os::unix::process::CommandExt::gid(&mut c, STRANGER);
    let out = run(c);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("uid {STRANGER} may not use the agent of uid 0")), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    assert_eq!(lap.mock.token_requests(), 0);
}

/// The binary as git's helper on the client, driven by the real `git credential OP`.
fn client_git(client_sb: &Sandbox, socket: &Path, op: &str, input: &str) -> std::process::Output {
    let helper = client_sb.link("git-credential-entra-token");
    let mut c = client_sb.tool("git");
    c.env("ENTRA_TOKEN_AGENT", socket).env("GIT_CONFIG_NOSYSTEM", "1").env("GIT_TERMINAL_PROMPT", "0").args([
        "-c",
        "credential.helper=",
        "-c",
        &format!("credential.helper={}", helper.display()),
        "-c",
        "credential.useHttpPath=true",
        "credential",
        op,
    ]);
    run_with_stdin(c, input)
}

fn field<'a>(answer: &'a str, key: &str) -> &'a str {
    answer.lines().find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('='))).unwrap_or_else(|| panic!("no {key} in {answer}"))
}

#[test]
fn git_credential_reject_drops_the_agents_cached_token_and_only_that_one() {
    let lap = laptop(&["--allow-profile", "ado"]);
    let (client_sb, _) = client(&lap.socket);
    let ask = "protocol=https\nhost=dev.azure.com\npath=org/_git/repo\n\n";
    let fill = || {
        let out = client_git(&client_sb, &lap.socket, "fill", ask);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        stdout(&out)
    };
    let first = fill();
    let (user, t1) = (field(&first, "username").to_string(), field(&first, "password").to_string());
    assert_eq!(field(&fill(), "password"), t1, "the agent's cache answers the second fill");
    assert_eq!(lap.mock.token_requests(), 1);

    // git rejects a credential that is not the agent's token: the agent keeps its own.
    let out = client_git(&client_sb, &lap.socket, "reject", "protocol=https\nhost=dev.azure.com\npath=org/_git/repo\nusername=u\npassword=someone-elses\n\n");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(field(&fill(), "password"), t1);
    assert_eq!(lap.mock.token_requests(), 1);

    // git rejects the agent's token (the server refused it): the agent drops it, the next fill gets a new one.
    let out = client_git(&client_sb, &lap.socket, "reject", &format!("protocol=https\nhost=dev.azure.com\npath=org/_git/repo\nusername={user}\npassword={t1}\n\n"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let t2 = field(&fill(), "password").to_string();
    assert_ne!(t2, t1);
    assert_eq!(lap.mock.token_requests(), 2);
    assert!(!client_sb.path("cache").exists(), "the client cached something");
    // A URL no agent profile claims: git's reject is answered with nothing dropped and no error.
    let out = client_git(&client_sb, &lap.socket, "reject", "protocol=https\nhost=evil.test\npath=x\nusername=u\npassword=p\n\n");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(field(&fill(), "password"), t2);
}

#[test]
fn login_under_the_agent_is_refused_in_one_line_naming_entra_token_agent() {
    let lap = laptop(&[]);
    let (client_sb, cmd) = client(&lap.socket);
    for args in [&["login", "-p", "ado"][..], &["login"], &["login", "--flow", "device-code", "-r", "graph"]] {
        let out = run(cmd(args));
        assert_eq!(code(&out), 1, "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("ENTRA_TOKEN_AGENT is set") && err.contains("unset ENTRA_TOKEN_AGENT"), "{err}");
        assert!(stdout(&out).is_empty());
    }
    assert!(!client_sb.path("cache").exists() && !client_sb.path("config.toml").exists());
    assert_eq!(lap.mock.token_requests(), 0);
}

#[test]
fn doctor_reports_the_agent_what_it_serves_or_that_it_is_dead() {
    let lap = laptop(&["--allow-profile", "ado", "--allow-resource", "devops"]);
    let (_c, cmd) = client(&lap.socket);
    let out = run(cmd(&["doctor", "--offline"]));
    let report = stdout(&out);
    let line = report.lines().find(|l| l.contains(" agent ")).unwrap_or_else(|| panic!("{report}"));
    assert!(line.starts_with('✓'), "{report}");
    assert!(line.contains(&format!("answers: profiles ado; resources {AZURE_DEVOPS}; confirmation off")), "{report}");
    assert!(report.contains("git") && report.contains("`login` here is refused"), "{report}");
    // This machine's (absent) profile is not what decides: no ✗ for it.
    assert!(!report.lines().any(|l| l.starts_with('✗')), "{report}");
    let out = run(cmd(&["doctor", "--offline", "-o", "json"]));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let agent = v["checks"].as_array().unwrap().iter().find(|c| c["name"] == "agent").unwrap().clone();
    assert_eq!(agent["status"], "ok", "{v}");

    let sb = Sandbox::new();
    let (_c, cmd) = client(&sb.path("gone.sock"));
    let out = run(cmd(&["doctor", "--offline"]));
    assert_eq!(code(&out), 1);
    let report = stdout(&out);
    assert!(report.lines().any(|l| l.starts_with('✗') && l.contains("agent") && l.contains("does not answer")), "{report}");
    assert!(report.contains("unset ENTRA_TOKEN_AGENT"), "{report}");
}

#[test]
fn the_client_waits_for_a_silent_agent_no_longer_than_its_timeout() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("stub")).unwrap();
    let socket = sb.path("stub/agent.sock");
    // An "agent" that accepts every connection and never answers.
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming() {
            held.push(c);
        }
    });
    let (_c, cmd) = client(&socket);
    let start = Instant::now();
    let out = run(cmd(&["get-token", "-r", "graph", "--timeout", "2s"]));
    let took = start.elapsed();
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert!(stderr(&out).contains("ENTRA_TOKEN_AGENT") && stderr(&out).contains("2s"), "{}", stderr(&out));
    // The client gave up at its own --timeout, not the ten minutes it used to wait.
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(120), "{took:?}");
}

#[test]
fn a_claims_challenge_reaches_the_agents_acquisition() {
    let lap = laptop(&[]);
    let (_c, cmd) = client(&lap.socket);
    let out = run(cmd(&["get-token", "-p", "arm", "-r", "arm"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let claims = r#"{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}"#;
    let last_claims = || lap.mock.requests().into_iter().rfind(|r| r.is_token_request()).and_then(|r| r.form_get("claims").map(str::to_string));
    // get-token --claims: the cached token is not the answer; the agent asks Entra with the challenge.
    let out = run(cmd(&["get-token", "-p", "arm", "-r", "arm", "--claims", claims]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(lap.mock.token_requests(), 2);
    assert!(last_claims().is_some_and(|c| c.contains("\"nbf\"")), "{:?}", last_claims());
    // The native protocol's `claims` too.
    let out = run_with_stdin(cmd(&[]), &serde_json::json!({"profile": "arm", "resource": "arm", "claims": claims}).to_string());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(lap.mock.token_requests(), 3);
    assert!(last_claims().is_some_and(|c| c.contains("\"nbf\"")));
}

#[test]
fn a_clients_wait_for_login_is_the_agents_to_do_and_ends_with_the_laptops_sign_in() {
    let mut lap = laptop(&[]);
    // A person's profile on the laptop that nobody signed in to yet.
    let config = std::fs::read_to_string(lap.sb.path("config.toml")).unwrap();
    lap.sb.write_config(&format!("{config}[profiles.dev]\nauthority = \"{}\"\nflow = \"device-code\"\ntenant = \"organizations\"\n", lap.mock.url()));
    let (_c, cmd) = client(&lap.socket);
    let request = cmd(&["get-token", "-p", "dev", "-r", "graph", "--wait-for-login", "2m", "--timeout", "20s"]);
    let waiter = std::thread::spawn(move || run(request));
    // The agent, on the laptop, says what to run there (and would notify its desktop).
    let mut agent_err = BufReader::new(lap.agent.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("waiting up to") {
        let mut line = String::new();
        assert!(agent_err.read_line(&mut line).unwrap() > 0, "the agent stopped: {seen}");
        seen.push_str(&line);
    }
    assert!(seen.contains("run `entra-token login -p dev`"), "{seen}");
    std::thread::spawn(move || std::io::copy(&mut agent_err, &mut std::io::sink()));
    lap.mock.approve_device_codes(0);
    let mut login = lap.sb.cmd();
    login.args(["login", "-p", "dev"]);
    assert_eq!(code(&run(login)), 0);
    let out = waiter.join().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(lap.mock.issued_access_tokens().contains(&stdout(&out).trim().to_string()));
}

#[test]
fn a_url_no_agent_profile_claims_is_not_mine_for_git_and_bazel_as_it_is_locally() {
    let lap = laptop(&[]);
    let (client_sb, _) = client(&lap.socket);
    let helper = |name: &str, arg: &str, stdin: &str| {
        let mut c = client_sb.tool(client_sb.link(name));
        c.env("ENTRA_TOKEN_AGENT", &lap.socket).arg(arg);
        run_with_stdin(c, stdin)
    };
    for op in ["get", "erase"] {
        let out = helper("git-credential-entra-token", op, "protocol=https\nhost=github.com\npath=o/r\nusername=u\npassword=p\n\n");
        assert_eq!(code(&out), 0, "{op}: {}", stderr(&out));
        assert!(stdout(&out).is_empty() && stderr(&out).is_empty(), "{op}: {}{}", stdout(&out), stderr(&out));
    }
    let out = helper("entra-token-bazel", "get", r#"{"uri":"https://github.com/o/r/archive/x.tar.gz"}"#);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(v.get("headers").is_none_or(|h| h.as_object().is_some_and(|o| o.is_empty())), "{v}");
    // A claimed URL still gets its token through the same helpers.
    let out = helper("entra-token-bazel", "get", r#"{"uri":"https://dev.azure.com/org/_apis/x"}"#);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("Bearer "), "{}", stdout(&out));
    assert_eq!(lap.mock.token_requests(), 1);
}

#[test]
fn cargo_asks_the_agent_whose_profiles_claim_the_registry_and_logout_drops_its_token() {
    let lap = laptop(&[]);
    let (_c, cmd) = client(&lap.socket);
    let talk = |lines: &str| {
        let out = run_with_stdin(cmd(&["--cargo-plugin"]), lines);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert!(stderr(&out).is_empty(), "{}", stderr(&out));
        stdout(&out).lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).collect::<Vec<_>>()
    };
    let request = |kind: &str, index: &str, args: &str| {
        format!(r#"{{"v":1,"registry":{{"index-url":"{index}","name":"feed"}},"kind":"{kind}","operation":"read","args":{args}}}"#)
    };
    let feed = "sparse+https://dev.azure.com/org/_packaging/feed/Cargo/index/";
    let answers = talk(&format!("{}\n{}\n", request("get", feed, "[]"), request("get", feed, r#"["--profile","ado"]"#)));
    let token = |a: &serde_json::Value| a["Ok"]["token"].as_str().unwrap_or_else(|| panic!("{a}")).strip_prefix("Bearer ").unwrap().to_string();
    let t1 = token(&answers[1]);
    assert_eq!(token(&answers[2]), t1);
    assert_eq!(support::jwt_claims(&t1).unwrap()["aud"], AZURE_DEVOPS);
    assert_eq!(lap.mock.token_requests(), 1);
    // Not the agent's to answer: crates.io, and a named profile that does not claim the feed there.
    let answers = talk(&format!("{}\n{}\n", request("get", "sparse+https://index.crates.io/", "[]"), request("get", feed, r#"["--profile","arm"]"#)));
    assert_eq!(answers[1], serde_json::json!({"Err":{"kind":"url-not-supported"}}));
    assert_eq!(answers[2], serde_json::json!({"Err":{"kind":"url-not-supported"}}));
    // logout drops the agent's cached token (then nothing is left to drop); the next get is a new token.
    let answers = talk(&format!("{}\n{}\n{}\n", request("logout", feed, "[]"), request("logout", feed, "[]"), request("get", feed, "[]")));
    assert_eq!(answers[1], serde_json::json!({"Ok":{"kind":"logout"}}));
    assert_eq!(answers[2], serde_json::json!({"Err":{"kind":"not-found"}}));
    assert_ne!(token(&answers[3]), t1);
    assert_eq!(lap.mock.token_requests(), 2);
}

#[test]
fn kubectls_exec_plugin_asks_the_agent() {
    let lap = laptop(&["--allow-profile", "arm"]);
    let (_c, cmd) = client(&lap.socket);
    let mut c = cmd(&["kubectl", "-p", "arm"]);
    c.env("KUBERNETES_EXEC_INFO", r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}"#);
    let out = run(c);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["status"]["token"], lap.mock.issued_access_tokens()[0].as_str());
    // The AKS server id, as locally; the agent's allow-list holds for kubectl too.
    assert_eq!(support::jwt_claims(v["status"]["token"].as_str().unwrap()).unwrap()["aud"], "6dae42f8-4368-4678-94ff-3960e28e3630");
    let out = run(cmd(&["kubectl", "-p", "ado"]));
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("does not serve profile 'ado'"), "{}", stderr(&out));
}

/// Through the agent as locally: a cluster entry's exec config picks the token only for a
/// server the agent's profile claims (kubectl sends the token there).
#[test]
fn a_clusters_exec_config_through_the_agent_picks_only_for_a_claimed_server() {
    let lap = laptop(&[]);
    let (_c, cmd) = client(&lap.socket);
    let kubectl = |server: &str, config: &str| {
        let mut c = cmd(&["kubectl"]);
        c.env("KUBERNETES_EXEC_INFO", format!(r#"{{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{{"interactive":false,"cluster":{{"server":"{server}","config":{config}}}}}}}"#));
        run(c)
    };
    let out = kubectl("https://cluster.example.test:6443", r#"{"profile":"arm","resource":"https://management.azure.com"}"#);
    assert_ne!(code(&out), 0, "the cluster got the token its entry asked for");
    assert!(out.stdout.is_empty() && lap.mock.issued_access_tokens().is_empty(), "{}", stderr(&out));
    // `ado` claims https://dev.azure.com/org/: a cluster served there may pick.
    let out = kubectl("https://dev.azure.com/org/", r#"{"resource":"api://per-cluster"}"#);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(support::jwt_claims(v["status"]["token"].as_str().unwrap()).unwrap()["aud"], "api://per-cluster");
}

/// A tenant a cluster entry picks cannot cross to the agent (its `urls` pick the profile,
/// which answers in its own tenant): refused in one line, not dropped, so the cluster never
/// gets a token of a tenant it did not ask for.
#[test]
fn a_clusters_tenant_through_the_agent_is_refused_not_dropped() {
    let lap = laptop(&[]);
    let (_c, cmd) = client(&lap.socket);
    let mut c = cmd(&["kubectl"]);
    c.env("KUBERNETES_EXEC_INFO", r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false,"cluster":{"server":"https://dev.azure.com/org/","config":{"tenant":"fabrikam.test"}}}}"#);
    let out = run(c);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(out.stdout.is_empty() && lap.mock.issued_access_tokens().is_empty(), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("tenant fabrikam.test") && err.contains("token agent"), "{err}");
}

/// `serve` on a host that has only ENTRA_TOKEN_AGENT (a devcontainer, an SSH host): the
/// SDKs' managed-identity endpoint answers with the agent's tokens, within its allow-lists;
/// no local config is needed (it was refused: profile not found).
#[test]
fn serve_on_a_client_answers_with_the_agents_tokens() {
    let lap = laptop(&["--allow-profile", "ado", "--allow-resource", "devops"]);
    let (client_sb, cmd) = client(&lap.socket);
    let mut c = cmd(&["serve", "-p", "ado"]);
    let mut served = c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut lines = BufReader::new(served.stdout.take().unwrap()).lines();
    let endpoint = lines.next().unwrap().unwrap().strip_prefix("IDENTITY_ENDPOINT=").unwrap().to_string();
    let header = lines.next().unwrap().unwrap().strip_prefix("IDENTITY_HEADER=").unwrap().to_string();
    let agent: ureq::Agent = ureq::Agent::config_builder().proxy(None).http_status_as_error(false).build().into();
    let ask = |resource: &str| {
        let mut r = agent.get(&format!("{endpoint}?api-version=2019-08-01&resource={resource}")).header("X-IDENTITY-HEADER", &header).call().unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    };
    let (status, body) = ask(AZURE_DEVOPS);
    let (status_arm, body_arm) = ask("https://management.azure.com/");
    let _ = served.kill();
    let _ = served.wait();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["access_token"].as_str(), lap.mock.issued_access_tokens().last().map(String::as_str));
    // Outside the agent's allow-list: refused there, never fetched.
    assert_ne!(status_arm, 200, "{body_arm}");
    assert!(body_arm.contains("this agent does not serve"), "{body_arm}");
    assert_eq!(lap.mock.token_requests(), 1);
    assert!(!client_sb.path("cache").exists(), "the client cached an agent answer");
}
