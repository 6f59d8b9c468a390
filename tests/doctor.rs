//! `entra-token doctor` against setups broken on purpose (bad TOML, a missing profile,
//! loose cache permissions, an unreachable authority, a wrong clock, a tool wired to a
//! helper that is not there) and a healthy one against the mock authority.

mod support;

use support::{MockAuthority, Sandbox, refused_url, run};

const TENANT: &str = "contoso.test";
const APP: &str = "77777777-7777-7777-7777-777777777777";

fn profile(authority: &str) -> String {
    format!(
        "[profiles.ci]\ntenant = \"{TENANT}\"\nclient_id = \"{APP}\"\nflow = \"client-credentials\"\nclient_secret_env = \"CI_SECRET\"\nauthority = \"{authority}\"\nurls = [\"https://dev.azure.com/contoso/\", \"https://contoso.azurecr.io\"]\n"
    )
}

/// (exit code, stdout) of `doctor ARGS` with CI_SECRET set.
fn doctor(sb: &Sandbox, args: &[&str]) -> (i32, String) {
    let mut cmd = sb.cmd();
    cmd.env("CI_SECRET", "doctor~secret").arg("doctor").args(args);
    let out = run(cmd);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!stdout.contains("doctor~secret"), "doctor never prints a secret");
    (out.status.code().unwrap(), stdout)
}

fn line<'a>(report: &'a str, mark: &str, name: &str) -> &'a str {
    report.lines().find(|l| l.starts_with(&format!("{mark} {name} "))).unwrap_or_else(|| panic!("no `{mark} {name}` line in:\n{report}"))
}

/// The `fix:` line right after a ✗ line.
fn fix_after<'a>(report: &'a str, name: &str) -> &'a str {
    let mut lines = report.lines().skip_while(|l| !l.starts_with(&format!("✗ {name} ")));
    lines.next();
    lines.find(|l| l.trim_start().starts_with("fix:")).unwrap_or_else(|| panic!("no fix for {name} in:\n{report}"))
}

#[test]
fn a_healthy_setup_is_all_ticks() {
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    let sb = Sandbox::new();
    sb.write_config(&profile(&mock.url()));
    let (code, report) = doctor(&sb, &["-p", "ci"]);
    assert_eq!(code, 0, "{report}");
    assert!(!report.contains('✗'), "{report}");
    assert!(line(&report, "✓", "profile").contains("'ci' chosen by the command line or request, from file"), "{report}");
    line(&report, "✓", "secret");
    line(&report, "✓", "authority");
    assert!(line(&report, "✓", "clock").contains("within"), "{report}");
    line(&report, "✓", "cache");
    line(&report, "✓", "store");
    assert!(report.lines().count() < 30, "one screen:\n{report}");
    assert_eq!(mock.requests().iter().filter(|r| r.path.ends_with("openid-configuration")).count(), 1);

    let (code, json) = doctor(&sb, &["-p", "ci", "-o", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["ok"], true);
    assert!(v["checks"].as_array().unwrap().iter().all(|c| c["status"] != "fail"), "{v}");
}

#[test]
fn bad_toml_and_missing_profiles_are_crosses_with_fixes() {
    let sb = Sandbox::new();
    sb.write_config("[profiles.ci\ntenant = \"x\"\n");
    let (code, report) = doctor(&sb, &["--offline"]);
    assert_eq!(code, 1, "{report}");
    assert!(line(&report, "✗", "config").contains("does not parse"), "{report}");
    line(&report, "✗", "profile");
    assert!(fix_after(&report, "config").contains("config.toml"), "{report}");

    sb.write_config(&profile("https://login.microsoftonline.com"));
    let (code, report) = doctor(&sb, &["-p", "nope", "--offline"]);
    assert_eq!(code, 1);
    assert!(line(&report, "✗", "profile").contains("'nope' not found; available: default (built-in), ci"), "{report}");
    assert!(fix_after(&report, "profile").contains("entra-token profile add"), "{report}");
    line(&report, "✓", "config");

    // The profile's secret variable is not set.
    let mut cmd = sb.cmd();
    cmd.args(["doctor", "-p", "ci", "--offline"]);
    let out = run(cmd);
    let report = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(line(&report, "✗", "secret").contains("CI_SECRET is not set"), "{report}");
}

#[cfg(unix)]
#[test]
fn loose_cache_permissions_are_a_cross_with_the_chmod() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    sb.write_config(&profile("https://login.microsoftonline.com"));
    let cache = sb.path("cache");
    std::fs::create_dir(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, report) = doctor(&sb, &["-p", "ci", "--offline"]);
    assert_eq!(code, 1, "{report}");
    assert!(line(&report, "✗", "cache").contains("755"), "{report}");
    assert!(fix_after(&report, "cache").contains(&format!("chmod 700 {}", cache.display())), "{report}");

    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).unwrap();
    let entry = cache.join("at-0000.json");
    std::fs::write(&entry, "{}").unwrap();
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, report) = doctor(&sb, &["-p", "ci", "--offline"]);
    assert_eq!(code, 1, "{report}");
    assert!(line(&report, "✗", "cache").contains("1 unsafe files"), "{report}");
    assert!(report.contains("at-0000.json"), "{report}");
    assert!(fix_after(&report, "cache").contains("chmod 600"), "{report}");
}

