//! `entra-token demo`: the README's first command. Starts the emulator in this process on
//! a free port and walks the quick start against it as a user would, each step a run of
//! this very binary (sign-in, a token, the cached second call with its time, kubectl's
//! ExecCredential, a git credential), printing what each did. Everything lives in a
//! throwaway HOME, config and cache that are removed at the end: it never touches the
//! user's real state and needs no network.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use clap::Args;

use super::EmulatorArgs;
use crate::error::{Error, Result};

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Keep the throwaway directory (HOME, config, cache, the emulator's CA) and say where it is.
    #[arg(long)]
    pub keep: bool,
}

/// A private, fresh directory under the system's temporary directory.
fn scratch() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("entra-token-demo-{}-{}", std::process::id(), super::wire::b64url(super::wire::random_bytes(6))));
    crate::fs::create_private_dir(&dir).map_err(|e| Error::caused(format!("cannot create {}", dir.display()), e))?;
    Ok(dir)
}

struct Walk {
    exe: PathBuf,
    home: PathBuf,
    exports: Vec<(String, String)>,
    out: std::io::Stdout,
}

/// What one step's run gave.
struct Ran {
    stdout: String,
    millis: u128,
}

/// A token shown by its start and length: enough to see it is a JWT without pasting it anywhere.
fn short(token: &str) -> String {
    format!("{}… ({} characters)", &token[..token.len().min(24)], token.len())
}

impl Walk {
    fn say(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
        let _ = self.out.flush();
    }

