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
    /// Seconds (or a duration: 5m, 2h) the token must still be valid for a cached one to be used.
    #[arg(long, value_name = "SECONDS", default_value_t = broker::DEFAULT_MIN_VALIDITY, value_parser = crate::clock::parse_seconds)]
    pub min_validity: i64,
    /// A claims challenge (CAE / conditional access; JSON, or base64 of it) to pass to
    /// Entra; bypasses the cache.
    #[arg(long)]
    pub claims: Option<String>,
    /// With no terminal to prompt on, wait this long (e.g. 2m) for `entra-token login` in
    /// another terminal (and raise a desktop notification) instead of failing at once.
    #[arg(long, value_name = "DURATION", value_parser = clock::parse_duration)]
    pub wait_for_login: Option<std::time::Duration>,
    #[command(flatten)]
    pub pop: PopArgs,
}

/// A proof-of-possession token (docs/pop.md): the output's token is a signed HTTP request
/// (SHR) over a token bound to the profile's PoP key, for one method and URL (or claims).
#[derive(Debug, Clone, Args)]
pub(crate) struct PopArgs {
    /// Get a PoP token and print the signed request (SHR) instead of a bearer token
    /// (kubelogin's flag); needs --pop-url or --pop-claims.
    #[arg(long, visible_alias = "pop")]
    pub pop_enabled: bool,
    /// The URL the SHR is for: its host and path become the SHR's `u` and `p`.
    #[arg(long, value_name = "URL")]
    pub pop_url: Option<String>,
    /// The HTTP method the SHR is for (with --pop-url; default GET).
    #[arg(long, value_name = "METHOD")]
    pub pop_method: Option<String>,
    /// kubelogin's claims: "u=<ARM ID>" (an Azure Arc cluster's resource id), optionally m=, p=.
    #[arg(long, value_name = "CLAIMS")]
    pub pop_claims: Option<String>,
    /// The nonce a resource server asked for (its 401's `WWW-Authenticate: PoP nonce="…"`),
    /// signed instead of a random one: the retry after such a challenge.
    #[arg(long, value_name = "NONCE")]
    pub pop_nonce: Option<String>,
}

impl PopArgs {
    /// What the SHR binds, or None without --pop-enabled.
    pub(crate) fn shr(&self) -> Result<Option<crate::pop::Shr>> {
        let given = self.pop_url.is_some() || self.pop_claims.is_some() || self.pop_method.is_some() || self.pop_nonce.is_some();
        if !self.pop_enabled {
            return if given { Err(Error::bad_input("--pop-url, --pop-method, --pop-claims and --pop-nonce go with --pop-enabled")) } else { Ok(None) };
        }
        let shr = match (&self.pop_url, &self.pop_claims, &self.pop_method) {
            (Some(url), None, method) => crate::pop::Shr::for_url(method.as_deref().unwrap_or("GET"), url),
            (None, Some(claims), None) => crate::pop::Shr::from_claims(claims),
            _ => return Err(Error::bad_input("--pop-enabled needs --pop-url URL (and --pop-method) or --pop-claims \"u=<ARM ID>\"")),
        };
        shr.and_then(|s| s.with_nonce(self.pop_nonce.as_deref())).map(Some).map_err(|why| Error::bad_input(format!("cannot make a PoP request: {why}")))
    }
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
        // A signed request goes in the `PoP` scheme (as MSAL sends it), a token in its own type's.
        Output::Header => format!("Authorization: {} {}\n", if c.token_type == crate::pop::POP { "PoP" } else { &c.token_type }, c.access_token.expose()),
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
    let cred = match args.pop.shr()? {
        Some(shr) => crate::protocols::pop::credential(&req, &shr)?,
        None => broker::get_token(&req)?,
    };
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
