//! Our own secrets in the OS secret store (Secret Service on Linux, Keychain on macOS,
//! Credential Manager on Windows), and the choice a profile's `storage` makes between it and
//! private files in the cache directory: `keyring` demands the store, `auto` (the default)
//! uses it when it answers and otherwise the files — said once, remembered by a marker in the
//! cache directory, instead of failing or re-prompting on every call. Refresh tokens
//! (`rt_store`) and PoP keys (`pop`) both come here, so they share one choice and one
//! backend; the platform differences of the keyring live here and nowhere above.

use crate::error::{Error, Result};
use crate::log::{trace, warn};
use std::path::Path;

/// What a profile's `storage` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Storage {
    Auto,
    Keyring,
    File,
}

impl Storage {
    pub(crate) fn parse(s: Option<&str>, profile: &str) -> Result<Storage> {
        match s.map(str::to_ascii_lowercase).as_deref() {
            None | Some("auto") => Ok(Storage::Auto),
            Some("keyring") => Ok(Storage::Keyring),
            Some("file") => Ok(Storage::File),
            Some(other) => Err(Error::bad_input_hint(format!("profile '{profile}': unknown storage \"{other}\""), "use storage = \"auto\", \"keyring\" or \"file\"")),
        }
    }
}

/// Where a profile's secrets go here and now, the keyring having been asked once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// Private files in the cache directory only.
    File,
    /// The keyring only (`storage = "keyring"`).
    Keyring,
    /// The keyring, which answered; files as the fallback and for what was kept before.
    Auto,
}

/// The keyring's service name; each entry's user name is its cache-style key name
/// (`rt-….json`, `popkey-….json`).
#[cfg(feature = "keyring")]
const SERVICE: &str = "entra-token";
/// In the cache directory: `auto` found no usable keyring here; holds the reason.
pub(crate) const FALLBACK_MARKER: &str = "keyring-unavailable";

/// Where `storage` puts secrets kept beside the cache directory `dir`.
pub(crate) fn place(dir: &Path, storage: Storage) -> Result<Place> {
    match storage {
        Storage::File => Ok(Place::File),
        Storage::Keyring => open().map(|()| Place::Keyring).map_err(|why| {
            Error::bad_input_hint(format!("storage = \"keyring\", but no OS secret store is usable here ({why})"), "start a Secret Service (e.g. gnome-keyring), or set storage = \"auto\" or \"file\"")
        }),
        Storage::Auto => {
            if dir.join(FALLBACK_MARKER).exists() {
                return Ok(Place::File);
            }
            match open() {
                Ok(()) => Ok(Place::Auto),
                Err(why) => {
                    fall_back(dir, &why);
                    Ok(Place::File)
                }
            }
        }
    }
}

/// Whether the OS secret store answers here (for `doctor`); Err says why not. Read-only.
pub(crate) fn probe() -> std::result::Result<(), String> {
    open()
}

/// Records (and says, once) that secrets stay in files in the cache directory `dir`.
pub(crate) fn fall_back(dir: &Path, why: &str) {
    let marker = dir.join(FALLBACK_MARKER);
    if marker.exists() {
        return;
    }
    warn!(
        "no OS secret store is usable here ({why}); keeping refresh tokens and PoP keys in {} files in {} (said once; delete {} to try again, or set storage = \"file\")",
        private_files(),
        dir.display(),
        marker.display()
    );
    if let Err(e) = crate::fs::write_atomic(&marker, format!("{why}\n").as_bytes(), crate::fs::Access::Private, crate::fs::Durability::Sync) {
        trace!(1, "{e}");
    }
}

/// What the file fallback is, for messages.
pub(crate) fn private_files() -> &'static str {
    if cfg!(windows) { "DPAPI-encrypted, user-only" } else { "0600" }
}

/// Why the keyring did not take an entry: this entry's size (others may still fit), or the
/// keyring itself.
pub(crate) enum Refused {
    #[cfg_attr(not(feature = "keyring"), allow(dead_code))] // only a keyring says so
    TooLarge(String),
    Failed(Error),
}

