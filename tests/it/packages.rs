//! The release packages, used for real where nothing else is installed
//! (`scripts/test-packages.sh` prepares each place and runs these):
//! - the .deb inside a fresh Debian root where apt installed it (`ENTRA_TOKEN_DEB_ROOT`):
//!   git's own helper lookup finds `git-credential-entra-token` on PATH and `git credential
//!   fill` gets a token from the stand-in authority on 127.0.0.1 (a chroot shares loopback);
//! - the Windows zip unpacked into a fresh Wine prefix (`ENTRA_TOKEN_ZIP_PREFIX`), used from
//!   `cmd /c` as the Azure SDKs use `az`.


use std::path::PathBuf;
use std::process::Command;
use crate::support::{CcProfile, MockAuthority, jwt_claims, run_with_stdin, text};

const TENANT: &str = "contoso.test";
const APP: &str = "55555555-5555-5555-5555-555555555555";
const SECRET: &str = "deb~secret";
const AZURE_DEVOPS: &str = "499b84ac-1321-427f-aa17-267ca6975798";

#[test]
#[ignore = "needs a Debian root with the package installed: run scripts/test-packages.sh"]
fn git_in_a_clean_debian_root_finds_the_installed_helper() {
    let root = PathBuf::from(std::env::var_os("ENTRA_TOKEN_DEB_ROOT").expect("ENTRA_TOKEN_DEB_ROOT names the root scripts/test-packages.sh made"));
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some(SECRET));
    let config_dir = root.join("root/.config/entra-token");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("config.toml"),
        CcProfile::new("azdo", &mock.url(), TENANT, APP).secret_env("GIT_SECRET").with("urls = [\"https://dev.azure.com/contoso/\"]\n").toml(),
    )
    .unwrap();

    // Nothing of the host comes along: a clean environment, the root's own git and PATH.
    let mut git = Command::new("chroot");
    git.arg(&root)
        .args(["/usr/bin/env", "-i", "HOME=/root", "PATH=/usr/bin:/bin", "GIT_TERMINAL_PROMPT=0", &format!("GIT_SECRET={SECRET}")])
        .args(["git", "-c", "credential.helper=entra-token", "-c", "credential.useHttpPath=true", "credential", "fill"]);
    let out = run_with_stdin(git, "protocol=https\nhost=dev.azure.com\npath=contoso/project/_git/repo\n\n");
    assert!(out.status.success(), "git credential fill failed in the root: {}", text(&out.stderr));
    let answer = text(&out.stdout);
    let password = answer.lines().find_map(|l| l.strip_prefix("password=")).unwrap_or_else(|| panic!("no password in git's answer:\n{answer}"));
    assert!(mock.issued_access_tokens().iter().any(|t| t == password), "the password is not a token the stand-in issued");
    let claims = jwt_claims(password).expect("the token is a JWT");
    assert_eq!(claims["appid"], APP);
    assert!(claims["aud"].as_str().unwrap_or("").contains(AZURE_DEVOPS), "audience {} is not Azure DevOps", claims["aud"]);
    assert_eq!(mock.token_requests(), 1);

    // A second fill is answered from the package's cache inside the root.
    let mut again = Command::new("chroot");
    again
        .arg(&root)
        .args(["/usr/bin/env", "-i", "HOME=/root", "PATH=/usr/bin:/bin", "GIT_TERMINAL_PROMPT=0"])
        .args(["git", "-c", "credential.helper=entra-token", "-c", "credential.useHttpPath=true", "credential", "fill"]);
    let out = run_with_stdin(again, "protocol=https\nhost=dev.azure.com\npath=contoso/project/_git/repo\n\n");
    assert!(out.status.success(), "second fill: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("password={password}")));
    assert_eq!(mock.token_requests(), 1, "the second fill signed in again instead of using the cache");
}

#[test]
#[ignore = "needs the Windows zip unpacked in a fresh Wine prefix: run scripts/test-packages.sh"]
fn windows_zip_in_a_fresh_wine_prefix_answers_cmd() {
    // The prefix as the host sees it, and as the Windows chroot sees it.
    let prefix = PathBuf::from(std::env::var_os("ENTRA_TOKEN_ZIP_PREFIX").expect("ENTRA_TOKEN_ZIP_PREFIX names the prefix on the host"));
    let inside = std::env::var("ENTRA_TOKEN_ZIP_PREFIX_INSIDE").expect("ENTRA_TOKEN_ZIP_PREFIX_INSIDE names it in the chroot");
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some(SECRET));
    let drive_c = prefix.join("drive_c");
    let appdata = drive_c.join("users/root/AppData/Roaming/entra-token");
    std::fs::create_dir_all(&appdata).unwrap();
    std::fs::write(drive_c.join("entra-token-secret.txt"), SECRET).unwrap();
    std::fs::write(
        appdata.join("config.toml"),
        format!(
            "default_profile = \"ci\"\n[profiles.ci]\nauthority = \"{}\"\ntenant = \"{TENANT}\"\nclient_id = \"{APP}\"\nflow = \"client-credentials\"\nclient_secret_file = 'C:\\entra-token-secret.txt'\n",
            mock.url()
        ),
    )
    .unwrap();
    // What an Azure SDK runs on Windows, with the unpacked folder on PATH as INSTALL.txt says.
    let cmd_line = r#"set PATH=C:\entra-token;%PATH% && entra-token --version && az account get-access-token --resource https://management.azure.com/ --output json"#;
    let script = format!("WINEPREFIX={inside} wine cmd /c '{cmd_line}'");
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/windows.sh")).args(["run", &script]).output().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "cmd /c failed under Wine: {}\n{stdout}", text(&out.stderr));
    assert!(stdout.contains("entra-token 0.1.0 (commit ") && stdout.contains("x86_64-pc-windows-gnu"), "--version: {stdout}");
    let json = &stdout[stdout.find('{').unwrap_or_else(|| panic!("no JSON from az: {stdout}"))..];
    let answer: serde_json::Value = serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("az's answer is not JSON ({e}): {json}"));
    let token = answer["accessToken"].as_str().expect("accessToken");
    assert!(mock.issued_access_tokens().iter().any(|t| t == token), "the token is not one the stand-in issued");
    assert_eq!(jwt_claims(token).expect("a JWT")["appid"], APP);
}
