//! Runs the compiled `entra-token` in a sealed environment: credentials, proxies,
//! managed identity endpoints and display/browser variables of the developer's or CI's
//! shell are removed, IMDS is pointed at a refused port, and each test gets its own
//! HOME, config, cache and Azure CLI directory, so no test can reach a real cloud or
//! read a real token cache.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::http::refused_url;

/// How long one run of the binary may take before the test kills it and fails.
pub const WATCHDOG: Duration = Duration::from_secs(60);

/// Prefixes (case-sensitive) of variables that could leak a real identity or host into a test.
const SCRUB_PREFIXES: &[&str] = &[
    "AZURE_",
    "IDENTITY_",
    "MSI_",
    "IMDS_",
    "ARM_",
    "ACTIONS_ID_TOKEN",
    // Azure Pipelines: SYSTEM_ACCESSTOKEN, SYSTEM_OIDCREQUESTURI and the service connection
    // variables AzureCLI@2 sets, so a test run on a real agent never uses its identity.
    "SYSTEM_",
    "AZURESUBSCRIPTION_",
    "AAD_",
    "ENTRA_TOKEN_",
    "KUBERNETES_EXEC_INFO",
    "BROWSER",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "SSH_",
    "GIT_",
    "SSL_CERT_",
];

/// Variables removed whatever their case.
const SCRUB_ANY_CASE: &[&str] = &["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"];

/// Whether [`bin`] removes a variable of this name from the child's environment.
pub fn is_scrubbed(name: &str) -> bool {
    SCRUB_PREFIXES.iter().any(|p| name.starts_with(p))
        || SCRUB_ANY_CASE.iter().any(|v| name.eq_ignore_ascii_case(v))
}

/// `entra-token` with a scrubbed environment: no Azure/identity/proxy/display variables,
/// IMDS redirected to a refused local port, `NO_PROXY=127.0.0.1,localhost`.
/// `SSL_CERT_FILE`/`SSL_CERT_DIR` are removed too: https tests set them to the test CA.
pub fn bin() -> Command {
    bin_at(env!("CARGO_BIN_EXE_entra-token"))
}

/// [`bin`] for a copy of the binary at `program` (a test that runs it as another user
/// copies it out of a checkout that user may not be able to reach).
pub fn bin_at(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(is_scrubbed) {
            cmd.env_remove(&name);
        }
    }
    cmd.env("AZURE_POD_IDENTITY_AUTHORITY_HOST", refused_url());
    cmd.env("NO_PROXY", "127.0.0.1,localhost");
    // The developer's shell is not the test's: a backtrace setting changes what a child
    // prints, and helper links on their PATH change what doctor and the tools find.
    cmd.env_remove("RUST_BACKTRACE").env_remove("RUST_LIB_BACKTRACE");
    // Nor is their desktop session: with `storage = "auto"` (the default) refresh tokens and
    // PoP keys go to a Secret Service on the session bus, which would be the developer's
    // own keyring, outliving the sandbox. Tests that want one start their own.
    cmd.env_remove("DBUS_SESSION_BUS_ADDRESS");
    cmd.env("PATH", path());
    cmd
}

/// entra-token's own names: the README's `setup links ~/.local/bin` and `cargo install`
/// put them on a developer's PATH, where a test must not find them.
const OUR_NAMES: &[&str] = &["entra-token", "git-credential-entra-token", "docker-credential-entra-token", "entra-token-bazel", "az", "azd", "keyring"];

/// Is `dir/name` one of ours (for `az`/`azd`/`keyring`, a link to an entra-token binary)?
fn ours(dir: &std::path::Path, name: &str) -> bool {
    let file = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !file.exists() {
        return false;
    }
    // Names a real tool has too (the Azure CLI, jaraco's keyring): ours only as a link to us.
    if name == "az" || name == "azd" || name == "keyring" {
        return std::fs::canonicalize(&file).ok().and_then(|t| t.file_name().map(|n| n.to_string_lossy().starts_with("entra-token"))).unwrap_or(false);
    }
    true
}

/// The PATH every child of a test gets: this process's PATH with each directory that
/// holds one of entra-token's names replaced by a directory of links to everything else in
/// it (so `cargo` in ~/.cargo/bin and pip's tools in ~/.local/bin stay found, the
/// developer's entra-token links do not). Made once per test process, under target/tmp.
pub fn path() -> std::ffi::OsString {
    static PATH: std::sync::OnceLock<std::ffi::OsString> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let original = std::env::var_os("PATH").unwrap_or_default();
        let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("path-{}", std::process::id()));
        controlled_path(&original, &root)
    })
    .clone()
}

