//! `azd auth token`, answered from our cache: azure-identity's
//! AzureDeveloperCliCredential (and `DefaultAzureCredential`, which includes it) runs
//! `azd auth token --output json --scope S… [--tenant-id T] [--no-prompt]`; a link named
//! `azd` to this binary answers it. Output is azd's: `{"token","expiresOn"}`, two-space
//! JSON, expiry in UTC with a literal Z and whole seconds.

use crate::broker::{self, TokenRequest};
use crate::clock;
use crate::config::Origin;
use crate::error::{self, Error, Result};
use base64::Engine;
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use std::ffi::OsString;
use std::process::ExitCode;

/// azd's default scope when none is given.
const AZD_DEFAULT_SCOPE: &str = "https://management.azure.com//.default";

/// azd's "nobody is signed in" sentence; SDKs treat it (without "AADSTS") as
/// "this credential is unavailable, try the next one".
pub(crate) const NOT_LOGGED_IN: &str = "not logged in, run `azd auth login` to login";

/// `entra-token azd …`: everything after `azd` goes to the azd parser below.
#[derive(Debug, Args)]
pub(crate) struct AzdArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0.., value_name = "AZD ARGS")]
    pub args: Vec<OsString>,
}

#[derive(Debug, Parser)]
#[command(name = "azd", about = "entra-token answering as the Azure Developer CLI: `azd auth token` only", disable_version_flag = true, disable_help_subcommand = true)]
struct AzdCli {
    #[command(subcommand)]
    group: AzdGroup,
}

#[derive(Debug, Subcommand)]
enum AzdGroup {
    /// Authentication commands.
    Auth {
        #[command(subcommand)]
        command: AuthCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AuthCommand {
    /// Print an access token, as `azd auth token --output json` does.
    Token(TokenArgs),
    /// Not served here: sign in with `entra-token login`.
    #[command(disable_help_flag = true)]
    Login {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0.., hide = true)]
        rest: Vec<OsString>,
    },
}

#[derive(Debug, Args)]
struct TokenArgs {
    /// Scope to ask for; repeat for more (default: Azure Resource Manager).
    #[arg(long)]
    scope: Vec<String>,
    /// Tenant to ask instead of the profile's.
    #[arg(long = "tenant-id")]
    tenant_id: Option<String>,
    /// Output format; only json.
    #[arg(short = 'o', long, default_value = "json", value_parser = ["json"])]
    output: String,
    /// A base64-encoded claims challenge (CAE / conditional access).
    #[arg(long)]
    claims: Option<String>,
    /// Never prompt (prompts only ever appear on a terminal anyway).
    #[arg(long = "no-prompt")]
    no_prompt: bool,
    /// Accepted and ignored, as azd's global flags.
    #[arg(long, hide = true)]
    debug: bool,
    #[arg(short = 'C', long, hide = true)]
    cwd: Option<String>,
    #[arg(short = 'e', long, hide = true)]
    environment: Option<String>,
}

/// azd's `contracts.AuthTokenResult`.
#[derive(Debug, Serialize)]
pub(crate) struct AzdToken<'a> {
    pub token: &'a str,
    #[serde(rename = "expiresOn")]
    pub expires_on: String,
}

/// The answer as azd prints it: `json.MarshalIndent(obj, "", "  ")` and a newline.
pub(crate) fn encode(token: &str, expires_on: i64) -> String {
    let t = AzdToken { token, expires_on: clock::rfc3339(expires_on) };
    format!("{}\n", serde_json::to_string_pretty(&t).unwrap_or_default())
}

impl TokenArgs {
    fn to_request(&self) -> Result<TokenRequest> {
        let mut scopes: Vec<String> = self.scope.iter().flat_map(|s| s.split_whitespace()).map(str::to_string).collect();
        if scopes.is_empty() {
            scopes.push(AZD_DEFAULT_SCOPE.to_string());
        }
        let claims = match self.claims.as_deref().filter(|c| !c.is_empty()) {
            Some(c) => Some(decode_claims(c)?),
            None => None,
        };
        Ok(TokenRequest { scopes: Some(scopes), tenant: self.tenant_id.clone(), claims, prompts: !self.no_prompt, ..TokenRequest::default() })
    }
}

/// `--claims` is base64 (standard or URL-safe, padded or not) of the claims JSON.
fn decode_claims(c: &str) -> Result<String> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let bytes = STANDARD.decode(c).or_else(|_| URL_SAFE_NO_PAD.decode(c.trim_end_matches('='))).map_err(|_| Error::bad_input("--claims is not base64"))?;
    String::from_utf8(bytes).map_err(|_| Error::bad_input("--claims is not base64 of UTF-8 JSON"))
}

