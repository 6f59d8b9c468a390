//! The `protocol/` spec cannot drift from the code: every example request and answer is
//! validated against the JSON Schemas, then the request is run through the binary against
//! the mock authority and the real answer must validate too and match the example's fixed
//! values (token values, times and ids are illustrative and compared by type only).


use serde_json::Value;
use std::path::{Path, PathBuf};
use crate::support::{MockAuthority, Sandbox, run_with_stdin};

fn protocol_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol")
}

fn schema(name: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(protocol_dir().join(name)).unwrap();
    let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    jsonschema::validator_for(&value).unwrap_or_else(|e| panic!("{name} is not a valid schema: {e}"))
}

fn assert_valid(v: &jsonschema::Validator, value: &Value, what: &str) {
    let errors: Vec<String> = v.iter_errors(value).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{what} does not match its schema: {errors:?}\n{value:#}");
}

/// Fields whose values are fixed by the request and setup, not by the token issued.
const FIXED: &[&str] = &["v", "token_type", "profile", "client_id", "scopes", "resource", "from_cache", "account"];
const FIXED_ERROR: &[&str] = &["code", "exit_code", "error", "aadsts"];

fn same_type(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b) || (a.is_number() && b.is_number())
}

#[test]
fn schemas_accept_the_examples_and_reject_wrong_shapes() {
    let (req, ans, err) = (schema("request.schema.json"), schema("answer.schema.json"), schema("error.schema.json"));
    let mut n = 0;
    for (name, ex) in examples() {
        // An example of a request the binary refuses says so; the schema must refuse it too.
        if ex["request_schema_valid"] == false {
            assert!(!req.is_valid(&ex["request"]), "{name}: the request schema accepts a request the binary refuses");
        } else {
            assert_valid(&req, &ex["request"], &format!("{name} request"));
        }
        let expected = if ex["exit_code"] == 0 { &ans } else { &err };
        assert_valid(expected, &ex["response"], &format!("{name} response"));
        n += 1;
    }
    assert!(n >= 10, "examples found: {n}");
    // The schemas have teeth.
    assert!(!req.is_valid(&serde_json::json!({"resource":"a","scopes":["b"]})));
    assert!(!req.is_valid(&serde_json::json!({"v":"1"})));
    assert!(!req.is_valid(&serde_json::json!({"min_validity":-5})));
    assert!(!req.is_valid(&serde_json::json!({"resource":"graph","profil":"ci"})));
    assert!(req.is_valid(&serde_json::json!({"resource":"graph","x-trace":{"id":1}})));
    assert!(!ans.is_valid(&serde_json::json!({"v":1,"access_token":"a"})));
    assert!(!err.is_valid(&serde_json::json!({"error":{"code":"nope","message":"m","exit_code":1}})));
}

fn examples() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(protocol_dir().join("examples")).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect()
}

#[test]
fn every_example_runs_through_the_binary() {
    let (ans_schema, err_schema) = (schema("answer.schema.json"), schema("error.schema.json"));
    for (name, ex) in examples() {
        // PoP keys are made with ssh-keygen: Windows has it as its OpenSSH client feature,
        // which Wine lacks. Said (not passed in silence) where it cannot run.
        if ex["request"]["token_type"] == "pop" && std::process::Command::new("ssh-keygen").arg("-?").output().is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
            crate::support::skip::not_here(&format!("{name}: no ssh-keygen here (under Wine: Windows' OpenSSH client feature is not installable)"));
            continue;
        }
        let mock = MockAuthority::start();
        for t in ex["mock"]["tenants"].as_array().unwrap() {
            mock.add_tenant(t.as_str().unwrap());
        }
        for app in ex["mock"]["apps"].as_array().unwrap() {
            mock.add_app(app["client_id"].as_str().unwrap(), app["secret"].as_str());
        }
        let sb = Sandbox::new();
        sb.write_config(&ex["config"].as_str().unwrap().replace("{authority}", &mock.url()));
        let request = ex["request"].to_string();
        let mut out = None;
        for _ in 0..ex["calls"].as_u64().unwrap_or(1) {
            let mut cmd = sb.cmd();
            for (k, v) in ex["env"].as_object().unwrap() {
                cmd.env(k, v.as_str().unwrap());
            }
            out = Some(run_with_stdin(cmd, &request));
        }
        let out = out.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(ex["exit_code"].as_i64().unwrap() as i32), "{name}: {stderr}");
        let got: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{name}: stdout not JSON: {e}"));
        let want = &ex["response"];
        if ex["exit_code"] == 0 {
            assert_valid(&ans_schema, &got, &format!("{name}: real answer"));
            compare(&name, want, &got, FIXED);
            let mut token = got["access_token"].as_str().unwrap().to_string();
            if got["token_type"] == "pop" {
                // A signed request over the token: a resource server's check, then the token inside.
                token = crate::support::pop::verify_shr(&token).unwrap_or_else(|why| panic!("{name}: {why}")).at;
            }
            assert!(mock.issued_access_tokens().contains(&token), "{name}: a token the authority issued");
            // Nothing on stderr on success but, once per cache directory, the notice that no
            // OS secret store answers here (a PoP key then goes to a 0600 file).
            let noise: Vec<&str> = stderr.lines().filter(|l| !l.contains("no OS secret store is usable here")).collect();
            assert!(noise.is_empty() && stderr.lines().count() <= 1, "{name}: nothing on stderr on success: {stderr}");
        } else {
            assert_valid(&err_schema, &got, &format!("{name}: real error"));
            compare(&name, &want["error"], &got["error"], FIXED_ERROR);
            let msg = got["error"]["message"].as_str().unwrap();
            let want_msg = want["error"]["message"].as_str().unwrap();
            // Messages match up to the volatile correlation id.
            let stem = want_msg.split(" (correlation id").next().unwrap();
            assert!(msg.starts_with(stem), "{name}: message {msg:?} should start with {stem:?}");
            assert_eq!(stderr.lines().count(), 1, "{name}: one stderr line: {stderr}");
        }
    }
}

fn compare(name: &str, want: &Value, got: &Value, fixed: &[&str]) {
    let (Value::Object(w), Value::Object(g)) = (want, got) else { panic!("{name}: not objects") };
    for (k, wv) in w {
        let gv = g.get(k).unwrap_or_else(|| panic!("{name}: answer lacks `{k}`: {got}"));
        if fixed.contains(&k.as_str()) {
            assert_eq!(gv, wv, "{name}: `{k}`");
        } else if k == "hint" {
            // Hints may grow (e.g. a longer alias list) but keep the example's advice.
            let (g, w) = (gv.as_str().unwrap_or(""), wv.as_str().unwrap_or(""));
            assert!(g.starts_with(w.split(": ").next().unwrap_or(w)), "{name}: hint {g:?} should start like {w:?}");
        } else {
            assert!(same_type(gv, wv), "{name}: `{k}` has another type: {gv} vs {wv}");
        }
    }
    for k in g.keys() {
        assert!(w.contains_key(k), "{name}: the answer has `{k}`, which the example does not show; add it to the example");
    }
}
