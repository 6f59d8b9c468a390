//! Files we act on are ours: the config, the secret files a profile names and the
//! federated-token file are refused (one line naming the file and the fix, no request
//! made) when another user owns them or group/others may change them, as ssh refuses its
//! config and keys; `doctor` says the same. Root-owned is fine: Kubernetes projects the
//! federated token root-owned and 0644 through root-owned links, and that layout works
//! for a process running as an ordinary user.

use crate::support;
use crate::support::{MockAuthority, Sandbox, run_with_stdin, stderr};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};

const TENANT: &str = "contoso.test";
const APP: &str = "88888888-8888-8888-8888-888888888888";
const SECRET: &str = "trusted~secret~value";
/// A uid with no passwd entry and no files of its own.
const STRANGER: u32 = 54323;

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn get(sb: &Sandbox, extra: &[(&str, &str)]) -> Output {
    let mut c = sb.cmd();
    c.env("CI_SECRET", SECRET).args(["get-token", "-p", "ci", "-r", "graph", "--timeout", "20s"]);
    for (k, v) in extra {
        c.env(k, v);
    }
    run_with_stdin(c, "")
}

/// A refusal: exit 1, nothing on stdout, one line naming `file` and `fix`, no request made.
fn assert_refused(mock: &MockAuthority, out: &Output, file: &Path, fix: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert!(out.stdout.is_empty(), "{err}");
    assert!(err.contains(&file.display().to_string()) && err.contains(fix), "the message names the file and the fix: {err}");
    assert_eq!(mock.token_requests(), 0, "a request was made on the word of a file others control: {err}");
}

fn doctor(sb: &Sandbox) -> String {
    let mut c = sb.cmd();
    c.env("CI_SECRET", SECRET).args(["doctor", "-p", "ci", "--offline"]);
    let out = run_with_stdin(c, "");
    String::from_utf8_lossy(&out.stdout).into_owned() + &stderr(&out)
}

#[test]
fn a_config_others_can_change_is_refused_naming_the_file_and_the_fix() {
    let (mock, sb) = support::client_credentials_setup(TENANT, APP, SECRET);
    let config = sb.path("config.toml");
    chmod(&config, 0o666);
    assert_refused(&mock, &get(&sb, &[]), &config, "chmod go-w");
    let report = doctor(&sb);
    assert!(report.contains(&format!("{} is refused", config.display())) && report.contains("chmod go-w"), "doctor reports it: {report}");
    chmod(&config, 0o644);
    let out = get(&sb, &[]);
    assert_eq!(out.status.code(), Some(0), "the fix works: {}", stderr(&out));
}

#[test]
fn a_config_owned_by_another_user_is_refused() {
    if !is_root() {
        return support::skip::not_here("chown to another uid needs root");
    }
    let (mock, sb) = support::client_credentials_setup(TENANT, APP, SECRET);
    let config = sb.path("config.toml");
    std::os::unix::fs::chown(&config, Some(STRANGER), Some(STRANGER)).unwrap();
    let out = get(&sb, &[]);
    assert_refused(&mock, &out, &config, "copy of your own");
    assert!(stderr(&out).contains(&format!("owned by uid {STRANGER}")), "{}", stderr(&out));
}

#[test]
fn a_secret_file_others_can_change_is_refused() {
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some(SECRET));
    let sb = Sandbox::new();
    let secret = sb.write_file("secret", SECRET);
    sb.write_config(&format!(
        "[profiles.ci]\ntenant = \"{TENANT}\"\nclient_id = \"{APP}\"\nflow = \"client-credentials\"\nclient_secret_file = \"{}\"\nauthority = \"{}\"\n",
        secret.display(),
        mock.url()
    ));
    chmod(&secret, 0o620);
    assert_refused(&mock, &get(&sb, &[]), &secret, &format!("chmod go-w {}", secret.display()));
    let report = doctor(&sb);
    assert!(report.contains(&format!("file {} is refused", secret.display())), "doctor reports it: {report}");
    chmod(&secret, 0o600);
    let out = get(&sb, &[]);
    assert_eq!(out.status.code(), Some(0), "the fix works: {}", stderr(&out));
}

fn federated() -> String {
    support::wire::jwt(&json!({"iss": "https://kubernetes.default.svc", "sub": "system:serviceaccount:ns:app", "aud": "api://AzureADTokenExchange"}))
}

/// A workload-identity profile at `mock`, its token file named by AZURE_FEDERATED_TOKEN_FILE.
fn wi_setup() -> (MockAuthority, Sandbox) {
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_app(APP, None);
    mock.set_assertion_checker(|_, _, _| Ok(()));
    let sb = Sandbox::new();
    sb.write_config(&format!("[profiles.ci]\nflow = \"workload-identity\"\nauthority = \"{}\"\n", mock.url()));
    (mock, sb)
}

fn wi_vars(file: &Path) -> Vec<(&'static str, String)> {
    vec![("AZURE_CLIENT_ID", APP.to_string()), ("AZURE_TENANT_ID", TENANT.to_string()), ("AZURE_FEDERATED_TOKEN_FILE", file.display().to_string())]
}

#[test]
fn a_federated_token_file_others_can_change_is_refused() {
    let (mock, sb) = wi_setup();
    let file = sb.write_file("sa-token", federated());
    chmod(&file, 0o666);
    let vars = wi_vars(&file);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_refused(&mock, &get(&sb, &vars), &file, "chmod go-w");
}

/// The projected volume as kubelet writes it: `tokens/..2026_…/azure-identity-token`
/// (0644), `..data` → that directory, `azure-identity-token` → `..data/azure-identity-token`,
/// all root's; the process reading it runs as an ordinary user.
#[test]
fn the_kubernetes_projected_token_layout_works_for_an_ordinary_user() {
    if !is_root() {
        return support::skip::not_here("running the binary as another uid needs root");
    }
    let (mock, sb) = wi_setup();
    let tokens = sb.path("tokens");
    let stamp = tokens.join("..2026_12_07_19_00_00.123456789");
    std::fs::create_dir_all(&stamp).unwrap();
    std::fs::write(stamp.join("azure-identity-token"), federated()).unwrap();
    chmod(&stamp.join("azure-identity-token"), 0o644);
    chmod(&stamp, 0o755);
    chmod(&tokens, 0o755);
    std::os::unix::fs::symlink("..2026_12_07_19_00_00.123456789", tokens.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/azure-identity-token", tokens.join("azure-identity-token")).unwrap();
    // The sandbox (home, cache, config's directory) is the ordinary user's; the config and
    // the token tree stay root's.
    for p in [sb.dir.path().to_path_buf(), sb.path("home")] {
        std::os::unix::fs::chown(&p, Some(STRANGER), Some(STRANGER)).unwrap();
    }
    let mut c: Command = sb.cmd();
    c.uid(STRANGER).gid(STRANGER).args(["get-token", "-p", "ci", "-r", "graph", "--timeout", "20s"]);
    for (k, v) in wi_vars(&tokens.join("azure-identity-token")) {
        c.env(k, v);
    }
    let out = run_with_stdin(c, "");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), mock.issued_access_tokens()[0]);
}
