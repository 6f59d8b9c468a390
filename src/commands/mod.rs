//! The subcommands a person types (login, status, profile, doctor, setup, serve, …): the top layer, above the protocols.

#[cfg(unix)]
pub(crate) mod agent;
pub(crate) mod doctor;
pub(crate) mod exec;
pub(crate) mod generate;
pub(crate) mod get_token;
pub(crate) mod inspect;
pub(crate) mod login;
pub(crate) mod logout;
mod man_page;
pub(crate) mod profile;
pub(crate) mod refresh;
pub(crate) mod serve;
pub(crate) mod setup;
pub(crate) mod ssh;
mod shared;
pub(crate) mod status;

/// `--output` of the commands that report (status, inspect, doctor, profile list/show).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OutputFormat {
    Text,
    Json,
}

/// The flags that name a token, the same on every command that asks for one (get-token,
/// login, refresh, inspect): one place for their spelling, help and request.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TargetArgs {
    /// Profile to use (default: ENTRA_TOKEN_PROFILE, the config's default_profile, or `default`).
    #[arg(short, long)]
    pub profile: Option<String>,
    /// Resource: an App ID URI, a GUID, an alias (graph, powerbi, arm, …) or a powerbi:// / asazure:// server.
    #[arg(short, long, conflicts_with = "scope")]
    pub resource: Option<String>,
    /// Scopes, space-separated (e.g. "https://graph.microsoft.com/.default").
    #[arg(short, long)]
    pub scope: Option<String>,
    /// Tenant to ask instead of the profile's.
    #[arg(short, long)]
    pub tenant: Option<String>,
    /// Network time limit, e.g. 30s, 2m.
    #[arg(long, default_value = "60s", value_parser = crate::clock::parse_duration)]
    pub timeout: std::time::Duration,
}

impl TargetArgs {
    /// The broker's request for these flags; the rest of its fields at their defaults.
    pub(crate) fn to_request(&self) -> crate::broker::TokenRequest {
        crate::broker::TokenRequest {
            profile: self.profile.clone(),
            resource: self.resource.clone(),
            scopes: self.scope.as_ref().map(|s| s.split_whitespace().map(str::to_string).collect()),
            tenant: self.tenant.clone(),
            timeout: self.timeout,
            ..crate::broker::TokenRequest::default()
        }
    }

    /// Was a token named at all (any of profile, resource, scope)?
    pub(crate) fn names_a_token(&self) -> bool {
        self.profile.is_some() || self.resource.is_some() || self.scope.is_some()
    }
}