#[test]
fn an_unreachable_authority_and_a_skewed_clock_are_crosses() {
    let sb = Sandbox::new();
    let refused = refused_url();
    sb.write_config(&profile(&refused));
    let (code, report) = doctor(&sb, &["-p", "ci"]);
    assert_eq!(code, 1, "{report}");
    assert!(line(&report, "✗", "authority").contains("connection refused"), "{report}");
    assert!(!fix_after(&report, "authority").is_empty());

    // An authority whose Date is an hour behind: the clock check says by how much.
    let skewed = support::http::Server::start(
        std::sync::Arc::new(|_req: support::http::Request| {
            let body = serde_json::json!({"token_endpoint": "http://127.0.0.1/t", "issuer": "x"});
            support::http::Reply::json(200, &body).with_header("Date", &support::http::http_date(time::OffsetDateTime::now_utc() - time::Duration::hours(1)))
        }),
        None,
    );
    sb.write_config(&profile(&skewed.url()));
    let (code, report) = doctor(&sb, &["-p", "ci"]);
    assert_eq!(code, 1, "{report}");
    line(&report, "✓", "authority");
    let clock = line(&report, "✗", "clock");
    assert!(clock.contains("ahead of the authority"), "{report}");
    let secs: i64 = clock.split(" is ").nth(1).unwrap().split('s').next().unwrap().parse().unwrap();
    assert!((3590..=3610).contains(&secs), "{clock}");
}

#[test]
fn tools_wired_to_us_are_reported_with_their_profile() {
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    let sb = Sandbox::new();
    sb.write_config(&profile(&mock.url()));
    // git: a helper for the Azure DevOps org, which profile ci claims.
    let bin = env!("CARGO_BIN_EXE_entra-token");
    let mut git = sb.tool("git");
    git.args(["config", "--global", "credential.https://dev.azure.com/contoso.helper", &format!("!{bin} git")]);
    assert!(run(git).status.success());
    // Docker: a helper for a registry no profile claims, whose binary is not on PATH.
    sb.write_file("home/.docker/config.json", r#"{"credHelpers":{"other.azurecr.io":"entra-token"}}"#);
    let (code, report) = doctor(&sb, &["-p", "ci"]);
    assert_eq!(code, 1, "{report}");
    assert!(line(&report, "✓", "git").contains("credential.https://dev.azure.com/contoso.helper → profile 'ci'"), "{report}");
    let docker = line(&report, "✗", "docker");
    assert!(docker.contains("docker-credential-entra-token, which is not found"), "{report}");
    assert!(fix_after(&report, "docker").contains("setup links"), "{report}");

    // With the helper linked on PATH, the registry still needs a profile that claims it.
    let links = sb.path("bin");
    std::fs::create_dir_all(&links).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(bin, links.join("docker-credential-entra-token")).unwrap();
    let path = format!("{}:{}", links.display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = sb.cmd();
    cmd.env("CI_SECRET", "x").env("PATH", &path).args(["doctor", "-p", "ci", "-o", "json"]);
    let out = run(cmd);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let docker = v["checks"].as_array().unwrap().iter().find(|c| c["name"] == "docker").unwrap();
    assert_eq!(docker["status"], "fail", "{docker}");
    assert!(docker["message"].as_str().unwrap().contains("no profile's urls claim other.azurecr.io"), "{docker}");
    assert!(docker["fix"].as_str().unwrap().contains("--url other.azurecr.io"), "{docker}");
}
