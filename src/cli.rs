//! The command line, as clap types. Each subcommand's arguments live beside the code that
//! runs it; this file only lists them.

use crate::doctor::DoctorArgs;
use crate::generate::{CompletionsArgs, ManArgs};
use crate::profile_cmd::ProfileArgs;
use crate::protocols::az::AzArgs;
use crate::protocols::azd::AzdArgs;
use crate::protocols::bazel::BazelArgs;
use crate::protocols::docker::DockerArgs;
use crate::protocols::get_token::GetTokenArgs;
use crate::serve::ServeArgs;
use crate::protocols::git::GitArgs;
use crate::protocols::kubectl::KubectlArgs;
use crate::setup::SetupArgs;
use clap::{Parser, Subcommand};

/// A fast, cached Microsoft Entra ID token helper.
///
/// With no subcommand, reads one JSON request on stdin and writes one JSON answer on
/// stdout (see protocol/README.md), e.g.
///   echo '{"resource":"graph","profile":"ci"}' | entra-token
#[derive(Debug, Parser)]
#[command(name = "entra-token", version, about, long_about = None, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    /// Trace each step to stderr (repeat for more); secrets are never shown.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Option<Command>,
}

pub(crate) const EXIT_CODES: &str = "Exit codes: 0 success, 1 general error or bad input, 2 profile not found, 3 authentication failed, 4 network error, 5 timeout.";

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print an access token for a profile and resource.
    #[command(name = "get-token", visible_alias = "token")]
    GetToken(GetTokenArgs),
    /// List, show, add, remove profiles and pick the default (edits keep your comments).
    Profile(ProfileArgs),
    /// Check the setup: config, profile, cache, authority, clock, and which tools are wired to us.
    Doctor(DoctorArgs),
    /// Serve tokens on 127.0.0.1 as an App Service managed-identity endpoint (for Azure SDKs).
    Serve(ServeArgs),
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
    Login(crate::session::LoginArgs),
    /// Remove a profile's account (refresh token) and its cached tokens.
    Logout(crate::session::LogoutArgs),
    /// Get a new access token through the stored refresh token (never prompts).
    Refresh(crate::session::RefreshArgs),
    /// Decode a JWT (from -, the cache, or an argument) and show its claims; never verifies it.
    Inspect(crate::inspect::InspectArgs),
    /// Every profile, its signed-in account and its cached tokens (never the tokens themselves).
    Status(crate::session::StatusArgs),
    /// The token cache (`cache list` is `status`).
    Cache(crate::session::CacheArgs),
}
