//! `entra-token exec`: the token reaches the command in its environment and in a file kept
//! fresh across token rotations, signals sent to us reach the command, its exit code is
//! ours, the file is gone after, and nothing secret is ever printed, even with -v.
//! On Unix the commands are sh scripts and the signals POSIX ones; on Windows (Wine) they are
//! `cmd /c` and this test binary as a stand-in program (`stand_in`), and exit codes are the
//! whole 32 bits Windows has.

use crate::support::{MockAuthority, Sandbox, client_credentials_setup, code, run, stderr};
use std::path::Path;
use std::process::Command;
use std::process::Stdio;
use std::time::{Duration, Instant};

const TENANT: &str = "contoso";
const APP: &str = "ci-app";

fn setup() -> (MockAuthority, Sandbox) {
    client_credentials_setup(TENANT, APP, "s3cret")
}

/// `entra-token exec -p ci -r api://feed ARGS…` in the sandbox.
fn exec<S: AsRef<std::ffi::OsStr>>(sb: &Sandbox, args: &[S]) -> Command {
    let mut cmd = sb.cmd();
    cmd.env("CI_SECRET", "s3cret").args(["exec", "-p", "ci", "-r", "api://feed"]).args(args);
    cmd
}

fn no_token_in(mock: &MockAuthority, text: &str) {
    let issued = mock.issued_access_tokens();
    assert!(!issued.is_empty());
    for t in issued {
        assert!(!text.contains(&t), "a token was printed: {text}");
    }
    assert!(!text.contains("s3cret"), "the secret was printed: {text}");
}

fn wait_for(path: &Path, limit: Duration) {
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < limit, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(unix)]
#[test]
fn the_token_goes_in_the_named_variables_and_literals_as_given() {
    let (mock, sb) = setup();
    let show = "printf 'default=%s\\nA=%s\\nB=%s\\nU=%s\\nargs=%s\\n' \"${ENTRA_ACCESS_TOKEN-unset}\" \"${A-unset}\" \"${B-unset}\" \"${U-unset}\" \"$*\"";
    let out = run(exec(&sb, &["-v", "--env", "A", "--env", "U=me", "--env", "B", "--", "sh", "-c", show, "sh", "x", "y"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let token = mock.issued_access_tokens().pop().unwrap();
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(stdout, format!("default=unset\nA={token}\nB={token}\nU=me\nargs=x y\n"));
    no_token_in(&mock, &stderr(&out));

    // No --env: the documented default variable.
    let out = run(exec(&sb, &["--", "sh", "-c", "printf %s \"$ENTRA_ACCESS_TOKEN\""]));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), token, "the cached token, in ENTRA_ACCESS_TOKEN");
    assert_eq!(mock.issued_access_tokens().len(), 1, "the second run was served from the cache");
}

#[cfg(unix)]
#[test]
fn exit_codes_are_the_commands_own() {
    let (_mock, sb) = setup();
    for (script, want) in [("exit 0", 0), ("exit 7", 7), ("exit 255", 255), ("kill -TERM $$", 143), ("kill -KILL $$", 137)] {
        let out = run(exec(&sb, &["--", "sh", "-c", script]));
        assert_eq!(code(&out), want, "{script}: {}", stderr(&out));
    }
    let out = run(exec(&sb, &["--", "no-such-program-here"]));
    assert_eq!(code(&out), 127, "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot run no-such-program-here"), "{}", stderr(&out));
    let not_executable = sb.write_file("plain.txt", "x");
    let out = run(exec(&sb, &["--", &not_executable.display().to_string()]));
    assert_eq!(code(&out), 126, "{}", stderr(&out));
    // Without a command, or a bad variable name: a usage error, nothing run.
    let out = run(exec::<&str>(&sb, &[]));
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("no command to run") && stderr(&out).contains("after `--`"), "{}", stderr(&out));
    let out = run(exec(&sb, &["--env", "NOT-A-NAME", "--", "true"]));
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("is not a variable name"), "{}", stderr(&out));
}

