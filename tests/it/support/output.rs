//! Reading a finished run of the binary: its streams as text, its exit code, and the
//! assertion that it succeeded (which prints both streams when it did not).

use std::process::Output;

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// stdout, trimmed (one answer per run).
pub fn stdout(o: &Output) -> String {
    text(&o.stdout).trim().to_string()
}

pub fn stderr(o: &Output) -> String {
    text(&o.stderr)
}

/// The exit code, -1 when a signal ended the run.
pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// The run, after asserting it exited 0.
pub fn ok(o: Output) -> Output {
    assert!(o.status.success(), "exit {:?}\nstdout: {}\nstderr: {}", o.status.code(), text(&o.stdout), text(&o.stderr));
    o
}

/// The trimmed stdout of a run that must have exited 0.
pub fn ok_stdout(o: &Output) -> String {
    assert!(o.status.success(), "exit {:?}\nstdout: {}\nstderr: {}", o.status.code(), text(&o.stdout), text(&o.stderr));
    stdout(o)
}

/// The run's one `entra-token: …` line on stderr (asserted to be one), and its text.
pub fn one_line(out: &Output) -> String {
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "expected one line on stderr, got:\n{err}");
    assert!(err.starts_with("entra-token: "), "{err}");
    err
}
