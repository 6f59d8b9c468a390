//! `-v` traces each step on stderr (profile and where it came from, cache hit/miss and
//! why, the endpoint called, retries, the AADSTS code) without ever showing a secret or
//! a token; colour only on a terminal and never under NO_COLOR.

#[cfg(unix)]
use crate::support;

#[cfg(unix)]
use std::process::Command;
use crate::support::{CcProfile, Fault, MockAuthority, Sandbox, run};

const TENANT: &str = "contoso.test";
const APP: &str = "66666666-6666-6666-6666-666666666666";
const SECRET: &str = "verbose~Secret.Value";

fn fixture() -> (Sandbox, MockAuthority) {
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some(SECRET));
    let sb = Sandbox::new();
    sb.write_config(&CcProfile::new("ci", &mock.url(), TENANT, APP).toml());
    (sb, mock)
}

fn get_token(sb: &Sandbox, secret: &str, extra: &[&str]) -> (bool, String, String) {
    let mut cmd = sb.cmd();
    cmd.env("CI_SECRET", secret).args(["get-token", "-p", "ci", "-r", "graph"]).args(extra);
    let out = run(cmd);
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn each_step_is_traced_and_nothing_secret_is() {
    let (sb, mock) = fixture();
    mock.push_fault(Fault::Status { status: 503, body: "{}".into(), retry_after: Some(0) });
    let (ok, token, err) = get_token(&sb, SECRET, &["-v"]);
    assert!(ok, "{err}");
    let config = sb.path("config.toml");
    for want in [
        "entra-token: profile 'ci' chosen by the command line or request".to_string(),
        format!("profile 'ci' from file {}: flow client-credentials", config.display()),
        "cache miss".into(),
        "no entry".into(),
        format!("POST {}/{TENANT}/oauth2/v2.0/token", mock.url()),
        "answered 503; retrying".into(),
    ] {
        assert!(err.contains(&want), "stderr lacks {want:?}:\n{err}");
    }
    assert!(err.lines().all(|l| l.starts_with("entra-token: ")), "every line is prefixed:\n{err}");
    assert!(!err.contains('\x1b'), "no colour when stderr is not a terminal:\n{err:?}");
    let token = token.trim();
    assert!(!err.contains(SECRET) && !err.contains(token), "a secret or token leaked into the trace:\n{err}");

    let (ok, again, err) = get_token(&sb, SECRET, &["-v"]);
    assert!(ok && again.trim() == token);
    assert!(err.contains("cache hit") && err.contains("s left"), "{err}");
    assert!(!err.contains("POST"), "a cache hit calls nothing:\n{err}");

    // Without -v: silence.
    let (_, _, quiet) = get_token(&sb, SECRET, &[]);
    assert_eq!(quiet, "");

    // The AADSTS code of a refusal is traced, and the wrong secret is still not shown.
    let (ok, _, err) = get_token(&sb, "wrong~secret", &["-v", "--force"]);
    assert!(!ok);
    assert!(err.contains("cache skipped: a new token was forced"), "{err}");
    assert!(err.contains("refused: invalid_client [7000215]"), "{err}");
    assert!(!err.contains("wrong~secret"), "{err}");
}

/// Runs `entra-token ARGS` on a pseudo-terminal through util-linux `script`; None when
/// `script` is missing. Returns what the terminal showed.
// Unix only: util-linux `script` gives the pseudo-terminal.
#[cfg(unix)]
fn on_a_terminal(sb: &Sandbox, no_color: bool, args: &str) -> Option<String> {
    if Command::new("script").arg("--version").output().is_err() {
        support::skip::missing_tool("script (util-linux)", "the terminal check");
        return None;
    }
    let bin = env!("CARGO_BIN_EXE_entra-token");
    let mut cmd = sb.tool("script");
    cmd.env("TERM", "xterm").args(["-qec", &format!("{bin} {args}"), "/dev/null"]);
    if no_color {
        cmd.env("NO_COLOR", "1");
    } else {
        cmd.env_remove("NO_COLOR");
    }
    let out = run(cmd);
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

// Unix only: needs a pseudo-terminal from util-linux `script`.
#[cfg(unix)]
#[test]
fn colour_on_a_terminal_unless_no_color() {
    let (sb, _mock) = fixture();
    let Some(shown) = on_a_terminal(&sb, false, "get-token -p nope") else { return };
    assert!(shown.contains("\x1b[1;31mentra-token:\x1b[0m profile 'nope' not found"), "{shown:?}");
    let shown = on_a_terminal(&sb, true, "get-token -p nope").unwrap();
    assert!(shown.contains("entra-token: profile 'nope' not found") && !shown.contains('\x1b'), "{shown:?}");
}
