//! `entra-token emulator` on the wire, driven as its users drive it: the binary started in
//! a sandbox, its exports applied, our own `get-token`/`login` and raw HTTP against it over
//! its https. Each test names the behaviour of Entra it holds the emulator to.

use serde_json::{Value, json};

use crate::support::{Emulator, Sandbox, jwt_claims, ok_stdout, run, stderr};

fn post(em: &Emulator, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let mut r = em.agent().post(&format!("{}{path}", em.url())).header("Content-Type", "application/x-www-form-urlencoded").send(body).expect("POST to the emulator");
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn get(em: &Emulator, path: &str, headers: &[(&str, &str)]) -> (u16, Value, Option<String>) {
    let mut req = em.agent().get(&format!("{}{path}", em.url()));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut r = req.call().expect("GET from the emulator");
    let status = r.status().as_u16();
    let location = r.headers().get("location").map(|l| l.to_str().unwrap().to_string());
    let text = r.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)), location)
}

/// Verifies an RS256 JWT against the emulator's JWKS (fetched over its https).
fn verify(em: &Emulator, tenant: &str, jwt: &str) -> Value {
    let (_, jwks, _) = get(em, &format!("/{tenant}/discovery/v2.0/keys"), &[]);
    let parts: Vec<&str> = jwt.split('.').collect();
    let header: Value = serde_json::from_slice(&b64(parts[0])).unwrap();
    assert_eq!(header["alg"], "RS256");
    let key = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == header["kid"]).expect("the token's kid is in the JWKS");
    let public = ring::signature::RsaPublicKeyComponents { n: b64(key["n"].as_str().unwrap()), e: b64(key["e"].as_str().unwrap()) };
    public.verify(&ring::signature::RSA_PKCS1_2048_8192_SHA256, format!("{}.{}", parts[0], parts[1]).as_bytes(), &b64(parts[2])).expect("signature verifies with the JWKS key");
    jwt_claims(jwt).unwrap()
}

fn b64(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).unwrap()
}

#[test]
fn refuses_every_address_but_loopback_in_one_line() {
    let sb = Sandbox::new();
    for addr in ["0.0.0.0", "192.0.2.1", "::"] {
        let out = run({
            let mut c = sb.cmd();
            c.args(["emulator", "--bind", addr, "--state-dir"]).arg(sb.path("emulator"));
            c
        });
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("127.0.0.1 only") && err.contains(addr), "{err}");
    }
}

