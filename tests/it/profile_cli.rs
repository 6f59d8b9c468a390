//! `entra-token profile …` through the binary: edits keep the user's comments, order and
//! file mode, are validated before anything is written, secrets never travel in argv and
//! are never printed.

use crate::support;

use crate::support::{Sandbox, run, text};

const USER_FILE: &str = r#"# My entra-token profiles — hand-written.
default_profile = "dev"   # the one I use most

# Signs me in on this laptop.
[profiles.dev]
flow = "device-code"
tenant = "contoso.test"

# Pipelines.
[profiles.ci]
tenant = "contoso.test"          # aligned on purpose
client_id = "33333333-3333-3333-3333-333333333333"
flow = "client-credentials"
client_secret_env = "CI_SECRET"
"#;

#[cfg(unix)]
fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn add_remove_and_default_keep_the_users_text() {
    let sb = Sandbox::new();
    sb.write_config(USER_FILE);
    let cfg = sb.path("config.toml");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o640)).unwrap();
    }

    let mut cmd = sb.cmd();
    cmd.args(["profile", "add", "pbi", "--flow", "client-credentials", "--tenant", "contoso.test", "--client-id", "44444444-4444-4444-4444-444444444444"])
        .args(["--client-secret-file", "/run/secrets/pbi", "--resource", "powerbi", "--serve-resource", "powerbi"]);
    let out = run(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let after = std::fs::read_to_string(&cfg).unwrap();
    assert!(after.starts_with(USER_FILE), "the user's text must survive byte for byte:\n{after}");
    assert!(after.contains("[profiles.pbi]\ntenant = \"contoso.test\""), "{after}");
    #[cfg(unix)]
    assert_eq!(mode(&cfg), 0o640, "the file keeps its mode");

    // The new profile resolves the way get-token sees it.
    let mut cmd = sb.cmd();
    cmd.args(["profile", "show", "pbi", "-o", "json"]);
    let out = run(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["flow"], "client-credentials");
    assert_eq!(v["secrets"][0]["source"], "file");
    assert_eq!(v["secrets"][0]["name"], "/run/secrets/pbi");
    assert_eq!(v["settings"]["serve_resources"][0], "powerbi");

    // list marks the default.
    let mut cmd = sb.cmd();
    cmd.args(["profile", "list"]);
    let listed = text(&run(cmd).stdout);
    assert!(listed.lines().any(|l| l.starts_with("* dev ")), "{listed}");
    assert!(listed.lines().any(|l| l.starts_with("  pbi ") && l.contains("client-credentials")), "{listed}");

    // default: set, print, and removing the default profile unsets it.
    let mut cmd = sb.cmd();
    cmd.args(["profile", "default", "ci"]);
    assert!(run(cmd).status.success());
    let mut cmd = sb.cmd();
    cmd.args(["profile", "default"]);
    assert_eq!(text(&run(cmd).stdout), "ci\n");
    let after = std::fs::read_to_string(&cfg).unwrap();
    assert!(after.contains("default_profile = \"ci\"   # the one I use most"), "the comment stays on its line:\n{after}");

    let mut cmd = sb.cmd();
    cmd.args(["profile", "remove", "ci"]);
    let out = run(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("default_profile is now unset"), "{}", text(&out.stderr));
    let after = std::fs::read_to_string(&cfg).unwrap();
    assert!(!after.contains("[profiles.ci]") && !after.contains("default_profile"), "{after}");
    assert!(after.contains("# Signs me in on this laptop.\n[profiles.dev]\nflow = \"device-code\""), "{after}");

    let mut cmd = sb.cmd();
    cmd.args(["profile", "remove", "ci"]);
    assert_eq!(run(cmd).status.code(), Some(2), "removing a missing profile is 'profile not found'");
}

