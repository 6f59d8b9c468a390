//! Directories opened once and worked in through their handle (openat, renameat,
//! unlinkat, mkdirat), so nobody can swap a directory or plant a link between our check
//! and our use. Walking to a directory, every component we open or create inside a
//! directory others may change (sticky `/tmp`, another user's, group/other-writable) must
//! be a real directory (no symlink), ours or root's, and writable by nobody else.

use super::{Cause, FsError, FsResult};
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path};

pub(super) fn my_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

pub(super) fn my_gid() -> u32 {
    // SAFETY: getegid has no preconditions and cannot fail.
    unsafe { libc::getegid() }
}

fn cstr(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a name with a NUL byte"))
}

/// openat(2) returning an owned descriptor.
pub(super) fn openat(dir: &OwnedFd, name: &OsStr, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let c = cstr(name)?;
    // SAFETY: `dir` is an open descriptor and `c` a NUL-terminated string; the result is checked.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::c_uint) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fstat(fd: &OwnedFd) -> io::Result<std::fs::Metadata> {
    // std's File::metadata is fstat(2); borrow the descriptor without closing it.
    let f = std::mem::ManuallyDrop::new(
        // SAFETY: the File never outlives `fd` and is never dropped (ManuallyDrop).
        unsafe { File::from_raw_fd(fd.as_raw_fd()) },
    );
    f.metadata()
}

/// A directory others could change what is in it: not ours nor root's, or writable by
/// others, or by a group other than our own private one (Debian's and Ubuntu's umask 002
/// leaves `~/.config/pip` group-writable by the user's private group, gid = uid, which
/// nobody else is in: the same rule `trusted` applies to files).
pub(super) fn others_can_change(m: &std::fs::Metadata, me: u32) -> bool {
    (m.uid() != me && m.uid() != 0) || others_may_write(m, me)
}

/// Writable by others, or by a group that is not `me`'s own private group (gid = uid, and
/// the group this process runs as).
pub(super) fn others_may_write(m: &std::fs::Metadata, me: u32) -> bool {
    let own_private_group = m.gid() == me && my_gid() == me;
    m.mode() & 0o002 != 0 || (m.mode() & 0o020 != 0 && !own_private_group)
}

/// Opens the directory `path` (creating missing components 0700 when `create`), walking
/// from `/` one component at a time. Returns its handle, its metadata and whether we
/// created it; the caller judges the directory itself (private, or only ours). A link
/// inside a directory only its (trusted) owner can change is followed (`~/.cache` may
/// point elsewhere); inside one others can change it is refused.
pub(super) fn open_dir_walk(path: &Path, create: bool) -> FsResult<(OwnedFd, std::fs::Metadata, bool)> {
    let me = my_uid();
    let abs = if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir().map_err(|e| FsError::os("find the current directory for", path, e))?.join(path) };
    let refuse = |at: &Path, why: String| FsError {
        op: "use",
        path: at.to_path_buf(),
        cause: Cause::Unsafe { why, fix: format!("use a directory of your own that only you can change (chmod go-w, or move it out of {})", at.parent().unwrap_or(at).display()) },
    };
    let root = std::fs::File::open("/").map_err(|e| FsError::os("open", Path::new("/"), e))?;
    let mut fd = OwnedFd::from(root);
    let mut meta = fstat(&fd).map_err(|e| FsError::os("read", Path::new("/"), e))?;
    let mut at = std::path::PathBuf::from("/");
    let mut created = false;
    let last = abs.components().filter(|c| matches!(c, Component::Normal(_) | Component::ParentDir)).count();
    for (i, comp) in abs.components().filter(|c| matches!(c, Component::Normal(_) | Component::ParentDir)).enumerate() {
        let name: &OsStr = match comp {
            Component::Normal(n) => n,
            Component::ParentDir => OsStr::new(".."),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
        };
        at.push(comp);
        let guarded = others_can_change(&meta, me);
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | if guarded { libc::O_NOFOLLOW } else { 0 };
        created = false;
        let next = match openat(&fd, name, flags, 0) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                let c = cstr(name).map_err(|e| FsError::os("create directory", &at, e))?;
                // SAFETY: `fd` is an open directory and `c` NUL-terminated; the result is checked.
                if unsafe { libc::mkdirat(fd.as_raw_fd(), c.as_ptr(), 0o700) } != 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::AlreadyExists {
                        return Err(FsError::os("create directory", &at, e));
                    }
                } else {
                    created = true;
                }
                // What we just made: never through a link planted in its place since.
                openat(&fd, name, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0).map_err(|e| link_or_os(&at, e))?
            }
            Err(e) => return Err(link_or_os(&at, e)),
        };
        let m = fstat(&next).map_err(|e| FsError::os("read", &at, e))?;
        // The directory itself is the caller's to judge, with its own fix.
        if (guarded || created) && i + 1 < last {
            if m.uid() != me && m.uid() != 0 {
                return Err(refuse(&at, format!("it is owned by uid {}, not by you (uid {me}), in a directory others can change", m.uid())));
            }
            if m.mode() & 0o022 != 0 {
                return Err(refuse(&at, format!("permissions {:o} let others change it, in a directory others can change", m.mode() & 0o777)));
            }
        }
        fd = next;
        meta = m;
    }
    Ok((fd, meta, created))
}

