//! `az account get-access-token` and `azd auth token` compatibility, end to end: the
//! binary answers under the names `az` and `azd` (links on PATH, as Azure SDKs find them)
//! and as `entra-token az|azd`, against the mock authority; azure-identity's own
//! AzureCliCredential, AzureDeveloperCliCredential and DefaultAzureCredential accept the
//! answers and move on when nothing is configured.

// On Windows the helpers and imports of this suite's Unix-only tests go unused.
#![cfg_attr(windows, allow(unused_imports, dead_code, unused_mut))]

use crate::support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use crate::support::{CcProfile, MockAuthority, Sandbox, jwt_claims, run, run_with_stdin, stderr};

const TENANT: &str = "contoso.test";
const APP: &str = "22222222-2222-2222-2222-222222222222";
const SECRET: &str = "s3cret~value";
const SUB: &str = "33333333-3333-3333-3333-333333333333";

/// A sandbox whose default profile is a service principal on the mock.
fn configured(mock: &MockAuthority, extra: &str) -> Sandbox {
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some(SECRET));
    let sb = Sandbox::new();
    sb.write_config(&CcProfile::new("default", &mock.url(), TENANT, APP).secret_env("APP_SECRET").with(extra).toml());
    sb
}

/// A command for `program` with exactly the sandbox's environment, PATH led by `bin/`.
fn sandboxed(sb: &Sandbox, program: &Path) -> Command {
    let mut cmd = sb.tool_with_links(program);
    cmd.env("APP_SECRET", SECRET);
    cmd
}

