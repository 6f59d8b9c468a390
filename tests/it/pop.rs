//! Proof-of-possession tokens (docs/pop.md): the stand-in authority binds a token to the
//! `req_cnf` key id as Entra does; each answer is a new signed HTTP request (SHR) that a
//! resource server's check accepts (signature with `cnf.jwk`, thumbprint = the token's
//! `cnf.kid`, `ts`, nonce, `m`/`u`/`p`); the cache holds the bound token, never an SHR, and
//! bearer and PoP requests never get each other's entry.

use crate::support::pop::verify_shr;
use crate::support::{CcProfile, MockAuthority, Sandbox, code, run, run_with_stdin, stderr, stdout, wire};
use std::process::Command;

const TENANT: &str = "contoso.test";
const APP: &str = "77777777-7777-4777-8777-777777777777";
const SECRET: &str = "pop~secret";
const GRAPH: &str = "https://graph.microsoft.com";

fn keygen_here() -> bool {
    let here = Command::new("ssh-keygen").arg("-?").output().is_ok();
    if !here {
        crate::support::skip::missing_tool("ssh-keygen", "PoP keys");
    }
    here
}

fn stand() -> (MockAuthority, Sandbox) {
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some(SECRET));
    let sb = Sandbox::new();
    sb.write_config(&CcProfile::new("sp", &mock.url(), TENANT, APP).toml());
    (mock, sb)
}

fn et(sb: &Sandbox, args: &[&str]) -> (i32, String, String) {
    let mut c = sb.cmd();
    c.env("CI_SECRET", SECRET).args(args);
    let out = run(c);
    (code(&out), stdout(&out).trim().to_string(), stderr(&out))
}

const POP_SEND: &[&str] = &["get-token", "-p", "sp", "-r", GRAPH, "--pop-enabled", "--pop-method", "post", "--pop-url", "https://graph.microsoft.com/v1.0/me/sendMail?x=1"];

/// Every file in the cache directory, by name, with its text.
fn cache_files(sb: &Sandbox) -> Vec<(String, String)> {
    let mut out: Vec<_> = std::fs::read_dir(sb.path("cache")).unwrap().flatten().filter(|e| e.path().is_file()).map(|e| (e.file_name().to_string_lossy().into_owned(), String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned())).collect();
    out.sort();
    out
}

