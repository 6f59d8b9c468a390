//! Token safety: with `-vv`, through every flow and front end this build has, no access
//! token, refresh token, client secret or assertion appears anywhere except the protocol
//! answer on stdout and the files meant to hold it (cache entries, `--file`). Every file
//! we write is 0600 (directories 0700) even under umask 000 (the modes and the umask are
//! checked on Unix; Windows' access lists have their own tests in `fs` and `windows`).


#[cfg(unix)]
use std::os::unix::fs::PermissionsExt;
#[cfg(unix)]
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use crate::support::{Fault, MockAuthority, Sandbox, run_with_stdin};

const TENANT: &str = "contoso.test";
const APP: &str = "88888888-8888-8888-8888-888888888888";
const SECRET: &str = "Xq8~client.secret_VALUE-1234567890";
const USER: &str = "ann@contoso.test";
const PASSWORD: &str = "Tr0ub4dor&3-password";

fn setup() -> (MockAuthority, Sandbox) {
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some(SECRET));
    mock.add_user(USER, PASSWORD);
    let sb = Sandbox::new();
    sb.write_file("secret.txt", SECRET);
    sb.write_config(&format!(
        "[profiles.ci]\nauthority = \"{url}\"\ntenant = \"{TENANT}\"\nclient_id = \"{APP}\"\nflow = \"client-credentials\"\nclient_secret_env = \"CI_SECRET\"\nurls = [\"https://aks.example/\"]\n\
         [profiles.v1]\nauthority = \"{url}\"\ntenant = \"{TENANT}\"\nclient_id = \"{APP}\"\nflow = \"client-credentials\"\nendpoint = \"v1\"\nclient_secret_file = '{file}'\n\
         [profiles.ado]\nauthority = \"{url}\"\ntenant = \"{TENANT}\"\nclient_id = \"{APP}\"\nflow = \"client-credentials\"\nclient_secret_env = \"CI_SECRET\"\nurls = [\"https://dev.azure.com/contoso/\", \"https://registry.contoso.test/\"]\nresource = \"499b84ac-1321-427f-aa17-267ca6975798\"\n\
         [profiles.me]\nauthority = \"{url}\"\ntenant = \"{TENANT}\"\nflow = \"password\"\nusername = \"{USER}\"\npassword_env = \"ANN_PASSWORD\"\nstorage = \"file\"\n",
        url = mock.url(),
        file = sb.path("secret.txt").display()
    ));
    (mock, sb)
}

