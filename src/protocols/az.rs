//! `az account get-access-token`, answered from our cache: every Azure SDK's
//! AzureCliCredential shells out to `az`, so a link named `az` to this binary gives them a
//! token in milliseconds instead of a Python start-up. The output is the Azure CLI's own
//! (six fields, sorted keys, two-space JSON or sorted TSV) and the errors are shaped so an
//! SDK moves on to its next credential when nothing is configured here.

use crate::broker::{self, Credential, TokenRequest};
use crate::clock;
use crate::config::Origin;
use crate::error::{self, Error, Result};
use crate::log::trace;
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use std::ffi::OsString;
use std::process::ExitCode;

/// Set in our own environment while we answer as `az`, so the `azure-cli` flow (which
/// falls back to running `az account get-access-token`) runs no `az` at all: neither this
/// binary again nor the real Azure CLI. Found already set, it means an `az` that
/// entra-token started led back to us: we refuse at once.
pub(crate) use crate::env::AZ_SHIM_DEPTH as SHIM_ENV;

/// What az itself asks for when no resource is given.
const AZ_DEFAULT_RESOURCE: &str = "https://management.core.windows.net/";

/// The Azure CLI's message for "nobody is signed in"; SDKs treat stderr containing
/// "az login" (without "AADSTS") as "this credential is unavailable, try the next one".
pub(crate) const NOT_LOGGED_IN: &str = "Please run 'az login' to setup account.";

/// `entra-token az …`: everything after `az` goes to the az parser below.
#[derive(Debug, Args)]
pub(crate) struct AzArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0.., value_name = "AZ ARGS")]
    pub args: Vec<OsString>,
}

#[derive(Debug, Parser)]
#[command(
    name = "az",
    about = "entra-token answering as the Azure CLI: `az account get-access-token` only",
    disable_version_flag = true,
    disable_help_subcommand = true
)]
pub(crate) struct AzCli {
    #[command(subcommand)]
    group: AzGroup,
}

#[derive(Debug, Subcommand)]
enum AzGroup {
    /// Subscription and token commands.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Not served here: sign in with `entra-token login`.
    #[command(disable_help_flag = true)]
    Login {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0.., hide = true)]
        rest: Vec<OsString>,
    },
}

#[derive(Debug, Subcommand)]
enum AccountCommand {
    /// Print an access token, exactly as `az account get-access-token` does.
    #[command(name = "get-access-token")]
    GetAccessToken(GetAccessTokenArgs),
}

#[derive(Debug, Args)]
pub(crate) struct GetAccessTokenArgs {
    /// Resource (App ID URI or GUID); default: Azure Resource Manager.
    #[arg(long, conflicts_with_all = ["scope", "resource_type"])]
    resource: Option<String>,
    /// Well-known resource type instead of --resource.
    #[arg(long = "resource-type", value_parser = ["arm", "aad-graph", "ms-graph", "batch", "data-lake", "media", "oss-rdbms"])]
    resource_type: Option<String>,
    /// v2 scopes (e.g. https://graph.microsoft.com/.default); space-separated or repeated.
    #[arg(long, num_args = 1.., conflicts_with = "resource_type")]
    scope: Vec<String>,
    /// Tenant to ask instead of the profile's.
    #[arg(short = 't', long)]
    tenant: Option<String>,
    /// Subscription to report (default: the profile's `subscription`).
    #[arg(long)]
    subscription: Option<String>,
    /// json (default), jsonc, tsv or none.
    #[arg(short = 'o', long, default_value = "json")]
    output: String,
    /// One field to print (a JMESPath that names a single key, e.g. accessToken).
    #[arg(long)]
    query: Option<String>,
    /// Accepted and ignored, as az's global flags.
    #[arg(long = "only-show-errors", hide = true)]
    only_show_errors: bool,
    #[arg(long, hide = true)]
    debug: bool,
    #[arg(long, hide = true)]
    verbose: bool,
}

