//! kubectl / client-go exec credential plugin: `entra-token kubectl`. client-go passes an
//! `ExecCredential` request in `KUBERNETES_EXEC_INFO` and reads one `ExecCredential`
//! answer from stdout, in the same apiVersion. It keeps the token until the
//! `expirationTimestamp` we report, with no skew allowance, so we report it early
//! (`protocols::EXPIRY_MARGIN`).

use crate::broker::{self, Credential, TokenRequest};
use crate::clock;
use crate::error::{Error, Result};
use crate::log::trace;
use clap::Args;
use serde::{Deserialize, Serialize};
use std::process::ExitCode;
use std::time::Duration;

/// The AKS AAD server application: the resource every AKS cluster's API server accepts.
pub(crate) const AKS_SERVER_ID: &str = "6dae42f8-4368-4678-94ff-3960e28e3630";

use crate::env::KUBERNETES_EXEC_INFO as ENV;
/// Largest KUBERNETES_EXEC_INFO we parse (it carries a CA bundle at most).
const MAX_INFO: usize = 1024 * 1024;

#[derive(Debug, Args)]
pub(crate) struct KubectlArgs {
    /// Profile to use (default: the cluster's exec config, then ENTRA_TOKEN_PROFILE, the config's default_profile, or `default`).
    #[arg(short, long)]
    pub profile: Option<String>,
    /// Resource (the cluster's server application id); default: the cluster's exec config, else the AKS server id.
    #[arg(short, long)]
    pub resource: Option<String>,
    /// Tenant to ask instead of the profile's.
    #[arg(short, long)]
    pub tenant: Option<String>,
    /// Network time limit, e.g. 30s, 2m.
    #[arg(long, default_value = "60s", value_parser = clock::parse_duration)]
    pub timeout: Duration,
    /// With no terminal to prompt on (Lens, an IDE), wait this long (e.g. 2m) for
    /// `entra-token login` in another terminal (and raise a desktop notification) instead
    /// of failing at once; the kubeconfig's exec args carry it.
    #[arg(long, value_name = "DURATION", value_parser = clock::parse_duration)]
    pub wait_for_login: Option<Duration>,
    /// Answer with a proof-of-possession token's signed request (Azure Arc clusters;
    /// kubelogin's flag, docs/pop.md); needs --pop-claims.
    #[arg(long)]
    pub pop_enabled: bool,
    /// kubelogin's PoP claims: "u=<the Arc cluster's ARM id>".
    #[arg(long, value_name = "CLAIMS")]
    pub pop_claims: Option<String>,
}

/// The two apiVersions client-go speaks to exec plugins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApiVersion {
    V1,
    V1Beta1,
}

impl ApiVersion {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "client.authentication.k8s.io/v1",
            ApiVersion::V1Beta1 => "client.authentication.k8s.io/v1beta1",
        }
    }
}

/// What client-go told us, reduced to what we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecInfo {
    pub api_version: ApiVersion,
    /// `spec.interactive`: whether stdin is attached. Prompts go to stderr regardless.
    pub interactive: bool,
    /// `spec.cluster.config` (only with `provideClusterInfo: true`).
    pub cluster: ClusterConfig,
    /// `spec.cluster.server`: where kubectl sends the token.
    pub server: Option<String>,
}

/// The per-cluster settings a kubeconfig can carry in the cluster's
/// `extensions: [{name: client.authentication.k8s.io/exec, extension: {profile, resource}}]`.
/// It is ours, and it picks the identity: a key we do not know (a misspelt `profil`) is
/// refused by name rather than answered with the default profile's token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClusterConfig {
    pub profile: Option<String>,
    pub resource: Option<String>,
    pub tenant: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireRequest {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    spec: WireSpec,
}

#[derive(Default, Deserialize)]
struct WireSpec {
    #[serde(default)]
    interactive: bool,
    #[serde(default)]
    cluster: Option<WireCluster>,
}

