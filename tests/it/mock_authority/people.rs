//! The mock authority's person grants (device code, password, refresh with rotation,
//! authorization code with PKCE), driven with plain ureq as Entra would be.

use super::*;

fn start_device_flow(m: &MockAuthority) -> Value {
    let r = post(
        &format!("{}/organizations/oauth2/v2.0/devicecode", m.url()),
        &[
            ("client_id", APP),
            (
                "scope",
                "https://management.azure.com//.default openid profile offline_access",
            ),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn poll(m: &MockAuthority, device_code: &str) -> Resp {
    post(
        &v2_token(m, "organizations"),
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", APP),
            ("device_code", device_code),
        ],
    )
}

#[test]
fn device_code_is_pending_then_approved() {
    let m = user_authority();
    m.set_device_interval(3);
    let dc = start_device_flow(&m);
    assert_eq!(dc["interval"], "3");
    assert_eq!(dc["expires_in"], "900");
    assert!(
        dc["message"]
            .as_str()
            .unwrap()
            .contains(dc["user_code"].as_str().unwrap())
    );
    assert!(
        dc["verification_uri"]
            .as_str()
            .unwrap()
            .starts_with(&m.url())
    );
    let code = dc["device_code"].as_str().unwrap();

    m.send_slow_down_once();
    let slow = poll(&m, code);
    assert_eq!(
        (slow.status, slow.json()["error"].clone()),
        (400, "slow_down".into())
    );
    for _ in 0..2 {
        let p = poll(&m, code);
        assert_eq!(p.json()["error"], "authorization_pending");
        assert_eq!(p.aadsts(), 70016);
    }
    let ok = poll(&m, code);
    assert_eq!(ok.status, 200, "{}", ok.body);
    let j = ok.json();
    assert!(j["refresh_token"].is_string() && j["id_token"].is_string());
    let id = jwt_claims(j["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(id["preferred_username"], "alice@contoso.test");
    assert_eq!(id["tid"], support::HOME_TENANT);
    let info = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(j["client_info"].as_str().unwrap())
        .unwrap();
    let info: Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(info["uid"], support::user_oid("alice@contoso.test"));
    assert_eq!(info["utid"], support::HOME_TENANT);
    assert_eq!(
        poll(&m, code).json()["error"],
        "invalid_grant",
        "a device code is redeemed once"
    );
    assert_eq!(
        m.grant_count("urn:ietf:params:oauth:grant-type:device_code"),
        5
    );
    assert_eq!(m.token_requests(), 5);
}

#[test]
fn device_code_declined_expired_and_unknown() {
    let m = user_authority();
    let code = start_device_flow(&m)["device_code"]
        .as_str()
        .unwrap()
        .to_string();
    m.decline_device_codes();
    assert_eq!(poll(&m, &code).json()["error"], "authorization_declined");
    m.set_device_code_expiry(-1);
    let stale = start_device_flow(&m)["device_code"]
        .as_str()
        .unwrap()
        .to_string();
    m.approve_device_codes(0);
    assert_eq!(poll(&m, &stale).json()["error"], "expired_token");
    assert_eq!(
        poll(&m, &code).status,
        200,
        "approved at once after approve_device_codes(0)"
    );
    assert_eq!(poll(&m, "made-up").json()["error"], "bad_verification_code");
}

#[test]
fn ropc_signs_in_or_demands_mfa() {
    let m = user_authority();
    let ok = ropc(
        &m,
        CONTOSO,
        "pa55word",
        "https://graph.microsoft.com/User.Read openid profile offline_access",
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    let j = ok.json();
    assert!(
        j["refresh_token"].is_string() && j["id_token"].is_string() && j["client_info"].is_string()
    );
    let at = jwt_claims(j["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(at["aud"], "https://graph.microsoft.com");
    assert_eq!(at["scp"], "User.Read");
    assert_eq!(at["upn"], "alice@contoso.test");
    assert_eq!(at["oid"], support::user_oid("alice@contoso.test"));

    let no_offline = ropc(
        &m,
        "organizations",
        "pa55word",
        "https://vault.azure.net/.default",
    );
    assert_eq!(no_offline.status, 200, "{}", no_offline.body);
    assert!(
        no_offline.json().get("refresh_token").is_none(),
        "no offline_access, no refresh token"
    );

    let wrong = ropc(&m, CONTOSO, "nope", ARM);
    assert_eq!(
        (wrong.json()["error"].clone(), wrong.aadsts()),
        ("invalid_grant".into(), 50126)
    );
    assert_eq!(ropc(&m, "common", "pa55word", ARM).aadsts(), 9001023);
    let two = ropc(
        &m,
        CONTOSO,
        "pa55word",
        "https://graph.microsoft.com/User.Read https://vault.azure.net/.default",
    );
    assert_eq!(two.aadsts(), 700022);

    m.require_mfa_for_password(true);
    let mfa = ropc(&m, CONTOSO, "pa55word", ARM);
    assert_eq!(mfa.status, 400);
    assert_eq!(mfa.aadsts(), 50076);
    assert_eq!(mfa.json()["suberror"], "basic_action");
    assert_eq!(m.grant_count("password"), 6);
}

fn refresh(m: &MockAuthority, rt: &str, scope: &str) -> Resp {
    post(
        &v2_token(m, "organizations"),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", APP),
            ("refresh_token", rt),
            ("scope", scope),
        ],
    )
}

#[test]
fn refresh_tokens_rotate_and_die() {
    let m = user_authority();
    let first = ropc(
        &m,
        CONTOSO,
        "pa55word",
        &format!("{ARM} openid offline_access"),
    );
    let rt1 = first.json()["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(m.live_refresh_tokens(), vec![rt1.clone()]);

    // One refresh token serves any resource.
    let second = refresh(
        &m,
        &rt1,
        "https://vault.azure.net/.default openid offline_access",
    );
    assert_eq!(second.status, 200, "{}", second.body);
    let rt2 = second.json()["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt2);
    assert_eq!(
        jwt_claims(second.json()["access_token"].as_str().unwrap()).unwrap()["aud"],
        "https://vault.azure.net"
    );
    assert_eq!(m.live_refresh_tokens(), vec![rt2.clone()]);
    let old = refresh(&m, &rt1, ARM);
    assert_eq!(
        (old.json()["error"].clone(), old.aadsts()),
        ("invalid_grant".into(), 70008)
    );

    m.set_rotate_refresh_tokens(false);
    m.set_refresh_in(Some(1800));
    let kept = refresh(&m, &rt2, ARM);
    assert_eq!(kept.status, 200);
    assert!(kept.json().get("refresh_token").is_none());
    assert_eq!(kept.json()["refresh_in"], 1800);
    assert_eq!(
        refresh(&m, &rt2, ARM).status,
        200,
        "without rotation the old token lives on"
    );

    m.kill_refresh_tokens(700082);
    assert_eq!(refresh(&m, &rt2, ARM).aadsts(), 700082);
    assert_eq!(refresh(&m, &rt1, ARM).aadsts(), 700082);
    assert!(m.live_refresh_tokens().is_empty());
    assert_eq!(m.grant_count("refresh_token"), 6);
}

#[test]
fn authorization_code_with_pkce() {
    let m = user_authority();
    let verifier = "x".repeat(43) + "-pkce-verifier";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref());
    let redirect = "http://localhost:40123";
    let scope = format!("{ARM} openid profile offline_access");
    let authorize = |challenge: Option<&str>, method: &str| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("client_id", APP)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", redirect)
            .append_pair("scope", &scope)
            .append_pair("state", "st8")
            .append_pair("code_challenge_method", method);
        if let Some(c) = challenge {
            q.append_pair("code_challenge", c);
        }
        let r = get(&format!(
            "{}/organizations/oauth2/v2.0/authorize?{}",
            m.url(),
            q.finish()
        ));
        assert_eq!(r.status, 302, "{}", r.body);
        let location = r.header("location").unwrap().to_string();
        assert!(location.starts_with(&format!("{redirect}?")), "{location}");
        let query = location.split_once('?').unwrap().1;
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect::<Vec<(String, String)>>()
    };
    let param =
        |q: &[(String, String)], k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());

    let no_pkce = authorize(None, "S256");
    assert_eq!(param(&no_pkce, "error").as_deref(), Some("invalid_request"));
    assert_eq!(param(&no_pkce, "state").as_deref(), Some("st8"));
    assert_eq!(
        param(&authorize(Some(&challenge), "plain"), "error").as_deref(),
        Some("invalid_request")
    );

    let q = authorize(Some(&challenge), "S256");
    assert_eq!(param(&q, "state").as_deref(), Some("st8"));
    let code = param(&q, "code").expect("a code");
    let redeem = |verifier: &str, redirect: &str| {
        post(
            &v2_token(&m, "organizations"),
            &[
                ("grant_type", "authorization_code"),
                ("client_id", APP),
                ("code", &code),
                ("redirect_uri", redirect),
                ("code_verifier", verifier),
                ("scope", &scope),
            ],
        )
    };
    assert_eq!(redeem(&("y".repeat(43)), redirect).aadsts(), 50148);
    assert_eq!(redeem(&verifier, "http://localhost:1").aadsts(), 500112);
    let ok = redeem(&verifier, redirect);
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.json()["refresh_token"].is_string());
    assert_eq!(
        redeem(&verifier, redirect).aadsts(),
        54005,
        "a code is redeemed once"
    );
    let authorize_requests = m
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/authorize"))
        .count();
    assert_eq!(authorize_requests, 3);
    assert_eq!(m.requests()[2].query_get("state"), Some("st8"));
}