/// The six fields, in az's (sorted) order.
#[derive(Debug, Serialize)]
pub(crate) struct AzToken<'a> {
    #[serde(rename = "accessToken")]
    pub access_token: &'a str,
    #[serde(rename = "expiresOn")]
    pub expires_on_local: String,
    pub expires_on: i64,
    pub subscription: &'a str,
    pub tenant: &'a str,
    #[serde(rename = "tokenType")]
    pub token_type: &'a str,
}

const FIELDS: [&str; 6] = ["accessToken", "expiresOn", "expires_on", "subscription", "tenant", "tokenType"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Tsv,
    None,
}

impl GetAccessTokenArgs {
    pub(crate) fn format(&self) -> Result<Format> {
        match self.output.to_ascii_lowercase().as_str() {
            "json" | "jsonc" => Ok(Format::Json),
            "tsv" => Ok(Format::Tsv),
            "none" => Ok(Format::None),
            other => Err(Error::bad_input_hint(format!("output format '{other}' is not served by entra-token's az"), "use -o json, jsonc, tsv or none")),
        }
    }

    /// The field `--query` names, if any. Only a bare key (optionally quoted) is supported.
    pub(crate) fn query_field(&self) -> Result<Option<&'static str>> {
        let Some(q) = self.query.as_deref() else { return Ok(None) };
        let key = q.trim().trim_matches('"');
        FIELDS.iter().find(|f| **f == key).map(|f| Some(*f)).ok_or_else(|| {
            Error::bad_input_hint(format!("--query '{q}' is not supported by entra-token's az"), format!("query one field: {}", FIELDS.join(", ")))
        })
    }

    pub(crate) fn to_request(&self) -> Result<TokenRequest> {
        let resource = match (&self.resource, &self.resource_type) {
            (Some(r), _) => Some(r.clone()),
            (None, Some(t)) => Some(resource_type_uri(t).to_string()),
            (None, None) if self.scope.is_empty() => Some(default_resource()),
            (None, None) => None,
        };
        let scopes: Vec<String> = self.scope.iter().flat_map(|s| s.split_whitespace()).map(str::to_string).collect();
        if let Some(s) = self.subscription.as_deref().filter(|s| s.trim().is_empty() || s.chars().any(char::is_control)) {
            return Err(Error::bad_input(format!("--subscription '{}' is not a subscription id or name", s.escape_debug())));
        }
        Ok(TokenRequest {
            resource,
            scopes: (!scopes.is_empty()).then_some(scopes),
            tenant: self.tenant.clone(),
            subscription: self.subscription.clone(),
            ..TokenRequest::default()
        })
    }
}

/// What az asks for with no resource: ARM's audience in az's active cloud.
fn default_resource() -> String {
    crate::config::az_cloud::active().map_or_else(|| AZ_DEFAULT_RESOURCE.to_string(), |c| c.arm_resource)
}

/// az's `--resource-type` values and the resources it maps them to.
fn resource_type_uri(t: &str) -> &'static str {
    match t {
        "aad-graph" => "https://graph.windows.net/",
        "ms-graph" => "https://graph.microsoft.com/",
        "batch" => "https://batch.core.windows.net/",
        "data-lake" => "https://datalake.azure.net/",
        "media" => "https://rest.media.azure.net",
        "oss-rdbms" => "https://ossrdbms-aad.database.windows.net",
        _ => AZ_DEFAULT_RESOURCE,
    }
}

/// `2026-11-22 07:28:04.000000`: az's `expiresOn`, naive local time. When the local
/// offset cannot be known (the time crate refuses in a multi-threaded process) it is UTC.
pub(crate) fn local_naive(ts: i64) -> String {
    let utc = time::OffsetDateTime::from_unix_timestamp(ts).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let offset = time::UtcOffset::local_offset_at(utc).unwrap_or_else(|_| {
        trace!(1, "the local time zone is unknown here; expiresOn is UTC");
        time::UtcOffset::UTC
    });
    naive_at(ts, offset)
}

pub(crate) fn naive_at(ts: i64, offset: time::UtcOffset) -> String {
    let dt = time::OffsetDateTime::from_unix_timestamp(ts).unwrap_or(time::OffsetDateTime::UNIX_EPOCH).to_offset(offset);
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:6]");
    dt.format(&fmt).unwrap_or_default()
}

