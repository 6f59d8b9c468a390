//! The emulator's fidelity, shown with clients nobody here wrote: MSAL for Python
//! (confidential client, public client with device code, refresh with rotation, and its
//! instance discovery of an unknown authority), Python azure-identity (ClientSecret,
//! DeviceCode, ManagedIdentity in App Service and IMDS style), PyJWT verifying every token
//! against the emulator's JWKS, and @azure/identity for Node. Each runs with only the
//! variables `entra-token emulator --managed-identity` exported, over its https with its CA.

use serde_json::Value;

use crate::support::{Emulator, Sandbox, run, skip, text};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/emulator");

fn has(cmd: &str, args: &[&str]) -> bool {
    std::process::Command::new(cmd).args(args).output().is_ok_and(|o| o.status.success())
}

fn json_of(out: &std::process::Output, what: &str) -> Value {
    assert!(out.status.success(), "{what} failed (exit {:?}):\nstdout: {}\nstderr: {}", out.status.code(), text(&out.stdout), text(&out.stderr));
    serde_json::from_str(text(&out.stdout).lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("{what}: {e}: {}", text(&out.stdout)))
}

#[test]
fn msal_azure_identity_and_pyjwt_for_python() {
    if !has("python3", &["-c", "import msal, azure.identity, jwt"]) {
        return skip::missing_tool("python3 with msal, azure-identity and PyJWT[crypto]", "the emulator's Python clients");
    }
    let sb = Sandbox::new();
    let em = Emulator::start(&sb, &["--managed-identity"]);
    let mut cmd = sb.tool("python3");
    em.apply(&mut cmd);
    cmd.arg(format!("{FIXTURES}/clients.py"));
    let got = json_of(&run(cmd), "clients.py");
    let app = em.var("AZURE_CLIENT_ID");
    assert_eq!(got["msal_discovered_token_endpoint"], format!("{}/contoso.com/oauth2/v2.0/token", em.url()), "MSAL followed the emulator's instance discovery");
    assert_eq!(got["msal_confidential"], app);
    assert_eq!(got["msal_bad_secret"], serde_json::json!([7000215]));
    assert_eq!(got["msal_device_code"], "alice@contoso.com");
    assert_eq!(got["msal_refresh"], "https://graph.microsoft.com");
    assert_eq!(got["msal_rotated"], true);
    assert_eq!(got["identity_client_secret"], app);
    assert_eq!(got["identity_device_code"], "alice@contoso.com");
    assert_eq!(got["identity_device_code_uri"], format!("{}/devicelogin", em.url()));
    assert_eq!(got["identity_managed_identity"], "00000000-e4a1-4e10-8000-00000000e0a1");
    assert_eq!(got["identity_imds"], "22222222-0000-4000-8000-000000000002");
}

#[test]
fn azure_identity_for_node() {
    let modules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/emulator-js/node_modules");
    if !has("node", &["--version"]) || !modules.join("@azure/identity/package.json").is_file() {
        return skip::missing_tool("node with @azure/identity (target/emulator-js)", "the emulator's Node client");
    }
    let sb = Sandbox::new();
    let em = Emulator::start(&sb, &["--managed-identity"]);
    let mut cmd = sb.tool("node");
    em.apply(&mut cmd);
    cmd.env("NODE_PATH", &modules).arg(format!("{FIXTURES}/clients.cjs"));
    let got = json_of(&run(cmd), "clients.cjs");
    for k in ["clientSecret", "deviceCode", "managedIdentity"] {
        assert_eq!(got[k]["emulator"], true, "{k}: {got}");
        assert!(got[k]["iss"].as_str().unwrap().starts_with(&format!("{}/", em.url())), "{k}: {got}");
    }
    assert_eq!(got["clientSecret"]["appid"], em.var("AZURE_CLIENT_ID"));
    assert_eq!(got["badSecret"], "AADSTS7000215");
    assert_eq!(got["deviceCode"]["upn"], "alice@contoso.com");
    assert_eq!(got["deviceCodeUri"], format!("{}/devicelogin", em.url()));
    assert_eq!(got["managedIdentity"]["appid"], "00000000-e4a1-4e10-8000-00000000e0a1");
}