#[test]
fn get_token_prints_a_verifiable_shr_over_a_bound_token_that_the_cache_keeps_without_the_shr() {
    if !keygen_here() {
        return;
    }
    let (mock, sb) = stand();
    let (rc, shr, err) = et(&sb, POP_SEND);
    assert_eq!(rc, 0, "{err}");
    let v = verify_shr(&shr).unwrap_or_else(|why| panic!("the SHR fails a resource server's check: {why}\n{shr}"));
    assert_eq!((v.m.as_deref(), v.u.as_deref(), v.p.as_deref()), (Some("POST"), Some("graph.microsoft.com"), Some("/v1.0/me/sendMail")));
    // MSAL .NET's claim set: the URL's query (`?x=1`) and the headers are not signed (docs/pop.md).
    let mut claims: Vec<String> = wire::jwt_claims(&shr).unwrap().as_object().unwrap().keys().cloned().collect();
    claims.sort();
    assert_eq!(claims, ["at", "cnf", "m", "nonce", "p", "ts", "u"]);
    // The grant asked for a pop token bound to that key, as Entra takes it.
    let form = mock.requests().into_iter().rev().find(|r| r.form_get("grant_type").is_some()).unwrap();
    assert_eq!(form.form_get("token_type"), Some("pop"));
    let cnf: serde_json::Value = serde_json::from_slice(&wire::b64url_decode(form.form_get("req_cnf").unwrap()).unwrap()).unwrap();
    assert_eq!(cnf, serde_json::json!({"kid": v.kid, "xms_ksl": "sw"}));

    // The cache: the bound token under its key id, the key (0600), and no SHR anywhere.
    let files = cache_files(&sb);
    let sig = shr.rsplit('.').next().unwrap();
    assert!(files.iter().all(|(_, t)| !t.contains(sig) && !t.contains(&shr)), "an SHR was stored: {files:?}");
    let entries: Vec<_> = files.iter().filter(|(n, _)| n.starts_with("at-") && n.ends_with(".json")).collect();
    assert_eq!(entries.len(), 1, "{files:?}");
    let entry: serde_json::Value = serde_json::from_str(&entries[0].1).unwrap();
    assert_eq!(entry["access_token"], v.at.as_str());
    assert_eq!((entry["bound"]["token_type"].as_str(), entry["bound"]["key_id"].as_str()), (Some("pop"), Some(v.kid.as_str())));
    let key = files.iter().find(|(n, _)| n.starts_with("popkey-")).expect("the PoP key is kept in the cache directory");
    assert!(key.1.contains("\"pkcs8\"") && !key.1.contains(&v.at), "{}", key.0);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(sb.path("cache").join(&key.0)).unwrap().permissions().mode() & 0o777, 0o600);
    }

    // Another process: the cached token, the same key, a new SHR (new nonce), no network.
    let (rc, shr2, err) = et(&sb, POP_SEND);
    assert_eq!(rc, 0, "{err}");
    let v2 = verify_shr(&shr2).unwrap();
    assert_eq!((v2.at.as_str(), v2.kid.as_str()), (v.at.as_str(), v.kid.as_str()));
    assert_ne!(v2.nonce, v.nonce);
    assert_ne!(shr2, shr);
    assert_eq!(mock.token_requests(), 1);

    // A bearer request for the same profile and resource never gets the pop entry…
    let (rc, bearer, err) = et(&sb, &["get-token", "-p", "sp", "-r", GRAPH]);
    assert_eq!(rc, 0, "{err}");
    assert_ne!(bearer, v.at);
    assert!(wire::jwt_claims(&bearer).unwrap().get("cnf").is_none(), "a bearer request got a bound token");
    assert_eq!(mock.token_requests(), 2);
    // …and a PoP request never gets the bearer entry: both stay cached side by side.
    let (rc, shr3, _) = et(&sb, POP_SEND);
    assert_eq!((rc, verify_shr(&shr3).unwrap().at), (0, v.at.clone()));
    assert_eq!(et(&sb, &["get-token", "-p", "sp", "-r", GRAPH]).1, bearer);
    assert_eq!(mock.token_requests(), 2);
    // kubelogin's --pop-claims sign exactly what they say; -o header uses the PoP scheme.
    let (rc, header, err) = et(&sb, &["get-token", "-p", "sp", "-r", GRAPH, "--pop-enabled", "--pop-claims", "u=graph.microsoft.com", "-o", "header"]);
    assert_eq!(rc, 0, "{err}");
    let v4 = verify_shr(header.strip_prefix("Authorization: PoP ").unwrap_or_else(|| panic!("{header}"))).unwrap();
    assert_eq!((v4.at.as_str(), v4.m.as_deref(), v4.u.as_deref(), v4.p.as_deref()), (v.at.as_str(), None, Some("graph.microsoft.com"), None));
    assert_eq!(mock.token_requests(), 2);
    // The retry after a server's nonce challenge: that nonce is signed, over the cached token.
    let (rc, shr5, err) = et(&sb, &[POP_SEND, &["--pop-nonce", "srv-nonce-0123456789"]].concat());
    assert_eq!(rc, 0, "{err}");
    let v5 = verify_shr(&shr5).unwrap();
    assert_eq!((v5.nonce.as_str(), v5.at.as_str()), ("srv-nonce-0123456789", v.at.as_str()));
    assert_eq!(mock.token_requests(), 2);
}

