//! The token agent as a boundary, both ways. The client trusts an answer only after the
//! gate every token source passes, and only from a socket of its own user (or root's,
//! as sshd forwards it), checked before a byte is sent. The agent gets everything that
//! changes whose token or how it is obtained (az's `--subscription`, never-prompt
//! callers), names no profile outside `--allow-profile`, lets no one client take every
//! connection slot, and without XDG_RUNTIME_DIR makes its socket directory unpredictable.

use crate::agent::{APP, AZURE_DEVOPS, SECRET, TENANT, client, laptop, laptop_as};
use crate::agent_confirm::pty;
use crate::support::{self, CcProfile, Sandbox, code, run, stderr, stdout};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const STRANGER: u32 = 65534;
const APP2: &str = "77777777-7777-4777-8777-777777777777";

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A stand-in "agent" on `socket` that answers every connection with `answer` and keeps
/// what each client sent.
pub(crate) fn stub_agent(socket: &Path, answer: impl Fn() -> String + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let listener = UnixListener::bind(socket).unwrap();
    let got: Arc<Mutex<Vec<u8>>> = Arc::default();
    let seen = Arc::clone(&got);
    std::thread::spawn(move || {
        for mut c in listener.incoming().flatten() {
            c.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
            let mut buf = [0u8; 4096];
            if let Ok(n) = c.read(&mut buf) {
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
            let _ = c.write_all(format!("{}\n", answer()).as_bytes());
        }
    });
    got
}

pub(crate) fn token_answer(token: &str, token_type: &str, expires_on: i64) -> String {
    serde_json::json!({"v": 1, "access_token": token, "token_type": token_type, "expires_on": expires_on, "profile": "p", "client_id": "c"}).to_string()
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn the_agents_answer_passes_the_gate_every_token_source_passes() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("stub")).unwrap();
    let socket = sb.path("stub/agent.sock");
    let next: Arc<Mutex<String>> = Arc::default();
    let n = Arc::clone(&next);
    stub_agent(&socket, move || n.lock().unwrap().clone());
    let (_c, cmd) = client(&socket);
    // Characters no token has (they would end up in a header or a config file), and types
    // no caller may use as a bearer token: one error naming the agent, exit 4, nothing out.
    for (token, ty) in [("eyJ.a.b\"x", "Bearer"), ("eyJ.a.b<script>", "Bearer"), ("eyJ.a;b", "Bearer"), ("eyJ.a.b", "Basic"), ("eyJ.a.b", "acr_refresh_token"), ("eyJ.a.b", "ssh-cert")] {
        *next.lock().unwrap() = token_answer(token, ty, now() + 3600);
        let out = run(cmd(&["get-token", "-r", "graph"]));
        assert_eq!(code(&out), 4, "{token} {ty}: {}", stderr(&out));
        assert!(stdout(&out).is_empty() && stderr(&out).contains("ENTRA_TOKEN_AGENT"), "{token} {ty}: {}", stderr(&out));
        assert!(!stderr(&out).contains(token), "the refusal shows the token: {}", stderr(&out));
    }
    // A certificate request says so on the socket with the public key only (never the
    // private key); an answer that is no certificate for that key is refused, nothing written.
    let got = stub_agent(&sb.path("stub/recording.sock"), || token_answer("eyJ.a.b", "ssh-cert", now() + 3600));
    let key = sb.path("id_rsa");
    let made = Command::new("ssh-keygen").args(["-q", "-t", "rsa", "-b", "2048", "-m", "PKCS8", "-N", "", "-f"]).arg(&key).status();
    if made.is_ok_and(|s| s.success()) {
        let (_c, rec) = client(&sb.path("stub/recording.sock"));
        let out = run(rec(&["ssh", "cert", "--key", key.to_str().unwrap()]));
        assert_eq!(code(&out), 3, "{}", stderr(&out));
        assert!(stderr(&out).contains("Entra's SSH certificate cannot be used"), "{}", stderr(&out));
        assert!(!sb.path("id_rsa-cert.pub").exists(), "nothing is written for an answer that is no certificate");
        let sent: serde_json::Value = serde_json::from_slice(got.lock().unwrap().split(|b| *b == b'\n').next().unwrap()).unwrap();
        assert_eq!(sent["ssh_public_key"]["kty"], "RSA", "{sent}");
        let private = std::fs::read_to_string(&key).unwrap();
        let body: String = private.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(!sent.to_string().contains(&body[..40]), "the private key went to the agent");
    } else {
        support::skip::missing_tool("ssh-keygen", "an SSH certificate request under the agent");
    }
    // A lifetime of years is held to a week, as from any other source; the type is canonical.
    *next.lock().unwrap() = token_answer("eyJ.a.b", "bearer", now() + 10 * 365 * 86_400);
    let out = run(cmd(&["get-token", "-r", "graph", "-o", "json"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(v["expires_on"].as_i64().unwrap() <= now() + 7 * 86_400 + 60, "{v}");
    assert_eq!(v["token_type"], "Bearer", "{v}");
}

#[test]
fn a_socket_of_another_user_is_sent_nothing() {
    if !is_root() {
        support::skip::not_here("a socket of another uid needs root to make");
        return;
    }
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("shared")).unwrap();
    std::fs::set_permissions(sb.path(""), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(sb.path("shared"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    // Another user's socket, as one planted in a shared directory would be.
    let socket = sb.path("shared/planted.sock");
    let got = stub_agent(&socket, || token_answer("eyJ.planted.token", "Bearer", now() + 3600));
    std::os::unix::fs::chown(&socket, Some(STRANGER), Some(STRANGER)).unwrap();
    let (_c, cmd) = client(&socket);
    let out = run(cmd(&["get-token", "-p", "ado", "-r", "graph", "--claims", r#"{"access_token":{}}"#]));
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("owned by uid {STRANGER}")) && stdout(&out).is_empty(), "{}", stderr(&out));
    assert!(got.lock().unwrap().is_empty(), "the request went to another user's socket");

    // A socket file of root's, but the process listening on it is another user's: the
    // kernel's word (SO_PEERCRED) decides.
    let Some(python) = ["/usr/bin/python3", "/usr/local/bin/python3"].into_iter().find(|p| Path::new(p).exists()) else {
        support::skip::not_here("no system python3 to listen as another uid");
        return;
    };
    let dir = sb.path("stranger");
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(STRANGER), Some(STRANGER)).unwrap();
    let socket = dir.join("agent.sock");
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(4); print("ready", flush=True)
c, _ = s.accept(); c.settimeout(2)
try: got = c.recv(65536)
except Exception: got = b""
open(sys.argv[2], "w").write(str(len(got)))
try: c.sendall(b'{"v":1,"access_token":"eyJ.planted.token","token_type":"Bearer","expires_on":9999999999,"profile":"p","client_id":"c"}\n')
except Exception: pass
"#;
    let mut c = Command::new(python);
    c.args(["-c", script]).arg(&socket).arg(dir.join("received")).current_dir(&dir).stdout(Stdio::piped());
    std::os::unix::process::CommandExt::uid(&mut c, STRANGER);
    std::os::unix::process::CommandExt::gid(&mut c, STRANGER);
    let mut py = c.spawn().unwrap();
    let mut ready = String::new();
    BufReader::new(py.stdout.take().unwrap()).read_line(&mut ready).unwrap();
    assert_eq!(ready.trim(), "ready");
    std::os::unix::fs::chown(&socket, Some(0), Some(0)).unwrap();
    let (_c, cmd) = client(&socket);
    let out = run(cmd(&["get-token", "-r", "graph"]));
    let _ = py.wait();
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("runs as uid {STRANGER}")) && stdout(&out).is_empty(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(dir.join("received")).unwrap(), "0", "bytes went to another user's listener");
}

#[test]
fn callers_that_never_prompt_never_start_a_sign_in_on_the_agents_terminal() {
    // The agent's stderr is a terminal: a sign-in there would be shown (and approved by
    // the stand-in's device code page) for a caller that asked for none.
    let (controller, terminal) = pty();
    let lap = laptop_as(&[], move |_, c| {
        c.stderr(Stdio::from(terminal));
    });
    let config = std::fs::read_to_string(lap.sb.path("config.toml")).unwrap();
    lap.sb.write_config(&format!("{config}[profiles.dev]\nauthority = \"{}\"\nflow = \"device-code\"\ntenant = \"organizations\"\n", lap.mock.url()));
    let shown = Arc::new(Mutex::new(String::new()));
    let s = Arc::clone(&shown);
    let mut reader = controller.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            s.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let (_c, cmd) = client(&lap.socket);
    for args in [&["status", "--check", "-p", "dev"][..], &["refresh", "-p", "dev", "-r", "graph", "--timeout", "15s"]] {
        let out = run(cmd(args));
        assert_eq!(code(&out), 3, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("entra-token login -p dev"), "{args:?}: {}", stderr(&out));
    }
    // `serve` (its profile on this side names only what it serves) asks with no prompt too.
    let (client_sb, _) = client(&lap.socket);
    client_sb.write_config("[profiles.dev]\nflow = \"device-code\"\n");
    let mut serve = client_sb.cmd();
    serve.env("ENTRA_TOKEN_AGENT", &lap.socket).args(["serve", "-p", "dev", "--timeout", "15s"]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut serve = serve.spawn().unwrap();
    let mut vars = BufReader::new(serve.stdout.take().unwrap()).lines().map_while(Result::ok);
    let (endpoint, header) = (vars.next().unwrap(), vars.next().unwrap());
    let port: u16 = endpoint.trim_start_matches("IDENTITY_ENDPOINT=http://127.0.0.1:").trim_end_matches("/msi/token").parse().unwrap();
    let mut http = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    http.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(http, "GET /msi/token?api-version=2019-08-01&resource=https://graph.microsoft.com HTTP/1.1\r\nHost: 127.0.0.1\r\nX-IDENTITY-HEADER: {}\r\nConnection: close\r\n\r\n", header.trim_start_matches("IDENTITY_HEADER=")).unwrap();
    let mut reply = String::new();
    let _ = http.read_to_string(&mut reply);
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(!reply.starts_with("HTTP/1.1 200") && reply.contains("entra-token login -p dev"), "{reply}");
    let device = lap.mock.requests().iter().filter(|r| r.path.contains("devicecode")).count();
    assert_eq!(device, 0, "the agent started a sign-in; its terminal showed: {}", shown.lock().unwrap());
    assert!(!shown.lock().unwrap().contains("code"), "{}", shown.lock().unwrap());
}

/// The client's `az` (the binary under that name), with `cmd`'s environment.
fn client_az(client_sb: &Sandbox, template: Command, args: &[&str]) -> std::process::Output {
    let mut c = Command::new(client_sb.link("az"));
    for (k, v) in template.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c.current_dir(client_sb.path("")).args(args);
    run(c)
}

#[test]
fn az_subscription_is_routed_on_the_agents_side_as_locally() {
    let lap = laptop(&[]);
    lap.mock.add_app(APP2, Some(SECRET));
    let p = |name: &str, app: &str, rest: &str| CcProfile::new(name, &lap.mock.url(), TENANT, app).secret_env("AGENT_SECRET").with(rest).toml();
    lap.sb.write_config(&format!("default_profile = \"main\"\n{}\n{}", p("main", APP, "\n"), p("billing", APP2, "\nsubscription = \"sub-billing\"\n")));
    let (client_sb, cmd) = client(&lap.socket);
    let appid = |out: &std::process::Output| {
        let v: serde_json::Value = serde_json::from_str(&stdout(out)).unwrap_or_else(|_| panic!("{}", stderr(out)));
        support::jwt_claims(v["accessToken"].as_str().unwrap()).unwrap()["appid"].as_str().unwrap().to_string()
    };
    let out = client_az(&client_sb, cmd(&[]), &["account", "get-access-token", "-o", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(appid(&out), APP);
    // The profile that holds the subscription answers, as `az --subscription` picks the account holding it.
    let out = client_az(&client_sb, cmd(&[]), &["account", "get-access-token", "--subscription", "sub-billing", "-o", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(appid(&out), APP2, "the agent answered with the default profile's identity");
    // A subscription no profile holds is refused there as here, never answered by another identity.
    let before = lap.mock.token_requests();
    let out = client_az(&client_sb, cmd(&[]), &["account", "get-access-token", "--subscription", "sub-nobody", "-o", "json"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("sub-nobody is not the subscription of any profile") && stdout(&out).is_empty(), "{}", stderr(&out));
    assert_eq!(lap.mock.token_requests(), before);
}

#[test]
fn errors_and_info_name_no_profile_outside_the_allow_list() {
    let lap = laptop(&["--allow-profile", "ado"]);
    let config = std::fs::read_to_string(lap.sb.path("config.toml")).unwrap();
    let secret = CcProfile::new("secret-prod", &lap.mock.url(), TENANT, APP).secret_env("AGENT_SECRET").with("\nsubscription = \"sub-prod\"\nurls = [\"https://dev.azure.com/prod/\"]\n").toml();
    lap.sb.write_config(&format!("{config}{secret}"));
    let (client_sb, cmd) = client(&lap.socket);
    let mut said = String::new();
    for args in [&["get-token", "-p", "nope", "-r", "graph"][..], &["get-token", "-p", "secret-pro"], &["get-token", "-r", "graph"], &["doctor", "--offline"]] {
        let out = run(cmd(args));
        assert!(args[0] == "doctor" || code(&out) != 0, "{args:?}");
        said.push_str(&stdout(&out));
        said.push_str(&stderr(&out));
    }
    let out = client_az(&client_sb, cmd(&[]), &["account", "get-access-token", "--subscription", "sub-prod"]);
    assert_ne!(code(&out), 0);
    said.push_str(&stderr(&out));
    let out = support::run_with_stdin(cmd(&[]), r#"{"url":"https://dev.azure.com/prod/_git/r"}"#);
    assert_ne!(code(&out), 0);
    said.push_str(&stdout(&out));
    for hidden in ["arm", "secret-prod"] {
        assert!(!said.contains(&format!("'{hidden}'")) && !said.contains(&format!(" {hidden},")) && !said.contains(&format!(", {hidden}")), "{hidden} shown: {said}");
    }
    assert!(said.contains("profiles ado;"), "{said}");
    // The client did name 'secret-prod' itself: it is told that one is not served, as before.
    let out = run(cmd(&["get-token", "-p", "secret-prod"]));
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("does not serve profile 'secret-prod'") && !stderr(&out).contains("'arm'"), "{}", stderr(&out));
    assert_eq!(lap.mock.token_requests(), 0);
}

#[test]
fn one_client_cannot_take_every_slot_and_waits_hold_no_reading_slot() {
    let mut lap = laptop(&[]);
    let config = std::fs::read_to_string(lap.sb.path("config.toml")).unwrap();
    lap.sb.write_config(&format!("{config}[profiles.dev]\nauthority = \"{}\"\nflow = \"device-code\"\ntenant = \"organizations\"\n", lap.mock.url()));
    // One process opens many connections and sends nothing: it gets its share, no more.
    let silent: Vec<UnixStream> = (0..16).map(|_| UnixStream::connect(&lap.socket).unwrap()).collect();
    let (_c, cmd) = client(&lap.socket);
    let out = run(cmd(&["get-token", "-p", "ado", "-r", AZURE_DEVOPS]));
    assert_eq!(code(&out), 0, "a silent client starved the others: {}", stderr(&out));
    let mut answered = 0;
    for mut s in silent {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        answered += usize::from(text.contains("busy"));
    }
    assert!(answered >= 10, "{answered} of 16 silent connections were refused as busy");

    // Sixteen callers waiting for a sign-in on the laptop (each its own process) do not
    // hold the reading slots: a seventeenth is read and answered.
    let mut err = BufReader::new(lap.agent.stderr.take().unwrap());
    let waiting: Vec<_> = (0..16)
        .map(|_| cmd(&["get-token", "-p", "dev", "-r", "graph", "--wait-for-login", "1m", "--timeout", "5s"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap())
        .collect();
    let (mut seen, start) = (0, Instant::now());
    while seen < 16 {
        let mut line = String::new();
        assert!(err.read_line(&mut line).unwrap() > 0 && start.elapsed() < Duration::from_secs(60), "the agent stopped");
        seen += usize::from(line.contains("waiting up to"));
    }
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let out = run(cmd(&["get-token", "-p", "ado", "-r", AZURE_DEVOPS]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    for mut w in waiting {
        let _ = w.kill();
        let _ = w.wait();
    }
}

#[test]
fn without_xdg_runtime_dir_the_socket_directory_is_new_unpredictable_and_printed() {
    let sb = Sandbox::new();
    sb.write_config("");
    std::fs::create_dir_all(sb.path("tmp")).unwrap();
    // What the old fixed name was: another user could make it first.
    // SAFETY: geteuid has no preconditions.
    let planted = sb.path(&format!("tmp/entra-token-agent-{}", unsafe { libc::geteuid() }));
    std::fs::create_dir_all(&planted).unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut sockets = Vec::new();
    for _ in 0..2 {
        let mut c = sb.cmd();
        c.args(["agent", "--timeout", "30s"]).env_remove("XDG_RUNTIME_DIR").env("TMPDIR", sb.path("tmp")).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut agent = c.spawn().unwrap();
        let mut said = String::new();
        BufReader::new(agent.stdout.take().unwrap()).read_line(&mut said).unwrap();
        let mut logged = String::new();
        BufReader::new(agent.stderr.take().unwrap()).read_line(&mut logged).unwrap();
        let socket = Path::new(said.trim().strip_prefix("ENTRA_TOKEN_AGENT='").unwrap_or_else(|| panic!("{said}")).split('\'').next().unwrap()).to_path_buf();
        let dir = socket.parent().unwrap();
        assert_eq!(dir.parent().unwrap(), sb.path("tmp"), "{said}");
        let name = dir.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("entra-token-") && name.len() == "entra-token-".len() + 8 && dir != planted, "{said}");
        let meta = std::fs::metadata(dir).unwrap();
        // SAFETY: geteuid has no preconditions.
        assert_eq!((meta.mode() & 0o777, meta.uid()), (0o700, unsafe { libc::geteuid() }));
        assert!(logged.contains(&socket.display().to_string()), "the agent does not say where it listens: {logged}");
        // It answers there.
        let (_c, cmd) = client(&socket);
        let out = run(cmd(&["get-token", "-p", "nope"]));
        assert_eq!(code(&out), 2, "{}", stderr(&out));
        sockets.push(socket);
        let _ = agent.kill();
        let _ = agent.wait();
    }
    assert_ne!(sockets[0], sockets[1]);
}
