//! With nothing configured, az's active cloud (`az cloud set`) is read as az reads it: its
//! name from az's `config`, its endpoints from `clouds.config` for a registered cloud or
//! az's own for a sovereign one; its login host is where tokens come from and its ARM
//! audience is what `az account get-access-token` asks for by default.

use super::*;
use serde_json::Value;

/// az signed in to `cloud`: its account (alice, in its own tenant) and an ARM token for
/// `arm_resource` at `login_host`, in az's files; and an account of the public cloud (bob)
/// marked default, so a reader blind to clouds would pick bob.
fn signed_in_to(sb: &Sandbox, cloud: &str, login_host: &str, arm_resource: &str) {
    let (ta, tb) = ("aaaaaaaa-0000-0000-0000-00000000000a", "bbbbbbbb-0000-0000-0000-00000000000b");
    let profile = json!({"subscriptions": [
        {"id": "sub-public", "name": "Public", "state": "Enabled", "isDefault": true, "tenantId": tb, "environmentName": "AzureCloud", "user": {"name": "bob@contoso.test", "type": "user"}},
        {"id": "sub-cloud", "name": "Cloud", "state": "Enabled", "isDefault": false, "tenantId": ta, "environmentName": cloud, "user": {"name": "alice@contoso.test", "type": "user"}}
    ]});
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(serde_json::to_vec(&profile).unwrap());
    sb.write_file("azure/azureProfile.json", bytes);
    let exp = (support::wire::now() + 3600).to_string();
    let token = |user: &str, tenant: &str, host: &str, target: &str| {
        let home = format!("{user}.{tenant}");
        let account = json!({"home_account_id": home, "environment": host, "realm": tenant, "username": user, "authority_type": "MSSTS"});
        let secret = support::wire::jwt(&json!({"tid": tenant, "aud": arm_resource, "upn": user}));
        let at = json!({"credential_type": "AccessToken", "secret": secret, "home_account_id": home, "environment": host, "client_id": support::AZURE_CLI, "realm": tenant, "target": target, "token_type": "Bearer", "expires_on": exp, "cached_at": "0"});
        (account, at)
    };
    let (a1, t1) = token("alice@contoso.test", ta, login_host, &format!("{arm_resource}/.default"));
    let (a2, t2) = token("bob@contoso.test", tb, "login.microsoftonline.com", "https://management.core.windows.net//.default");
    sb.write_file("azure/msal_token_cache.json", serde_json::to_vec(&json!({"Account": {"a1": a1, "a2": a2}, "AccessToken": {"t1": t1, "t2": t2}, "RefreshToken": {}})).unwrap());
}

/// `entra-token az account get-access-token` with nothing configured, no az on PATH and
/// nothing answering anywhere: the token can only come from az's cache of az's cloud.
fn az_answer(sb: &Sandbox) -> Value {
    std::fs::create_dir_all(sb.path("empty-bin")).unwrap();
    let mut c = sb.cmd();
    c.args(["az", "account", "get-access-token", "-o", "json"]).env("PATH", sb.path("empty-bin"));
    let out = run(c);
    serde_json::from_str(&ok_stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)))
}

#[test]
fn a_registered_cloud_az_was_set_to_is_where_the_token_comes_from() {
    let sb = Sandbox::new();
    // As `az cloud register -n EntraTest …` and `az cloud set -n EntraTest` write them.
    sb.write_file("azure/config", "[cloud]\nname = EntraTest\n\n[core]\nfirst_run = yes\n");
    sb.write_file("azure/clouds.config", "[EntraTest]\nendpoint_active_directory = https://login.entratest.example\nendpoint_active_directory_resource_id = https://management.entratest.example/\nendpoint_resource_manager = https://arm.entratest.example/\nprofile = latest\n");
    signed_in_to(&sb, "EntraTest", "login.entratest.example", "https://management.entratest.example/");
    let v = az_answer(&sb);
    let claims = support::jwt_claims(v["accessToken"].as_str().unwrap()).unwrap();
    assert_eq!((claims["upn"].as_str(), claims["aud"].as_str()), (Some("alice@contoso.test"), Some("https://management.entratest.example/")), "{v}");
    assert_eq!((v["subscription"].as_str(), v["tenant"].as_str()), (Some("sub-cloud"), Some("aaaaaaaa-0000-0000-0000-00000000000a")));
}

#[test]
fn a_sovereign_cloud_az_was_set_to_is_where_the_token_comes_from() {
    let sb = Sandbox::new();
    sb.write_file("azure/config", "[cloud]\nname = AzureChinaCloud\n");
    signed_in_to(&sb, "AzureChinaCloud", "login.chinacloudapi.cn", "https://management.core.chinacloudapi.cn/");
    let v = az_answer(&sb);
    let claims = support::jwt_claims(v["accessToken"].as_str().unwrap()).unwrap();
    assert_eq!((claims["upn"].as_str(), claims["aud"].as_str()), (Some("alice@contoso.test"), Some("https://management.core.chinacloudapi.cn/")), "{v}");
    assert_eq!(v["subscription"], "sub-cloud");
    // AZURE_CLOUD_NAME wins over the file, as in az: back in the public cloud, bob answers.
    let mut c = sb.cmd();
    c.args(["az", "account", "get-access-token", "-o", "json"]).env("PATH", sb.path("empty-bin")).env("AZURE_CLOUD_NAME", "AzureCloud");
    let v: Value = serde_json::from_str(&ok_stdout(&run(c))).unwrap();
    assert_eq!(support::jwt_claims(v["accessToken"].as_str().unwrap()).unwrap()["upn"], "bob@contoso.test");
}