fn az(sb: &Sandbox, args: &[&str]) -> Command {
    let mut cmd = sandboxed(sb, &sb.link("az"));
    cmd.args(args);
    cmd
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ok(o: &Output) -> Value {
    assert!(o.status.success(), "exit {:?}\nstdout: {}\nstderr: {}", o.status.code(), stdout(o), stderr(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

#[test]
fn az_prints_all_six_fields_and_serves_the_second_call_from_cache() {
    let mock = MockAuthority::start();
    let sb = configured(&mock, &format!("subscription = \"{SUB}\"\n"));
    // A fixed zone 5h30 east of UTC, without tzdata: expiresOn must be in it.
    let mut cmd = az(&sb, &["account", "get-access-token", "--output", "json", "--resource", "https://management.azure.com"]);
    // Unix reads the zone from TZ; Windows from the system (the test shares it).
    #[cfg(unix)]
    cmd.env("TZ", "XYZ-05:30");
    let out = run(cmd);
    let v = ok(&out);
    let issued = mock.issued_access_tokens();
    assert_eq!(issued.len(), 1);
    assert_eq!(v["accessToken"], issued[0].as_str());
    let exp = claims(&issued[0])["exp"].as_i64().unwrap();
    assert_eq!(v["expires_on"].as_i64(), Some(exp));
    let utc = time::OffsetDateTime::from_unix_timestamp(exp).unwrap();
    #[cfg(unix)]
    let offset = time::UtcOffset::from_hms(5, 30, 0).unwrap();
    #[cfg(windows)]
    let offset = time::UtcOffset::local_offset_at(utc).unwrap();
    let local = utc.to_offset(offset);
    let want = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.000000",
        local.year(),
        u8::from(local.month()),
        local.day(),
        local.hour(),
        local.minute(),
        local.second()
    );
    assert_eq!(v["expiresOn"], want.as_str());
    assert_eq!(v["tenant"], mock.tenant_id(TENANT).as_str());
    assert_eq!(v["subscription"], SUB);
    assert_eq!(v["tokenType"], "Bearer");
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["accessToken", "expiresOn", "expires_on", "subscription", "tenant", "tokenType"]);
    // az's layout: two-space indented, sorted keys, trailing newline.
    assert!(stdout(&out).starts_with("{\n  \"accessToken\": \"") && stdout(&out).ends_with("\"tokenType\": \"Bearer\"\n}\n"), "{}", stdout(&out));
    assert_eq!(mock.requests().last().unwrap().form_get("scope"), Some("https://management.azure.com/.default"));

    // Again, through `entra-token az …`: the cache answers, Entra is not asked.
    let mut cmd = sandboxed(&sb, Path::new(env!("CARGO_BIN_EXE_entra-token")));
    cmd.args(["az", "account", "get-access-token", "--resource", "https://management.azure.com", "--query", "accessToken", "-o", "tsv"]);
    let out = run(cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{}\n", issued[0]));
    assert_eq!(mock.token_requests(), 1);
}

#[test]
fn az_scope_tenant_and_subscription_flags() {
    let mock = MockAuthority::start();
    let sb = configured(&mock, "");
    mock.add_tenant("fabrikam.test");
    // ENTRA_TOKEN_PROFILE chose the profile: it answers for the subscription it is told.
    let mut c = az(&sb, &["account", "get-access-token", "-o=json", "--scope", "https://graph.microsoft.com/.default", "--tenant", "fabrikam.test", "--subscription", "my-sub"]);
    c.env("ENTRA_TOKEN_PROFILE", "default");
    let v = ok(&run(c));
    let last = mock.requests().into_iter().rev().find(|r| r.is_token_request()).unwrap();
    assert_eq!(last.form_get("scope"), Some("https://graph.microsoft.com/.default"));
    assert!(last.path.contains("/fabrikam.test/"), "{}", last.path);
    assert_eq!(v["tenant"], mock.tenant_id("fabrikam.test").as_str());
    assert_eq!(v["subscription"], "my-sub");
    assert_eq!(claims(v["accessToken"].as_str().unwrap())["aud"], "https://graph.microsoft.com");
    // No subscription known: az reports the tenant, as for a tenant-level account.
    let v = ok(&run(az(&sb, &["account", "get-access-token"])));
    assert_eq!(v["subscription"], v["tenant"]);
    assert_eq!(mock.requests().into_iter().rev().find(|r| r.is_token_request()).unwrap().form_get("scope"), Some("https://management.core.windows.net//.default"));
}

#[test]
fn az_subscription_picks_the_profile_that_holds_it() {
    let mock = MockAuthority::start();
    let sb = configured(&mock, &format!("subscription = \"{SUB}\"\n"));
    mock.add_tenant("fabrikam.test");
    let other_sub = "44444444-4444-4444-4444-444444444444";
    let mut config = std::fs::read_to_string(sb.path("config.toml")).unwrap();
    config.push_str(&format!(
        "\n[profiles.fabrikam]\ntenant = \"fabrikam.test\"\nclient_id = \"{APP}\"\nflow = \"client-credentials\"\nclient_secret_env = \"APP_SECRET\"\nauthority = \"{}\"\nsubscription = \"{other_sub}\"\n",
        mock.url()
    ));
    sb.write_config(&config);
    // Azure SDKs pass --subscription when one is configured: it chooses the profile.
    let v = ok(&run(az(&sb, &["account", "get-access-token", "--output", "json", "--resource", "https://vault.azure.net", "--subscription", &other_sub.to_uppercase()])));
    assert_eq!(v["tenant"], mock.tenant_id("fabrikam.test").as_str());
    let v = ok(&run(az(&sb, &["account", "get-access-token", "--output", "json", "--resource", "https://vault.azure.net", "--subscription", SUB])));
    assert_eq!(v["tenant"], mock.tenant_id(TENANT).as_str());
    assert_eq!(v["subscription"], SUB);
    // A subscription no profile holds is never answered by the default profile's identity
    // labelled with it (a token of perhaps another tenant): exit 1, nothing requested.
    let before = mock.token_requests();
    let out = run(az(&sb, &["account", "get-access-token", "--output", "json", "--subscription", "elsewhere"]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert!(stderr(&out).contains("--subscription elsewhere is not the subscription of any profile"), "{}", stderr(&out));
    assert!(stderr(&out).contains("ENTRA_TOKEN_PROFILE"), "{}", stderr(&out));
    assert_eq!(mock.token_requests(), before);
    // An explicit ENTRA_TOKEN_PROFILE wins over the subscription.
    let mut c = az(&sb, &["account", "get-access-token", "--output", "json", "--subscription", other_sub]);
    c.env("ENTRA_TOKEN_PROFILE", "default");
    assert_eq!(ok(&run(c))["tenant"], mock.tenant_id(TENANT).as_str());
    // The same subscription in two profiles is ambiguous: exit 1, and nothing was requested.
    sb.write_config(&format!(
        "{config}\n[profiles.dup]\ntenant = \"x\"\nclient_id = \"{APP}\"\nflow = \"client-credentials\"\nclient_secret_env = \"APP_SECRET\"\nauthority = \"{}\"\nsubscription = \"{SUB}\"\n",
        mock.url()
    ));
    let before = mock.token_requests();
    let out = run(az(&sb, &["account", "get-access-token", "--subscription", SUB]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("more than one profile"), "{}", stderr(&out));
    assert_eq!(mock.token_requests(), before);
}

#[test]
fn az_errors_tell_sdks_whether_to_move_on() {
    // Nothing configured: "az login", no AADSTS, non-zero.
    let sb = Sandbox::new();
    let out = run(az(&sb, &["account", "get-access-token", "--output", "json", "--resource", "https://management.azure.com"]));
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "{}", stdout(&out));
    assert!(stderr(&out).contains("az login") && !stderr(&out).contains("AADSTS"), "{}", stderr(&out));

    // A real Entra refusal: AADSTS on stderr, no "az login", exit 3.
    let mock = MockAuthority::start();
    let sb = configured(&mock, "");
    let mut cmd = az(&sb, &["account", "get-access-token", "--resource", "https://management.azure.com"]);
    cmd.env("APP_SECRET", "wr0ng~Secret~9431");
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("AADSTS7000215") && !stderr(&out).contains("az login"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("wr0ng~Secret~9431"), "the secret leaked: {}", stderr(&out));

    // Started by ourselves (an azure-cli flow finding our az on PATH): refuse at once.
    let mut cmd = az(&sb, &["account", "get-access-token"]);
    cmd.env("ENTRA_TOKEN_FROM_AZ_FALLBACK", "1");
    let before = mock.token_requests();
    let out = run(cmd);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("az login"), "{}", stderr(&out));
    assert_eq!(mock.token_requests(), before);

    // Anything but get-access-token is refused with a pointer to what is served.
    let out = run(az(&sb, &["vm", "list"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("get-access-token"), "{}", stderr(&out));
}

#[test]
fn azd_prints_token_and_utc_expiry() {
    let mock = MockAuthority::start();
    let sb = configured(&mock, "");
    let mut cmd = sandboxed(&sb, &sb.link("azd"));
    cmd.args(["auth", "token", "--output", "json", "--no-prompt", "--scope", "https://vault.azure.net/.default"]);
    let out = run(cmd);
    let v = ok(&out);
    let issued = mock.issued_access_tokens();
    assert_eq!(v["token"], issued[0].as_str());
    let exp = claims(&issued[0])["exp"].as_i64().unwrap();
    let want = time::OffsetDateTime::from_unix_timestamp(exp).unwrap().format(&time::format_description::well_known::Rfc3339).unwrap();
    assert_eq!(v["expiresOn"], want.as_str());
    assert!(want.ends_with('Z') && !want.contains('.'));
    assert_eq!(stdout(&out), format!("{{\n  \"token\": \"{}\",\n  \"expiresOn\": \"{want}\"\n}}\n", issued[0]));

    // Nothing configured: azd's "not logged in" sentence.
    let empty = Sandbox::new();
    let mut cmd = sandboxed(&empty, Path::new(env!("CARGO_BIN_EXE_entra-token")));
    cmd.args(["azd", "auth", "token", "--output", "json", "--no-prompt", "--scope", "https://vault.azure.net/.default"]);
    let out = run_with_stdin(cmd, "");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not logged in, run `azd auth login` to login") && !stderr(&out).contains("AADSTS"), "{}", stderr(&out));
}

/// python3 with azure-identity, or None (and why) when this machine lacks it.
// Unix only: Python's azure-identity is installed for Linux here.
#[cfg(unix)]
fn python() -> Option<PathBuf> {
    let found = Command::new("python3").args(["-c", "import azure.identity, sys; print(sys.executable)"]).output().ok()?;
    if !found.status.success() {
        support::skip::missing_tool("python3 with azure-identity", "the real azure-identity check");
        return None;
    }
    Some(PathBuf::from(String::from_utf8_lossy(&found.stdout).trim()))
}

#[cfg(unix)]
fn py(sb: &Sandbox, python: &Path, script: &str) -> Output {
    sb.link("az");
    sb.link("azd");
    let mut cmd = sandboxed(sb, python);
    cmd.args(["-c", script]).env("TZ", "UTC").env_remove("PYTHONPATH");
    run(cmd)
}

#[cfg(unix)]
const GET: &str = r#"
import sys
from azure.identity import {cred}
t = {cred}().get_token("https://management.azure.com/.default")
print(t.token)
print(t.expires_on)
"#;

// Unix only: drives Python's azure-identity.
#[cfg(unix)]
#[test]
fn azure_identity_cli_credentials_take_our_answers() {
    let Some(python) = python() else { return };
    let mock = MockAuthority::start();
    let sb = configured(&mock, "");
    for cred in ["AzureCliCredential", "AzureDeveloperCliCredential"] {
        let out = py(&sb, &python, &GET.replace("{cred}", cred));
        assert!(out.status.success(), "{cred}: {}", stderr(&out));
        let text = stdout(&out);
        let mut lines = text.lines();
        let token = lines.next().unwrap();
        let issued = mock.issued_access_tokens();
        assert_eq!(token, issued.last().unwrap(), "{cred}");
        assert_eq!(lines.next().unwrap().parse::<i64>().unwrap(), claims(token)["exp"].as_i64().unwrap(), "{cred}");
        assert_eq!(claims(token)["aud"], "https://management.azure.com", "{cred}");
    }
    // Both asked for the same scope of the same profile: one token, one request.
    assert_eq!(mock.token_requests(), 1);
}

#[cfg(unix)]
const CHAIN: &str = r#"
from azure.identity import DefaultAzureCredential, CredentialUnavailableError
from azure.core.exceptions import ClientAuthenticationError
# Managed identity is left out so the chain can never probe a real IMDS.
c = DefaultAzureCredential(exclude_managed_identity_credential=True, exclude_workload_identity_credential=True,
                           exclude_shared_token_cache_credential=True, exclude_visual_studio_code_credential=True,
                           exclude_powershell_credential=True)
try:
    print("token", c.get_token("https://management.azure.com/.default").token)
except ClientAuthenticationError as e:
    print("failed", str(e).replace("\n", " "))
"#;

// Unix only: drives Python's azure-identity.
#[cfg(unix)]
#[test]
fn default_azure_credential_falls_through_to_our_az_or_past_it() {
    let Some(python) = python() else { return };
    let mock = MockAuthority::start();
    let sb = configured(&mock, "");
    let out = py(&sb, &python, CHAIN);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), format!("token {}", mock.issued_access_tokens()[0]));

    // Nothing configured: both our az and our azd say "unavailable", the chain tries
    // each in turn and reports them all instead of stopping at the first.
    let empty = Sandbox::new();
    let out = py(&empty, &python, CHAIN);
    let text = stdout(&out);
    assert!(text.starts_with("failed"), "{text}\n{}", stderr(&out));
    assert!(text.contains("AzureCliCredential") && text.contains("AzureDeveloperCliCredential"), "{text}");
    assert!(text.contains("az login") && !text.contains("AADSTS"), "{text}");
}

fn claims(token: &str) -> Value {
    jwt_claims(token).unwrap_or_else(|| panic!("not a JWT: {token}"))
}

// Unix only: the "real" az is an sh script (Windows' own case, `cmd /c az`, is in tests/it/windows.rs).
#[cfg(unix)]
#[test]
fn az_shim_never_runs_another_az_even_for_an_azure_cli_profile() {
    // A "real" az later on PATH that records every run.
    let sb = Sandbox::new();
    sb.write_config("[profiles.default]\nflow = \"azure-cli\"\ntenant = \"contoso.test\"\n");
    sb.write_executable("real/az", &format!("#!/bin/sh\necho ran >> {}\necho '{{}}'\n", sb.path("real-az-ran").display()));
    let mut cmd = az(&sb, &["account", "get-access-token", "--output", "json", "--resource", "https://management.azure.com"]);
    let path = format!("{}:{}:{}", sb.path("bin").display(), sb.path("real").display(), crate::support::env::path().to_string_lossy());
    cmd.env("PATH", path);
    let out = run(cmd);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(!sb.path("real-az-ran").exists(), "our az ran another az: {}", stderr(&out));
    // While `entra-token get-token` with the same profile does fall back to that az.
    let mut cmd = sandboxed(&sb, Path::new(env!("CARGO_BIN_EXE_entra-token")));
    cmd.args(["get-token", "--resource", "https://management.azure.com"]);
    cmd.env("PATH", format!("{}:{}", sb.path("real").display(), crate::support::env::path().to_string_lossy()));
    let _ = run(cmd);
    assert!(sb.path("real-az-ran").exists(), "the control run did not reach the stand-in az, so the first half proves nothing");
}
