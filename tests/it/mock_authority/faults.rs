//! The mock authority's injected faults: Entra errors in order, and transport faults
//! (closed, hung and flooding connections).

use super::*;

#[test]
fn faults_are_consumed_in_order() {
    let m = confidential();
    m.push_fault(Fault::Status {
        status: 500,
        body: "oops".into(),
        retry_after: None,
    });
    m.push_fault(Fault::Status {
        status: 429,
        body: "{\"error\":\"throttled\"}".into(),
        retry_after: Some(60),
    });
    m.push_fault(Fault::Truncated200);
    m.push_fault(Fault::Html200);
    // Faults only hit the token endpoint: discovery passes untouched.
    assert_eq!(
        get(&format!(
            "{}/{CONTOSO}/v2.0/.well-known/openid-configuration",
            m.url()
        ))
        .status,
        200
    );
    let r500 = client_credentials(&m, SECRET);
    assert_eq!((r500.status, r500.body.as_str()), (500, "oops"));
    let r429 = client_credentials(&m, SECRET);
    assert_eq!(r429.status, 429);
    assert_eq!(r429.header("retry-after"), Some("60"));
    let truncated = client_credentials(&m, SECRET);
    assert_eq!(truncated.status, 200);
    assert!(
        truncated
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert!(serde_json::from_str::<Value>(&truncated.body).is_err());
    let html = client_credentials(&m, SECRET);
    assert!(
        html.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(client_credentials(&m, SECRET).status, 200);
    assert_eq!(m.token_requests(), 5);
    assert_eq!(m.grant_count("client_credentials"), 5);
    assert_eq!(m.issued_access_tokens().len(), 1);
    assert_eq!(m.requests().len(), 6, "faulted requests are recorded too");
}

#[test]
fn transport_faults_close_hang_and_flood() {
    let m = confidential();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", APP),
        ("client_secret", SECRET),
        ("scope", ARM),
    ];
    m.push_fault(Fault::CloseConnection);
    assert!(agent().post(v2_token(&m, CONTOSO)).send_form(form).is_err());

    m.push_fault(Fault::Hang);
    let started = Instant::now();
    let quick = agent_with(None, Duration::from_millis(300));
    assert!(quick.post(v2_token(&m, CONTOSO)).send_form(form).is_err());
    assert!(started.elapsed() < Duration::from_secs(5));

    m.push_fault(Fault::Huge200 {
        bytes: 50 * 1024 * 1024,
    });
    let mut r = agent()
        .post(v2_token(&m, CONTOSO))
        .send_form(form)
        .expect("headers arrive");
    assert_eq!(
        r.headers()["content-length"],
        (50 * 1024 * 1024).to_string().as_str()
    );
    assert!(
        r.body_mut()
            .with_config()
            .limit(1024 * 1024)
            .read_to_string()
            .is_err(),
        "more than the limit"
    );
    assert_eq!(client_credentials(&m, SECRET).status, 200);
    assert_eq!(m.token_requests(), 4);
}
