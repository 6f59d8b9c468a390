//! The integration tests as one crate, so a change to the library links one test binary
//! instead of one per suite: each suite is a module here and `support` (the mock Entra
//! authority on 127.0.0.1, `Sandbox`, output helpers) is compiled once.
//! One suite: `cargo test --test it <suite>::` (e.g. `cargo test --test it core::`).

mod support;

// The suites that build and run under Wine for Windows (scripts/windows.sh) carry no cfg;
// inside them, a test needing a Linux-only tool or API is `#[cfg(unix)]` with a comment
// saying why. The suites still cfg'd here need such tools in every test (real git,
// symlinks, gnome-keyring, unshare, file modes, other uids, util-linux `script`,
// bash/zsh/man, dpkg, the agent's Unix socket) or are not yet ported (no_prompt).

#[cfg(unix)]
mod agent;
#[cfg(target_os = "linux")]
mod agent_boundary;
#[cfg(target_os = "linux")]
mod agent_confirm;
mod azure_cli;
mod azure_cli_auto;
mod azure_pipelines;
mod cache_trust;
mod cae;
mod bazel;
mod cargo;
#[cfg(unix)]
mod completions_man;
mod concurrency;
mod core;
mod cross_tenant_mi;
mod docker;
#[cfg(unix)]
mod docker_agent;
mod doctor;
mod emulator;
mod emulator_clients;
mod exec;
mod faults;
#[cfg(unix)]
mod filesystem;
mod first_contact;
#[cfg(unix)]
mod git;
mod hostile_authority;
mod hostile_replies;
mod identity;
mod kubectl;
#[cfg(unix)]
mod kubectl_pop;
mod machine_sources;
mod maven;
mod mock_authority;
mod newcomer;
#[cfg(unix)]
mod no_prompt;
mod npm;
mod nuget;
#[cfg(unix)]
mod packages;
mod process_death;
mod pop;
#[cfg(unix)]
mod pop_store;
mod profile_cli;
mod protocol_examples;
#[cfg(unix)]
mod pyfeeds;
#[cfg(unix)]
mod readme;
#[cfg(unix)]
mod secret_store;
mod serve;
mod service_fabric;
mod setup;
#[cfg(unix)]
mod setup_tools;
mod sign_in;
mod sign_out;
#[cfg(unix)]
mod sign_in_terminal;
#[cfg(unix)]
mod ssh;
mod tenants;
mod test_env;
mod token_safety;
#[cfg(unix)]
mod trusted_files;
mod url_scope;
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
