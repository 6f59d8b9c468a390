//! `entra-token doctor` against setups broken on purpose (bad TOML, a missing profile,
//! loose cache permissions, an unreachable authority, a wrong clock, a tool wired to a
//! helper that is not there) and a healthy one against the mock authority.

use crate::support;

use crate::support::{CcProfile, MockAuthority, Sandbox, refused_url, run};

const TENANT: &str = "contoso.test";
const APP: &str = "77777777-7777-7777-7777-777777777777";

fn profile(authority: &str) -> String {
    CcProfile::new("ci", authority, TENANT, APP).with("urls = [\"https://dev.azure.com/contoso/\", \"https://contoso.azurecr.io\"]\n").toml()
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
    // A service principal keeps no refresh tokens, but its PoP key goes where `storage` says.
    let store = if cfg!(windows) { "the OS secret store answers: PoP keys go there" } else { "PoP keys in 0600 files" };
    assert!(line(&report, "✓", "store").contains(store), "{report}");
    assert!(report.contains("no refresh tokens: flow client-credentials keeps none"), "{report}");
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

// Unix only: POSIX file modes (Windows' access lists: tests/it/windows.rs and fs).
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
    assert!(line(&report, "✗", "cache").contains("1 unsafe file:"), "{report}");
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

// Unix only: runs the real git and makes a symbolic link.
#[cfg(unix)]
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
    let path = format!("{}:{}", links.display(), crate::support::env::path().to_string_lossy());
    let mut cmd = sb.cmd();
    cmd.env("CI_SECRET", "x").env("PATH", &path).args(["doctor", "-p", "ci", "-o", "json"]);
    let out = run(cmd);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let docker = v["checks"].as_array().unwrap().iter().find(|c| c["name"] == "docker").unwrap();
    assert_eq!(docker["status"], "fail", "{docker}");
    assert!(docker["message"].as_str().unwrap().contains("no profile's urls claim other.azurecr.io"), "{docker}");
    assert!(docker["fix"].as_str().unwrap().contains("--url other.azurecr.io"), "{docker}");
}

#[test]
fn auto_names_its_source_and_why_the_earlier_ones_do_not_apply() {
    let sb = Sandbox::new();
    sb.write_config("[profiles.me]\nflow = \"auto\"\n");
    let mut cmd = sb.cmd();
    cmd.env("IDENTITY_ENDPOINT", "http://127.0.0.1:9/msi/token").env("IDENTITY_HEADER", "h").args(["doctor", "-p", "me", "--offline"]);
    let out = run(cmd);
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(line(&report, "✓", "auto").contains("would use managed identity (App Service endpoint"), "{report}");
    assert!(report.contains("environment: AZURE_CLIENT_ID is not set"), "{report}");
    assert!(report.contains("workload identity: no federated token"), "{report}");
    assert!(!report.contains("azure cli:"), "sources after the chosen one are not listed:\n{report}");
    // Windows has Credential Manager where this Linux sandbox has no Secret Service.
    let store = if cfg!(windows) { "the OS secret store answers: refresh tokens and PoP keys go there" } else { "refresh tokens and PoP keys in 0600 files" };
    assert!(line(&report, "✓", "store").contains(store), "{report}");

    // Nothing applies (no variables, no az, no terminal): a cross naming every step.
    let mut cmd = sb.cmd();
    cmd.env("PATH", sb.path("empty")).args(["doctor", "-p", "me", "--offline"]);
    let out = run(cmd);
    let report = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{report}");
    line(&report, "✗", "auto");
    for step in ["environment:", "workload identity:", "managed identity: no IDENTITY_ENDPOINT", "azure cli: not signed in", "interactive sign-in: no terminal"] {
        assert!(report.contains(step), "missing {step}:\n{report}");
    }

    // storage = "keyring" where no secret store answers (the sandbox has no D-Bus session).
    // Unix only: Windows' Credential Manager is always there.
    #[cfg(unix)]
    {
        sb.write_config("[profiles.me]\nflow = \"auto\"\nstorage = \"keyring\"\n");
        let mut cmd = sb.cmd();
        cmd.env_remove("DBUS_SESSION_BUS_ADDRESS").args(["doctor", "-p", "me", "--offline"]);
        let report = String::from_utf8(run(cmd).stdout).unwrap();
        assert!(line(&report, "✗", "store").contains("no OS secret store is usable here for refresh tokens and PoP keys"), "{report}");
        assert!(fix_after(&report, "store").contains("storage = \"auto\" or \"file\""), "{report}");
        // A service principal's PoP key needs the store as much; managed identity keeps neither.
        sb.write_config("[profiles.me]\nflow = \"client-credentials\"\ntenant = \"t\"\nclient_id = \"c\"\nclient_secret_env = \"CI_SECRET\"\nstorage = \"keyring\"\n\n[profiles.mi]\nflow = \"managed-identity\"\n");
        let mut cmd = sb.cmd();
        cmd.env_remove("DBUS_SESSION_BUS_ADDRESS").env("CI_SECRET", "s").args(["doctor", "-p", "me", "--offline"]);
        let report = String::from_utf8(run(cmd).stdout).unwrap();
        assert!(line(&report, "✗", "store").contains("no OS secret store is usable here for PoP keys"), "{report}");
        let mut cmd = sb.cmd();
        cmd.args(["doctor", "-p", "mi", "--offline"]);
        let report = String::from_utf8(run(cmd).stdout).unwrap();
        assert!(line(&report, "·", "store").contains("no refresh tokens or PoP keys: flow managed-identity keeps none"), "{report}");
        sb.write_config("[profiles.me]\nflow = \"auto\"\n");
    }

    let mut cmd = sb.cmd();
    cmd.env("AZURE_TOKEN_CREDENTIALS", "bogus").args(["doctor", "-p", "me", "--offline"]);
    let out = run(cmd);
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(line(&report, "✗", "auto").contains("AZURE_TOKEN_CREDENTIALS=bogus"), "{report}");
}

