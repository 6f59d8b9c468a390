//! The cache on a hostile or broken file system: read-only and full disks still answer
//! (uncached, with a warning); symlinks into someone else's space, foreign owners and
//! loose permissions are refused with the fix in the message; HOME unset is a clear error;
//! a caller that closed stdin/stdout/stderr never gets our output written into our files.
//!
//! Read-only and full file systems are real ones: a small tmpfs mounted in a private
//! mount namespace (`unshare`, as root or in a user namespace), so nothing leaks out of
//! the test and no fault-injection seam is needed in the binary.

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use crate::support::{MockAuthority, Sandbox, run_with_stdin, stderr};

const TENANT: &str = "contoso.test";
const APP: &str = "66666666-6666-6666-6666-666666666666";
const SECRET: &str = "fs~secret~value";
/// A uid with no passwd entry and no files of its own.
const STRANGER: u32 = 54321;

fn setup() -> (MockAuthority, Sandbox) {
    support::client_credentials_setup(TENANT, APP, SECRET)
}

fn cmd(sb: &Sandbox) -> Command {
    let mut c = sb.cmd();
    c.env("CI_SECRET", SECRET).args(["get-token", "-p", "ci", "-r", "graph", "--timeout", "20s"]);
    c
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Wraps `inner` so it runs in a private mount namespace with a tmpfs of `opts` mounted at
/// `mountpoint` and `script` run before it (`"$@"` is the binary with its arguments).
/// None when this machine cannot make mount namespaces (the caller skips, saying why).
fn in_tmpfs(inner: &Command, mountpoint: &Path, opts: &str, script: &str) -> Option<Command> {
    let probe = Command::new("unshare").args(if is_root() { &["-m", "true"][..] } else { &["-rm", "true"][..] }).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return None;
    }
    let mut c = Command::new("unshare");
    c.arg(if is_root() { "-m" } else { "-rm" })
        .args(["sh", "-c", &format!("mount -t tmpfs -o {opts} tmpfs \"$MP\" || exit 97\n{script}")])
        .arg("sh")
        .arg(inner.get_program())
        .args(inner.get_args())
        .env("MP", mountpoint);
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    if let Some(d) = inner.get_current_dir() {
        c.current_dir(d);
    }
    Some(c)
}

fn skip(why: &str) {
    support::skip::not_here(why);
}

#[test]
fn read_only_cache_dir_still_answers_with_a_warning() {
    let (mock, sb) = setup();
    std::fs::create_dir(sb.path("cache")).unwrap();
    let Some(c) = in_tmpfs(&cmd(&sb), &sb.path("cache"), "ro,mode=0700,size=64k", "exec \"$@\"") else {
        return skip("no mount namespaces here (unshare -m / -rm failed)");
    };
    let out = run_with_stdin(c, "");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), mock.issued_access_tokens()[0]);
    let err = stderr(&out);
    assert!(err.contains("could not store the token") && err.contains("Read-only"), "no warning: {err}");
}

/// Docker's ACR exchange like every token: a cache directory that cannot be created is
/// skipped with a warning, and the registry still gets its credential.
#[test]
fn acr_exchange_answers_when_the_cache_dir_cannot_be_created() {
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some(SECRET));
    let registry = crate::docker::MockRegistry::start(None, mock.tenant_id(TENANT));
    let sb = Sandbox::new();
    sb.write_config(&support::CcProfile::new("images", &mock.url(), TENANT, APP).secret_env("APP_SECRET").with("urls = [\"contoso.azurecr.io\"]\n").toml());
    std::fs::create_dir(sb.path("ro")).unwrap();
    let mut inner = sb.tool_with_links(sb.link("docker-credential-entra-token"));
    inner.arg("get").env("APP_SECRET", SECRET).env("ENTRA_TOKEN_CACHE_DIR", sb.path("ro/entra-token")).env("ENTRA_TOKEN_ACR_EXCHANGE_URL", format!("{}/oauth2/exchange", registry.server.url()));
    let Some(c) = in_tmpfs(&inner, &sb.path("ro"), "ro,mode=0700,size=64k", "exec \"$@\"") else {
        return skip("no mount namespaces here (unshare -m / -rm failed)");
    };
    let out = run_with_stdin(c, "contoso.azurecr.io\n");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Secret"], registry.state().refresh_tokens[0].as_str());
    assert!(stderr(&out).contains("answering without the cache"), "{}", stderr(&out));
}