/// [`path`] for a given PATH, with the stand-in directories made under `root`.
pub fn controlled_path(original: &std::ffi::OsStr, root: &std::path::Path) -> std::ffi::OsString {
    let mut dirs = Vec::new();
    for (i, dir) in std::env::split_paths(original).enumerate() {
        if !OUR_NAMES.iter().any(|n| ours(&dir, n)) {
            dirs.push(dir);
            continue;
        }
        // Windows (tests under Wine): no symlinks to make; the directory is left out.
        #[cfg(unix)]
        {
            let shadow = root.join(i.to_string());
            let _ = std::fs::remove_dir_all(&shadow);
            std::fs::create_dir_all(&shadow).expect("create a PATH stand-in directory");
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let name = entry.file_name();
                let plain = name.to_string_lossy().trim_end_matches(std::env::consts::EXE_SUFFIX).to_string();
                if OUR_NAMES.contains(&plain.as_str()) && ours(&dir, &plain) {
                    continue;
                }
                let _ = std::os::unix::fs::symlink(entry.path(), shadow.join(&name));
            }
            dirs.push(shadow);
        }
        #[cfg(not(unix))]
        let _ = (i, root);
    }
    std::env::join_paths(dirs).expect("PATH entries")
}

/// A fresh directory holding one test's HOME, config, caches and Azure CLI directory.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("entra-token-test-")
            .tempdir()
            .expect("create sandbox dir");
        std::fs::create_dir_all(dir.path().join("home")).expect("create sandbox home");
        Sandbox { dir }
    }

    /// `dir/rel`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// [`bin`] with HOME, XDG dirs, `ENTRA_TOKEN_CONFIG` (`config.toml`), `ENTRA_TOKEN_CACHE_DIR`
    /// (`cache/`) and `AZURE_CONFIG_DIR` (`azure/`) all inside the sandbox. Only `home/` exists
    /// beforehand: the binary must create the rest itself.
    /// [`Sandbox::cmd`] with `args`.
    pub fn cmd_with(&self, args: &[&str]) -> Command {
        let mut c = self.cmd();
        c.args(args);
        c
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = bin();
        cmd.env("HOME", self.path("home"))
            .env("USERPROFILE", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("home/.config"))
            .env("XDG_CACHE_HOME", self.path("home/.cache"))
            .env("XDG_DATA_HOME", self.path("home/.local/share"))
            .env("XDG_STATE_HOME", self.path("home/.local/state"))
            .env("XDG_RUNTIME_DIR", self.path("run"))
            .env("APPDATA", self.path("home/AppData/Roaming"))
            .env("LOCALAPPDATA", self.path("home/AppData/Local"))
            .env("ENTRA_TOKEN_CONFIG", self.path("config.toml"))
            .env("ENTRA_TOKEN_CACHE_DIR", self.path("cache"))
            .env("AZURE_CONFIG_DIR", self.path("azure"))
            .current_dir(self.dir.path());
        cmd
    }

    /// `program` with the same sealed environment and working directory as [`Sandbox::cmd`],
    /// for driving a real client (kubectl, git, cargo, …) that runs entra-token itself.
    pub fn tool(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let template = self.cmd();
        let mut cmd = Command::new(program);
        for (k, v) in template.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        if let Some(d) = template.get_current_dir() {
            cmd.current_dir(d);
        }
        cmd
    }

    /// `bin/NAME` in the sandbox: a symlink to the built binary under a multi-call name
    /// (`az`, `docker-credential-entra-token`, …), the way `setup links` makes it (on
    /// Windows `NAME.exe`, a hard link).
    pub fn link(&self, name: &str) -> PathBuf {
        let dir = self.path("bin");
        std::fs::create_dir_all(&dir).expect("create the sandbox's bin/");
        let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
        if !path.exists() {
            #[cfg(unix)]
            std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_entra-token"), &path).expect("link the binary into bin/");
            #[cfg(not(unix))]
            std::fs::hard_link(env!("CARGO_BIN_EXE_entra-token"), &path).expect("link the binary into bin/");
        }
        path
    }

    /// [`Sandbox::tool`] with the sandbox's `bin/` first on PATH, so a client finds the
    /// links made by [`Sandbox::link`].
    pub fn tool_with_links(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = self.tool(program);
        let path = path();
        let dirs = std::iter::once(self.path("bin")).chain(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(dirs).expect("PATH entries"));
        cmd
    }

    /// Writes `config.toml` (the file `ENTRA_TOKEN_CONFIG` names).
    pub fn write_config(&self, toml: &str) {
        std::fs::write(self.path("config.toml"), toml).expect("write sandbox config.toml");
    }

    /// Writes an executable `dir/rel` (a stand-in tool's script) and returns its path. See
    /// [`install_executable`]: the test process must never hold a program open for writing.
    pub fn write_executable(&self, rel: &str, contents: &str) -> PathBuf {
        let path = self.path(rel);
        install_executable(contents, &path);
        path
    }

    /// Writes `dir/rel` (creating parent directories) and returns its path.
    pub fn write_file(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent dir in sandbox");
        }
        std::fs::write(&path, contents).expect("write sandbox file");
        path
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

