//! A newcomer's second hour, through the binary: the commands a person types after the
//! quick start, with the slips they make (a missing argument, a command without `--`,
//! `status -p NAME`), each answered with one `entra-token: ` line that names what was
//! missing and the help page to read, or simply done.

use crate::support::{Emulator, Sandbox, code, ok, one_line, run, stderr, stdout};

/// clap says which arguments are missing on the lines after its first one; the one line
/// keeps them, and points to the subcommand's own help.
#[test]
fn a_missing_argument_is_named_with_the_subcommand_s_help() {
    let sb = Sandbox::new();
    let out = run(sb.cmd_with(&["ssh", "config"]));
    assert_eq!(code(&out), 1);
    let err = one_line(&out);
    assert!(err.contains("not provided: <HOST>"), "{err}");
    assert!(err.contains("see `entra-token ssh config --help`"), "{err}");
    // A misspelt flag points to its subcommand's help too.
    let err = one_line(&run(sb.cmd_with(&["get-token", "--resouce", "graph"])));
    assert!(err.contains("'--resource'") && err.contains("see `entra-token get-token --help`"), "{err}");
}

/// `exec` takes its command after `--`; without it the line says so, with the command.
#[test]
fn exec_without_the_double_dash_says_where_the_command_goes() {
    let sb = Sandbox::new();
    let out = run(sb.cmd_with(&["exec", "-r", "devops", "sh", "-c", "true"]));
    assert_eq!(code(&out), 1);
    let err = one_line(&out);
    assert!(err.contains("after `--`") && err.contains("-- sh"), "{err}");
}

/// `status -p NAME` shows that profile alone (it used to be refused with an empty list of
/// "required arguments"); an unknown name is exit 2 with the name meant.
#[test]
fn status_for_one_profile() {
    let (_mock, sb) = crate::support::client_credentials_setup("contoso.test", "00000000-0000-0000-0000-0000000000c1", "s3cret");
    sb.write_config(&format!(
        "{}\n[profiles.other]\nflow = \"device-code\"\ntenant = \"contoso.test\"\n",
        std::fs::read_to_string(sb.path("config.toml")).unwrap()
    ));
    let mut c = sb.cmd_with(&["get-token", "-p", "ci", "-r", "graph"]);
    c.env("CI_SECRET", "s3cret");
    ok(run(c));
    let text = stdout(&ok(run(sb.cmd_with(&["status", "-p", "ci"]))));
    assert!(text.starts_with("ci  [client-credentials"), "{text}");
    assert!(text.contains("https://graph.microsoft.com"), "{text}");
    assert!(!text.contains("other") && !text.contains("default"), "only profile ci: {text}");
    let json: serde_json::Value = serde_json::from_str(&stdout(&ok(run(sb.cmd_with(&["status", "-p", "ci", "-o", "json"]))))).unwrap();
    assert_eq!(json["profiles"].as_array().map(Vec::len), Some(1), "{json}");
    let out = run(sb.cmd_with(&["status", "-p", "cj"]));
    assert_eq!(code(&out), 2);
    assert!(one_line(&out).contains("did you mean 'ci'?"), "{}", stderr(&out));
}

/// The README's order: start the emulator, add the `ci` profile, use it. Tomorrow the
/// emulator starts again (same state directory): `ci` is still there and still works,
/// and the emulator's own profiles are this start's.
#[test]
fn restarting_the_emulator_keeps_the_profiles_you_added() {
    let sb = Sandbox::new();
    let add_ci = |em: &Emulator| {
        ok(run(em.cmd(&sb, &["profile", "add", "ci", "--flow", "client-credentials", "--tenant", em.var("AZURE_TENANT_ID"), "--client-id", em.var("AZURE_CLIENT_ID"), "--client-secret-env", "AZURE_CLIENT_SECRET"])));
    };
    let token = |em: &Emulator, profile: &str| {
        run(em.cmd(&sb, &["get-token", "-p", profile, "-r", "graph", "--force"]))
    };
    let first = Emulator::start(&sb, &[]);
    add_ci(&first);
    ok(run(first.cmd(&sb, &["profile", "default", "ci"])));
    ok(token(&first, "ci"));
    drop(first);
    let second = Emulator::start(&sb, &[]);
    let out = token(&second, "ci");
    assert_eq!(code(&out), 0, "profile ci after a restart: {}", stderr(&out));
    let config = std::fs::read_to_string(second.var("ENTRA_TOKEN_CONFIG")).unwrap();
    assert!(config.starts_with(&format!("# Written by `entra-token emulator` for the emulator at {}", second.url())), "{config}");
    assert!(config.contains("default_profile = \"ci\""), "{config}");
    assert_eq!(config.matches("[profiles.ci]").count(), 1, "{config}");
    ok(token(&second, "app"));
}

