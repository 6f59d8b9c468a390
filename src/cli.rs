//! The command line, as clap types. Each subcommand's arguments live beside the code that
//! runs it; this file only lists them.

use crate::commands::doctor::DoctorArgs;
use crate::commands::generate::{CompletionsArgs, ManArgs};
use crate::commands::profile::ProfileArgs;
use crate::protocols::az::AzArgs;
use crate::protocols::azd::AzdArgs;
use crate::protocols::bazel::BazelArgs;
use crate::protocols::docker::DockerArgs;
use crate::commands::get_token::GetTokenArgs;
use crate::commands::serve::ServeArgs;
use crate::protocols::git::GitArgs;
use crate::protocols::kubectl::KubectlArgs;
use crate::commands::setup::SetupArgs;
use clap::{Parser, Subcommand};

/// A fast, cached Microsoft Entra ID token helper.
///
/// With no subcommand, reads one JSON request on stdin and writes one JSON answer on
/// stdout (see protocol/README.md), e.g.
///   echo '{"resource":"graph"}' | entra-token
#[derive(Debug, Parser)]
// The quick start's commands come first in `--help` (display_order 0..3 on their variants);
// every other subcommand keeps its place in the enum, numbered from 10 on, so a new
// variant needs no number.
#[command(name = "entra-token", version = VERSION, about, long_about = None, after_help = TOP_AFTER_HELP, next_display_order = 10)]
pub(crate) struct Cli {
    /// Trace each step to stderr (repeat for more); secrets are never shown.
    #[arg(short, long, action = clap::ArgAction::Count, global = true, display_order = 900)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `--version`: the release, the commit and the target it was built for (see build.rs).
pub(crate) const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("ENTRA_TOKEN_COMMIT"), ", ", env!("ENTRA_TOKEN_TARGET"), ")");

/// The headline interface, which has no subcommand of its own to describe it, then the exit codes.
const TOP_AFTER_HELP: &str = concat!(
    "With no command, a JSON request on stdin gets a JSON credential (the token and its expiry) on stdout:\n",
    "  echo '{\"resource\":\"graph\"}' | entra-token\n",
    "Request fields and errors: protocol/README.md in the source, or `entra-token man`.\n\n",
    "Exit codes: 0 success, 1 general error or bad input, 2 profile not found, 3 authentication failed, 4 network error, 5 timeout."
);

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print an access token for a profile and resource.
    #[command(name = "get-token", visible_alias = "token", display_order = 1)]
    GetToken(GetTokenArgs),
    /// List, show, add, remove profiles and pick the default (edits keep your comments).
    Profile(ProfileArgs),
    /// Check the setup: config, profile, cache, authority, clock, and which tools are wired to us.
    #[command(display_order = 3)]
    Doctor(DoctorArgs),
    /// Serve tokens on 127.0.0.1 as an App Service managed-identity endpoint (for Azure SDKs).
    Serve(ServeArgs),
    /// A local Microsoft Entra ID on 127.0.0.1 for demos and tests: prints `export` lines, then serves.
    Emulator(crate::emulator::EmulatorArgs),
    /// Walk the quick start against a built-in emulator in a throwaway HOME: no tenant, no network.
    Demo(crate::emulator::demo::DemoArgs),
    /// Hold sign-ins for other machines: answer token requests on a Unix socket (ENTRA_TOKEN_AGENT), like ssh-agent.
    Agent(crate::agent::AgentArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completions(CompletionsArgs),
    /// Print the man page (or write all pages with --dir).
    Man(ManArgs),
    /// Answer as the Azure CLI: `entra-token az account get-access-token …` (or link as `az`).
    #[command(disable_help_flag = true)]
    Az(AzArgs),
    /// Answer as the Azure Developer CLI: `entra-token azd auth token …` (or link as `azd`).
    #[command(disable_help_flag = true)]
    Azd(AzdArgs),
    /// Bazel credential helper: `entra-token bazel get` (or link as `entra-token-bazel`).
    Bazel(BazelArgs),
    /// Docker credential helper: `entra-token docker get|store|erase|list|version` (or link as `docker-credential-entra-token`).
    Docker(DockerArgs),
    /// Print (or with --apply write) the config a tool needs to use entra-token.
    Setup(SetupArgs),
    /// kubectl exec credential plugin (reads KUBERNETES_EXEC_INFO, prints an ExecCredential).
    Kubectl(KubectlArgs),
    /// git credential helper (get/store/erase); also runs as git-credential-entra-token.
    Git(GitArgs),
    /// Sign a person in now and keep the account (prompts go to stderr, even without a terminal).
    #[command(display_order = 0)]
    Login(crate::commands::login::LoginArgs),
    /// Remove a profile's account (refresh token) and its cached tokens.
    Logout(crate::commands::logout::LogoutArgs),
    /// Get a new access token through the stored refresh token (never prompts).
    Refresh(crate::commands::refresh::RefreshArgs),
    /// Decode a JWT (from -, the cache, or an argument) and show its claims; never verifies it.
    Inspect(crate::commands::inspect::InspectArgs),
    /// Every profile, its signed-in account and its cached tokens (never the tokens themselves).
    #[command(display_order = 2)]
    Status(crate::commands::status::StatusArgs),
    /// The token cache (`cache list` is `status`).
    Cache(crate::commands::status::CacheArgs),
    /// Run a command with a fresh token in its environment (and optionally a file kept fresh).
    Exec(crate::commands::exec::ExecArgs),
    /// Entra SSH certificates: `ssh cert` for a key, `ssh config` for hosts, `ssh add` to ssh-agent.
    Ssh(crate::commands::ssh::SshArgs),
}

