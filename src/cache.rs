//! The token store: one JSON file per key (so a lookup reads one file however many
//! entries exist) and a sidecar `.lock` file per key held across re-check → acquire →
//! store, in a private directory. Atomic writes, privacy checks and locks are `fs`'s;
//! anything unsafe is refused with the fix.

use crate::error::{Error, Result};
use crate::fs::{self, Access, Cause, Durability, FsError, LockError};
use crate::log::{trace, warn};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest cache entry we will read; anything bigger is not ours.
const MAX_ENTRY: u64 = 256 * 1024;

/// The cache directory, opened once and checked: every entry is read, written and
/// removed through its handle (`fs::PrivateDir`), so the directory cannot be swapped or
/// a link planted in its place between the check and the use.
#[derive(Clone)]
pub(crate) struct Cache {
    dir: std::sync::Arc<fs::PrivateDir>,
}
/// The cache directory: ENTRA_TOKEN_CACHE_DIR, else `entra-token` in $XDG_CACHE_HOME or the
/// platform cache dir (`%LOCALAPPDATA%` on Windows).
pub(crate) fn default_dir() -> Result<PathBuf> {
    if let Some(p) = crate::env::path(crate::env::CACHE_DIR) {
        return Ok(p);
    }
    fs::cache_home()
        .map(|d| d.join("entra-token"))
        .ok_or_else(|| Error::Cache {
            path: PathBuf::from("$HOME"),
            message: "no cache directory: HOME is not set".into(),
            hint: Some("set ENTRA_TOKEN_CACHE_DIR (or XDG_CACHE_HOME), or pass --no-cache".into()),
            source: None,
        })
}

/// A held per-key lock; released on drop (and by the OS if the process dies).
pub(crate) struct Lock {
    _held: fs::FileLock,
}

impl Cache {
    /// Opens (creating 0700 if needed) and vets the directory.
    pub(crate) fn open(dir: PathBuf) -> Result<Cache> {
        let opened = match fs::open_private_dir(&dir, false) {
            Err(e) if e.is_not_found() => fs::open_private_dir(&dir, true).map_err(|e| create_err(&dir, e))?,
            other => other.map_err(dir_err)?,
        };
        Ok(Cache { dir: std::sync::Arc::new(opened) })
    }

    /// The directory when it exists and is safe; None otherwise (nothing is created).
    pub(crate) fn open_existing(dir: &Path) -> Option<Cache> {
        fs::open_private_dir(dir, false).ok().map(|d| Cache { dir: std::sync::Arc::new(d) })
    }