/// A failed directory open, as the caller should hear it: a link where only a real
/// directory is accepted (inside a directory others can change) is refused with the fix.
fn link_or_os(at: &Path, e: io::Error) -> FsError {
    let link = matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::EMLINK))
        || (e.raw_os_error() == Some(libc::ENOTDIR) && std::fs::symlink_metadata(at).is_ok_and(|m| m.file_type().is_symlink()));
    if !link {
        return FsError::os("open", at, e);
    }
    let parent = at.parent().unwrap_or(at).display();
    FsError {
        op: "use",
        path: at.to_path_buf(),
        cause: Cause::Unsafe {
            why: format!("it is a symbolic link in {parent}, which others can change (they could point it anywhere)"),
            fix: format!("use a real directory of your own instead of the link, outside {parent} or in a directory only you can change"),
        },
    }
}

/// fchmod(2) on the handle: never through a path someone could have replaced with a link.
pub(super) fn fchmod(fd: &OwnedFd, mode: u32) -> io::Result<()> {
    // SAFETY: `fd` is an open descriptor; the result is checked.
    if unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub(super) fn renameat(dir: &OwnedFd, from: &OsStr, to: &OsStr) -> io::Result<()> {
    let (f, t) = (cstr(from)?, cstr(to)?);
    // SAFETY: `dir` is an open directory, both names NUL-terminated; the result is checked.
    if unsafe { libc::renameat(dir.as_raw_fd(), f.as_ptr(), dir.as_raw_fd(), t.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub(super) fn unlinkat(dir: &OwnedFd, name: &OsStr) -> io::Result<()> {
    let c = cstr(name)?;
    // SAFETY: `dir` is an open directory and `c` NUL-terminated; the result is checked.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The names in the directory (`.` and `..` left out), read through a duplicate of its handle.
pub(super) fn list(dir: &OwnedFd) -> io::Result<Vec<std::ffi::OsString>> {
    // SAFETY: `dir` is open; the duplicate is handed to fdopendir, which owns it from then on.
    let dup = unsafe { libc::fcntl(dir.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `dup` is an open directory descriptor we own.
    let d = unsafe { libc::fdopendir(dup) };
    if d.is_null() {
        let e = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so `dup` is still ours to close.
        unsafe { libc::close(dup) };
        return Err(e);
    }
    let mut names = Vec::new();
    // SAFETY: `d` is a valid DIR*; the shared offset may have moved in an earlier listing.
    unsafe { libc::rewinddir(d) };
    loop {
        // SAFETY: `d` is a valid DIR*; each entry is read before the next readdir call.
        let ent = unsafe { libc::readdir(d) };
        if ent.is_null() {
            break;
        }
        // SAFETY: d_name is a NUL-terminated string inside the entry readdir returned.
        let name = unsafe { std::ffi::CStr::from_ptr((*ent).d_name.as_ptr()) };
        let b = name.to_bytes();
        if b != b"." && b != b".." {
            names.push(OsStr::from_bytes(b).to_os_string());
        }
    }
    // SAFETY: `d` is valid and closed once (closing `dup` with it).
    unsafe { libc::closedir(d) };
    Ok(names)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    fn tmp() -> std::path::PathBuf {
        let mut b = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
        std::env::temp_dir().join(format!("et-unix-{}-{}", std::process::id(), u64::from_le_bytes(b)))
    }

    fn mode(p: &std::path::Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    /// Group write by the user's own private group (umask 002) is not "others"; by any
    /// other group, or write by others, it is.
    #[test]
    fn group_write_counts_only_for_a_group_not_the_users_own() {
        use std::os::unix::fs::MetadataExt;
        let base = tmp();
        std::fs::create_dir_all(&base).unwrap();
        let me = super::my_uid();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o775)).unwrap();
        let m = std::fs::metadata(&base).unwrap();
        let private = m.gid() == me && super::my_gid() == me;
        assert_eq!(super::others_can_change(&m, me), !private, "0775 with group {} (uid {me})", m.gid());
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o757)).unwrap();
        assert!(super::others_can_change(&std::fs::metadata(&base).unwrap(), me), "0757");
        // Another group with write (only root may hand the directory to it).
        if me == 0 && std::os::unix::fs::chown(&base, None, Some(65534)).is_ok() {
            std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o775)).unwrap();
            assert!(super::others_can_change(&std::fs::metadata(&base).unwrap(), me), "0775 with group 65534");
            std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
            assert!(!super::others_can_change(&std::fs::metadata(&base).unwrap(), me), "0755 with group 65534");
        }
        std::fs::remove_dir_all(&base).unwrap();
    }

    /// `create_private_dir` on a path where a link now stands never changes the mode of
    /// what the link points to (it used to chmod 0700 through the path); a link in a
    /// sticky shared directory is refused outright.
    #[test]
    fn create_private_dir_never_chmods_through_a_link() {
        let base = tmp();
        let target = base.join("target");
        std::fs::create_dir_all(&target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(&target, base.join("link")).unwrap();
        super::super::create_private_dir(&base.join("link")).unwrap();
        assert_eq!(mode(&target), 0o755, "chmod went through the link");
        let shared = base.join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        std::os::unix::fs::symlink(&target, shared.join("link")).unwrap();
        let e = super::super::create_private_dir(&shared.join("link")).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(mode(&target), 0o755);
        // A new directory is 0700 whatever the umask left of mkdir's mode.
        super::super::create_private_dir(&base.join("new").join("dir")).unwrap();
        assert_eq!(mode(&base.join("new").join("dir")), 0o700);
        let _ = std::fs::remove_dir_all(base);
    }
}
