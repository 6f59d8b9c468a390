//! A build VM with only a managed identity reaches a feed in its customer's tenant: the
//! profile's app lives in the customer's tenant, and its client assertion is the managed
//! identity's token for `api://AzureADTokenExchange` (a federated credential on the app
//! names the identity's issuer and object id), as Git Credential Manager's workload-identity
//! mode does. The stand-in authority serves both IMDS and the token endpoint, and judges the
//! assertion against the app's federated credentials. Each input (the managed identity, the
//! app, the tenant) is changed between calls: a new token of the new pair every time, never
//! the other pair's cached one, and going back is served from the cache.

use crate::support::{MockAuthority, Sandbox, jwt_claims, ok_stdout, run, stderr};
use std::process::Command;

const VENDOR: &str = "vendor.test";
const CUSTOMER: &str = "customer.test";
const CUSTOMER2: &str = "customer2.test";
const APP_A: &str = "aaaaaaaa-0000-4000-8000-00000000000a";
const APP_B: &str = "bbbbbbbb-0000-4000-8000-00000000000b";
const MI_1: &str = "11111111-0000-4000-8000-0000000000e1";
const MI_2: &str = "22222222-0000-4000-8000-0000000000e2";
const MI_3: &str = "33333333-0000-4000-8000-0000000000e3";
const AZURE_DEVOPS: &str = "499b84ac-1321-427f-aa17-267ca6975798";
const EXCHANGE: &str = "api://AzureADTokenExchange";

fn claim(jwt: &str, name: &str) -> String {
    jwt_claims(jwt).map(|c| c[name].as_str().unwrap_or_default().to_string()).unwrap_or_default()
}

/// Vendor tenant identities MI_1, MI_2, MI_3 and a system-assigned one on this "VM"; apps
/// A and B (no secret) whose federated credentials trust every identity but MI_3.
fn mock() -> MockAuthority {
    let mock = MockAuthority::start();
    for t in [VENDOR, CUSTOMER, CUSTOMER2] {
        mock.add_tenant(t);
    }
    mock.add_app(APP_A, None);
    mock.add_app(APP_B, None);
    for mi in [Some(MI_1), Some(MI_2), Some(MI_3), None] {
        mock.add_managed_identity(mi, VENDOR);
    }
    mock.set_assertion_checker(|client_id, assertion, _endpoint| {
        let c = jwt_claims(assertion).ok_or("client_assertion is not a JWT")?;
        let vendor_issuer = format!("https://sts.windows.net/{}/", crate::support::wire::tenant_id(VENDOR));
        if c["aud"] != EXCHANGE || c["iss"] != vendor_issuer.as_str() {
            return Err(format!("AADSTS700212: no federated credential for audience {} issuer {}", c["aud"], c["iss"]));
        }
        let trusted = [APP_A, APP_B].contains(&client_id) && c["appid"] != MI_3;
        if !trusted {
            return Err(format!("AADSTS70021: app {client_id} has no federated credential for subject {}", c["sub"]));
        }
        Ok(())
    });
    mock
}

fn profile(mock: &MockAuthority, sb: &Sandbox, tenant: &str, app: &str, mi: Option<&str>) {
    let mi_line = mi.map(|m| format!("mi_client_id = \"{m}\"\n")).unwrap_or_default();
    sb.write_config(&format!(
        "[profiles.customer]\nflow = \"workload-identity\"\nauthority = \"{}\"\ntenant = \"{tenant}\"\nclient_id = \"{app}\"\nfederated_token = \"managed-identity\"\n{mi_line}urls = [\"https://pkgs.dev.azure.com/customer/\"]\n",
        mock.url()
    ));
}

fn get(mock: &MockAuthority, sb: &Sandbox, vars: &[(&str, &str)]) -> Command {
    let mut c = sb.cmd();
    c.args(["get-token", "-p", "customer", "-r", AZURE_DEVOPS]).env("AZURE_POD_IDENTITY_AUTHORITY_HOST", mock.url());
    for (k, v) in vars {
        c.env(k, v);
    }
    c
}

/// The IMDS requests so far: (client_id asked, resource asked).
fn imds_asked(mock: &MockAuthority) -> Vec<(Option<String>, String)> {
    mock.requests()
        .iter()
        .filter(|r| r.path == "/metadata/identity/oauth2/token")
        .map(|r| (r.query_get("client_id").map(str::to_string), r.query_get("resource").unwrap_or_default().to_string()))
        .collect()
}

