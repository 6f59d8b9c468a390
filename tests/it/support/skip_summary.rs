//! The summary of one `cargo test` run's skipped checks, as the `skipped` target prints it
//! (tests/skipped/main.rs includes this file): what `skip.rs` recorded under this run's id,
//! and every record cleared afterwards, so an earlier run's skips are never reported again.

use std::path::Path;

/// The summary of run `run`'s records in `dir`; removes every record in `dir`.
pub fn summary(dir: &Path, run: u32) -> String {
    let skipped = std::fs::read_to_string(dir.join(format!("{run}.txt"))).unwrap_or_default();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let lines: Vec<&str> = skipped.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return "entra-token tests: no checks skipped\n".to_string();
    }
    let mut out = format!("entra-token tests: {} checks skipped on this machine (`.ci/run` installs what they need):\n", lines.len());
    for l in lines {
        out.push_str(&format!("  {l}\n"));
    }
    out
}

/// This run of `cargo test`: the pid of the cargo that started this process (the test
/// binary and the `skipped` target share it); an earlier run's file has another name.
pub fn run_id() -> u32 {
    #[cfg(unix)]
    return std::os::unix::process::parent_id();
    #[cfg(not(unix))]
    return 0;
}
