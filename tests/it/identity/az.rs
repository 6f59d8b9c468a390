//! The identity of `azure-cli` requests: az's current account (its default subscription's
//! user and tenant, or the one `--subscription` names) keys the token, and az's cache
//! answers only the scopes it holds.

use super::*;

/// `azureProfile.json` (with az's BOM) whose default subscription is in `tenant` for `user`.
fn az_profile(sb: &Sandbox, user: &str, tenant: &str) {
    let profile = json!({"subscriptions": [
        {"id": "sub-x", "name": "X", "user": {"name": "x@else.test", "type": "user"}, "isDefault": false, "tenantId": "99999999-9999-9999-9999-999999999999"},
        {"id": "sub-1", "name": "Dev", "user": {"name": user, "type": "user"}, "isDefault": true, "tenantId": tenant}
    ]});
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(serde_json::to_vec(&profile).unwrap());
    sb.write_file("azure/azureProfile.json", bytes);
}

/// A stand-in `az` in `bin/` whose n-th `get-access-token` answers `az-token-n`.
// Unix only: the stand-in az is an sh script (a mode-0755 file).
#[cfg(unix)]
fn fake_az(sb: &Sandbox) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let log = sb.path("bin/calls.log");
    let exp = support::wire::now() + 3600;
    let script = format!(
        "#!/bin/sh\necho \"$@\" >> '{log}'\nn=$(/usr/bin/wc -l < '{log}')\nn=$((n))\nprintf '%s' \"{{\\\"accessToken\\\":\\\"az-token-$n\\\",\\\"expiresOn\\\":\\\"2030-01-01 00:00:00.000000\\\",\\\"expires_on\\\":{exp},\\\"subscription\\\":\\\"sub-1\\\",\\\"tenant\\\":\\\"t\\\",\\\"tokenType\\\":\\\"Bearer\\\"}}\"\n",
        log = log.display()
    );
    let path = sb.write_file("bin/az", script);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    log
}

// Unix only: drives the sh-script stand-in az (fake_az).
#[cfg(unix)]
#[test]
fn azure_cli_follows_az_account_set() {
    let mock = mock();
    let sb = sandbox(&mock, &[("az", "flow = \"azure-cli\"")]);
    let log = fake_az(&sb);
    let az = |sb: &Sandbox| {
        let mut c = get(sb, &["-p", "az", "-r", "arm"], &[]);
        c.env("PATH", sb.path("bin"));
        ok_stdout(&run(c))
    };
    az_profile(&sb, "alice@contoso.test", "aaaaaaaa-0000-0000-0000-00000000000a");
    assert_eq!(az(&sb), "az-token-1");
    assert_eq!(az(&sb), "az-token-1", "cached");
    // `az account set` to a subscription of another tenant: a new token, not tenant A's.
    az_profile(&sb, "alice@contoso.test", "bbbbbbbb-0000-0000-0000-00000000000b");
    assert_eq!(az(&sb), "az-token-2");
    // `az login` as another person.
    az_profile(&sb, "bob@contoso.test", "bbbbbbbb-0000-0000-0000-00000000000b");
    assert_eq!(az(&sb), "az-token-3");
    // Back: az rewrote its profile, which is all a new sign-in under the same name shows
    // (a_new_az_login_under_the_same_username…), so a new token, cached in turn.
    az_profile(&sb, "alice@contoso.test", "aaaaaaaa-0000-0000-0000-00000000000a");
    assert_eq!(az(&sb), "az-token-4");
    assert_eq!(az(&sb), "az-token-4", "cached");
    assert_eq!(std::fs::read_to_string(log).unwrap().lines().count(), 4);
}

