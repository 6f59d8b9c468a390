//! Refresh tokens in the OS secret store. `storage = "keyring"` keeps them in a real
//! Secret Service (gnome-keyring on a private D-Bus session, started here) and nowhere on
//! disk; `auto` without a usable keyring keeps the 0600 file and says so exactly once,
//! and never re-prompts; `keyring` without one is a clear error.

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
use crate::support::{MockAuthority, Sandbox, run_with_stdin, ok};
use crate::support::dbus::SecretService;

const TENANT: &str = "contoso.test";
const USER: &str = "ann@contoso.test";
const PASSWORD: &str = "correct horse battery";

fn setup(storage: Option<&str>) -> (MockAuthority, Sandbox) {
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_user(USER, PASSWORD);
    let sb = Sandbox::new();
    let storage = storage.map(|s| format!("storage = \"{s}\"\n")).unwrap_or_default();
    sb.write_config(&format!(
        "[profiles.me]\nauthority = \"{}\"\ntenant = \"{TENANT}\"\nflow = \"password\"\nusername = \"{USER}\"\npassword_env = \"ANN_PASSWORD\"\n{storage}",
        mock.url()
    ));
    (mock, sb)
}

fn run(sb: &Sandbox, bus: &str, args: &[&str], with_password: bool) -> Output {
    let mut c = sb.cmd();
    c.env("DBUS_SESSION_BUS_ADDRESS", bus).args(args);
    if with_password {
        c.env("ANN_PASSWORD", PASSWORD);
    }
    run_with_stdin(c, "")
}

fn rt_files(sb: &Sandbox) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(sb.path("cache"))
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("rt-") && n.ends_with(".json")
        })
        .collect())
        .unwrap_or_default()
}

/// A bus address where nothing listens: headless, containers.
fn no_bus(sb: &Sandbox) -> String {
    format!("unix:path={}", sb.path("no-such-bus").display())
}

#[test]
fn auto_without_a_keyring_falls_back_to_the_file_and_says_so_once() {
    let (mock, sb) = setup(None);
    let bus = no_bus(&sb);
    let first = ok(run(&sb, &bus, &["get-token", "-p", "me", "-r", "graph"], true));
    let err = String::from_utf8_lossy(&first.stderr).into_owned();
    assert_eq!(err.matches("no OS secret store is usable").count(), 1, "not said once: {err}");
    let files = rt_files(&sb);
    assert_eq!(files.len(), 1, "the refresh token is not in the file store");
    assert_eq!(std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777, 0o600);
    // Later calls: no password (so no sign-in is possible), no repeat of the message, and
    // the refresh token answers every new resource.
    for r in ["storage", "keyvault", "arm"] {
        let o = ok(run(&sb, &bus, &["get-token", "-p", "me", "-r", r], false));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("secret store"), "said again: {err}");
    }
    assert_eq!((mock.grant_count("password"), mock.grant_count("refresh_token")), (1, 3), "re-prompted instead of using the file");
    assert!(sb.path("cache/keyring-unavailable").exists());
}

#[test]
fn storage_file_never_mentions_a_keyring() {
    let (_mock, sb) = setup(Some("file"));
    let o = ok(run(&sb, &no_bus(&sb), &["get-token", "-p", "me", "-r", "graph"], true));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("secret store"));
    assert_eq!(rt_files(&sb).len(), 1);
    assert!(!sb.path("cache/keyring-unavailable").exists());
}

#[test]
fn storage_keyring_without_one_is_a_clear_message_not_a_file() {
    let (mock, sb) = setup(Some("keyring"));
    // The sign-in itself works; keeping its refresh token is what cannot be done, and the
    // message says why and what to change. Nothing falls back to a file behind the user's back.
    let o = run(&sb, &no_bus(&sb), &["get-token", "-p", "me", "-r", "graph"], true);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(err.contains("storage = \"keyring\", but no OS secret store is usable") && err.contains("storage = \"auto\" or \"file\""), "no fix in the message: {err}");
    assert!(rt_files(&sb).is_empty(), "wrote the refresh token to a file anyway");
    // With nobody to type a password, the next call fails at once and says why (no hidden prompt).
    let o = run(&sb, &no_bus(&sb), &["get-token", "-p", "me", "-r", "storage"], false);
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(mock.grant_count("refresh_token"), 0);
}

