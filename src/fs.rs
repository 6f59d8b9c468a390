//! The one place that touches the file system for files we own: atomic writes, private
//! directories, owner/permission checks, no-follow opens and file locks, with errors that
//! name the operation, the path and the OS error. POSIX modes and Windows ACLs differ only
//! here (and in `fs/windows.rs`); everything above asks "is this private?".

mod dir;
pub(crate) mod program;
mod trusted;
#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;

pub(crate) use dir::{PrivateDir, config_target, open_private_dir};
pub(crate) use trusted::{check_trusted_file, open_trusted, read_trusted, read_users_file, read_users_file_written, trusted_error};

use crate::env;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What went wrong, on which path, doing what. Renders as one line:
/// `cannot OP PATH: CAUSE`.
#[derive(Debug)]
pub(crate) struct FsError {
    pub(crate) op: &'static str,
    pub(crate) path: PathBuf,
    pub(crate) cause: Cause,
}

#[derive(Debug)]
pub(crate) enum Cause {
    /// The OS refused or failed.
    Os(io::Error),
    /// A symbolic link (or other reparse point) where we only accept a regular file.
    Symlink,
    /// It exists but others could read or change it, or it is someone else's.
    Unsafe { why: String, fix: String },
}

pub(crate) type FsResult<T> = std::result::Result<T, FsError>;

impl FsError {
    fn os(op: &'static str, path: &Path, e: io::Error) -> FsError {
        FsError { op, path: path.to_path_buf(), cause: Cause::Os(e) }
    }
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(&self.cause, Cause::Os(e) if e.kind() == io::ErrorKind::NotFound)
    }
    /// What the cause says, without the operation and path (for callers that name those).
    pub(crate) fn cause_text(&self) -> String {
        match &self.cause {
            Cause::Os(e) => e.to_string(),
            Cause::Symlink => "it is a symlink".into(),
            Cause::Unsafe { why, .. } => why.clone(),
        }
    }
    /// The fix to suggest, when there is one.
    pub(crate) fn hint(&self) -> Option<String> {
        match &self.cause {
            Cause::Os(_) => None,
            Cause::Symlink => Some("remove it; entra-token only reads regular files it wrote itself".into()),
            Cause::Unsafe { fix, .. } => Some(fix.clone()),
        }
    }
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot {} {}: {}", self.op, self.path.display(), self.cause_text())
    }
}

impl std::error::Error for FsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.cause {
            Cause::Os(e) => Some(e),
            _ => None,
        }
    }
}

/// The per-user base directories: config (`%APPDATA%` on Windows, `$XDG_CONFIG_HOME` or
/// `~/.config` elsewhere) and cache (`%LOCALAPPDATA%`, `$XDG_CACHE_HOME` or `~/.cache`).
/// Windows reads the variables first, as Windows programs do, so they can be redirected.
pub(crate) fn config_home() -> Option<PathBuf> {
    env::path(env::XDG_CONFIG_HOME).or_else(|| if cfg!(windows) { env::path(env::APPDATA) } else { None }).or_else(dirs::config_dir)
}

/// See [`config_home`].
pub(crate) fn cache_home() -> Option<PathBuf> {
    env::path(env::XDG_CACHE_HOME).or_else(|| if cfg!(windows) { env::path(env::LOCALAPPDATA) } else { None }).or_else(dirs::cache_dir)
}

/// How a file written by [`write_atomic`] may be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// The user only (0600; on Windows a protected ACL granting the user alone).
    Private,
    /// Exactly this POSIX mode (a config file keeps its own); Windows inherits the folder's ACL.
    Mode(u32),
}

/// Whether the data must be on disk before the rename makes it visible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Durability {
    /// fsync before the rename: survives a power loss (refresh tokens, config, outputs).
    Sync,
    /// No fsync: a power loss may leave the file missing or empty, never torn (entries
    /// that can simply be fetched again; the fsync cost a cold answer 4–11 ms).
    Refetchable,
}

