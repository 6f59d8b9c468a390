//! The only code that touches token files. One JSON file per key (so a lookup reads one
//! file however many entries exist), a sidecar `.lock` file per key held across
//! re-check → acquire → store, atomic writes (temp file, fsync, rename), files 0600 and
//! the directory 0700, owned by us; anything else is refused with the fix.

use crate::error::{Error, Result};
use crate::log::{trace, warn};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Largest cache entry we will read; anything bigger is not ours.
const MAX_ENTRY: u64 = 256 * 1024;

pub(crate) struct Cache {
    dir: PathBuf,
}

/// The cache directory: ENTRA_TOKEN_CACHE_DIR, else $XDG_CACHE_HOME or the platform cache dir.
pub(crate) fn default_dir() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("ENTRA_TOKEN_CACHE_DIR").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(dirs::cache_dir)
        .map(|d| d.join("entra-token"))
        .ok_or_else(|| Error::Cache {
            path: PathBuf::from("$HOME"),
            message: "no cache directory: HOME is not set".into(),
            hint: Some("set ENTRA_TOKEN_CACHE_DIR (or XDG_CACHE_HOME), or pass --no-cache".into()),
        })
}

/// A held per-key lock; released on drop (and by the OS if the process dies).
pub(crate) struct Lock {
    _file: File,
}

impl Cache {
    /// Opens (creating 0700 if needed) and vets the directory.
    pub(crate) fn open(dir: PathBuf) -> Result<Cache> {
        if std::fs::symlink_metadata(&dir).is_err() {
            create_private_dir(&dir)?;
        }
        check_dir(&dir)?;
        Ok(Cache { dir })
    }

    /// Like `open`, but a directory that cannot be created (read-only or full file system,
    /// no permission) is a warning and `None`: the token is still answered, uncached. An
    /// existing directory that is unsafe is still an error.
    pub(crate) fn open_or_skip(dir: PathBuf) -> Result<Option<Cache>> {
        if std::fs::symlink_metadata(&dir).is_err()
            && let Err(e) = create_private_dir(&dir)
        {
            warn!("{}; answering without the cache", crate::error::one_line(&e));
            return Ok(None);
        }
        check_dir(&dir)?;
        Ok(Some(Cache { dir }))
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Reads an entry. Missing → `Ok(None)`. Corrupt or foreign-shaped → `Ok(None)` with a
    /// trace line (a miss, never a crash). Unsafe (symlink, other owner, loose mode) → error.
    pub(crate) fn read<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        let path = self.path(name);
        let mut file = match open_nofollow(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if is_symlink_error(&e) => {
                return Err(Error::Cache {
                    path,
                    message: "entry is a symlink".into(),
                    hint: Some("remove it; entra-token only reads regular files it wrote itself".into()),
                });
            }
            Err(e) => return Err(Error::Cache { path, message: format!("cannot open: {e}"), hint: None }),
        };
        let meta = file.metadata().map_err(|e| Error::Cache { path: path.clone(), message: e.to_string(), hint: None })?;
        check_private(&path, &meta, false)?;
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
        let bytes = serde_json::to_vec(value).map_err(|e| Error::general(format!("cannot encode cache entry: {e}")))?;
        write_atomic(&self.path(name), &bytes, 0o600, true)
    }

    /// Writes an entry that can simply be fetched again (an access token): atomic and
    /// private like `write`, without the fsync. Readers never see a partial file (rename);
    /// after a power loss the entry may be missing or empty, which a read treats as a miss.
    /// The fsync cost a cold answer 4–11 ms on a busy disk. Refresh tokens and anything
    /// that cannot be fetched again without a person use `write`.
    pub(crate) fn write_refetchable<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        let bytes = serde_json::to_vec(value).map_err(|e| Error::general(format!("cannot encode cache entry: {e}")))?;
        write_atomic(&self.path(name), &bytes, 0o600, false)
    }

    pub(crate) fn remove(&self, name: &str) -> Result<bool> {
        let path = self.path(name);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::Cache { path, message: format!("cannot remove: {e}"), hint: None }),
        }
    }

    /// Entry names starting with `prefix` (for status and logout; not on the hot path).
    pub(crate) fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let rd = std::fs::read_dir(&self.dir).map_err(|e| Error::Cache { path: self.dir.clone(), message: e.to_string(), hint: None })?;
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.starts_with(prefix) && n.ends_with(".json"))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Takes the per-key lock on the sidecar `NAME.lock`, waiting up to `wait`.
    pub(crate) fn lock(&self, name: &str, wait: Duration) -> Result<Lock> {
        let path = self.path(&format!("{name}.lock"));
        let file = open_lock_file(&path).map_err(|e| Error::Cache { path: path.clone(), message: format!("cannot open lock: {e}"), hint: None })?;
        let start = Instant::now();
        let mut said = false;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Lock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) => {
                    if !said {
                        trace!(1, "waiting for lock {}", path.display());
                        said = true;
                    }
                    if start.elapsed() >= wait {
                        return Err(Error::Timeout { what: format!("waiting for the cache lock {}", path.display()), after: wait });
                    }
                    std::thread::sleep(Duration::from_millis(15));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(Error::Cache { path, message: format!("cannot lock: {e}"), hint: None });
                }
            }
        }
    }
}

