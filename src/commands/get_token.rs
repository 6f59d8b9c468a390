//! `entra-token get-token`: the flags people know from `entra-auth-cli get-token`, with
//! outputs token (default), json, yaml and header, and `--file` for a 0600 file.

use crate::broker::{self, Credential, TokenRequest};
use crate::clock;
use crate::commands::TargetArgs;
use crate::error::{Error, Result};
use crate::log::warn;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// The access token alone.
    Token,
    /// The native protocol's JSON answer.
    Json,
    /// The same fields as YAML.
    Yaml,
    /// `Authorization: Bearer …`, ready for curl -H.
    Header,
}

#[derive(Debug, Args)]
pub(crate) struct GetTokenArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Override the profile's flow (client-credentials, device-code, interactive, …).
    #[arg(short, long)]
    pub flow: Option<String>,
    /// What to print.
    #[arg(short, long, value_enum, default_value_t = Output::Token)]
    pub output: Output,
    /// Write the output to this file (mode 0600) instead of stdout.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Print nothing but the token (no warnings).
    #[arg(short = 'q', long)]
    pub silent: bool,
    /// Skip the cached token and get a new one (it is still stored).
    #[arg(long)]
    pub force: bool,
    /// Neither read nor write the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Seconds the token must still be valid for a cached one to be used.
    #[arg(long, value_name = "SECONDS", default_value_t = broker::DEFAULT_MIN_VALIDITY)]
    pub min_validity: i64,
    /// A claims challenge (CAE / conditional access; JSON, or base64 of it) to pass to
    /// Entra; bypasses the cache.
    #[arg(long)]
    pub claims: Option<String>,
    /// With no terminal to prompt on, wait this long (e.g. 2m) for `entra-token login` in
    /// another terminal (and raise a desktop notification) instead of failing at once.
    #[arg(long, value_name = "DURATION", value_parser = clock::parse_duration)]
    pub wait_for_login: Option<std::time::Duration>,
}

impl GetTokenArgs {
    pub(crate) fn to_request(&self) -> Result<TokenRequest> {
        let min_validity = self.min_validity;
        if !(0..=86_400).contains(&min_validity) {
            return Err(Error::bad_input(format!("--min-validity must be between 0 and 86400, not {min_validity}")));
        }
        Ok(TokenRequest {
            flow: self.flow.clone(),
            min_validity,
            force_refresh: self.force,
            no_cache: self.no_cache,
            claims: self.claims.as_deref().map(crate::flows::parse_claims).transpose()?,
            prompts: true,
            wait_for_login: self.wait_for_login,
            ..self.target.to_request()
        })
    }
}

/// Renders a credential in the chosen format (with a trailing newline).
pub(crate) fn render(c: &Credential, output: Output, now: i64) -> String {
    match output {
        Output::Token => format!("{}\n", c.access_token.expose()),
        Output::Header => format!("Authorization: {} {}\n", c.token_type, c.access_token.expose()),
        Output::Json => format!("{}\n", crate::protocols::native::encode(c, now)),
        Output::Yaml => {
            // JSON strings are valid YAML double-quoted scalars, so each value is emitted
            // with serde_json and the document needs no YAML library.
            let value: serde_json::Value = serde_json::from_str(&crate::protocols::native::encode(c, now)).unwrap_or_default();
            let mut out = String::new();
            if let serde_json::Value::Object(map) = value {
                for (k, v) in map {
                    match v {
                        serde_json::Value::Array(items) if items.is_empty() => out.push_str(&format!("{k}: []\n")),
                        serde_json::Value::Array(items) => {
                            out.push_str(&format!("{k}:\n"));
                            for i in items {
                                out.push_str(&format!("  - {i}\n"));
                            }
                        }
                        other => out.push_str(&format!("{k}: {other}\n")),
                    }
                }
            }
            out
        }
    }
}

pub(crate) fn run(args: &GetTokenArgs) -> Result<ExitCode> {
    crate::log::set_quiet(args.silent);
    let req = args.to_request()?;
    let cred = broker::get_token(&req)?;
    let text = render(&cred, args.output, clock::now());
    match &args.file {
        Some(path) => {
            crate::fs::write_atomic(path, text.as_bytes(), crate::fs::Access::Private, crate::fs::Durability::Sync).map_err(Error::failed)?;
            if !args.silent {
                warn!("token written to {} (expires {})", path.display(), clock::rfc3339(cred.expires_on));
            }
        }
        None => crate::protocols::write_stdout(text.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}
