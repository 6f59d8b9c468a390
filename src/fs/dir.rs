//! A private directory of ours, opened once: the cache works in it through the handle
//! (on Unix openat/renameat/unlinkat), so swapping the directory or planting a link in
//! its place after the check changes nothing. Elsewhere the same calls work on paths,
//! with Windows' access-list check.

use super::{Access, Cause, Durability, FileLock, FsError, FsResult, LockError};
use std::fs::File;
#[cfg(unix)]
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) struct PrivateDir {
    path: PathBuf,
    #[cfg(unix)]
    fd: std::os::fd::OwnedFd,
}

/// Opens `path` as a directory of ours that nobody else can read or change (0700; on
/// Windows an ACL for the user alone), creating it and missing parents (0700) when
/// `create`. Refused: a link, a directory owned by someone else or writable by others at
/// any component opened inside a directory others can change (sticky `/tmp`, another
/// user's); the directory itself when it is not private. Missing and not `create`: an
/// error whose `is_not_found()` holds.
pub(crate) fn open_private_dir(path: &Path, create: bool) -> FsResult<PrivateDir> {
    #[cfg(unix)]
    {
        let (fd, meta, created) = super::unix::open_dir_walk(path, create)?;
        if created {
            // The umask may have taken bits from mkdir's 0700: set them on the handle, never through a path.
            super::unix::fchmod(&fd, 0o700).map_err(|e| FsError::os("set the permissions of", path, e))?;
        }
        super::check_private(path, &meta, true)?;
        Ok(PrivateDir { path: path.to_path_buf(), fd })
    }
    #[cfg(not(unix))]
    {
        if create && std::fs::symlink_metadata(path).is_err() {
            super::create_private_dir(path)?;
        }
        let meta = std::fs::metadata(path).map_err(|e| FsError::os("open", path, e))?;
        if !meta.is_dir() {
            return Err(FsError { op: "use", path: path.to_path_buf(), cause: Cause::Unsafe { why: "it is not a directory".into(), fix: "point it at a directory".into() } });
        }
        super::check_private(path, &meta, true)?;
        Ok(PrivateDir { path: path.to_path_buf() })
    }
}

impl PrivateDir {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the regular file `name` for reading, never through a link.
    pub(crate) fn open_file(&self, name: &str) -> FsResult<File> {
        let path = self.path.join(name);
        #[cfg(unix)]
        {
            let fd = super::unix::openat(&self.fd, name.as_ref(), libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK, 0).map_err(|e| {
                if e.raw_os_error() == Some(libc::ELOOP) { FsError { op: "open", path: path.clone(), cause: Cause::Symlink } } else { FsError::os("open", &path, e) }
            })?;
            Ok(File::from(fd))
        }
        #[cfg(not(unix))]
        super::open_nofollow(&path)
    }