/// `az account get-access-token --subscription S` with no profile holding S: a profile that
/// signs in through az, and the built-in `auto` when az is one of its sources, get az's
/// account for S (another person, another tenant), never the default subscription's token
/// labelled S; a subscription az does not have is refused. The subscription reported is
/// the account's own id, as az reports it, never the tenant or the name typed.
#[test]
fn az_subscription_is_az_own_account_for_it() {
    let (ta, tx) = ("aaaaaaaa-0000-0000-0000-00000000000a", "99999999-9999-9999-9999-999999999999");
    // An `azure-cli` profile, and nothing configured (the built-in `auto`).
    for profiles in [&[("default", "flow = \"azure-cli\"")][..], &[]] {
        let mock = mock();
        let sb = sandbox(&mock, profiles);
        az_profile(&sb, "alice@contoso.test", ta);
        // az's cache holds an ARM token for each of its two accounts.
        let host = mock.url().trim_start_matches("http://").split(':').next().unwrap().to_string();
        let exp = (support::wire::now() + 3600).to_string();
        let arm = "https://management.core.windows.net//.default";
        let at = |user: &str, tenant: &str, secret: &str| {
            let home = format!("uid.{tenant}");
            let account = json!({"home_account_id": home, "environment": host, "realm": tenant, "username": user, "authority_type": "MSSTS"});
            let token = json!({"credential_type": "AccessToken", "secret": secret, "home_account_id": home, "environment": host, "client_id": support::AZURE_CLI, "realm": tenant, "target": arm, "token_type": "Bearer", "expires_on": exp, "cached_at": "0"});
            (account, token)
        };
        // Tokens as Entra issues them: JWTs naming their tenant.
        let (alice, x) = (support::wire::jwt(&json!({"tid": ta, "n": "alice"})), support::wire::jwt(&json!({"tid": tx, "n": "x"})));
        let (a1, t1) = at("alice@contoso.test", ta, &alice);
        let (a2, t2) = at("x@else.test", tx, &x);
        let cache = json!({"Account": {"a1": a1, "a2": a2}, "AccessToken": {"t1": t1, "t2": t2}, "RefreshToken": {}});
        sb.write_file("azure/msal_token_cache.json", serde_json::to_vec(&cache).unwrap());
        let (alice, x) = (Some(alice.as_str()), Some(x.as_str()));
        let az = |args: &[&str]| {
            let mut c = sb.cmd();
            c.args(["az", "account", "get-access-token", "-o", "json"]).args(args).env("PATH", sb.path("empty-bin")).env("AZURE_AUTHORITY_HOST", mock.url());
            run(c)
        };
        let json = |o: Output| -> Value { serde_json::from_str(&ok_stdout(&o)).unwrap() };
        let v = json(az(&[]));
        assert_eq!((v["accessToken"].as_str(), v["tenant"].as_str(), v["subscription"].as_str()), (alice, Some(ta), Some("sub-1")), "{profiles:?}");
        // sub-x belongs to x@else.test in another tenant: that account's token, in its tenant.
        let v = json(az(&["--subscription", "sub-x"]));
        assert_eq!((v["accessToken"].as_str(), v["tenant"].as_str(), v["subscription"].as_str()), (x, Some(tx), Some("sub-x")), "{profiles:?}");
        // By name, any case; and the default subscription by id: az reports the id it holds.
        let v = json(az(&["--subscription", "x"]));
        assert_eq!((v["accessToken"].as_str(), v["subscription"].as_str()), (x, Some("sub-x")));
        let v = json(az(&["--subscription", "SUB-1"]));
        assert_eq!((v["accessToken"].as_str(), v["subscription"].as_str()), (alice, Some("sub-1")));
        // A subscription az does not have: refused, as az refuses it.
        let out = az(&["--subscription", "elsewhere"]);
        assert_ne!(out.status.code(), Some(0));
        assert!(out.stdout.is_empty());
        assert!(stderr(&out).contains("no subscription 'elsewhere'"), "{profiles:?}: {}", stderr(&out));
    }
}

/// az's MSAL cache holding one access token for `target`, of the signed-in account.
#[cfg(unix)]
fn msal_cache(sb: &Sandbox, mock: &MockAuthority, tenant: &str, target: &str, secret: &str) {
    let host = mock.url().trim_start_matches("http://").split(':').next().unwrap().to_string();
    let home = format!("uid.{tenant}");
    let exp = (support::wire::now() + 3600).to_string();
    let cache = json!({
        "Account": {"a": {"home_account_id": home, "environment": host, "realm": tenant, "username": "alice@contoso.test", "authority_type": "MSSTS"}},
        "AccessToken": {"t": {"credential_type": "AccessToken", "secret": secret, "home_account_id": home, "environment": host, "client_id": support::AZURE_CLI, "realm": tenant, "target": target, "token_type": "Bearer", "expires_on": exp, "cached_at": "0"}},
        "RefreshToken": {}
    });
    sb.write_file("azure/msal_token_cache.json", serde_json::to_vec(&cache).unwrap());
}