#[test]
fn exports_then_https_our_own_client_signs_in_and_tokens_verify_against_jwks() {
    let sb = Sandbox::new();
    let em = Emulator::start(&sb, &[]);
    for name in ["AZURE_AUTHORITY_HOST", "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "ENTRA_EMULATOR_USERNAME", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "ENTRA_TOKEN_CONFIG", "ENTRA_TOKEN_CACHE_DIR"] {
        assert!(!em.var(name).is_empty(), "{name}");
    }
    assert!(em.url().starts_with("https://127.0.0.1:"), "{}", em.url());
    assert!(em.printed.lines().filter(|l| !l.is_empty()).all(|l| l.starts_with("export ")), "{}", em.printed);
    // A shell can eval the lines: sh prints back what it was given (Wine has no sh).
    #[cfg(unix)]
    {
        let out = run({
            let mut c = sb.tool("sh");
            c.args(["-c", &format!("{}echo \"$AZURE_CLIENT_ID|$SSL_CERT_FILE\"", em.printed)]);
            c
        });
        assert_eq!(ok_stdout(&out).trim(), format!("{}|{}", em.var("AZURE_CLIENT_ID"), em.var("SSL_CERT_FILE")));
    }

    let cmd = |args: &[&str]| em.cmd(&sb, args);
    let out = run(cmd(&["login"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let token = ok_stdout(&run(cmd(&["get-token", "-r", "graph"]))).trim().to_string();
    let claims = verify(&em, "contoso.com", &token);
    assert_eq!(claims["emulator"], true);
    assert!(claims["iss"].as_str().unwrap().starts_with(&format!("{}/", em.url())), "{claims}");
    assert_eq!(claims["upn"], "alice@contoso.com");
    assert_eq!(claims["aud"], "https://graph.microsoft.com");
    let app = ok_stdout(&run(cmd(&["get-token", "-p", "app", "-r", "keyvault"]))).trim().to_string();
    let claims = verify(&em, "contoso.com", &app);
    assert_eq!((claims["idtyp"].as_str(), claims["appid"].as_str(), claims["azpacr"].as_str()), (Some("app"), Some(em.var("AZURE_CLIENT_ID")), Some("1")));
}

#[test]
fn errors_have_entra_s_shape_and_codes() {
    let sb = Sandbox::new();
    let em = Emulator::start(&sb, &["--http"]);
    assert!(em.url().starts_with("http://127.0.0.1:"));
    let (status, body) = post(&em, "/contoso.com/oauth2/v2.0/token", &[("grant_type", "client_credentials"), ("client_id", em.var("AZURE_CLIENT_ID")), ("client_secret", "wrong"), ("scope", "https://graph.microsoft.com/.default")]);
    assert_eq!(status, 401);
    assert_eq!((body["error"].as_str(), body["error_codes"].clone()), (Some("invalid_client"), json!([7000215])));
    assert!(body["error_description"].as_str().unwrap().starts_with("AADSTS7000215: "), "{body}");
    for k in ["timestamp", "trace_id", "correlation_id"] {
        assert!(body[k].as_str().is_some_and(|v| !v.is_empty()), "{k}: {body}");
    }
    let (status, body, _) = get(&em, "/nowhere.test/v2.0/.well-known/openid-configuration", &[]);
    assert_eq!((status, body["error_codes"].clone()), (400, json!([90002])));
    let (_, body) = post(&em, "/contoso.com/oauth2/v2.0/token", &[("grant_type", "client_credentials"), ("client_id", "00000000-0000-0000-0000-00000000dead"), ("client_secret", "x"), ("scope", "https://graph.microsoft.com/.default")]);
    assert_eq!(body["error_codes"], json!([700016]));
    let (_, body) = post(&em, "/common/oauth2/v2.0/token", &[("grant_type", "client_credentials"), ("client_id", em.var("AZURE_CLIENT_ID")), ("client_secret", em.var("AZURE_CLIENT_SECRET")), ("scope", "https://graph.microsoft.com/.default")]);
    assert_eq!(body["error_codes"], json!([9001023]));
}

#[test]
fn discovery_instance_discovery_and_v1() {
    let sb = Sandbox::new();
    let em = Emulator::start(&sb, &[]);
    let (status, oidc, _) = get(&em, "/contoso.com/v2.0/.well-known/openid-configuration", &[]);
    assert_eq!(status, 200);
    assert_eq!(oidc["token_endpoint"], format!("{}/contoso.com/oauth2/v2.0/token", em.url()));
    assert!(oidc["issuer"].as_str().unwrap().starts_with(em.url()) && oidc["issuer"].as_str().unwrap().ends_with("/v2.0"));
    let (_, v1, _) = get(&em, "/contoso.com/.well-known/openid-configuration", &[]);
    assert_eq!(v1["token_endpoint"], format!("{}/contoso.com/oauth2/token", em.url()));
    let auth = format!("{}/contoso.com/oauth2/v2.0/authorize", em.url());
    let q = form_urlencoded::Serializer::new(String::new()).append_pair("api-version", "1.1").append_pair("authorization_endpoint", &auth).finish();
    let (status, inst, _) = get(&em, &format!("/common/discovery/instance?{q}"), &[]);
    assert_eq!(status, 200);
    assert_eq!(inst["tenant_discovery_endpoint"], format!("{}/contoso.com/v2.0/.well-known/openid-configuration", em.url()));
    let (status, inst, _) = get(&em, "/common/discovery/instance?api-version=1.1&authorization_endpoint=https://login.example.com/t/oauth2/v2.0/authorize", &[]);
    assert_eq!((status, inst["error"].as_str()), (400, Some("invalid_instance")));
    // v1: resource= in, numbers as strings out.
    let (status, t) = post(&em, "/contoso.com/oauth2/token", &[("grant_type", "client_credentials"), ("client_id", em.var("AZURE_CLIENT_ID")), ("client_secret", em.var("AZURE_CLIENT_SECRET")), ("resource", "https://vault.azure.net")]);
    assert_eq!(status, 200, "{t}");
    assert!(t["expires_in"].is_string() && t["expires_on"].is_string(), "{t}");
    assert_eq!(verify(&em, "contoso.com", t["access_token"].as_str().unwrap())["ver"], "1.0");
}

#[test]
fn authorize_with_pkce_redirects_and_refresh_tokens_rotate() {
    let sb = Sandbox::new();
    let em = Emulator::start(&sb, &[]);
    let verifier = "a".repeat(43) + "-verifier";
    let challenge = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()))
    };
    let cli = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
    let redirect = "http://localhost:8400/";
    let q = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("client_id", cli), ("response_type", "code"), ("redirect_uri", redirect), ("scope", "https://graph.microsoft.com/.default openid offline_access"), ("state", "s1"), ("code_challenge", challenge.as_str()), ("code_challenge_method", "S256")])
        .finish();
    let (status, _, location) = get(&em, &format!("/organizations/oauth2/v2.0/authorize?{q}"), &[]);
    assert_eq!(status, 302);
    let location = location.unwrap();
    assert!(location.starts_with(redirect) && location.contains("state=s1"), "{location}");
    let code = form_urlencoded::parse(location.split_once('?').unwrap().1.as_bytes()).find(|(k, _)| k == "code").unwrap().1.into_owned();
    let redeem = |v: &str| post(&em, "/organizations/oauth2/v2.0/token", &[("grant_type", "authorization_code"), ("client_id", cli), ("code", &code), ("redirect_uri", redirect), ("code_verifier", v), ("scope", "https://graph.microsoft.com/.default openid offline_access")]);
    let (status, bad) = redeem(&"b".repeat(43));
    assert_eq!((status, bad["error_codes"].clone()), (400, json!([50148])));
    let (status, t) = redeem(&verifier);
    assert_eq!(status, 200, "{t}");
    assert_eq!(verify(&em, "organizations", t["id_token"].as_str().unwrap())["aud"], cli);
    let rt1 = t["refresh_token"].as_str().unwrap().to_string();
    let refresh = |rt: &str| post(&em, "/organizations/oauth2/v2.0/token", &[("grant_type", "refresh_token"), ("client_id", cli), ("refresh_token", rt), ("scope", "https://management.azure.com//.default offline_access")]);
    let (status, t2) = refresh(&rt1);
    assert_eq!(status, 200, "{t2}");
    let rt2 = t2["refresh_token"].as_str().unwrap();
    assert_ne!(rt1, rt2, "a refresh rotates the refresh token");
    let (status, dead) = refresh(&rt1);
    assert_eq!((status, dead["error"].as_str(), dead["error_codes"].clone()), (400, Some("invalid_grant"), json!([70008])));
    assert_eq!(refresh(rt2).0, 200);
    // A redirect off this machine is refused on a page, never followed.
    let q = q.replace("localhost%3A8400", "evil.example");
    let (status, _, location) = get(&em, &format!("/organizations/oauth2/v2.0/authorize?{q}"), &[]);
    assert_eq!((status, location), (400, None));
}

