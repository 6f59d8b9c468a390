//! The end of `cargo test`: which checks this run skipped and why (a missing tool, a limit
//! of this machine), so a run that skipped a real client's check does not end on a bare
//! `ok`. Cargo runs test targets in name order, so this one runs after `it` and lists what
//! `it` recorded (tests/it/support/skip.rs) under the id of this run. Under CI, `.ci/run`
//! lists them itself.

#[path = "../it/support/skip_summary.rs"]
mod skip_summary;

fn main() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("skips");
    let text = skip_summary::summary(&dir, skip_summary::run_id());
    if std::env::var_os("CI").is_none_or(|v| v.is_empty() || v == "false") {
        print!("{text}");
    }
}