/// Writes `bytes` to `path` atomically with mode 0600 whatever the umask. Used for cache
/// entries and for `--file` outputs.
pub(crate) fn write_private_file(path: &Path, bytes: &[u8]) -> Result<()> {
    write_file_atomic(path, bytes, 0o600)
}

/// `write_private_file` for a path the user names (e.g. `serve --env-file`), which may sit
/// in a shared directory: refuses when `path` is a symlink, not a regular file, or owned
/// by another user, instead of replacing it. The write itself creates a new 0600 file
/// (O_EXCL) and renames it over `path`, so no symlink is ever followed.
pub(crate) fn write_private_file_checked(path: &Path, bytes: &[u8]) -> Result<()> {
    let refuse = |why: String| Error::BadInput { message: format!("{}: {why}", path.display()), hint: Some("name a file of your own in a directory of your own".into()) };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => return Err(refuse("is a symbolic link; entra-token will not write through it".into())),
        Ok(meta) if !meta.is_file() => return Err(refuse("is not a regular file".into())),
        #[cfg(unix)]
        Ok(meta) => {
            use std::os::unix::fs::MetadataExt;
            // SAFETY: geteuid has no preconditions and cannot fail.
            let me = unsafe { libc::geteuid() };
            if meta.uid() != me {
                return Err(refuse(format!("belongs to uid {}, not to you (uid {me}); entra-token will not replace it", meta.uid())));
            }
        }
        #[cfg(not(unix))]
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(refuse(e.to_string())),
    }
    write_private_file(path, bytes).map_err(|e| match e {
        Error::Cache { message, .. } => refuse(message),
        other => other,
    })
}

/// Writes `bytes` to `path` atomically (temp file in the same directory, fsync, rename)
/// with exactly `mode` whatever the umask. The config editor passes the file's own mode.
pub(crate) fn write_file_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    write_atomic(path, bytes, mode, true)
}

/// The atomic write; `sync`: fsync the data before the rename.
fn write_atomic(path: &Path, bytes: &[u8], mode: u32, sync: bool) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let tmp = dir.join(format!(".{file_name}.{}.{nanos}.tmp", std::process::id()));
    let err = |what: &str, e: std::io::Error| Error::Cache { path: path.to_path_buf(), message: format!("{what}: {e}"), hint: None };
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode & 0o777);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let result = (|| {
        let mut f = opts.open(&tmp).map_err(|e| err("cannot create temp file", e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(mode & 0o777)).map_err(|e| err("cannot set mode", e))?;
        }
        f.write_all(bytes).map_err(|e| err("cannot write", e))?;
        if sync {
            f.sync_all().map_err(|e| err("cannot sync", e))?;
        }
        std::fs::rename(&tmp, path).map_err(|e| err("cannot rename into place", e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn create_private_dir(dir: &Path) -> Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(|e| Error::Cache {
        path: dir.to_path_buf(),
        message: format!("cannot create cache directory: {e}"),
        hint: Some("set ENTRA_TOKEN_CACHE_DIR to a writable directory, or pass --no-cache".into()),
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    Ok(())
}

fn check_dir(dir: &Path) -> Result<()> {
    let meta = std::fs::metadata(dir).map_err(|e| Error::Cache { path: dir.to_path_buf(), message: e.to_string(), hint: None })?;
    if !meta.is_dir() {
        return Err(Error::Cache { path: dir.to_path_buf(), message: "not a directory".into(), hint: Some("point ENTRA_TOKEN_CACHE_DIR at a directory".into()) });
    }
    check_private(dir, &meta, true)
}

#[cfg(unix)]
pub(crate) fn check_private(path: &Path, meta: &std::fs::Metadata, is_dir: bool) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(Error::Cache {
            path: path.to_path_buf(),
            message: format!("owned by uid {}, not by you (uid {me})", meta.uid()),
            hint: Some("use a cache directory of your own (ENTRA_TOKEN_CACHE_DIR)".into()),
        });
    }
    if meta.mode() & 0o077 != 0 {
        let want = if is_dir { "700" } else { "600" };
        return Err(Error::Cache {
            path: path.to_path_buf(),
            message: format!("permissions {:o} let other users read or change it", meta.mode() & 0o777),
            hint: Some(format!("run `chmod {want} {}`", path.display())),
        });
    }
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn check_private(_: &Path, _: &std::fs::Metadata, _: bool) -> Result<()> {
    Ok(())
}

fn open_nofollow(path: &Path) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NOFOLLOW);
    }
    o.open(path)
}

fn open_lock_file(path: &Path) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    o.open(path)
}

fn is_symlink_error(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(libc::ELOOP)
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// A stable, file-name-safe key: the SHA-256 of the key material, hex, prefixed by kind.
pub(crate) fn key_name(kind: &str, material: &[&str]) -> String {
    let joined = serde_json::to_string(material).unwrap_or_default();
    let digest = ring::digest::digest(&ring::digest::SHA256, joined.as_bytes());
    let mut s = String::with_capacity(kind.len() + 1 + 40 + 5);
    s.push_str(kind);
    s.push('-');
    for b in &digest.as_ref()[..20] {
        s.push_str(&format!("{b:02x}"));
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
    fn key_names_are_stable_and_distinct() {
        assert_eq!(key_name("at", &["a", "b"]), key_name("at", &["a", "b"]));
        assert_ne!(key_name("at", &["a b"]), key_name("at", &["a", "b"]));
    }
}