#[derive(Deserialize)]
struct WireCluster {
    #[serde(default)]
    server: Option<String>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

/// Parses KUBERNETES_EXEC_INFO. Empty or absent means v1beta1 with nothing else known.
pub(crate) fn decode(bytes: &[u8]) -> Result<ExecInfo> {
    let text = std::str::from_utf8(bytes).map_err(|_| Error::bad_input(format!("{ENV} is not UTF-8")))?;
    if text.trim().is_empty() {
        return Ok(ExecInfo { api_version: ApiVersion::V1Beta1, interactive: false, cluster: ClusterConfig::default(), server: None });
    }
    if text.len() > MAX_INFO {
        return Err(Error::bad_input(format!("{ENV} is larger than {} KiB", MAX_INFO / 1024)));
    }
    let req: WireRequest = serde_json::from_str(text).map_err(|e| Error::bad_input(format!("{ENV} is not an ExecCredential")).because(e))?;
    if !req.kind.is_empty() && req.kind != "ExecCredential" {
        return Err(Error::bad_input(format!("{ENV} has kind '{}', expected ExecCredential", req.kind)));
    }
    let api_version = match req.api_version.as_str() {
        "" | "client.authentication.k8s.io/v1beta1" => ApiVersion::V1Beta1,
        "client.authentication.k8s.io/v1" => ApiVersion::V1,
        other => {
            return Err(Error::bad_input_hint(
                format!("kubectl asked for ExecCredential apiVersion '{other}', which entra-token does not speak"),
                "set `apiVersion: client.authentication.k8s.io/v1` in the kubeconfig user's exec block",
            ));
        }
    };
    let (server, config) = req.spec.cluster.map(|c| (c.server, c.config)).unwrap_or_default();
    let cluster = match config {
        None | Some(serde_json::Value::Null) => ClusterConfig::default(),
        Some(v) => serde_json::from_value(v).map_err(|e| {
            Error::bad_input_hint(r#"the cluster's exec config is not {"profile":…,"resource":…}"#, "fix the cluster's client.authentication.k8s.io/exec extension").because(e)
        })?,
    };
    Ok(ExecInfo { api_version, interactive: req.spec.interactive, cluster, server })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireAnswer<'a> {
    api_version: &'static str,
    kind: &'static str,
    status: WireStatus<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireStatus<'a> {
    token: &'a str,
    expiration_timestamp: String,
}

/// The ExecCredential answer, one line.
pub(crate) fn encode(api: ApiVersion, c: &Credential, now: i64) -> String {
    let answer = WireAnswer {
        api_version: api.as_str(),
        kind: "ExecCredential",
        status: WireStatus { token: c.access_token.expose(), expiration_timestamp: clock::rfc3339(super::early_expiry(c.expires_on, now)) },
    };
    serde_json::to_string(&answer).unwrap_or_default()
}

/// Flags win over the cluster's config, which wins over the defaults.
pub(crate) fn to_request(args: &KubectlArgs, info: &ExecInfo) -> TokenRequest {
    let pick = |flag: &Option<String>, cluster: &Option<String>| flag.clone().or_else(|| cluster.clone()).filter(|s| !s.trim().is_empty());
    TokenRequest {
        profile: pick(&args.profile, &info.cluster.profile),
        resource: Some(pick(&args.resource, &info.cluster.resource).unwrap_or_else(|| AKS_SERVER_ID.to_string())),
        tenant: pick(&args.tenant, &info.cluster.tenant),
        timeout: args.timeout,
        wait_for_login: args.wait_for_login,
        // spec.interactive only says whether stdin is attached; sign-in prompts go to
        // stderr, and the broker shows them only when someone can see them.
        prompts: true,
        ..TokenRequest::default()
    }
}

/// Does the request take any of the cluster's own settings (no flag names that one)?
fn cluster_chose(args: &KubectlArgs, info: &ExecInfo) -> bool {
    let from_cluster = |flag: &Option<String>, cluster: &Option<String>| flag.is_none() && cluster.as_ref().is_some_and(|c| !c.trim().is_empty());
    let c = &info.cluster;
    from_cluster(&args.profile, &c.profile) || from_cluster(&args.resource, &c.resource) || from_cluster(&args.tenant, &c.tenant)
}

/// A cluster entry is not the user's choice (a kubeconfig handed over with a cluster, a
/// tool writing cluster entries), and kubectl sends the token to its `server`: what its
/// exec config picks (profile, resource, tenant) is honoured only when the profile that
/// answers claims that server in its `urls`, as for every helper that sends a token to a
/// server it names. Else a cluster could ask for a token of another API or identity.
fn claimed_by_profile(req: TokenRequest, info: &ExecInfo) -> Result<TokenRequest> {
    let hint = "add the cluster's server to that profile's `urls` to let the cluster choose, or put --profile/--resource in the kubeconfig user's exec args";
    let server = info.server.as_deref().and_then(crate::urlmatch::parse).ok_or_else(|| {
        Error::bad_input_hint("the cluster's exec config picks the token, but the cluster names no https server a profile could claim", hint)
    })?;
    // Under a token agent its profiles' `urls` decide, on its side (a named profile must claim it too).
    if crate::agent::from_env().is_some() {
        // The agent picks its profile by the server and answers in that profile's tenant:
        // a tenant asked for here would be dropped there, so it is refused.
        if let Some(t) = &req.tenant {
            return Err(Error::bad_input_hint(
                format!("under the token agent the cluster's server picks the agent's profile, which answers in its own tenant: tenant {} cannot be asked for", crate::log::escape(t)),
                "drop `tenant` from the cluster's exec config (and --tenant), or give the agent a profile in that tenant whose `urls` claims the server",
            ));
        }
        return Ok(TokenRequest { url: Some(server.to_string()), ..req });
    }
    let name = match &req.profile {
        Some(name) => name.clone(),
        None => crate::urlmatch::profile_for(&server)?.ok_or_else(|| Error::bad_input_hint(format!("the cluster's exec config picks the token for {server}, which no profile's `urls` claims"), hint))?,
    };
    let file = crate::config::config_path().map(|p| crate::config::load_file(&p)).transpose()?.unwrap_or_default();
    if !file.profiles.get(&name).is_some_and(|p| p.urls.iter().any(|prefix| crate::urlmatch::under(prefix, &server))) {
        return Err(Error::bad_input_hint(format!("the cluster's exec config picks profile '{name}' for {server}, which that profile's `urls` does not claim"), hint));
    }
    Ok(TokenRequest { profile: Some(name), ..req })
}

pub(crate) fn run(args: &KubectlArgs) -> Result<ExitCode> {
    let raw = crate::env::os(ENV).unwrap_or_default();
    let info = decode(raw.as_encoded_bytes())?;
    trace!(1, "kubectl exec: {} interactive={} cluster config={:?}", info.api_version.as_str(), info.interactive, info.cluster);
    let req = to_request(args, &info);
    let req = if cluster_chose(args, &info) { claimed_by_profile(req, &info)? } else { req };
    let cred = match (args.pop_enabled, &args.pop_claims) {
        (true, Some(claims)) => {
            let shr = crate::pop::Shr::from_claims(claims).map_err(|why| Error::bad_input(format!("--pop-claims: {why}")))?;
            super::pop::credential(&req, &shr)?
        }
        (false, None) => broker::get_token(&req)?,
        _ => return Err(Error::bad_input(r#"--pop-enabled and --pop-claims "u=<the Arc cluster's ARM id>" go together (docs/pop.md)"#)),
    };
    super::write_stdout(format!("{}\n", encode(info.api_version, &cred, clock::now())).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(expires_on: i64) -> Credential {
        Credential::sample("tok", expires_on)
    }

    #[test]
    fn absent_or_empty_info_is_v1beta1() {
        assert_eq!(decode(b"").unwrap().api_version, ApiVersion::V1Beta1);
        assert_eq!(decode(b"  ").unwrap().api_version, ApiVersion::V1Beta1);
        let i = decode(br#"{"kind":"ExecCredential","apiVersion":"","spec":{}}"#).unwrap();
        assert_eq!(i.api_version, ApiVersion::V1Beta1);
    }

    #[test]
    fn reads_v1_interactive_and_cluster_config_refusing_unknown_config_keys() {
        let i = decode(
            br#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":true,"future":1,
            "cluster":{"server":"https://x","certificate-authority-data":"AA==","config":{"profile":"aks","resource":"r1"}}}}"#,
        )
        .unwrap();
        let e = decode(br#"{"apiVersion":"client.authentication.k8s.io/v1","spec":{"cluster":{"config":{"profil":"aks"}}}}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `profil`, expected one of `profile`, `resource`, `tenant`"), "{e}");
        assert_eq!(i.api_version, ApiVersion::V1);
        assert!(i.interactive);
        assert_eq!(i.cluster.profile.as_deref(), Some("aks"));
        assert_eq!(i.cluster.resource.as_deref(), Some("r1"));
        assert_eq!(i.server.as_deref(), Some("https://x"));
    }

    #[test]
    fn refuses_other_versions_and_garbage() {
        assert_eq!(decode(br#"{"apiVersion":"client.authentication.k8s.io/v2"}"#).unwrap_err().exit_code(), 1);
        assert!(decode(br#"{"apiVersion":"client.authentication.k8s.io/v1alpha1"}"#).is_err());
        assert!(decode(br#"{"kind":"Pod","apiVersion":"client.authentication.k8s.io/v1"}"#).is_err());
        assert!(decode(b"{").is_err());
        assert!(decode(&[0xff]).is_err());
        assert!(decode(br#"{"apiVersion":"client.authentication.k8s.io/v1","spec":{"cluster":{"config":"str"}}}"#).is_err());
    }

    #[test]
    fn answers_in_the_requested_version_with_an_early_whole_second_expiry() {
        let now = 1_795_328_000;
        let c = cred(now + 3600);
        let v1 = encode(ApiVersion::V1, &c, now);
        assert_eq!(
            v1,
            r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"tok","expirationTimestamp":"2026-11-22T07:08:20Z"}}"#
        );
        assert_eq!(clock::rfc3339(now + 3600 - super::super::EXPIRY_MARGIN), "2026-11-22T07:08:20Z");
        assert!(encode(ApiVersion::V1Beta1, &c, now).starts_with(r#"{"apiVersion":"client.authentication.k8s.io/v1beta1""#));
    }

    #[test]
    fn flags_beat_cluster_config_which_beats_defaults() {
        let info = decode(br#"{"apiVersion":"client.authentication.k8s.io/v1","spec":{"cluster":{"config":{"profile":"c","resource":"cr"}}}}"#).unwrap();
        let mut args = KubectlArgs { profile: None, resource: None, tenant: None, timeout: Duration::from_secs(1), wait_for_login: None, pop_enabled: false, pop_claims: None };
        let r = to_request(&args, &info);
        assert_eq!((r.profile.as_deref(), r.resource.as_deref()), (Some("c"), Some("cr")));
        args.profile = Some("f".into());
        let r = to_request(&args, &info);
        assert_eq!((r.profile.as_deref(), r.resource.as_deref()), (Some("f"), Some("cr")));
        let r = to_request(&args, &decode(b"").unwrap());
        assert_eq!(r.resource.as_deref(), Some(AKS_SERVER_ID));
    }
}
