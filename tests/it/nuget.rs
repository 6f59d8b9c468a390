//! The NuGet credential plugin, driven by a plugin host written here from NuGet's published
//! protocol (docs "NuGet cross platform plugins" and NuGet.Client's Plugins code): the real
//! binary under its `nuget-plugin-entra-token` name with `-Plugin`, JSON lines both ways,
//! the symmetric handshake, every message NuGet sends an authentication plugin in the order
//! it sends them, progress against the 5 s request timeout, a cancel and a close. The .NET
//! SDK cannot be installed here, so no real NuGet runs (docs/feeds.md says so).

use crate::support::{MockAuthority, Sandbox, jwt_claims, text};
use serde_json::{Value, json};
use std::io::{BufRead, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const TENANT: &str = "contoso.test";
const APP: &str = "66666666-6666-6666-6666-666666666666";
const SECRET: &str = "nuget~secret";
const AZURE_DEVOPS: &str = "499b84ac-1321-427f-aa17-267ca6975798";
const FEED: &str = "https://pkgs.dev.azure.com/contoso/_packaging/feed/nuget/v3/index.json";
const NUGET_ORG: &str = "https://api.nuget.org/v3/index.json";

/// A NuGet host: the plugin's stdin, and its stdout's messages as they arrive.
struct Host {
    child: Child,
    stdin: Option<ChildStdin>,
    rx: mpsc::Receiver<Value>,
    next: u32,
}

impl Host {
    fn start(sb: &Sandbox) -> Host {
        let mut cmd = sb.tool(sb.link("nuget-plugin-entra-token"));
        cmd.arg("-Plugin").env("FEED_SECRET", SECRET).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start the plugin");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("the plugin wrote a line that is not JSON ({e}): {line}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Host { stdin: child.stdin.take(), child, rx, next: 0 }
    }

    fn send(&mut self, id: &str, kind: &str, method: &str, payload: Option<Value>) {
        let mut m = json!({"RequestId": id, "Type": kind, "Method": method});
        if let Some(p) = payload {
            m["Payload"] = p;
        }
        writeln!(self.stdin.as_mut().unwrap(), "{m}").expect("write to the plugin");
    }

    fn request(&mut self, method: &str, payload: Value) -> String {
        self.next += 1;
        let id = format!("{:08x}-host-{}", self.next * 7919, self.next);
        self.send(&id, "Request", method, Some(payload));
        id
    }

    fn recv(&self, within: Duration) -> Option<Value> {
        self.rx.recv_timeout(within).ok()
    }

    /// The next message, within NuGet's 5 s request timeout.
    fn expect(&self) -> Value {
        self.recv(Duration::from_secs(5)).expect("the plugin answers within NuGet's 5 s request timeout")
    }

    /// A request and its response's payload (no progress expected on a quick request).
    fn call(&mut self, method: &str, payload: Value) -> Value {
        let id = self.request(method, payload);
        let m = self.expect();
        assert_eq!((m["RequestId"].as_str(), m["Type"].as_str(), m["Method"].as_str()), (Some(id.as_str()), Some("Response"), Some(method)), "{m}");
        m["Payload"].clone()
    }

    /// NuGet's start: the plugin's own Handshake request arrives first (answered as NuGet
    /// answers it), then NuGet's Handshake with `ours` as its versions.
    fn handshake(&mut self, ours: Value) -> Value {
        let theirs = self.expect();
        assert_eq!((theirs["Type"].as_str(), theirs["Method"].as_str()), (Some("Request"), Some("Handshake")), "{theirs}");
        assert_eq!(theirs["Payload"], json!({"ProtocolVersion": "2.0.0", "MinimumProtocolVersion": "2.0.0"}));
        let id = theirs["RequestId"].as_str().unwrap().to_string();
        self.send(&id, "Response", "Handshake", Some(json!({"ResponseCode": "Success", "ProtocolVersion": "2.0.0"})));
        self.call("Handshake", ours)
    }

    fn auth(&mut self, uri: &str, retry: bool, non_interactive: bool) -> Value {
        self.call("GetAuthenticationCredentials", json!({"Uri": uri, "IsRetry": retry, "IsNonInteractive": non_interactive, "CanShowDialog": false}))
    }

    /// Waits for the plugin to exit (Close, or end of input).
    fn exits_within(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        panic!("the plugin did not exit within {limit:?}");
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const V2: fn() -> Value = || json!({"ProtocolVersion": "2.0.0", "MinimumProtocolVersion": "1.0.0"});

fn fixture() -> (MockAuthority, Sandbox) {
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some(SECRET));
    let sb = Sandbox::new();
    sb.write_config(&format!(
        "[profiles.feed]\ntenant = \"{TENANT}\"\nclient_id = \"{APP}\"\nflow = \"client-credentials\"\nclient_secret_env = \"FEED_SECRET\"\nauthority = \"{}\"\nurls = [\"https://pkgs.dev.azure.com/contoso/\"]\n",
        mock.url()
    ));
    (mock, sb)
}

#[test]
fn every_message_nuget_sends_an_authentication_plugin_in_its_order() {
    let (mock, sb) = fixture();
    let mut host = Host::start(&sb);
    assert_eq!(host.handshake(V2()), json!({"ResponseCode": "Success", "ProtocolVersion": "2.0.0"}));
    // NuGet asks an authentication plugin source-agnostically; a named feed is ours or not.
    assert_eq!(host.call("GetOperationClaims", json!({"PackageSourceRepository": null, "ServiceIndex": null})), json!({"ResponseCode": "Success", "Claims": ["Authentication"]}));
    assert_eq!(host.call("GetOperationClaims", json!({"PackageSourceRepository": FEED, "ServiceIndex": {"version": "3.0.0"}}))["Claims"], json!(["Authentication"]));
    assert_eq!(host.call("GetOperationClaims", json!({"PackageSourceRepository": NUGET_ORG, "ServiceIndex": {"version": "3.0.0"}}))["Claims"], json!([]));
    assert_eq!(host.call("MonitorNuGetProcessExit", json!({"ProcessId": std::process::id()})), json!({"ResponseCode": "Success"}));
    assert_eq!(host.call("Initialize", json!({"ClientVersion": "6.14.0", "Culture": "en-US", "RequestTimeout": "00:00:05"})), json!({"ResponseCode": "Success"}));
    assert_eq!(host.call("SetLogLevel", json!({"LogLevel": "Minimal"})), json!({"ResponseCode": "Success"}));
    let set = json!({"PackageSourceRepository": FEED, "ProxyUsername": null, "ProxyPassword": null, "Username": "old", "Password": "old-feed-password"});
    assert_eq!(host.call("SetCredentials", set), json!({"ResponseCode": "Success"}));

    let first = host.auth(FEED, false, true);
    assert_eq!(first["ResponseCode"], "Success", "{first}");
    assert_eq!(first["Username"], "entra-token");
    assert_eq!(first["AuthenticationTypes"], json!(["Basic"]));
    let token = first["Password"].as_str().unwrap().to_string();
    assert!(mock.issued_access_tokens().contains(&token), "the password is the token the authority issued");
    let aud = jwt_claims(&token).unwrap()["aud"].as_str().unwrap().to_string();
    assert!(aud.contains(AZURE_DEVOPS), "an Azure Artifacts feed gets an Azure DevOps token, not {aud}");
    assert_eq!(mock.token_requests(), 1);
    // Again: the cached token. A retry (the feed refused it): a fresh one.
    assert_eq!(host.auth(FEED, false, true)["Password"], token);
    assert_eq!(mock.token_requests(), 1);
    let retried = host.auth(FEED, true, true);
    assert_eq!(mock.token_requests(), 2, "IsRetry asks the authority again");
    assert_ne!(retried["Password"], token);

    // A method this plugin does not serve (download plugins' own) is a fault, not silence.
    let id = host.request("GetPackageVersions", json!({"PackageSourceRepository": FEED, "PackageId": "x"}));
    let fault = host.expect();
    assert_eq!((fault["RequestId"].as_str(), fault["Type"].as_str()), (Some(id.as_str()), Some("Fault")), "{fault}");
    assert!(fault["Payload"]["Message"].as_str().unwrap().contains("GetPackageVersions"));

    // Close: no response, the plugin exits promptly.
    host.send("close-1", "Request", "Close", None);
    assert_eq!(host.exits_within(Duration::from_secs(3)), Some(0));
    assert!(host.recv(Duration::from_millis(100)).is_none(), "Close gets no response");
}

#[test]
fn versions_are_negotiated_as_nuget_negotiates_them() {
    let (_mock, sb) = fixture();
    // A newer NuGet that still accepts 2.0.0 gets 2.0.0.
    let mut host = Host::start(&sb);
    assert_eq!(host.handshake(json!({"ProtocolVersion": "3.1.0", "MinimumProtocolVersion": "2.0.0"}))["ProtocolVersion"], "2.0.0");
    drop(host);
    // A host that speaks only 1.0.0 (download plugins, no authentication) is refused.
    let mut host = Host::start(&sb);
    assert_eq!(host.handshake(json!({"ProtocolVersion": "1.0.0", "MinimumProtocolVersion": "1.0.0"})), json!({"ResponseCode": "Error", "ProtocolVersion": null}));
    drop(host);
    // A host that refuses the plugin's own handshake: the plugin stops with exit 1.
    let mut host = Host::start(&sb);
    let theirs = host.expect();
    let id = theirs["RequestId"].as_str().unwrap().to_string();
    host.send(&id, "Response", "Handshake", Some(json!({"ResponseCode": "Error", "ProtocolVersion": null})));
    assert_eq!(host.exits_within(Duration::from_secs(3)), Some(1));
}

#[test]
fn a_feed_no_profile_claims_is_not_found_at_once_with_nothing_asked() {
    let (mock, sb) = fixture();
    let mut host = Host::start(&sb);
    host.handshake(V2());
    for uri in [NUGET_ORG, "https://pkgs.dev.azure.com/fabrikam/_packaging/other/nuget/v3/index.json", "http://pkgs.dev.azure.com/contoso/_packaging/feed/nuget/v3/index.json"] {
        let started = Instant::now();
        let answer = host.auth(uri, false, true);
        assert_eq!(answer, json!({"ResponseCode": "NotFound", "Username": null, "Password": null, "Message": null, "AuthenticationTypes": null}), "{uri}");
        assert!(started.elapsed() < Duration::from_secs(1), "{uri}: NotFound took {:?}", started.elapsed());
    }
    // No profile at all: the same, for the claimed feed too.
    sb.write_config("");
    let mut host = Host::start(&sb);
    host.handshake(V2());
    assert_eq!(host.auth(FEED, false, true)["ResponseCode"], "NotFound");
    assert!(mock.requests().is_empty(), "nothing was asked of the authority");
}

#[test]
fn a_slow_sign_in_reports_progress_and_a_cancel_is_acknowledged_not_answered() {
    let (mock, sb) = fixture();
    mock.set_delay(Duration::from_secs(4));
    let mut host = Host::start(&sb);
    host.handshake(V2());
    // A 2 s request timeout: progress must come at least every second or so.
    host.call("Initialize", json!({"ClientVersion": "6.14.0", "Culture": "en-US", "RequestTimeout": "00:00:02"}));
    let id = host.request("GetAuthenticationCredentials", json!({"Uri": FEED, "IsRetry": false, "IsNonInteractive": false, "CanShowDialog": false}));
    for _ in 0..2 {
        let m = host.recv(Duration::from_millis(1900)).expect("progress before NuGet's request timeout");
        assert_eq!((m["RequestId"].as_str(), m["Type"].as_str(), m["Method"].as_str()), (Some(id.as_str()), Some("Progress"), Some("GetAuthenticationCredentials")), "{m}");
    }
    host.send(&id, "Cancel", "GetAuthenticationCredentials", None);
    let ack = host.expect();
    assert_eq!((ack["RequestId"].as_str(), ack["Type"].as_str()), (Some(id.as_str()), Some("Cancel")), "{ack}");
    // The token arrives later at the plugin; NuGet hears nothing more of that request.
    if let Some(m) = host.recv(Duration::from_secs(4)) {
        panic!("a cancelled request was answered: {m}");
    }
    assert_eq!(mock.token_requests(), 1);
    // The plugin is still serving.
    mock.set_delay(Duration::ZERO);
    assert_eq!(host.call("SetLogLevel", json!({"LogLevel": "Verbose"})), json!({"ResponseCode": "Success"}));
    // End of input (NuGet went away) ends the plugin too.
    drop(host.stdin.take());
    assert_eq!(host.exits_within(Duration::from_secs(3)), Some(0));
}

#[test]
fn run_by_hand_it_says_what_it_is_and_setup_links_it() {
    let (_mock, sb) = fixture();
    let out = crate::support::run(sb.tool(sb.link("nuget-plugin-entra-token")));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("NuGet credential plugin"), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());

    let mut c = sb.cmd();
    c.args(["setup", "nuget", "--dir"]).arg(sb.path("links"));
    let out = crate::support::run(c);
    let printed = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(printed.contains("nuget-plugin-entra-token") && printed.contains("NUGET_PLUGIN_PATHS") && printed.contains("https://pkgs.dev.azure.com/contoso/ (profile feed)"), "{printed}");
    assert!(!sb.path("links").exists(), "printing creates nothing");
    let mut c = sb.cmd();
    c.args(["setup", "nuget", "--apply", "--dir"]).arg(sb.path("links"));
    crate::support::ok(crate::support::run(c));
    let link = sb.path("links").join(format!("nuget-plugin-entra-token{}", std::env::consts::EXE_SUFFIX));
    assert!(link.is_file(), "the link NuGet finds on PATH");
}
