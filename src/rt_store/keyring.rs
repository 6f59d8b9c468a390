//! Refresh tokens in the OS secret store (Secret Service on Linux, Keychain on macOS,
//! Credential Manager on Windows), chosen by a profile's `storage`: `keyring` demands it,
//! `auto` (the default) uses it when it answers and otherwise keeps the 0600 file — and
//! says so once, remembered by a marker in the cache directory, instead of failing or
//! re-prompting on every call. One entry the keyring refuses for its size (Credential
//! Manager takes at most 2,560 bytes per secret) goes to the file alone, said on stderr,
//! and the keyring stays in use for the others. Access tokens never come here.

use crate::rt_store::{AccountKey, FileRtStore, RtStore, StoredRt};
use crate::cache::Cache;
pub(crate) use crate::config::Storage;
use crate::error::{Error, Result};
use crate::log::{trace, warn};

/// The keyring's service name; each refresh token's user name is its `rt-…` key name.
#[cfg(feature = "keyring")]
const SERVICE: &str = "entra-token";
/// In the cache directory: `auto` found no usable keyring here; holds the reason.
pub(crate) const FALLBACK_MARKER: &str = "keyring-unavailable";

/// The store for a profile's refresh tokens.
pub(crate) fn store_for<'a>(cache: &'a Cache, storage: Storage) -> Result<Box<dyn RtStore + 'a>> {
    let file = FileRtStore { cache };
    match storage {
        Storage::File => Ok(Box::new(file)),
        Storage::Keyring => {
            let k = Keyring::open().map_err(|why| {
                Error::bad_input_hint(format!("storage = \"keyring\", but no OS secret store is usable here ({why})"), "start a Secret Service (e.g. gnome-keyring), or set storage = \"auto\" or \"file\"")
            })?;
            Ok(Box::new(k))
        }
        Storage::Auto => {
            if cache.dir().join(FALLBACK_MARKER).exists() {
                return Ok(Box::new(file));
            }
            match Keyring::open() {
                Ok(keyring) => Ok(Box::new(Auto { keyring, file })),
                Err(why) => {
                    fall_back(cache, &why);
                    Ok(Box::new(file))
                }
            }
        }
    }
}

/// Whether the OS secret store answers here (for `doctor`); Err says why not. Read-only.
pub(crate) fn probe() -> std::result::Result<(), String> {
    Keyring::open().map(|_| ())
}

/// Records (and says, once) that refresh tokens stay in files in this cache directory.
fn fall_back(cache: &Cache, why: &str) {
    let marker = cache.dir().join(FALLBACK_MARKER);
    if marker.exists() {
        return;
    }
    warn!(
        "no OS secret store is usable here ({why}); keeping refresh tokens in {} files in {} (said once; delete {} to try again, or set storage = \"file\")",
        if cfg!(windows) { "DPAPI-encrypted, user-only" } else { "0600" },
        cache.dir().display(),
        marker.display()
    );
    if let Err(e) = crate::fs::write_atomic(&marker, format!("{why}\n").as_bytes(), crate::fs::Access::Private, crate::fs::Durability::Sync) {
        trace!(1, "{e}");
    }
}

/// The OS keyring through the `keyring` crate.
pub(crate) struct Keyring;

