//! Managed identity: the platform the process runs on hands out tokens for the identity
//! Azure assigned to it, so nothing secret is configured at all. The endpoint is detected
//! the way azure-identity does it: Service Fabric, App Service/Functions, Azure Arc,
//! Cloud Shell, then the instance metadata service (IMDS).

use super::FlowCtx;
use super::auto::Step;
use crate::clock::Deadline;
use crate::config::Profile;
use crate::error::{Error, Result};
use crate::http::{Reply, RetryPolicy};
use crate::oauth::{self, TokenReply};
use std::path::{Path, PathBuf};
use std::time::Duration;

const IMDS_HOST: &str = "http://169.254.169.254";
const IMDS_PATH: &str = "/metadata/identity/oauth2/token";
/// IMDS answers 404/410/429/5xx while it starts or updates (410 for up to 70 s): retry inside the deadline.
const IMDS_RETRY: RetryPolicy = RetryPolicy { attempts: 8, imds: true };
/// As one step of `auto`, do not wait long for an IMDS that is not there: 1 s to connect
/// (as azure-identity), 5 s for the first answer (a silent transparent proxy).
const PROBE_CONNECT: Duration = Duration::from_secs(1);
const PROBE_TOTAL: Duration = Duration::from_secs(5);
/// Arc's key files are tiny; anything bigger is not one.
const MAX_ARC_KEY: u64 = 4096;

/// Which managed identity endpoint this host has, from the environment alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    ServiceFabric { endpoint: String },
    AppService { endpoint: String },
    Arc { endpoint: String },
    CloudShell { endpoint: String },
    Imds { base: String },
}

impl Kind {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Kind::ServiceFabric { .. } => "Service Fabric",
            Kind::AppService { .. } => "App Service",
            Kind::Arc { .. } => "Azure Arc",
            Kind::CloudShell { .. } => "Cloud Shell",
            Kind::Imds { .. } => "IMDS",
        }
    }
}

use crate::env::var as env;

/// azure-identity's detection order.
pub(crate) fn detect() -> Kind {
    match (env("IDENTITY_ENDPOINT"), env("IDENTITY_HEADER"), env("IDENTITY_SERVER_THUMBPRINT"), env("IMDS_ENDPOINT"), env("MSI_ENDPOINT")) {
        (Some(endpoint), Some(_), Some(_), _, _) => Kind::ServiceFabric { endpoint },
        (Some(endpoint), Some(_), None, _, _) => Kind::AppService { endpoint },
        (Some(endpoint), None, _, Some(_), _) => Kind::Arc { endpoint },
        (_, _, _, _, Some(endpoint)) => Kind::CloudShell { endpoint },
        _ => Kind::Imds { base: env("AZURE_POD_IDENTITY_AUTHORITY_HOST").unwrap_or_else(|| IMDS_HOST.to_string()).trim_end_matches('/').to_string() },
    }
}