    /// Like `open`, but a directory that cannot be created (read-only or full file system,
    /// no permission) is a warning and `None`: the token is still answered, uncached. An
    /// existing directory that is unsafe is still an error.
    pub(crate) fn open_or_skip(dir: PathBuf) -> Result<Option<Cache>> {
        let opened = match fs::open_private_dir(&dir, false) {
            Err(e) if e.is_not_found() => match fs::open_private_dir(&dir, true) {
                Ok(d) => d,
                Err(e @ FsError { cause: Cause::Os(_), .. }) => {
                    warn!("{}; answering without the cache", crate::error::one_line(&create_err(&dir, e)));
                    return Ok(None);
                }
                Err(e) => return Err(create_err(&dir, e)),
            },
            other => other.map_err(dir_err)?,
        };
        Ok(Some(Cache { dir: std::sync::Arc::new(opened) }))
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Reads an entry. Missing → `Ok(None)`. Corrupt or foreign-shaped → `Ok(None)` with a
    /// trace line (a miss, never a crash). Unsafe (symlink, other owner, loose mode) → error.
    pub(crate) fn read<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        let path = self.path(name);
        let mut file = match self.dir.open_file(name) {
            Ok(f) => f,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(FsError { cause: Cause::Symlink, .. }) => {
                return Err(Error::Cache {
                    path,
                    message: "entry is a symlink".into(),
                    hint: Some("remove it; entra-token only reads regular files it wrote itself".into()),
                    source: None,
                });
            }
            Err(e) => return Err(cache_err(e)),
        };
        let meta = file.metadata().map_err(|e| Error::Cache { path: path.clone(), message: String::new(), hint: None, source: Some(e.into()) })?;
        check_private(&path, &meta, false)?;
        if !meta.is_file() {
            trace!(1, "cache entry {} is not a regular file; treating as a miss", path.display());
            return Ok(None);
        }
        if meta.len() > MAX_ENTRY {
            trace!(1, "cache entry {} is too large; treating as a miss", path.display());
            return Ok(None);
        }
        let mut buf = Vec::with_capacity(meta.len() as usize);
        if let Err(e) = file.read_to_end(&mut buf) {
            trace!(1, "cache entry {} unreadable ({e}); treating as a miss", path.display());
            return Ok(None);
        }
        match serde_json::from_slice(&buf) {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                trace!(1, "cache entry {} is corrupt ({e}); treating as a miss", path.display());
                Ok(None)
            }
        }
    }

    /// Writes an entry atomically: temp file in the same dir (0600), fsync, rename.
    pub(crate) fn write<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        let bytes = serde_json::to_vec(value).map_err(|e| Error::caused("cannot encode cache entry", e))?;
        self.dir.write_atomic(name, &bytes, Access::Private, Durability::Sync).map_err(cache_err)
    }

    /// Writes an entry that can simply be fetched again (an access token): atomic and
    /// private like `write`, without the fsync. Readers never see a partial file (rename);
    /// after a power loss the entry may be missing or empty, which a read treats as a miss.
    /// The fsync cost a cold answer 4–11 ms on a busy disk. Refresh tokens and anything
    /// that cannot be fetched again without a person use `write`.
    pub(crate) fn write_refetchable<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        let bytes = serde_json::to_vec(value).map_err(|e| Error::caused("cannot encode cache entry", e))?;
        self.dir.write_atomic(name, &bytes, Access::Private, Durability::Refetchable).map_err(cache_err)
    }

    /// Reads an entry [`write_sealed`](Self::write_sealed) wrote (or a plain one): a seal
    /// this user cannot open here is a miss.
    pub(crate) fn read_sealed<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        Ok(self.read::<serde_json::Value>(name)?.and_then(crate::at_rest::from_file))
    }

    /// Writes an entry holding a refresh token: sealed at rest where the OS can (DPAPI on
    /// Windows, `at_rest`), else as `write` does.
    pub(crate) fn write_sealed<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        self.write(name, &crate::at_rest::to_file(value)?)
    }

    pub(crate) fn remove(&self, name: &str) -> Result<bool> {
        self.dir.remove(name).map_err(cache_err)
    }

    /// Entry names starting with `prefix` (for status and logout; not on the hot path).
    pub(crate) fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut names: Vec<String> = self.dir.list().map_err(cache_err)?.into_iter().filter(|n| n.starts_with(prefix) && n.ends_with(".json")).collect();
        names.sort();
        Ok(names)
    }

    /// Takes the per-key lock on the sidecar `NAME.lock`, waiting up to `wait`.
    pub(crate) fn lock(&self, name: &str, wait: Duration) -> Result<Lock> {
        let lock = format!("{name}.lock");
        let path = self.path(&lock);
        match self.dir.lock(&lock, wait, || trace!(1, "waiting for lock {}", path.display())) {
            Ok(held) => Ok(Lock { _held: held }),
            Err(LockError::TimedOut) => Err(Error::Timeout { what: format!("waiting for the cache lock {}", path.display()), after: wait }),
            Err(LockError::Fs(e)) => Err(cache_err(e)),
        }
    }
}

/// `signouts.json`: a new random value at every `logout` (`Cache::sign_out`), read by a
/// fetch when it takes its key's lock and again when it stores: a changed value means a
/// logout ran meanwhile, and the fetched token is not kept (see `tokens::store`).
const SIGN_OUTS: &str = "signouts.json";

impl Cache {
    /// The current sign-out generation (None before any logout, or when unreadable).
    pub(crate) fn sign_out_generation(&self) -> Option<String> {
        let v = self.read::<serde_json::Value>(SIGN_OUTS).ok().flatten()?;
        v.get("generation")?.as_str().map(str::to_string)
    }