/// A second emulator on the same state directory (the README line run again, in another
/// terminal) is refused in one line that says how to use the running one; before, it
/// replaced the CA file, so the first emulator's clients failed TLS, and took its pid file.
#[test]
fn a_second_emulator_on_the_same_state_leaves_the_first_one_working() {
    let sb = Sandbox::new();
    let first = Emulator::start(&sb, &[]);
    let mut again = sb.cmd_with(&["emulator", "--background", "--state-dir"]);
    again.arg(sb.path("emulator"));
    let out = run(again);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let err = one_line(&out);
    assert!(err.contains("already serves") && err.contains(first.url()) && err.contains("exports.sh"), "{err}");
    assert!(stdout(&out).is_empty(), "nothing for `eval` to run: {}", stdout(&out));
    ok(run(first.cmd(&sb, &["get-token", "-p", "app", "-r", "graph"])));
    // The exports file it names gives another shell the running emulator.
    let sh = std::fs::read_to_string(sb.path("emulator/exports.sh")).unwrap();
    assert!(sh.contains(&format!("export AZURE_AUTHORITY_HOST={}\n", first.url())), "{sh}");
}

/// `profile add` slips: a misspelt flow gets the flow meant, a service principal without a
/// tenant is refused before it is written (it could never get a token, and a file profile
/// never reads AZURE_TENANT_ID), a tenant URL keeps its own hint; nothing is written.
#[test]
fn profile_add_slips_say_what_to_pass() {
    let sb = Sandbox::new();
    let add = |args: &[&str]| {
        let mut c = sb.cmd_with(&["profile", "add"]);
        c.args(args).arg("--no-prompt").env("AZURE_TENANT_ID", "contoso.test").env("CI_SECRET", "s");
        run(c)
    };
    let out = add(&["x", "--flow", "client-credential", "--tenant", "contoso.test"]);
    assert_eq!(code(&out), 1);
    let err = one_line(&out);
    assert!(err.contains("did you mean 'client-credentials'?") && err.contains("nothing was written"), "{err}");
    assert!(!err.contains("missing flag"), "the flow was given, not missing: {err}");
    let out = add(&["sp", "--flow", "client-credentials", "--client-id", "00000000-0000-0000-0000-0000000000c1", "--client-secret-env", "CI_SECRET"]);
    assert_eq!(code(&out), 1);
    let err = one_line(&out);
    assert!(err.contains("pass --tenant") && err.contains("nothing was written"), "{err}");
    let out = add(&["t", "--flow", "device-code", "--tenant", "https://login.microsoftonline.com/contoso.test"]);
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(err.contains("use a tenant GUID, a domain"), "{err}");
    assert!(!sb.path("config.toml").exists(), "nothing was written");
    // A tenant-less service principal written by hand: the fix names the profile's own key,
    // not AZURE_TENANT_ID, which a file profile never reads.
    sb.write_config("[profiles.sp]\nflow = \"client-credentials\"\nclient_id = \"00000000-0000-0000-0000-0000000000c1\"\nclient_secret_env = \"CI_SECRET\"\n");
    let mut c = sb.cmd_with(&["get-token", "-p", "sp"]);
    c.env("CI_SECRET", "s").env("AZURE_TENANT_ID", "contoso.test");
    let out = run(c);
    assert_eq!(code(&out), 1);
    let err = one_line(&out);
    assert!(err.contains("profile add sp --update --tenant") && !err.contains("AZURE_TENANT_ID"), "{err}");
}