/// Writes `bytes` to `path` atomically: a temp file beside it, written, optionally synced,
/// then renamed over `path`. Readers see the old file or the new one, never a mix; a
/// reader holding the old file open keeps reading the old bytes. On Windows a rename
/// over a file another program holds without delete sharing is retried for a while.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], access: Access, durability: Durability) -> FsResult<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let tmp = dir.join(format!(".{file_name}.{}.{nanos}.tmp", std::process::id()));
    let result = (|| {
        let mut f = create_new(&tmp, access).map_err(|e| FsError::os("create a temp file for", path, e))?;
        f.write_all(bytes).map_err(|e| FsError::os("write", path, e))?;
        if durability == Durability::Sync {
            f.sync_all().map_err(|e| FsError::os("sync", path, e))?;
        }
        drop(f);
        replace(&tmp, path).map_err(|e| FsError::os("rename into place", path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `write_atomic` (private, synced) to a path the user names, which may sit in a shared
/// directory (`serve --env-file /tmp/x`): refuses when `path` is a symbolic link, not a
/// regular file, or someone else's, instead of replacing it. The write creates a new
/// file exclusively and renames it over `path`, so no link is ever followed.
pub(crate) fn write_private_at(path: &Path, bytes: &[u8]) -> FsResult<()> {
    let refuse = |why: String| FsError { op: "write", path: path.to_path_buf(), cause: Cause::Unsafe { why, fix: "name a file of your own in a directory of your own".into() } };
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => return Err(FsError { op: "write", path: path.to_path_buf(), cause: Cause::Symlink }),
        Ok(m) if !m.is_file() => return Err(refuse("it is not a regular file".into())),
        Ok(m) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                // SAFETY: geteuid has no preconditions and cannot fail.
                let me = unsafe { libc::geteuid() };
                if m.uid() != me {
                    return Err(refuse(format!("it belongs to uid {}, not to you (uid {me}); entra-token will not replace it", m.uid())));
                }
            }
            #[cfg(not(unix))]
            let _ = m;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(FsError::os("write", path, e)),
    }
    write_atomic(path, bytes, Access::Private, Durability::Sync)
}

/// Creates `tmp` exclusively with the access asked for, whatever the umask.
fn create_new(tmp: &Path, access: Access) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    let mode = match access {
        Access::Private => 0o600,
        Access::Mode(m) => m & 0o777,
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        opts.mode(mode);
        let f = opts.open(tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        Ok(f)
    }
    #[cfg(windows)]
    {
        let _ = mode;
        let f = opts.open(tmp)?;
        if access == Access::Private {
            windows::make_private(tmp, false)?;
        }
        Ok(f)
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = mode;
        opts.open(tmp)
    }
}

/// Renames `from` over `to`. POSIX rename replaces even an open file, and so does std's on
/// Windows 10+ with NTFS (POSIX-semantics rename, readers open with delete sharing); older
/// Windows and Wine refuse while another handle holds the file: readers' brief opens are
/// waited out (retried every millisecond for two seconds, so even a reader re-opening the
/// file in a tight loop leaves a gap to land in), so readers never see the entry missing. A handle held longer
/// (a program reading it, a virus scanner) is got round: the old file is renamed aside
/// (allowed while its readers share delete, as std opens files), the new one takes its
/// name, and the old one goes once closed; a reader in that instant finds no file, a
/// cache miss, never a torn entry.
fn replace(from: &Path, to: &Path) -> io::Result<()> {
    let start = Instant::now();
    loop {
        match std::fs::rename(from, to) {
            Ok(()) => return Ok(()),
            Err(e) if cfg!(windows) && is_sharing_refusal(&e) && start.elapsed() < Duration::from_secs(2) => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) if cfg!(windows) && is_sharing_refusal(&e) => {
                let aside = from.with_extension("old");
                if std::fs::rename(to, &aside).is_err() {
                    return Err(e);
                }
                let r = std::fs::rename(from, to);
                if r.is_err() {
                    let _ = std::fs::rename(&aside, to);
                }
                let _ = std::fs::remove_file(&aside);
                return r;
            }
            Err(e) => return Err(e),
        }
    }
}

/// ERROR_ACCESS_DENIED (5) or ERROR_SHARING_VIOLATION (32): another handle is in the way.
fn is_sharing_refusal(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(5) | Some(32))
}

