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