    /// `fs::write_atomic` for `name` in this directory: a temp file created exclusively
    /// beside it, written, optionally synced, renamed over `name`.
    pub(crate) fn write_atomic(&self, name: &str, bytes: &[u8], access: Access, durability: Durability) -> FsResult<()> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = self.path.join(name);
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
            let tmp = format!(".{name}.{}.{nanos}.tmp", std::process::id());
            let mode = match access {
                Access::Private => 0o600,
                Access::Mode(m) => m & 0o777,
            };
            let result = (|| {
                let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
                let mut f = File::from(super::unix::openat(&self.fd, tmp.as_ref(), flags, mode).map_err(|e| FsError::os("create a temp file for", &path, e))?);
                f.set_permissions(std::fs::Permissions::from_mode(mode)).map_err(|e| FsError::os("create a temp file for", &path, e))?;
                f.write_all(bytes).map_err(|e| FsError::os("write", &path, e))?;
                if durability == Durability::Sync {
                    f.sync_all().map_err(|e| FsError::os("sync", &path, e))?;
                }
                drop(f);
                super::unix::renameat(&self.fd, tmp.as_ref(), name.as_ref()).map_err(|e| FsError::os("rename into place", &path, e))
            })();
            if result.is_err() {
                let _ = super::unix::unlinkat(&self.fd, tmp.as_ref());
            }
            result
        }
        #[cfg(not(unix))]
        super::write_atomic(&self.path.join(name), bytes, access, durability)
    }

    /// Removes `name`; `Ok(false)` when it was not there.
    pub(crate) fn remove(&self, name: &str) -> FsResult<bool> {
        #[cfg(unix)]
        {
            match super::unix::unlinkat(&self.fd, name.as_ref()) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(FsError::os("remove", &self.path.join(name), e)),
            }
        }
        #[cfg(not(unix))]
        super::remove(&self.path.join(name))
    }

    /// The names of the entries in the directory.
    pub(crate) fn list(&self) -> FsResult<Vec<String>> {
        #[cfg(unix)]
        let names = super::unix::list(&self.fd).map_err(|e| FsError::os("list", &self.path, e))?;
        #[cfg(not(unix))]
        let names: Vec<std::ffi::OsString> =
            std::fs::read_dir(&self.path).map_err(|e| FsError::os("list", &self.path, e))?.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
        Ok(names.into_iter().filter_map(|n| n.into_string().ok()).collect())
    }

    /// `fs::lock` on `name` in this directory (created 0600 if missing, never through a link).
    pub(crate) fn lock(&self, name: &str, wait: Duration, waiting: impl FnOnce()) -> Result<FileLock, LockError> {
        let path = self.path.join(name);
        #[cfg(unix)]
        {
            let fd = super::unix::openat(&self.fd, name.as_ref(), libc::O_RDWR | libc::O_CREAT | libc::O_NOFOLLOW, 0o600)
                .map_err(|e| LockError::Fs(FsError::os("open the lock", &path, e)))?;
            super::hold(File::from(fd), &path, wait, waiting)
        }
        #[cfg(not(unix))]
        super::lock(&path, wait, waiting)
    }
}

/// Where to write a tool's config file `path` (`setup`'s ~/.npmrc, ~/.kube/config, …),
/// whose directory is the user's own: a missing directory is made as `create_private_dir`
/// makes it (0700, never through a link planted on the way); an existing one is reached
/// only by `open_dir_walk`'s rules. A link at `path` is followed to its target (a dotfile
/// manager's) only when it is the user's (or root's) in a directory only they can change:
/// a link planted in a directory others can change (a sticky `/tmp`, a group- or
/// world-writable one) is refused, as writing through it would put the user's config
/// where its planter chose.
pub(crate) fn config_target(path: &Path) -> FsResult<PathBuf> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let (_, dir, _) = match super::unix::open_dir_walk(parent, false) {
            Err(e) if e.is_not_found() => {
                super::create_private_dir(parent)?;
                return Ok(path.to_path_buf());
            }
            other => other?,
        };
        let Ok(m) = std::fs::symlink_metadata(path) else { return Ok(path.to_path_buf()) };
        if !m.file_type().is_symlink() {
            return Ok(path.to_path_buf());
        }
        let me = super::unix::my_uid();
        if super::unix::others_can_change(&dir, me) || (m.uid() != me && m.uid() != 0) {
            return Err(FsError {
                op: "write through",
                path: path.to_path_buf(),
                cause: Cause::Unsafe {
                    why: "it is a link in a directory others can change, so someone else may have put it there".into(),
                    fix: format!("remove the link (or give the config a path in a directory only you can change) and run setup again; {} must be yours and writable by nobody else", parent.display()),
                },
            });
        }
        // A dangling link of the user's own is replaced by the file, as before.
        let Ok(target) = std::fs::canonicalize(path) else { return Ok(path.to_path_buf()) };
        if let Some(p) = target.parent() {
            super::unix::open_dir_walk(p, false)?;
        }
        Ok(target)
    }
    #[cfg(not(unix))]
    {
        if std::fs::symlink_metadata(parent).is_err() {
            super::create_private_dir(parent)?;
        }
        // Only a link is resolved: git is handed the path as given (not a `\\?\` one).
        if !std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Ok(path.to_path_buf());
        }
        Ok(std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()))
    }
}