/// The subcommands tools run on every command (kubectl, git, scripts), parsed with their
/// own clap tree only: building the whole CLI's tree (every subcommand's arguments) was
/// most of a cached answer's own work. Anything this small parser refuses (help, a typo,
/// `-v` before the subcommand) goes to the full parser, so every message stays the same.
pub(crate) fn parse_hot(args: &[std::ffi::OsString]) -> Option<Cli> {
    fn one<T: clap::Args + clap::FromArgMatches>(name: &'static str, args: &[std::ffi::OsString], wrap: fn(T) -> Command) -> Option<Cli> {
        let cmd = T::augment_args(clap::Command::new(name)).arg(clap::Arg::new("verbose").short('v').long("verbose").action(clap::ArgAction::Count));
        let matches = cmd.try_get_matches_from(&args[1..]).ok()?;
        let verbose = matches.get_count("verbose");
        Some(Cli { verbose, command: Some(wrap(T::from_arg_matches(&matches).ok()?)) })
    }
    match args.get(1)?.to_str()? {
        "get-token" | "token" => one("get-token", args, Command::GetToken),
        "kubectl" => one("kubectl", args, Command::Kubectl),
        "git" => one("git", args, Command::Git),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn argv(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    /// The small parser agrees with the full one wherever it answers, and leaves the rest to it.
    #[test]
    fn hot_parse_matches_the_full_parse() {
        for line in [
            "entra-token get-token -r graph -o json",
            "entra-token token -p ci -s a/.default --min-validity 600 -v",
            "entra-token get-token -vv --timeout 30s --force",
            "entra-token kubectl --profile aks --resource api://c",
            "entra-token kubectl -v",
            "entra-token git get",
            "entra-token git erase",
        ] {
            let hot = parse_hot(&argv(line)).unwrap_or_else(|| panic!("no hot parse for {line}"));
            let full = Cli::try_parse_from(argv(line)).unwrap();
            assert_eq!(format!("{hot:?}"), format!("{full:?}"), "{line}");
        }
        for line in [
            "entra-token get-token --help",
            "entra-token get-token --bogus",
            "entra-token get-token -o nope",
            "entra-token -v get-token",
            "entra-token kubectl --help",
            "entra-token git",
            "entra-token doctor",
            "entra-token",
        ] {
            assert!(parse_hot(&argv(line)).is_none(), "{line} should go to the full parser");
        }
    }
}
