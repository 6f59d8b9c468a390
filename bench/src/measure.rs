//! Running a child the way a tool runs us (argv, env, stdin, stdout) and measuring it:
//! wall time from spawn to reap, and the child's peak RSS from wait4's rusage. Plus the
//! few statistics the table needs (medians, paired ratios).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One way of invoking a program.
#[derive(Clone)]
pub struct Spec {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub stdin: Vec<u8>,
    /// The run succeeded when it exited 0 and stdout contains this.
    pub expect: String,
}

impl Spec {
    pub fn new(name: &str, program: &PathBuf, args: &[&str]) -> Spec {
        Spec { name: name.into(), program: program.clone(), args: args.iter().map(|s| s.to_string()).collect(), env: vec![], stdin: vec![], expect: String::new() }
    }
    pub fn stdin(mut self, s: &str) -> Spec {
        self.stdin = s.as_bytes().to_vec();
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Spec {
        self.env.push((k.into(), v.into()));
        self
    }
    pub fn expect(mut self, s: &str) -> Spec {
        self.expect = s.into();
        self
    }
}

pub struct Sample {
    pub wall: Duration,
    pub maxrss_kib: i64,
    pub ok: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Sample {
    /// Why a run failed, in one line.
    pub fn failure(&self) -> String {
        let err = String::from_utf8_lossy(&self.stderr);
        let out = String::from_utf8_lossy(&self.stdout);
        let line = err.lines().chain(out.lines()).find(|l| !l.trim().is_empty()).unwrap_or("no output");
        line.chars().take(140).collect()
    }
}

/// A started child, not yet reaped.
pub struct Running {
    child: std::process::Child,
    start: Instant,
    expect: String,
}

/// Starts `spec` with exactly `base_env` plus its own variables, feeds stdin and closes it.
pub fn start(spec: &Spec, base_env: &[(String, String)]) -> Running {
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args).env_clear().envs(base_env.iter().cloned()).envs(spec.env.iter().cloned());
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", spec.program.display()));
    if let Some(mut stdin) = child.stdin.take() {
        // A child that exits without reading stdin closes the pipe: not an error here.
        let _ = stdin.write_all(&spec.stdin);
    }
    Running { child, start, expect: spec.expect.clone() }
}

impl Running {
    /// Reads the child's output, reaps it with wait4 and takes the figures.
    pub fn finish(mut self) -> Sample {
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_end(&mut stdout);
        }
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_end(&mut stderr);
        }
        let (status, maxrss_kib) = wait4(self.child.id() as libc::pid_t);
        let wall = self.start.elapsed();
        let exited_ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        let ok = exited_ok && String::from_utf8_lossy(&stdout).contains(&self.expect);
        Sample { wall, maxrss_kib, ok, stdout, stderr }
    }
}

pub fn run(spec: &Spec, base_env: &[(String, String)]) -> Sample {
    start(spec, base_env).finish()
}

fn wait4(pid: libc::pid_t) -> (libc::c_int, i64) {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; zeroed is a valid value for it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own unreaped child; both pointers are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            return (status, usage.ru_maxrss as i64);
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return (-1, 0);
        }
    }
}

pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// The median of per-round ratios a[i] / b[i]: runs taken side by side cancel drift.
pub fn paired_ratio(a: &[f64], b: &[f64]) -> f64 {
    let ratios: Vec<f64> = a.iter().zip(b).filter(|(_, b)| **b > 0.0).map(|(a, b)| a / b).collect();
    median(&ratios)
}

pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