    /// Runs `entra-token ARGS` (with `stdin` and extra variables) as a fresh process in the demo's environment.
    fn run(&mut self, shown: &str, args: &[&str], stdin: &str, extra: &[(&str, &str)]) -> Result<Ran> {
        self.say(&format!("   $ {shown}"));
        let mut cmd = Command::new(&self.exe);
        cmd.args(args).env_clear().env("HOME", &self.home).envs(self.exports.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if let Some(path) = crate::env::os(crate::env::PATH) {
            cmd.env("PATH", path);
        }
        // Windows processes need SystemRoot (sockets, TLS); the user's folders go into the throwaway HOME.
        #[cfg(windows)]
        {
            for k in ["SystemRoot", "TEMP", "TMP"] {
                if let Some(v) = crate::env::os(k) {
                    cmd.env(k, v);
                }
            }
            cmd.env("USERPROFILE", &self.home).env("APPDATA", self.home.join("AppData/Roaming")).env("LOCALAPPDATA", self.home.join("AppData/Local"));
        }
        cmd.envs(extra.iter().copied()).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(|e| Error::caused("cannot run entra-token for the demo", e))?;
        if let Some(mut input) = child.stdin.take() {
            let _ = input.write_all(stdin.as_bytes());
        }
        let output = child.wait_with_output().map_err(|e| Error::caused("the demo's step did not finish", e))?;
        let millis = started.elapsed().as_millis();
        for line in String::from_utf8_lossy(&output.stderr).lines() {
            self.say(&format!("   {}", crate::log::escape(line)));
        }
        if !output.status.success() {
            return Err(Error::general(format!("the demo's step `{shown}` failed (exit {})", output.status.code().unwrap_or(-1))));
        }
        Ok(Ran { stdout: String::from_utf8_lossy(&output.stdout).into_owned(), millis })
    }
}

pub(crate) fn run(args: &DemoArgs) -> Result<ExitCode> {
    let dir = scratch()?;
    let result = walk(&dir);
    if args.keep {
        crate::log::warn!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn walk(dir: &Path) -> Result<ExitCode> {
    let home = dir.join("home");
    crate::fs::create_private_dir(&home).map_err(|e| Error::caused(format!("cannot create {}", home.display()), e))?;
    let emulator = EmulatorArgs { port: 0, bind: "127.0.0.1".into(), http: false, config: None, approve: None, tenant: None, client_id: None, user: None, token_lifetime: None, state_dir: Some(dir.join("emulator")), managed_identity: false, pid_file: None, background: false, shell: super::Shell::Sh };
    let running = super::start(&emulator)?;
    let exe = std::env::current_exe().map_err(|e| Error::caused("cannot find this program to run the demo's steps", e))?;
    let mut w = Walk { exe, home, exports: running.exports, out: std::io::stdout() };
    w.say(&format!("entra-token demo: a local Entra emulator on {} (not Microsoft's; its tokens say so),", running.url));
    w.say("a throwaway HOME, config and cache; no network, and nothing of yours is touched.\n");

    w.say("1. Sign in once (device code; the emulator approves it as alice@contoso.com)");
    w.run("entra-token login", &["login"], "", &[])?;

    w.say("\n2. A token for Microsoft Graph (through the refresh token the sign-in left)");
    let first = w.run("entra-token get-token -r graph", &["get-token", "-r", "graph"], "", &[])?;
    let token = first.stdout.trim().to_string();
    w.say(&format!("   {token}"));
    if let Some((_, claims)) = super::wire::jwt_parts(&token) {
        let c = |k: &str| claims.get(k).map(|v| v.to_string()).unwrap_or_default();
        w.say(&format!("   (claims: iss {}, aud {}, upn {}, emulator {})", c("iss"), c("aud"), c("upn"), c("emulator")));
    }

    w.say("\n3. The same call again: answered from the cache, no network");
    let second = w.run("entra-token get-token -r graph", &["get-token", "-r", "graph"], "", &[])?;
    let same = if second.stdout.trim() == token { "the same token" } else { "a different token" };
    w.say(&format!("   {} — {same}, in {} ms (the first, over the network, took {} ms)", short(second.stdout.trim()), second.millis, first.millis));

    w.say("\n4. kubectl's exec credential plugin (what `entra-token setup kubectl` wires up)");
    let exec_info = r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}"#;
    let kube = w.run("KUBERNETES_EXEC_INFO='{…}' entra-token kubectl", &["kubectl"], "", &[("KUBERNETES_EXEC_INFO", exec_info)])?;
    let v: serde_json::Value = serde_json::from_str(&kube.stdout).map_err(|e| Error::caused("kubectl's answer is not JSON", e))?;
    let kube_token = v["status"]["token"].as_str().unwrap_or("");
    w.say(&format!("   {{\"kind\":{},\"status\":{{\"token\":\"{}\",\"expirationTimestamp\":{}}}}}", v["kind"], short(kube_token), v["status"]["expirationTimestamp"]));

    w.say("\n5. git's credential helper for Azure DevOps (a profile claiming the URL, then what git asks)");
    w.run(
        "entra-token profile add ado --flow device-code --tenant contoso.com --url https://dev.azure.com/contoso/ --storage file",
        &["profile", "add", "ado", "--flow", "device-code", "--tenant", "contoso.com", "--url", "https://dev.azure.com/contoso/", "--storage", "file", "--no-prompt"],
        "",
        &[],
    )?;
    let git = w.run("printf 'protocol=https\\nhost=dev.azure.com\\npath=contoso/app\\n\\n' | entra-token git get", &["git", "get"], "protocol=https\nhost=dev.azure.com\npath=contoso/app\n\n", &[])?;
    for line in git.stdout.lines() {
        match line.split_once('=') {
            Some(("password", p)) => w.say(&format!("   password={}", short(p))),
            _ => w.say(&format!("   {}", crate::log::escape(line))),
        }
    }
    w.say("\nDone. Keep an emulator running for your own tests with `entra-token emulator` (docs/emulator.md);");
    w.say("for a real tenant, start at the README's Quick start.");
    // Run through `cargo run`: the Quick start's `entra-token …` would not be found yet.
    let name = if cfg!(windows) { "entra-token.exe" } else { "entra-token" };
    if !crate::env::os(crate::env::PATH).is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file())) {
        w.say("entra-token is not on your PATH yet: from the source checkout, `cargo install --locked --path .`");
        w.say("puts it in ~/.cargo/bin (after `cargo run --release` it reuses that build).");
    }
    Ok(ExitCode::SUCCESS)
}
