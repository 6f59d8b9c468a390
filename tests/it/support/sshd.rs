//! A throwaway OpenSSH server on 127.0.0.1 for the suites that log in with real `ssh`
//! (SSH certificates): its own host key, config and port, the current user allowed in,
//! stopped when dropped. Missing OpenSSH is a `SKIPPED:` line (a failure under CI).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Sshd {
    child: Child,
    pub port: u16,
    /// The local user sshd lets in (the one running the tests).
    pub user: String,
    pub dir: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The OpenSSH programs a suite needs, or None after a `SKIPPED:` line naming `what`.
pub fn openssh_here(what: &str) -> bool {
    let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"].iter().any(|p| Path::new(p).exists());
    let client = ["ssh", "ssh-keygen", "ssh-add", "ssh-agent"].iter().all(|t| Command::new("which").arg(t).output().is_ok_and(|o| o.status.success()));
    if !(sshd && client) {
        super::skip::missing_tool("OpenSSH (sshd, ssh, ssh-keygen, ssh-add, ssh-agent)", what);
    }
    sshd && client
}

/// Starts sshd in `dir` with `extra` config lines (how users authenticate).
pub fn start(dir: &Path, extra: &str) -> Sshd {
    let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"].into_iter().map(PathBuf::from).find(|p| p.exists()).expect("sshd");
    std::fs::create_dir_all(dir).unwrap();
    let ok = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(dir.join("host_key")).status().unwrap().success();
    assert!(ok, "ssh-keygen failed");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        std::fs::create_dir_all("/run/sshd").unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap().trim().to_string();
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\nAuthorizedKeysFile none\n\
         PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
         PermitRootLogin prohibit-password\nAllowUsers {user}\nLogLevel VERBOSE\n{extra}",
        d = dir.display()
    );
    std::fs::write(dir.join("sshd_config"), config).unwrap();
    let log = std::fs::File::create(dir.join("sshd.log")).unwrap();
    let child = Command::new(&sshd).args(["-D", "-e", "-f"]).arg(dir.join("sshd_config")).stdin(Stdio::null()).stdout(Stdio::null()).stderr(log).spawn().unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "sshd did not start: {}", std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(50));
    }
    Sshd { child, port, user, dir: dir.to_path_buf() }
}

impl Sshd {
    /// `ssh` to this server as its user, no config file of the machine's, no SSH_* of ours;
    /// `args` before the command (keys, `-F`, `-o`), then `echo logged-in-as $(id -un)`.
    pub fn ssh(&self, args: &[&str]) -> Command {
        self.ssh_in(Command::new("ssh"), args)
    }

    /// [`Sshd::ssh`] on a prepared `ssh` command (a sandbox's environment, for the
    /// entra-token that ssh runs itself through `Match exec`).
    pub fn ssh_in(&self, mut c: Command, args: &[&str]) -> Command {
        c.args(["-T", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"])
            .args(["-l", &self.user, "-p", &self.port.to_string()])
            .args(args)
            .args(["127.0.0.1", "echo logged-in-as $(id -un)"]);
        for (k, _) in std::env::vars_os() {
            if k.to_str().is_some_and(|k| k.starts_with("SSH_")) {
                c.env_remove(k);
            }
        }
        c
    }

    /// What sshd logged (why it refused a key), for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }
}