#[test]
fn click_mode_holds_device_codes_until_someone_approves_on_the_page() {
    let sb = Sandbox::new();
    let em = Emulator::start(&sb, &["--approve", "click"]);
    let cli = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
    let (status, dc) = post(&em, "/contoso.com/oauth2/v2.0/devicecode", &[("client_id", cli), ("scope", "https://graph.microsoft.com/.default offline_access")]);
    assert_eq!(status, 200, "{dc}");
    let poll = || post(&em, "/contoso.com/oauth2/v2.0/token", &[("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("client_id", cli), ("device_code", dc["device_code"].as_str().unwrap())]);
    let (status, pending) = poll();
    assert_eq!((status, pending["error"].as_str(), pending["error_codes"].clone()), (400, Some("authorization_pending"), json!([70016])));
    let (status, page, _) = get(&em, "/devicelogin", &[]);
    assert!(status == 200 && page.as_str().unwrap().contains("alice@contoso.com"), "{page}");
    let (status, _) = post(&em, "/devicelogin", &[("user_code", dc["user_code"].as_str().unwrap()), ("user", "alice@contoso.com")]);
    assert_eq!(status, 200);
    let (status, t) = poll();
    assert_eq!(status, 200, "{t}");
    assert_eq!(verify(&em, "contoso.com", t["access_token"].as_str().unwrap())["upn"], "alice@contoso.com");
    assert_eq!(poll().1["error_codes"], json!([70000]), "a device code is redeemed once");
}

#[test]
fn config_file_ropc_lifetimes_and_assertions() {
    let sb = Sandbox::new();
    let cfg = sb.write_file("emulator.toml", "token_lifetime = \"10m\"\n[[tenants]]\ndomain = \"fabrikam.test\"\n[[apps]]\nclient_id = \"11111111-aaaa-4bbb-8ccc-000000000001\"\nsecret = \"s3\"\n[[apps]]\nclient_id = \"11111111-aaaa-4bbb-8ccc-000000000002\"\nfederated = [{ issuer = \"https://token.actions.example\", subject = \"repo:o/r\" }]\n[[users]]\nusername = \"bob@fabrikam.test\"\npassword = \"pw\"\n");
    let em = Emulator::start(&sb, &["--config", cfg.to_str().unwrap()]);
    assert_eq!(em.var("AZURE_TENANT_ID"), "fabrikam.test");
    let app = "11111111-aaaa-4bbb-8ccc-000000000001";
    let ropc = |pw: &str| post(&em, "/fabrikam.test/oauth2/v2.0/token", &[("grant_type", "password"), ("client_id", app), ("client_secret", "s3"), ("username", "bob@fabrikam.test"), ("password", pw), ("scope", "https://graph.microsoft.com/.default offline_access")]);
    assert_eq!(ropc("nope").1["error_codes"], json!([50126]));
    let (status, t) = ropc("pw");
    assert_eq!((status, t["expires_in"].as_i64()), (200, Some(600)), "{t}");
    assert_eq!(jwt_claims(t["access_token"].as_str().unwrap()).unwrap()["upn"], "bob@fabrikam.test");
    // Certificate-style assertion (iss = sub = client, aud = the token endpoint), and a federated one.
    let unsigned = |claims: Value| {
        use base64::Engine;
        let e = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.c2ln", e(json!({"alg": "PS256", "typ": "JWT"})), e(claims))
    };
    let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 600;
    let endpoint = format!("{}/fabrikam.test/oauth2/v2.0/token", em.url());
    let assert_with = |client: &str, a: String| post(&em, "/fabrikam.test/oauth2/v2.0/token", &[("grant_type", "client_credentials"), ("client_id", client), ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"), ("client_assertion", &a), ("scope", "https://graph.microsoft.com/.default")]);
    let (status, t) = assert_with(app, unsigned(json!({"iss": app, "sub": app, "aud": endpoint, "exp": exp})));
    assert_eq!(status, 200, "{t}");
    assert_eq!(jwt_claims(t["access_token"].as_str().unwrap()).unwrap()["azpacr"], "2");
    assert_eq!(assert_with(app, unsigned(json!({"iss": app, "sub": app, "aud": "https://elsewhere/", "exp": exp}))).1["error_codes"], json!([700027]));
    let fed = "11111111-aaaa-4bbb-8ccc-000000000002";
    let fed_token = |sub: &str| unsigned(json!({"iss": "https://token.actions.example", "sub": sub, "aud": "api://AzureADTokenExchange", "exp": exp}));
    assert_eq!(assert_with(fed, fed_token("repo:o/r")).0, 200);
    assert_eq!(assert_with(fed, fed_token("repo:o/other")).1["error_codes"], json!([700027]));
}

#[test]
fn registered_thumbprints_are_checked_and_rotation_can_be_off() {
    let sb = Sandbox::new();
    let app = "11111111-aaaa-4bbb-8ccc-000000000003";
    let cfg = sb.write_file("emulator.toml", format!("refresh_token_rotation = false\n[[apps]]\nclient_id = \"{app}\"\ncertificate_thumbprints = [\"registered-S256\", \"0A0B\"]\n"));
    let em = Emulator::start(&sb, &["--config", cfg.to_str().unwrap()]);
    let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 600;
    let endpoint = format!("{}/contoso.com/oauth2/v2.0/token", em.url());
    let assertion = |header: Value| {
        use base64::Engine;
        let e = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.c2ln", e(header), e(json!({"iss": app, "sub": app, "aud": endpoint, "exp": exp})))
    };
    let try_with = |a: String| post(&em, "/contoso.com/oauth2/v2.0/token", &[("grant_type", "client_credentials"), ("client_id", app), ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"), ("client_assertion", &a), ("scope", "https://graph.microsoft.com/.default")]);
    assert_eq!(try_with(assertion(json!({"alg": "PS256", "x5t#S256": "registered-S256"}))).0, 200);
    // x5t is base64url of the SHA-1 bytes; the registration may hold them as hex.
    assert_eq!(try_with(assertion(json!({"alg": "RS256", "x5t": "CgsM"}))).1["error_codes"], json!([700027]), "0A0B0C is not 0A0B");
    assert_eq!(try_with(assertion(json!({"alg": "RS256", "x5t": "Cgs"}))).0, 200);
    assert_eq!(try_with(assertion(json!({"alg": "PS256", "x5t#S256": "someone-else"}))).1["error_codes"], json!([700027]));
    // Without rotation a refresh answers no new refresh token and the old one keeps working.
    let cli = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
    let (_, t) = post(&em, "/contoso.com/oauth2/v2.0/token", &[("grant_type", "password"), ("client_id", cli), ("username", em.var("ENTRA_EMULATOR_USERNAME")), ("password", em.var("ENTRA_EMULATOR_PASSWORD")), ("scope", "https://graph.microsoft.com/.default offline_access")]);
    let rt = t["refresh_token"].as_str().unwrap().to_string();
    for _ in 0..2 {
        let (status, r) = post(&em, "/contoso.com/oauth2/v2.0/token", &[("grant_type", "refresh_token"), ("client_id", cli), ("refresh_token", &rt), ("scope", "https://graph.microsoft.com/.default")]);
        assert_eq!((status, r.get("refresh_token")), (200, None), "{r}");
    }
}

#[test]
fn managed_identity_endpoints_imds_and_app_service() {
    let sb = Sandbox::new();
    let em = Emulator::start(&sb, &["--managed-identity"]);
    let path = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net";
    assert_eq!(get(&em, path, &[]).0, 400, "IMDS wants Metadata: true");
    let (status, t, _) = get(&em, path, &[("Metadata", "true")]);
    assert_eq!(status, 200, "{t}");
    assert!(t["expires_in"].is_string());
    assert_eq!(verify(&em, "contoso.com", t["access_token"].as_str().unwrap())["aud"], "https://vault.azure.net");
    let msi = "/msi/token?api-version=2019-08-01&resource=https%3A%2F%2Fstorage.azure.com";
    assert_eq!(get(&em, msi, &[("X-IDENTITY-HEADER", "wrong")]).0, 401);
    let (status, t, _) = get(&em, msi, &[("X-IDENTITY-HEADER", em.var("IDENTITY_HEADER"))]);
    assert_eq!(status, 200, "{t}");
    assert!(t["expires_on"].is_string());
    assert_eq!(em.var("IDENTITY_ENDPOINT"), format!("{}/msi/token", em.url()));
    // Our own managed-identity flow, App Service style, through the exports.
    let mut c = em.cmd(&sb, &["get-token", "-r", "storage"]);
    c.env("ENTRA_TOKEN_CONFIG", sb.path("none.toml")).env_remove("AZURE_CLIENT_SECRET").env_remove("AZURE_CLIENT_ID");
    let token = ok_stdout(&run(c));
    assert_eq!(jwt_claims(token.trim()).unwrap()["appid"], "00000000-e4a1-4e10-8000-00000000e0a1");
    // A user-assigned identity named by client_id answers as itself.
    let (_, t, _) = get(&em, &format!("{path}&client_id=22222222-0000-4000-8000-000000000002"), &[("Metadata", "true")]);
    assert_eq!(jwt_claims(t["access_token"].as_str().unwrap()).unwrap()["appid"], "22222222-0000-4000-8000-000000000002");
}

#[test]
fn background_mode_writes_the_pid_file_and_keeps_serving() {
    let sb = Sandbox::new();
    let pid_file = sb.path("emulator.pid");
    let out = run({
        let mut c = sb.cmd();
        c.args(["emulator", "--background", "--http", "--tenant", "fabrikam.test", "--state-dir"]).arg(sb.path("emulator")).arg("--pid-file").arg(&pid_file);
        c
    });
    let printed = ok_stdout(&out);
    assert!(printed.contains("export AZURE_TENANT_ID=fabrikam.test\n"), "--tenant reaches the background emulator: {printed}");
    assert!(printed.lines().all(|l| l.starts_with("export ") || l.is_empty()) && printed.starts_with("export AZURE_AUTHORITY_HOST=http://127.0.0.1:"), "{printed}");
    let pid: u32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    let url = printed.lines().next().unwrap().split_once('=').unwrap().1.to_string();
    let agent: ureq::Agent = ureq::Agent::config_builder().proxy(None).http_status_as_error(false).build().into();
    let status = agent.get(&format!("{url}/fabrikam.test/v2.0/.well-known/openid-configuration")).call().unwrap().status().as_u16();
    let stop = if cfg!(windows) { std::process::Command::new("taskkill").args(["/F", "/PID", &pid.to_string()]).output() } else { std::process::Command::new("kill").arg(pid.to_string()).output() };
    assert!(stop.is_ok_and(|o| o.status.success()), "the pid file names no process we could stop");
    assert_eq!(status, 200);
}

/// PowerShell users (`--shell powershell`) get `$env:` lines, passed through the
/// background parent as printed; either shell's file is beside the state for another one.
#[test]
fn powershell_gets_env_lines_and_an_exports_ps1() {
    let sb = Sandbox::new();
    let pid_file = sb.path("emulator.pid");
    let out = run({
        let mut c = sb.cmd();
        c.args(["emulator", "--background", "--http", "--shell", "powershell", "--tenant", "fabrikam.test", "--state-dir"]).arg(sb.path("emulator")).arg("--pid-file").arg(&pid_file);
        c
    });
    let printed = ok_stdout(&out);
    let pid: u32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    let stop = if cfg!(windows) { std::process::Command::new("taskkill").args(["/F", "/PID", &pid.to_string()]).output() } else { std::process::Command::new("kill").arg(pid.to_string()).output() };
    assert!(stop.is_ok_and(|o| o.status.success()), "the pid file names no process we could stop");
    assert!(printed.starts_with("$env:AZURE_AUTHORITY_HOST = 'http://127.0.0.1:"), "{printed}");
    assert!(printed.contains("$env:AZURE_TENANT_ID = 'fabrikam.test'\n"), "{printed}");
    assert!(printed.lines().all(|l| l.is_empty() || (l.starts_with("$env:") && l.ends_with('\''))), "{printed}");
    let ps1 = std::fs::read_to_string(sb.path("emulator").join("exports.ps1")).unwrap();
    let sh = std::fs::read_to_string(sb.path("emulator").join("exports.sh")).unwrap();
    assert!(ps1.contains("$env:AZURE_TENANT_ID = 'fabrikam.test'\n") && sh.contains("export AZURE_TENANT_ID=fabrikam.test\n"), "{ps1}\n{sh}");
    assert_eq!(ps1.lines().count(), sh.lines().count(), "the same variables in both files");
}

#[test]
fn demo_walks_the_quick_start_in_a_throwaway_home() {
    let sb = Sandbox::new();
    let mut c = sb.cmd();
    c.arg("demo");
    let out = ok_stdout(&run(c));
    for step in ["$ entra-token login", "$ entra-token get-token -r graph", "the same token, in", "entra-token kubectl", "\"kind\":\"ExecCredential\"", "entra-token git get", "username=entra-token"] {
        assert!(out.contains(step), "no `{step}` in:\n{out}");
    }
    let token = out.lines().map(str::trim).find(|l| l.starts_with("eyJ") && !l.contains('…')).expect("the demo prints a token");
    let claims = jwt_claims(token).unwrap();
    assert_eq!((claims["emulator"].as_bool(), claims["upn"].as_str()), (Some(true), Some("alice@contoso.com")));
    // Nothing was left in the sandbox's HOME, config or cache.
    assert!(!sb.path("config.toml").exists() && !sb.path("cache").exists());
}

#[test]
fn ssh_certificates_are_signed_by_the_ca_it_writes_for_sshd() {
    if !std::process::Command::new("ssh-keygen").arg("-?").output().is_ok_and(|o| !o.stderr.is_empty()) {
        return crate::support::skip::missing_tool("ssh-keygen", "the emulator's SSH certificates");
    }
    let sb = Sandbox::new();
    let em = Emulator::start(&sb, &[]);
    let cmd = |args: &[&str]| em.cmd(&sb, args);
    assert!(run(cmd(&["login"])).status.success());
    assert_eq!(ok_stdout(&run(cmd(&["ssh", "cert"]))).trim(), "alice@contoso.com");
    let keygen = |args: &[&str], file: std::path::PathBuf| ok_stdout(&run({
        let mut c = std::process::Command::new("ssh-keygen");
        c.args(args).arg(file);
        c
    }));
    let cert = keygen(&["-L", "-f"], sb.path("home/.ssh/entra-token/default-cert.pub"));
    let ca = keygen(&["-l", "-f"], sb.path("emulator/ssh-user-ca.pub"));
    let ca_fingerprint = ca.split_whitespace().nth(1).unwrap();
    assert!(cert.contains(&format!("Signing CA: ED25519 {ca_fingerprint}")), "{cert}\n{ca}");
    assert!(cert.contains("user certificate") && cert.contains("alice@contoso.com"), "{cert}");
}

#[test]
fn browser_sign_in_waits_for_the_click_then_redirects_to_our_listener() {
    if std::process::Command::new("curl").arg("--version").output().is_err() {
        return crate::support::skip::missing_tool("curl", "the browser stand-in");
    }
    let sb = Sandbox::new();
    let em = Emulator::start(&sb, &["--approve", "click"]);
    // A browser and a person: open the authorize URL (curl trusts the emulator through
    // SSL_CERT_FILE), see the emulator's page, click Approve as alice (the page's form posts
    // the request back), and follow the redirect to entra-token's loopback listener.
    let browser = sb.write_executable(
        "browser.sh",
        "#!/bin/sh\nset -e\ncurl -sS --max-time 20 \"$1\" > \"$HOME/page.html\"\nexec curl -sS -L --max-time 20 -o /dev/null --data \"${1#*\\?}&approve=yes&user=alice%40contoso.com\" \"${1%%\\?*}\"\n",
    );
    let cmd = |args: &[&str]| {
        let mut c = sb.cmd();
        em.apply(&mut c);
        c.args(args).env("BROWSER", &browser).env("DISPLAY", ":0");
        c
    };
    ok_stdout(&run(cmd(&["profile", "add", "web", "--flow", "interactive", "--tenant", "contoso.com", "--storage", "file"])));
    let out = run(cmd(&["login", "-p", "web", "-r", "graph"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let page = std::fs::read_to_string(sb.path("home/page.html")).unwrap();
    assert!(page.contains("Approve") && page.contains("alice@contoso.com"), "{page}");
    let token = ok_stdout(&run(cmd(&["get-token", "-p", "web", "-r", "graph"]))).trim().to_string();
    assert_eq!(verify(&em, "contoso.com", &token)["upn"], "alice@contoso.com");
}

/// The README's first command needs no network: the demo runs in a network namespace
/// whose only interface is loopback (where the machine lets us make one).
#[test]
fn demo_runs_with_no_network_at_all() {
    let works = |args: &[&str]| std::process::Command::new("unshare").args(args).output().is_ok_and(|o| o.status.success());
    if !works(&["-n", "sh", "-c", "ip link set lo up"]) {
        return crate::support::skip::not_here("no network namespace here (unshare -n and ip need root or CAP_SYS_ADMIN)");
    }
    let sb = Sandbox::new();
    let mut c = sb.tool("unshare");
    c.args(["-n", "sh", "-c", "ip link set lo up && exec \"$0\" demo", env!("CARGO_BIN_EXE_entra-token")]);
    let out = ok_stdout(&run(c));
    assert!(out.contains("the same token, in") && out.contains("username=entra-token"), "{out}");
}

#[test]
fn proof_of_possession_tokens_are_bound_to_the_client_s_key() {
    // The client's PoP key is made by ssh-keygen (Wine has no Windows OpenSSH client).
    if !std::process::Command::new("ssh-keygen").arg("-?").output().is_ok_and(|o| !o.stderr.is_empty()) {
        return crate::support::skip::missing_tool("ssh-keygen", "the PoP client key");
    }
    let sb = Sandbox::new();
    let em = Emulator::start(&sb, &[]);
    let cmd = |args: &[&str]| em.cmd(&sb, args);
    assert!(run(cmd(&["login"])).status.success());
    let out = run(cmd(&["get-token", "-r", "https://graph.microsoft.com", "--pop-enabled", "--pop-url", "https://graph.microsoft.com/v1.0/me", "-o", "json"]));
    let answer: Value = serde_json::from_str(&ok_stdout(&out)).unwrap();
    assert_eq!(answer["token_type"], "pop", "{answer}");
    // The SHR carries the access token (`at`) and the public key (`cnf.jwk`): the token the
    // emulator signed is bound to that key's thumbprint.
    let shr = jwt_claims(answer["access_token"].as_str().unwrap()).expect("the SHR is a JWS");
    let at = verify(&em, "contoso.com", shr["at"].as_str().unwrap());
    let jwk = &shr["cnf"]["jwk"];
    let canonical = format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, jwk["e"].as_str().unwrap(), jwk["n"].as_str().unwrap());
    use base64::Engine;
    let thumbprint = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()));
    assert_eq!(at["cnf"]["kid"], thumbprint.as_str(), "{at}");
    let (status, bad) = post(&em, "/contoso.com/oauth2/v2.0/token", &[("grant_type", "client_credentials"), ("client_id", em.var("AZURE_CLIENT_ID")), ("client_secret", em.var("AZURE_CLIENT_SECRET")), ("scope", "https://graph.microsoft.com/.default"), ("token_type", "pop"), ("req_cnf", "not-json")]);
    assert_eq!((status, bad["error_codes"].clone()), (400, json!([9002313])));
}
