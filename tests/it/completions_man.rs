//! `entra-token completions SHELL` and `entra-token man`, generated from the clap
//! definitions: each script parses in its own shell (where that shell is installed), and
//! the man page renders and names every subcommand `--help` lists.

use crate::support;

use std::process::{Command, Stdio};
use crate::support::{Sandbox, run};

fn stdout_of(sb: &Sandbox, args: &[&str]) -> String {
    let mut cmd = sb.cmd();
    cmd.args(args);
    let out = run(cmd);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The subcommands `entra-token --help` lists (without `help`).
fn subcommands(sb: &Sandbox) -> Vec<String> {
    let help = stdout_of(sb, &["--help"]);
    let section = help.split("Commands:").nth(1).expect("a Commands: section");
    let names: Vec<String> = section
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(|n| n.trim_end_matches(',').to_string())
        .collect();
    assert!(names.len() >= 6, "{help}");
    names
}

/// Runs `shell args… FILE` when the shell exists; None when it does not.
fn check_with(shell: &str, args: &[&str], script: &str) -> Option<std::process::Output> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("completion");
    std::fs::write(&file, script).unwrap();
    match Command::new(shell).args(args).arg(&file).stdin(Stdio::null()).output() {
        Ok(o) => Some(o),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            support::skip::missing_tool(shell, "the completion syntax check");
            None
        }
        Err(e) => panic!("cannot run {shell}: {e}"),
    }
}

#[test]
fn completion_scripts_parse_and_know_every_subcommand() {
    let sb = Sandbox::new();
    let subs = subcommands(&sb);
    let bash = stdout_of(&sb, &["completions", "bash"]);
    let out = check_with("bash", &["-n"], &bash).expect("bash is always here");
    assert!(out.status.success(), "bash -n: {}", String::from_utf8_lossy(&out.stderr));
    for s in &subs {
        assert!(bash.contains(s.as_str()), "bash completion lacks {s}");
    }
    // The script really completes: source it and ask for `entra-token pro<TAB>`.
    let probe = format!(
        "{bash}\nf=$(complete -p entra-token | sed 's/.*-F \\([^ ]*\\).*/\\1/')\nCOMP_WORDS=(entra-token pro); COMP_CWORD=1; COMP_LINE='entra-token pro'; COMP_POINT=15\n\"$f\" entra-token pro entra-token\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n"
    );
    let out = check_with("bash", &[], &probe).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "profile", "{}", String::from_utf8_lossy(&out.stderr));

    let zsh = stdout_of(&sb, &["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef entra-token"), "{}", &zsh[..80.min(zsh.len())]);
    if let Some(out) = check_with("zsh", &["-n"], &zsh) {
        assert!(out.status.success(), "zsh -n: {}", String::from_utf8_lossy(&out.stderr));
    }
    let fish = stdout_of(&sb, &["completions", "fish"]);
    assert!(fish.contains("complete -c entra-token"));
    if let Some(out) = check_with("fish", &["--no-execute"], &fish) {
        assert!(out.status.success(), "fish --no-execute: {}", String::from_utf8_lossy(&out.stderr));
    }
    let ps = stdout_of(&sb, &["completions", "powershell"]);
    assert!(ps.contains("Register-ArgumentCompleter") && ps.contains("'entra-token'"), "{ps}");
    for s in &subs {
        assert!(ps.contains(&format!("'{s}'")), "powershell completion lacks {s}");
    }

    let mut cmd = sb.cmd();
    cmd.args(["completions", "tcsh"]);
    assert_eq!(run(cmd).status.code(), Some(1), "an unknown shell is bad input");
}

