//! Refresh tokens in the OS secret store (Secret Service on Linux, Keychain on macOS,
//! Credential Manager on Windows), chosen by a profile's `storage`: `keyring` demands it,
//! `auto` (the default) uses it when it answers and otherwise keeps the 0600 file — and
//! says so once, remembered by a marker in the cache directory, instead of failing or
//! re-prompting on every call. Access tokens never come here: they stay in files.

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
        match Keyring::entry(key)?.get_password() {
            Ok(json) => Ok(serde_json::from_str::<StoredRt>(&json).ok().filter(|r| r.v == 1 && r.key == *key && !r.refresh_token.expose().is_empty())),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(failure(e)),
        }
    }
    #[cfg(feature = "keyring")]
    fn save(&self, rt: &StoredRt) -> Result<()> {
        let json = serde_json::to_string(rt).map_err(|e| Error::caused("cannot encode the refresh token entry", e))?;
        Keyring::entry(&rt.key)?.set_password(&json).map_err(failure)
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
        match self.keyring.save(rt) {
            Ok(()) => {
                // One copy only: a file left behind would outlive a rotation.
                let _ = self.file.remove(&rt.key);
                Ok(())
            }
            Err(e) => {
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