/// App Service and Service Fabric serve many applications at one endpoint, and
/// IDENTITY_HEADER (a secret) says which one is asking: a digest of it (SHA-256, never the
/// header itself) is part of the identity, so one application's token never answers another.
pub(crate) fn header_digest() -> String {
    let header = env("IDENTITY_HEADER").unwrap_or_default();
    let digest = ring::digest::digest(&ring::digest::SHA256, header.as_bytes());
    digest.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Which user-assigned identity to ask for; None is the system-assigned one.
/// (The variants keep Azure's own names for the three ids.)
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UserAssigned {
    ClientId(String),
    ObjectId(String),
    ResourceId(String),
}

impl UserAssigned {
    pub(crate) fn describe(&self) -> String {
        match self {
            UserAssigned::ClientId(id) => format!("client id {id}"),
            UserAssigned::ObjectId(id) => format!("object id {id}"),
            UserAssigned::ResourceId(id) => format!("resource id {id}"),
        }
    }
}

/// From the profile's `mi_client_id` / `mi_object_id` / `mi_res_id`, else AZURE_CLIENT_ID.
pub(crate) fn user_assigned(profile: &Profile) -> Result<Option<UserAssigned>> {
    Ok(named(profile)?.or_else(|| env("AZURE_CLIENT_ID").map(UserAssigned::ClientId)))
}

/// The profile's own `mi_client_id` / `mi_object_id` / `mi_res_id` only: where the managed
/// identity signs for an app (a federated assertion), AZURE_CLIENT_ID names the app.
pub(crate) fn named(profile: &Profile) -> Result<Option<UserAssigned>> {
    let s = &profile.settings;
    let set: Vec<UserAssigned> = [
        s.mi_client_id.clone().map(UserAssigned::ClientId),
        s.mi_object_id.clone().map(UserAssigned::ObjectId),
        s.mi_res_id.clone().map(UserAssigned::ResourceId),
    ]
    .into_iter()
    .flatten()
    .collect();
    match set.len() {
        0 => Ok(None),
        1 => Ok(set.into_iter().next()),
        _ => Err(Error::bad_input_hint(
            format!("profile '{}' names more than one user-assigned identity", profile.name),
            "set only one of mi_client_id, mi_object_id, mi_res_id",
        )),
    }
}

/// The cache identity: which identity of this host the token is for.
pub(crate) fn identity(profile: &Profile) -> String {
    identity_of(user_assigned(profile))
}

/// The cache identity of `ua` (as `user_assigned` or `named` chose it).
pub(crate) fn identity_of(ua: Result<Option<UserAssigned>>) -> String {
    match ua {
        Ok(Some(UserAssigned::ClientId(id))) => format!("mi:client_id:{}", id.to_ascii_lowercase()),
        Ok(Some(UserAssigned::ObjectId(id))) => format!("mi:object_id:{}", id.to_ascii_lowercase()),
        Ok(Some(UserAssigned::ResourceId(id))) => format!("mi:res_id:{}", id.to_ascii_lowercase()),
        Ok(None) => "mi:system".to_string(),
        Err(_) => "mi:invalid".to_string(),
    }
}

/// The `managed-identity` flow.
pub(crate) fn acquire(ctx: &FlowCtx<'_>) -> Result<TokenReply> {
    acquire_as(ctx, user_assigned(ctx.profile)?)
}

/// One attempt; `probe` (a step of `auto`) gives up fast when IMDS is not there.
pub(crate) fn acquire_step(ctx: &FlowCtx<'_>, probe: bool) -> Step {
    match user_assigned(ctx.profile) {
        Ok(ua) => step_as(ctx, probe, ua),
        Err(e) => Step::Failed(e),
    }
}

/// A token for `ctx.target` as the managed identity `ua` (None: system-assigned).
pub(crate) fn acquire_as(ctx: &FlowCtx<'_>, ua: Option<UserAssigned>) -> Result<TokenReply> {
    match step_as(ctx, false, ua) {
        Step::Token(t) => Ok(t),
        Step::Unavailable(why) => Err(Error::auth(format!("managed identity: {why}"), Some("run this on an Azure host with a managed identity, or pick another flow".into()))),
        Step::Failed(e) => Err(e),
    }
}

fn step_as(ctx: &FlowCtx<'_>, probe: bool, ua: Option<UserAssigned>) -> Step {
    let kind = detect();
    let resource = match ctx.target.resource_for_v1() {
        Ok(r) => r,
        Err(e) => return Step::Failed(e),
    };
    crate::log::trace!(1, "managed identity via {} ({})", kind.name(), ua.as_ref().map_or("system-assigned".to_string(), UserAssigned::describe));
    match kind {
        Kind::Imds { base } => imds(ctx, &base, &resource, ua.as_ref(), probe),
        other => match platform(ctx, &other, &resource, ua.as_ref()) {
            Ok(t) => Step::Token(t),
            Err(e) => Step::Failed(e),
        },
    }
}

fn query(pairs: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    q.finish()
}

fn url_with(endpoint: &str, q: &str) -> String {
    let sep = if endpoint.contains('?') { '&' } else { '?' };
    format!("{endpoint}{sep}{q}")
}

fn imds(ctx: &FlowCtx<'_>, base: &str, resource: &str, ua: Option<&UserAssigned>, probe: bool) -> Step {
    let mut pairs = vec![("api-version", "2018-02-01"), ("resource", resource)];
    match ua {
        Some(UserAssigned::ClientId(id)) => pairs.push(("client_id", id)),
        Some(UserAssigned::ObjectId(id)) => pairs.push(("object_id", id)),
        Some(UserAssigned::ResourceId(id)) => pairs.push(("msi_res_id", id)),
        None => {}
    }
    let url = format!("{base}{IMDS_PATH}?{}", query(&pairs));
    let headers = [("Metadata", "true")];
    let shown = format!("{base}{IMDS_PATH}");
    let mut reply = None;
    if probe {
        // One quick try: nothing listening, nothing answering in time, or something that
        // is not IMDS answering (a proxy's HTML 404) all mean "no IMDS here", not an error.
        let quick = Deadline::after(ctx.deadline.remaining().min(PROBE_TOTAL));
        match ctx.http.get_local(&url, &headers, quick, RetryPolicy::NONE, Some(PROBE_CONNECT)) {
            Ok(r) if r.status == 200 || r.status == 400 => reply = Some(r),
            Ok(r) if serde_json::from_slice::<serde_json::Value>(&r.body).is_err() => {
                return Step::Unavailable(format!("{shown} answered HTTP {} with something that is not IMDS (not JSON)", r.status));
            }
            Ok(_) => {} // IMDS is there but busy (404/410/429/5xx): the retrying request below.
            Err(e @ (Error::Network { .. } | Error::Timeout { .. })) if !ctx.deadline.expired() => {
                return Step::Unavailable(format!("no IMDS endpoint answered at {base} ({e})"));
            }
            Err(e) => return Step::Failed(e),
        }
    }
    let reply = match reply {
        Some(r) => r,
        None => match ctx.http.get_local(&url, &headers, ctx.deadline, IMDS_RETRY, None) {
            Ok(r) => r,
            Err(e) => return Step::Failed(e),
        },
    };
    match reply.status {
        200 => match oauth::parse_token_reply(&reply.body, &shown, crate::clock::now()) {
            Ok(t) => Step::Token(t),
            Err(e) => Step::Failed(e),
        },
        400 => {
            let what = match ua {
                Some(u) => format!("the user-assigned identity with {} is not assigned to this host", u.describe()),
                None => "this host has no managed identity assigned".to_string(),
            };
            let why = format!("IMDS at {base} answered 400: {what}");
            if probe { Step::Unavailable(why) } else { Step::Failed(Error::auth(format!("managed identity: {why}"), Some("assign an identity to the VM, or name the right one with mi_client_id / AZURE_CLIENT_ID".into()))) }
        }
        _ => Step::Failed(mi_error(&reply, &shown, "IMDS")),
    }
}

/// App Service/Functions, Service Fabric, Arc and Cloud Shell: configured by the platform,
/// so a failure is an error, not a sign to try the next source.
fn platform(ctx: &FlowCtx<'_>, kind: &Kind, resource: &str, ua: Option<&UserAssigned>) -> Result<TokenReply> {
    let no_user_assigned = |name: &str| {
        Error::bad_input_hint(format!("{name} managed identity does not support user-assigned identities"), "remove mi_client_id/mi_object_id/mi_res_id (and AZURE_CLIENT_ID) or run elsewhere")
    };
    let (reply, shown) = match kind {
        Kind::AppService { endpoint } => {
            let secret = crate::secret::Secret::new(env("IDENTITY_HEADER").unwrap_or_default());
            let mut pairs = vec![("api-version", "2019-08-01"), ("resource", resource)];
            match ua {
                Some(UserAssigned::ClientId(id)) => pairs.push(("client_id", id)),
                Some(UserAssigned::ObjectId(id)) => pairs.push(("principal_id", id)),
                Some(UserAssigned::ResourceId(id)) => pairs.push(("mi_res_id", id)),
                None => {}
            }
            let url = url_with(endpoint, &query(&pairs));
            (ctx.http.get_local(&url, &[("X-IDENTITY-HEADER", secret.expose())], ctx.deadline, RetryPolicy::TOKEN, None)?, endpoint)
        }
        Kind::ServiceFabric { endpoint } => {
            if ua.is_some() {
                return Err(no_user_assigned("Service Fabric"));
            }
            let pin = service_fabric_pin(endpoint)?;
            let secret = crate::secret::Secret::new(env("IDENTITY_HEADER").unwrap_or_default());
            let url = url_with(endpoint, &query(&[("api-version", "2019-07-01-preview"), ("resource", resource)]));
            (ctx.http.get_pinned(&url, &[("Secret", secret.expose())], &pin, ctx.deadline, RetryPolicy::TOKEN)?, endpoint)
        }
        Kind::Arc { endpoint } => {
            if ua.is_some() {
                return Err(no_user_assigned("Azure Arc"));
            }
            (arc(ctx, endpoint, resource)?, endpoint)
        }
        Kind::CloudShell { endpoint } => {
            if ua.is_some() {
                return Err(no_user_assigned("Cloud Shell"));
            }
            (ctx.http.post_form_local(endpoint, &[("resource", resource)], &[("Metadata", "true")], ctx.deadline, RetryPolicy::TOKEN, None)?, endpoint)
        }
        Kind::Imds { .. } => return Err(Error::general("IMDS is not a platform endpoint")),
    };
    let shown = shown.split('?').next().unwrap_or(shown).to_string();
    if reply.status == 200 {
        return oauth::parse_token_reply(&reply.body, &shown, crate::clock::now());
    }
    Err(mi_error(&reply, &shown, kind.name()))
}

/// Service Fabric's endpoint is https with a cluster certificate the platform names by
/// thumbprint: the pin it is checked against, or why the configuration cannot be used.
/// (No plain-http exception, not even for loopback: the pin is the only check there is.)
pub(crate) fn service_fabric_pin(endpoint: &str) -> Result<crate::http::pinned::Pin> {
    if !endpoint.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://")) {
        return Err(Error::bad_input_hint(
            format!("Service Fabric IDENTITY_ENDPOINT '{}' is not https", endpoint.split('?').next().unwrap_or(endpoint)),
            "Service Fabric's token endpoint is https, verified against IDENTITY_SERVER_THUMBPRINT; check the variables the platform set",
        ));
    }
    let raw = env("IDENTITY_SERVER_THUMBPRINT").unwrap_or_default();
    crate::http::pinned::Pin::parse(&raw).map_err(|why| {
        Error::bad_input_hint(
            format!("IDENTITY_SERVER_THUMBPRINT '{}' is not a certificate thumbprint: {why}", raw.escape_default()),
            "it must be the endpoint certificate's SHA-1 thumbprint in hex (40 digits), as Service Fabric sets it",
        )
    })
}