/// The stderr line. Nothing configured (or a sign-in nobody can answer) says azd's own
/// "not logged in" sentence so SDK chains move on; a real Entra error keeps its AADSTS.
pub(crate) fn error_line(e: &Error, origin: Option<&Origin>) -> String {
    let detail = error::one_line(e);
    if super::az::unavailable(e, origin) {
        format!("ERROR: {NOT_LOGGED_IN} (this `azd` is entra-token: {})", detail.replace("AADSTS", "code "))
    } else {
        format!("ERROR: fetching token: {detail}")
    }
}

/// Entry point for `azd …` (argv[0] named azd) and `entra-token azd …`.
pub(crate) fn run(args: Vec<OsString>) -> Result<ExitCode> {
    let cli = match AzdCli::try_parse_from(std::iter::once(OsString::from("azd")).chain(args)) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand) {
                let _ = e.print();
                return Ok(ExitCode::SUCCESS);
            }
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("").trim_start_matches("error: ");
            crate::log::line(format_args!("ERROR: azd: {first} (entra-token's azd serves `azd auth token` only)"));
            return Ok(ExitCode::from(1));
        }
    };
    let a = match cli.group {
        AzdGroup::Auth { command: AuthCommand::Token(a) } => a,
        AzdGroup::Auth { command: AuthCommand::Login { .. } } => {
            crate::log::line(format_args!("ERROR: this `azd` is entra-token and does not sign in; run `entra-token login` (or `entra-token login -p PROFILE`)"));
            return Ok(ExitCode::from(1));
        }
    };
    if a.debug {
        crate::log::set_verbosity(crate::log::verbosity().max(1));
    }
    let req = a.to_request()?;
    let resolved = broker::resolve_here(&req);
    let origin = resolved.as_ref().and_then(|r| r.as_ref().ok()).map(|r| r.profile.origin.clone());
    let result = match resolved {
        Some(r) => r.and_then(|r| broker::get_token_resolved(&req, r, None)),
        None => broker::get_token(&req),
    };
    match result {
        Ok(c) => {
            super::write_stdout(encode(c.access_token.expose(), c.expires_on).as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            crate::log::line(format_args!("{}", error_line(&e, origin.as_ref())));
            Ok(ExitCode::from(e.exit_code()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_args(args: &[&str]) -> TokenArgs {
        match AzdCli::try_parse_from(std::iter::once("azd").chain(args.iter().copied())).unwrap().group {
            AzdGroup::Auth { command: AuthCommand::Token(a) } => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn output_is_azds_exact_bytes() {
        assert_eq!(encode("tok", 1_795_328_884), "{\n  \"token\": \"tok\",\n  \"expiresOn\": \"2026-11-22T06:28:04Z\"\n}\n");
    }

    #[test]
    fn parses_what_azure_identity_sends() {
        let a = token_args(&["auth", "token", "--output", "json", "--no-prompt", "--scope", "https://vault.azure.net/.default", "--scope", "openid", "--tenant-id", "t1"]);
        let r = a.to_request().unwrap();
        assert_eq!(r.scopes.unwrap(), vec!["https://vault.azure.net/.default", "openid"]);
        assert_eq!(r.tenant.as_deref(), Some("t1"));
        assert!(!r.prompts);
        let r = token_args(&["auth", "token"]).to_request().unwrap();
        assert_eq!(r.scopes.unwrap(), vec![AZD_DEFAULT_SCOPE]);
        let claims = base64::engine::general_purpose::STANDARD.encode(br#"{"access_token":{"nbf":{"essential":true}}}"#);
        let r = token_args(&["auth", "token", "--claims", &claims]).to_request().unwrap();
        assert_eq!(r.claims.as_deref(), Some(r#"{"access_token":{"nbf":{"essential":true}}}"#));
        assert!(token_args(&["auth", "token", "--claims", "%%%"]).to_request().is_err());
        assert!(AzdCli::try_parse_from(["azd", "auth", "token", "--output", "table"]).is_err());
    }

    #[test]
    fn unavailable_errors_say_not_logged_in_and_never_aadsts() {
        let ir = Error::InteractionRequired { message: "sign-in needed".into(), command: "entra-token login".into() };
        let line = error_line(&ir, Some(&Origin::BuiltIn));
        assert!(line.contains(NOT_LOGGED_IN) && !line.contains("AADSTS"), "{line}");
        let aad = crate::oauth::auth_error(crate::error::AadError { error: "invalid_grant".into(), codes: vec![70043], description: "AADSTS70043: expired".into(), ..Default::default() });
        let line = error_line(&aad, Some(&Origin::BuiltIn));
        assert!(line.contains("AADSTS70043") && !line.contains(NOT_LOGGED_IN), "{line}");
    }
}
