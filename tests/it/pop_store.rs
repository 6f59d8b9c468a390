//! Where a profile's PoP key is kept (docs/pop.md): as its refresh tokens are, by its
//! `storage`. With a real Secret Service (gnome-keyring on a private D-Bus session) the key
//! lands there and nowhere on disk, and the next process (two at once, too) reuses it, so
//! the cached bound token stays usable; `auto` without a keyring keeps a 0600 file and says
//! so once, and the key moves into a keyring that answers later; `logout` and `profile
//! remove` take the key out of the keyring.

use crate::support::dbus::SecretService;
use crate::support::pop::verify_shr;
use crate::support::{CcProfile, MockAuthority, Sandbox, code, run, stderr, stdout};
use std::process::Command;

const TENANT: &str = "contoso.test";
const APP: &str = "77777777-7777-4777-8777-777777777777";
const SECRET: &str = "pop~secret";
const POP: &[&str] = &["get-token", "-p", "sp", "-r", "https://graph.microsoft.com", "--pop-enabled", "--pop-url", "https://graph.microsoft.com/v1.0/me"];

fn stand(storage: Option<&str>) -> Option<(MockAuthority, Sandbox)> {
    if Command::new("ssh-keygen").arg("-?").output().is_err() {
        crate::support::skip::missing_tool("ssh-keygen", "PoP keys");
        return None;
    }
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some(SECRET));
    let sb = Sandbox::new();
    let storage = storage.map(|s| format!("storage = \"{s}\"\n")).unwrap_or_default();
    sb.write_config(&CcProfile::new("sp", &mock.url(), TENANT, APP).with(&storage).toml());
    Some((mock, sb))
}

fn cmd(sb: &Sandbox, bus: &str, args: &[&str]) -> Command {
    let mut c = sb.cmd();
    c.env("CI_SECRET", SECRET).env("DBUS_SESSION_BUS_ADDRESS", bus).args(args);
    c
}

/// The SHR's key id and bound token, and stderr.
fn pop(sb: &Sandbox, bus: &str) -> (String, String, String) {
    let out = run(cmd(sb, bus, POP));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v = verify_shr(stdout(&out).trim()).unwrap_or_else(|why| panic!("the SHR fails a resource server's check: {why}"));
    (v.kid, v.at, stderr(&out))
}

fn key_files(sb: &Sandbox) -> Vec<std::path::PathBuf> {
    let files = std::fs::read_dir(sb.path("cache")).map(|rd| rd.flatten().map(|e| e.path()).collect::<Vec<_>>()).unwrap_or_default();
    files.into_iter().filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("popkey-") && p.extension().is_some_and(|e| e == "json")).collect()
}

