//! The integration tests as one crate, so a change to the library links one test binary
//! instead of one per suite: each suite is a module here and `support` (the mock Entra
//! authority on 127.0.0.1, `Sandbox`, output helpers) is compiled once.
//! One suite: `cargo test --test it <suite>::` (e.g. `cargo test --test it core::`).

mod support;

// The suites that build and run under Wine for Windows (scripts/windows.sh) carry no cfg;
// the others drive Linux-only tools or POSIX APIs (real git, kubectl, docker, az, sh
// scripts, gnome-keyring, unshare, file modes, other uids) and are built on Unix only.

#[cfg(unix)]
mod agent;
#[cfg(target_os = "linux")]
mod agent_confirm;
#[cfg(unix)]
mod azure_cli;
#[cfg(unix)]
mod azure_cli_auto;
#[cfg(unix)]
mod azure_pipelines;
#[cfg(unix)]
mod bazel;
#[cfg(unix)]
mod cargo;
#[cfg(unix)]
mod completions_man;
mod concurrency;
mod core;
#[cfg(unix)]
mod docker;
#[cfg(unix)]
mod docker_agent;
#[cfg(unix)]
mod doctor;
#[cfg(unix)]
mod faults;
#[cfg(unix)]
mod filesystem;
#[cfg(unix)]
mod first_contact;
#[cfg(unix)]
mod git;
#[cfg(unix)]
mod hostile_authority;
#[cfg(unix)]
mod hostile_replies;
#[cfg(unix)]
mod identity;
#[cfg(unix)]
mod kubectl;
#[cfg(unix)]
mod machine_sources;
#[cfg(unix)]
mod mock_authority;
#[cfg(unix)]
mod no_prompt;
#[cfg(unix)]
mod packages;
mod process_death;
#[cfg(unix)]
mod profile_cli;
#[cfg(unix)]
mod protocol_examples;
#[cfg(unix)]
mod readme;
#[cfg(unix)]
mod secret_store;
mod serve;
#[cfg(unix)]
mod service_fabric;
#[cfg(unix)]
mod setup;
#[cfg(unix)]
mod setup_tools;
mod sign_in;
#[cfg(unix)]
mod sign_in_terminal;
#[cfg(unix)]
mod tenants;
#[cfg(unix)]
mod token_safety;
#[cfg(unix)]
mod url_scope;
#[cfg(unix)]
mod verbose;
mod windows;

/// Every suite is built: with `autotests = false` a new `tests/*.rs` would be skipped
/// silently, and a file here that no `mod` line names would never compile.
#[test]
fn every_suite_is_a_module_of_this_crate() {
    let tests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let names = |dir: &std::path::Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.unwrap().file_name().into_string().ok())
            .filter_map(|n| n.strip_suffix(".rs").map(str::to_string))
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&tests), Vec::<String>::new(), "suites belong in tests/it/ with a `mod` line in tests/it/main.rs");
    let main = include_str!("main.rs");
    for suite in names(&tests.join("it")).iter().filter(|n| *n != "main") {
        assert!(main.lines().any(|l| l == format!("mod {suite};")), "tests/it/{suite}.rs is not a module: add `mod {suite};` to tests/it/main.rs");
    }
}
