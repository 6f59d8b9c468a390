//! `refresh`: a new access token through the refresh token (or the profile's secret), never a
//! prompt; the broker's path with the cache read skipped.

use crate::broker::{self, TokenRequest};
use crate::clock;
use crate::commands::TargetArgs;
use crate::commands::shared::expiry_phrase;
use crate::error::Result;
use crate::flows::Prompt;
use crate::log::line;
use clap::Args;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub(crate) struct RefreshArgs {
    #[command(flatten)]
    pub target: TargetArgs,
}

pub(crate) fn run(args: &RefreshArgs) -> Result<ExitCode> {
    let req = TokenRequest { force_refresh: true, ..args.target.to_request() };
    let c = broker::get_token_with(&req, Some(Prompt::Never))?;
    let what = c.resource.clone().unwrap_or_else(|| c.scopes.join(" "));
    let who = c.account.as_deref().map(|a| format!(" as {a}")).unwrap_or_default();
    line(format_args!("new token for {what} (profile '{}'{who}); {}", c.profile, expiry_phrase(c.expires_on, clock::now())));
    Ok(ExitCode::SUCCESS)
}
