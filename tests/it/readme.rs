//! The documentation against the binary and the code, so what a newcomer copies works:
//! every `entra-token SUB [SUB…] --flag` in a shell block of README.md, docs/*.md,
//! bench/README.md or fuzz/README.md names a subcommand `--help` lists and flags that
//! subcommand takes; the tables that mirror the code (AADSTS hints, resource aliases,
//! config keys) are read from the code; every relative link resolves; each completion
//! line sits in a block for its own shell; no page uses a profile before it shows how to
//! make it; `.ci/run` runs the README's test command.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use crate::support::{Sandbox, run};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Every documentation page a reader can reach from the README, with its path relative to
/// the repository root.
fn pages() -> Vec<(String, String)> {
    let mut names = vec!["README.md".to_string(), "bench/README.md".to_string(), "fuzz/README.md".to_string()];
    let mut docs: Vec<String> = std::fs::read_dir(Path::new(ROOT).join("docs"))
        .expect("a docs/ directory")
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    assert!(docs.len() >= 10, "docs/ has only {docs:?}");
    names.extend(docs);
    names.into_iter().map(|n| (std::fs::read_to_string(Path::new(ROOT).join(&n)).unwrap_or_else(|e| panic!("{n}: {e}")), n)).map(|(t, n)| (n, t)).collect()
}

fn page(name: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Fenced blocks: (language, lines).
fn blocks(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(lang) = t.strip_prefix("```") {
            match current.take() {
                Some(block) => out.push(block),
                None => current = Some((lang.trim().to_string(), Vec::new())),
            }
            continue;
        }
        if let Some((_, lines)) = current.as_mut() {
            lines.push(line.to_string());
        }
    }
    out
}

const SHELLS: &[&str] = &["sh", "bash", "shell", "zsh", "fish", "powershell", "pwsh", "console"];

/// Lines inside shell blocks (sh, bash, zsh, fish, powershell, …).
fn shell_lines(text: &str) -> Vec<String> {
    blocks(text).into_iter().filter(|(lang, _)| SHELLS.contains(&lang.as_str())).flat_map(|(_, l)| l).collect()
}

/// `entra-token [path…] --help` output.
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

/// The words of each `entra-token …` command on a line, up to a shell operator or comment.
fn invocations(line: &str) -> Vec<Vec<String>> {
    line.split("entra-token ")
        .skip(1)
        .map(|chunk| {
            chunk
                .split_whitespace()
                .take_while(|w| !matches!(*w, "|" | "||" | "&&" | ";" | ">" | ">>" | "<" | "&" | "#" | "\\") && !w.starts_with('#') && !w.starts_with('>'))
                .map(|w| w.trim_matches(|c| c == '"' || c == '\'' || c == ')' || c == '(' || c == '`' || c == ';').to_string())
                .collect()
        })
        .collect()
}