// Unix only: drives the sh-script stand-in az (fake_az).
#[cfg(unix)]
#[test]
fn azure_cli_cache_scopes_match_exactly_never_by_prefix() {
    let mock = mock();
    let sb = sandbox(&mock, &[("az", "flow = \"azure-cli\"")]);
    fake_az(&sb);
    let tenant = "aaaaaaaa-0000-0000-0000-00000000000a";
    az_profile(&sb, "alice@contoso.test", tenant);
    msal_cache(&sb, &mock, tenant, "api://contoso/payroll/.default", "payroll-token");
    let az = |resource: &str| {
        let mut c = get(&sb, &["-p", "az", "-r", resource, "--no-cache"], &[]);
        c.env("PATH", sb.path("bin"));
        ok_stdout(&run(c))
    };
    // The token az holds answers its own audience…
    assert_eq!(az("api://contoso/payroll"), "payroll-token");
    // …and never a request for a shorter resource that it merely starts with.
    assert_eq!(az("api://contoso"), "az-token-1");
    // ARM's newer audience answers `-r arm`, but az's own audience is asked for exactly
    // (`az account get-access-token` with no resource): az's answer, never that token.
    msal_cache(&sb, &mock, tenant, "https://management.azure.com//.default", "arm-token");
    assert_eq!(az("https://management.azure.com/"), "arm-token");
    assert_eq!(az("https://management.core.windows.net/"), "az-token-2");
}

/// `azureProfile.json` with one subscription, signed in as `user` (az's managed-identity
/// accounts: `systemAssignedIdentity`, or `userAssignedIdentity` for every user-assigned one).
#[cfg(unix)]
fn az_managed_identity(sb: &Sandbox, user: &str, info: &str) {
    let profile = json!({"subscriptions": [{"id": "sub-1", "name": "Dev", "state": "Enabled", "isDefault": true, "tenantId": "aaaaaaaa-0000-0000-0000-00000000000a", "environmentName": "AzureCloud",
        "user": {"name": user, "type": "servicePrincipal", "assignedIdentityInfo": info}}]});
    sb.write_file("azure/azureProfile.json", serde_json::to_vec(&profile).unwrap());
}

/// `az login --identity` with `--client-id`/`--object-id`/`--resource-id` (`--username`
/// before az 2.69) names every user-assigned identity `userAssignedIdentity` and tells them
/// apart only by `assignedIdentityInfo` (`MSIClient-…`, `MSIObject-…`, `MSIResource-…`;
/// `MSI` for the system-assigned one): each is its own identity, never another's token.
// Unix only: drives the sh-script stand-in az (fake_az).
#[cfg(unix)]
#[test]
fn azure_cli_managed_identities_are_told_apart_by_their_assigned_identity() {
    let mock = mock();
    let sb = sandbox(&mock, &[("az", "flow = \"azure-cli\"")]);
    let log = fake_az(&sb);
    let az = || {
        let mut c = get(&sb, &["-p", "az", "-r", "arm"], &[]);
        c.env("PATH", sb.path("bin"));
        ok_stdout(&run(c))
    };
    az_managed_identity(&sb, "userAssignedIdentity", "MSIClient-11111111-aaaa-4000-8000-000000000001");
    assert_eq!(az(), "az-token-1");
    assert_eq!(az(), "az-token-1", "cached");
    az_managed_identity(&sb, "userAssignedIdentity", "MSIClient-22222222-aaaa-4000-8000-000000000002");
    assert_eq!(az(), "az-token-2");
    az_managed_identity(&sb, "userAssignedIdentity", "MSIResource-/subscriptions/sub-1/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1");
    assert_eq!(az(), "az-token-3");
    az_managed_identity(&sb, "systemAssignedIdentity", "MSI");
    assert_eq!(az(), "az-token-4");
    az_managed_identity(&sb, "userAssignedIdentity", "MSIClient-11111111-aaaa-4000-8000-000000000001");
    assert_eq!(az(), "az-token-1", "the first identity's own token, cached");
    assert_eq!(std::fs::read_to_string(log).unwrap().lines().count(), 4);
}

/// One MSAL Account entry of az's cache for `user` with home `home` in `realm`, and its ARM token.
fn az_account(host: &str, user: &str, home: &str, realm: &str, secret: &str) -> (Value, Value) {
    let account = json!({"home_account_id": home, "environment": host, "realm": realm, "username": user, "authority_type": "MSSTS"});
    let exp = (support::wire::now() + 3600).to_string();
    let token = json!({"credential_type": "AccessToken", "secret": secret, "home_account_id": home, "environment": host, "client_id": support::AZURE_CLI, "realm": realm,
        "target": "https://management.core.windows.net//.default", "token_type": "Bearer", "expires_on": exp, "cached_at": "0"});
    (account, token)
}