/// Creates `dir` (and missing parents) with the last component private to the user:
/// 0700, or on Windows a protected ACL granting the user alone, inherited by what is
/// created inside. On Unix the path is walked as `open_private_dir` walks it (no link,
/// other owner or loose mode inside a directory others can change) and the mode is set
/// on the new directory's handle, never through a link; an existing `dir` must be ours
/// (or root's) and writable by nobody else.
pub(crate) fn create_private_dir(dir: &Path) -> FsResult<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let (fd, meta, created) = unix::open_dir_walk(dir, true)?;
        if created {
            return unix::fchmod(&fd, 0o700).map_err(|e| FsError::os("set the permissions of", dir, e));
        }
        let me = unix::my_uid();
        if unix::others_can_change(&meta, me) {
            let why = if meta.uid() != me && meta.uid() != 0 { format!("it is owned by uid {}, not by you (uid {me})", meta.uid()) } else { format!("permissions {:o} let others change it", meta.mode() & 0o777) };
            return Err(FsError { op: "use", path: dir.to_path_buf(), cause: Cause::Unsafe { why, fix: format!("use a directory of your own, or run `chmod go-w {}`", dir.display()) } });
        }
        Ok(())
    }
    #[cfg(not(unix))]
    create_dir_by_path(dir)
}

#[cfg(not(unix))]
fn create_dir_by_path(dir: &Path) -> FsResult<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(|e| FsError::os("create directory", dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| FsError::os("set the permissions of", dir, e))?;
    }
    #[cfg(windows)]
    windows::make_private(dir, true).map_err(|e| FsError::os("restrict the access list of", dir, e))?;
    Ok(())
}

/// Creates a new directory `<parent>/<prefix><8 random characters>`, private to the user
/// (0700; Windows: a protected ACL), as mkdtemp(3) does: the name is unpredictable and
/// the directory did not exist before (never an existing one, never through a planted
/// link), so another user of a shared `parent` (`/tmp`) can neither guess nor pre-create it.
pub(crate) fn create_unique_private_dir(parent: &Path, prefix: &str) -> FsResult<PathBuf> {
    const LETTERS: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    #[cfg_attr(not(unix), allow(unused_mut))] // only the Unix mode below changes it
    let mut b = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    for _ in 0..100 {
        let mut r = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut r).map_err(|_| FsError::os("create a random name in", parent, io::Error::other("no randomness")))?;
        let name: String = r.iter().map(|x| LETTERS[*x as usize % LETTERS.len()] as char).collect();
        let dir = parent.join(format!("{prefix}{name}"));
        match b.create(&dir) {
            Ok(()) => {
                #[cfg(windows)]
                windows::make_private(&dir, true).map_err(|e| FsError::os("restrict the access list of", &dir, e))?;
                return Ok(dir);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(FsError::os("create directory", &dir, e)),
        }
    }
    Err(FsError::os("create a new directory in", parent, io::Error::other("every random name tried exists")))
}

/// Refuses `path` unless the user owns it and nobody else can read or change it
/// (`meta` from the open handle or from `metadata`, which follows links).
pub(crate) fn check_private(path: &Path, meta: &std::fs::Metadata, is_dir: bool) -> FsResult<()> {
    let unsafe_ = |why: String, fix: String| FsError { op: "use", path: path.to_path_buf(), cause: Cause::Unsafe { why, fix } };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return Err(unsafe_(format!("owned by uid {}, not by you (uid {me})", meta.uid()), "use a cache directory of your own (ENTRA_TOKEN_CACHE_DIR)".into()));
        }
        if meta.mode() & 0o077 != 0 {
            let want = if is_dir { "700" } else { "600" };
            return Err(unsafe_(format!("permissions {:o} let other users read or change it", meta.mode() & 0o777), format!("run `chmod {want} {}`", path.display())));
        }
        Ok(())
    }
    #[cfg(windows)]
    {
        let _ = meta;
        windows::check(path, windows::Want::Private).map_err(|p| match p {
            windows::Problem::Os(e) => FsError::os("read the access list of", path, e),
            windows::Problem::Unsafe(why) => unsafe_(why, windows::private_fix(path, is_dir)),
        })
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = (meta, is_dir, unsafe_);
        Ok(())
    }
}

