//! The first mistakes a newcomer makes, through the binary: each gets one short line that
//! says what was wrong and the fix (a suggestion for a misspelt name, the right key for a
//! secret), never a secret from the file; what `--help`, `profile list`/`show` and
//! `doctor` say agrees and reads as English.


use crate::support::{MockAuthority, Sandbox, code, ok, one_line, run, run_with_stdin, stderr, stdout, text};

#[test]
fn help_says_a_json_request_on_stdin_gets_a_json_credential_on_stdout() {
    let sb = Sandbox::new();
    let help = stdout(&ok(run(sb.cmd_with(&["--help"]))));
    assert!(help.contains("JSON request on stdin gets a JSON credential"), "{help}");
    assert!(help.contains("echo '{\"resource\":\"graph\"}' | entra-token"), "{help}");
    assert!(help.contains("Exit codes: 0 success"), "{help}");
}

#[test]
fn misspelt_names_get_the_name_meant() {
    let sb = Sandbox::new();
    sb.write_config("[profiles.work]\nflow = \"device-code\"\n");
    let cases: &[(&[&str], &str)] = &[
        (&["get-tokn"], "'get-token'"),
        (&["profile", "lst"], "'list'"),
        (&["get-token", "--profle", "work"], "'--profile'"),
        (&["get-token", "-p", "wrok"], "did you mean 'work'?"),
        (&["get-token", "-p", "work", "-r", "grahp"], "did you mean 'graph'?"),
        (&["get-token", "-p", "work", "-r", "kustoo"], "did you mean 'kusto'?"),
    ];
    for (args, meant) in cases {
        let out = run(sb.cmd_with(args));
        assert_ne!(code(&out), 0, "{args:?}");
        let err = one_line(&out);
        assert!(err.contains(meant), "{args:?}: {err}");
        assert!(err.len() < 400, "{args:?}: {err}");
    }
    // The native protocol says the same in its JSON error.
    let out = run_with_stdin(sb.cmd(), r#"{"resource":"grahp","profile":"work"}"#);
    assert_eq!(code(&out), 1);
    assert!(stdout(&out).contains("did you mean 'graph'?"), "{}", stdout(&out));
    // Nothing close: no suggestion, and no nonsense one.
    let out = run(sb.cmd_with(&["get-token", "-p", "zzzzzz"]));
    assert_eq!(code(&out), 2);
    assert!(!stderr(&out).contains("did you mean"), "{}", stderr(&out));
}

#[test]
fn a_misspelt_config_key_is_one_line_naming_the_key_meant() {
    let sb = Sandbox::new();
    sb.write_config("[profiles.work]\nflow = \"device-code\"\ntennant = \"contoso.com\"\n");
    let out = run(sb.cmd_with(&["get-token", "-p", "work"]));
    assert_eq!(code(&out), 1);
    let err = one_line(&out);
    assert!(err.contains("line 3: profile 'work': unknown key 'tennant': did you mean 'tenant'?"), "{err}");
    assert!(!err.contains("client_secret_env") && !err.contains("expected one of"), "the whole key list again: {err}");
}

const SECRET: &str = "Zq8~s3cr3t.VALUE_do-not-print";

/// A secret written into the config, in every shape a person might write it: whatever runs
/// (get-token, the native protocol, profile list/show/add, doctor) refuses with the right key
/// to use, and the value appears in no output.
#[test]
fn a_secret_in_the_config_file_is_refused_and_never_echoed() {
    let shapes: &[(&str, &str)] = &[
        ("client_secret = \"{S}\"", "client_secret_env"),
        ("client_secret = '{S}'", "client_secret_file"),
        ("client_secret = {S}", "client_secret_env"),
        ("client_secret = \"{S}", "client_secret_env"),
        ("client_secret = \"\"\"{S}\"\"\"", "client_secret_env"),
        ("password = \"{S}\"", "password_env"),
        ("certificate_password = \"{S}\"", "certificate_password_env"),
        ("refresh_token = \"{S}\"", "entra-token login -p ci"),
        ("clientSecret = \"{S}\"", "client_secret_env"),
        ("interactive = \"{S}\"", "line 4"),
        ("tenant = {S}", "line 4"),
    ];
    for (shape, fix) in shapes {
        let sb = Sandbox::new();
        let line = shape.replace("{S}", SECRET);
        sb.write_config(&format!("# pipelines\n[profiles.ci]\nflow = \"client-credentials\"\n{line}\n"));
        let runs: Vec<(&str, std::process::Output)> = vec![
            ("get-token", run(sb.cmd_with(&["get-token", "-p", "ci"]))),
            ("native", run_with_stdin(sb.cmd(), r#"{"resource":"graph","profile":"ci"}"#)),
            ("profile list", run(sb.cmd_with(&["profile", "list"]))),
            ("profile show", run(sb.cmd_with(&["profile", "show", "ci"]))),
            ("profile add", run(sb.cmd_with(&["profile", "add", "ci", "--update", "--tenant", "t"]))),
            ("doctor", run(sb.cmd_with(&["doctor", "-p", "ci", "--offline"]))),
        ];
        for (what, out) in runs {
            let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
            for part in ["s3cr3t", "VALUE", "do-not-print"] {
                assert!(!all.contains(part), "{what} with `{line}` echoed the value:\n{all}");
            }
            assert_ne!(code(&out), 0, "{what} with `{line}` succeeded:\n{all}");
            assert!(all.contains(fix), "{what} with `{line}`: no `{fix}` in:\n{all}");
        }
        // Nothing was written over the file.
        assert!(std::fs::read_to_string(sb.path("config.toml")).unwrap().contains(&line));
    }
    let sb = Sandbox::new();
    sb.write_config(&format!("[profiles.ci]\nflow = \"client-credentials\"\nclient_secret = \"{SECRET}\"\n"));
    let err = one_line(&run(sb.cmd_with(&["get-token", "-p", "ci"])));
    assert!(
        err.contains("line 3: profile 'ci': `client_secret` would hold a secret, and secrets are never read from the config file")
            && err.contains("client_secret_env")
            && err.contains("client_secret_file"),
        "{err}"
    );
}

/// Each ambient variable a profile's own key overrides is named on stderr, the authority
/// included (it was silent); a secret's value is never shown, only its variable's name.
#[test]
fn every_conflict_between_a_profile_and_ambient_variables_is_reported() {
    let mock = MockAuthority::start();
    mock.add_tenant("contoso.test");
    mock.add_app("11111111-1111-1111-1111-111111111111", Some("right"));
    let sb = Sandbox::new();
    let cert = sb.write_file("cert.pem", "not used");
    let fed = sb.write_file("fed.jwt", "not used");
    sb.write_config(&format!(
        "[profiles.ci]\nflow = \"client-credentials\"\nauthority = \"{}\"\ntenant = \"contoso.test\"\nclient_id = \"11111111-1111-1111-1111-111111111111\"\nclient_secret_env = \"CI_SECRET\"\nusername = \"ann@contoso.test\"\n",
        mock.url()
    ));
    let mut c = sb.cmd_with(&["get-token", "-p", "ci", "-r", "graph"]);
    c.env("CI_SECRET", "right")
        .env("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us")
        .env("AZURE_TENANT_ID", "fabrikam.test")
        .env("AZURE_CLIENT_ID", "22222222-2222-2222-2222-222222222222")
        .env("AZURE_CLIENT_SECRET", "ambient-secret-value")
        .env("AZURE_USERNAME", "bob@fabrikam.test")
        .env("AZURE_CLIENT_CERTIFICATE_PATH", &cert)
        .env("AZURE_FEDERATED_TOKEN_FILE", &fed);
    let out = ok(run(c));
    let err = stderr(&out);
    for var in ["AZURE_AUTHORITY_HOST=https://login.microsoftonline.us", "AZURE_TENANT_ID=fabrikam.test", "AZURE_CLIENT_ID=22222222", "AZURE_CLIENT_SECRET", "AZURE_USERNAME=bob@fabrikam.test"] {
        assert!(err.contains(&format!("ignoring {var}")), "no report of {var}:\n{err}");
    }
    assert!(!err.contains("ambient-secret-value"), "{err}");
    // Variables the profile does not override are not conflicts.
    assert!(!err.contains("AZURE_CLIENT_CERTIFICATE_PATH") && !err.contains("AZURE_FEDERATED_TOKEN_FILE"), "{err}");
    // The same host written another way is no conflict.
    let mut c = sb.cmd_with(&["get-token", "-p", "ci", "-r", "graph"]);
    c.env("CI_SECRET", "right").env("AZURE_AUTHORITY_HOST", format!("{}/", mock.url()));
    let out = ok(run(c));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

/// `profile list` marks and describes the default the way `profile show` (and get-token)
/// resolves it: from the environment when the standard variables form it, from
/// ENTRA_TOKEN_PROFILE when that names one.
#[test]
fn profile_list_and_show_agree_on_the_default_profile() {
    let sb = Sandbox::new();
    let env = |c: &mut std::process::Command| {
        c.env("AZURE_TENANT_ID", "contoso.test").env("AZURE_CLIENT_ID", "11111111-1111-1111-1111-111111111111").env("AZURE_CLIENT_SECRET", "x");
    };
    let mut c = sb.cmd_with(&["profile", "list"]);
    env(&mut c);
    let list = stdout(&ok(run(c)));
    let mut c = sb.cmd_with(&["profile", "show"]);
    env(&mut c);
    let show = stdout(&ok(run(c)));
    assert!(show.contains("client-credentials") && show.contains("environment"), "{show}");
    let default_row = list.lines().find(|l| l.starts_with('*')).unwrap_or_else(|| panic!("no default marked:\n{list}"));
    assert!(default_row.contains("default") && default_row.contains("client-credentials") && default_row.contains("contoso.test"), "list: {list}\nshow: {show}");
    assert!(!default_row.contains("(built-in)"), "{list}");

    // Without the variables: the built-in default, in both.
    let list = stdout(&ok(run(sb.cmd_with(&["profile", "list"]))));
    assert!(list.lines().any(|l| l.starts_with("* default") && l.contains("auto") && l.contains("built-in")), "{list}");
    let show = stdout(&ok(run(sb.cmd_with(&["profile", "show"]))));
    assert!(show.contains("auto") && show.contains("built-in"), "{show}");

    // ENTRA_TOKEN_PROFILE chooses the default for get-token and show: list marks the same one.
    sb.write_config("default_profile = \"a\"\n[profiles.a]\nflow = \"device-code\"\n[profiles.b]\nflow = \"device-code\"\n");
    let mut c = sb.cmd_with(&["profile", "list"]);
    c.env("ENTRA_TOKEN_PROFILE", "b");
    let list = stdout(&ok(run(c)));
    assert!(list.lines().any(|l| l.starts_with("* b")), "{list}");
    assert!(!list.lines().any(|l| l.starts_with("* a")), "{list}");
    let mut c = sb.cmd_with(&["profile", "show"]);
    c.env("ENTRA_TOKEN_PROFILE", "b");
    let show = stdout(&ok(run(c)));
    assert_eq!(show.lines().next().and_then(|l| l.split_whitespace().nth(1)), Some("b"), "{show}");
}

// Unix only: the Secret Service (D-Bus) is Linux's keyring; Windows has Credential Manager.
#[cfg(unix)]
#[test]
fn doctor_counts_in_english_and_says_no_secret_service_once() {
    let sb = Sandbox::new();
    sb.write_config("[profiles.only]\nflow = \"device-code\"\n");
    let mut c = sb.cmd_with(&["doctor", "-p", "only", "--offline"]);
    c.env_remove("DBUS_SESSION_BUS_ADDRESS");
    let out = run(c);
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(report.contains("(1 profile)"), "{report}");
    assert!(!report.contains("1 profiles"), "{report}");
    assert!(report.contains("no Secret Service here"), "{report}");
    assert_eq!(report.matches("Secret Service").count(), 1, "{report}");
    for noise in ["autolaunch", "X11", "DBus error", "Platform secure storage"] {
        assert!(!report.contains(noise), "{noise}: {report}");
    }
}

/// `profile default NAME` on a file that opens with a comment: the comment stays first.
#[test]
fn profile_default_keeps_the_file_s_leading_comment_at_the_top() {
    let sb = Sandbox::new();
    let file = "# My profiles: written by hand, keep this first.\n# Second line of the header.\n\n# the laptop\n[profiles.a]\nflow = \"device-code\"\n\n[profiles.b]\nflow = \"device-code\"\n";
    sb.write_config(file);
    ok(run(sb.cmd_with(&["profile", "default", "b"])));
    let text = std::fs::read_to_string(sb.path("config.toml")).unwrap();
    assert!(text.starts_with("# My profiles: written by hand, keep this first.\n# Second line of the header.\n"), "{text}");
    assert!(text.contains("default_profile = \"b\""), "{text}");
    assert!(text.contains("# the laptop\n[profiles.a]"), "the table's own comment stays with it: {text}");
    // And the edited file still means what it meant, plus the default.
    assert!(stdout(&ok(run(sb.cmd_with(&["profile", "default"])))).contains('b'));
    ok(run(sb.cmd_with(&["profile", "default", "a"])));
    let again = std::fs::read_to_string(sb.path("config.toml")).unwrap();
    assert_eq!(again, text.replace("default_profile = \"b\"", "default_profile = \"a\""));

    // The same through `profile add --default` on a file whose comment sits right on the table.
    let sb = Sandbox::new();
    sb.write_config("# only a comment on top\n[profiles.a]\nflow = \"device-code\"\n");
    ok(run(sb.cmd_with(&["profile", "add", "c", "--flow", "device-code", "--default", "--no-prompt"])));
    let text = std::fs::read_to_string(sb.path("config.toml")).unwrap();
    assert!(text.starts_with("# only a comment on top\n"), "{text}");
}

/// `--help` lists the quick start's commands first, in its order, and the flags show their defaults.
#[test]
fn help_lists_the_quick_start_first_and_shows_defaults() {
    let sb = Sandbox::new();
    let help = stdout(&ok(run(sb.cmd_with(&["--help"]))));
    let section = help.split("Commands:").nth(1).expect("a Commands: section");
    let first: Vec<&str> = section.lines().skip(1).take(4).filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(first, ["login", "get-token", "status", "doctor"], "{help}");
    let help = stdout(&ok(run(sb.cmd_with(&["get-token", "--help"]))));
    let line = help.lines().find(|l| l.contains("--min-validity")).expect("--min-validity in the help");
    assert!(help.contains("[default: 300]"), "{help}");
    assert!(line.contains("SECONDS"), "{line}");
}

/// A docs page whose commands import a Python package says how to install it first, so
/// the block works as pasted on a machine without it.
#[test]
fn docs_python_examples_say_what_to_pip_install() {
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let mut checked = 0;
    for entry in std::fs::read_dir(&docs).unwrap() {
        let path = entry.unwrap().path();
        let page = std::fs::read_to_string(&path).unwrap();
        for (i, line) in page.lines().enumerate() {
            let Some(module) = line.split("from azure.").nth(1).map(|r| r.split([' ', '.']).next().unwrap_or("")) else { continue };
            let package = format!("pip install azure-{module}");
            let before: Vec<&str> = page.lines().take(i).collect();
            assert!(before.iter().any(|l| l.contains(&package)), "{}:{}: uses azure.{module} with no `{package}` before it", path.display(), i + 1);
            checked += 1;
        }
    }
    assert!(checked >= 2, "the serve and az pages have Python examples");
}

/// A profile name in the wrong case gets the name meant, and a secret variable that is set
/// but empty is not reported as "not set" (the person did set it).
#[test]
fn a_profile_in_another_case_and_an_empty_secret_variable_are_named_as_they_are() {
    let sb = Sandbox::new();
    sb.write_config("[profiles.ci]\ntenant = \"contoso.test\"\nclient_id = \"00000000-0000-0000-0000-000000000001\"\nflow = \"client-credentials\"\nclient_secret_env = \"CI_SECRET\"\n");
    let out = run(sb.cmd_with(&["get-token", "-p", "CI"]));
    assert_eq!(code(&out), 2);
    assert!(one_line(&out).contains("did you mean 'ci'?"), "{}", stderr(&out));
    let mut c = sb.cmd_with(&["get-token", "-p", "ci"]);
    c.env("CI_SECRET", "");
    let out = run(c);
    assert_eq!(code(&out), 1);
    let err = one_line(&out);
    assert!(err.contains("CI_SECRET is set but empty"), "{err}");
    let out = run(sb.cmd_with(&["get-token", "-p", "ci"]));
    assert!(one_line(&out).contains("CI_SECRET is not set"), "{}", stderr(&out));
}

/// Bad JSON on stdin points to what every install has, `entra-token man` (a packaged
/// install has no protocol/README.md), and the page has the request fields.
#[test]
fn bad_json_points_to_the_man_page() {
    let sb = Sandbox::new();
    let out = run_with_stdin(sb.cmd(), "nope");
    assert_eq!(code(&out), 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hint = v["error"]["hint"].as_str().unwrap_or_default();
    assert!(hint.contains("entra-token man") && !hint.contains("protocol/README.md"), "{hint}");
    assert!(one_line(&out).contains("entra-token man"));
    let out = run_with_stdin(sb.cmd(), r#"{"resorce":"graph"}"#);
    assert!(stdout(&out).contains("entra-token man"), "{}", stdout(&out));
    let page = stdout(&ok(run(sb.cmd_with(&["man"]))));
    assert!(page.contains("min_validity (integer"), "the request fields are in the page");
}

/// One resource asked for in different spellings (the default, an alias, a URI without its
/// slash, its `/.default` scope) is one line in `status`, named one way.
#[test]
fn status_shows_one_resource_once_however_it_was_asked_for() {
    let (_mock, sb) = crate::support::client_credentials_setup("contoso.test", "00000000-0000-0000-0000-0000000000c1", "s3cret");
    for args in [&["-r", "arm"][..], &["-r", "https://management.azure.com"], &["-s", "https://management.azure.com/.default"], &["-r", "graph"]] {
        let mut c = sb.cmd_with(&["get-token", "-p", "ci"]);
        c.args(args).env("CI_SECRET", "s3cret");
        ok(run(c));
    }
    let text = stdout(&ok(run(sb.cmd_with(&["status"]))));
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("    ") && !l.contains("no cached tokens")).collect();
    assert_eq!(lines.len(), 2, "ARM and Graph, once each: {text}");
    assert!(lines.iter().any(|l| l.trim_start().starts_with("https://management.azure.com/ ")), "{text}");
    assert!(lines.iter().any(|l| l.trim_start().starts_with("https://graph.microsoft.com ")), "{text}");
}