#[test]
fn every_command_in_the_docs_exists_with_its_flags() {
    let sb = Sandbox::new();
    let top = help(&sb, &[]).unwrap();
    let mut cache: BTreeMap<Vec<String>, String> = BTreeMap::new();
    let mut checked = 0;
    let mut all_text = String::new();
    for (name, text) in pages() {
        all_text.push_str(&text);
        for line in shell_lines(&text) {
            for words in invocations(&line) {
                let mut path: Vec<String> = Vec::new();
                let mut current = top.clone();
                for w in &words {
                    if commands(&current).contains(w) {
                        path.push(w.clone());
                        current = cache
                            .entry(path.clone())
                            .or_insert_with(|| help(&sb, &path).unwrap_or_else(|| panic!("{name}: `entra-token {} --help` fails", path.join(" "))))
                            .clone();
                    } else {
                        break;
                    }
                }
                if path.is_empty() {
                    // `entra-token` alone (the native protocol) or `entra-token -v …`.
                    continue;
                }
                // After `--` the words are another program's (`entra-token exec -- CMD …`).
                for flag in words.iter().take_while(|w| *w != "--").filter(|w| w.starts_with("--")) {
                    let flag = flag.split('=').next().unwrap();
                    assert!(current.contains(flag), "{name}: `entra-token {}` has no flag {flag} (line: {line})", path.join(" "));
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 40, "only {checked} documented commands found");
    // And the other way: every user-facing subcommand is shown somewhere.
    for sub in commands(&top) {
        if sub != "help" {
            assert!(all_text.contains(&format!("entra-token {sub}")), "no page shows `entra-token {sub}`");
        }
    }
}

/// The README is a front page: short, opening with the two commands, the test command being
/// the one `.ci/run` runs, and every docs/ page reachable from it.
#[test]
fn the_readme_is_a_front_page_linking_every_docs_page() {
    let readme = page("README.md");
    let lines = readme.lines().count();
    assert!(lines <= 300, "README.md has {lines} lines; the reference belongs in docs/");
    let (lang, first) = blocks(&readme).into_iter().next().expect("a first code block");
    assert_eq!(lang, "sh");
    assert!(first.len() == 2 && first[0].contains("-- demo") && first[0].contains("main job"), "{first:?}");
    let test_command = first[1].split('#').next().unwrap().trim().to_string();
    assert!(test_command.starts_with("cargo test"), "{first:?}");
    let ci = page(".ci/run");
    let last = ci.lines().rev().find(|l| !l.trim().is_empty()).unwrap().trim();
    assert_eq!(last, test_command, ".ci/run must end with the README's test command");

    for (name, _) in pages().into_iter().filter(|(n, _)| n != "README.md") {
        assert!(readme.contains(&format!("]({name})")), "README.md does not link {name}");
    }
}

/// GitHub's anchor for a heading.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut inside = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            inside = !inside;
        } else if !inside && line.starts_with('#') {
            out.insert(slug(line.trim_start_matches('#')));
        }
    }
    out
}

/// Relative links `](target)` outside code blocks.
fn links(text: &str) -> Vec<String> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            inside = !inside;
            continue;
        }
        if inside {
            continue;
        }
        for part in line.split("](").skip(1) {
            if let Some(end) = part.find(')') {
                let target = &part[..end];
                if !target.contains("://") && !target.starts_with("mailto:") {
                    out.push(target.to_string());
                }
            }
        }
    }
    out
}

#[test]
fn every_relative_link_resolves() {
    let mut count = 0;
    for (name, text) in pages() {
        let base: PathBuf = Path::new(ROOT).join(&name).parent().unwrap().to_path_buf();
        for link in links(&text) {
            let (file, anchor) = link.split_once('#').map_or((link.as_str(), None), |(f, a)| (f, Some(a)));
            let target = if file.is_empty() { Path::new(ROOT).join(&name) } else { base.join(file) };
            assert!(target.exists(), "{name}: link ({link}) points at {} which does not exist", target.display());
            if let Some(anchor) = anchor {
                let body = std::fs::read_to_string(&target).unwrap_or_default();
                assert!(anchors(&body).contains(anchor), "{name}: link ({link}): no heading with anchor #{anchor} in {}", target.display());
            }
            count += 1;
        }
    }
    assert!(count >= 30, "only {count} links");
}

/// `(A, B)` pairs from `pub(crate) const NAME: &[(&str, &str)] = &[…];` in some file under src/.
fn source_files() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push((p.clone(), std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(ROOT).join("src"), &mut out);
    out
}

fn source_with(marker: &str) -> String {
    source_files().into_iter().find(|(_, s)| s.contains(marker)).unwrap_or_else(|| panic!("no source file has `{marker}`")).1
}

/// Rows `| a | b |` of the markdown table under the heading `heading` of `text`.
fn table_under(text: &str, heading: &str) -> Vec<Vec<String>> {
    let section = text.split(&format!("\n{heading}\n")).nth(1).unwrap_or_else(|| panic!("no heading {heading}"));
    let section = section.split("\n#").next().unwrap();
    section
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---"))
        .skip(1)
        .map(|l| l.trim_matches('|').split(" | ").map(|c| c.trim().to_string()).collect())
        .collect()
}