/// Azure Arc: the first request is refused with the path of a key file only a local
/// administrator (or the himds group) can read; its content proves we run on the machine.
fn arc(ctx: &FlowCtx<'_>, endpoint: &str, resource: &str) -> Result<Reply> {
    let url = url_with(endpoint, &query(&[("api-version", "2020-06-01"), ("resource", resource)]));
    let first = ctx.http.get_local(&url, &[("Metadata", "true")], ctx.deadline, RetryPolicy::TOKEN, None)?;
    if first.status != 401 {
        return Ok(first);
    }
    let realm = first.www_authenticate.as_deref().and_then(|h| h.split_once("realm=")).map(|(_, p)| p.trim().trim_matches('"').to_string());
    let Some(realm) = realm else {
        return Err(Error::Network { url: endpoint.to_string(), message: "Azure Arc answered 401 without a key file challenge".into(), hint: None });
    };
    let key = read_arc_key(Path::new(&realm), &arc_key_dir())?;
    let basic = crate::secret::Secret::new(format!("Basic {}", key.expose()));
    ctx.http.get_local(&url, &[("Metadata", "true"), ("Authorization", basic.expose())], ctx.deadline, RetryPolicy::TOKEN, None)
}

/// Where the Arc agent keeps its key files; ENTRA_TOKEN_ARC_KEY_DIR overrides (tests).
fn arc_key_dir() -> PathBuf {
    if let Some(d) = env("ENTRA_TOKEN_ARC_KEY_DIR") {
        return PathBuf::from(d);
    }
    if cfg!(windows) {
        let data = env("ProgramData").unwrap_or_else(|| "C:\\ProgramData".into());
        PathBuf::from(data).join("AzureConnectedMachineAgent").join("Tokens")
    } else {
        PathBuf::from("/var/opt/azcmagent/tokens")
    }
}

