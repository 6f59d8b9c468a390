//! az's files as the real Azure CLI (PyPI `azure-cli`) writes them, read by the
//! `azure-cli` flow: driven live where .ci/run installed az, and from recorded fixtures.

#![cfg_attr(windows, allow(unused_imports, dead_code))]

use super::*;

/// The real `az` (PyPI `azure-cli`): `ENTRA_TEST_AZ` (.ci/run installs it in a venv kept
/// in ~/.cache between runs and sets it), else a venv at target/az-venv.
#[cfg(unix)] // Unix only: the real Azure CLI (PyPI) is installed for Linux here.
fn real_az() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/az-venv/bin/az");
    std::env::var_os("ENTRA_TEST_AZ").map(PathBuf::from).into_iter().chain([venv]).find(|p| p.is_file())
}

/// A stand-in ARM: az lists tenants and subscriptions after each sign-in.
#[cfg(unix)] // Unix only: for the real Azure CLI test.
fn arm_stand_in(ca: &TestCa, tenant_id: String) -> support::http::StandIn {
    support::http::StandIn::start_tls(Some(ca.server_config()), move |req, _| {
        let value = if req.path.starts_with("/tenants") {
            json!([{"id": format!("/tenants/{tenant_id}"), "tenantId": tenant_id, "displayName": "Contoso", "defaultDomain": TENANT}])
        } else if req.path.starts_with("/subscriptions") {
            json!([{"id": "/subscriptions/sub-1", "subscriptionId": "sub-1", "displayName": "Dev", "state": "Enabled", "tenantId": tenant_id}])
        } else {
            return Reply::json(404, &json!({"error": {"code": "NotFound"}}));
        };
        Reply::json(200, &json!({ "value": value }))
    })
}

#[cfg(unix)] // Unix only: drives the real Azure CLI.
#[test]
fn the_real_azure_cli_files_after_service_principal_and_user_logins_are_reused() {
    let Some(az_bin) = real_az() else {
        support::skip::missing_tool("azure-cli (PyPI; ENTRA_TEST_AZ names its az)", "the real az's files");
        return;
    };
    let ca = TestCa::new();
    let mock = MockAuthority::start_https(&ca);
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some(SECRET));
    mock.approve_device_codes(0);
    let arm = arm_stand_in(&ca, mock.tenant_id(TENANT));
    let sb = Sandbox::new();
    let ca_pem = ca.write_pem(&sb.path("ca"));
    // instance_discovery off, as az documents for its own non-public clouds (Azure Stack).
    sb.write_file("azure/config", "[core]\ncollect_telemetry = false\ninstance_discovery = false\nno_color = true\n");
    let az = |args: &[&str]| {
        let mut c = sb.tool(&az_bin);
        c.args(args).env("REQUESTS_CA_BUNDLE", &ca_pem).env("AZURE_CORE_OUTPUT", "json").env_remove("HTTPS_PROXY").env_remove("https_proxy");
        let out = run(c);
        assert!(out.status.success(), "az {args:?}: {}", stderr(&out));
        out
    };
    az(&["cloud", "register", "-n", "EntraTest", "--skip-endpoint-discovery", "--endpoint-active-directory", &mock.url(), "--endpoint-active-directory-resource-id", AZ_RESOURCE, "--endpoint-resource-manager", &format!("{}/", arm.url()), "--endpoint-active-directory-graph-resource-id", "https://graph.windows.net/"]);
    az(&["cloud", "set", "-n", "EntraTest"]);
    az(&["login", "--service-principal", "-u", APP, "-p", SECRET, "--tenant", TENANT]);
    let cache_file = sb.path("azure/msal_token_cache.json");
    let sp_cache: serde_json::Value = serde_json::from_slice(&std::fs::read(&cache_file).unwrap()).unwrap();
    assert!(sp_cache["AccessToken"].as_object().unwrap().values().any(|t| t["home_account_id"].is_null()), "az wrote no null home_account_id: {sp_cache}");
    // Signed in as the service principal: az answers (run as the fallback), with the principal's client id.
    let mut c = sb.cmd();
    c.args(["get-token", "--flow", "azure-cli", "-r", "arm", "-o", "json"]).env("PATH", az_bin.parent().unwrap()).env("REQUESTS_CA_BUNDLE", &ca_pem);
    let v: serde_json::Value = serde_json::from_str(&ok_stdout(&run(c))).unwrap();
    assert_eq!(v["client_id"], APP, "{v}");

    // A person signs in after it (device code, approved by the stand-in): the null entries stay.
    az(&["login", "--use-device-code", "--tenant", TENANT]);
    let user_at = mock.issued_access_tokens().last().cloned().unwrap();
    let both: serde_json::Value = serde_json::from_slice(&std::fs::read(&cache_file).unwrap()).unwrap();
    assert!(both["AccessToken"].as_object().unwrap().values().any(|t| t["home_account_id"].is_null()), "the service principal's entries are gone: {both}");
    let requests = mock.token_requests();
    std::fs::create_dir_all(sb.path("empty-bin")).unwrap();
    let cmd = |resource: &str| {
        let mut c = sb.cmd();
        c.args(["get-token", "--flow", "azure-cli", "-r", resource]).env("AZURE_AUTHORITY_HOST", mock.url()).env("SSL_CERT_FILE", &ca_pem).env("PATH", sb.path("empty-bin"));
        c
    };
    // `-r arm` is az's own management.core.windows.net token, read from the file az wrote.
    assert_eq!(ok_stdout(&run(cmd("arm"))), user_at);
    assert_eq!(mock.token_requests(), requests);
    // Nothing configured here and no AZURE_AUTHORITY_HOST: az's active cloud (EntraTest,
    // registered above) is read as az reads it, and our `az` answers what the real one does.
    let mut c = sb.cmd();
    c.args(["az", "account", "get-access-token", "-o", "json"]).env("PATH", sb.path("empty-bin"));
    let ours: serde_json::Value = serde_json::from_str(&ok_stdout(&run(c))).unwrap();
    let theirs: serde_json::Value = serde_json::from_slice(&az(&["account", "get-access-token", "-o", "json"]).stdout).unwrap();
    assert_eq!(ours["accessToken"].as_str(), Some(user_at.as_str()), "{ours}");
    for field in ["accessToken", "subscription", "tenant", "tokenType"] {
        assert_eq!(ours[field], theirs[field], "{field}: ours {ours}, az's {theirs}");
    }
    assert_eq!(mock.token_requests(), requests);
    // az itself asked for ARM's newer audience puts a second ARM token in its cache: a
    // request for az's own audience still gets az's own-audience token, as az answers it.
    let newer = String::from_utf8(az(&["account", "get-access-token", "--resource", "https://management.azure.com/", "--query", "accessToken", "-o", "tsv"]).stdout).unwrap();
    assert_eq!(support::jwt_claims(newer.trim()).unwrap()["aud"], "https://management.azure.com/", "{newer}");
    let requests = mock.token_requests();
    let own = ok_stdout(&run(cmd("https://management.core.windows.net/")));
    assert_eq!(own, user_at);
    assert_eq!(support::jwt_claims(&own).unwrap()["aud"], "https://management.core.windows.net/");
    assert_eq!(mock.token_requests(), requests);
    // Graph: az's refresh token.
    let graph = ok_stdout(&run(cmd("graph")));
    assert_eq!(mock.issued_access_tokens().last(), Some(&graph));
    // Keep what az wrote, for the fixture test (tokens replaced; `ENTRA_TEST_AZ_FIXTURES=dir`).
    if let Some(dir) = std::env::var_os("ENTRA_TEST_AZ_FIXTURES") {
        let version = String::from_utf8_lossy(&az(&["version", "-o", "json"]).stdout).into_owned();
        std::fs::write(Path::new(&dir).join("az-version.json"), version).unwrap();
        for f in ["azureProfile.json", "msal_token_cache.json"] {
            std::fs::copy(sb.path(&format!("azure/{f}")), Path::new(&dir).join(f)).unwrap();
        }
    }
}