#[test]
fn no_token_means_the_command_never_runs() {
    let (mock, sb) = setup();
    mock.push_fault(crate::support::Fault::Status { status: 401, body: r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#.into(), retry_after: None });
    let marker = sb.path("ran");
    let marker = marker.display().to_string();
    let make: &[&str] = if cfg!(windows) { &["cmd", "/c", "mkdir", &marker] } else { &["touch", &marker] };
    let out = run(exec(&sb, &[&["--"], make].concat()));
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(!std::path::Path::new(&marker).exists(), "the command ran without a token");
}

/// A long-running command re-reads the file while the stand-in issues 4-second tokens:
/// it sees each new token whole (never an empty or partial file), the file is 0600 the
/// whole time, and it is gone when the command ends.
#[cfg(unix)]
#[test]
fn the_file_is_kept_fresh_across_rotations_and_removed_after() {
    let (mock, sb) = setup();
    mock.set_token_lifetime(4);
    let file = sb.path("run/token");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let log = sb.path("seen.log");
    // ~9 s of reads, 0.2 s apart; each line: the file's mode, then its content.
    let script = format!(
        "i=0; while [ $i -lt 45 ]; do printf '%s %s\\n' \"$(stat -c %a '{f}')\" \"$(cat '{f}')\" >> '{l}'; sleep 0.2; i=$((i+1)); done",
        f = file.display(),
        l = log.display()
    );
    let out = run(exec(&sb, &["-v", "--file", &file.display().to_string(), "--", "sh", "-c", &script]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!file.exists(), "the token file outlived the command");
    let issued = mock.issued_access_tokens();
    let lines = std::fs::read_to_string(&log).unwrap();
    let mut seen: Vec<&str> = Vec::new();
    for line in lines.lines() {
        let (mode, token) = line.split_once(' ').unwrap();
        assert_eq!(mode, "600", "{line}");
        assert!(issued.iter().any(|t| t == token), "the file held something that is not a whole issued token: {line:?}");
        if seen.last() != Some(&token) {
            seen.push(token);
        }
    }
    assert!(seen.len() >= 3, "the file was not renewed across rotations: {} tokens seen, {} issued", seen.len(), issued.len());
    // Renewed in time: no token was read after its expiry (each lives 4 s, renewed at 2 s).
    assert!(issued.len() <= 7, "renewed far too often: {} tokens in ~9 s", issued.len());
    no_token_in(&mock, &stderr(&out));
    assert!(stderr(&out).contains("renewed"), "-v says when the file was renewed: {}", stderr(&out));
    // Without --env, the token went into the file only.
    let out = run(exec(&sb, &["--file", &file.display().to_string(), "--", "sh", "-c", "printf %s \"${ENTRA_ACCESS_TOKEN-unset}\""]));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "unset");
}

/// SIGINT, SIGTERM and SIGHUP sent to entra-token reach the command, which decides: one
/// that traps the signal and exits 9 makes us exit 9; one that dies of it, 128 + it. The
/// token file is removed either way.
#[cfg(unix)]
#[test]
fn signals_reach_the_command_and_its_end_is_ours() {
    let (mock, sb) = setup();
    let file = sb.path("token");
    for (sig, name) in [(libc::SIGINT, "INT"), (libc::SIGTERM, "TERM"), (libc::SIGHUP, "HUP")] {
        for traps in [true, false] {
            let ready = sb.path(&format!("ready-{name}-{traps}"));
            let caught = sb.path(&format!("caught-{name}-{traps}"));
            let trap = if traps { format!("trap 'echo {name} > \"{}\"; exit 9' {name}; ", caught.display()) } else { String::new() };
            let script = format!("{trap}touch '{}'; i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; exit 3", ready.display());
            let mut child = exec(&sb, &["-v", "--file", &file.display().to_string(), "--", "sh", "-c", &script]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
            wait_for(&ready, Duration::from_secs(20));
            let pid = i32::try_from(child.id()).unwrap();
            // SAFETY: kill(2) on the process this test spawned.
            assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
            let start = Instant::now();
            let status = loop {
                if let Some(s) = child.try_wait().unwrap() {
                    break s;
                }
                assert!(start.elapsed() < Duration::from_secs(10), "SIG{name} never ended the command");
                std::thread::sleep(Duration::from_millis(20));
            };
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            let want = if traps { 9 } else { 128 + sig };
            assert_eq!(status.code(), Some(want), "SIG{name}, trapped {traps}: {err}");
            if traps {
                assert_eq!(std::fs::read_to_string(&caught).unwrap().trim(), name);
            }
            assert!(!file.exists(), "the file outlived the command (SIG{name})");
            no_token_in(&mock, &err);
        }
    }
}

/// `--url`: the profile whose `urls` claim it, with its resource, as the credential helpers
/// choose; a URL no profile claims is refused and the command never runs.
#[cfg(unix)]
#[test]
fn url_picks_the_claiming_profile_or_refuses() {
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some("s3cret"));
    let sb = Sandbox::new();
    sb.write_config(&crate::support::CcProfile::new("feed", &mock.url(), TENANT, APP).with("resource = \"api://feed\"\nurls = [\"https://feed.test/org/\"]\n").toml());
    let mut cmd = sb.cmd();
    cmd.env("CI_SECRET", "s3cret").args(["exec", "--url", "https://feed.test/org/pkgs/", "--", "sh", "-c", "printf %s \"$ENTRA_ACCESS_TOKEN\""]);
    let out = run(cmd);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let token = mock.issued_access_tokens().pop().unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), token);
    assert_eq!(crate::support::jwt_claims(&token).unwrap()["aud"], "api://feed");
    let marker = sb.path("ran");
    for url in ["https://feed.test/other/", "https://evil.test/org/", "http://feed.test/org/"] {
        let mut cmd = sb.cmd();
        cmd.env("CI_SECRET", "s3cret").args(["exec", "--url", url, "--", "touch", &marker.display().to_string()]);
        let out = run(cmd);
        assert_eq!(code(&out), 1, "{url}: {}", stderr(&out));
        assert!(!marker.exists(), "{url}: the command ran without a token");
    }
    assert_eq!(mock.issued_access_tokens().len(), 1, "no token was fetched for an unclaimed URL");
    // --url names the token itself: -p/-r/--scope beside it are a usage error.
    let mut cmd = sb.cmd();
    cmd.args(["exec", "--url", "https://feed.test/org/", "-r", "graph", "--", "true"]);
    assert_eq!(code(&run(cmd)), 1);
}