/// The challenge names a file: accept it only inside the agent's key directory, with a
/// `.key` name and a key-sized length, so a hostile endpoint cannot make us send any file.
pub(crate) fn read_arc_key(path: &Path, dir: &Path) -> Result<crate::secret::Secret<String>> {
    let refuse = |why: &str| Error::auth(format!("Azure Arc challenge refused: {} {why}", path.display()), Some(format!("the key file must be a .key file directly in {}", dir.display())));
    let (Ok(real), Ok(real_dir)) = (std::fs::canonicalize(path), std::fs::canonicalize(dir)) else {
        return Err(refuse("cannot be resolved (do you have permission? run as root or a member of the himds group)"));
    };
    if real.parent() != Some(real_dir.as_path()) {
        return Err(refuse("is outside the Arc agent's key directory"));
    }
    if real.extension().and_then(|e| e.to_str()) != Some("key") {
        return Err(refuse("is not a .key file"));
    }
    let meta = std::fs::metadata(&real).map_err(|e| refuse(&e.to_string()))?;
    if meta.len() > MAX_ARC_KEY {
        return Err(refuse("is larger than a key file can be"));
    }
    let text = std::fs::read_to_string(&real).map_err(|e| refuse(&format!("cannot be read: {e}")))?;
    Ok(crate::secret::Secret::new(text.trim().to_string()))
}