#[test]
fn the_native_protocol_answers_a_pop_request_with_an_shr_and_refuses_half_of_one() {
    if !keygen_here() {
        return;
    }
    let (_mock, sb) = stand();
    let mut c = sb.cmd();
    c.env("CI_SECRET", SECRET);
    let out = run_with_stdin(c, r#"{"v":2,"profile":"sp","resource":"https://graph.microsoft.com","token_type":"pop","pop_url":"https://graph.microsoft.com/v1.0/me"}"#);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let a: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(a["token_type"], "pop");
    let v = verify_shr(a["access_token"].as_str().unwrap()).unwrap();
    assert_eq!((v.m.as_deref(), v.u.as_deref(), v.p.as_deref()), (Some("GET"), Some("graph.microsoft.com"), Some("/v1.0/me")));
    let mut c = sb.cmd();
    c.env("CI_SECRET", SECRET);
    let out = run_with_stdin(c, r#"{"v":2,"profile":"sp","resource":"https://graph.microsoft.com","token_type":"pop","pop_url":"https://graph.microsoft.com/v1.0/me","pop_nonce":"server-nonce-42abc"}"#);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let a: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let v2 = verify_shr(a["access_token"].as_str().unwrap()).unwrap();
    assert_eq!((v2.nonce.as_str(), v2.at.as_str()), ("server-nonce-42abc", v.at.as_str()));
    assert!(a["expires_in"].as_i64().unwrap() <= 300, "an SHR is offered for five minutes at most: {a}");
    for (bad, says) in [
        (r#"{"v":2,"profile":"sp","token_type":"pop","pop_url":"https://h/","pop_nonce":"a\"b"}"#, "server nonce"),
        (r#"{"v":2,"profile":"sp","token_type":"pop"}"#, "needs pop_url"),
        (r#"{"v":2,"profile":"sp","pop_url":"https://h/"}"#, "go with"),
        (r#"{"v":2,"profile":"sp","token_type":"ssh-cert"}"#, "neither bearer nor pop"),
        (r#"{"v":2,"profile":"sp","token_type":"pop","pop_url":"/relative"}"#, "absolute"),
        (r#"{"profile":"sp","token_type":"pop","pop_url":"https://graph.microsoft.com/v1.0/me"}"#, "is a protocol v2 field"),
    ] {
        let mut c = sb.cmd();
        c.env("CI_SECRET", SECRET);
        let out = run_with_stdin(c, bad);
        assert_eq!(code(&out), 1, "{bad}");
        assert!(stdout(&out).contains(says), "{bad}: {}", stdout(&out));
    }
}

#[test]
fn get_token_refuses_pop_flags_that_bind_nothing() {
    let (_mock, sb) = stand();
    let (rc, out, err) = et(&sb, &["get-token", "-p", "sp", "--pop-enabled"]);
    assert_eq!((rc, out.as_str()), (1, ""));
    assert!(err.contains("--pop-url") && err.contains("--pop-claims"), "{err}");
    let (rc, _, err) = et(&sb, &["get-token", "-p", "sp", "--pop-enabled", "--pop-claims", "m=GET"]);
    assert_eq!(rc, 1);
    assert!(err.contains("u=<the cluster's ARM id>"), "{err}");
    let (rc, _, err) = et(&sb, &["get-token", "-p", "sp", "--pop-url", "https://h/"]);
    assert_eq!(rc, 1);
    assert!(err.contains("go with --pop-enabled"), "{err}");
}

#[test]
fn a_managed_identity_profile_is_refused_a_pop_token_in_one_line_before_any_network() {
    if !keygen_here() {
        return;
    }
    let sb = Sandbox::new();
    sb.write_config("[profiles.mi]\nflow = \"managed-identity\"\n");
    let (rc, out, err) = et(&sb, &["get-token", "-p", "mi", "-r", GRAPH, "--pop-enabled", "--pop-url", "https://graph.microsoft.com/v1.0/me"]);
    assert_eq!((rc, out.as_str()), (1, ""), "{err}");
    assert!(err.contains("profile 'mi' uses a managed identity, which cannot get a PoP token"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn logout_removes_the_profiles_pop_key_and_bound_tokens_so_the_next_call_binds_a_new_key() {
    if !keygen_here() {
        return;
    }
    let (mock, sb) = stand();
    let (rc, shr, err) = et(&sb, POP_SEND);
    assert_eq!(rc, 0, "{err}");
    let first = verify_shr(&shr).unwrap();
    let (rc, _, err) = et(&sb, &["logout", "-p", "sp"]);
    assert_eq!(rc, 0, "{err}");
    assert!(err.contains("1 access token(s) and 1 PoP key(s)"), "{err}");
    // (Lock sidecars stay, as for every entry; they hold nothing.)
    assert!(cache_files(&sb).iter().filter(|(n, _)| !n.ends_with(".lock")).all(|(n, _)| !n.starts_with("popkey-") && !n.starts_with("at-")), "{:?}", cache_files(&sb));
    let (rc, shr, err) = et(&sb, POP_SEND);
    assert_eq!(rc, 0, "{err}");
    let second = verify_shr(&shr).unwrap();
    assert_ne!((second.kid, second.at), (first.kid, first.at));
    assert_eq!(mock.token_requests(), 2);
}