/// A keyring that answers: a lookup of an entry that does not exist must come back as "no
/// entry", not as a platform failure.
#[cfg(feature = "keyring")]
fn open() -> std::result::Result<(), String> {
    if let Some(why) = no_session_bus() {
        return Err(why);
    }
    match keyring::Entry::new(SERVICE, "probe").and_then(|e| e.get_password()) {
        Ok(_) | Err(keyring::Error::NoEntry) => Ok(()),
        // libdbus's words for "there is no session bus" (it tried to autolaunch one).
        Err(e) if e.to_string().contains("autolaunch") => Err(NO_SECRET_SERVICE.into()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(not(feature = "keyring"))]
fn open() -> std::result::Result<(), String> {
    Err("this build has no keyring support".into())
}

#[cfg(feature = "keyring")]
const NO_SECRET_SERVICE: &str = "no Secret Service here, as there is no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set)";

/// On Linux the Secret Service lives on the session bus; without one, libdbus would try to
/// autolaunch a bus and fail with a paragraph about X11. Say it in one phrase instead.
#[cfg(all(feature = "keyring", target_os = "linux"))]
fn no_session_bus() -> Option<String> {
    use crate::env;
    let socket = env::path(env::XDG_RUNTIME_DIR).is_some_and(|d| d.join("bus").exists());
    (!env::is_set(env::DBUS_SESSION_BUS_ADDRESS) && !socket).then(|| NO_SECRET_SERVICE.to_string())
}

#[cfg(all(feature = "keyring", not(target_os = "linux")))]
fn no_session_bus() -> Option<String> {
    None
}

#[cfg(feature = "keyring")]
fn entry(name: &str) -> Result<keyring::Entry> {
    keyring::Entry::new(SERVICE, name).map_err(failure)
}

#[cfg(feature = "keyring")]
fn failure(e: keyring::Error) -> Error {
    Error::caused("the OS keyring failed", e)
}

/// The text kept under `name`; Ok(None) when there is none.
#[cfg(feature = "keyring")]
pub(crate) fn get(name: &str) -> Result<Option<String>> {
    #[cfg(windows)]
    let read = entry(name)?.get_secret().map(|b| stored_text(&b));
    #[cfg(not(windows))]
    let read = entry(name)?.get_password();
    match read {
        Ok(text) => Ok(Some(text)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(failure(e)),
    }
}

/// Keeps `text` under `name`, replacing what was there.
#[cfg(feature = "keyring")]
pub(crate) fn put(name: &str, text: &str) -> std::result::Result<(), Refused> {
    let entry = entry(name).map_err(Refused::Failed)?;
    // Credential Manager: the text's UTF-8 bytes as the blob, as a password would be stored
    // as UTF-16 and fit only half as much (1,280 characters in 2,560 bytes).
    #[cfg(windows)]
    let stored = entry.set_secret(text.as_bytes());
    #[cfg(not(windows))]
    let stored = entry.set_password(text);
    match stored {
        Ok(()) => Ok(()),
        Err(keyring::Error::TooLong(what, max)) => Err(Refused::TooLarge(format!("the entry is {} bytes, over its limit for one {what} ({max} bytes)", text.len()))),
        Err(e) => Err(Refused::Failed(failure(e))),
    }
}

/// Removes what is kept under `name`; true when there was something.
#[cfg(feature = "keyring")]
pub(crate) fn remove(name: &str) -> Result<bool> {
    match entry(name)?.delete_credential() {
        Ok(()) => Ok(true),
        Err(keyring::Error::NoEntry) => Ok(false),
        Err(e) => Err(failure(e)),
    }
}

#[cfg(not(feature = "keyring"))]
pub(crate) fn get(_: &str) -> Result<Option<String>> {
    Ok(None)
}

#[cfg(not(feature = "keyring"))]
pub(crate) fn put(_: &str, _: &str) -> std::result::Result<(), Refused> {
    Err(Refused::Failed(Error::general("this build has no keyring support")))
}

#[cfg(not(feature = "keyring"))]
pub(crate) fn remove(_: &str) -> Result<bool> {
    Ok(false)
}

/// A Credential Manager blob as text: UTF-8 as `put` writes it, or UTF-16 as entries stored
/// as passwords (before) were.
#[cfg(all(windows, feature = "keyring"))]
fn stored_text(blob: &[u8]) -> String {
    // JSON never holds a NUL byte; UTF-16 of ASCII has one in every other byte.
    match std::str::from_utf8(blob) {
        Ok(s) if !blob.contains(&0) => s.to_string(),
        _ => String::from_utf16_lossy(&blob.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect::<Vec<u16>>()),
    }
}

/// Stores `text` under `name` as a password (UTF-16 in Credential Manager), as entries were
/// stored before `put` wrote UTF-8 blobs: for the tests that read such entries.
#[cfg(all(test, windows, feature = "keyring"))]
pub(crate) fn put_as_password(name: &str, text: &str) {
    entry(name).unwrap().set_password(text).unwrap();
}
