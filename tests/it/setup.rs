//! `entra-token setup kubectl|git|cargo|links`: what it prints, what `--apply` writes
//! (with a 0600 backup first), and that the real tools then work with what was written:
//! kubelogin users converted and used by the real kubectl, git answering from the global
//! config setup wrote.

// On Windows the helpers and imports of this suite's Unix-only tests go unused.
#![cfg_attr(windows, allow(unused_imports, dead_code))]

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use crate::support::{CcProfile, MockAuthority, Sandbox, TestCa, jwt_claims, run, run_with_stdin, stderr, text};

const TENANT: &str = "contoso.test";
const APP: &str = "66666666-6666-6666-6666-666666666666";
const SECRET: &str = "spn~secret";
use crate::kubectl::KUBECTL;

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "failed ({:?}): {}", out.status.code(), text(&out.stderr));
    text(&out.stdout)
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// The backups setup left beside `file`.
fn backups(file: &Path) -> Vec<PathBuf> {
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(&format!("{name}.entra-token-backup-")))
        .collect()
}

#[cfg(unix)]
use crate::kubectl::kubectl_missing;

// Unix only: drives the real kubectl.
#[cfg(unix)]
#[test]
fn from_kubelogin_converts_users_and_the_real_kubectl_then_works() {
    if kubectl_missing() {
        return;
    }
    let mock = Arc::new(MockAuthority::start());
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some(SECRET));
    let ca = TestCa::new();
    let api = crate::kubectl::api_server(&ca, &mock);
    let sb = Sandbox::new();
    let ca_pem = ca.write_pem(&sb.path("ca"));
    sb.write_config("# my profiles\n[profiles.mine]\nflow = \"device-code\"\n");
    let kubeconfig = sb.write_file(
        "kube/config",
        format!(
            r#"apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster:
    server: {server}
    certificate-authority: {ca}
contexts:
- name: prod
  context: {{cluster: prod, user: spn-user}}
- name: dev
  context: {{cluster: prod, user: dc-user}}
current-context: prod
users:
- name: spn-user
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: kubelogin
      args: [get-token, --login, spn, --server-id, api://prod-cluster, --client-id, {APP}, --tenant-id, {TENANT}, --authority-host, {authority}, --client-secret, hunter2]
      env:
      - name: AAD_SERVICE_PRINCIPAL_CLIENT_SECRET
        value: {SECRET}
- name: dc-user
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: /usr/local/bin/kubelogin
      args: [get-token, --login, devicecode, --server-id, 6dae42f8-4368-4678-94ff-3960e28e3630, --client-id, 80faf920-1908-4b52-b5ef-a8e7bedfc67a, --tenant-id, {TENANT}]
- name: plain
  user:
    token: static
"#,
            server = api.server.url(),
            ca = ca_pem.display(),
            authority = mock.url(),
        ),
    );
    let original = std::fs::read_to_string(&kubeconfig).unwrap();
    let setup = |apply: bool| {
        let mut c = sb.cmd();
        c.env("KUBECONFIG", &kubeconfig).args(["setup", "kubectl", "--from-kubelogin"]);
        if apply {
            c.arg("--apply");
        }
        run(c)
    };

    // Printing changes nothing and shows the plan.
    let plan = ok(&setup(false));
    assert!(plan.contains("[profiles.\"aks-client-credentials-contosot\"]"), "{plan}");
    assert!(plan.contains("set-credentials spn-user") && plan.contains("set-credentials dc-user"), "{plan}");
    assert!(!plan.contains("hunter2"), "a secret from the old args must not be echoed");
    assert_eq!(std::fs::read_to_string(&kubeconfig).unwrap(), original);

    let out = setup(true);
    ok(&out);
    assert!(text(&out.stderr).contains("plain text"), "the plaintext secret is called out: {}", text(&out.stderr));
    let saved = backups(&kubeconfig);
    assert_eq!(saved.len(), 1);
    assert_eq!(std::fs::read_to_string(&saved[0]).unwrap(), original);
    #[cfg(unix)]
    assert_eq!(mode(&saved[0]), 0o600);
    let config = std::fs::read_to_string(sb.path("config.toml")).unwrap();
    assert!(config.starts_with("# my profiles\n"), "{config}");
    assert!(config.contains(&format!("authority = \"{}\"", mock.url())), "{config}");
    assert!(!config.contains("hunter2") && !std::fs::read_to_string(&kubeconfig).unwrap().contains("hunter2"));

    // The converted users, as kubectl now sees them.
    let mut c = sb.tool(KUBECTL);
    c.env("KUBECONFIG", &kubeconfig).args(["config", "view", "-o", "json"]);
    let view: serde_json::Value = serde_json::from_str(&ok(&run(c))).unwrap();
    let users = view["users"].as_array().unwrap();
    let exec = |name: &str| users.iter().find(|u| u["name"] == name).unwrap()["user"]["exec"].clone();
    let spn = exec("spn-user");
    assert_eq!(spn["command"], env!("CARGO_BIN_EXE_entra-token"));
    assert_eq!(spn["args"], serde_json::json!(["kubectl", "--profile", "aks-client-credentials-contosot", "--resource", "api://prod-cluster"]));
    assert_eq!(exec("dc-user")["args"], serde_json::json!(["kubectl", "--profile", "aks-device-code-contosot"]));

    // The real kubectl, through the converted user, gets a token for the same server id.
    let mut c = sb.tool(KUBECTL);
    c.env("KUBECONFIG", &kubeconfig).args(["get", "--raw", "/api/v1/namespaces/default/pods"]);
    ok(&run(c));
    let issued = mock.issued_access_tokens();
    assert_eq!(issued.len(), 1);
    assert_eq!(jwt_claims(&issued[0]).unwrap()["aud"], "api://prod-cluster");
    assert!(api.seen.lock().unwrap().contains(&format!("Bearer {}", issued[0])));

    // Running it again finds nothing left to convert and adds no profile.
    ok(&setup(true));
    assert_eq!(std::fs::read_to_string(sb.path("config.toml")).unwrap(), config);
}