/// A renewal stuck on a slow token endpoint does not hold up the command's end: exec exits
/// with its code at once, and the file is gone (a renewal finishing later never rewrites it).
#[test]
fn a_slow_renewal_never_holds_up_the_end() {
    let (mock, sb) = setup();
    mock.set_token_lifetime(4);
    let file = sb.path("token");
    let ready = sb.path("ready");
    let file_arg = file.display().to_string();
    // A command that says it started, then exits 5 after 3 s (Wine has no sh: there this
    // test binary stands in).
    #[cfg(unix)]
    let mut cmd = exec(&sb, &["--timeout", "50s", "--file", &file_arg, "--", "sh", "-c", &format!("touch '{}'; sleep 3; exit 5", ready.display())]);
    #[cfg(windows)]
    let mut cmd = exec_stand_in(&sb, &["--timeout", "50s", "--file", &file_arg], &[("STAND_IN_READY", &ready)]);
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_for(&ready, Duration::from_secs(20));
    // The renewal (due 2 s after the first token) now waits 30 s for its answer.
    mock.set_delay(Duration::from_secs(30));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "exec waited for the renewal instead of the command");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(5));
    assert!(!file.exists(), "the token file outlived the command");
    std::thread::sleep(Duration::from_millis(200));
    assert!(!file.exists());
}

/// `cmd /c set`'s lines as NAME → value (Windows folds the names' case: upper-cased here).
#[cfg(windows)]
fn variables_seen(stdout: &[u8]) -> std::collections::HashMap<String, String> {
    String::from_utf8_lossy(stdout).lines().filter_map(|l| l.trim_end_matches('\r').split_once('=')).map(|(k, v)| (k.to_ascii_uppercase(), v.to_string())).collect()
}

/// This test binary as the program exec runs ([`stand_in`]), doing what `vars` say.
#[cfg(windows)]
fn exec_stand_in(sb: &Sandbox, args: &[&str], vars: &[(&str, &Path)]) -> Command {
    let me = std::env::current_exe().expect("the test binary's path");
    let mut c = exec(sb, args);
    c.arg("--").arg(me).args(["--exact", "exec::stand_in", "--ignored", "--nocapture", "--test-threads=1"]);
    for (k, v) in vars {
        c.env(k, v);
    }
    c
}

