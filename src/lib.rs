//! entra-token: parse, dispatch, map the error to an exit code. Nothing else.
//! A library so the fuzz targets (`fuzz/`) and property tests can reach the decoders;
//! `main.rs` only calls [`run`]. New modules and subcommand arms go here.
//!
//! The modules in layers, top first. A module imports only its own layer and those below
//! it (a unit test, `layers.rs`, reads every `use crate::…` against this list):
//!
//! 1. cli, commands, fuzz, emulator: what a person (or a fuzzer) runs: the clap tree, one module per subcommand, and the local Entra emulator (`entra-token emulator`, `demo`)
//! 2. protocols, urlmatch: the exec protocols, pure codecs plus thin adapters, and URL → profile matching
//! 3. broker: the entry every front end calls; composes the layers below from outside: agent → acr → login_wait → tokens
//! 4. acr, agent, login_wait: layers around the core, each calling only inward: ACR's exchange of the Entra token; the token agent's client (ENTRA_TOKEN_AGENT); waiting for a login elsewhere
//! 5. tokens: the core: cache lookup → per-key lock → re-check → acquire → store, knowing none of the layers around it
//! 6. flows: one module per grant or token source (the person flows under `flows::user`)
//! 7. rt_store: signed-in people and their refresh tokens, in a file or the OS keyring
//! 8. config, config_errors, authority, oauth, http, jwt, pop: profiles, clouds, the token endpoint's wire format, HTTP, PoP keys and signed requests
//! 9. cache: the token files, locked, atomic and private
//! 10. fs, at_rest, os_keyring, console, peer, notify, os_secret, os_rsa, child: the platform: file-system chokepoint, sealing at rest, our secrets in the OS keyring (or files, by a profile's `storage`), the person's console, local peers' uids, desktop notifications, secrets other programs keep in the OS store, RSA keys from the OS where ssh-keygen is missing, signals passed on to a program we run
//! 11. env, error, suggest, clock, log, secret: variable names and ambient lookups, errors and "did you mean", time, stderr, redaction

mod acr;
mod agent;
mod at_rest;
mod authority;
mod broker;
mod cache;
mod child;
mod cli;
mod clock;
mod commands;
mod config;
mod config_errors;
mod console;
mod emulator;
mod env;
mod error;
mod flows;
mod fs;
mod http;
mod jwt;
mod log;
mod login_wait;
mod notify;
mod oauth;
mod os_keyring;
mod peer;
mod pop;
mod protocols;
mod os_secret;
mod os_rsa;
mod rt_store;
mod secret;
mod suggest;
mod tokens;
mod urlmatch;

#[doc(hidden)]
pub mod fuzz;
#[cfg(test)]
mod layers;

use clap::Parser;
use std::io::IsTerminal;
use std::process::ExitCode;

/// The whole program, on the process's own arguments.
pub fn run() -> ExitCode {
    run_with(std::env::args_os().collect())
}