/// Two accounts with one username in az's cache (a work and a personal account, or a
/// B2B guest of two home tenants): az refuses ("multiple accounts"), and so do we, rather
/// than serve the first one's token. One account seen in two tenants is still one.
#[test]
fn two_accounts_with_one_username_in_azs_cache_are_refused_as_az_refuses_them() {
    let mock = mock();
    let sb = sandbox(&mock, &[("az", "flow = \"azure-cli\"")]);
    let tenant = "aaaaaaaa-0000-0000-0000-00000000000a";
    az_profile(&sb, "alice@contoso.test", tenant);
    let host = mock.url().trim_start_matches("http://").split(':').next().unwrap().to_string();
    let (a1, t1) = az_account(&host, "alice@contoso.test", "uid1.home1", tenant, "home1-token");
    // The same person (one home account) in another tenant: still one account.
    let (a1b, _) = az_account(&host, "alice@contoso.test", "uid1.home1", "bbbbbbbb-0000-0000-0000-00000000000b", "x");
    let write = |accounts: Value, tokens: Value| sb.write_file("azure/msal_token_cache.json", serde_json::to_vec(&json!({"Account": accounts, "AccessToken": tokens, "RefreshToken": {}})).unwrap());
    let az = || {
        let mut c = get(&sb, &["-p", "az", "-r", "https://management.core.windows.net/", "--no-cache"], &[]);
        c.env("PATH", sb.path("empty-bin"));
        run(c)
    };
    write(json!({"a1": a1, "a1b": a1b}), json!({"t1": t1}));
    assert_eq!(ok_stdout(&az()), "home1-token");
    // Another home account with the same username (listed first, so a first-match would pick it).
    let (a0, t0) = az_account(&host, "Alice@Contoso.test", "uid0.home0", tenant, "home0-token");
    write(json!({"a0": a0, "a1": a1, "a1b": a1b}), json!({"t0": t0, "t1": t1}));
    let out = az();
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert!(stderr(&out).contains("multiple accounts") && stderr(&out).contains("alice@contoso.test"), "{}", stderr(&out));
}

/// az's cache also keeps key-bound tokens: an SSH certificate after `az ssh` (`ssh-cert`)
/// and proof-of-possession tokens after `az connectedk8s proxy` (`pop`), each with a
/// `key_id`. Only a bearer token is ever served from it.
// Unix only: drives the sh-script stand-in az (fake_az).
#[cfg(unix)]
#[test]
fn only_bearer_tokens_are_served_from_azs_cache() {
    let mock = mock();
    let sb = sandbox(&mock, &[("az", "flow = \"azure-cli\"")]);
    fake_az(&sb);
    let tenant = "aaaaaaaa-0000-0000-0000-00000000000a";
    az_profile(&sb, "alice@contoso.test", tenant);
    let host = mock.url().trim_start_matches("http://").split(':').next().unwrap().to_string();
    let (account, bearer) = az_account(&host, "alice@contoso.test", "uid.t", tenant, "bearer-token");
    let key_bound = |kind: &str, target: &str, secret: &str| {
        let mut t = bearer.clone();
        t["token_type"] = json!(kind);
        t["key_id"] = json!("kid-1");
        t["target"] = json!(target);
        t["secret"] = json!(secret);
        t
    };
    let mut graph = bearer.clone();
    graph["target"] = json!("https://graph.microsoft.com/.default");
    let tokens = json!({
        "pop": key_bound("pop", "https://management.core.windows.net//.default", "pop-token"),
        "ssh": key_bound("ssh-cert", "https://pas.windows.net/CheckMyAccess/Linux/.default", "ssh-rsa-cert-v01@openssh.com AAAA"),
        "graph": graph,
    });
    sb.write_file("azure/msal_token_cache.json", serde_json::to_vec(&json!({"Account": {"a": account}, "AccessToken": tokens, "RefreshToken": {}})).unwrap());
    let az = |resource: &str| {
        let mut c = get(&sb, &["-p", "az", "-r", resource, "--no-cache"], &[]);
        c.env("PATH", sb.path("bin"));
        ok_stdout(&run(c))
    };
    // The pop and ssh-cert entries are passed over: az is asked for a bearer token.
    assert_eq!(az("https://management.core.windows.net/"), "az-token-1");
    assert_eq!(az("https://pas.windows.net/CheckMyAccess/Linux"), "az-token-2");
    // A bearer entry is still served.
    assert_eq!(az("https://graph.microsoft.com"), "bearer-token");
}