    /// Starts a new sign-out generation: every fetch under way now keeps nothing it fetched
    /// (`logout` calls it after removing the sign-in and before removing the tokens).
    pub(crate) fn sign_out(&self) -> Result<()> {
        let mut b = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).map_err(|_| Error::general("the OS random number generator failed"))?;
        let generation: String = b.iter().map(|x| format!("{x:02x}")).collect();
        self.write(SIGN_OUTS, &serde_json::json!({ "v": 1, "generation": generation }))
    }
}

impl Cache {
    /// Removes the `.lock` sidecars whose entry is gone (after `logout`): an empty file
    /// named after a key still says a token was cached for it. One someone holds (a fetch
    /// under way) is theirs and stays; the rest are taken without waiting and removed while
    /// held. A process already waiting on a removed lock then runs beside one that makes
    /// it anew: at worst one token fetched twice, each written whole. Best effort: returns
    /// how many went.
    pub(crate) fn sweep_locks(&self) -> usize {
        let Ok(names) = self.dir.list() else { return 0 };
        let mut removed = 0;
        for lock in names.iter().filter(|n| n.ends_with(".lock")) {
            let entry = lock.trim_end_matches(".lock");
            if names.iter().any(|n| n == entry) {
                continue;
            }
            let Ok(_held) = self.dir.lock(lock, Duration::ZERO, || {}) else { continue };
            removed += self.dir.remove(lock).unwrap_or(false) as usize;
        }
        removed
    }
}

/// An `fs` failure on a cache path, as the cache error users know (hint included).
fn cache_err(e: FsError) -> Error {
    let hint = e.hint();
    let message = format!("cannot {}", e.op);
    match e.cause {
        // The OS's own error stays whole under ours.
        Cause::Os(os) => Error::Cache { path: e.path, message, hint, source: Some(os.into()) },
        _ => Error::Cache { message: format!("{message}: {}", e.cause_text()), path: e.path, hint, source: None },
    }
}

/// A cache directory that could not be created, with the way out.
fn create_err(dir: &Path, e: FsError) -> Error {
    match e.cause {
        Cause::Os(os) => Error::Cache {
            path: dir.to_path_buf(),
            message: "cannot create cache directory".into(),
            hint: Some("set ENTRA_TOKEN_CACHE_DIR to a writable directory, or pass --no-cache".into()),
            source: Some(os.into()),
        },
        _ => dir_err(e),
    }
}

/// A cache directory refused (a link, someone else's, open to others), with the fix.
fn dir_err(e: FsError) -> Error {
    let hint = e.hint().map(|h| if h.contains(crate::env::CACHE_DIR) { h } else { format!("{h}; or set {} to a directory of your own", crate::env::CACHE_DIR) });
    match e.cause {
        Cause::Os(os) => Error::Cache { path: e.path, message: format!("cannot {}", e.op), hint: None, source: Some(os.into()) },
        _ => Error::Cache { message: e.cause_text(), path: e.path, hint, source: None },
    }
}

/// Refuses a cache path others could read or change (the message and fix of `fs`).
pub(crate) fn check_private(path: &Path, meta: &std::fs::Metadata, is_dir: bool) -> Result<()> {
    fs::check_private(path, meta, is_dir).map_err(|e| {
        let hint = e.hint();
        Error::Cache { message: e.cause_text(), path: e.path, hint, source: None }
    })
}

/// The token type of a plain access token (`Binding::token_type`).
pub(crate) const BEARER: &str = "bearer";
/// The token type of a registry's refresh token from ACR's exchange (`Binding::registry`
/// names the registry): a refresh token, so its entries are sealed at rest.
pub(crate) const ACR_REFRESH_TOKEN: &str = "acr_refresh_token";

