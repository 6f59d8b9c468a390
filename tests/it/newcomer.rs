//! A newcomer's second hour, through the binary: the commands a person types after the
//! quick start, with the slips they make (a missing argument, a command without `--`,
//! `status -p NAME`), each answered with one `entra-token: ` line that names what was
//! missing and the help page to read, or simply done.

use crate::support::{Sandbox, code, ok, run, stderr, stdout};

fn cmd(sb: &Sandbox, args: &[&str]) -> std::process::Command {
    let mut c = sb.cmd();
    c.args(args);
    c
}

/// One `entra-token: …` line on stderr, and its text.
fn one_line(out: &std::process::Output) -> String {
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "expected one line on stderr, got:\n{err}");
    assert!(err.starts_with("entra-token: "), "{err}");
    err
}

/// keeps them, and points to the subcommand's own help.
#[test]
fn a_missing_argument_is_named_with_the_subcommand_s_help() {
    let sb = Sandbox::new();
    let out = run(cmd(&sb, &["ssh", "config"]));
    assert_eq!(code(&out), 1);
    let err = one_line(&out);
    assert!(err.contains("not provided: <HOST>"), "{err}");
    assert!(err.contains("see `entra-token ssh config --help`"), "{err}");
    // A misspelt flag points to its subcommand's help too.
    let err = one_line(&run(cmd(&sb, &["get-token", "--resouce", "graph"])));
    assert!(err.contains("'--resource'") && err.contains("see `entra-token get-token --help`"), "{err}");
}

/// `exec` takes its command after `--`; without it the line says so, with the command.
#[test]
fn exec_without_the_double_dash_says_where_the_command_goes() {
    let sb = Sandbox::new();
    let out = run(cmd(&sb, &["exec", "-r", "devops", "sh", "-c", "true"]));
    assert_eq!(code(&out), 1);
    let err = one_line(&out);
    assert!(err.contains("after `--`") && err.contains("-- sh"), "{err}");
}
