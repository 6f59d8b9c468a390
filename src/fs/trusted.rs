//! Files we act on without having written them: the config, the secret, password and
//! certificate files a profile names, the federated-token file. Like ssh with its config
//! and keys, such a file is refused when someone else could have put words in it: owned
//! by another user (root is fine: Kubernetes projects federated tokens root-owned, 0644,
//! through root-owned links), or writable by group or others (Windows: an owner or an
//! access-list entry other than the user, SYSTEM and the Administrators that may write).

use super::{Cause, FsError, FsResult};
use crate::error::Error;
use std::fs::File;
use std::path::Path;

/// Opens `path` for reading (following links) and refuses it unless it is trusted (see
/// the module comment): the checks are made on the opened handle, which the caller reads.
pub(crate) fn open_trusted(path: &Path) -> FsResult<File> {
    let file = File::open(path).map_err(|e| FsError::os("read", path, e))?;
    check_opened(path, &file, false)?;
    Ok(file)
}

/// A file another program of the user's keeps and we only read (az's profile, settings,
/// clouds and token cache): what it says picks the sign-in host and the account, so it is
/// judged as `open_trusted` judges ours, except that group write is accepted where the
/// group is the user's own private one (gid = uid, as Debian and Ubuntu make them: there a
/// umask of 002 leaves az's files group-writable). Missing, unreadable, larger than `max`
/// or refused → None; a refusal is said on stderr with the fix, and the file is read as if
/// absent (someone else could have pointed us at their sign-in host, or handed us a token).
pub(crate) fn read_users_file(path: &Path, max: u64) -> Option<Vec<u8>> {
    read_users_file_written(path, max).map(|(bytes, _)| bytes)
}

/// `read_users_file`, with when the file was last written (from the handle read, so it is
/// that file's time; None where the platform keeps none).
pub(crate) fn read_users_file_written(path: &Path, max: u64) -> Option<(Vec<u8>, Option<std::time::SystemTime>)> {
    use std::io::Read;
    let file = File::open(path).ok()?;
    if let Err(e) = check_opened(path, &file, true) {
        crate::log::warn!("not reading {}: {} (fix: {})", path.display(), e.cause_text(), e.hint().unwrap_or_default());
        return None;
    }
    let mut bytes = Vec::new();
    (&file).take(max + 1).read_to_end(&mut bytes).ok()?;
    // After the read: a write racing it gives a time at least as new as what was read.
    let written = file.metadata().and_then(|m| m.modified()).ok();
    (bytes.len() as u64 <= max).then_some((bytes, written))
}

/// `open_trusted`'s verdict without reading (for `doctor`).
pub(crate) fn check_trusted_file(path: &Path) -> FsResult<()> {
    open_trusted(path).map(|_| ())
}

/// Reads `path` whole as text after `open_trusted`'s checks, refusing more than `max` bytes.
pub(crate) fn read_trusted(path: &Path, max: u64) -> FsResult<String> {
    use std::io::Read;
    let file = open_trusted(path)?;
    let mut text = String::new();
    file.take(max + 1).read_to_string(&mut text).map_err(|e| FsError::os("read", path, e))?;
    if text.len() as u64 > max {
        let why = format!("it is larger than {} KiB, more than such a file ever holds", max / 1024);
        return Err(FsError { op: "read", path: path.to_path_buf(), cause: Cause::Unsafe { why, fix: "check the path names the right file".into() } });
    }
    Ok(text)
}

/// The error a caller reports for `what` ("the config file", "the client secret file")
/// whose trusted read failed: a refusal is one line naming the file and the fix; anything
/// else says it cannot be read, with `hint`.
pub(crate) fn trusted_error(what: &str, e: FsError, hint: &str) -> Error {
    match e.cause {
        Cause::Unsafe { why, fix } => Error::bad_input_hint(format!("{what} {}: {why}", e.path.display()), fix),
        Cause::Symlink => Error::bad_input_hint(format!("{what} {} is a symbolic link", e.path.display()), hint.to_string()),
        Cause::Os(os) => Error::bad_input_hint(format!("cannot read {what} {}", e.path.display()), hint.to_string()).because(os),
    }
}