// Unix only: a symbolic link for az and the real kubectl.
#[cfg(unix)]
#[test]
fn kubectl_cargo_and_az_wiring_name_their_profile() {
    let sb = Sandbox::new();
    sb.write_config(&profile("https://login.microsoftonline.com"));
    let bin = env!("CARGO_BIN_EXE_entra-token");
    let kubeconfig = |profile: &str| {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: aks\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: aks\n  context:\n    cluster: aks\n    user: aks-user\ncurrent-context: aks\nusers:\n- name: aks-user\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {bin}\n      args: [\"kubectl\", \"-p\", \"{profile}\"]\n      interactiveMode: Never\n"
        )
    };
    sb.write_file("home/.kube/config", kubeconfig("ghost"));
    let feed = "https://pkgs.dev.azure.com/contoso/_packaging/feed/Cargo/index/";
    sb.write_file("cargo-home/config.toml", format!("[registries.contoso]\nindex = \"sparse+{feed}\"\ncredential-provider = [\"{bin}\"]\n"));
    let links = sb.path("bin");
    std::fs::create_dir_all(&links).unwrap();
    std::os::unix::fs::symlink(bin, links.join("az")).unwrap();
    let path = format!("{}:{}", links.display(), crate::support::env::path().to_string_lossy());
    let report = |sb: &Sandbox| {
        let mut cmd = sb.cmd();
        cmd.env("CI_SECRET", "x").env("PATH", &path).env("CARGO_HOME", sb.path("cargo-home")).env("ENTRA_TOKEN_PROFILE", "ci").args(["doctor", "--offline"]);
        String::from_utf8(run(cmd).stdout).unwrap()
    };
    let r = report(&sb);
    assert!(line(&r, "✓", "az").contains("az on PATH is entra-token") && r.contains("→ profile 'ci'"), "{r}");
    assert!(line(&r, "✗", "cargo").contains(&format!("no profile's urls claim {feed}")), "{r}");
    if std::path::Path::new("/usr/bin/kubectl").exists() || which_kubectl() {
        assert!(line(&r, "✗", "kubectl").contains("'ghost' not found"), "{r}");
    }

    // Claim the feed and point the cluster at a real profile: both turn into ticks.
    sb.write_config(&profile("https://login.microsoftonline.com").replace("urls = [", &format!("urls = [\"{feed}\", ")));
    sb.write_file("home/.kube/config", kubeconfig("ci"));
    let r = report(&sb);
    assert!(line(&r, "✓", "cargo").contains("cargo registry 'contoso' → profile 'ci'"), "{r}");
    assert!(line(&r, "✓", "kubectl").contains("kubeconfig user") && line(&r, "✓", "kubectl").contains("→ profile 'ci'"), "{r}");
}

#[cfg(unix)]
fn which_kubectl() -> bool {
    std::process::Command::new("kubectl").arg("version").arg("--client").output().is_ok()
}

