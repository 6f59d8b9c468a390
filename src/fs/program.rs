//! "Is this program us?": a link that runs our own executable, as `setup` makes them (a
//! symlink, or on Windows a hard link or copy of the .exe), so `setup` knows a link is
//! already in place and the az fallback never takes our own `az` for the real one.

use std::path::Path;

/// Whether `link` runs `exe` (already canonical): a symlink resolving to it, or (Windows,
/// where `setup` hard-links or copies the .exe) a file with the same bytes.
pub(crate) fn runs(exe: &Path, link: &Path) -> bool {
    if std::fs::canonicalize(link).is_ok_and(|t| t == exe) {
        return true;
    }
    cfg!(windows) && matches!((std::fs::read(exe), std::fs::read(link)), (Ok(a), Ok(b)) if a == b)
}