#[cfg(feature = "keyring")]
impl Keyring {
    /// A keyring that answers: a lookup of an entry that does not exist must come back
    /// as "no entry", not as a platform failure.
    fn open() -> std::result::Result<Keyring, String> {
        if let Some(why) = no_session_bus() {
            return Err(why);
        }
        match keyring::Entry::new(SERVICE, "probe").and_then(|e| e.get_password()) {
            Ok(_) | Err(keyring::Error::NoEntry) => Ok(Keyring),
            // libdbus's words for "there is no session bus" (it tried to autolaunch one).
            Err(e) if e.to_string().contains("autolaunch") => Err(NO_SECRET_SERVICE.into()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn entry(key: &AccountKey) -> Result<keyring::Entry> {
        keyring::Entry::new(SERVICE, &key.name()).map_err(failure)
    }
}

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

/// Why the keyring did not take an entry: this entry's size (the others may still fit),
/// or the keyring itself.
enum Refused {
    TooLarge(String),
    Failed(Error),
}

impl Keyring {
    #[cfg(feature = "keyring")]
    fn put(&self, rt: &StoredRt) -> std::result::Result<(), Refused> {
        let json = serde_json::to_string(rt).map_err(|e| Refused::Failed(Error::caused("cannot encode the refresh token entry", e)))?;
        let entry = Keyring::entry(&rt.key).map_err(Refused::Failed)?;
        // Credential Manager: the JSON's UTF-8 bytes as the blob, as a password would be
        // stored as UTF-16 and fit only half as much (1,280 characters in 2,560 bytes).
        #[cfg(windows)]
        let stored = entry.set_secret(json.as_bytes());
        #[cfg(not(windows))]
        let stored = entry.set_password(&json);
        match stored {
            Ok(()) => Ok(()),
            Err(keyring::Error::TooLong(what, max)) => Err(Refused::TooLarge(format!("the entry is {} bytes, over its limit for one {what} ({max} bytes)", json.len()))),
            Err(e) => Err(Refused::Failed(failure(e))),
        }
    }
    #[cfg(not(feature = "keyring"))]
    fn put(&self, _: &StoredRt) -> std::result::Result<(), Refused> {
        Err(Refused::Failed(Error::general("this build has no keyring support")))
    }
}

/// A Credential Manager blob as text: UTF-8 as `put` writes it, or UTF-16 as entries
/// stored as passwords (before) were.
#[cfg(all(windows, feature = "keyring"))]
fn stored_text(blob: &[u8]) -> String {
    // JSON never holds a NUL byte; UTF-16 of ASCII has one in every other byte.
    match std::str::from_utf8(blob) {
        Ok(s) if !blob.contains(&0) => s.to_string(),
        _ => String::from_utf16_lossy(&blob.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect::<Vec<u16>>()),
    }
}

#[cfg(feature = "keyring")]
fn failure(e: keyring::Error) -> Error {
    Error::caused("the OS keyring failed", e)
}

#[cfg(not(feature = "keyring"))]
impl Keyring {
    fn open() -> std::result::Result<Keyring, String> {
        Err("this build has no keyring support".into())
    }
}

impl RtStore for Keyring {
    #[cfg(feature = "keyring")]
    fn load(&self, key: &AccountKey) -> Result<Option<StoredRt>> {
        #[cfg(windows)]
        let read = Keyring::entry(key)?.get_secret().map(|b| stored_text(&b));
        #[cfg(not(windows))]
        let read = Keyring::entry(key)?.get_password();
        match read {
            Ok(json) => Ok(serde_json::from_str::<StoredRt>(&json).ok().filter(|r| r.v == 1 && r.key == *key && !r.refresh_token.expose().is_empty())),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(failure(e)),
        }
    }
    #[cfg(feature = "keyring")]
    fn save(&self, rt: &StoredRt) -> Result<()> {
        self.put(rt).map_err(|r| match r {
            Refused::TooLarge(why) => Error::general(format!("the OS keyring refused the refresh token entry: {why}")),
            Refused::Failed(e) => e,
        })
    }
    #[cfg(feature = "keyring")]
    fn remove(&self, key: &AccountKey) -> Result<bool> {
        match Keyring::entry(key)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(failure(e)),
        }
    }
    #[cfg(not(feature = "keyring"))]
    fn load(&self, _: &AccountKey) -> Result<Option<StoredRt>> {
        Ok(None)
    }
    #[cfg(not(feature = "keyring"))]
    fn save(&self, _: &StoredRt) -> Result<()> {
        Err(Error::general("this build has no keyring support"))
    }
    #[cfg(not(feature = "keyring"))]
    fn remove(&self, _: &AccountKey) -> Result<bool> {
        Ok(false)
    }
    fn describe(&self) -> String {
        "the OS keyring".into()
    }
}

/// `auto` with a keyring that answered: the keyring first, files as the fallback (and
/// for refresh tokens stored before the keyring was there).
struct Auto<'a> {
    keyring: Keyring,
    file: FileRtStore<'a>,
}

impl RtStore for Auto<'_> {
    fn load(&self, key: &AccountKey) -> Result<Option<StoredRt>> {
        match self.keyring.load(key) {
            Ok(Some(rt)) => Ok(Some(rt)),
            Ok(None) => self.file.load(key),
            Err(e) => {
                trace!(1, "{}; reading the file store", crate::error::one_line(&e));
                self.file.load(key)
            }
        }
    }
    fn save(&self, rt: &StoredRt) -> Result<()> {
        match self.keyring.put(rt) {
            Ok(()) => {
                // One copy only: a file left behind would outlive a rotation.
                let _ = self.file.remove(&rt.key);
                Ok(())
            }
            // This entry alone goes to the file; the keyring keeps serving the others.
            Err(Refused::TooLarge(why)) => {
                let already = self.file.load(&rt.key).ok().flatten().is_some();
                // A smaller copy from before would be read first (load tries the keyring
                // first) and outlive this rotation.
                if let Err(e) = self.keyring.remove(&rt.key) {
                    warn!("could not remove the previous refresh token of this account from the OS keyring ({})", crate::error::one_line(&e));
                }
                let dir = self.file.cache.dir().display();
                if already {
                    trace!(1, "this refresh token is too large for the OS keyring ({why}); kept in its file in {dir}");
                } else {
                    warn!(
                        "the OS keyring refused one refresh token for its size ({why}); keeping that one in a {} file in {dir}, the keyring stays in use for the others",
                        if cfg!(windows) { "DPAPI-encrypted, user-only" } else { "0600" }
                    );
                }
                self.file.save(rt)
            }
            Err(Refused::Failed(e)) => {
                fall_back(self.file.cache, &crate::error::one_line(&e));
                self.file.save(rt)
            }
        }
    }
    fn remove(&self, key: &AccountKey) -> Result<bool> {
        let k = self.keyring.remove(key).unwrap_or(false);
        Ok(self.file.remove(key)? || k)
    }
    fn describe(&self) -> String {
        "the OS keyring".into()
    }
}

