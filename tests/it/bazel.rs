//! Bazel credential helper, byte for byte as the credential-helper spec and Bazel's
//! parser expect: `entra-token-bazel get` (the link `--credential_helper` points at) and
//! `entra-token bazel get`, against the mock authority. No Bazel that speaks credential
//! helpers can be installed here (Debian ships 4.2, npm's @bazel/bazel is 2.1, bazelisk
//! downloads Bazel at run time), so the contract is checked at the process boundary.


use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use crate::support::{CcProfile, MockAuthority, Sandbox, jwt_claims, run_with_stdin, text};

const TENANT: &str = "contoso.test";
const APP: &str = "22222222-2222-2222-2222-222222222222";
const SECRET: &str = "s3cret~value";
const CACHE_URL: &str = "https://bazel-cache.contoso.test/";

/// A sandbox whose profile `build` is `mock`'s app (secret in APP_SECRET) claiming the cache.
fn configured(mock: &MockAuthority) -> Sandbox {
    with_profile(mock, &format!("resource = \"api://bazel-cache\"\nurls = [\"{CACHE_URL}\"]\n"))
}

/// A sandbox whose profile `build` is `mock`'s app (secret in APP_SECRET), plus `extra` TOML.
fn with_profile(mock: &MockAuthority, extra: &str) -> Sandbox {
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some(SECRET));
    let sb = Sandbox::new();
    sb.write_config(&CcProfile::new("build", &mock.url(), TENANT, APP).secret_env("APP_SECRET").with(extra).toml());
    sb
}

/// `program` with exactly the sandbox's (scrubbed) environment and the profile's secret.
fn sandboxed(sb: &Sandbox, program: &Path) -> Command {
    let mut cmd = sb.tool(program);
    cmd.env("APP_SECRET", SECRET);
    cmd
}

/// Bazel's invocation: `<helper> get`, nothing else on the command line, request on stdin.
fn bazel_get(sb: &Sandbox, program: &Path, prefix: &[&str], request: &str) -> Output {
    let mut cmd = sandboxed(sb, program);
    cmd.args(prefix).arg("get");
    run_with_stdin(cmd, request)
}

#[test]
fn claimed_uri_gets_a_bearer_header_with_an_early_whole_second_expiry() {
    let mock = MockAuthority::start();
    let sb = configured(&mock);
    let link = sb.link("entra-token-bazel");
    let out = bazel_get(&sb, &link, &[], r#"{"uri":"https://bazel-cache.contoso.test/ac/0123abcd","future_field":1}"#);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = mock.issued_access_tokens().pop().unwrap();
    let exp = jwt_claims(&token).unwrap()["exp"].as_i64().unwrap();
    // Reported five minutes early (the token is fresh), RFC 3339, UTC, whole seconds.
    let expires = time::OffsetDateTime::from_unix_timestamp(exp - 300).unwrap().format(&time::format_description::well_known::Rfc3339).unwrap();
    assert_eq!(text(&out.stdout), format!("{{\"headers\":{{\"Authorization\":[\"Bearer {token}\"]}},\"expires\":\"{expires}\"}}\n"));
    // Bazel parses `yyyy-MM-dd'T'HH:mm:ssXXX`: exactly 20 characters ending in Z.
    assert!(expires.len() == 20 && expires.ends_with('Z'), "{expires}");
    assert_eq!(jwt_claims(&token).unwrap()["aud"], "api://bazel-cache");

    // The same answer through `entra-token bazel get`, from the cache.
    let out = bazel_get(&sb, Path::new(env!("CARGO_BIN_EXE_entra-token")), &["bazel"], r#"{"uri":"grpcs://bazel-cache.contoso.test"}"#);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["headers"]["Authorization"][0], format!("Bearer {token}").as_str());
    assert_eq!(mock.token_requests(), 1);
}

#[test]
fn unclaimed_uris_get_no_headers_and_no_token_is_made() {
    let mock = MockAuthority::start();
    let sb = configured(&mock);
    let link = sb.link("entra-token-bazel");
    for uri in [
        "https://evil.test/ac/1",
        "https://bazel-cache.contoso.test.evil.test/",
        "http://bazel-cache.contoso.test/",
        "https://bazel-cache.contoso.test:8443/",
        "https://user@bazel-cache.contoso.test/",
        "grpc://bazel-cache.contoso.test/",
    ] {
        let out = bazel_get(&sb, &link, &[], &serde_json::json!({ "uri": uri }).to_string());
        assert!(out.status.success(), "{uri}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "{}\n", "{uri}");
    }
    assert_eq!(mock.token_requests(), 0);
}

#[test]
fn bad_requests_and_commands_fail_with_a_reason_on_stderr() {
    let mock = MockAuthority::start();
    let sb = configured(&mock);
    let link = sb.link("entra-token-bazel");
    let out = bazel_get(&sb, &link, &[], "not json");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).starts_with("entra-token: "), "{}", text(&out.stderr));

    let mut cmd = sandboxed(&sb, &link);
    cmd.arg("put");
    let out = run_with_stdin(cmd, "{}");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("get"), "{}", text(&out.stderr));

    // An Entra refusal: non-zero, the AADSTS reason on stderr, nothing on stdout.
    let mut cmd = sandboxed(&sb, &link);
    cmd.env("APP_SECRET", "not-the-secret").arg("get");
    let out = run_with_stdin(cmd, r#"{"uri":"https://bazel-cache.contoso.test/x"}"#);
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).contains("AADSTS7000215"), "{}", text(&out.stderr));
}

#[test]
fn a_claimed_uri_without_a_resource_gets_azure_devops_on_its_hosts_and_a_refusal_elsewhere() {
    let mock = MockAuthority::start();
    // No `resource`: before, any claimed host got an Azure management token.
    let sb = with_profile(&mock, &format!("urls = [\"{CACHE_URL}\", \"https://pkgs.dev.azure.com/contoso/\"]\n"));
    let link = sb.link("entra-token-bazel");
    let out = bazel_get(&sb, &link, &[], r#"{"uri":"https://bazel-cache.contoso.test/ac/0123abcd"}"#);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.starts_with("entra-token: profile 'build' claims https://bazel-cache.contoso.test/ac/0123abcd but names no `resource`"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(mock.token_requests(), 0, "no token may be made for a server whose API is unknown");
    // An Azure Artifacts feed: Azure DevOps, as git and cargo use.
    let out = bazel_get(&sb, &link, &[], r#"{"uri":"https://pkgs.dev.azure.com/contoso/_packaging/f/maven/v1/x.jar"}"#);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = mock.issued_access_tokens().pop().unwrap();
    assert_eq!(jwt_claims(&token).unwrap()["aud"], "499b84ac-1321-427f-aa17-267ca6975798");
}