/// Not a test: the program `entra-token exec` runs in the Windows tests (Wine has no sh).
/// STAND_IN_READY: a file it makes when it starts, then it exits 5 after 3 s (or after
/// STAND_IN_SECONDS); STAND_IN_READ + STAND_IN_LOG: reads the token file 45 times, 0.2 s
/// apart, appending each content as a line to the log. With none set: nothing.
#[cfg(windows)]
#[test]
#[ignore = "the program `entra-token exec` runs in the Windows tests"]
fn stand_in() {
    use std::io::Write;
    let var = |k: &str| std::env::var_os(k).map(std::path::PathBuf::from);
    if let Some(ready) = var("STAND_IN_READY") {
        std::fs::write(ready, "").unwrap();
        let seconds = std::env::var("STAND_IN_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
        std::thread::sleep(Duration::from_secs(seconds));
        std::process::exit(5);
    }
    let (Some(file), Some(log)) = (var("STAND_IN_READ"), var("STAND_IN_LOG")) else { return };
    let mut out = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    for _ in 0..45 {
        let seen = std::fs::read_to_string(&file).unwrap_or_else(|e| format!("<{e}>"));
        writeln!(out, "{seen}").unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(windows)]
#[test]
fn windows_the_token_goes_in_the_named_variables_and_literals_as_given() {
    let (mock, sb) = setup();
    let out = run(exec(&sb, &["-v", "--env", "A", "--env", "U=me", "--env", "B", "--", "cmd", "/c", "set"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let token = mock.issued_access_tokens().pop().unwrap();
    let seen = variables_seen(&out.stdout);
    assert_eq!((seen.get("A"), seen.get("B"), seen.get("U")), (Some(&token), Some(&token), Some(&"me".to_string())));
    assert!(!seen.contains_key("ENTRA_ACCESS_TOKEN"), "--env named the variables: no default one");
    no_token_in(&mock, &stderr(&out));
    let out = run(exec(&sb, &["--", "cmd", "/c", "set"]));
    assert_eq!(variables_seen(&out.stdout).get("ENTRA_ACCESS_TOKEN"), Some(&token), "the cached token, in ENTRA_ACCESS_TOKEN");
    assert_eq!(mock.issued_access_tokens().len(), 1, "the second run was served from the cache");
}

/// Windows exit codes are 32 bits: exec ends with the command's whole code, as cmd.exe does
/// (0xC000013A is what a program ended by Ctrl+C returns), not 255 for all above 255.
#[cfg(windows)]
#[test]
fn windows_exit_codes_are_the_commands_whole_code() {
    let (_mock, sb) = setup();
    for want in [0, 7, 255, 256, 300, 0xC000013A_u32 as i32, -1] {
        let out = run(exec(&sb, &["--", "cmd", "/c", "exit", &want.to_string()]));
        assert_eq!(out.status.code(), Some(want), "cmd /c exit {want}: {}", stderr(&out));
    }
    let out = run(exec(&sb, &["--", "no-such-program-here"]));
    assert_eq!(code(&out), 127, "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot run no-such-program-here"), "{}", stderr(&out));
    let not_a_program = sb.write_file("plain.txt", "x");
    let out = run(exec(&sb, &["--", &not_a_program.display().to_string()]));
    assert_eq!(code(&out), 126, "{}", stderr(&out));
    let out = run(exec::<&str>(&sb, &[]));
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("no command to run"), "{}", stderr(&out));
}

/// The file is rewritten across 4-second tokens while the command reads it (each read a
/// whole issued token) and removed when it ends. (Its ACL is not checked here: Wine reports
/// every file readable by everyone; `fs`' own tests cover the ACL on Windows.)
#[cfg(windows)]
#[test]
fn windows_the_file_is_kept_fresh_across_rotations_and_removed_after() {
    let (mock, sb) = setup();
    mock.set_token_lifetime(4);
    let file = sb.path("token");
    let log = sb.path("seen.log");
    let out = run(exec_stand_in(&sb, &["-v", "--file", &file.display().to_string()], &[("STAND_IN_READ", &file), ("STAND_IN_LOG", &log)]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!file.exists(), "the token file outlived the command");
    let issued = mock.issued_access_tokens();
    let lines = std::fs::read_to_string(&log).unwrap();
    let mut seen: Vec<&str> = Vec::new();
    for token in lines.lines() {
        assert!(issued.iter().any(|t| t == token), "the file held something that is not a whole issued token: {token:?}");
        if seen.last() != Some(&token) {
            seen.push(token);
        }
    }
    assert!(seen.len() >= 3, "the file was not renewed across rotations: {} tokens seen, {} issued", seen.len(), issued.len());
    assert!(issued.len() <= 7, "renewed far too often: {} tokens in ~9 s", issued.len());
    no_token_in(&mock, &stderr(&out));
}

