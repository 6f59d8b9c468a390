//! The README's commands against the binary: every `entra-token SUB [SUB…] --flag` written
//! in a shell block names a subcommand `--help` lists and flags that subcommand takes, so a
//! newcomer copying a recipe never meets "unrecognized subcommand". Also: every AADSTS
//! code the README's troubleshooting table names has a hint in the code, and vice versa.

mod support;

use std::collections::BTreeSet;
use support::{Sandbox, run};

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// Lines inside ```sh / ```bash / ```powershell blocks.
fn shell_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(lang) = t.strip_prefix("```") {
            inside = !inside && matches!(lang.trim(), "sh" | "bash" | "shell" | "powershell" | "pwsh" | "console");
            continue;
        }
        if inside {
            out.push(line.to_string());
        }
    }
    out
}

/// `entra-token [path…] --help` output (cached per path).
fn help(sb: &Sandbox, path: &[String]) -> Option<String> {
    let mut cmd = sb.cmd();
    cmd.args(path).arg("--help");
    let out = run(cmd);
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The subcommand names a help text lists under `Commands:`.
fn commands(help: &str) -> BTreeSet<String> {
    let Some(section) = help.split("Commands:").nth(1) else { return BTreeSet::new() };
    section.lines().skip(1).take_while(|l| l.starts_with("  ")).filter_map(|l| l.split_whitespace().next()).map(|w| w.trim_end_matches(',').to_string()).collect()
}

#[test]
fn every_command_in_the_readme_exists_with_its_flags() {
    let sb = Sandbox::new();
    let top = help(&sb, &[]).unwrap();
    let mut checked = 0;
    for line in shell_lines(&readme()) {
        // Each `entra-token ` occurrence starts a command; it ends at a shell operator or comment.
        for chunk in line.split("entra-token ").skip(1) {
            let words: Vec<String> = chunk
                .split_whitespace()
                .take_while(|w| !matches!(*w, "|" | "||" | "&&" | ";" | ">" | ">>" | "<" | "&" | "#" | "\\") && !w.starts_with('#') && !w.starts_with('>'))
                .map(|w| w.trim_matches(|c| c == '"' || c == '\'' || c == ')' || c == '(' || c == '`' || c == ';').to_string())
                .collect();
            let mut path: Vec<String> = Vec::new();
            let mut text = top.clone();
            for w in &words {
                if commands(&text).contains(w) {
                    path.push(w.clone());
                    text = help(&sb, &path).unwrap_or_else(|| panic!("`entra-token {} --help` fails", path.join(" ")));
                } else {
                    break;
                }
            }
            if path.is_empty() {
                // `entra-token` alone (the native protocol) or `entra-token -v …`.
                continue;
            }
            for flag in words.iter().filter(|w| w.starts_with("--")) {
                let name = flag.split('=').next().unwrap();
                assert!(text.contains(name), "README: `entra-token {}` has no flag {name} (line: {line})", path.join(" "));
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} README commands found");
    // And the other way: every user-facing subcommand is documented somewhere.
    let text = readme();
    for sub in commands(&top) {
        if sub == "help" {
            continue;
        }
        assert!(text.contains(&format!("entra-token {sub}")), "README never shows `entra-token {sub}`");
    }
}

#[test]
fn the_troubleshooting_table_matches_the_hints_in_the_code() {
    let text = readme();
    let section = text.split("## Troubleshooting").nth(1).expect("a Troubleshooting section");
    let section = section.split("\n## ").next().unwrap();
    let in_readme: BTreeSet<u32> = section
        .split("AADSTS")
        .skip(1)
        .filter_map(|r| r.split(|c: char| !c.is_ascii_digit()).next().and_then(|d| d.parse().ok()))
        .collect();
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/oauth.rs")).unwrap();
    let body = src.split("fn hint_for(").nth(1).unwrap().split("\n}\n").next().unwrap();
    let in_code: BTreeSet<u32> = body
        .lines()
        .filter_map(|l| l.trim().split("=>").next().filter(|_| l.contains("=>")))
        .flat_map(|pat| pat.split('|').filter_map(|c| c.trim().parse::<u32>().ok()).collect::<Vec<_>>())
        .collect();
    assert!(in_code.len() >= 10, "{in_code:?}");
    assert_eq!(in_readme, in_code, "README troubleshooting table vs oauth::hint_for");

    // Codes whose advice differs for a refused stored sign-in: their row says both.
    let body = src.split("fn hint_for_stored_sign_in(").nth(1).unwrap().split("\n}\n").next().unwrap();
    let situational: Vec<u32> = body
        .lines()
        .filter_map(|l| l.trim().split("=>").next().filter(|_| l.contains("=>")))
        .flat_map(|pat| pat.split('|').filter_map(|c| c.trim().parse::<u32>().ok()).collect::<Vec<_>>())
        .collect();
    assert!(!situational.is_empty());
    for code in situational {
        let row = section.lines().find(|l| l.contains(&format!("AADSTS{code}"))).unwrap_or_else(|| panic!("no README row for AADSTS{code}"));
        assert!(row.contains("--flow") && row.contains("--tenant"), "README row for AADSTS{code} must give both situations' advice: {row}");
    }
}
