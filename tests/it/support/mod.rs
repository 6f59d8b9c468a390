//! Test support shared by every integration-test suite (`crate::support`): a faithful local
//! stand-in for Microsoft Entra ID, a throwaway TLS CA, and a sealed way to run the
//! `entra-token` binary, so no test ever talks to a real cloud or reads a real cache.
//!
//! - [`MockAuthority`]: discovery, token (v1 and v2), device code and authorize endpoints
//!   on 127.0.0.1, with injectable [`Fault`]s and a record of every request.
//! - [`TestCa`]: a CA whose server certificate the https mock presents.
//! - [`bin`], [`Sandbox`], [`run_with_stdin`]: the binary with a scrubbed environment.

pub mod authority;
// The emulator's (src/emulator) Entra rules, compiled here from the same files so the
// stand-in and `entra-token emulator` answer alike: errors and ids, how scopes name one
// resource, who the client is, the SSH certificate authority. Each names only crates and its shared siblings.
#[allow(dead_code)]
#[path = "../../../src/emulator/wire.rs"]
mod entra_wire;
#[path = "../../../src/emulator/token_request.rs"]
mod token_request;
#[path = "../../../src/emulator/sshcert.rs"]
mod sshcert;
#[cfg(unix)]
pub mod dbus;
pub mod emulator;
pub mod env;
mod flows;
mod grants;
pub mod http;
mod issue;
pub mod output;
pub mod pop;
pub mod profile;
#[cfg(unix)]
pub mod pyfeed;
pub mod skip;
pub mod skip_summary;
#[cfg(unix)]
pub mod sshd;
pub mod tls;
pub mod wire;

pub use authority::{Fault, MockAuthority, RecordedRequest};
pub use emulator::Emulator;
pub use env::{Sandbox, run, run_with_stdin};
#[cfg(unix)]
pub use env::{bin, bin_at, copy_executable};
pub use http::refused_url;
pub use output::{code, ok, ok_stdout, one_line, stderr, stdout, text};
pub use profile::CcProfile;
pub use tls::TestCa;
pub use wire::{AKS_CLIENT, AZURE_CLI, AZURE_POWERSHELL, DEFAULT_USER, HOME_TENANT, jwt_claims, user_oid};

/// The most common fixture: a mock with `tenant` and a confidential `app` whose secret is
/// `secret`, and a sandbox whose profile `ci` signs that app in with the secret read from
/// `CI_SECRET` (the caller sets it on each command).
pub fn client_credentials_setup(tenant: &str, app: &str, secret: &str) -> (MockAuthority, Sandbox) {
    let mock = MockAuthority::start();
    mock.add_tenant(tenant);
    mock.add_app(app, Some(secret));
    let sb = Sandbox::new();
    sb.write_config(&CcProfile::new("ci", &mock.url(), tenant, app).toml());
    (mock, sb)
}

/// The start of a test against a tool's server stand-in over https (a feed, a registry, a
/// git server): an authority with `tenant` and the confidential `app` whose secret is
/// `secret`, a sandbox, and a TLS CA for the stand-in whose certificate the sandbox holds
/// (the path, for the tool's trust settings).
pub fn feed_setup(tenant: &str, app: &str, secret: &str) -> (std::sync::Arc<MockAuthority>, Sandbox, TestCa, std::path::PathBuf) {
    let mock = std::sync::Arc::new(MockAuthority::start());
    mock.add_tenant(tenant);
    mock.add_app(app, Some(secret));
    let sb = Sandbox::new();
    let ca = TestCa::new();
    let ca_pem = ca.write_pem(&sb.path("ca"));
    (mock, sb, ca, ca_pem)
}

/// A refresh-token entry from the file store, as JSON: on Windows the file holds it
/// sealed with DPAPI (`{"v":1,"dpapi":…}`), which this opens as the same user.
pub fn read_rt_entry(path: &std::path::Path) -> serde_json::Value {
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(path).expect("read the refresh token entry")).expect("entry is JSON");
    let Some(sealed) = file.get("dpapi").and_then(|d| d.as_str()) else {
        if cfg!(windows) {
            panic!("a refresh token stored unsealed on Windows: {}", path.display());
        }
        return file;
    };
    use base64::Engine;
    let sealed = base64::engine::general_purpose::STANDARD.decode(sealed).expect("base64");
    serde_json::from_slice(&unseal(&sealed)).expect("sealed entry is JSON")
}

/// Writes `entry` (a refresh-token entry as [`read_rt_entry`] returns it) back to `path`
/// the way entra-token stores it: sealed with DPAPI on Windows, as it is elsewhere.
pub fn write_rt_entry(path: &std::path::Path, entry: &serde_json::Value) {
    let plain = serde_json::to_vec(entry).expect("entry encodes");
    let file = if cfg!(windows) {
        use base64::Engine;
        serde_json::json!({"v": 1, "dpapi": base64::engine::general_purpose::STANDARD.encode(seal(&plain))})
    } else {
        entry.clone()
    };
    std::fs::write(path, serde_json::to_vec(&file).unwrap()).expect("write the refresh token entry");
}

#[cfg(windows)]
fn dpapi(input: &[u8], protect: bool) -> Vec<u8> {
    use windows_sys::Win32::Security::Cryptography::{CRYPT_INTEGER_BLOB, CryptProtectData, CryptUnprotectData};
    let entropy: &[u8] = b"entra-token refresh token v1";
    let blob = |b: &[u8]| CRYPT_INTEGER_BLOB { cbData: b.len() as u32, pbData: b.as_ptr().cast_mut() };
    let mut out = CRYPT_INTEGER_BLOB { cbData: 0, pbData: std::ptr::null_mut() };
    // SAFETY: input blobs point at live slices; the output buffer is copied (and leaked: a test).
    let ok = unsafe {
        if protect {
            CryptProtectData(&blob(input), std::ptr::null(), &blob(entropy), std::ptr::null(), std::ptr::null(), 1, &mut out)
        } else {
            CryptUnprotectData(&blob(input), std::ptr::null_mut(), &blob(entropy), std::ptr::null(), std::ptr::null(), 1, &mut out)
        }
    };
    assert_ne!(ok, 0, "DPAPI cannot {}: {}", if protect { "seal" } else { "unseal" }, std::io::Error::last_os_error());
    unsafe { std::slice::from_raw_parts(out.pbData, out.cbData as usize) }.to_vec()
}

#[cfg(windows)]
fn unseal(sealed: &[u8]) -> Vec<u8> {
    dpapi(sealed, false)
}

#[cfg(windows)]
fn seal(plain: &[u8]) -> Vec<u8> {
    dpapi(plain, true)
}

#[cfg(not(windows))]
fn seal(_: &[u8]) -> Vec<u8> {
    unreachable!("entries are sealed only on Windows")
}

#[cfg(not(windows))]
fn unseal(_: &[u8]) -> Vec<u8> {
    panic!("a DPAPI-sealed entry off Windows")
}