/// `cmd` with -vv, the secret in the environment, and umask 000.
fn verbose(sb: &Sandbox, args: &[&str]) -> Command {
    let mut c = sb.cmd();
    // -vv, and the same through the environment for the runs whose argv belongs to a tool.
    c.env("CI_SECRET", SECRET).env("ENTRA_TOKEN_VERBOSE", "2");
    if args.first().is_some_and(|a| !a.starts_with("--cargo")) {
        c.arg("-vv");
    }
    c.args(args);
    // SAFETY: umask is async-signal-safe and touches only the child's own state.
    // Unix only: file modes and the umask are POSIX.
    #[cfg(unix)]
    unsafe {
        c.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    c
}

/// Every value that must stay secret: the client secret and each token the mock issued,
/// whole and as its distinctive tail (a log that truncates the front still leaks).
fn secrets(mock: &MockAuthority) -> Vec<(String, String)> {
    let mut v = vec![("client secret".to_string(), SECRET.to_string())];
    for t in mock.issued_access_tokens() {
        v.push(("access token".into(), t.clone()));
        v.push(("access token tail".into(), t[t.len().saturating_sub(24)..].to_string()));
    }
    for t in mock.live_refresh_tokens() {
        v.push(("refresh token".into(), t));
    }
    v.push(("password".into(), PASSWORD.to_string()));
    v
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return out };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Files that may hold a value of this kind: access tokens in cache entries and the
/// `--file` outputs the test asked for, refresh tokens in the refresh-token store; secrets
/// and passwords nowhere.
fn may_hold(kind: &str, p: &Path, sb: &Sandbox) -> bool {
    let name = p.file_name().unwrap().to_string_lossy();
    let cached = |prefix: &str| p.starts_with(sb.path("cache")) && name.starts_with(prefix) && name.ends_with(".json");
    match kind {
        "access token" | "access token tail" => cached("at-") || p.starts_with(sb.path("out")),
        "refresh token" => cached("rt-"),
        _ => false,
    }
}

struct Run {
    what: String,
    out: Output,
    /// stdout is this protocol's answer and may hold the access token.
    stdout_may_hold_token: bool,
}

fn check(mock: &MockAuthority, sb: &Sandbox, runs: &[Run]) {
    let secrets = secrets(mock);
    assert!(secrets.len() > 2, "no tokens were issued; nothing was checked");
    for r in runs {
        let err = String::from_utf8_lossy(&r.out.stderr);
        let out = String::from_utf8_lossy(&r.out.stdout);
        assert!(err.contains("entra-token: "), "{}: -vv traced nothing, so this proved nothing", r.what);
        for (kind, s) in &secrets {
            assert!(!err.contains(s.as_str()), "{}: {kind} on stderr:\n{err}", r.what);
            if !kind.starts_with("access token") || !r.stdout_may_hold_token {
                assert!(!out.contains(s.as_str()), "{}: {kind} on stdout:\n{out}", r.what);
            }
        }
    }
    for f in files_under(sb.dir.path()) {
        if f == sb.path("secret.txt") || f == sb.path("config.toml") {
            continue;
        }
        let bytes = std::fs::read(&f).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        for (kind, s) in &secrets {
            if !may_hold(kind, &f, sb) {
                assert!(!text.contains(s.as_str()), "{kind} written to {}", f.display());
            }
        }
    }
}

/// Every file and directory entra-token created is private, whatever the umask.
// Unix only: POSIX file modes.
#[cfg(unix)]
fn check_modes(sb: &Sandbox) {
    let mut checked = 0;
    for dir in [sb.path("cache"), sb.path("out")] {
        if !dir.exists() {
            continue;
        }
        let m = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        if dir == sb.path("cache") {
            assert_eq!(m, 0o700, "{} is {m:o}", dir.display());
        }
        for f in files_under(&dir) {
            let m = std::fs::symlink_metadata(&f).unwrap().permissions().mode() & 0o777;
            assert_eq!(m, 0o600, "{} is {m:o} under umask 000", f.display());
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} files were checked");
}

#[test]
fn verbose_runs_leak_nothing_and_write_only_private_files() {
    let (mock, sb) = setup();
    std::fs::create_dir(sb.path("out")).unwrap();
    // Unix only: POSIX file modes.
    #[cfg(unix)]
    std::fs::set_permissions(sb.path("out"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut runs = Vec::new();
    let mut go = |what: &str, args: &[&str], stdin: &str, answer: bool| {
        let out = run_with_stdin(verbose(&sb, args), stdin);
        assert_eq!(out.status.code(), Some(0), "{what}: {}", String::from_utf8_lossy(&out.stderr));
        runs.push(Run { what: what.into(), out, stdout_may_hold_token: answer });
    };
    // Client credentials, v2 and v1 (secret from a file), cold and cached, every output.
    for o in ["token", "json", "yaml", "header"] {
        go(&format!("get-token -o {o}"), &["get-token", "-p", "ci", "-r", "graph", "-o", o], "", true);
    }
    go("get-token --force", &["get-token", "-p", "ci", "-r", "graph", "--force"], "", true);
    go("get-token v1", &["get-token", "-p", "v1", "-r", "arm"], "", true);
    go("get-token --no-cache", &["get-token", "-p", "v1", "-r", "keyvault", "--no-cache"], "", true);
    let file = sb.path("out/token.txt");
    go("get-token --file", &["get-token", "-p", "ci", "-r", "storage", "--file", file.to_str().unwrap()], "", false);
    let jfile = sb.path("out/token.json");
    go("get-token --file -o json", &["get-token", "-p", "ci", "-r", "storage", "-o", "json", "--file", jfile.to_str().unwrap()], "", false);
    go("native", &[], r#"{"resource":"powerbi","profile":"ci"}"#, true);
    go("native cached", &[], r#"{"resource":"powerbi","profile":"ci"}"#, true);
    go("native scopes", &[], r#"{"scopes":["https://graph.microsoft.com/.default"],"profile":"v1","force_refresh":true}"#, true);
    let mut env = verbose(&sb, &["get-token", "-r", "sql"]);
    env.env("AZURE_TENANT_ID", TENANT).env("AZURE_CLIENT_ID", APP).env("AZURE_CLIENT_SECRET", SECRET).env("AZURE_AUTHORITY_HOST", mock.url());
    let out = run_with_stdin(env, "");
    assert_eq!(out.status.code(), Some(0), "env profile: {}", String::from_utf8_lossy(&out.stderr));
    runs.push(Run { what: "env profile".into(), out, stdout_may_hold_token: true });
    // Failures are traced too: a refused secret, a server error, garbage answers.
    let mut fail = |what: &str, args: &[&str], stdin: &str| {
        let out = run_with_stdin(verbose(&sb, args), stdin);
        assert_ne!(out.status.code(), Some(0), "{what} should fail");
        runs.push(Run { what: what.into(), out, stdout_may_hold_token: false });
    };
    mock.push_fault(Fault::Truncated200);
    fail("truncated answer", &["get-token", "-p", "ci", "-r", "fabric"], "");
    mock.push_fault(Fault::Html200);
    fail("html answer", &[], r#"{"resource":"fabric","profile":"ci"}"#);
    for _ in 0..3 {
        mock.push_fault(Fault::Status { status: 500, body: format!(r#"{{"error":"server_error","error_description":"echo {SECRET}"}}"#), retry_after: Some(0) });
    }
    fail("500 echoing the secret", &["get-token", "-p", "ci", "-r", "fabric"], "");
    let mut bad = sb.cmd();
    bad.env("CI_SECRET", "wrong-secret-value").arg("-vv").args(["get-token", "-p", "ci", "-r", "fabric"]);
    let out = run_with_stdin(bad, "");
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("wrong-secret-value"), "a rejected secret was printed");
    runs.push(Run { what: "wrong secret".into(), out, stdout_may_hold_token: false });

    // The --file outputs hold exactly a token the authority issued.
    let issued = mock.issued_access_tokens();
    assert!(issued.iter().any(|t| std::fs::read_to_string(&file).unwrap().trim() == t));
    check(&mock, &sb, &runs);
    #[cfg(unix)]
    check_modes(&sb);
}

#[test]
fn verbose_runs_through_every_protocol_and_the_user_flows_leak_nothing() {
    let (mock, sb) = setup();
    let mut runs = Vec::new();
    let mut go = |what: &str, args: &[&str], envs: &[(&str, &str)], stdin: &str| {
        let mut c = verbose(&sb, args);
        c.env("ANN_PASSWORD", PASSWORD);
        for (k, v) in envs {
            c.env(k, v);
        }
        let out = run_with_stdin(c, stdin);
        assert_eq!(out.status.code(), Some(0), "{what}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!out.stdout.is_empty(), "{what}: no answer");
        runs.push(Run { what: what.into(), out, stdout_may_hold_token: true });
    };
    let exec_info = r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false,"cluster":{"server":"https://aks.example","config":{"profile":"ci","resource":"aks"}}}}"#;
    go("kubectl", &["kubectl"], &[("KUBERNETES_EXEC_INFO", exec_info)], "");
    go("git", &["git", "get"], &[], "capability[]=authtype\nprotocol=https\nhost=dev.azure.com\npath=contoso/p/_git/r\n\n");
    go("git password", &["git", "get"], &[], "protocol=https\nhost=dev.azure.com\npath=contoso/p/_git/r\n\n");
    let cargo = r#"{"v":1,"registry":{"index-url":"sparse+https://dev.azure.com/contoso/_packaging/f/Cargo/index/","name":"f"},"kind":"get","operation":"read","args":[]}"#;
    go("cargo", &["--cargo-plugin"], &[], &format!("{cargo}\n"));
    go("bazel", &["bazel", "get"], &[], r#"{"uri":"https://dev.azure.com/contoso/x"}"#);
    go("docker", &["docker", "get"], &[], "https://registry.contoso.test/\n");
    go("az", &["az", "account", "get-access-token", "--resource", "https://graph.microsoft.com"], &[("ENTRA_TOKEN_PROFILE", "ci")], "");
    go("azd", &["azd", "auth", "token", "--output", "json", "--scope", "https://graph.microsoft.com/.default"], &[("ENTRA_TOKEN_PROFILE", "ci")], "");
    // A person: the password grant, then the refresh token (rotated) for other resources.
    go("password sign-in", &["get-token", "-p", "me", "-r", "graph"], &[], "");
    go("refresh", &["get-token", "-p", "me", "-r", "storage"], &[], "");
    go("refresh native", &[], &[], r#"{"resource":"keyvault","profile":"me"}"#);
    go("status", &["status"], &[], "");
    assert!(mock.grant_count("refresh_token") >= 2, "the refresh path was not exercised");
    for r in &runs {
        if r.what == "status" {
            let out = String::from_utf8_lossy(&r.out.stdout);
            for t in mock.issued_access_tokens() {
                assert!(!out.contains(&t), "status printed a token");
            }
        }
    }
    check(&mock, &sb, &runs);
    // Every file written, refresh tokens included, is private under umask 000.
    #[cfg(unix)]
    for f in files_under(&sb.path("cache")) {
        let m = std::fs::symlink_metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(m, 0o600, "{} is {m:o} under umask 000", f.display());
    }
}

/// `setup … --apply` replaces a user's config only after a 0600 backup, and the files it
/// writes are private too, whatever the umask (here 000) and the old file's mode (0644).
// Unix only: POSIX file modes, and `setup kubectl` runs the real kubectl.
#[cfg(unix)]
#[test]
fn setup_apply_backups_and_configs_are_0600_under_umask_000() {
    let (_mock, sb) = setup();
    let home = sb.path("home");
    let old = |rel: &str, text: &str| {
        let p = home.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        p
    };
    let docker = old(".docker/config.json", "{\"auths\":{}}\n");
    let bazelrc = old(".bazelrc", "build --jobs=4\n");
    let cargo = old(".cargo/config.toml", "[net]\nretry = 3\n");
    let kube = old(".kube/config", "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n");
    let bin = sb.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let runs: Vec<Vec<String>> = vec![
        vec!["setup".into(), "docker".into(), "--registry".into(), "registry.contoso.test".into(), "--config".into(), docker.display().to_string(), "--dir".into(), bin.display().to_string(), "--apply".into()],
        vec!["setup".into(), "bazel".into(), "--pattern".into(), "dev.azure.com".into(), "--bazelrc".into(), bazelrc.display().to_string(), "--dir".into(), bin.display().to_string(), "--apply".into()],
        vec!["setup".into(), "cargo".into(), "--apply".into()],
        vec!["setup".into(), "kubectl".into(), "--kubeconfig".into(), kube.display().to_string(), "--apply".into()],
    ];
    for args in &runs {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut c = verbose(&sb, &args);
        c.env("CARGO_HOME", home.join(".cargo")).env("KUBECONFIG", &kube);
        let out = run_with_stdin(c, "");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut backups = 0;
    for f in files_under(&home) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let m = std::fs::symlink_metadata(&f).unwrap().permissions().mode() & 0o777;
        if name.contains("entra-token-backup") {
            backups += 1;
            assert_eq!(m, 0o600, "backup {} is {m:o}", f.display());
        }
    }
    assert!(backups >= 4, "only {backups} backups were made");
    // The kubeconfig is edited by kubectl itself (`kubectl config …`), which keeps its mode.
    for f in [&docker, &bazelrc, &cargo] {
        let m = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert!(m & 0o077 == 0, "{} was written {m:o}", f.display());
    }
}