#[test]
fn cache_dir_that_cannot_be_created_still_answers_with_a_warning() {
    let (mock, sb) = setup();
    std::fs::create_dir(sb.path("ro")).unwrap();
    let mut inner = cmd(&sb);
    inner.env("ENTRA_TOKEN_CACHE_DIR", sb.path("ro/entra-token"));
    let Some(c) = in_tmpfs(&inner, &sb.path("ro"), "ro,mode=0700,size=64k", "exec \"$@\"") else {
        return skip("no mount namespaces here (unshare -m / -rm failed)");
    };
    let out = run_with_stdin(c, "");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), mock.issued_access_tokens()[0]);
    let err = stderr(&out);
    assert!(err.contains("cannot create cache directory") && err.contains("answering without the cache"), "{err}");
}

#[test]
fn full_disk_still_answers_and_keeps_the_old_entry() {
    let (mock, sb) = setup();
    std::fs::create_dir(sb.path("cache")).unwrap();
    // First run stores an entry; then the disk fills up; a forced run gets a new token it
    // cannot store. The answer is the new token; the entry on disk is still the whole old one.
    let script = "\"$@\" >/dev/null 2>&1 || exit 96\n\
                  head -c 4194304 /dev/zero > \"$MP/fill\" 2>/dev/null\n\
                  \"$@\" --force; rc=$?\n\
                  echo ---\n\
                  cat \"$MP\"/at-*.json\n\
                  exit $rc";
    let Some(c) = in_tmpfs(&cmd(&sb), &sb.path("cache"), "mode=0700,size=32k", script) else {
        return skip("no mount namespaces here (unshare -m / -rm failed)");
    };
    let out = run_with_stdin(c, "");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "stderr: {err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (answer, entry) = stdout.split_once("---\n").expect("script output");
    let issued = mock.issued_access_tokens();
    assert_eq!(issued.len(), 2);
    assert_eq!(answer.trim(), issued[1], "the forced run's answer");
    let entry: serde_json::Value = serde_json::from_str(entry).unwrap_or_else(|e| panic!("torn entry after ENOSPC ({e}): {entry}"));
    assert_eq!(entry["access_token"], issued[0], "the old entry was lost");
    assert!(err.contains("could not store the token") && err.contains("No space left"), "no warning: {err}");
}

fn first_entry(sb: &Sandbox) -> std::path::PathBuf {
    let out = run_with_stdin(cmd(sb), "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    std::fs::read_dir(sb.path("cache")).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).find(|p| p.extension().is_some_and(|x| x == "json")).expect("an entry")
}

#[test]
fn cache_dir_symlinked_into_someone_elses_space_is_refused() {
    let (mock, sb) = setup();
    let other = sb.path("other-user");
    std::fs::create_dir(&other).unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o700)).unwrap();
    let target = if is_root() {
        std::os::unix::fs::chown(&other, Some(STRANGER), Some(STRANGER)).unwrap();
        other
    } else {
        // Not root: we cannot give a directory away, but /tmp is someone else's (root's).
        std::path::PathBuf::from("/tmp")
    };
    std::os::unix::fs::symlink(&target, sb.path("cache")).unwrap();
    let out = run_with_stdin(cmd(&sb), "");
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("not by you") && err.contains("ENTRA_TOKEN_CACHE_DIR"), "no fix in the message: {err}");
    assert!(out.stdout.is_empty());
    assert_eq!(mock.token_requests(), 0, "asked for a token it could only have put in someone else's directory");
}

#[test]
fn cache_dir_symlinked_into_our_own_space_is_fine() {
    let (_mock, sb) = setup();
    let mine = sb.path("elsewhere");
    std::fs::create_dir(&mine).unwrap();
    std::fs::set_permissions(&mine, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&mine, sb.path("cache")).unwrap();
    let out = run_with_stdin(cmd(&sb), "");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(std::fs::read_dir(&mine).unwrap().count() >= 1, "nothing stored through the link");
}

