//! Refresh tokens in the OS secret store (Secret Service on Linux, Keychain on macOS,
//! Credential Manager on Windows) or 0600 files, as a profile's `storage` chooses (the
//! choice and the keyring itself are `os_keyring`'s, shared with PoP keys). One entry the keyring refuses for its size (Credential
//! Manager takes at most 2,560 bytes per secret) goes to the file alone, said on stderr,
//! and the keyring stays in use for the others. Access tokens never come here.

use crate::rt_store::{AccountKey, FileRtStore, RtStore, StoredRt};
use crate::cache::Cache;
pub(crate) use crate::os_keyring::{FALLBACK_MARKER, Place, Refused, Storage, probe};
use crate::os_keyring::{self, fall_back, private_files};
use crate::error::{Error, Result};
use crate::log::{trace, warn};

/// The store for a profile's refresh tokens.
pub(crate) fn store_for<'a>(cache: &'a Cache, storage: Storage) -> Result<Box<dyn RtStore + 'a>> {
    let file = FileRtStore { cache };
    Ok(match os_keyring::place(cache.dir(), storage)? {
        Place::File => Box::new(file),
        Place::Keyring => Box::new(Keyring),
        Place::Auto => Box::new(Auto { keyring: Keyring, file }),
    })
}

/// Refresh tokens in the OS keyring, each as its JSON under its `rt-…` key name.
pub(crate) struct Keyring;

impl Keyring {
    fn put(&self, rt: &StoredRt) -> std::result::Result<(), Refused> {
        let json = serde_json::to_string(rt).map_err(|e| Refused::Failed(Error::caused("cannot encode the refresh token entry", e)))?;
        os_keyring::put(&rt.key.name(), &json)
    }
}

impl RtStore for Keyring {
    fn load(&self, key: &AccountKey) -> Result<Option<StoredRt>> {
        Ok(os_keyring::get(&key.name())?.and_then(|json| serde_json::from_str::<StoredRt>(&json).ok()).filter(|r| r.v == 1 && r.key == *key && !r.refresh_token.expose().is_empty()))
    }
    fn save(&self, rt: &StoredRt) -> Result<()> {
        self.put(rt).map_err(|r| match r {
            Refused::TooLarge(why) => Error::general(format!("the OS keyring refused the refresh token entry: {why}")),
            Refused::Failed(e) => e,
        })
    }
    fn remove(&self, key: &AccountKey) -> Result<bool> {
        os_keyring::remove(&key.name())
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
                    warn!("the OS keyring refused one refresh token for its size ({why}); keeping that one in a {} file in {dir}, the keyring stays in use for the others", private_files());
                }
                self.file.save(rt)
            }
            Err(Refused::Failed(e)) => {
                fall_back(self.file.cache.dir(), &crate::error::one_line(&e));
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
        os_keyring::put_as_password(&key.name(), &old);
        assert_eq!(store.load(&key).unwrap().unwrap().refresh_token.expose(), "from-before");
        assert!(store.remove(&key).unwrap());
    }
}