/// What a cached token was minted for, stored in its entry and compared with the request
/// on every read: an entry answers only the request it was stored for, whatever its file
/// is called (a file renamed or copied onto another's name is a miss, never an answer).
/// Key-bound token kinds (`ssh-cert`, `pop`) name their key in `key_id`; a registry's
/// refresh token (`acr_refresh_token`) names its registry, beside the Entra request it
/// was exchanged for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Binding {
    /// `bearer`, a key-bound kind (`ssh-cert`, `pop`), or `acr_refresh_token`.
    pub token_type: String,
    /// The public key a key-bound token is bound to (its `kid`); None for bearer tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The authority host (`-` for managed identity: the platform's).
    pub authority: String,
    pub tenant: String,
    pub client_id: String,
    /// Which principal of that client (`flows::identity`'s `who`).
    pub identity: String,
    /// `v1` or `v2`.
    pub endpoint: String,
    /// The scopes or resource, as the key sees them (`Target::key`).
    pub target: String,
    /// The client capabilities the token was asked for with (`cp1`: a long-lived CAE
    /// token); None for a profile that declares none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<String>,
    /// The registry (host[:port], lower case) whose refresh token ACR's exchange gave for
    /// the Entra token the rest describes; None for every token Entra issues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
}

impl Binding {
    /// The entry's file name: a digest of everything it is bound to.
    pub(crate) fn name(&self) -> String {
        let key_id = self.key_id.as_deref().unwrap_or("");
        let mut parts = vec!["3", self.token_type.as_str(), key_id, &self.authority, &self.tenant, &self.client_id, &self.identity, &self.endpoint, &self.target];
        // Without capabilities or a registry the name is what it always was: no entry is orphaned.
        if let Some(c) = &self.capabilities {
            parts.extend(["capabilities", c.as_str()]);
        }
        if let Some(r) = &self.registry {
            parts.extend(["registry", r.as_str()]);
        }
        key_name("at", &parts)
    }

    /// Does its entry hold a refresh token (ACR's), sealed at rest (`Cache::write_sealed`)?
    pub(crate) fn sealed(&self) -> bool {
        self.token_type == ACR_REFRESH_TOKEN
    }

    /// Is a stored entry's binding (`stored`) this one? Says why not on `-v`.
    pub(crate) fn admits(&self, stored: Option<&Binding>, name: &str) -> bool {
        match stored {
            Some(b) if b == self => true,
            Some(b) => {
                trace!(1, "cache entry {name} was stored for another request ({}); treating as a miss", b.differs_in(self));
                false
            }
            None => {
                trace!(1, "cache entry {name} does not say what it was stored for; treating as a miss");
                false
            }
        }
    }

    /// The first part in which two bindings differ (for the trace line; names no token).
    fn differs_in(&self, other: &Binding) -> &'static str {
        if self.token_type != other.token_type || self.key_id != other.key_id {
            "token type"
        } else if self.registry != other.registry {
            "registry"
        } else if self.capabilities != other.capabilities {
            "client capabilities"
        } else if self.authority != other.authority {
            "authority"
        } else if self.tenant != other.tenant {
            "tenant"
        } else if self.client_id != other.client_id {
            "client"
        } else if self.identity != other.identity {
            "identity"
        } else if self.endpoint != other.endpoint {
            "endpoint"
        } else {
            "scopes or resource"
        }
    }
}