/// Renders the answer as az would print it (with the trailing newline).
pub(crate) fn encode(t: &AzToken<'_>, format: Format, field: Option<&str>) -> String {
    let value = serde_json::to_value(t).unwrap_or_default();
    let value = match field {
        Some(f) => value.get(f).cloned().unwrap_or(serde_json::Value::Null),
        None => value,
    };
    match format {
        Format::None => String::new(),
        Format::Json => format!("{}\n", serde_json::to_string_pretty(&value).unwrap_or_default()),
        Format::Tsv => {
            let cell = |v: &serde_json::Value| match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            match &value {
                // serde_json's map is sorted, which is az's TSV column order for a dict.
                serde_json::Value::Object(map) => format!("{}\n", map.values().map(cell).collect::<Vec<_>>().join("\t")),
                other => format!("{}\n", cell(other)),
            }
        }
    }
}

/// The tenant to report: the token's, else the one asked for.
/// The tenant az reports: the token's own, else the one the request resolved to (az's
/// account's for the azure-cli flow), else the one asked for.
fn tenant_of(c: &Credential, resolved: Option<&str>, asked: Option<&str>) -> String {
    let known = |t: &&str| !t.is_empty() && !matches!(t.to_ascii_lowercase().as_str(), "common" | "organizations" | "consumers" | "-");
    c.tenant_id.clone().or_else(|| resolved.filter(known).or(asked).map(str::to_string)).unwrap_or_default()
}

/// Should an SDK's credential chain treat this failure as "not configured here, try the
/// next credential"? Yes when a sign-in is needed that nobody can answer, and when
/// nothing is configured at all (the built-in default) unless Entra itself refused.
pub(crate) fn unavailable(e: &Error, origin: Option<&Origin>) -> bool {
    match e {
        Error::InteractionRequired { .. } => true,
        _ if e.aad().is_some() || e.to_string().contains("AADSTS") => false,
        _ => matches!(origin, Some(Origin::BuiltIn)),
    }
}

/// The line az's callers read on stderr. "Nothing is configured here" (no profile, or a
/// sign-in nobody can answer) carries az's own "az login" sentence so SDK credential
/// chains move on; a real Entra error keeps its AADSTS text so they stop and show it.
pub(crate) fn error_line(e: &Error, origin: Option<&Origin>) -> String {
    let detail = error::one_line(e);
    if unavailable(e, origin) {
        // AADSTS must not appear here, or the SDK would treat it as a hard failure.
        let detail = detail.replace("AADSTS", "code ");
        format!("ERROR: {NOT_LOGGED_IN} (this `az` is entra-token: {detail})")
    } else {
        format!("ERROR: {detail}")
    }
}

/// Entry point for `az …` (argv[0] named az) and `entra-token az …`.
pub(crate) fn run(args: Vec<OsString>) -> Result<ExitCode> {
    if let Some(a) = parse_sdk_call(&args) {
        return get_access_token(&a);
    }
    let cli = match AzCli::try_parse_from(std::iter::once(OsString::from("az")).chain(args)) {
        Ok(c) => c,
        Err(e) => return Ok(clap_failure(e)),
    };
    match cli.group {
        AzGroup::Login { .. } => {
            crate::log::line(format_args!("ERROR: this `az` is entra-token and does not sign in; run `entra-token login` (or `entra-token login -p PROFILE`)"));
            Ok(ExitCode::from(1))
        }
        AzGroup::Account { command: AccountCommand::GetAccessToken(a) } => get_access_token(&a),
    }
}

mod subscription;
#[cfg_attr(not(unix), allow(unused_imports))] // the agent is Unix-only
pub(crate) use subscription::route_on_agent;
use subscription::{az_subscription, profile_for_subscription, route_subscription};