fn backticked(cell: &str) -> Vec<String> {
    cell.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

#[test]
fn the_alias_table_is_the_code_s_alias_list() {
    let src = source_with("const ALIASES");
    let body = src.split("const ALIASES").nth(1).unwrap().split("];").next().unwrap();
    let in_code: BTreeSet<(String, String)> = body
        .split("(\"")
        .skip(1)
        .filter_map(|t| {
            let mut q = t.split('"');
            let alias = q.next()?;
            q.next();
            let uri = q.next()?;
            Some((alias.to_string(), uri.to_string()))
        })
        .collect();
    assert!(in_code.len() >= 20, "{in_code:?}");
    let mut in_docs = BTreeSet::new();
    for row in table_under(&page("docs/profiles.md"), "## Resource aliases") {
        let uri = backticked(&row[1]).remove(0);
        for alias in backticked(&row[0]) {
            in_docs.insert((alias, uri.clone()));
        }
    }
    assert_eq!(in_docs, in_code, "docs/profiles.md's alias table vs the code's ALIASES");
}

#[test]
fn the_config_key_table_is_the_profile_struct() {
    let src = source_with("struct ProfileConfig");
    let body = src.split("struct ProfileConfig").nth(1).unwrap().split("\n}").next().unwrap();
    let in_code: BTreeSet<String> = body
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub ").and_then(|r| r.split(':').next()))
        .map(|k| k.trim().to_string())
        .collect();
    assert!(in_code.len() >= 25, "{in_code:?}");
    let in_docs: BTreeSet<String> = table_under(&page("docs/profiles.md"), "## Config keys").iter().map(|row| backticked(&row[0]).remove(0)).collect();
    assert_eq!(in_docs, in_code, "docs/profiles.md's config key table vs ProfileConfig");
}

#[test]
fn the_troubleshooting_table_matches_the_hints_in_the_code() {
    let text = page("docs/troubleshooting.md");
    let section = text.split("## Entra's refusals").nth(1).expect("an AADSTS section");
    let section = section.split("\n## ").next().unwrap();
    let in_docs: BTreeSet<u32> = section
        .split("AADSTS")
        .skip(1)
        .filter_map(|r| r.split(|c: char| !c.is_ascii_digit()).next().and_then(|d| d.parse().ok()))
        .collect();
    let src = source_with("fn hint_for(");
    let codes = |func: &str| -> Vec<u32> {
        let body = src.split(func).nth(1).unwrap().split("\n}\n").next().unwrap();
        body.lines()
            .filter_map(|l| l.trim().split("=>").next().filter(|_| l.contains("=>")))
            .flat_map(|pat| pat.split('|').filter_map(|c| c.trim().parse::<u32>().ok()).collect::<Vec<_>>())
            .collect()
    };
    let in_code: BTreeSet<u32> = codes("fn hint_for(").into_iter().collect();
    assert!(in_code.len() >= 10, "{in_code:?}");
    assert_eq!(in_docs, in_code, "docs/troubleshooting.md's table vs oauth::hint_for");

    // Codes whose advice differs for a refused stored sign-in: their row says both.
    let situational = codes("fn hint_for_stored_sign_in(");
    assert!(!situational.is_empty());
    for code in situational {
        let row = section.lines().find(|l| l.contains(&format!("AADSTS{code}"))).unwrap_or_else(|| panic!("no row for AADSTS{code}"));
        assert!(row.contains("--flow") && row.contains("--tenant"), "the row for AADSTS{code} must give both situations' advice: {row}");
    }
}

/// `entra-token completions SHELL` sits in a block for that shell, after a line creating
/// the directory it writes into (a zsh line pasted into bash writes to `/_entra-token`).
#[test]
fn completion_lines_sit_in_their_own_shell_s_block() {
    let mut seen = BTreeSet::new();
    for (name, text) in pages() {
        for (lang, lines) in blocks(&text) {
            for (i, line) in lines.iter().enumerate() {
                for words in invocations(line) {
                    if words.first().map(String::as_str) != Some("completions") {
                        continue;
                    }
                    let shell = words.get(1).unwrap_or_else(|| panic!("{name}: {line}"));
                    let ok = lang == *shell || (shell == "bash" && lang == "sh") || (shell == "powershell" && lang == "pwsh");
                    assert!(ok, "{name}: `{line}` sits in a ```{lang} block, not ```{shell}");
                    if let Some(target) = line.split("> ").nth(1) {
                        let dir = Path::new(target.split_whitespace().next().unwrap()).parent().unwrap().to_str().unwrap().to_string();
                        assert!(!dir.contains('$'), "{name}: `{line}` writes into a directory a variable names");
                        let made = lines[..=i].iter().any(|l| l.contains("mkdir -p") && l.contains(&dir));
                        assert!(made, "{name}: `{line}` writes into {dir} without creating it first");
                    }
                    seen.insert(shell.clone());
                }
            }
        }
    }
    for shell in ["bash", "zsh", "fish", "powershell"] {
        assert!(seen.contains(shell), "no completion line for {shell}");
    }
}

/// Each page, read top to bottom, shows how a profile is made before an example uses it.
#[test]
fn no_example_uses_a_profile_before_the_page_makes_it() {
    for (name, text) in pages() {
        let mut made: BTreeSet<String> = ["default"].into_iter().map(String::from).collect();
        for (lang, lines) in blocks(&text) {
            for line in &lines {
                if lang == "toml" {
                    if let Some(p) = line.trim().strip_prefix("[profiles.") {
                        made.insert(p.trim_end_matches(']').to_string());
                    }
                    continue;
                }
                if !SHELLS.contains(&lang.as_str()) {
                    continue;
                }
                for words in invocations(line) {
                    if words.len() >= 3 && words[0] == "profile" && words[1] == "add" {
                        made.insert(words[2].clone());
                    }
                    for pair in words.windows(2) {
                        if matches!(pair[0].as_str(), "-p" | "--profile") {
                            let p = &pair[1];
                            let placeholder = p.chars().all(|c| c.is_ascii_uppercase() || c == '_');
                            assert!(placeholder || made.contains(p), "{name}: `{line}` uses profile '{p}' before the page shows how to make it");
                        }
                    }
                }
                if let Some(p) = line.split("\"profile\":\"").nth(1).and_then(|r| r.split('"').next()) {
                    assert!(made.contains(p), "{name}: `{line}` uses profile '{p}' before the page shows how to make it");
                }
            }
        }
    }
}

/// The README's blocks run as pasted, in order, by a new user in a fresh HOME (nothing set
/// but HOME and PATH, with entra-token on PATH) against the product's own emulator, started
/// by the Quick start's own line (`eval "$(entra-token emulator --background …)"`), whose
/// exports every later block gets, as in the user's shell: the quick start, the CI profile,
/// the completion and man lines, the tool lines. Only the first block (cargo run/test: this
/// very build) and the install lines (a release build; the .deb, which needs root and is
/// proved in a clean root by scripts/test-packages.sh) are not run.
#[test]
fn the_readme_runs_as_written_in_a_fresh_home() {
    use crate::support::text;
    let sb = Sandbox::new();
    sb.link("entra-token");
    let home = sb.path("home");
    let path = format!("{}:{}", sb.path("bin").display(), std::env::var("PATH").unwrap_or_default());
    let readme = page("README.md");
    // The emulator the README starts in the background, stopped however this test ends.
    struct Stop(PathBuf);
    impl Drop for Stop {
        fn drop(&mut self) {
            if let Ok(pid) = std::fs::read_to_string(&self.0) {
                let _ = std::process::Command::new("kill").arg(pid.trim()).status();
            }
        }
    }
    let _stop = Stop(home.join("entra-emulator.pid"));
    let mut exports: Vec<(String, String)> = Vec::new();
    let mut ran = Vec::new();
    for (i, (lang, lines)) in blocks(&readme).into_iter().enumerate() {
        let body = lines.join("\n");
        if i == 0 || body.contains("cargo install") || body.contains("apt install") || !SHELLS.contains(&lang.as_str()) {
            continue;
        }
        let shell = match lang.as_str() {
            "sh" | "shell" | "console" => "sh",
            "powershell" | "pwsh" => "pwsh",
            other => other,
        };
        if !have(shell) {
            match shell {
                // PowerShell is not a Debian package; .ci/run cannot install it.
                "pwsh" => support::skip::not_here(&format!("README ```{lang} block: pwsh is not installed")),
                _ => support::skip::missing_tool(shell, &format!("README ```{lang} block")),
            }
            continue;
        }
        let starts_emulator = body.contains("entra-token emulator");
        assert!(exports.is_empty() || !starts_emulator, "the README starts the emulator twice");
        let mut cmd = sb.tool(shell);
        // A fresh user: no test overrides for config, cache or az, only HOME; the tools'
        // own config locations point into HOME too, whatever this machine's shell says.
        for var in ["ENTRA_TOKEN_CONFIG", "ENTRA_TOKEN_CACHE_DIR", "AZURE_CONFIG_DIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "CARGO_HOME", "DOCKER_CONFIG", "KUBECONFIG", "ZDOTDIR"] {
            cmd.env_remove(var);
        }
        cmd.env("HOME", &home).env("PATH", &path).envs(exports.iter().map(|(k, v)| (k, v)));
        // The block that starts the emulator also prints the environment it leaves, which
        // the user's shell keeps for every later block.
        let script = if starts_emulator { format!("{body}\nenv") } else { body.clone() };
        match shell {
            "fish" => cmd.args(["--no-config", "-c", &script]),
            "zsh" => cmd.args(["-f", "-e", "-c", &script]),
            "pwsh" => cmd.args(["-NoProfile", "-Command", &script]),
            _ => cmd.args(["-e", "-c", &script]),
        };
        let out = run(cmd);
        assert!(out.status.success(), "README ```{lang} block failed (exit {:?}):\n{body}\nstdout: {}\nstderr: {}", out.status.code(), text(&out.stdout), text(&out.stderr));
        if starts_emulator {
            let wanted = |k: &str| k.starts_with("AZURE_") || k.starts_with("ENTRA_TOKEN_") || k.starts_with("ENTRA_EMULATOR_") || ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"].contains(&k);
            exports = text(&out.stdout).lines().filter_map(|l| l.split_once('=')).filter(|(k, _)| wanted(k)).map(|(k, v)| (k.to_string(), v.to_string())).collect();
            assert!(exports.iter().any(|(k, v)| k == "AZURE_AUTHORITY_HOST" && v.starts_with("https://127.0.0.1:")), "the README's emulator line left no exports: {exports:?}");
        }
        ran.push(body);
    }
    assert!(!exports.is_empty(), "the README never starts the emulator");
    assert!(ran.iter().any(|b| b.contains("entra-token login")), "the quick start did not run");
    // What the quick start promised: a person signed in at the emulator, the CI profile's token, completions.
    assert!(home.join(".local/share/bash-completion/completions/entra-token").is_file());
    let mut status = sb.cmd();
    status.env_remove("ENTRA_TOKEN_CONFIG").env_remove("ENTRA_TOKEN_CACHE_DIR").env("HOME", &home).envs(exports.iter().map(|(k, v)| (k, v))).args(["status", "-o", "json"]);
    let status = text(&run(status).stdout);
    assert!(status.contains("alice@contoso.com") && status.contains("\"ci\""), "{status}");
}

fn have(tool: &str) -> bool {
    std::process::Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success())
}
