//! `entra-token setup az|azd|bazel|docker`: what is printed, and what `--apply` writes
//! (links that resolve to the binary, `.bazelrc` lines, Docker's `credHelpers`), with
//! backups of replaced files and no duplicates on a second run.


use serde_json::Value;
use crate::support::{Sandbox, run, text};

fn setup(sb: &Sandbox, args: &[&str]) -> std::process::Output {
    let mut cmd = sb.cmd();
    cmd.arg("setup").args(args).env("DOCKER_CONFIG", sb.path("docker"));
    run(cmd)
}

fn exe() -> std::path::PathBuf {
    std::fs::canonicalize(env!("CARGO_BIN_EXE_entra-token")).unwrap()
}

const PROFILES: &str = "[profiles.ci]\ntenant = \"t\"\nclient_id = \"c\"\nflow = \"client-credentials\"\nclient_secret_env = \"S\"\nurls = [\"contoso.azurecr.io\", \"https://cache.contoso.test/bazel/\"]\n";

#[test]
fn az_and_azd_links_are_printed_then_made() {
    let sb = Sandbox::new();
    let dir = sb.path("bin");
    let out = setup(&sb, &["az", "--dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("ln -sf {} {}/az\n", exe().display(), dir.display())), "{}", text(&out.stdout));
    assert!(!dir.join("az").exists(), "printing must not write");
    for name in ["az", "azd"] {
        let out = setup(&sb, &[name, "--dir", dir.to_str().unwrap(), "--apply"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(std::fs::canonicalize(dir.join(name)).unwrap(), exe());
    }
    // Running it again is harmless.
    assert!(setup(&sb, &["az", "--dir", dir.to_str().unwrap(), "--apply"]).status.success());
}

#[test]
fn bazel_rc_gets_one_line_per_claimed_host_once() {
    let sb = Sandbox::new();
    sb.write_config(PROFILES);
    let out = setup(&sb, &["bazel"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let helper = sb.path("home/.local/bin/entra-token-bazel");
    let line = format!("common --credential_helper=cache.contoso.test={}", helper.display());
    assert!(text(&out.stdout).contains(&line), "{}", text(&out.stdout));

    std::fs::write(sb.path("home/.bazelrc"), "build --jobs=4\n").unwrap();
    for _ in 0..2 {
        let out = setup(&sb, &["bazel", "--apply"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let rc = std::fs::read_to_string(sb.path("home/.bazelrc")).unwrap();
    assert!(rc.starts_with("build --jobs=4\n"), "{rc}");
    assert_eq!(rc.matches(&line).count(), 1, "{rc}");
    assert!(!rc.contains("azurecr"), "a Docker registry is no Bazel host: {rc}");
    assert_eq!(std::fs::canonicalize(&helper).unwrap(), exe());
    let backups: Vec<_> = std::fs::read_dir(sb.path("home")).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().starts_with(".bazelrc.entra-token-backup-")).collect();
    assert_eq!(backups.len(), 1);
    assert_eq!(std::fs::read_to_string(backups[0].path()).unwrap(), "build --jobs=4\n");

    // An explicit pattern, and a bad one.
    let out = setup(&sb, &["bazel", "--pattern", "*.example.com"]);
    assert!(text(&out.stdout).contains("--credential_helper=*.example.com="), "{}", text(&out.stdout));
    let out = setup(&sb, &["bazel", "--pattern", "x=/bin/sh"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn docker_config_gains_cred_helpers_and_keeps_the_rest() {
    let sb = Sandbox::new();
    // Nothing claimed and no --registry: a clear error.
    let out = setup(&sb, &["docker"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--registry"), "{}", text(&out.stderr));

    sb.write_config(PROFILES);
    let before = r#"{"auths":{"docker.io":{"auth":"eA=="}},"credHelpers":{"gcr.io":"gcloud"}}"#;
    sb.write_file("docker/config.json", before);
    let out = setup(&sb, &["docker"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("\"contoso.azurecr.io\": \"entra-token\""), "{}", text(&out.stdout));
    assert_eq!(std::fs::read_to_string(sb.path("docker/config.json")).unwrap(), before, "printing must not write");

    let out = setup(&sb, &["docker", "--apply", "--registry", "https://extra.contoso.test:5000/"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(sb.path("docker/config.json")).unwrap()).unwrap();
    assert_eq!(v["credHelpers"]["extra.contoso.test:5000"], "entra-token");
    assert_eq!(v["credHelpers"]["gcr.io"], "gcloud");
    assert_eq!(v["auths"]["docker.io"]["auth"], "eA==");
    let out = setup(&sb, &["docker", "--apply"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(sb.path("docker/config.json")).unwrap()).unwrap();
    assert_eq!(v["credHelpers"]["contoso.azurecr.io"], "entra-token");
    assert!(v["credHelpers"].get("cache.contoso.test").is_none(), "an https URL with a path is no registry: {v}");
    assert_eq!(std::fs::canonicalize(sb.path("home/.local/bin/docker-credential-entra-token")).unwrap(), exe());
    let backups = std::fs::read_dir(sb.path("docker")).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().starts_with("config.json.entra-token-backup-")).count();
    assert_eq!(backups, 2);
}

/// One config claiming a Docker registry as docs/docker.md writes it, Azure DevOps' git and
/// feed URLs and a Bazel cache: each setup takes only its own, and warns about none of
/// them (ACR gets the ARM token by default, Azure DevOps its own).
#[test]
fn each_setup_takes_only_the_urls_meant_for_its_tool() {
    let sb = Sandbox::new();
    for args in [
        &["profile", "add", "acr", "--flow", "device-code", "--tenant", "contoso.com", "--url", "contoso.azurecr.io"][..],
        &["profile", "add", "ado", "--flow", "device-code", "--tenant", "contoso.com", "--url", "https://dev.azure.com/contoso/"],
        &["profile", "add", "feed", "--flow", "device-code", "--tenant", "contoso.com", "--url", "https://pkgs.dev.azure.com/contoso/"],
        &["profile", "add", "cache", "--flow", "device-code", "--tenant", "contoso.com", "--url", "https://cache.contoso.test/bazel/", "--resource", "api://cache"],
    ] {
        let mut cmd = sb.cmd();
        cmd.args(args);
        let out = run(cmd);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }
    let gitconfig = sb.path("gitconfig");
    let mut cmd = sb.cmd();
    cmd.args(["setup", "git"]).env("GIT_CONFIG_GLOBAL", &gitconfig);
    let out = run(cmd);
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{se}");
    assert!(so.contains("credential.https://dev.azure.com/contoso.helper") && so.contains("credential.https://cache.contoso.test/bazel.helper"), "{so}");
    assert!(!so.contains("azurecr") && !so.contains("pkgs.dev.azure.com"), "{so}");
    assert!(se.is_empty(), "{se}");

    let out = setup(&sb, &["docker"]);
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{se}");
    let json = so.split_once("config.json:\n").expect("the merged snippet").1;
    let v: Value = serde_json::from_str(json).expect(&so);
    assert_eq!(v, serde_json::json!({"credHelpers": {"contoso.azurecr.io": "entra-token"}}));
    assert!(se.is_empty(), "ACR gets the ARM token by default: no warning: {se}");

    let out = setup(&sb, &["bazel"]);
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{se}");
    let lines: Vec<&str> = so.lines().filter(|l| l.starts_with("common --credential_helper=")).collect();
    assert_eq!(lines.len(), 1, "{so}");
    assert!(lines[0].starts_with("common --credential_helper=cache.contoso.test="), "{so}");
    assert!(se.is_empty(), "{se}");

    // A URL entra-token can never match is skipped, with its profile named.
    sb.write_config("[profiles.plain]\nflow = \"device-code\"\nresource = \"api://x\"\nurls = [\"http://git.contoso.test/\", \"https://git.contoso.test/org/\"]\n");
    let mut cmd = sb.cmd();
    cmd.args(["setup", "git"]).env("GIT_CONFIG_GLOBAL", &gitconfig);
    let out = run(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("profile 'plain' claims 'http://git.contoso.test/'"), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("credential.https://git.contoso.test/org.helper"), "{}", text(&out.stdout));
}