fn drain<R: Read + Send + 'static>(r: Option<R>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        let _ = tx.send(buf);
    });
    rx
}

/// Spawns `cmd` with piped stdio, writes `stdin` and closes it, and waits at most
/// [`WATCHDOG`]; an overrun kills the process and panics.
pub fn run_with_stdin(cmd: Command, stdin: &str) -> Output {
    run_with_timeout(cmd, stdin, WATCHDOG)
}

/// [`run_with_stdin`] with a watchdog of `limit` instead of [`WATCHDOG`].
pub fn run_with_timeout(mut cmd: Command, stdin: &str, limit: Duration) -> Output {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {what}: {e}"));
    let input = stdin.as_bytes().to_vec();
    let mut child_stdin = child.stdin.take();
    let writer = thread::spawn(move || {
        if let Some(s) = child_stdin.as_mut() {
            // A child that exits without reading stdin is fine: ignore EPIPE.
            let _ = s.write_all(&input);
        }
        drop(child_stdin);
    });
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());

    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                let err = stderr
                    .recv_timeout(Duration::from_secs(2))
                    .unwrap_or_default();
                panic!(
                    "{what} still running after {limit:?}; killed it. stderr so far:\n{}",
                    String::from_utf8_lossy(&err)
                );
            }
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    };
    let _ = writer.join();
    let grace = Duration::from_secs(10);
    let stdout = stdout.recv_timeout(grace).unwrap_or_else(|_| {
        panic!("{what} exited but its stdout stayed open (a leftover child process?)")
    });
    let stderr = stderr.recv_timeout(grace).unwrap_or_else(|_| {
        panic!("{what} exited but its stderr stayed open (a leftover child process?)")
    });
    Output {
        status,
        stdout,
        stderr,
    }
}

/// [`run_with_stdin`] with empty stdin.
pub fn run(cmd: Command) -> Output {
    run_with_stdin(cmd, "")
}

/// Puts `contents` at `dest`, mode 0755, written by a child process (`sh`), never by this one.
///
/// The tests run in threads that fork constantly. A file this process opened for writing is,
/// for a moment, also open in every child forked meanwhile (until that child execs), and
/// exec(2) of a file open for writing anywhere fails with ETXTBSY ("Text file busy"). Written
/// by a child, the file is never open for writing in this process, so no fork can inherit it.
pub fn install_executable(contents: &str, dest: &std::path::Path) {
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).expect("create the executable's directory");
    }
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"]).arg(dest);
    let out = run_with_stdin(cmd, contents);
    assert!(out.status.success(), "writing {} failed: {}", dest.display(), String::from_utf8_lossy(&out.stderr));
}

/// A copy of the program `src` at `dest`, mode 0755, made by `cp` for the reason
/// [`install_executable`] gives.
#[cfg(unix)]
pub fn copy_executable(src: impl AsRef<std::path::Path>, dest: &std::path::Path) {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "cp \"$1\" \"$2\" && chmod 755 \"$2\"", "sh"]).arg(src.as_ref()).arg(dest);
    let out = run(cmd);
    assert!(out.status.success(), "copying to {} failed: {}", dest.display(), String::from_utf8_lossy(&out.stderr));
}