#[test]
fn files_the_real_azure_cli_wrote_are_read_whole() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/azure-cli-2.91");
    let sb = Sandbox::new();
    let profile = std::fs::read(fixtures.join("azureProfile.json")).unwrap();
    assert!(profile.starts_with(b"\xEF\xBB\xBF"), "az writes a BOM");
    sb.write_file("azure/azureProfile.json", profile);
    // az was set to the cloud it registered (its subscriptions are that cloud's).
    sb.write_file("azure/config", "[cloud]\nname = EntraTest\n");
    // The tokens' times moved to now, so they are valid; nothing else changed.
    let mut cache: serde_json::Value = serde_json::from_slice(&std::fs::read(fixtures.join("msal_token_cache.json")).unwrap()).unwrap();
    let exp = (support::wire::now() + 3600).to_string();
    for t in cache["AccessToken"].as_object_mut().unwrap().values_mut() {
        assert!(t["home_account_id"].is_null() || t["home_account_id"].is_string());
        t["expires_on"] = json!(exp);
        t["extended_expires_on"] = json!(exp);
    }
    sb.write_file("azure/msal_token_cache.json", serde_json::to_vec_pretty(&cache).unwrap());
    std::fs::create_dir_all(sb.path("empty-bin")).unwrap();
    let mut c = sb.cmd();
    // No authority answers: the token must come from az's file.
    c.args(["get-token", "--flow", "azure-cli", "-r", "arm"]).env("AZURE_AUTHORITY_HOST", support::refused_url().replace("http://", "https://")).env("PATH", sb.path("empty-bin"));
    let out = run(c);
    assert_eq!(ok_stdout(&out), "fixture-accesstoken-2", "the person's token (not the service principal's null-account ones): {}", stderr(&out));
}