/// The command lines Azure SDKs send (`account get-access-token` with `--output`/`-o`,
/// `--resource`, one `--scope`, `--tenant`/`-t`, `--subscription`, each once with a value),
/// read without clap: clap's parse was a sixth of a cached `az` answer's instructions.
/// Anything else (help, `--flag=value`, repeats, conflicts, odd values) is None and goes to
/// the full parser, so every message stays clap's.
fn parse_sdk_call(args: &[OsString]) -> Option<GetAccessTokenArgs> {
    let [group, command, rest @ ..] = args else { return None };
    if group != "account" || command != "get-access-token" || rest.len() % 2 != 0 {
        return None;
    }
    let mut a = GetAccessTokenArgs {
        resource: None,
        resource_type: None,
        scope: Vec::new(),
        tenant: None,
        subscription: None,
        output: "json".into(),
        query: None,
        only_show_errors: false,
        debug: false,
        verbose: false,
    };
    let mut output_seen = false;
    for pair in rest.chunks_exact(2) {
        let (flag, value) = (pair[0].to_str()?, pair[1].to_str()?);
        if value.is_empty() || value.starts_with('-') {
            return None;
        }
        let slot = match flag {
            "--resource" => &mut a.resource,
            "--tenant" | "-t" => &mut a.tenant,
            "--subscription" => &mut a.subscription,
            "--scope" if a.scope.is_empty() => {
                a.scope.push(value.to_string());
                continue;
            }
            "--output" | "-o" if !output_seen => {
                output_seen = true;
                a.output = value.to_string();
                continue;
            }
            _ => return None,
        };
        if slot.replace(value.to_string()).is_some() {
            return None;
        }
    }
    (a.resource.is_none() || a.scope.is_empty()).then_some(a)
}

fn clap_failure(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("").trim_start_matches("error: ");
    crate::log::line(format_args!("ERROR: az: {first} (entra-token's az serves `az account get-access-token` only)"));
    ExitCode::from(1)
}