#[cfg(all(test, windows, feature = "keyring"))]
mod tests {
    use super::*;
    use crate::rt_store::AccountKey;
    use crate::secret::Secret;

    fn rt(key: &AccountKey, token: String) -> StoredRt {
        StoredRt { v: 1, refresh_token: Secret::new(token), foci: None, key: key.clone(), updated_at: 0 }
    }

    /// Credential Manager (under Wine here) refuses a secret over 2,560 bytes: that one
    /// entry goes to its DPAPI-sealed file, nothing marks the keyring unusable, and the
    /// next entry that fits (as UTF-8, up to 2,560 bytes) goes back to the keyring (and the
    /// file copy is removed). An entry stored as a UTF-16 password before is still read.
    #[test]
    fn an_entry_too_large_for_credential_manager_goes_to_its_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path().join("cache")).unwrap();
        let key = AccountKey { authority: "https://login.test".into(), tenant: "t".into(), client_id: "c".into(), home_account_id: format!("size-{}.t", std::process::id()) };
        let store = store_for(&cache, Storage::Auto).unwrap();
        assert_eq!(store.describe(), "the OS keyring", "Credential Manager does not answer under this Wine");
        let big = "R".repeat(3000);
        store.save(&rt(&key, big.clone())).unwrap();
        assert!(!cache.dir().join(FALLBACK_MARKER).exists(), "one large entry marked the whole keyring unusable");
        assert_eq!(Keyring.load(&key).unwrap().map(|r| r.refresh_token.expose().clone()), None);
        let file: serde_json::Value = cache.read(&key.name()).unwrap().expect("the large entry's file");
        assert!(file.get("dpapi").is_some(), "the file is not DPAPI-sealed: {file}");
        assert_eq!(store.load(&key).unwrap().unwrap().refresh_token.expose(), &big);
        // A new store (the next process) still uses the keyring, and an entry that fits goes
        // there: 2,000 bytes, more than Credential Manager's 1,280 UTF-16 characters.
        let store = store_for(&cache, Storage::Auto).unwrap();
        let fits = "f".repeat(2000);
        store.save(&rt(&key, fits.clone())).unwrap();
        assert_eq!(Keyring.load(&key).unwrap().unwrap().refresh_token.expose(), &fits);
        assert!(cache.read::<serde_json::Value>(&key.name()).unwrap().is_none(), "the file copy outlived the move back");
        // And large again: the keyring's smaller copy must not be read first.
        store.save(&rt(&key, big.clone())).unwrap();
        assert_eq!(Keyring.load(&key).unwrap().map(|r| r.refresh_token.expose().clone()), None);
        assert_eq!(store.load(&key).unwrap().unwrap().refresh_token.expose(), &big);
        assert!(store.remove(&key).unwrap());
        assert!(store.load(&key).unwrap().is_none());
        let old = serde_json::to_string(&rt(&key, "from-before".into())).unwrap();
        keyring::Entry::new(SERVICE, &key.name()).unwrap().set_password(&old).unwrap();
        assert_eq!(store.load(&key).unwrap().unwrap().refresh_token.expose(), "from-before");
        assert!(store.remove(&key).unwrap());
    }
}