/// `private_group`: group write is accepted when the file's group is the user's own
/// private group (see `read_users_file`).
#[cfg(unix)]
fn check_opened(path: &Path, file: &File, private_group: bool) -> FsResult<()> {
    use std::os::unix::fs::MetadataExt;
    let me = super::unix::my_uid();
    let refuse = |why: String, fix: String| FsError { op: "use", path: path.to_path_buf(), cause: Cause::Unsafe { why, fix } };
    let shown = path.display();
    // A link someone else may re-point decides which file we read: it must be ours or root's too.
    if let Ok(l) = std::fs::symlink_metadata(path)
        && l.file_type().is_symlink()
        && l.uid() != me
        && l.uid() != 0
    {
        return Err(refuse(format!("it is a symbolic link owned by uid {}, not by you (uid {me}) or root", l.uid()), format!("point the profile at the file itself, or replace the link with one of your own (`ln -sfn TARGET {shown}`)")));
    }
    let m = file.metadata().map_err(|e| FsError::os("read", path, e))?;
    if m.uid() != me && m.uid() != 0 {
        return Err(refuse(format!("it is owned by uid {}, not by you (uid {me}) or root, so its owner decides what it says", m.uid()), format!("use a copy of your own: `cp {shown} FILE && chmod go-w FILE`, and name FILE instead")));
    }
    let others_may_write = if private_group { super::unix::others_may_write(&m, me) } else { m.mode() & 0o022 != 0 };
    if others_may_write {
        return Err(refuse(format!("permissions {:o} let other users change it", m.mode() & 0o777), format!("run `chmod go-w {shown}`")));
    }
    Ok(())
}

#[cfg(windows)]
fn check_opened(path: &Path, _file: &File, _private_group: bool) -> FsResult<()> {
    super::windows::check(path, super::windows::Want::NotWritable).map_err(|p| match p {
        super::windows::Problem::Os(e) => FsError::os("read the access list of", path, e),
        super::windows::Problem::Unsafe(why) => FsError {
            op: "use",
            path: path.to_path_buf(),
            cause: Cause::Unsafe { why, fix: format!("run `icacls \"{}\" /reset`, or keep it in a folder of your own (under %USERPROFILE%)", path.display()) },
        },
    })
}

#[cfg(not(any(unix, windows)))]
fn check_opened(_path: &Path, _file: &File, _private_group: bool) -> FsResult<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> std::path::PathBuf {
        let mut b = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
        std::env::temp_dir().join(format!("et-trusted-{}-{}", std::process::id(), u64::from_le_bytes(b)))
    }

    /// Group/others-writable is refused with the chmod to run; a file of ours that others may only read is fine.
    #[cfg(unix)]
    #[test]
    fn a_file_others_can_change_is_refused_with_the_chmod() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tmp();
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("config.toml");
        std::fs::write(&f, b"x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(read_trusted(&f, 10).unwrap(), "x");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o664)).unwrap();
        let e = check_trusted_file(&f).unwrap_err();
        assert!(e.hint().unwrap().contains(&format!("chmod go-w {}", f.display())), "{e}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&f, b"0123456789ab").unwrap();
        assert!(read_trusted(&f, 10).is_err(), "more than the limit is refused");
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Private means nobody else reads it either; a file we only act on may be read by others.
    #[cfg(windows)]
    #[test]
    fn on_windows_a_cache_folder_others_can_read_is_refused() {
        let dir = tmp();
        std::fs::create_dir_all(&dir).unwrap();
        super::super::windows::grant_everyone_read_for_tests(&dir).unwrap();
        let f = dir.join("config.toml");
        std::fs::write(&f, b"x").unwrap();
        check_trusted_file(&f).expect("readable by others is no reason to distrust a file we only act on");
        if super::super::windows::under_wine_for_tests() {
            let _ = std::fs::remove_dir_all(dir);
            return println!("SKIPPED: Wine reports Everyone-read on every file, so the read half is not checked there");
        }
        let e = super::super::check_private(&dir, &std::fs::metadata(&dir).unwrap(), true).unwrap_err();
        assert!(e.to_string().contains("Everyone read"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }

}