fn get_access_token(a: &GetAccessTokenArgs) -> Result<ExitCode> {
    if a.debug || a.verbose {
        crate::log::set_verbosity(crate::log::verbosity().max(1));
    }
    let format = a.format()?;
    let field = a.query_field()?;
    let mut req = a.to_request()?;
    let chosen_by_env = crate::env::is_present(crate::env::PROFILE);
    // `--subscription S` held by no profile: az's own account for S, or a refusal (below).
    let mut unheld = None;
    if let Some(s) = a.subscription.as_deref() {
        // Under ENTRA_TOKEN_AGENT the agent routes it (`route_on_agent`), with its profiles.
        let holder = if chosen_by_env || crate::agent::from_env().is_some() { None } else { profile_for_subscription(s)? };
        if holder.is_none() {
            unheld = Some(s);
        }
        req.profile = holder.or(req.profile);
    }
    if crate::env::is_present(SHIM_ENV) {
        // An `az` that entra-token started led back to us: stop the loop here.
        let e = Error::InteractionRequired { message: "entra-token's az was called from entra-token itself".into(), command: "entra-token login".into() };
        crate::log::line(format_args!("{}", error_line(&e, None)));
        return Ok(ExitCode::from(e.exit_code()));
    }
    // SAFETY: the az entry point runs on the main thread before any other thread exists.
    unsafe { std::env::set_var(SHIM_ENV, "1") };

    let mut resolved = broker::resolve_here(&req);
    if let (Some(s), Some(Ok(r))) = (unheld, resolved.as_mut())
        && let Err(e) = route_subscription(r, s, chosen_by_env)
    {
        crate::log::line(format_args!("{}", error_line(&e, Some(&r.profile.origin))));
        return Ok(ExitCode::from(e.exit_code()));
    }
    let here = resolved.as_ref().and_then(|r| r.as_ref().ok());
    let origin = here.map(|r| r.profile.origin.clone());
    let profile = here.map(|r| r.profile.clone());
    let resolved_tenant = here.map(|r| r.identity.tenant.clone());
    let result = match resolved {
        Some(r) => r.and_then(|r| broker::get_token_resolved(&req, r, None)),
        None => broker::get_token(&req),
    };
    let cred = match result {
        Ok(c) => c,
        Err(e) => {
            crate::log::line(format_args!("{}", error_line(&e, origin.as_ref())));
            return Ok(ExitCode::from(e.exit_code()));
        }
    };
    let tenant = tenant_of(&cred, resolved_tenant.as_deref(), a.tenant.as_deref());
    // az reports the subscription it used (its account's id, when az's login answered);
    // with none known it reports the tenant, as it does for tenant-level accounts
    // (`az login --allow-no-subscriptions`).
    let from_az = profile.as_ref().and_then(|p| az_subscription(p, cred.tenant_id.as_deref()));
    let subscription = from_az.or(a.subscription.clone()).or_else(|| profile.and_then(|p| p.settings.subscription)).unwrap_or_else(|| tenant.clone());
    let answer = AzToken {
        access_token: cred.access_token.expose(),
        expires_on_local: local_naive(cred.expires_on),
        expires_on: cred.expires_on,
        subscription: &subscription,
        tenant: &tenant,
        token_type: &cred.token_type,
    };
    super::write_stdout(encode(&answer, format, field).as_bytes())?;
    trace!(1, "answered as az for profile '{}' (token expires {})", cred.profile, clock::rfc3339(cred.expires_on));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> GetAccessTokenArgs {
        let cli = AzCli::try_parse_from(std::iter::once("az").chain(args.iter().copied())).unwrap();
        match cli.group {
            AzGroup::Account { command: AccountCommand::GetAccessToken(a) } => a,
            other => panic!("{other:?}"),
        }
    }

    fn sample() -> AzToken<'static> {
        AzToken {
            access_token: "eyJ.a.b",
            expires_on_local: naive_at(1_605_238_724, time::UtcOffset::UTC),
            expires_on: 1_605_238_724,
            subscription: "sub-1",
            tenant: "tid-1",
            token_type: "Bearer",
        }
    }

    /// The SDK fast path agrees with clap wherever it answers and leaves the rest to it.
    #[test]
    fn sdk_command_lines_parse_as_clap_parses_them() {
        let argv = |s: &str| s.split_whitespace().map(OsString::from).collect::<Vec<_>>();
        for line in [
            "account get-access-token --output json --resource https://management.core.windows.net/",
            "account get-access-token -o json --resource api://x --tenant t1",
            "account get-access-token --output json --scope https://graph.microsoft.com/.default --tenant t1",
            "account get-access-token --scope a/.default -o tsv --subscription s1",
            "account get-access-token -t t2 --resource r",
            "account get-access-token",
        ] {
            let fast = parse_sdk_call(&argv(line)).unwrap_or_else(|| panic!("no fast parse for {line}"));
            assert_eq!(format!("{fast:?}"), format!("{:?}", parse(&line.split_whitespace().collect::<Vec<_>>())), "{line}");
        }
        for line in [
            "account get-access-token --help",
            "account get-access-token --resource=r",
            "account get-access-token --resource r --scope s",
            "account get-access-token --resource r --resource q",
            "account get-access-token -o json -o tsv",
            "account get-access-token --scope a b",
            "account get-access-token --query accessToken -o tsv",
            "account get-access-token --resource-type ms-graph",
            "account get-access-token --resource -x",
            "account get-access-token --debug --resource r",
            "account list",
            "login",
        ] {
            assert!(parse_sdk_call(&argv(line)).is_none(), "{line} should go to clap");
        }
    }

    #[test]
    fn json_is_azs_sorted_two_space_layout() {
        let s = encode(&sample(), Format::Json, None);
        assert_eq!(
            s,
            "{\n  \"accessToken\": \"eyJ.a.b\",\n  \"expiresOn\": \"2020-11-13 03:38:44.000000\",\n  \"expires_on\": 1605238724,\n  \"subscription\": \"sub-1\",\n  \"tenant\": \"tid-1\",\n  \"tokenType\": \"Bearer\"\n}\n"
        );
    }

    #[test]
    fn tsv_and_query() {
        assert_eq!(encode(&sample(), Format::Tsv, None), "eyJ.a.b\t2020-11-13 03:38:44.000000\t1605238724\tsub-1\ttid-1\tBearer\n");
        assert_eq!(encode(&sample(), Format::Tsv, Some("accessToken")), "eyJ.a.b\n");
        assert_eq!(encode(&sample(), Format::Json, Some("accessToken")), "\"eyJ.a.b\"\n");
        assert_eq!(encode(&sample(), Format::Tsv, Some("expires_on")), "1605238724\n");
        assert_eq!(encode(&sample(), Format::None, None), "");
    }

    #[test]
    fn local_time_uses_the_offset() {
        let plus = time::UtcOffset::from_hms(5, 30, 0).unwrap();
        assert_eq!(naive_at(1_605_238_724, plus), "2020-11-13 09:08:44.000000");
    }

    #[test]
    fn parses_what_sdks_send() {
        // Python / .NET / JS / Go: --output json --resource R [--tenant T] [--subscription S]
        let a = parse(&["account", "get-access-token", "--output", "json", "--resource", "https://vault.azure.net", "--tenant", "t1", "--subscription", "s1"]);
        let r = a.to_request().unwrap();
        assert_eq!(r.resource.as_deref(), Some("https://vault.azure.net"));
        assert_eq!(r.tenant.as_deref(), Some("t1"));
        assert_eq!(a.subscription.as_deref(), Some("s1"));
        // Rust azure_identity: -o json --scope S; Terraform: -o=json
        let a = parse(&["account", "get-access-token", "-o=json", "--scope", "https://graph.microsoft.com/.default"]);
        let r = a.to_request().unwrap();
        assert_eq!(r.resource, None);
        assert_eq!(r.scopes.unwrap(), vec!["https://graph.microsoft.com/.default"]);
        assert_eq!(a.format().unwrap(), Format::Json);
        // No resource: ARM, as az.
        let r = parse(&["account", "get-access-token"]).to_request().unwrap();
        assert_eq!(r.resource.as_deref(), Some(AZ_DEFAULT_RESOURCE));
        let a = parse(&["account", "get-access-token", "--query", "accessToken", "-o", "tsv", "--only-show-errors"]);
        assert_eq!(a.query_field().unwrap(), Some("accessToken"));
        assert_eq!(a.format().unwrap(), Format::Tsv);
        assert_eq!(parse(&["account", "get-access-token", "--resource-type", "ms-graph"]).to_request().unwrap().resource.as_deref(), Some("https://graph.microsoft.com/"));
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        assert!(parse(&["account", "get-access-token", "--query", "[0].x"]).query_field().is_err());
        assert!(parse(&["account", "get-access-token", "-o", "table"]).format().is_err());
        assert!(AzCli::try_parse_from(["az", "account", "get-access-token", "--resource", "r", "--scope", "s"]).is_err());
        assert!(AzCli::try_parse_from(["az", "vm", "list"]).is_err());
    }

    #[test]
    fn unavailable_errors_say_az_login_and_never_aadsts() {
        let ir = Error::InteractionRequired { message: "sign-in needed for profile 'default'".into(), command: "entra-token login".into() };
        let line = error_line(&ir, Some(&Origin::BuiltIn));
        assert!(line.contains("az login") && !line.contains("AADSTS"), "{line}");
        let aad = crate::oauth::auth_error(crate::error::AadError { error: "invalid_client".into(), codes: vec![7000215], description: "AADSTS7000215: Invalid client secret provided.".into(), ..Default::default() });
        let line = error_line(&aad, Some(&Origin::BuiltIn));
        assert!(line.contains("AADSTS7000215") && !line.contains("az login"), "{line}");
        // Nothing configured at all (built-in default that cannot sign in here).
        let line = error_line(&Error::bad_input("flow auto is not available"), Some(&Origin::BuiltIn));
        assert!(line.contains("az login"), "{line}");
        // A configured profile with a broken setting is a real error, not "unavailable".
        let line = error_line(&Error::bad_input("the client secret variable X is not set"), Some(&Origin::File("c".into())));
        assert!(!line.contains("az login"), "{line}");
    }
}
