//! The tests own their environment: what the developer's shell has (helper links on PATH
//! from the README's setup, `RUST_BACKTRACE=1`) never changes a result. Each check runs
//! this test binary again, in the environment that broke it, and the affected test must pass.

// On Windows the helpers of these Unix-only checks go unused.
#![cfg_attr(windows, allow(unused_imports, dead_code))]

use std::ffi::OsString;
use std::process::Command;

use crate::support::{Sandbox, run, text};

/// This test binary, running exactly `tests` one at a time, ignored ones included.
fn rerun(tests: &[&str], env: &[(&str, OsString)]) -> String {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary"));
    cmd.args(tests).args(["--exact", "--include-ignored", "--test-threads=1"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run(cmd);
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

// Unix only: the links are symlinks, as `setup links` makes them.
#[cfg(unix)]
#[test]
fn helper_links_on_the_developer_s_path_are_not_seen_by_tests() {
    let sb = Sandbox::new();
    let links = sb.path("dev-bin");
    std::fs::create_dir_all(&links).unwrap();
    for name in ["docker-credential-entra-token", "git-credential-entra-token", "entra-token-bazel"] {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_entra-token"), links.join(name)).unwrap();
    }
    crate::support::env::install_executable("#!/bin/sh\necho hello\n", &links.join("their-tool"));
    let path = std::env::join_paths(std::iter::once(links.clone()).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()))).unwrap();
    let test = "doctor::tools_wired_to_us_are_reported_with_their_profile";
    let out = rerun(&[test], &[("PATH", path.clone())]);
    assert!(out.contains(&format!("test {test} ... ok")), "{out}");

    // The rest of that directory stays found.
    let controlled = crate::support::env::controlled_path(&path, &sb.path("shadow"));
    let mut sh = Command::new("sh");
    sh.env("PATH", &controlled).args(["-c", "command -v their-tool; command -v docker-credential-entra-token || echo none"]);
    let found = text(&run(sh).stdout);
    assert!(found.contains("/their-tool\n") && found.ends_with("none\n"), "{found}");
}

// Unix only: the memory test it runs is.
#[cfg(unix)]
#[test]
fn a_backtrace_in_another_test_leaves_the_memory_test_alone() {
    let memory = "faults::a_huge_answer_is_a_bounded_error_in_bounded_memory";
    let out = rerun(&["faults::a_backtrace_first", memory], &[("RUST_BACKTRACE", "1".into()), ("ENTRA_TOKEN_TEST_PANIC", "1".into())]);
    assert!(out.contains("test faults::a_backtrace_first ... FAILED") && out.contains("stack backtrace"), "the panic ran first, with a backtrace: {out}");
    assert!(out.contains(&format!("test {memory} ... ok")), "{out}");
}