/// Opens a regular file for reading without following a symbolic link at `path` itself.
#[cfg_attr(unix, allow(dead_code))] // Unix works through `PrivateDir`'s handle
pub(crate) fn open_nofollow(path: &Path) -> FsResult<File> {
    let mut o = OpenOptions::new();
    o.read(true);
    nofollow(&mut o);
    let f = o.open(path).map_err(|e| if is_loop(&e) { FsError { op: "open", path: path.to_path_buf(), cause: Cause::Symlink } } else { FsError::os("open", path, e) })?;
    // Windows opened the reparse point itself (FILE_FLAG_OPEN_REPARSE_POINT): refuse it.
    #[cfg(windows)]
    if f.metadata().map(|m| m.file_type().is_symlink()).unwrap_or(false) {
        return Err(FsError { op: "open", path: path.to_path_buf(), cause: Cause::Symlink });
    }
    Ok(f)
}

#[cfg_attr(unix, allow(dead_code))] // Unix works through `PrivateDir`'s handle
fn nofollow(o: &mut OpenOptions) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NOFOLLOW);
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        // FILE_FLAG_OPEN_REPARSE_POINT: open a link itself, never its target.
        o.custom_flags(0x0020_0000);
    }
    #[cfg(not(any(unix, windows)))]
    let _ = o;
}

#[cfg_attr(unix, allow(dead_code))] // Unix works through `PrivateDir`'s handle
fn is_loop(e: &io::Error) -> bool {
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

/// Removes a file; `Ok(false)` when it was not there.
pub(crate) fn remove(path: &Path) -> FsResult<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(FsError::os("remove", path, e)),
    }
}

/// A held exclusive lock on a file; released when dropped (and by the OS if the process
/// dies). Never released with `File::unlock`: under Wine that reports an error although
/// the lock is gone, and closing the handle releases it everywhere.
pub(crate) struct FileLock {
    _file: File,
}

/// Why [`lock`] gave up.
pub(crate) enum LockError {
    /// Still held by another process after `wait`.
    TimedOut,
    Fs(FsError),
}

/// Takes an exclusive lock on `path` (created private if missing, never through a
/// symlink), waiting up to `wait`; `waiting` is called once if it has to wait.
pub(crate) fn lock(path: &Path, wait: Duration, waiting: impl FnOnce()) -> std::result::Result<FileLock, LockError> {
    let mut o = OpenOptions::new();
    o.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    nofollow(&mut o);
    let file = o.open(path).map_err(|e| LockError::Fs(FsError::os("open the lock", path, e)))?;
    hold(file, path, wait, waiting)
}

