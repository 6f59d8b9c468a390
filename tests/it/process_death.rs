//! Process death: a process killed with SIGKILL while it holds a key's lock, or while it
//! writes the entry, must leave no stuck lock and no torn entry behind; the next call
//! succeeds and every entry anyone observes is a whole one.

use crate::support;

use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use crate::support::{MockAuthority, Sandbox, run_with_stdin};

const TENANT: &str = "contoso.test";
const APP: &str = "44444444-4444-4444-4444-444444444444";
const SECRET: &str = "death~secret~value";

fn setup() -> (MockAuthority, Sandbox) {
    support::client_credentials_setup(TENANT, APP, SECRET)
}

fn spawn(sb: &Sandbox, extra: &[&str]) -> Child {
    let mut cmd = sb.cmd();
    cmd.env("CI_SECRET", SECRET)
        .args(["get-token", "-p", "ci", "-r", "graph", "--timeout", "20s"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.spawn().expect("spawn entra-token")
}

fn entries(sb: &Sandbox) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(sb.path("cache"))
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect())
        .unwrap_or_default()
}

/// A whole entry: JSON with a token the mock issued.
fn assert_whole(bytes: &[u8], issued: &[String], what: &str) {
    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{what}: torn entry ({e}): {:?}", String::from_utf8_lossy(bytes)));
    let tok = v["access_token"].as_str().unwrap_or_else(|| panic!("{what}: entry without access_token: {v}"));
    assert!(issued.iter().any(|t| t == tok), "{what}: entry holds a token the authority never issued");
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
    u64::from_le_bytes(b)
}

#[test]
fn sigkill_while_holding_the_lock_leaves_no_stuck_lock() {
    let (mock, sb) = setup();
    // Widen the window: the first process holds the key's lock while the authority sleeps.
    mock.set_delay(Duration::from_secs(30));
    let mut victim = spawn(&sb, &[]);
    let start = Instant::now();
    while mock.token_requests() == 0 {
        assert!(start.elapsed() < Duration::from_secs(20), "the first process never reached the token endpoint");
        std::thread::sleep(Duration::from_millis(10));
    }
    // It is now inside acquire, holding the lock.
    victim.kill().expect("SIGKILL");
    let _ = victim.wait();
    mock.set_delay(Duration::ZERO);
    assert!(entries(&sb).is_empty(), "a killed acquire must not have written an entry");

    let mut cmd = sb.cmd();
    cmd.env("CI_SECRET", SECRET).args(["get-token", "-p", "ci", "-r", "graph", "--timeout", "5s"]);
    let t = Instant::now();
    let out = run_with_stdin(cmd, "");
    assert_eq!(out.status.code(), Some(0), "next call failed (stuck lock?): {}", String::from_utf8_lossy(&out.stderr));
    assert!(t.elapsed() < Duration::from_secs(5), "waited for a dead process's lock");
    let files = entries(&sb);
    assert_eq!(files.len(), 1);
    assert_whole(&std::fs::read(&files[0]).unwrap(), &mock.issued_access_tokens(), "after the kill");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), mock.issued_access_tokens().last().unwrap());
}

#[test]
fn sigkill_at_random_points_never_leaves_a_torn_entry() {
    let (mock, sb) = setup();
    // A first, whole entry so every later observation has an "old" to compare with.
    let mut first = spawn(&sb, &[]);
    assert!(first.wait().unwrap().success());
    let path = entries(&sb).pop().expect("first entry");
    // How long one forced run takes here, so kills land before, during and after the write.
    let t = Instant::now();
    assert!(spawn(&sb, &["--force"]).wait().unwrap().success());
    let span = (t.elapsed().as_micros() as u64 * 3 / 2).max(1000);

    // A reader that keeps reading the entry while writers are killed around it.
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    let reader = {
        let (stop, seen, path) = (stop.clone(), seen.clone(), path.clone());
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                match std::fs::read(&path) {
                    Ok(b) => {
                        reads += 1;
                        let mut s = seen.lock().unwrap();
                        if s.last() != Some(&b) {
                            s.push(b);
                        }
                    }
                    Err(e) => panic!("the entry vanished during a rewrite: {e}"),
                }
            }
            reads
        })
    };

    let rounds = 40;
    let mut killed = 0;
    for round in 0..rounds {
        let mut child = spawn(&sb, &["--force"]);
        std::thread::sleep(Duration::from_micros(rand_u64() % span));
        // Every fourth writer is left to finish, so rewrites are observed even on a
        // loaded machine where a run takes longer than the span measured above.
        if round % 4 != 3 && child.try_wait().unwrap().is_none() {
            let _ = child.kill();
            killed += 1;
        }
        let _ = child.wait();
        let bytes = std::fs::read(&path).expect("entry after a kill");
        assert_whole(&bytes, &mock.issued_access_tokens(), "after a kill");
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().expect("reader saw a missing entry");
    let issued = mock.issued_access_tokens();
    let seen = seen.lock().unwrap();
    for b in seen.iter() {
        assert_whole(b, &issued, "observed by the reader");
    }
    println!("{rounds} writers, {killed} killed mid-run, {reads} reads, {} distinct entries seen", seen.len());
    assert!(killed > 0, "no writer was killed; the test proved nothing");
    assert!(seen.len() > 1, "no rewrite was observed; the test proved nothing");

    // The lock is free and the cache still works.
    let mut cmd = sb.cmd();
    cmd.env("CI_SECRET", SECRET).args(["get-token", "-p", "ci", "-r", "graph", "--timeout", "5s"]);
    let out = run_with_stdin(cmd, "");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let on_disk: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), on_disk["access_token"].as_str().unwrap(), "not served from the cache");
}