fn mi_error(reply: &Reply, url: &str, what: &str) -> Error {
    match oauth::error_from_reply(reply, url) {
        Error::Auth { message, aad, hint } => Error::Auth { message: format!("managed identity ({what}): {message}"), aad, hint },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arc_keys_must_live_in_the_key_dir() {
        let dir = std::env::temp_dir().join(format!("entra-token-arc-{}", std::process::id()));
        let keys = dir.join("tokens");
        std::fs::create_dir_all(&keys).unwrap();
        std::fs::write(keys.join("a.key"), "secret-key\n").unwrap();
        std::fs::write(dir.join("outside.key"), "x").unwrap();
        std::fs::write(keys.join("a.txt"), "x").unwrap();
        std::fs::write(keys.join("big.key"), vec![b'x'; 5000]).unwrap();
        assert_eq!(read_arc_key(&keys.join("a.key"), &keys).unwrap().expose(), "secret-key");
        assert!(read_arc_key(&dir.join("outside.key"), &keys).is_err());
        assert!(read_arc_key(&keys.join("../outside.key"), &keys).is_err());
        assert!(read_arc_key(&keys.join("a.txt"), &keys).is_err());
        assert!(read_arc_key(&keys.join("big.key"), &keys).is_err());
        assert!(read_arc_key(&keys.join("missing.key"), &keys).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