/// The whole program, on `args` (argv, with the name we were run as first).
pub fn run_with(args: Vec<std::ffi::OsString>) -> ExitCode {
    // Tools run us under their own names and argv (git, cargo, az, …): the environment is
    // the only way to ask those runs for a trace.
    let env_verbosity = env::raw(env::VERBOSE).and_then(|v| v.trim().parse::<u8>().ok()).unwrap_or(0);
    log::set_verbosity(env_verbosity);
    if let Some(result) = protocols::multicall(&args) {
        return exit(result);
    }
    // The native protocol's hot path: no arguments, so clap has nothing to parse and
    // building its command tree would cost a cached answer ~8% of its instructions.
    if args.len() == 1 && !std::io::stdin().is_terminal() {
        return exit(protocols::native::serve());
    }
    let cli = match cli::parse_hot(&args).map_or_else(|| cli::Cli::try_parse_from(&args), Ok) {
        Ok(cli) => cli,
        Err(e) => return clap_exit(e, &args),
    };
    log::set_verbosity(cli.verbose.max(env_verbosity));
    let result = match &cli.command {
        Some(cli::Command::GetToken(args)) => commands::get_token::run(args),
        Some(cli::Command::Setup(args)) => commands::setup::run(args),
        Some(cli::Command::Profile(args)) => commands::profile::run(args),
        Some(cli::Command::Doctor(args)) => commands::doctor::run(args),
        Some(cli::Command::Serve(args)) => commands::serve::run(args),
        Some(cli::Command::Emulator(args)) => emulator::run(args),
        Some(cli::Command::Demo(args)) => emulator::demo::run(args),
        #[cfg(unix)]
        Some(cli::Command::Agent(args)) => commands::agent::run(args),
        #[cfg(not(unix))]
        Some(cli::Command::Agent(_)) => Err(error::Error::bad_input("`entra-token agent` needs Unix sockets, which this platform lacks")),
        Some(cli::Command::Completions(args)) => commands::generate::completions(args),
        Some(cli::Command::Man(args)) => commands::generate::man(args),
        Some(cli::Command::Az(a)) => protocols::az::run(a.args.clone()),
        Some(cli::Command::Azd(a)) => protocols::azd::run(a.args.clone()),
        Some(cli::Command::Bazel(a)) => protocols::bazel::run(a.command.as_deref()),
        Some(cli::Command::Docker(a)) => protocols::docker::run(a.command.as_deref()),
        Some(cli::Command::Kubectl(args)) => protocols::kubectl::run(args),
        Some(cli::Command::Git(args)) => protocols::git::run(args),
        Some(cli::Command::Login(args)) => commands::login::run(args),
        Some(cli::Command::Logout(args)) => commands::logout::run(args),
        Some(cli::Command::Refresh(args)) => commands::refresh::run(args),
        Some(cli::Command::Inspect(args)) => commands::inspect::run(args),
        Some(cli::Command::Exec(args)) => commands::exec::run(args),
        Some(cli::Command::Ssh(args)) => commands::ssh::run(args),
        Some(cli::Command::Status(args)) | Some(cli::Command::Cache(commands::status::CacheArgs { command: commands::status::CacheCommand::List(args) })) => commands::status::run(args),
        None if std::io::stdin().is_terminal() => {
            use clap::CommandFactory;
            let _ = cli::Cli::command().print_help();
            Ok(ExitCode::SUCCESS)
        }
        None => protocols::native::serve(),
    };
    exit(result)
}

/// Maps the outcome to the process exit code, reporting an error as one line on stderr.
fn exit(result: error::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            // A message of several lines (the first says what to do, details follow):
            // each line carries the prefix.
            for l in error::one_line(&e).lines() {
                log::error(format_args!("{l}"));
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// The subcommands typed (`entra-token get-token`), for an error clap prints no usage with
/// (a bad value): the words after the flags that name a subcommand, in order.
fn typed_command(args: &[std::ffi::OsString]) -> String {
    use clap::CommandFactory;
    let mut cmd = cli::Cli::command();
    let mut path = vec!["entra-token".to_string()];
    for word in args.iter().skip(1).filter_map(|a| a.to_str()).filter(|a| !a.starts_with('-')) {
        let Some(sub) = cmd.find_subcommand(word).cloned() else { break };
        path.push(sub.get_name().to_string());
        cmd = sub;
    }
    path.join(" ")
}

/// Help and version go to stdout with 0; a usage error is one line on stderr and exit 1.
fn clap_exit(e: clap::Error, args: &[std::ffi::OsString]) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    // clap's rendering is several lines (the error, its tips such as "a similar subcommand
    // exists: 'get-token'", usage); ours is one: the error, then the tips.
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("").trim_start_matches("error: ");
    // The rest of the first paragraph: what is missing (`  <HOST>...`), possible values.
    let listed: Vec<&str> = text.lines().skip(1).map(str::trim).take_while(|l| !l.is_empty()).collect();
    let first = if listed.is_empty() { first.to_string() } else { format!("{first} {}", listed.join(", ")) };
    let mut tips: Vec<String> = text.lines().filter_map(|l| l.trim().strip_prefix("tip: ")).map(str::to_string).collect();
    // `Usage: entra-token ssh config <HOST>...`: the subcommand whose help to read.
    let usage = text.lines().find_map(|l| l.trim().strip_prefix("Usage: ")).unwrap_or("");
    let command: Vec<&str> = usage.split_whitespace().take_while(|w| !w.starts_with(['[', '<', '-'])).collect();
    let command = if command.is_empty() { typed_command(args) } else { command.join(" ") };
    // A program typed without the `--` that `exec` wants before it.
    if e.kind() == ErrorKind::UnknownArgument
        && usage.contains("[-- <")
        && let Some(clap::error::ContextValue::String(arg)) = e.get(clap::error::ContextKind::InvalidArg)
    {
        tips.push(format!("the command to run goes after `--`: {command} [OPTIONS] -- {arg} …"));
    }
    let tips = if tips.is_empty() { String::new() } else { format!("; {}", tips.join("; ")) };
    log::error(format_args!("{first}{tips} (see `{command} --help`)"));
    ExitCode::from(1)
}
