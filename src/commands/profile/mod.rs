//! `entra-token profile list|show|add|remove|default`: profiles managed from the command
//! line. Edits go through a format-preserving TOML document, so the user's comments,
//! order and spacing survive; every edit is validated by resolving the result with the
//! same code `get-token` uses before the file is (atomically, mode kept) replaced.
//! Secrets are only ever *named* (an environment variable or a file), never taken in argv
//! and never printed.

use crate::config::{self, Profile, SecretSource};
use crate::commands::OutputFormat;
use crate::error::{Error, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

mod edit;
mod prompts;

#[derive(Debug, Args)]
pub(crate) struct ProfileArgs {
    #[command(subcommand)]
    pub action: ProfileAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProfileAction {
    /// List the profiles in the config file; `*` marks the default.
    List {
        #[arg(short, long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Show how a profile resolves and where its secrets come from (never their values).
    Show {
        /// Profile name (default: the one `get-token` would use).
        name: Option<String>,
        #[arg(short, long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Add a profile (asks for missing fields at a terminal, takes flags otherwise).
    Add(Box<AddArgs>),
    /// Remove a profile from the config file.
    Remove {
        name: String,
    },
    /// Print the default profile, or set it.
    Default {
        /// The profile to make the default.
        name: Option<String>,
        /// Remove `default_profile` from the config file.
        #[arg(long, conflicts_with = "name")]
        unset: bool,
    },
}

#[derive(Debug, Default, Args)]
pub(crate) struct AddArgs {
    /// Profile name: letters, digits, `-` and `_`.
    pub name: String,
    /// Tenant GUID or domain (default: organizations).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Application (client) id.
    #[arg(long)]
    pub client_id: Option<String>,
    /// auto, client-credentials, workload-identity, managed-identity, device-code, interactive, azure-cli, …
    #[arg(long)]
    pub flow: Option<String>,
    /// NAME of the environment variable holding the client secret (never the secret itself).
    #[arg(long, value_name = "VAR")]
    pub client_secret_env: Option<String>,
    /// File holding the client secret.
    #[arg(long, value_name = "PATH")]
    pub client_secret_file: Option<PathBuf>,
    /// PEM file with the certificate and private key (client-credentials with a certificate).
    #[arg(long, value_name = "PATH")]
    pub certificate_path: Option<PathBuf>,
    /// NAME of the environment variable holding the certificate's password (encrypted key).
    #[arg(long, value_name = "VAR")]
    pub certificate_password_env: Option<String>,
    /// File holding the federated token (workload identity).
    #[arg(long, value_name = "PATH", conflicts_with = "service_connection_id")]
    pub federated_token_file: Option<PathBuf>,
    /// `managed-identity`: this host's managed identity (--mi-client-id…, else system-assigned) is the federated token, for an app in another tenant (workload identity).
    #[arg(long, value_name = "SOURCE", value_parser = ["managed-identity"], conflicts_with_all = ["federated_token_file", "service_connection_id"])]
    pub federated_token: Option<String>,
    /// Azure Pipelines service connection whose OIDC token is the federated token (workload identity).
    #[arg(long, value_name = "ID")]
    pub service_connection_id: Option<String>,
    /// Client id of a user-assigned managed identity.
    #[arg(long, conflicts_with_all = ["mi_object_id", "mi_res_id"])]
    pub mi_client_id: Option<String>,
    /// Object (principal) id of a user-assigned managed identity.
    #[arg(long, conflicts_with = "mi_res_id")]
    pub mi_object_id: Option<String>,
    /// Resource id of a user-assigned managed identity.
    #[arg(long)]
    pub mi_res_id: Option<String>,
    /// The account to sign in as (password flow; pre-fills the browser, picks a signed-in person).
    #[arg(long, value_name = "USER")]
    pub username: Option<String>,
    /// NAME of the environment variable holding the password (password flow; never the password itself).
    #[arg(long, value_name = "VAR", conflicts_with = "password_file")]
    pub password_env: Option<String>,
    /// File holding the password (password flow).
    #[arg(long, value_name = "PATH")]
    pub password_file: Option<PathBuf>,
    /// Account to pre-fill at sign-in, and to pick among people signed in elsewhere.
    #[arg(long, value_name = "USER")]
    pub login_hint: Option<String>,
    /// Authority host URL (https, or http on loopback).
    #[arg(long, conflicts_with = "cloud")]
    pub authority: Option<String>,
    /// public, usgov or china.
    #[arg(long)]
    pub cloud: Option<String>,
    /// Default resource: alias, App ID URI or GUID.
    #[arg(long)]
    pub resource: Option<String>,
    /// URL prefix this profile answers for (git, cargo, Bazel, Docker); repeatable.
    #[arg(long = "url", value_name = "URL")]
    pub urls: Vec<String>,
    /// A resource `entra-token serve` may hand out for this profile; repeatable.
    #[arg(long = "serve-resource", value_name = "RESOURCE")]
    pub serve_resources: Vec<String>,
    /// The subscription (id or name) this profile holds: reported by the `az` stand-in,
    /// which also picks this profile for `--subscription` with it.
    #[arg(long, value_name = "ID")]
    pub subscription: Option<String>,
    /// Where refresh tokens are kept: auto (OS secret store when one answers), keyring or file.
    #[arg(long, value_parser = ["auto", "keyring", "file"])]
    pub storage: Option<String>,
    /// Change an existing profile: set the given keys, keep the others.
    #[arg(long)]
    pub update: bool,
    /// Also make it the default profile.
    #[arg(long = "default")]
    pub make_default: bool,
    /// Never ask; fail if a required field is missing.
    #[arg(long)]
    pub no_prompt: bool,
    /// Refused: secrets are never taken on the command line.
    #[arg(long, hide = true, value_name = "SECRET")]
    pub client_secret: Option<String>,
    /// Refused: secrets are never taken on the command line.
    #[arg(long, hide = true, value_name = "SECRET")]
    pub password: Option<String>,
}

pub(crate) fn run(args: &ProfileArgs) -> Result<ExitCode> {
    match &args.action {
        ProfileAction::List { output } => list(*output),
        ProfileAction::Show { name, output } => show(name.as_deref(), *output),
        ProfileAction::Add(a) => edit::add(a),
        ProfileAction::Remove { name } => edit::remove(name),
        ProfileAction::Default { name, unset } => edit::default(name.as_deref(), *unset),
    }
}

fn path_or_err() -> Result<PathBuf> {
    config::config_path().ok_or_else(|| Error::bad_input_hint("no config file location: HOME is not set", "set ENTRA_TOKEN_CONFIG to the config file's path"))
}

fn out(text: &str) -> Result<ExitCode> {
    crate::protocols::write_stdout(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------- list / show

fn list(format: OutputFormat) -> Result<ExitCode> {
    let path = path_or_err()?;
    let file = config::load_file(&path)?;
    // The profile `get-token` (and `profile show`) would use: ENTRA_TOKEN_PROFILE, then
    // default_profile, then `default`.
    let effective_default = crate::env::var(crate::env::PROFILE)
        .or_else(|| file.default_profile.clone())
        .unwrap_or_else(|| "default".into());
    let mut rows: Vec<(String, String, String, bool)> = file
        .profiles
        .iter()
        // A flow by its one name (`devicecode`, `spn` written in the file: device-code, client-credentials).
        .map(|(n, p)| {
            let flow = p.flow.as_deref().map_or("auto".into(), |f| config::FlowKind::parse(f).map_or_else(|_| f.to_string(), |k| k.name().to_string()));
            (n.clone(), flow, p.tenant.clone().unwrap_or_else(|| "organizations".into()), false)
        })
        .collect();
    if !file.profiles.contains_key("default") {
        // Not in the file: resolved as `show` resolves it (the standard variables, else built in).
        let (flow, tenant) = match config::resolve_in(&file, Some(&path), Some("default")) {
            Ok(p) if p.origin == config::Origin::Environment => (p.flow.name().to_string(), format!("{} (from AZURE_* variables)", p.authority.tenant)),
            Ok(p) => (p.flow.name().to_string(), format!("{} (built-in)", p.authority.tenant)),
            Err(_) => ("auto".into(), "(built-in)".into()),
        };
        rows.insert(0, ("default".into(), flow, tenant, true));
    }
    match format {
        OutputFormat::Json => {
            let profiles: Vec<_> = rows
                .iter()
                .map(|(n, f, t, b)| serde_json::json!({"name": n, "flow": f, "tenant": t, "default": *n == effective_default, "built_in": b}))
                .collect();
            out(&format!("{}\n", serde_json::json!({"config": path, "default_profile": file.default_profile, "profiles": profiles})))
        }
        OutputFormat::Text => {
            let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
            let fwidth = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
            let mut text = String::new();
            for (n, f, t, _) in &rows {
                let mark = if *n == effective_default { '*' } else { ' ' };
                text.push_str(&format!("{mark} {n:width$}  {f:fwidth$}  {t}\n"));
            }
            out(&text)
        }
    }
}

/// Where a profile's secret-bearing settings point, with whether that place exists.
/// Only names and paths: a value is never read here.
pub(crate) fn secret_places(p: &Profile) -> Vec<(&'static str, String, String, bool)> {
    let mut v = Vec::new();
    let env = crate::env::is_set;
    match &p.secret {
        Some(SecretSource::Env(var)) => v.push(("client secret", "env".into(), var.clone(), env(var))),
        Some(SecretSource::File(f)) => v.push(("client secret", "file".into(), f.display().to_string(), f.is_file())),
        None => {}
    }
    let s = &p.settings;
    if let Some(f) = &s.certificate_path {
        v.push(("certificate", "file".into(), f.display().to_string(), f.is_file()));
    }
    if let Some(var) = &s.certificate_password_env {
        v.push(("certificate password", "env".into(), var.clone(), env(var)));
    }
    if let Some(f) = &s.federated_token_file {
        v.push(("federated token", "file".into(), f.display().to_string(), f.is_file()));
    }
    if let Some(var) = &s.password_env {
        v.push(("password", "env".into(), var.clone(), env(var)));
    }
    if let Some(f) = &s.password_file {
        v.push(("password", "file".into(), f.display().to_string(), f.is_file()));
    }
    v
}

fn show(name: Option<&str>, format: OutputFormat) -> Result<ExitCode> {
    let p = config::resolve(name)?;
    // The profile's own table as written (names and paths only: the config has no field
    // that can hold a secret value, and unknown keys are refused).
    let raw = match (&p.origin, config::config_path()) {
        (config::Origin::File(_), Some(path)) => std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.parse::<toml::Table>().ok())
            .and_then(|t| t.get("profiles").and_then(|ps| ps.get(&p.name)).cloned()),
        _ => None,
    };
    let places = secret_places(&p);
    match format {
        OutputFormat::Json => {
            let secrets: Vec<_> = places
                .iter()
                .map(|(what, kind, place, present)| serde_json::json!({"what": what, "source": kind, "name": place, "present": present}))
                .collect();
            let v = serde_json::json!({
                "name": p.name,
                "chosen_by": p.name_source.describe(),
                "origin": p.origin.describe(),
                "flow": p.flow.name(),
                "authority": p.authority.host,
                "tenant": p.authority.tenant,
                "client_id": p.client_id,
                "endpoint": p.endpoint,
                "secrets": secrets,
                "settings": raw,
            });
            out(&format!("{v}\n"))
        }
        OutputFormat::Text => {
            let mut rows: Vec<(String, String)> = vec![
                ("profile".into(), p.name.clone()),
                ("chosen by".into(), p.name_source.describe().into()),
                ("defined in".into(), p.origin.describe()),
                ("flow".into(), p.flow.name().into()),
                ("authority".into(), p.authority.host.clone()),
                ("tenant".into(), p.authority.tenant.clone()),
                ("client_id".into(), p.client_id.clone()),
            ];
            if let Some(toml::Value::Table(t)) = &raw {
                for (k, v) in t {
                    if matches!(k.as_str(), "tenant" | "client_id" | "flow" | "authority") || is_secret_place(k) {
                        continue;
                    }
                    rows.push((k.clone(), display_value(v)));
                }
            }
            for (what, kind, place, present) in &places {
                let state = match (kind.as_str(), present) {
                    ("env", true) => "set",
                    ("env", false) => "NOT SET",
                    (_, true) => "exists",
                    (_, false) => "MISSING",
                };
                let noun = if kind == "env" { "environment variable" } else { "file" };
                rows.push((what.to_string(), format!("{noun} {place} ({state})")));
            }
            rows.push(("secrets".into(), "only their names and paths are kept and shown; values never are".into()));
            let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0) + 1;
            let text: String = rows.iter().map(|(k, v)| format!("{:width$} {v}\n", format!("{k}:"))).collect();
            out(&text)
        }
    }
}

fn is_secret_place(key: &str) -> bool {
    matches!(key, "client_secret_env" | "client_secret_file" | "certificate_path" | "certificate_password_env" | "federated_token_file" | "password_env" | "password_file")
}

fn display_value(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(a) => a.iter().map(display_value).collect::<Vec<_>>().join(", "),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}