/// Resource slips: a `/.default` scope passed as the resource is that resource (it used to
/// ask for `…/.default/.default`), and a host without `https://` gets the URI suggested.
#[test]
fn a_scope_as_the_resource_and_a_bare_host() {
    let (mock, sb) = crate::support::client_credentials_setup("contoso.test", "00000000-0000-0000-0000-0000000000c1", "s3cret");
    let mut c = sb.cmd_with(&["get-token", "-p", "ci", "-r", "https://graph.microsoft.com/.default"]);
    c.env("CI_SECRET", "s3cret");
    ok(run(c));
    let asked = mock.requests().into_iter().rev().find_map(|r| r.form_get("scope").map(str::to_string)).expect("a token request");
    assert_eq!(asked, "https://graph.microsoft.com/.default", "the scope sent");
    let out = run(sb.cmd_with(&["get-token", "-p", "ci", "-r", "management.azure.com"]));
    assert_eq!(code(&out), 1);
    assert!(one_line(&out).contains("did you mean 'https://management.azure.com'?"), "{}", stderr(&out));
}

/// `setup az --apply` into a directory not on PATH names what will not be found (az), not
/// "git, docker and bazel".
#[test]
fn a_link_directory_off_path_names_the_links() {
    let sb = Sandbox::new();
    let out = run(sb.cmd_with(&["setup", "links", sb.path("nowhere").to_str().unwrap(), "--only", "git-credential-entra-token", "--apply"]));
    let err = stderr(&ok(out));
    assert!(err.contains("nothing will find git-credential-entra-token"), "{err}");
}

/// Two terminals run `login` at once: the second says it waits for the first, and when the
/// first is signed in, takes that sign-in instead of asking the person a second time.
#[test]
fn a_second_login_waits_for_the_first_and_takes_its_sign_in() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let sb = Sandbox::new();
    let em = Emulator::start(&sb, &["--approve", "click"]);
    let spawn = || {
        let mut c = em.cmd(&sb, &["login"]);
        let mut child = c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        (child, lines)
    };
    let (mut first, mut first_lines) = spawn();
    let code_line = first_lines.by_ref().map(Result::unwrap).find(|l| l.contains("enter the code")).expect("the first login's code");
    let user_code = code_line.split("enter the code ").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    let (mut second, mut second_lines) = spawn();
    let said = second_lines.next().expect("the second login says something").unwrap();
    assert!(said.contains("another entra-token is signing in profile 'default'"), "{said}");
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs([("user_code", user_code.as_str()), ("user", "alice@contoso.com")]).finish();
    let approved = em.agent().post(&format!("{}/devicelogin", em.url())).header("Content-Type", "application/x-www-form-urlencoded").send(body).unwrap();
    assert_eq!(approved.status().as_u16(), 200);
    assert!(first.wait().unwrap().success());
    let rest: Vec<String> = second_lines.map(Result::unwrap).collect();
    assert!(second.wait().unwrap().success(), "{rest:?}");
    assert!(!rest.iter().any(|l| l.contains("enter the code")), "no second sign-in: {rest:?}");
    assert!(rest.iter().any(|l| l.contains("signed in as alice@contoso.com") && l.contains("by the other sign-in")), "{rest:?}");
}

/// The README's first command is `cargo run --release -- demo`, and the demo ends by
/// sending the reader to `entra-token …` commands: when no `entra-token` is on PATH yet it
/// says how to put it there; when one is, it does not.
#[test]
fn the_demo_says_how_to_get_entra_token_on_path() {
    let sb = Sandbox::new();
    let out = stdout(&ok(run(sb.cmd_with(&["demo"]))));
    assert!(out.contains("not on your PATH yet") && out.contains("cargo install --locked --path ."), "{out}");
    sb.link("entra-token");
    let mut c = sb.cmd_with(&["demo"]);
    c.env("PATH", std::env::join_paths(std::iter::once(sb.path("bin")).chain(std::env::split_paths(&crate::support::env::path()))).unwrap());
    let out = stdout(&ok(run(c)));
    assert!(!out.contains("not on your PATH"), "{out}");
}

/// Power BI and Fabric scripters work in PowerShell, in the loop DAX Studio's
/// `dscmd ACCESSTOKEN` page shows: the front page gives them their line, not only sh's.
#[test]
fn the_readme_gives_power_bi_scripters_their_powershell_line() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme.split("**Power BI").nth(1).expect("a Power BI entry").split("\n\n").next().unwrap();
    assert!(section.contains("dscmd") && section.contains("$token = entra-token get-token -r $server --silent"), "{section}");
}

