//! Diagnostics on stderr, always prefixed `entra-token: `, gated by `-v`. stdout is
//! reserved for protocol answers, so nothing here ever writes to it. Callers pass only
//! non-secret values; secrets are `Secret<T>` and have no `Display`. The prefix is
//! coloured only when stderr is a terminal and `NO_COLOR` is unset (no-color.org).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

static VERBOSITY: AtomicU8 = AtomicU8::new(0);
static QUIET: AtomicU8 = AtomicU8::new(0);
static COLOUR: OnceLock<bool> = OnceLock::new();

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

/// What kind of line: decides the prefix colour and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The one-line report of a failed command.
    Error,
    /// Something a user should see (shown unless `--silent`).
    Warn,
    /// A `-v` step trace.
    Trace,
}

/// Colour is for people: only on a terminal, never under `NO_COLOR` (any non-empty value)
/// or `TERM=dumb`.
pub(crate) fn colour_wanted(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>, term: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty()) && term.is_none_or(|t| t != "dumb")
}

fn colour() -> bool {
    *COLOUR.get_or_init(|| {
        use std::io::IsTerminal;
        colour_wanted(std::io::stderr().is_terminal(), crate::env::os(crate::env::NO_COLOR).as_deref(), crate::env::os(crate::env::TERM).as_deref())
    })
}

/// The whole line, without the newline. Only the prefix is styled, so a message pasted
/// from a terminal reads the same as one from a log file.
pub(crate) fn format_line(kind: Kind, colour: bool, msg: std::fmt::Arguments<'_>) -> String {
    if !colour {
        return format!("entra-token: {msg}");
    }
    let style = match kind {
        Kind::Error => "\x1b[1;31m",
        Kind::Warn => "\x1b[1;33m",
        Kind::Trace => "\x1b[2m",
    };
    format!("{style}entra-token:\x1b[0m {msg}")
}

/// Would this character, printed raw, let text from outside act on a terminal or a
/// reader: C0 controls (ESC, CR, BS, BEL, …), DEL, C1 controls (CSI U+009B, …), and the
/// bidirectional overrides, embeddings, isolates and marks that reorder what is shown?
fn is_hostile(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

fn escape_with(s: &str, keep: impl Fn(char) -> bool) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(|c| is_hostile(c) && !keep(c)) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            c if keep(c) || !is_hostile(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Text from outside (claims, account and tenant names, server error text, device-code
/// messages, URLs), made safe to print for a person: every control character (C0, DEL,
/// C1) and every bidi override is written as a visible escape (`\x1b`, `\n`, `\u{202e}`),
/// so it can neither move the cursor, retitle the window, nor fake a line. Everything
/// printed for a person passes here: [`line_of`] for stderr, [`escape_report`] for reports.
pub(crate) fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    escape_with(s, |_| false)
}

/// A multi-line report we composed (its newlines are ours), with anything hostile inside
/// its lines escaped as [`escape`] does.
pub(crate) fn escape_report(s: &str) -> std::borrow::Cow<'_, str> {
    escape_with(s, |c| c == '\n')
}

/// One line of `kind` to stderr with the product prefix. The message is escaped (its
/// own line breaks kept), so outside text inside it cannot act on the terminal.
pub(crate) fn line_of(kind: Kind, msg: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let msg = msg.to_string();
    let msg = escape_report(&msg);
    let mut err = std::io::stderr().lock();
    // Every line carries the prefix, a report's continuation lines too.
    for l in msg.split('\n') {
        let _ = writeln!(err, "{}", format_line(kind, colour(), format_args!("{l}")));
    }
}

/// One line to stderr with the product prefix; used for warnings a user should see.
pub(crate) fn line(msg: std::fmt::Arguments<'_>) {
    line_of(Kind::Warn, msg);
}

/// The final report of a failed command.
pub(crate) fn error(msg: std::fmt::Arguments<'_>) {
    line_of(Kind::Error, msg);
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
        if $crate::log::verbosity() >= $level { $crate::log::line_of($crate::log::Kind::Trace, format_args!($($arg)*)) }
    };
}

pub(crate) use {trace, warn_ as warn};

/// `1 profile`, `3 profiles`: a count and its noun, for text a person reads.
pub(crate) fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour_wanted(true, None, Some(OsStr::new("xterm-256color"))));
        assert!(colour_wanted(true, Some(OsStr::new("")), None), "an empty NO_COLOR does not count");
        assert!(!colour_wanted(false, None, None));
        assert!(!colour_wanted(true, Some(OsStr::new("1")), None));
        assert!(!colour_wanted(true, None, Some(OsStr::new("dumb"))));
    }

    #[test]
    fn hostile_characters_are_shown_never_obeyed() {
        assert_eq!(escape("ann@contoso.test"), "ann@contoso.test");
        assert_eq!(escape("a\x1b]0;owned\x07b"), "a\\x1b]0;owned\\x07b");
        assert_eq!(escape("x\r\ny\0"), "x\\r\\ny\\x00");
        assert_eq!(escape("\u{9b}2J \u{7f}"), "\\u{9b}2J \\x7f");
        assert_eq!(escape("admin\u{202e}gpj.exe"), "admin\\u{202e}gpj.exe");
        assert_eq!(escape("\u{2066}x\u{2069}"), "\\u{2066}x\\u{2069}");
        assert_eq!(escape("ünïcode ✓"), "ünïcode ✓");
        assert_eq!(escape_report("line 1\nline\x1b[2K 2\n"), "line 1\nline\\x1b[2K 2\n");
    }

    #[test]
    fn only_the_prefix_is_styled() {
        assert_eq!(format_line(Kind::Trace, false, format_args!("cache hit {}", 1)), "entra-token: cache hit 1");
        let c = format_line(Kind::Error, true, format_args!("boom"));
        assert!(c.starts_with("\x1b[1;31mentra-token:\x1b[0m boom"), "{c:?}");
        assert_ne!(format_line(Kind::Warn, true, format_args!("x")), format_line(Kind::Trace, true, format_args!("x")));
    }
}