// Unix only: `setup kubectl` runs the real kubectl.
#[cfg(unix)]
#[test]
fn setup_kubectl_prints_and_applies_a_user() {
    if kubectl_missing() {
        return;
    }
    let sb = Sandbox::new();
    sb.write_config("[profiles.aks]\nflow = \"device-code\"\n");
    let kubeconfig = sb.write_file("kube/config", "apiVersion: v1\nkind: Config\ncontexts:\n- name: c1\n  context: {cluster: x, user: old}\ncurrent-context: c1\n");
    let mut c = sb.cmd();
    c.env("KUBECONFIG", &kubeconfig).args(["setup", "kubectl", "-p", "aks", "--context", "c1"]);
    let printed = ok(&run(c));
    assert!(printed.contains("- name: \"entra-token-aks\""), "{printed}");
    assert!(printed.contains("set-context c1 --user=entra-token-aks"), "{printed}");

    let mut c = sb.cmd();
    c.env("KUBECONFIG", &kubeconfig).args(["setup", "kubectl", "-p", "aks", "--context", "c1", "--apply"]);
    ok(&run(c));
    let mut c = sb.tool(KUBECTL);
    c.env("KUBECONFIG", &kubeconfig).args(["config", "view", "-o", "json"]);
    let view: serde_json::Value = serde_json::from_str(&ok(&run(c))).unwrap();
    assert_eq!(view["users"][0]["user"]["exec"]["args"], serde_json::json!(["kubectl", "--profile", "aks"]));
    assert_eq!(view["users"][0]["user"]["exec"]["interactiveMode"], "IfAvailable");
    assert_eq!(view["contexts"][0]["context"]["user"], "entra-token-aks");
    assert_eq!(backups(&kubeconfig).len(), 1);

    let mut c = sb.cmd();
    c.args(["setup", "kubectl", "-p", "nope"]);
    assert_eq!(run(c).status.code(), Some(2), "an unknown profile is refused");

    // A context that does not exist (a fresh home): the user is written, no cluster-less
    // context is made, and the next step is said. One without a cluster: said too.
    let fresh = sb.path("fresh/config");
    let mut c = sb.cmd();
    c.env("KUBECONFIG", &fresh).args(["setup", "kubectl", "-p", "aks", "--context", "my-aks", "--apply"]);
    let out = run(c);
    let err = ok(&out).to_string() + &stderr(&out);
    assert!(err.contains("no context 'my-aks'") && err.contains("az aks get-credentials") && err.contains("set-context my-aks --user=entra-token-aks"), "{err}");
    let mut c = sb.tool(KUBECTL);
    c.env("KUBECONFIG", &fresh).args(["config", "view", "-o", "json"]);
    let view: serde_json::Value = serde_json::from_str(&ok(&run(c))).unwrap();
    assert_eq!(view["users"][0]["name"], "entra-token-aks", "{view}");
    assert!(view["contexts"].as_array().is_none_or(|c| c.is_empty()), "no context without a cluster: {view}");
    let mut c = sb.tool(KUBECTL);
    c.env("KUBECONFIG", &kubeconfig).args(["config", "set-context", "bare", "--user=old"]);
    ok(&run(c));
    let mut c = sb.cmd();
    c.env("KUBECONFIG", &kubeconfig).args(["setup", "kubectl", "-p", "aks", "--context", "bare", "--apply"]);
    let out = run(c);
    assert!(out.status.success() && stderr(&out).contains("context 'bare' has no cluster") && stderr(&out).contains("--cluster=CLUSTER"), "{}", stderr(&out));
}