/// What `entra-token setup … --apply` writes is what doctor recognises as wired.
// Unix only: `setup git` and `setup kubectl` run the real git and kubectl.
#[cfg(unix)]
#[test]
fn doctor_reads_what_setup_writes() {
    let sb = Sandbox::new();
    let feed = "https://pkgs.dev.azure.com/contoso/_packaging/feed/Cargo/index/";
    sb.write_config(&profile("https://login.microsoftonline.com").replace("urls = [", "urls = [\"https://pkgs.dev.azure.com/contoso/\", "));
    let with_env = |mut c: std::process::Command| {
        c.env("CARGO_HOME", sb.path("cargo-home")).env("KUBECONFIG", sb.path("home/.kube/config")).env("CI_SECRET", "x");
        c
    };
    sb.write_file(
        "home/.kube/config",
        "apiVersion: v1\nkind: Config\nclusters:\n- name: aks\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: aks\n  context:\n    cluster: aks\n    user: nobody\ncurrent-context: aks\nusers: []\n",
    );
    for args in [
        vec!["setup", "git", "--apply"],
        vec!["setup", "cargo", "--registry", &format!("contoso={feed}"), "--apply"],
        vec!["setup", "kubectl", "-p", "ci", "--context", "aks", "--apply"],
    ] {
        let mut c = sb.cmd();
        c.args(&args);
        let out = run(with_env(c));
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut c = sb.cmd();
    c.args(["doctor", "-p", "ci", "--offline"]);
    let out = run(with_env(c));
    let report = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(line(&report, "✓", "git").contains("→ profile 'ci'"), "{report}");
    assert!(line(&report, "✓", "cargo").contains("cargo registry 'contoso' → profile 'ci'"), "{report}");
    assert!(line(&report, "✓", "kubectl").contains("→ profile 'ci'"), "{report}");
}

/// A person's profile: not signed in (with the login command), then signed in, and `auto`
/// then counts the account's refresh token as a source that needs nobody at a terminal.
#[test]
fn the_signed_in_account_is_reported() {
    let mock = MockAuthority::start();
    mock.set_device_interval(1);
    let sb = Sandbox::new();
    sb.write_config(&format!("[profiles.dev]\nflow = \"device-code\"\ntenant = \"organizations\"\nauthority = \"{}\"\n", mock.url()));
    let (_, report) = doctor(&sb, &["-p", "dev", "--offline"]);
    assert!(line(&report, "·", "account").contains("not signed in yet (`entra-token login -p dev` in a terminal)"), "{report}");
    mock.approve_device_codes(0);
    let mut login = sb.cmd();
    login.args(["login", "-p", "dev"]);
    let out = run(login);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (code, report) = doctor(&sb, &["-p", "dev", "--offline"]);
    assert_eq!(code, 0, "{report}");
    assert!(line(&report, "✓", "account").contains(&format!("signed in as {}", support::DEFAULT_USER)), "{report}");
    // The same account, seen by an auto profile of the same name and client.
    sb.write_config(&format!("[profiles.dev]\nflow = \"auto\"\ntenant = \"organizations\"\nauthority = \"{}\"\n", mock.url()));
    let mut cmd = sb.cmd();
    cmd.env("PATH", sb.path("empty")).args(["doctor", "-p", "dev", "--offline"]);
    let report = String::from_utf8(run(cmd).stdout).unwrap();
    assert!(line(&report, "✓", "auto").contains("would use interactive sign-in (signed in as"), "{report}");
}

/// A `cp1` profile (long-lived tokens revoked through claims challenges) wired to tools that
/// cannot bring a challenge back is a warning, not a failure; without cp1 the same wiring is a tick.
// Unix only: runs the real git.
#[cfg(unix)]
#[test]
fn a_cp1_profile_wired_to_kubectl_or_git_is_a_warning() {
    let sb = Sandbox::new();
    let plain = profile("https://login.microsoftonline.com");
    sb.write_config(&plain.replace("[profiles.ci]\n", "[profiles.ci]\nclient_capabilities = [\"cp1\"]\n"));
    let bin = env!("CARGO_BIN_EXE_entra-token");
    sb.write_file(
        "home/.kube/config",
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: aks\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: aks\n  context:\n    cluster: aks\n    user: aks-user\ncurrent-context: aks\nusers:\n- name: aks-user\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {bin}\n      args: [\"kubectl\", \"-p\", \"ci\"]\n      interactiveMode: Never\n"),
    );
    let mut git = sb.tool("git");
    git.args(["config", "--global", "credential.https://dev.azure.com/contoso.helper", &format!("!{bin} git")]);
    assert!(run(git).status.success());
    let checks = |sb: &Sandbox, format: &str| {
        let mut cmd = sb.cmd();
        cmd.env("CI_SECRET", "x").env("ENTRA_TOKEN_PROFILE", "ci").args(["doctor", "--offline", "-o", format]);
        String::from_utf8(run(cmd).stdout).unwrap()
    };
    let v: serde_json::Value = serde_json::from_str(&checks(&sb, "json")).unwrap();
    let find = |name: &str| v["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap().clone();
    for tool in ["kubectl", "git"] {
        let c = find(tool);
        assert_eq!(c["status"], "warn", "{c}");
        assert!(c["message"].as_str().unwrap().contains("→ profile 'ci', which declares cp1") && c["message"].as_str().unwrap().contains("cannot bring a claims challenge back"), "{c}");
        assert!(c["fix"].as_str().unwrap().contains("without client_capabilities"), "{c}");
    }
    let text = checks(&sb, "text");
    assert!(line(&text, "!", "kubectl").contains("declares cp1"), "{text}");

    sb.write_config(&plain);
    let text = checks(&sb, "text");
    assert!(line(&text, "✓", "kubectl").contains("→ profile 'ci'") && line(&text, "✓", "git").contains("→ profile 'ci'"), "{text}");
    assert!(!text.contains("cp1"), "{text}");
}
