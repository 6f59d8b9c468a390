//! The integration tests as one crate, so a change to the library links one test binary
//! instead of one per suite: each suite is a module here and `support` (the mock Entra
//! authority on 127.0.0.1, `Sandbox`, output helpers) is compiled once.
//! One suite: `cargo test --test it <suite>::` (e.g. `cargo test --test it core::`).

mod support;

mod agent;
mod azure_cli;
mod azure_cli_auto;
mod azure_pipelines;
mod bazel;
mod cargo;
mod completions_man;
mod concurrency;
mod core;
mod docker;
mod doctor;
mod faults;
mod filesystem;
mod first_contact;
mod git;
mod hostile_authority;
mod hostile_replies;
mod identity;
mod kubectl;
mod machine_sources;
mod mock_authority;
mod no_prompt;
mod packages;
mod process_death;
mod profile_cli;
mod protocol_examples;
mod readme;
mod secret_store;
mod serve;
mod service_fabric;
mod setup;
mod setup_tools;
mod sign_in;
mod sign_in_terminal;
mod tenants;
mod token_safety;
mod url_scope;
mod verbose;
mod windows;
