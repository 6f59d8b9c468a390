//! Diagnostics on stderr, always prefixed `entra-token: `, gated by `-v`. stdout is
//! reserved for protocol answers, so nothing here ever writes to it. Callers pass only
//! non-secret values; secrets are `Secret<T>` and have no `Display`.

use std::sync::atomic::{AtomicU8, Ordering};

static VERBOSITY: AtomicU8 = AtomicU8::new(0);
static QUIET: AtomicU8 = AtomicU8::new(0);

pub(crate) fn set_verbosity(level: u8) {
    VERBOSITY.store(level, Ordering::Relaxed);
}

pub(crate) fn verbosity() -> u8 {
    VERBOSITY.load(Ordering::Relaxed)
}

pub(crate) fn set_quiet(quiet: bool) {
    QUIET.store(quiet as u8, Ordering::Relaxed);
}

pub(crate) fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed) != 0
}

/// One line to stderr with the product prefix; used for warnings a user should see.
pub(crate) fn line(msg: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "entra-token: {msg}");
}

/// A warning: shown unless `--silent`.
macro_rules! warn_ {
    ($($arg:tt)*) => {
        if !$crate::log::quiet() { $crate::log::line(format_args!($($arg)*)) }
    };
}

/// A trace line, shown with `-v` (level 1) or `-vv` (level 2).
macro_rules! trace {
    ($level:expr, $($arg:tt)*) => {
        if $crate::log::verbosity() >= $level { $crate::log::line(format_args!($($arg)*)) }
    };
}

pub(crate) use {trace, warn_ as warn};