// Unix only: drives the real git.
#[cfg(unix)]
#[test]
fn setup_git_applies_helpers_that_the_real_git_uses() {
    let git = Path::new("/usr/local/bin/git");
    if !git.exists() {
        support::skip::not_here("/usr/local/bin/git (>= 2.46) is not installed here");
        return;
    }
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some(SECRET));
    let sb = Sandbox::new();
    sb.write_config(
        &CcProfile::new("repos", &mock.url(), TENANT, APP)
            .secret_env("S")
            .with("resource = \"api://git.example.test\"\nurls = [\"https://git.example.test/org/\"]\n")
            .toml(),
    );
    let gitconfig = sb.write_file("gitconfig", "[credential]\n\thelper = store\n[user]\n\tname = me\n");
    let printed = ok(&run({
        let mut c = sb.cmd();
        c.env("GIT_CONFIG_GLOBAL", &gitconfig).args(["setup", "git"]);
        c
    }));
    assert!(printed.contains("git config --global --replace-all credential.https://git.example.test/org.helper ''"), "{printed}");
    assert!(printed.contains("credential.https://git.example.test/org.useHttpPath true"), "{printed}");
    assert_eq!(std::fs::read_to_string(&gitconfig).unwrap(), "[credential]\n\thelper = store\n[user]\n\tname = me\n");

    let mut c = sb.cmd();
    c.env("GIT_CONFIG_GLOBAL", &gitconfig).args(["setup", "git", "--apply"]);
    ok(&run(c));
    let mut c = sb.cmd();
    c.env("GIT_CONFIG_GLOBAL", &gitconfig).args(["setup", "git", "--apply"]);
    ok(&run(c));
    assert_eq!(backups(&gitconfig).len(), 2);
    #[cfg(unix)]
    assert_eq!(mode(&backups(&gitconfig)[0]), 0o600);
    let written = std::fs::read_to_string(&gitconfig).unwrap();
    assert!(written.contains("name = me"), "{written}");
    assert_eq!(written.matches("entra-token git").count(), 1, "applying twice is idempotent: {written}");

    let fill = |host_path: &str| {
        let mut c = sb.tool(git);
        c.env("GIT_CONFIG_GLOBAL", &gitconfig).env("GIT_CONFIG_NOSYSTEM", "1").env("GIT_TERMINAL_PROMPT", "0").env("S", SECRET).env_remove("GIT_ASKPASS").env_remove("SSH_ASKPASS");
        c.args(["credential", "fill"]);
        let (host, path) = host_path.split_once('/').unwrap();
        run_with_stdin(c, &format!("protocol=https\nhost={host}\npath={path}\n\n"))
    };
    let out = fill("git.example.test/org/repo.git");
    let so = ok(&out);
    let token = so.lines().find_map(|l| l.strip_prefix("password=")).expect("a password").to_string();
    assert!(mock.issued_access_tokens().contains(&token));
    // Elsewhere git's own `store` helper still applies (and has nothing): no token of ours.
    let out = fill("git.example.test/other/repo.git");
    assert!(!out.status.success());
    assert_eq!(mock.issued_access_tokens().len(), 1);
}

/// A profile claiming a URL of a server that is not Azure DevOps, with no `resource`: the
/// front ends would refuse to send it a token, and setup says so before the first fetch.
#[test]
fn setup_warns_when_a_claimed_url_would_get_no_token() {
    let sb = Sandbox::new();
    sb.write_config(
        "[profiles.repos]\ntenant = \"t\"\nclient_id = \"c\"\nurls = [\"https://git.example.test/org/\", \"https://dev.azure.com/contoso/\"]\n\
         [profiles.feed]\ntenant = \"t\"\nclient_id = \"c\"\nresource = \"api://feed\"\nurls = [\"https://feed.example.test/\"]\n",
    );
    let gitconfig = sb.write_file("gitconfig", "");
    for args in [&["setup", "git"][..], &["setup", "cargo", "--registry", "feed=https://feed.example.test/index/"], &["setup", "bazel"]] {
        let mut c = sb.cmd();
        c.env("GIT_CONFIG_GLOBAL", &gitconfig).args(args);
        let out = run(c);
        ok(&out);
        let err = stderr(&out);
        assert!(err.contains("profile 'repos' claims https://git.example.test/org/ but names no `resource`"), "{args:?}: {err}");
        // Azure DevOps has its default, and a profile naming its resource is fine.
        assert!(!err.contains("dev.azure.com") && !err.contains("feed.example.test"), "{args:?}: {err}");
    }
}

