//! Keeps the arrows of the layer list in `lib.rs`'s `//!` pointing down: a test reads every
//! module's `use crate::…` paths and fails on one that reaches a layer above its own; and
//! keeps every read of the environment in `env`.

use std::collections::BTreeMap;
use std::path::Path;

/// The layer list from `lib.rs`'s `//!` lines of the form `//! N. a, b, c: why`, top first:
/// each top-level module name with its rank (0 is the top).
fn layers(lib: &str) -> BTreeMap<String, usize> {
    let mut rank = BTreeMap::new();
    for line in lib.lines().filter_map(|l| l.strip_prefix("//! ")) {
        let Some((n, rest)) = line.split_once(". ") else { continue };
        let Ok(n) = n.trim().parse::<usize>() else { continue };
        let names = rest.split_once(':').map_or(rest, |(names, _)| names);
        for name in names.split(',').map(|s| s.trim().trim_matches('`')) {
            rank.insert(name.to_string(), n);
        }
    }
    rank
}

/// The top-level modules a file's non-test code names as `crate::x` (also inside `use crate::{x, y}`).
fn imports(text: &str) -> Vec<String> {
    // A file's unit tests may reach anywhere; they sit in a trailing `mod tests`.
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    let code: String = code.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    let mut out = Vec::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if matches!(before, Some(c) if c == '$' || c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            // The first name of each item at the group's own depth: `{b::{Y, Z}, c}` → b, c.
            let (mut depth, mut start) = (1, true);
            let mut name = String::new();
            for c in group.chars() {
                if c.is_alphanumeric() || c == '_' {
                    if depth == 1 && start {
                        name.push(c);
                    }
                    continue;
                }
                if !name.is_empty() {
                    out.push(std::mem::take(&mut name));
                    start = false;
                }
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 1 => start = true,
                    _ => {}
                }
                if depth == 0 {
                    break;
                }
            }
        } else {
            out.push(rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
        }
    }
    out.retain(|m| !m.is_empty() && m != "self");
    out
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_module_imports_a_layer_above_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let rank = layers(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    assert!(rank.len() > 10, "lib.rs lists the layers as `//! N. a, b: why` lines: {rank:?}");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel.iter().next().unwrap().to_string_lossy().trim_end_matches(".rs").to_string();
        if matches!(top.as_str(), "lib" | "main" | "layers") {
            continue;
        }
        let Some(&own) = rank.get(&top) else {
            wrong.push(format!("src/{} is in no layer of lib.rs's list", rel.display()));
            continue;
        };
        for m in imports(&std::fs::read_to_string(&file).unwrap()) {
            match rank.get(&m) {
                Some(&r) if r < own => wrong.push(format!("src/{} (layer {own}) imports crate::{m} (layer {r})", rel.display())),
                Some(_) => {}
                None => wrong.push(format!("src/{} imports crate::{m}, which is in no layer", rel.display())),
            }
        }
    }
    assert!(wrong.is_empty(), "arrows must point down (lib.rs lists the layers):\n{}", wrong.join("\n"));
}

#[test]
fn the_checker_sees_grouped_and_plain_imports_but_not_tests() {
    let text = "use crate::a::X;\nuse crate::{b::{Y, Z}, c};\nuse crate::{\n    f,\n    g::h,\n};\n// crate::commented\nlet _ = $crate::log::x;\nfn f() { crate::d::g() }\n#[cfg(test)]\nmod tests { use crate::e; }\n";
    assert_eq!(imports(text), ["a", "b", "c", "f", "g", "d"]);
    assert_eq!(layers("//! 1. cli, commands: top\n//! 2. broker\n//! not a layer").get("broker"), Some(&2));
}

#[test]
fn every_module_says_why_it_exists_and_stays_readable() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let rel = file.strip_prefix(&src).unwrap().display().to_string();
        if !text.starts_with("//! ") {
            wrong.push(format!("src/{rel} does not open with a `//!` line saying why it exists"));
        }
        let lines = text.lines().count();
        if lines > 600 {
            wrong.push(format!("src/{rel} has {lines} lines; split it (600 at most)"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The tests and the benchmark are read by newcomers too: the same 600-line limit.
#[test]
fn test_and_bench_files_stay_readable() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["tests", "bench/src"] {
        if root.join(dir).is_dir() {
            rust_files(&root.join(dir), &mut files);
        }
    }
    let wrong: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let lines = std::fs::read_to_string(f).ok()?.lines().count();
            (lines > 600).then(|| format!("{} has {lines} lines; split it (600 at most)", f.strip_prefix(root).unwrap_or(f).display()))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Files that still read the environment themselves, each with why.
const READS_ELSEWHERE: &[(&str, &str)] = &[];

/// Does a file's non-test code read the environment (or import `std::env`, which would let it)?
fn reads_environment(text: &str) -> bool {
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    code.lines().filter(|l| !l.trim_start().starts_with("//")).any(|l| l.contains("std::env::var") || l.contains("use std::env"))
}

#[test]
fn only_env_reads_the_environment() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        // This file is test code that spells the patterns it looks for.
        if rel == "env.rs" || rel == "layers.rs" || READS_ELSEWHERE.iter().any(|(f, _)| *f == rel) {
            continue;
        }
        if reads_environment(&std::fs::read_to_string(&file).unwrap()) {
            wrong.push(format!("src/{rel} reads the environment itself; name the variable in src/env.rs and read it through env's accessors"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    for (f, _) in READS_ELSEWHERE {
        assert!(reads_environment(&std::fs::read_to_string(src.join(f)).unwrap()), "src/{f} no longer reads the environment: drop it from READS_ELSEWHERE");
    }
}

#[test]
fn the_environment_checker_sees_reads_but_not_tests_or_comments() {
    assert!(reads_environment("fn f() { std::env::var_os(\"X\"); }"));
    assert!(reads_environment("use std::env;\nfn f() { env::var(\"X\"); }"));
    assert!(!reads_environment("// std::env::var(\"X\")\nfn f() { crate::env::var(crate::env::PROFILE); std::env::temp_dir(); }"));
    assert!(!reads_environment("fn f() {}\n#[cfg(test)]\nmod tests { fn g() { std::env::var(\"X\"); } }"));
}