#[test]
fn entry_symlinked_elsewhere_is_refused_and_not_served() {
    let (_mock, sb) = setup();
    let entry = first_entry(&sb);
    // Someone plants a link to a file holding a token of their choosing.
    let mut planted: serde_json::Value = serde_json::from_slice(&std::fs::read(&entry).unwrap()).unwrap();
    planted["access_token"] = "eyJplanted.token.value".into();
    let decoy = sb.write_file("decoy.json", planted.to_string());
    std::fs::set_permissions(&decoy, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::remove_file(&entry).unwrap();
    std::os::unix::fs::symlink(&decoy, &entry).unwrap();
    let out = run_with_stdin(cmd(&sb), "");
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("symlink") && err.contains("remove it"), "no fix in the message: {err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("planted"), "served the planted token");
}

#[test]
fn loose_permissions_are_refused_with_the_chmod_to_run() {
    let (_mock, sb) = setup();
    let entry = first_entry(&sb);
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run_with_stdin(cmd(&sb), "");
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("644") && err.contains(&format!("chmod 600 {}", entry.display())), "{err}");
    assert!(out.stdout.is_empty(), "served a token from a world-readable entry");

    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(sb.path("cache"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = run_with_stdin(cmd(&sb), "");
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    assert!(stderr(&out).contains(&format!("chmod 700 {}", sb.path("cache").display())), "{}", stderr(&out));

    std::fs::set_permissions(sb.path("cache"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = run_with_stdin(cmd(&sb), "");
    assert_eq!(out.status.code(), Some(0), "the fix did not work: {}", stderr(&out));
}

#[test]
fn entry_owned_by_someone_else_is_refused() {
    if !is_root() {
        return skip("giving a file to another uid needs root");
    }
    let (_mock, sb) = setup();
    let entry = first_entry(&sb);
    std::os::unix::fs::chown(&entry, Some(STRANGER), None).unwrap();
    let out = run_with_stdin(cmd(&sb), "");
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    assert!(stderr(&out).contains(&format!("owned by uid {STRANGER}")), "{}", stderr(&out));
}

/// HOME unset (and no passwd entry to fall back on): a clear error that names the fix;
/// with `--no-cache` the token is answered.
#[test]
fn home_unset_is_a_clear_error_naming_the_fix() {
    if !is_root() {
        return skip("running as a uid without a passwd entry needs root");
    }
    let (mock, sb) = setup();
    // The stranger runs a copy in a directory anyone can enter: the checkout (and so the
    // built binary) may sit under a directory only we can reach, such as `mktemp -d`'s.
    let public = tempfile::tempdir().unwrap();
    std::fs::set_permissions(public.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = public.path().join("entra-token");
    // Copied by `cp`, not by this process: see support::env::install_executable (ETXTBSY).
    support::copy_executable(env!("CARGO_BIN_EXE_entra-token"), &copy);
    let run = |extra: &[&str]| {
        let mut c = support::bin_at(&copy);
        c.env_remove("HOME")
            .env_remove("XDG_CACHE_HOME")
            .env_remove("XDG_CONFIG_HOME")
            .env("ENTRA_TOKEN_CONFIG", "/nonexistent/entra-token.toml")
            .env("AZURE_TENANT_ID", TENANT)
            .env("AZURE_CLIENT_ID", APP)
            .env("AZURE_CLIENT_SECRET", SECRET)
            .env("AZURE_AUTHORITY_HOST", mock.url())
            .current_dir("/")
            .args(["get-token", "-r", "graph", "--timeout", "20s"])
            .args(extra)
            .uid(STRANGER)
            .gid(STRANGER);
        run_with_stdin(c, "")
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("HOME is not set") && err.contains("ENTRA_TOKEN_CACHE_DIR") && err.contains("--no-cache"), "{err}");
    assert_eq!(mock.token_requests(), 0);
    let out = run(&["--no-cache"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), mock.issued_access_tokens()[0]);
    drop(sb);
}

#[test]
fn closed_standard_descriptors_never_send_output_into_our_files() {
    // A caller that closed stdin, stdout or stderr: the next file we open would take that
    // number, and what we write there (the answer, -vv lines) would land in our own files.
    for closed in [&[0][..], &[1], &[2], &[0, 1, 2]] {
        let (mock, sb) = setup();
        let mut c = cmd(&sb);
        c.arg("-vv").stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        let fds = closed.to_vec();
        // SAFETY: only async-signal-safe close(2) between fork and exec.
        unsafe {
            c.pre_exec(move || {
                for fd in &fds {
                    libc::close(*fd);
                }
                Ok(())
            });
        }
        assert_eq!(c.status().unwrap().code(), Some(0), "closed {closed:?}");
        let token = &mock.issued_access_tokens()[0];
        for entry in std::fs::read_dir(sb.path("cache")).unwrap().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("closed {closed:?}: {name} is not a cache entry ({e}): {text}"));
                assert_eq!(v["access_token"], token.as_str());
            } else {
                assert!(!text.contains("entra-token") && !text.contains(token.as_str()), "closed {closed:?}: {name} caught our output: {text}");
            }
        }
        let again = cmd(&sb).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), token, "closed {closed:?}, stderr: {}", stderr(&again));
        assert_eq!(mock.token_requests(), 1);
    }
}