#[test]
fn setup_cargo_merges_into_the_existing_config() {
    let sb = Sandbox::new();
    sb.write_config("[profiles.feed]\nflow = \"device-code\"\nurls = [\"https://pkgs.example.test/org/\"]\n");
    let cfg = sb.write_file("cargo-home/config.toml", "# tuned by hand\n[net]\nretry = 5\n\n[registry]\ndefault = \"crates-io\"\n");
    let cmd = |extra: &[&str]| {
        let mut c = sb.cmd();
        c.env("CARGO_HOME", sb.path("cargo-home")).args(["setup", "cargo"]).args(extra);
        run(c)
    };
    let printed = ok(&cmd(&["--registry", "feed=https://pkgs.example.test/org/feed/"]));
    assert!(printed.contains("global-credential-providers = [\"cargo:token\", "), "{printed}");
    assert!(printed.contains("index = \"sparse+https://pkgs.example.test/org/feed/\""), "{printed}");

    ok(&cmd(&["--registry", "feed=https://pkgs.example.test/org/feed/", "--apply"]));
    ok(&cmd(&["--apply"]));
    let written = std::fs::read_to_string(&cfg).unwrap();
    assert!(written.starts_with("# tuned by hand\n"), "{written}");
    let v: toml::Table = toml::from_str(&written).unwrap();
    let exe = env!("CARGO_BIN_EXE_entra-token");
    let exe = std::fs::canonicalize(exe).unwrap().to_string_lossy().into_owned();
    assert_eq!(v["net"]["retry"].as_integer(), Some(5));
    assert_eq!(v["registry"]["default"].as_str(), Some("crates-io"));
    assert_eq!(v["registry"]["global-credential-providers"], toml::Value::Array(vec!["cargo:token".into(), exe.clone().into()]));
    assert_eq!(v["registries"]["feed"]["credential-provider"], toml::Value::Array(vec![exe.into()]));
    assert_eq!(backups(&cfg).len(), 2);

    let mut c = sb.cmd();
    c.env("CARGO_HOME", sb.path("cargo-home")).args(["setup", "cargo", "--registry", "feed=http://plain/"]);
    assert_eq!(run(c).status.code(), Some(1));
}

// Unix only: symbolic links and an sh script (Windows' `NAME.exe` links: tests/it/windows.rs).
#[cfg(unix)]
#[test]
fn setup_links_creates_every_multicall_name_once() {
    let sb = Sandbox::new();
    let dir = sb.path("bin");
    let mut c = sb.cmd();
    c.args(["setup", "links", "--apply"]).arg(&dir);
    ok(&run(c));
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_entra-token")).unwrap();
    for name in ["git-credential-entra-token", "az", "azd", "docker-credential-entra-token", "entra-token-bazel"] {
        assert_eq!(std::fs::canonicalize(dir.join(name)).unwrap(), exe, "{name}");
    }
    // A foreign file of the same name is not clobbered without --force.
    std::fs::remove_file(dir.join("az")).unwrap();
    std::fs::write(dir.join("az"), "#!/bin/sh\n").unwrap();
    let mut c = sb.cmd();
    c.args(["setup", "links", "--apply"]).arg(&dir);
    assert_eq!(run(c).status.code(), Some(1));
    let mut c = sb.cmd();
    c.args(["setup", "links", "--apply", "--force", "--only", "az"]).arg(&dir);
    ok(&run(c));
    assert_eq!(std::fs::canonicalize(dir.join("az")).unwrap(), exe);
}