/// The token in a variable the system reads (`--env PATH`: CMD could not run; LD_PRELOAD:
/// the loader prints the token in its error) is refused before any token is fetched.
#[test]
fn exec_never_puts_the_token_in_path() {
    let sb = Sandbox::new();
    for var in ["PATH", "LD_PRELOAD"] {
        let out = run(sb.cmd_with(&["exec", "-r", "devops", "--env", var, "--", "true"]));
        assert_eq!(code(&out), 1, "{var}");
        let err = one_line(&out);
        assert!(err.contains(&format!("--env {var} would put the token in {var}")) && err.contains("--env ENTRA_ACCESS_TOKEN"), "{err}");
    }
}

/// A stale ENTRA_TOKEN_CONFIG (the emulator's exports still in the shell after its state
/// directory was removed) reads as no config at all: the not-found line says the file is
/// not there, so the person looks at the variable and not at their profiles.
#[test]
fn a_config_variable_naming_a_missing_file_is_said() {
    let sb = Sandbox::new();
    let mut c = sb.cmd_with(&["get-token", "-p", "ci"]);
    c.env("ENTRA_TOKEN_CONFIG", sb.path("gone/entra-token.toml"));
    let out = run(c);
    assert_eq!(code(&out), 2);
    let err = one_line(&out);
    assert!(err.contains(&format!("ENTRA_TOKEN_CONFIG names {}, which does not exist", sb.path("gone/entra-token.toml").display())), "{err}");
    sb.write_config("[profiles.ci]\nflow = \"device-code\"\n");
    let err = one_line(&run(sb.cmd_with(&["get-token", "-p", "cj"])));
    assert!(!err.contains("does not exist"), "the file is there: {err}");
}

/// The emulator's exports outlive it in the shell: after it stops, the refused connection
/// says what to do about an emulator; a CA that is not the serving one's (another start's)
/// is not blamed on a proxy re-signing TLS, which never stands between us and loopback.
#[test]
fn a_stopped_or_restarted_emulator_is_named_as_the_cause() {
    let sb = Sandbox::new();
    let em = Emulator::start(&sb, &[]);
    let mut c = sb.cmd_with(&["emulator", "--state-dir"]);
    c.arg(sb.path("other"));
    let other = Emulator::spawn(c);
    let mut c = sb.cmd_with(&["get-token", "-p", "app", "-r", "graph"]);
    em.apply(&mut c);
    c.env("SSL_CERT_FILE", other.var("SSL_CERT_FILE"));
    let out = run(c);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    let err = one_line(&out);
    assert!(err.contains("exports") && err.contains("entra-token emulator") && !err.contains("proxy"), "{err}");
    let exports = em.exports.clone();
    drop(em);
    let mut c = sb.cmd_with(&["get-token", "-p", "app", "-r", "graph"]);
    c.envs(exports.iter().map(|(k, v)| (k, v)));
    let out = run(c);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    let err = one_line(&out);
    assert!(err.contains("nothing accepts connections") && err.contains("start it again and load its new exports"), "{err}");
}

/// The block `ssh config` prints (for ~/.ssh/config) opens with a comment that says whose
/// certificates and which profile: it read "certificates for (ssh renews …)" without -p.
#[test]
fn ssh_config_s_comment_names_the_login_and_the_profile() {
    if std::process::Command::new("ssh-keygen").arg("-?").output().is_err() {
        return crate::support::skip::missing_tool("ssh-keygen", "ssh config's key");
    }
    let sb = Sandbox::new();
    let em = Emulator::start(&sb, &[]);
    let mut c = sb.cmd_with(&["ssh", "config", "-p", "app", "*.contoso.example"]);
    em.apply(&mut c);
    let block = stdout(&ok(run(c)));
    let first = block.lines().next().unwrap_or_default();
    let login = em.var("AZURE_CLIENT_ID");
    assert_eq!(first, format!("# entra-token: Entra SSH certificates for {login} (profile 'app'); ssh renews the certificate as it connects"), "{block}");
}