/// az's files are read only when they are the user's and nobody else may change them (as
/// ours are): a token planted in an az token cache that others may write is never served
/// (az itself is asked instead), and the file is named with the fix. Group write is
/// accepted only for the user's own private group (root's here is gid 0 = uid 0).
#[cfg(unix)]
#[test]
fn azs_files_that_others_may_change_are_not_read() {
    use std::os::unix::fs::PermissionsExt;
    let mock = mock();
    let sb = sandbox(&mock, &[("az", "flow = \"azure-cli\"")]);
    let log = fake_az(&sb);
    let tenant = "aaaaaaaa-0000-0000-0000-00000000000a";
    az_profile(&sb, "alice@contoso.test", tenant);
    msal_cache(&sb, &mock, tenant, "api://contoso/payroll/.default", "planted-token");
    let file = sb.path("azure/msal_token_cache.json");
    let az = || {
        let mut c = get(&sb, &["-p", "az", "-r", "api://contoso/payroll", "--no-cache"], &[]);
        c.env("PATH", sb.path("bin"));
        run(c)
    };
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = az();
    assert_eq!(ok_stdout(&out), "az-token-1", "a token from a cache others may write was served");
    let err = stderr(&out);
    assert!(err.contains(&file.display().to_string()) && err.contains("chmod go-w"), "the file and the fix are named: {err}");
    // The user's own file, others may read it: read as before.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(ok_stdout(&az()), "planted-token");
    assert_eq!(std::fs::read_to_string(log).unwrap().lines().count(), 1, "az was asked once, when its cache could not be trusted");
}

/// `az logout` and `az login` as another home account under the same username and tenant
/// (a deleted and re-created user, a work and a personal account with one address): az's
/// profile reads the same, its token cache holds only the new account. The earlier
/// account's token, cached by us, is never served to the new one; while az's profile is
/// unchanged our cache answers.
#[test]
fn a_new_az_login_under_the_same_username_never_gets_the_earlier_accounts_token() {
    let mock = mock();
    let sb = sandbox(&mock, &[("az", "flow = \"azure-cli\"")]);
    let tenant = "aaaaaaaa-0000-0000-0000-00000000000a";
    let host = mock.url().trim_start_matches("http://").split(':').next().unwrap().to_string();
    let login = |home: &str, secret: &str| {
        az_profile(&sb, "alice@contoso.test", tenant);
        let (account, token) = az_account(&host, "alice@contoso.test", home, tenant, secret);
        sb.write_file("azure/msal_token_cache.json", serde_json::to_vec(&json!({"Account": {"a": account}, "AccessToken": {"t": token}, "RefreshToken": {}})).unwrap());
    };
    let az = || {
        let mut c = get(&sb, &["-p", "az", "-r", "https://management.core.windows.net/"], &[]);
        c.env("PATH", sb.path("empty-bin"));
        ok_stdout(&run(c))
    };
    login("uid1.home1", "home1-token");
    assert_eq!(az(), "home1-token");
    // Our cache answers now, whatever az's cache says.
    let (_, other) = az_account(&host, "alice@contoso.test", "uid1.home1", tenant, "not-served");
    let (account, _) = az_account(&host, "alice@contoso.test", "uid1.home1", tenant, "");
    sb.write_file("azure/msal_token_cache.json", serde_json::to_vec(&json!({"Account": {"a": account}, "AccessToken": {"t": other}, "RefreshToken": {}})).unwrap());
    assert_eq!(az(), "home1-token", "cached");
    // az logout; az login as the other account: az rewrites azureProfile.json (the same words).
    let written = std::fs::metadata(sb.path("azure/azureProfile.json")).unwrap().modified().unwrap();
    login("uid2.home2", "home2-token");
    // A coarse file clock must not hide the rewrite: at least a second later, as a sign-in takes.
    let file = std::fs::File::options().write(true).open(sb.path("azure/azureProfile.json")).unwrap();
    file.set_modified(written + std::time::Duration::from_secs(1)).unwrap();
    assert_eq!(az(), "home2-token", "the earlier home account's cached token was served to the new one");
    assert_eq!(az(), "home2-token");
}