/// The directories setup puts its links in (`setup links|az|azd|nuget`, the `keyring` of
/// `setup pip|uv`) go on PATH: whoever can change them decides what runs as the user's
/// credential helper. A link planted in a directory others can change (sticky `/tmp`), or
/// a directory on the way others may write, is refused with nothing created; a new
/// directory is the user's alone.
// Unix only: symbolic links and modes.
#[cfg(unix)]
#[test]
fn setup_never_puts_its_links_where_others_can_change_them() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    sb.write_config("[profiles.feed]\nflow = \"client-credentials\"\nclient_id = \"11111111-1111-1111-1111-111111111111\"\nclient_secret_env = \"FEED_SECRET\"\nurls = [\"https://pypi.example.test/\"]\n");
    let shared = sb.path("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    // Another user's `bin` in /tmp, as a link to a directory its planter can write.
    let planted = sb.path("planted");
    std::fs::create_dir(&planted).unwrap();
    std::os::unix::fs::symlink(&planted, shared.join("bin")).unwrap();
    let open = shared.join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    for dir in [shared.join("bin"), open.join("bin")] {
        let links = || {
            let mut c = sb.cmd();
            c.args(["setup", "links", "--apply", "--only", "git-credential-entra-token"]).arg(&dir);
            run(c)
        };
        let pip = || {
            let mut c = sb.cmd();
            c.args(["setup", "pip", "--apply", "--index-url", "https://pypi.example.test/simple/", "--config"]).arg(sb.path("pip.conf")).arg("--dir").arg(&dir);
            run(c)
        };
        for out in [links(), pip()] {
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{}: {err}", dir.display());
            assert!(err.contains("others can change") || err.contains("let others change"), "{err}");
        }
        assert!(!open.join("bin").exists() && std::fs::read_dir(&planted).unwrap().next().is_none(), "a link was made where others can change it");
        assert!(!sb.path("pip.conf").exists(), "pip.conf names a keyring others could replace");
    }
    // A new directory of the user's own: made 0700, the link in it.
    let mine = sb.path("home-bin/bin");
    let mut c = sb.cmd();
    c.args(["setup", "links", "--apply", "--only", "git-credential-entra-token"]).arg(&mine);
    ok(&run(c));
    assert_eq!(mode(&mine), 0o700);
    assert!(mine.join("git-credential-entra-token").exists());
}

/// The config files setup writes (pip.conf here, every tool's goes through the same write;
/// git's, which git writes)
/// go where the user keeps them: a missing directory is made the user's alone (0700, not
/// create_dir_all's umask), and a link planted in a directory others can change (sticky
/// `/tmp`) is refused with nothing written through it, while the user's own link in a
/// directory of theirs (a dotfile manager's) is still written through.
// Unix only: symbolic links and modes.
#[cfg(unix)]
#[test]
fn setup_writes_configs_only_where_the_user_decides() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    sb.write_config("[profiles.feed]\nflow = \"client-credentials\"\nclient_id = \"11111111-1111-1111-1111-111111111111\"\nclient_secret_env = \"FEED_SECRET\"\nurls = [\"https://pypi.example.test/\"]\n");
    let pip = |config: &Path| {
        let mut c = sb.cmd();
        c.args(["setup", "pip", "--apply", "--index-url", "https://pypi.example.test/simple/", "--config"]).arg(config).arg("--dir").arg(sb.path("bin"));
        run(c)
    };
    // A missing directory: made private.
    let fresh = sb.path("home/.config/pip-new/pip.conf");
    ok(&pip(&fresh));
    assert!(std::fs::read_to_string(&fresh).unwrap().contains("pypi.example.test"));
    assert_eq!(mode(fresh.parent().unwrap()), 0o700, "setup made the config's directory with the umask's mode");
    // Another user's link in a sticky shared directory: refused, nothing written there.
    let shared = sb.path("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let planted = sb.path("planted.conf");
    std::fs::write(&planted, "").unwrap();
    std::os::unix::fs::symlink(&planted, shared.join("pip.conf")).unwrap();
    let out = pip(&shared.join("pip.conf"));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("others can change"), "{err}");
    assert_eq!(std::fs::read_to_string(&planted).unwrap(), "", "setup wrote through a link planted where others can change it");
    // git's global config (git itself writes it, through links): the same rule.
    std::os::unix::fs::symlink(&planted, shared.join("gitconfig")).unwrap();
    let mut c = sb.cmd();
    c.env("GIT_CONFIG_GLOBAL", shared.join("gitconfig")).args(["setup", "git", "--apply", "--url", "https://pypi.example.test/"]);
    let out = run(c);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&planted).unwrap(), "", "setup git wrote through a link planted where others can change it");
    // The user's own link in a directory of theirs: written through to its target.
    let dotfiles = sb.path("home/dotfiles/pip.conf");
    std::fs::create_dir_all(dotfiles.parent().unwrap()).unwrap();
    std::fs::write(&dotfiles, "").unwrap();
    let own = sb.path("home/pip.conf");
    std::os::unix::fs::symlink(&dotfiles, &own).unwrap();
    ok(&pip(&own));
    assert!(std::fs::symlink_metadata(&own).unwrap().file_type().is_symlink(), "the user's link was replaced");
    assert!(std::fs::read_to_string(&dotfiles).unwrap().contains("pypi.example.test"));
}