#[test]
fn unknown_storage_is_bad_input() {
    let (_mock, sb) = setup(Some("vault"));
    let o = run(&sb, &no_bus(&sb), &["get-token", "-p", "me", "-r", "graph"], true);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("auto\", \"keyring\" or \"file\""));
    assert!(rt_files(&sb).is_empty());
}

#[test]
fn storage_keyring_keeps_the_refresh_token_in_the_secret_service_only() {
    let (mock, sb) = setup(Some("keyring"));
    let Some(ss) = SecretService::start(&sb) else { return };
    ok(run(&sb, &ss.address, &["get-token", "-p", "me", "-r", "graph"], true));
    assert!(rt_files(&sb).is_empty(), "the refresh token was written to a file");
    let live = mock.live_refresh_tokens();
    assert!(!live.is_empty());
    for f in std::fs::read_dir(sb.path("cache")).unwrap().flatten() {
        let text = std::fs::read_to_string(f.path()).unwrap_or_default();
        assert!(live.iter().all(|rt| !text.contains(rt.as_str())), "a refresh token in {}", f.path().display());
    }
    // The refresh token comes back out of the keyring for the next resources (rotating).
    for r in ["storage", "keyvault"] {
        ok(run(&sb, &ss.address, &["get-token", "-p", "me", "-r", r], false));
    }
    assert_eq!((mock.grant_count("password"), mock.grant_count("refresh_token")), (1, 2));
    let status = ok(run(&sb, &ss.address, &["status", "-o", "json"], false));
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("the OS keyring") && status.contains("stored"), "{status}");
    // logout removes it from the keyring: the next call needs the password again.
    ok(run(&sb, &ss.address, &["logout", "-p", "me"], false));
    let o = run(&sb, &ss.address, &["get-token", "-p", "me", "-r", "sql"], false);
    assert_ne!(o.status.code(), Some(0), "a refresh token survived logout");
}

#[test]
fn auto_with_a_keyring_uses_it_and_says_nothing() {
    let (mock, sb) = setup(None);
    let Some(ss) = SecretService::start(&sb) else { return };
    let o = ok(run(&sb, &ss.address, &["get-token", "-p", "me", "-r", "graph"], true));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("secret store"), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(rt_files(&sb).is_empty(), "auto wrote a file though the keyring answered");
    ok(run(&sb, &ss.address, &["get-token", "-p", "me", "-r", "storage"], false));
    assert_eq!((mock.grant_count("password"), mock.grant_count("refresh_token")), (1, 1));
}