/// `man get-token` (as `git help X` / `man git-X`) prints that command's page; it was
/// refused as an unexpected argument. A misspelt one gets the name meant.
#[test]
fn man_takes_a_command_name() {
    let sb = Sandbox::new();
    let page = stdout(&ok(run(sb.cmd_with(&["man", "get-token"]))));
    assert!(page.contains(".TH entra-token-get-token 1") && page.contains("resource"), "{}", &page[..page.len().min(400)]);
    let page = stdout(&ok(run(sb.cmd_with(&["man", "ssh", "cert"]))));
    assert!(page.contains(".TH entra-token-ssh-cert 1"), "{}", &page[..page.len().min(400)]);
    let out = run(sb.cmd_with(&["man", "get-tokn"]));
    assert_eq!(code(&out), 1);
    assert!(one_line(&out).contains("did you mean 'get-token'?"), "{}", stderr(&out));
}

/// `--min-validity` takes a duration as `--timeout` does (`5m`, `2h`), and plain seconds as
/// before: `2h` was "invalid digit found in string".
#[test]
fn min_validity_takes_a_duration() {
    let (_mock, sb) = crate::support::client_credentials_setup("contoso.test", "00000000-0000-0000-0000-0000000000c1", "s3cret");
    for v in ["2h", "45m", "600"] {
        let mut c = sb.cmd_with(&["get-token", "-p", "ci", "-r", "graph", "--min-validity", v]);
        c.env("CI_SECRET", "s3cret");
        ok(run(c));
    }
    let out = run(sb.cmd_with(&["get-token", "-p", "ci", "--min-validity", "2 hours"]));
    assert_eq!(code(&out), 1);
    assert!(one_line(&out).contains("use ms, s, m or h") && stderr(&out).contains("see `entra-token get-token --help`"), "{}", stderr(&out));
    let out = run(sb.cmd_with(&["ssh", "cert", "--min-validity", "2h"]));
    assert_eq!(code(&out), 1);
    assert!(one_line(&out).contains("at most 3000, or 50m"), "{}", stderr(&out));
}

/// After the emulator starts again, `status` says the person is not signed in (the earlier
/// start's refresh tokens died with it), not "not signed in at tenant contoso.com, also at
/// tenant contoso.com: signed in as alice" from the stopped emulator's leftovers.
#[test]
fn status_after_an_emulator_restart_is_a_clean_slate() {
    let sb = Sandbox::new();
    let first = Emulator::start(&sb, &[]);
    let mut c = sb.cmd_with(&["login"]);
    first.apply(&mut c);
    ok(run(c));
    drop(first);
    let second = Emulator::start(&sb, &[]);
    let mut c = sb.cmd_with(&["status", "-p", "default"]);
    second.apply(&mut c);
    let text = stdout(&ok(run(c)));
    assert!(text.starts_with("default  [device-code · file]  not signed in\n") && !text.contains("also at"), "{text}");
}

/// `doctor` against the emulator measures the clock, as against Entra (the emulator sent
/// no Date header: "skew not measured").
#[test]
fn doctor_measures_the_clock_against_the_emulator() {
    let sb = Sandbox::new();
    let em = Emulator::start(&sb, &[]);
    let mut c = sb.cmd_with(&["doctor"]);
    em.apply(&mut c);
    let report = stdout(&run(c));
    let clock = report.lines().find(|l| l.contains("clock")).unwrap_or_default().to_string();
    assert!(clock.starts_with("✓") && !clock.contains("not measured"), "{report}");
}

/// `profile list` names each flow as the docs and `profile show` do: a file that says
/// `devicecode` or `spn` (accepted spellings) listed them as written.
#[test]
fn profile_list_names_flows_by_their_one_name() {
    let sb = Sandbox::new();
    sb.write_config("[profiles.a]\nflow = \"devicecode\"\ntenant = \"contoso.test\"\n\n[profiles.b]\nflow = \"spn\"\ntenant = \"contoso.test\"\nclient_id = \"00000000-0000-0000-0000-0000000000c1\"\nclient_secret_env = \"CI_SECRET\"\n");
    let text = stdout(&ok(run(sb.cmd_with(&["profile", "list"]))));
    let flow = |name: &str| text.lines().find(|l| l.split_whitespace().next() == Some(name)).and_then(|l| l.split_whitespace().nth(1)).map(str::to_string);
    assert_eq!((flow("a").as_deref(), flow("b").as_deref()), (Some("device-code"), Some("client-credentials")), "{text}");
}
