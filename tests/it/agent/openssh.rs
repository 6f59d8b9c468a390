//! The agent over real OpenSSH: a throwaway `sshd` on 127.0.0.1, the socket forwarded
//! with `ssh -R`, and on the "remote" side, with an empty HOME, `git credential fill` and
//! `get-token` get the token through it.

use super::*;

/// A throwaway sshd on 127.0.0.1 that lets the current user in with a throwaway key.
struct Sshd {
    child: Child,
    port: u16,
    key: PathBuf,
    user: String,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sshd(dir: &Path) -> Option<Sshd> {
    let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"].into_iter().map(PathBuf::from).find(|p| p.exists());
    let (Some(sshd), true) = (sshd, Command::new("ssh").arg("-V").output().is_ok()) else {
        support::skip::missing_tool("OpenSSH (sshd, ssh)", "the forwarded-agent check");
        return None;
    };
    let keygen = |path: &Path| {
        let ok = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(path).status().unwrap().success();
        assert!(ok, "ssh-keygen failed");
    };
    std::fs::create_dir_all(dir).unwrap();
    keygen(&dir.join("host_key"));
    keygen(&dir.join("user_key"));
    std::fs::copy(dir.join("user_key.pub"), dir.join("authorized_keys")).unwrap();
    // sshd as root needs its privilege-separation directory.
    if is_root() {
        std::fs::create_dir_all("/run/sshd").unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap().trim().to_string();
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\nAuthorizedKeysFile {d}/authorized_keys\n\
         PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
         PermitRootLogin prohibit-password\nAllowStreamLocalForwarding yes\nStreamLocalBindUnlink yes\nAllowUsers {user}\n",
        d = dir.display()
    );
    std::fs::write(dir.join("sshd_config"), config).unwrap();
    let child = Command::new(&sshd).args(["-D", "-e", "-f"]).arg(dir.join("sshd_config")).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "sshd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Sshd { child, port, key: dir.join("user_key"), user })
}

impl Sshd {
    /// `ssh -R remote:local host sh -c script`, with stdin.
    fn run(&self, remote: &Path, local: &Path, script: &str, stdin: &str) -> std::process::Output {
        let mut c = Command::new("ssh");
        c.args(["-F", "none", "-T", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"])
            .args(["-o", "ExitOnForwardFailure=yes", "-o", "StreamLocalBindUnlink=yes", "-o", "IdentitiesOnly=yes", "-i"])
            .arg(&self.key)
            .args(["-p", &self.port.to_string(), "-R"])
            .arg(format!("{}:{}", remote.display(), local.display()))
            .arg(format!("{}@127.0.0.1", self.user))
            .arg(script);
        for (k, _) in std::env::vars_os() {
            if k.to_str().is_some_and(|k| k.starts_with("SSH_")) {
                c.env_remove(k);
            }
        }
        run_with_stdin(c, stdin)
    }
}

#[test]
fn over_real_openssh_git_and_get_token_on_the_remote_side_use_the_forwarded_agent() {
    let lap = laptop(&["--allow-profile", "ado"]);
    let Some(sshd) = sshd(&lap.sb.path("ssh")) else { return };
    // The "remote" host: an empty HOME, the binary under git's helper name, nothing else.
    let remote = lap.sb.path("remote");
    std::fs::create_dir_all(remote.join("home")).unwrap();
    std::fs::create_dir_all(remote.join("run")).unwrap();
    std::fs::set_permissions(remote.join("run"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::create_dir_all(remote.join("bin")).unwrap();
    for name in ["entra-token", "git-credential-entra-token"] {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_entra-token"), remote.join("bin").join(name)).unwrap();
    }
    let sock = remote.join("run/agent.sock");
    let git = ["/usr/local/bin/git", "/usr/bin/git"].into_iter().find(|g| Path::new(g).exists()).expect("git");
    let env = format!(
        "env -i HOME={r}/home PATH={r}/bin:/usr/local/bin:/usr/bin:/bin ENTRA_TOKEN_AGENT={s} GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0",
        r = remote.display(),
        s = sock.display()
    );

    let out = sshd.run(&sock, &lap.socket, &format!("{env} entra-token get-token -p ado"), "");
    assert_eq!(code(&out), 0, "stderr: {}", stderr(&out));
    let issued = lap.mock.issued_access_tokens();
    assert_eq!(stdout(&out).trim(), issued.last().unwrap());

    let out = sshd.run(
        &sock,
        &lap.socket,
        &format!("{env} {git} -c credential.helper= -c credential.helper=entra-token -c credential.useHttpPath=true credential fill"),
        "protocol=https\nhost=dev.azure.com\npath=org/_git/repo\n\n",
    );
    assert_eq!(code(&out), 0, "stderr: {}", stderr(&out));
    let answer = stdout(&out);
    let ado = lap.mock.issued_access_tokens();
    assert_eq!(ado.len(), 2, "one token for ARM, one for Azure DevOps");
    assert!(answer.contains(&format!("password={}", ado[1])), "{answer}");
    assert_eq!(support::jwt_claims(&ado[1]).unwrap()["aud"], AZURE_DEVOPS);
    assert!(!remote.join("home").read_dir().unwrap().any(|_| true), "the remote side wrote into its HOME");

    // The forwarded socket serves only what the agent allows.
    let out = sshd.run(&sock, &lap.socket, &format!("{env} entra-token get-token -p arm"), "");
    assert_eq!(code(&out), 3, "stderr: {}", stderr(&out));
    assert!(stderr(&out).contains("this agent does not serve profile 'arm'"), "{}", stderr(&out));
}