#[test]
fn the_managed_identity_signs_for_an_app_in_another_tenant_and_both_name_the_cache_entry() {
    let mock = mock();
    let sb = Sandbox::new();
    profile(&mock, &sb, CUSTOMER, APP_A, Some(MI_1));
    let first = ok_stdout(&run(get(&mock, &sb, &[])));
    assert_eq!(claim(&first, "tid"), crate::support::wire::tenant_id(CUSTOMER), "a token of the customer's tenant");
    assert_eq!(claim(&first, "appid"), APP_A);
    assert!(claim(&first, "aud").contains(AZURE_DEVOPS));
    assert_eq!(imds_asked(&mock), vec![(Some(MI_1.to_string()), EXCHANGE.to_string())], "one MI token, for the exchange audience");
    let sent = mock.requests().into_iter().find(|r| r.is_token_request()).unwrap();
    assert_eq!(sent.path, format!("/{CUSTOMER}/oauth2/v2.0/token"));
    assert_eq!(sent.form_get("client_assertion_type"), Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"));
    let assertion = sent.form_get("client_assertion").unwrap();
    assert_eq!((claim(assertion, "appid"), claim(assertion, "aud")), (MI_1.to_string(), EXCHANGE.to_string()));
    assert!(sent.form_get("client_secret").is_none());

    // Cached: nothing asked of IMDS or Entra.
    assert_eq!(ok_stdout(&run(get(&mock, &sb, &[]))), first);
    assert_eq!((mock.token_requests(), imds_asked(&mock).len()), (1, 1));

    // Each input changed: a new token of that identity, never the first one.
    let mut seen = vec![first.clone()];
    for (tenant, app, mi) in [(CUSTOMER, APP_A, MI_2), (CUSTOMER, APP_B, MI_1), (CUSTOMER2, APP_A, MI_1)] {
        profile(&mock, &sb, tenant, app, Some(mi));
        let before = mock.token_requests();
        let t = ok_stdout(&run(get(&mock, &sb, &[])));
        assert!(!seen.contains(&t), "({tenant}, {app}, {mi}) was served another identity's token");
        assert_eq!(mock.token_requests(), before + 1, "({tenant}, {app}, {mi}) asked Entra");
        assert_eq!((claim(&t, "tid"), claim(&t, "appid")), (crate::support::wire::tenant_id(tenant), app.to_string()));
        let asked = imds_asked(&mock);
        assert_eq!(asked.last().unwrap().0.as_deref(), Some(mi), "the assertion came from {mi}");
        seen.push(t);
    }
    // Back to the first pair: its own cached token.
    profile(&mock, &sb, CUSTOMER, APP_A, Some(MI_1));
    let before = mock.token_requests();
    assert_eq!(ok_stdout(&run(get(&mock, &sb, &[]))), first);
    assert_eq!(mock.token_requests(), before);
}

#[test]
fn without_mi_keys_the_system_identity_signs_and_azure_client_id_stays_the_apps() {
    let mock = mock();
    let sb = Sandbox::new();
    profile(&mock, &sb, CUSTOMER, APP_A, Some(MI_1));
    let user_assigned = ok_stdout(&run(get(&mock, &sb, &[])));
    // No mi_* key: the system-assigned identity, even with AZURE_CLIENT_ID set (here it is
    // the app's id, as azure-identity's variables would have it), and a different entry.
    profile(&mock, &sb, CUSTOMER, APP_A, None);
    let system = ok_stdout(&run(get(&mock, &sb, &[("AZURE_CLIENT_ID", APP_A)])));
    assert_ne!(system, user_assigned, "the system identity's pair has its own entry");
    assert_eq!(imds_asked(&mock).last().unwrap(), &(None, EXCHANGE.to_string()), "no client_id: the system-assigned identity");
}

#[test]
fn an_identity_the_app_does_not_trust_is_refused_and_caches_nothing() {
    let mock = mock();
    let sb = Sandbox::new();
    profile(&mock, &sb, CUSTOMER, APP_A, Some(MI_3));
    let out = run(get(&mock, &sb, &[]));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("AADSTS"), "{}", stderr(&out));
    // An identity this host does not have: IMDS's 400, one clear line.
    profile(&mock, &sb, CUSTOMER, APP_A, Some("44444444-0000-4000-8000-0000000000e4"));
    let out = run(get(&mock, &sb, &[]));
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("not assigned to this host"), "{}", stderr(&out));
    assert!(mock.issued_access_tokens().is_empty());
    // A typo in the key's value is bad input, before anything is asked.
    let asked = mock.requests().len();
    sb.write_config(&format!("[profiles.customer]\nflow = \"workload-identity\"\nauthority = \"{}\"\ntenant = \"{CUSTOMER}\"\nclient_id = \"{APP_A}\"\nfederated_token = \"managed-idnetity\"\n", mock.url()));
    let out = run(get(&mock, &sb, &[]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("managed-idnetity"), "{}", stderr(&out));
    assert_eq!(mock.requests().len(), asked);
}

#[test]
fn profile_add_writes_the_profile_the_docs_show() {
    let mock = mock();
    let sb = Sandbox::new();
    let mut c = sb.cmd();
    c.args(["profile", "add", "customer", "--flow", "workload-identity", "--tenant", CUSTOMER, "--client-id", APP_A, "--federated-token", "managed-identity", "--mi-client-id", MI_1, "--authority", &mock.url(), "--url", "https://pkgs.dev.azure.com/customer/"]);
    let out = run(c);
    assert!(out.status.success(), "{}", stderr(&out));
    let config = std::fs::read_to_string(sb.path("config.toml")).unwrap();
    assert!(config.contains("federated_token = \"managed-identity\"") && config.contains(&format!("mi_client_id = \"{MI_1}\"")), "{config}");
    let t = ok_stdout(&run(get(&mock, &sb, &[])));
    assert_eq!(claim(&t, "appid"), APP_A);
    // Only the one value is taken.
    let mut c = sb.cmd();
    c.args(["profile", "add", "other", "--flow", "workload-identity", "--federated-token", "github"]);
    assert_eq!(run(c).status.code(), Some(1));
}
