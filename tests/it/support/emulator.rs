//! The product's own emulator (`entra-token emulator`) run as a user runs it: a child
//! process in a sandbox, its `export` lines read until the empty line, stopped when
//! dropped. Tests then point real clients (ours, MSAL, azure-identity, a JWT verifier) at it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use super::Sandbox;

pub struct Emulator {
    child: Child,
    /// NAME → value, as printed.
    pub exports: Vec<(String, String)>,
    /// The lines as printed (the `export` lines, then the empty line).
    pub printed: String,
}

impl Emulator {
    /// `entra-token emulator --state-dir SANDBOX/emulator ARGS…`.
    pub fn start(sb: &Sandbox, args: &[&str]) -> Emulator {
        let mut cmd = sb.cmd();
        cmd.arg("emulator").arg("--state-dir").arg(sb.path("emulator")).args(args);
        Emulator::spawn(cmd)
    }

    pub fn spawn(mut cmd: Command) -> Emulator {
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("start entra-token emulator");
        let out = child.stdout.take().unwrap();
        let mut printed = String::new();
        let mut exports = Vec::new();
        for line in BufReader::new(out).lines() {
            let line = line.expect("read the emulator's stdout");
            printed.push_str(&line);
            printed.push('\n');
            if line.is_empty() {
                break;
            }
            let (k, v) = line.strip_prefix("export ").and_then(|l| l.split_once('=')).unwrap_or_else(|| panic!("not an export line: {line}"));
            exports.push((k.to_string(), v.trim_matches('\'').to_string()));
        }
        assert!(printed.ends_with("\n\n"), "the emulator stopped before its empty line: {printed}");
        Emulator { child, exports, printed }
    }

    pub fn var(&self, name: &str) -> &str {
        self.exports.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("no export {name} in {:?}", self.exports.iter().map(|(k, _)| k).collect::<Vec<_>>()))
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        self.var("AZURE_AUTHORITY_HOST")
    }

    /// Sets every exported variable on `cmd`, as `eval "$(entra-token emulator)"` would.
    pub fn apply(&self, cmd: &mut Command) {
        cmd.envs(self.exports.iter().map(|(k, v)| (k, v)));
    }

    /// The binary in `sb` with `args`, pointed at this emulator by its exports.
    pub fn cmd(&self, sb: &Sandbox, args: &[&str]) -> Command {
        let mut c = sb.cmd();
        self.apply(&mut c);
        c.args(args);
        c
    }

    /// An HTTP client that trusts the emulator's CA and nothing else, and reads 4xx bodies.
    pub fn agent(&self) -> ureq::Agent {
        if self.url().starts_with("http://") {
            return ureq::Agent::config_builder().proxy(None).http_status_as_error(false).max_redirects(0).build().into();
        }
        let pem = std::fs::read(self.var("NODE_EXTRA_CA_CERTS")).expect("read the emulator's CA");
        let der = rustls::pki_types::pem::PemObject::from_pem_slice(&pem).map(|c: rustls::pki_types::CertificateDer<'static>| c).expect("CA PEM");
        let roots = ureq::tls::RootCerts::new_with_certs(&[ureq::tls::Certificate::from_der(der.as_ref()).to_owned()]);
        let tls = ureq::tls::TlsConfig::builder().root_certs(roots).build();
        ureq::Agent::config_builder().tls_config(tls).proxy(None).http_status_as_error(false).max_redirects(0).build().into()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