/// Bash completes past the first word: a subcommand's flags (`get-token --pro<TAB>`, with a
/// hyphen in the subcommand's name) and, after `--profile`/`-p`, the config's profile
/// names, in the real bash with the script sourced as the README installs it.
#[test]
fn bash_completes_flags_of_subcommands_and_profile_names() {
    let sb = Sandbox::new();
    sb.write_config("[profiles.work]\nflow = \"device-code\"\n[profiles.ci]\nflow = \"device-code\"\n");
    sb.link("entra-token");
    let script = sb.write_file("entra-token.bash", stdout_of(&sb, &["completions", "bash"]));
    let complete = |line: &str| -> Vec<String> {
        // What bash's programmable completion does at the end of `line`: COMP_WORDS, then
        // the function `complete -p` registered, called as `f CMD CUR PREV`.
        let words: Vec<&str> = if line.ends_with(' ') { line.split_whitespace().chain([""]).collect() } else { line.split_whitespace().collect() };
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let (cur, prev) = (words[words.len() - 1], words[words.len() - 2]);
        let probe = format!(
            "source '{}'\nf=$(complete -p entra-token | sed 's/.*-F \\([^ ]*\\).*/\\1/')\nCOMP_WORDS=({}); COMP_CWORD={}; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}\n\"$f\" entra-token '{cur}' '{prev}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
            script.display(),
            quoted.join(" "),
            words.len() - 1
        );
        let mut cmd = sb.tool_with_links("bash");
        cmd.args(["--norc", "--noprofile", "-c", &probe]);
        let out = run(cmd);
        assert!(out.status.success(), "{line}: {}", String::from_utf8_lossy(&out.stderr));
        let mut got: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()).map(str::to_string).collect();
        got.sort();
        got
    };
    assert_eq!(complete("entra-token pro"), ["profile"]);
    assert_eq!(complete("entra-token get-token --pro"), ["--profile"]);
    assert_eq!(complete("entra-token get-token --min-v"), ["--min-validity"]);
    assert_eq!(complete("entra-token setup kubectl --cont"), ["--context"]);
    assert_eq!(complete("entra-token get-token --profile "), ["ci", "default", "work"]);
    assert_eq!(complete("entra-token login -p w"), ["work"]);
}

#[test]
fn man_page_renders_and_names_every_subcommand() {
    let sb = Sandbox::new();
    let subs = subcommands(&sb);
    let page = stdout_of(&sb, &["man"]);
    assert!(page.contains(".TH entra-token 1"), "{}", &page[..200.min(page.len())]);
    for s in &subs {
        assert!(page.contains(&format!("entra\\-token\\-{}(1)", s.replace('-', "\\-"))), "man page lacks {s}");
    }
    assert!(page.contains("EXIT STATUS"), "the exit codes are in the page");

    // --dir writes one page per subcommand.
    let dir = sb.path("man1");
    let mut cmd = sb.cmd();
    cmd.args(["man", "--dir"]).arg(&dir);
    assert!(run(cmd).status.success());
    for s in &subs {
        assert!(dir.join(format!("entra-token-{s}.1")).is_file(), "no page for {s}");
    }

    // Every page the top page lists is written (no `entra-token-help(1)` without a file).
    let top = std::fs::read_to_string(dir.join("entra-token.1")).unwrap();
    assert_eq!(top, page, "--dir writes the same top page");
    for listed in page.split("entra\\-token\\-").skip(1).filter_map(|r| r.split_once("(1)").map(|(n, _)| n.replace("\\-", "-"))) {
        if !listed.contains(char::is_whitespace) {
            assert!(dir.join(format!("entra-token-{listed}.1")).is_file(), "the page lists entra-token-{listed}(1), which is never written");
        }
    }
    // The real man renders it, when installed.
    match Command::new("man").args(["-l", "-P", "cat"]).arg(dir.join("entra-token.1")).env("MANWIDTH", "100").output() {
        Ok(o) if o.status.success() => {
            let rendered = String::from_utf8_lossy(&o.stdout);
            assert!(rendered.contains("SUBCOMMANDS") && rendered.contains("entra-token-profile(1)"), "{rendered}");
            // The example stands on its own line, not run into the next sentence.
            assert!(rendered.lines().any(|l| l.trim() == "echo '{\"resource\":\"graph\"}' | entra-token"), "{rendered}");
            for section in ["STANDARD INPUT PROTOCOL", "EXIT STATUS", "ENVIRONMENT", "FILES"] {
                assert!(rendered.lines().any(|l| l == section), "no {section} section: {rendered}");
            }
            for field in ["resource (string)", "min_validity (integer", "force_refresh (boolean)", "ENTRA_TOKEN_CONFIG", "config.toml"] {
                assert!(rendered.contains(field), "the page lacks {field}: {rendered}");
            }
        }
        Ok(o) => support::skip::not_here(&format!("man -l failed here ({})", String::from_utf8_lossy(&o.stderr).trim())),
        Err(_) => support::skip::missing_tool("man", "the man page check"),
    }
}
