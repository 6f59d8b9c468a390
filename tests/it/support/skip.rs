//! A check that cannot run on this machine says so where a person looks, instead of passing
//! in silence: a `SKIPPED:` line written straight to stderr (libtest captures `eprintln!` of
//! a passing test, not the stream itself), and a line in `target/tmp/skipped-checks.txt`,
//! which `.ci/run` counts and lists at the end, and one in `target/tmp/skips/<run>.txt`,
//! which the `skipped` test target (tests/skipped/main.rs, run by `cargo test` after this
//! one) lists at the end of a plain `cargo test`. Under CI (`CI` set), a missing tool that
//! `.ci/run` installs is a failure, not a skip.

use std::io::Write;

/// `tool` is missing; `.ci/run` installs it, so under CI this fails the test.
pub fn missing_tool(tool: &str, what: &str) {
    let line = format!("{what}: {tool} is not installed (.ci/run installs it)");
    assert!(std::env::var_os("CI").is_none_or(|v| v.is_empty() || v == "false"), "{line}, but CI is set: .ci/run should have installed it");
    report(&line);
}

/// A limit of this machine that no install lifts (not root, no mount namespaces, a tool no
/// Debian/PyPI package provides): reported, never a failure.
pub fn not_here(why: &str) {
    report(why);
}

fn report(line: &str) {
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {line}");
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("skipped-checks.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
        let _ = writeln!(f, "{test}: {line}");
    }
    let runs = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("skips");
    let _ = std::fs::create_dir_all(&runs);
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(runs.join(format!("{}.txt", super::skip_summary::run_id()))) {
        let _ = writeln!(f, "{test}: {line}");
    }
}

#[test]
fn the_summary_lists_this_run_s_skips_and_never_an_earlier_run_s() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("1.txt"), "old::test: kubectl is not installed (.ci/run installs it)\n").unwrap();
    std::fs::write(dir.path().join("2.txt"), "a::b: docker is not installed (.ci/run installs it)\nc::d: not root\n").unwrap();
    let text = super::skip_summary::summary(dir.path(), 2);
    assert_eq!(text, "entra-token tests: 2 checks skipped on this machine (`.ci/run` installs what they need):\n  a::b: docker is not installed (.ci/run installs it)\n  c::d: not root\n");
    // Everything is cleared: the next run reports only its own.
    assert_eq!(super::skip_summary::summary(dir.path(), 2), "entra-token tests: no checks skipped\n");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