/// A stable, file-name-safe key: the SHA-256 of the key material, hex, prefixed by kind.
pub(crate) fn key_name(kind: &str, material: &[&str]) -> String {
    let joined = serde_json::to_string(material).unwrap_or_default();
    let digest = ring::digest::digest(&ring::digest::SHA256, joined.as_bytes());
    let mut s = String::with_capacity(kind.len() + 1 + 40 + 5);
    s.push_str(kind);
    s.push('-');
    // Two table lookups per byte: `format!("{b:02x}")` per byte was a fifth of a cached
    // answer's own instructions (callgrind).
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in &digest.as_ref()[..20] {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s.push_str(".json");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> PathBuf {
        std::env::temp_dir().join(format!("et-cache-{}-{}", std::process::id(), rand_suffix()))
    }
    fn rand_suffix() -> u64 {
        let mut b = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
        u64::from_le_bytes(b)
    }

    #[test]
    fn round_trip_and_modes() {
        let dir = tmp();
        let c = Cache::open(dir.clone()).unwrap();
        let name = key_name("at", &["a", "b"]);
        c.write(&name, &serde_json::json!({"x": 1})).unwrap();
        let v: serde_json::Value = c.read(&name).unwrap().unwrap();
        assert_eq!(v["x"], 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
            assert_eq!(std::fs::metadata(dir.join(&name)).unwrap().mode() & 0o777, 0o600);
        }
        std::fs::write(dir.join("at-corrupt.json"), b"{\"x\":").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.join("at-corrupt.json"), std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(c.read::<serde_json::Value>("at-corrupt.json").unwrap().is_none());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn refetchable_writes_are_private_and_atomic_too() {
        let dir = tmp();
        let c = Cache::open(dir.clone()).unwrap();
        let name = key_name("at", &["refetchable"]);
        c.write_refetchable(&name, &serde_json::json!({"x": 1})).unwrap();
        c.write_refetchable(&name, &serde_json::json!({"x": 2})).unwrap();
        let v: serde_json::Value = c.read(&name).unwrap().unwrap();
        assert_eq!(v["x"], 2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            assert_eq!(std::fs::metadata(dir.join(&name)).unwrap().mode() & 0o777, 0o600);
        }
        // No temp file is left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_binding_admits_only_itself_and_names_each_token_type_apart() {
        let bearer = Binding {
            token_type: BEARER.into(),
            key_id: None,
            authority: "https://login.microsoftonline.com".into(),
            tenant: "t".into(),
            client_id: "c".into(),
            identity: "app".into(),
            endpoint: "v2".into(),
            target: "https://graph.microsoft.com/.default".into(),
            capabilities: None,
            registry: None,
        };
        // A cp1 (long-lived) token and a plain one never answer for each other; a binding
        // without capabilities keeps the name it had before they were recorded.
        let cae = Binding { capabilities: Some("cp1".into()), ..bearer.clone() };
        assert!(!bearer.admits(Some(&cae), "n") && !cae.admits(Some(&bearer), "n"));
        assert_ne!(bearer.name(), cae.name());
        assert_eq!(bearer.name(), key_name("at", &["3", BEARER, "", &bearer.authority, "t", "c", "app", "v2", &bearer.target]));
        let ssh = Binding { token_type: "ssh-cert".into(), key_id: Some("kid".into()), ..bearer.clone() };
        let arm = Binding { target: "https://management.azure.com//.default".into(), ..bearer.clone() };
        assert!(bearer.admits(Some(&bearer.clone()), "n"));
        assert!(!bearer.admits(None, "n"), "an entry that does not say what it is for is a miss");
        assert!(!bearer.admits(Some(&arm), "n"));
        assert!(!bearer.admits(Some(&ssh), "n"));
        assert_ne!(bearer.name(), ssh.name());
        assert_ne!(bearer.name(), arm.name());
        assert_ne!(ssh.name(), Binding { key_id: Some("other".into()), ..ssh.clone() }.name());
        // A registry's token for the same Entra request: a name and an answer of its own,
        // and one per registry.
        let acr = Binding { token_type: ACR_REFRESH_TOKEN.into(), registry: Some("a.azurecr.io".into()), ..bearer.clone() };
        let other = Binding { registry: Some("b.azurecr.io".into()), ..acr.clone() };
        assert!(!bearer.admits(Some(&acr), "n") && !acr.admits(Some(&bearer), "n") && !acr.admits(Some(&other), "n"));
        assert_eq!(acr.differs_in(&other), "registry");
        assert!(acr.sealed() && !bearer.sealed() && !ssh.sealed());
        let names = [bearer.name(), acr.name(), other.name(), Binding { registry: None, ..acr.clone() }.name()];
        assert!(names.iter().enumerate().all(|(i, n)| names[i + 1..].iter().all(|m| m != n)), "{names:?}");
    }

    #[test]
    fn key_names_are_stable_and_distinct() {
        assert_eq!(key_name("at", &["a", "b"]), key_name("at", &["a", "b"]));
        // SHA-256 of `["a","b"]`, its first 20 bytes in lower-case hex: names on disk never change.
        assert_eq!(key_name("at", &["a", "b"]), "at-0473ef2dc0d324ab659d3580c1134e9d81203590.json");
        assert_ne!(key_name("at", &["a b"]), key_name("at", &["a", "b"]));
    }
}