/// `popkey-<digest>.json`, the key's name in both stores (the cache's `key_name`).
fn key_name(profile: &str) -> String {
    let joined = serde_json::to_string(&["1", profile]).unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, joined.as_bytes());
    format!("popkey-{}.json", digest.as_ref()[..20].iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn items(ss: &SecretService, profile: &str) -> usize {
    ss.count_items(&[("service", "entra-token"), ("username", &key_name(profile))])
}

fn keyring_keeps_the_key(storage: Option<&str>) {
    let Some((mock, sb)) = stand(storage) else { return };
    let Some(ss) = SecretService::start(&sb) else { return };
    let (kid, at, err) = pop(&sb, &ss.address);
    assert!(!err.contains("secret store"), "{err}");
    assert!(key_files(&sb).is_empty(), "the PoP key was written to a file: {:?}", key_files(&sb));
    assert_eq!(items(&ss, "sp"), 1, "the PoP key is not in the Secret Service");
    // doctor says where the key went: the store the refresh tokens' choice picks.
    let out = run(cmd(&sb, &ss.address, &["doctor", "-p", "sp", "--offline"]));
    assert!(stdout(&out).lines().any(|l| l.starts_with("✓ store ") && l.contains("the OS secret store answers: PoP keys go there")), "{}", stdout(&out));
    // Two more processes at once: both take the key out of the keyring, so the cached token
    // bound to it is served, no new token is asked for and no file appears.
    use std::process::Stdio;
    let children: Vec<_> = (0..2).map(|_| cmd(&sb, &ss.address, POP).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()).collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let v = verify_shr(stdout(&out).trim()).unwrap();
        assert_eq!((v.kid.as_str(), v.at.as_str()), (kid.as_str(), at.as_str()), "another process made or used another key");
    }
    assert_eq!(mock.token_requests(), 1);
    assert!(key_files(&sb).is_empty());
    // logout takes it out of the keyring: the next call binds a new key.
    let out = run(cmd(&sb, &ss.address, &["logout", "-p", "sp"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("1 PoP key(s)"), "{}", stderr(&out));
    assert_eq!(items(&ss, "sp"), 0, "logout left the PoP key in the keyring");
    let (kid2, _, _) = pop(&sb, &ss.address);
    assert_ne!(kid2, kid);
    assert_eq!((items(&ss, "sp"), mock.token_requests()), (1, 2));
    // profile remove takes it too.
    let out = run(cmd(&sb, &ss.address, &["profile", "remove", "sp"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("removed its PoP key"), "{}", stderr(&out));
    assert_eq!(items(&ss, "sp"), 0, "profile remove left the PoP key in the keyring");
}

#[test]
fn storage_keyring_keeps_the_pop_key_in_the_secret_service_only_and_the_next_processes_reuse_it() {
    keyring_keeps_the_key(Some("keyring"));
}

#[test]
fn auto_with_a_keyring_keeps_the_pop_key_there_and_says_nothing() {
    keyring_keeps_the_key(None);
}

#[test]
fn auto_without_a_keyring_keeps_the_pop_key_in_a_0600_file_and_says_so_once() {
    use std::os::unix::fs::PermissionsExt;
    let Some((mock, sb)) = stand(None) else { return };
    let bus = format!("unix:path={}", sb.path("no-such-bus").display());
    let (kid, at, err) = pop(&sb, &bus);
    assert_eq!(err.matches("no OS secret store is usable").count(), 1, "not said once: {err}");
    assert!(err.contains("PoP keys"), "{err}");
    let files = key_files(&sb);
    assert_eq!(files.len(), 1, "the PoP key is not in its file");
    assert_eq!(std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777, 0o600);
    let (kid2, at2, err) = pop(&sb, &bus);
    assert_eq!((kid2, at2), (kid, at));
    assert!(!err.contains("secret store"), "said again: {err}");
    assert_eq!(mock.token_requests(), 1);
}

#[test]
fn storage_keyring_without_one_makes_no_key_file() {
    let Some((mock, sb)) = stand(Some("keyring")) else { return };
    let out = run(cmd(&sb, &format!("unix:path={}", sb.path("no-such-bus").display()), POP));
    assert_eq!((code(&out), stdout(&out).trim()), (1, ""), "{}", stderr(&out));
    assert!(stderr(&out).contains("storage = \"keyring\", but no OS secret store is usable"), "{}", stderr(&out));
    assert!(key_files(&sb).is_empty());
    assert_eq!(mock.token_requests(), 0);
}

/// A key kept in a 0600 file while no keyring answered moves into the keyring once one does
/// (`auto`, its fallback note deleted as the note says; or the profile now says `keyring`):
/// the same key, so the cached token bound to it is still served, and no file is left.
fn a_file_key_moves_into_the_keyring(now: Option<&str>) {
    let Some((mock, sb)) = stand(None) else { return };
    let no_bus = format!("unix:path={}", sb.path("no-such-bus").display());
    let (kid, at, _) = pop(&sb, &no_bus);
    assert_eq!(key_files(&sb).len(), 1, "the PoP key is not in its file");
    match now {
        None => std::fs::remove_file(sb.path("cache/keyring-unavailable")).unwrap(),
        Some(storage) => sb.write_config(&CcProfile::new("sp", &mock.url(), TENANT, APP).with(&format!("storage = \"{storage}\"\n")).toml()),
    }
    let Some(ss) = SecretService::start(&sb) else { return };
    let (kid2, at2, err) = pop(&sb, &ss.address);
    assert_eq!((kid2.as_str(), at2.as_str()), (kid.as_str(), at.as_str()), "the file's key was not the one used");
    assert!(!err.contains("secret store"), "{err}");
    assert!(key_files(&sb).is_empty(), "the key is still in its file too: {:?}", key_files(&sb));
    assert_eq!(items(&ss, "sp"), 1, "the key did not move into the Secret Service");
    // The next process takes it from the keyring: the same key and cached token, one token request in all.
    let (kid3, at3, _) = pop(&sb, &ss.address);
    assert_eq!((kid3, at3), (kid, at));
    assert_eq!((items(&ss, "sp"), key_files(&sb).len(), mock.token_requests()), (1, 0, 1));
}

#[test]
fn auto_moves_a_file_key_into_a_keyring_that_now_answers() {
    a_file_key_moves_into_the_keyring(None);
}

#[test]
fn storage_keyring_moves_a_file_key_into_the_keyring() {
    a_file_key_moves_into_the_keyring(Some("keyring"));
}