#[test]
fn a_new_file_is_private_and_a_symlink_stays_a_link() {
    let sb = Sandbox::new();
    let mut cmd = sb.cmd();
    cmd.args(["profile", "add", "me", "--flow", "device-code", "--default", "--no-prompt"]);
    let out = run(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cfg = sb.path("config.toml");
    let written = std::fs::read_to_string(&cfg).unwrap();
    assert!(written.starts_with("# entra-token profiles"), "{written}");
    assert!(written.contains("default_profile = \"me\"\n\n[profiles.me]\nflow = \"device-code\"\n"), "{written}");
    #[cfg(unix)]
    {
        assert_eq!(mode(&cfg), 0o600);
        // A dotfiles-managed config: the link survives, the target changes.
        let real = sb.path("dotfiles/entra.toml");
        std::fs::create_dir_all(real.parent().unwrap()).unwrap();
        std::fs::rename(&cfg, &real).unwrap();
        std::os::unix::fs::symlink(&real, &cfg).unwrap();
        let mut cmd = sb.cmd();
        cmd.args(["profile", "add", "other", "--flow", "azure-cli", "--no-prompt"]);
        assert!(run(cmd).status.success());
        assert!(std::fs::symlink_metadata(&cfg).unwrap().file_type().is_symlink());
        assert!(std::fs::read_to_string(&real).unwrap().contains("[profiles.other]"));
    }
}

#[test]
fn secrets_are_refused_in_argv_and_never_shown() {
    let sb = Sandbox::new();
    sb.write_config(USER_FILE);
    let before = std::fs::read_to_string(sb.path("config.toml")).unwrap();

    // A secret value in argv is refused without echoing it, and nothing is written.
    let mut cmd = sb.cmd();
    cmd.args(["profile", "add", "x", "--flow", "client-credentials", "--tenant", "t", "--client-id", "c", "--client-secret", "Sup3r~Secret.Value"]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("never taken on the command line") && err.contains("--client-secret-env"), "{err}");
    assert!(!err.contains("Sup3r~Secret.Value"), "the value must not be echoed: {err}");

    // A secret pasted where a variable name belongs is caught too.
    let mut cmd = sb.cmd();
    cmd.args(["profile", "add", "x", "--flow", "client-credentials", "--tenant", "t", "--client-id", "c", "--client-secret-env", "Sup3r~Secret.Value"]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1));
    assert!(!text(&out.stderr).contains("Sup3r~Secret.Value"), "{}", text(&out.stderr));

    // A profile that would not resolve is not written.
    let mut cmd = sb.cmd();
    cmd.args(["profile", "add", "x", "--flow", "client-credentials", "--tenant", "t", "--no-prompt"]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("needs client_id") && text(&out.stderr).contains("nothing was written"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(sb.path("config.toml")).unwrap(), before);

    // show names where the secret is, says whether it is there, never prints it.
    let mut cmd = sb.cmd();
    cmd.env("CI_SECRET", "Sup3r~Secret.Value").args(["profile", "show", "ci"]);
    let out = run(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("environment variable CI_SECRET (set)"), "{shown}");
    assert!(shown.contains("values never are"), "{shown}");
    assert!(!shown.contains("Sup3r~Secret.Value") && !text(&out.stderr).contains("Sup3r~Secret.Value"));
    let mut cmd = sb.cmd();
    cmd.env("CI_SECRET", "Sup3r~Secret.Value").args(["profile", "show", "ci", "-o", "json"]);
    let out = run(cmd);
    assert!(!text(&out.stdout).contains("Sup3r~Secret.Value"));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["secrets"][0], serde_json::json!({"what":"client secret","source":"env","name":"CI_SECRET","present":true}));

    // --update swaps the secret source and keeps the comment beside the tenant.
    let mut cmd = sb.cmd();
    cmd.args(["profile", "add", "ci", "--update", "--client-secret-file", "/run/secrets/ci"]);
    let out = run(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let after = std::fs::read_to_string(sb.path("config.toml")).unwrap();
    assert!(after.contains("tenant = \"contoso.test\"          # aligned on purpose") && !after.contains("CI_SECRET") && after.contains("client_secret_file = \"/run/secrets/ci\""), "{after}");
    // A secret file that is not there is said at once, not at the first token request.
    assert!(text(&out.stderr).contains("/run/secrets/ci does not exist"), "{}", text(&out.stderr));
    let secret = sb.write_file("ci-secret", "s");
    let mut cmd = sb.cmd();
    cmd.args(["profile", "add", "ci", "--update", "--client-secret-file"]).arg(&secret);
    let out = run(cmd);
    assert!(out.status.success() && !text(&out.stderr).contains("does not exist"), "{}", text(&out.stderr));
}

#[test]
fn a_broken_config_is_reported_not_overwritten() {
    let sb = Sandbox::new();
    sb.write_config("[profiles.dev\nflow = 1\n");
    let mut cmd = sb.cmd();
    cmd.args(["profile", "add", "x", "--flow", "device-code", "--no-prompt"]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("config.toml"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(sb.path("config.toml")).unwrap(), "[profiles.dev\nflow = 1\n");
}

/// At a terminal, `add` asks (questions on the terminal, answers typed there) for what the
/// flow needs and no flag gave. Driven through a real pseudo-terminal (util-linux `script`).
// Unix only: needs a pseudo-terminal from util-linux `script`.
#[cfg(unix)]
#[test]
fn add_asks_a_person_at_a_terminal() {
    if std::process::Command::new("script").arg("--version").output().is_err() {
        support::skip::missing_tool("script (util-linux)", "the terminal check");
        return;
    }
    let sb = Sandbox::new();
    let bin = env!("CARGO_BIN_EXE_entra-token");
    let mut cmd = sb.tool("script");
    cmd.env("TERM", "dumb").args(["-qec", &format!("{bin} profile add pipeline"), "/dev/null"]);
    // flow, tenant, client id, a pasted secret (refused), then the variable name, no resource.
    let out = support::run_with_stdin(cmd, "client-credentials\ncontoso.test\n88888888-8888-8888-8888-888888888888\nabc~Pasted.Secret-Value\nPIPE_SECRET\n\n");
    let screen = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{screen}");
    for q in ["Flow (", "Tenant (GUID or domain)", "Application (client) id", "never the secret itself", "do not paste the secret here", "Default resource"] {
        assert!(screen.contains(q), "the terminal never showed {q:?}:\n{screen}");
    }
    let written = std::fs::read_to_string(sb.path("config.toml")).unwrap();
    assert!(written.contains("[profiles.pipeline]\ntenant = \"contoso.test\"\nclient_id = \"88888888-8888-8888-8888-888888888888\"\nflow = \"client-credentials\"\nclient_secret_env = \"PIPE_SECRET\"\n"), "{written}");
    assert!(!written.contains("Pasted"), "{written}");
}

/// The people keys `profile add` takes (username, password_env/password_file, login_hint):
/// a password profile written from flags signs in as it is, against the mock authority.
#[test]
fn a_password_profile_from_flags_signs_in() {
    let mock = support::MockAuthority::start();
    mock.add_tenant("contoso.test");
    mock.add_user("ann@contoso.test", "correct horse");
    let sb = Sandbox::new();
    let mut cmd = sb.cmd();
    cmd.args(["profile", "add", "legacy", "--flow", "password", "--tenant", "contoso.test", "--username", "ann@contoso.test", "--password-env", "ANN_PASSWORD"])
        .args(["--login-hint", "ann@contoso.test", "--authority", &mock.url(), "--no-prompt"]);
    let out = run(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("remember to set ANN_PASSWORD"), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(sb.path("config.toml")).unwrap();
    assert!(written.contains("username = \"ann@contoso.test\"\npassword_env = \"ANN_PASSWORD\"\nlogin_hint = \"ann@contoso.test\"\n"), "{written}");

    let mut cmd = sb.cmd();
    cmd.env("ANN_PASSWORD", "correct horse").args(["get-token", "-p", "legacy", "-r", "graph", "-o", "json"]);
    let out = run(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["account"], "ann@contoso.test");
    assert_eq!(mock.grant_count("password"), 1);

    // A password pasted where its variable's name belongs is refused, not echoed or written.
    let before = std::fs::read_to_string(sb.path("config.toml")).unwrap();
    let mut cmd = sb.cmd();
    cmd.args(["profile", "add", "legacy", "--update", "--password-env", "correct horse!"]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--password-env takes the NAME") && !text(&out.stderr).contains("correct horse"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(sb.path("config.toml")).unwrap(), before);

    // --update to a password file drops the variable: one source at a time.
    let mut cmd = sb.cmd();
    cmd.args(["profile", "add", "legacy", "--update", "--password-file", "/run/secrets/pw"]);
    assert!(run(cmd).status.success());
    let after = std::fs::read_to_string(sb.path("config.toml")).unwrap();
    assert!(after.contains("password_file = \"/run/secrets/pw\"") && !after.contains("password_env"), "{after}");
}

#[test]
fn subscription_and_storage_from_flags_reach_the_az_stand_in() {
    let mock = support::MockAuthority::start();
    mock.add_tenant("contoso.test");
    mock.add_app("44444444-4444-4444-4444-444444444444", Some("app-secret"));
    let sb = Sandbox::new();
    sb.write_config(USER_FILE);
    let mut cmd = sb.cmd();
    cmd.args(["profile", "add", "prod", "--flow", "client-credentials", "--tenant", "contoso.test", "--client-id", "44444444-4444-4444-4444-444444444444"])
        .args(["--client-secret-env", "PROD_SECRET", "--authority", &mock.url(), "--subscription", "prod-subscription", "--storage", "file", "--no-prompt"]);
    let out = run(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(sb.path("config.toml")).unwrap();
    assert!(written.contains("subscription = \"prod-subscription\"\nstorage = \"file\"\n"), "{written}");
    // The az stand-in picks the profile by its subscription, over the default profile.
    let mut cmd = sb.cmd();
    cmd.env("PROD_SECRET", "app-secret").args(["az", "account", "get-access-token", "--subscription", "prod-subscription"]);
    let out = run(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["subscription"].as_str(), v["tenant"].as_str()), (Some("prod-subscription"), Some(mock.tenant_id("contoso.test").as_str())));
    // An unknown storage is refused before anything is written.
    let mut cmd = sb.cmd();
    cmd.args(["profile", "add", "prod", "--update", "--storage", "cloud"]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(sb.path("config.toml")).unwrap(), written);
}

/// A client id that is not a GUID (an app's name, an App ID URI) would fail only at the first
/// sign-in, as AADSTS700016; `profile add` says so where it was typed, and how to fix it.
#[test]
fn a_client_id_that_is_no_guid_is_named_where_it_was_typed() {
    let sb = Sandbox::new();
    let mut c = sb.cmd();
    c.args(["profile", "add", "pbi", "--tenant", "contoso.test", "--flow", "client-credentials", "--client-id", "my-powerbi-app", "--client-secret-env", "PBI_SECRET"]);
    let out = run(c);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("--client-id 'my-powerbi-app' is not a GUID") && err.contains("profile add pbi --update --client-id GUID"), "{err}");
    let mut c = sb.cmd();
    c.args(["profile", "add", "ok", "--tenant", "contoso.test", "--flow", "client-credentials", "--client-id", "33333333-3333-3333-3333-333333333333", "--client-secret-env", "PBI_SECRET"]);
    let out = run(c);
    assert!(out.status.success() && !text(&out.stderr).contains("not a GUID"), "{}", text(&out.stderr));
}
