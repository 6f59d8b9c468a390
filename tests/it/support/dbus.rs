//! A private D-Bus session bus for the tests that talk to desktop services (the Secret
//! Service, desktop notifications), so no test touches the user's own session.

use super::Sandbox;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The tools `what` needs, each present, or a recorded skip naming the missing one.
pub fn have_tools(tools: &[&str], what: &str) -> bool {
    for tool in tools {
        if Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
            super::skip::missing_tool(tool, what);
            return false;
        }
    }
    true
}

/// Starts `dbus-daemon --session` on a socket in the sandbox: the daemon (the caller
/// kills it) and the address it printed once it was listening.
pub fn session_bus(sb: &Sandbox) -> Option<(Child, String)> {
    let mut daemon = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1", &format!("--address=unix:path={}", sb.path("bus").display())])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut line = String::new();
    BufReader::new(daemon.stdout.take()?).read_line(&mut line).ok()?;
    Some((daemon, line.trim().to_string()))
}

/// A private session bus with gnome-keyring's Secret Service on it, unlocked.
#[cfg(unix)]
pub struct SecretService {
    bus: Child,
    keyring: Child,
    pub address: String,
}

#[cfg(unix)]
impl SecretService {
    pub fn start(sb: &Sandbox) -> Option<SecretService> {
        if !have_tools(&["dbus-daemon", "gnome-keyring-daemon"], "the Secret Service check") {
            return None;
        }
        let (bus, address) = session_bus(sb)?;
        let mut keyring = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("HOME", sb.path("home"))
            .env("XDG_DATA_HOME", sb.path("home/.local/share"))
            .env("XDG_RUNTIME_DIR", sb.path("run"))
            .env_remove("DISPLAY")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        std::fs::create_dir_all(sb.path("run")).ok()?;
        std::fs::set_permissions(sb.path("run"), <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o700)).ok()?;
        use std::io::Write;
        let mut stdin = keyring.stdin.take().unwrap();
        stdin.write_all(b"test-keyring-password").ok()?;
        drop(stdin);
        let ss = SecretService { bus, keyring, address };
        // Wait until the service owns its name on the bus.
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_secs(10) {
            let o = Command::new("dbus-send")
                .args(["--session", "--print-reply", "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", "string:org.freedesktop.secrets"])
                .env("DBUS_SESSION_BUS_ADDRESS", &ss.address)
                .output()
                .ok()?;
            if String::from_utf8_lossy(&o.stdout).contains("boolean true") {
                return Some(ss);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        super::skip::not_here("gnome-keyring did not come up on the test bus");
        None
    }
}

#[cfg(unix)]
impl Drop for SecretService {
    fn drop(&mut self) {
        let _ = self.keyring.kill();
        let _ = self.keyring.wait();
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}

#[cfg(unix)]
impl SecretService {
    /// How many items the Secret Service holds with all of `attributes` (locked or not).
    pub fn count_items(&self, attributes: &[(&str, &str)]) -> usize {
        let dict: Vec<String> = attributes.iter().flat_map(|(k, v)| [k.to_string(), v.to_string()]).collect();
        let o = Command::new("dbus-send")
            .args(["--session", "--print-reply", "--dest=org.freedesktop.secrets", "/org/freedesktop/secrets", "org.freedesktop.Secret.Service.SearchItems"])
            .arg(format!("dict:string:string:{}", dict.join(",")))
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .output()
            .expect("run dbus-send");
        assert!(o.status.success(), "SearchItems failed: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).matches("object path \"/org/freedesktop/secrets/collection/").count()
    }
}