/// Locks the open `file` (at `path`, for messages), waiting up to `wait`.
fn hold(file: File, path: &Path, wait: Duration, waiting: impl FnOnce()) -> std::result::Result<FileLock, LockError> {
    let start = Instant::now();
    let mut waiting = Some(waiting);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(FileLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {
                if let Some(w) = waiting.take() {
                    w();
                }
                if start.elapsed() >= wait {
                    return Err(LockError::TimedOut);
                }
                std::thread::sleep(Duration::from_millis(15));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(LockError::Fs(FsError::os("lock", path, e))),
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(unix)]
    #[test]
    fn unique_private_dirs_are_new_and_closed() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let a = super::create_unique_private_dir(d.path(), "x-").unwrap();
        let b = super::create_unique_private_dir(d.path(), "x-").unwrap();
        assert_ne!(a, b);
        assert!(a.file_name().unwrap().to_str().unwrap().starts_with("x-") && a.file_name().unwrap().len() == 10);
        assert_eq!(std::fs::metadata(&a).unwrap().permissions().mode() & 0o777, 0o700);
    }

    use super::*;

    fn tmp() -> PathBuf {
        let mut b = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
        std::env::temp_dir().join(format!("et-fs-{}-{}", std::process::id(), u64::from_le_bytes(b)))
    }

    #[test]
    fn a_private_dir_and_file_pass_the_privacy_check() {
        let dir = tmp().join("a").join("b");
        create_private_dir(&dir).unwrap();
        check_private(&dir, &std::fs::metadata(&dir).unwrap(), true).unwrap();
        let f = dir.join("x.json");
        write_atomic(&f, b"one", Access::Private, Durability::Sync).unwrap();
        check_private(&f, &std::fs::metadata(&f).unwrap(), false).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"one");
        // No temp file left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        let _ = std::fs::remove_dir_all(dir.parent().unwrap().parent().unwrap());
    }

    #[test]
    fn replacement_survives_a_reader_holding_the_old_file() {
        let dir = tmp();
        create_private_dir(&dir).unwrap();
        let f = dir.join("entry.json");
        write_atomic(&f, b"old", Access::Private, Durability::Refetchable).unwrap();
        let mut reader = open_nofollow(&f).unwrap();
        write_atomic(&f, b"new", Access::Private, Durability::Refetchable).unwrap();
        let mut old = String::new();
        io::Read::read_to_string(&mut reader, &mut old).unwrap();
        assert_eq!(old, "old", "the open reader keeps the old file");
        assert_eq!(std::fs::read(&f).unwrap(), b"new");
        drop(reader);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A program that opened the file without delete sharing (Windows only has that) holds
    /// it for a moment: the replacement waits for it instead of failing.
    #[cfg(windows)]
    #[test]
    fn replacement_waits_for_a_reader_without_delete_sharing() {
        use std::os::windows::fs::OpenOptionsExt;
        let dir = tmp();
        create_private_dir(&dir).unwrap();
        let f = dir.join("entry.json");
        write_atomic(&f, b"old", Access::Private, Durability::Refetchable).unwrap();
        let holder = OpenOptions::new().read(true).share_mode(1 /* FILE_SHARE_READ */).open(&f).unwrap();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(holder);
        });
        write_atomic(&f, b"new", Access::Private, Durability::Refetchable).unwrap();
        t.join().unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"new");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_directory_others_can_write_is_refused_with_the_fix() {
        let dir = tmp();
        std::fs::create_dir_all(&dir).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        #[cfg(windows)]
        windows::grant_everyone_for_tests(&dir).unwrap();
        let e = check_private(&dir, &std::fs::metadata(&dir).unwrap(), true).unwrap_err();
        assert!(matches!(e.cause, Cause::Unsafe { .. }), "{e}");
        let hint = e.hint().unwrap();
        if cfg!(windows) {
            assert!(hint.contains("icacls"), "{hint}");
        } else {
            assert!(hint.contains("chmod 700"), "{hint}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn errors_name_the_operation_the_path_and_the_os_error() {
        let dir = tmp();
        let missing = dir.join("no").join("such").join("file");
        let e = write_atomic(&missing, b"x", Access::Private, Durability::Sync).unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("cannot create a temp file for ") && text.contains(&missing.display().to_string()), "{text}");
        assert!(matches!(e.cause, Cause::Os(_)), "{text}");
        let e = open_nofollow(&missing).unwrap_err();
        assert!(e.is_not_found(), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_not_followed() {
        let dir = tmp();
        create_private_dir(&dir).unwrap();
        std::fs::write(dir.join("real"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.join("real"), dir.join("link")).unwrap();
        let e = open_nofollow(&dir.join("link")).unwrap_err();
        assert!(matches!(e.cause, Cause::Symlink), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_lock_excludes_a_second_holder_until_dropped() {
        let dir = tmp();
        create_private_dir(&dir).unwrap();
        let p = dir.join("k.lock");
        let held = lock(&p, Duration::ZERO, || {}).ok().unwrap();
        let mut waited = false;
        assert!(matches!(lock(&p, Duration::from_millis(50), || waited = true), Err(LockError::TimedOut)));
        assert!(waited);
        drop(held);
        assert!(lock(&p, Duration::ZERO, || {}).is_ok(), "dropping releases the lock");
        let _ = std::fs::remove_dir_all(dir);
    }
}