/// A Python that can write az's encrypted token cache as az does: msal-extensions on
/// PyGObject's libsecret (Debian's python3-gi and gir1.2-secret-1, and a venv with
/// system site packages that .ci/run makes at target/msalx-venv).
fn msal_extensions_python() -> Option<std::path::PathBuf> {
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/msalx-venv/bin/python");
    [venv, "python3".into(), "/usr/bin/python3".into()].into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import gi; gi.require_version('Secret', '1'); from gi.repository import Secret; import msal_extensions"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// `az login` with `core.encrypt_token_cache = true` on Linux, done by the libraries az
/// does it with: MSAL for Python signs in (ROPC, the Azure CLI client) and persists its
/// cache through msal-extensions' LibsecretPersistence with azure-cli's schema and
/// attributes (azure-cli 2.91 `auth/persistence.py`), into gnome-keyring.
fn az_login_encrypted(python: &std::path::Path, ss: &SecretService, authority: &str, ca_pem: &std::path::Path, az_dir: &std::path::Path, user: &str, names: &str) {
    let script = r#"
import sys, msal
from msal_extensions import LibsecretPersistence, PersistedTokenCache
msal.authority.Authority._domains_without_user_realm_discovery.add("127.0.0.1")
if sys.argv[5] == "2.91":
    persistence = LibsecretPersistence(sys.argv[4] + "/msal_token_cache.bin", schema_name="my_schema_name", attributes={"my_attr1": "foo", "my_attr2": "bar"})
else:  # names a user sees in Seahorse, of a kind azure-cli's pending change uses
    persistence = LibsecretPersistence(sys.argv[4] + "/msal_token_cache.bin.signal", schema_name="Microsoft Azure CLI", attributes={"persistence": "token_cache"}, label="Microsoft Azure CLI - Token cache")
cache = PersistedTokenCache(persistence)
app = msal.PublicClientApplication("04b07795-8ddb-461a-bbee-02f9e1bf7b46", authority=sys.argv[1], token_cache=cache, instance_discovery=False)
r = app.acquire_token_by_username_password(sys.argv[2], sys.argv[3], scopes=["https://management.core.windows.net//.default"])
if "access_token" not in r:
    sys.exit("msal: %s" % r)
"#;
    std::fs::create_dir_all(az_dir).unwrap();
    let out = Command::new(python)
        .args(["-c", script, authority, user, PASSWORD, &az_dir.display().to_string(), names])
        .env("DBUS_SESSION_BUS_ADDRESS", &ss.address)
        .env("REQUESTS_CA_BUNDLE", ca_pem)
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .output()
        .expect("run python");
    assert!(out.status.success(), "msal-extensions login failed: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn az_login_with_an_encrypted_cache_in_the_secret_service_is_reused() {
    encrypted_az_login_is_reused("2.91");
}

/// Found by its label when the schema and attributes are not azure-cli 2.91's.
#[test]
fn az_login_with_a_labelled_keyring_item_is_reused() {
    encrypted_az_login_is_reused("labelled");
}

fn encrypted_az_login_is_reused(names: &str) {
    let Some(python) = msal_extensions_python() else {
        support::skip::missing_tool("msal-extensions with PyGObject's libsecret (target/msalx-venv)", "az's encrypted cache");
        return;
    };
    let ca = support::TestCa::new();
    let mock = MockAuthority::start_https(&ca);
    mock.add_user(USER, PASSWORD);
    let sb = Sandbox::new();
    let Some(ss) = SecretService::start(&sb) else { return };
    let ca_pem = ca.write_pem(&sb.path("ca"));
    let az_dir = sb.path("azure");
    az_login_encrypted(&python, &ss, &format!("{}/{}", mock.url(), support::HOME_TENANT), &ca_pem, &az_dir, USER, names);
    assert!(!az_dir.join("msal_token_cache.json").exists(), "msal-extensions wrote a plaintext cache");
    if names == "2.91" {
        std::fs::write(az_dir.join("config"), "[core]\nencrypt_token_cache = true\n").unwrap();
    }
    let profile = serde_json::json!({"subscriptions": [{"id": "sub-1", "name": "Dev", "state": "Enabled", "user": {"name": USER, "type": "user"}, "isDefault": true, "tenantId": support::HOME_TENANT, "environmentName": "AzureCloud"}]});
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(serde_json::to_vec(&profile).unwrap());
    std::fs::write(az_dir.join("azureProfile.json"), bytes).unwrap();
    let az_token = mock.issued_access_tokens().last().cloned().unwrap();
    let requests = mock.token_requests();
    std::fs::create_dir_all(sb.path("empty-bin")).unwrap();
    let get = |bus: &str, resource: &str| {
        let mut c = sb.cmd();
        c.args(["get-token", "--flow", "azure-cli", "-r", resource])
            .env("DBUS_SESSION_BUS_ADDRESS", bus)
            .env("AZURE_AUTHORITY_HOST", mock.url())
            .env("SSL_CERT_FILE", &ca_pem)
            .env("PATH", sb.path("empty-bin"));
        run_with_stdin(c, "")
    };
    // az's own access token, read out of the keyring: no request.
    let out = ok(get(&ss.address, "https://management.core.windows.net/"));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), az_token);
    assert_eq!(mock.token_requests(), requests);
    // Another resource: az's refresh token from the keyring, redeemed with the Azure CLI client.
    let out = ok(get(&ss.address, "graph"));
    let graph = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(mock.issued_access_tokens().last(), Some(&graph));
    let req = mock.requests().into_iter().rfind(|r| r.is_token_request()).unwrap();
    assert_eq!((req.form_get("grant_type"), req.form_get("client_id")), (Some("refresh_token"), Some("04b07795-8ddb-461a-bbee-02f9e1bf7b46")));

    // No Secret Service here: az would be run instead (none is on PATH), said once, not per call.
    let bus = no_bus(&sb);
    let first = get(&bus, "keyvault");
    assert_eq!(first.status.code(), Some(3), "{}", String::from_utf8_lossy(&first.stderr));
    let err = String::from_utf8_lossy(&first.stderr).into_owned();
    assert_eq!(err.matches("running `az` for its tokens instead").count(), 1, "{err}");
    let again = get(&bus, "storage");
    assert_eq!(again.status.code(), Some(3));
    assert!(!String::from_utf8_lossy(&again.stderr).contains("running `az` for its tokens instead"), "said again: {}", String::from_utf8_lossy(&again.stderr));
}
