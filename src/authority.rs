//! Where tokens come from and what they are for: clouds and authority hosts, tenants,
//! v1/v2 endpoint URLs, resource aliases, and the scope ⇄ resource rules of Entra.

use crate::error::{Error, Result};

pub(crate) const PUBLIC_HOST: &str = "https://login.microsoftonline.com";

/// The sovereign clouds we know by name.
pub(crate) fn cloud_host(cloud: &str) -> Result<&'static str> {
    match cloud.to_ascii_lowercase().as_str() {
        "public" | "azurecloud" | "azure" => Ok(PUBLIC_HOST),
        "usgov" | "azureusgovernment" | "usgovernment" => Ok("https://login.microsoftonline.us"),
        "china" | "azurechinacloud" => Ok("https://login.chinacloudapi.cn"),
        other => Err(Error::bad_input_hint(
            format!("unknown cloud '{other}'"),
            "use one of: public, usgov, china (or set `authority` to the host URL)",
        )),
    }
}

/// The scope Entra issues SSH certificates for, in the cloud of `authority_host`: its
/// "PAS" service (public `pas.windows.net`; China `pas.chinacloudapi.cn`, US Government
/// `pasff.usgovcloudapi.net`, as az's ssh extension names them). Any other host (a
/// stand-in on loopback, a private cloud) gets the public one.
pub(crate) fn ssh_cert_scope(authority_host: &str) -> &'static str {
    let host = authority_host.to_ascii_lowercase();
    if host.contains(".chinacloudapi.cn") {
        "https://pas.chinacloudapi.cn/CheckMyAccess/Linux/.default"
    } else if host.contains(".microsoftonline.us") {
        "https://pasff.usgovcloudapi.net/CheckMyAccess/Linux/.default"
    } else {
        "https://pas.windows.net/CheckMyAccess/Linux/.default"
    }
}

/// Which token endpoint dialect a profile speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Endpoint {
    V2,
    V1,
}

/// An authority host, validated: https, or http only for loopback (tests, local stand-ins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authority {
    /// Scheme + host [+ port] [+ base path], no trailing slash.
    pub host: String,
    pub tenant: String,
}

impl Authority {
    pub(crate) fn new(host: &str, tenant: &str) -> Result<Authority> {
        let host = host.trim().trim_end_matches('/').to_string();
        check_secure_url(&host, "authority")?;
        if tenant.is_empty() || !tenant.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)) {
            return Err(Error::bad_input_hint(
                format!("tenant '{tenant}' is not a tenant id or domain"),
                "use a tenant GUID, a domain like contoso.onmicrosoft.com, or organizations/common",
            ));
        }
        Ok(Authority { host, tenant: tenant.to_string() })
    }

    pub(crate) fn token_url(&self, endpoint: Endpoint) -> String {
        match endpoint {
            Endpoint::V2 => format!("{}/{}/oauth2/v2.0/token", self.host, self.tenant),
            Endpoint::V1 => format!("{}/{}/oauth2/token", self.host, self.tenant),
        }
    }
    pub(crate) fn devicecode_url(&self, endpoint: Endpoint) -> String {
        match endpoint {
            Endpoint::V2 => format!("{}/{}/oauth2/v2.0/devicecode", self.host, self.tenant),
            Endpoint::V1 => format!("{}/{}/oauth2/devicecode", self.host, self.tenant),
        }
    }
    pub(crate) fn authorize_url(&self, endpoint: Endpoint) -> String {
        match endpoint {
            Endpoint::V2 => format!("{}/{}/oauth2/v2.0/authorize", self.host, self.tenant),
            Endpoint::V1 => format!("{}/{}/oauth2/authorize", self.host, self.tenant),
        }
    }
    /// `common`, `organizations` and `consumers` are not real tenants.
    pub(crate) fn is_multi_tenant(&self) -> bool {
        matches!(self.tenant.to_ascii_lowercase().as_str(), "common" | "organizations" | "consumers")
    }
}

/// Secrets and refresh tokens only travel over https; plain http is allowed for
/// loopback stand-ins alone.
pub(crate) fn check_secure_url(url: &str, what: &str) -> Result<()> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") && host_of(&lower).is_some_and(|h| !h.is_empty()) {
        return Ok(());
    }
    if let Some(rest) = lower.strip_prefix("http://") {
        let _ = rest;
        if host_of(&lower).is_some_and(is_loopback_host) {
            return Ok(());
        }
    }
    Err(Error::bad_input_hint(
        format!("{what} URL '{url}' is not https"),
        "authority URLs must be https:// (plain http is allowed only for 127.0.0.1, [::1] and localhost)",
    ))
}

/// The host part of an absolute http(s) URL (no userinfo allowed), lower-cased input expected.
pub(crate) fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.contains('@') {
        return None;
    }
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split_once(']').map(|(h, _)| h);
    }
    Some(authority.rsplit_once(':').map_or(authority, |(h, _)| h))
}

pub(crate) fn is_loopback_host(host: &str) -> bool {
    host == "localhost" || host == "::1" || host.starts_with("127.") && host.split('.').count() == 4 && host.split('.').all(|p| p.parse::<u8>().is_ok())
}

/// What a request asks for, normalised: the v2 scopes, and the v1 resource when the
/// request is for a single resource's default permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub scopes: Vec<String>,
    pub resource: Option<String>,
}

impl Target {
    pub(crate) fn from_resource(input: &str) -> Result<Target> {
        let resource = resolve_resource(input)?;
        Ok(Target { scopes: vec![default_scope(&resource)], resource: Some(resource) })
    }

    pub(crate) fn from_scopes<S: AsRef<str>>(scopes: &[S]) -> Result<Target> {
        let scopes: Vec<String> = scopes.iter().map(|s| s.as_ref().trim().to_string()).filter(|s| !s.is_empty()).collect();
        if scopes.is_empty() {
            return Err(Error::bad_input("no scopes given"));
        }
        for s in &scopes {
            if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(Error::bad_input(format!("scope '{s}' contains whitespace or control characters")));
            }
        }
        let resource = if scopes.len() == 1 { resource_of_scope(&scopes[0]) } else { None };
        Ok(Target { scopes, resource })
    }

    /// The resource for v1 endpoints, managed identity and az: the one resource behind the scopes.
    pub(crate) fn resource_for_v1(&self) -> Result<String> {
        if let Some(r) = &self.resource {
            return Ok(r.clone());
        }
        let resources: Vec<String> = self.scopes.iter().filter(|s| !is_oidc_scope(s)).filter_map(|s| resource_of_scope(s).or_else(|| scope_resource_prefix(s))).collect();
        match resources.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(Error::bad_input_hint(
                "this token source needs a single resource, not a list of scopes",
                "pass --resource, or a single `<resource>/.default` scope",
            )),
        }
    }

    /// Sorted, de-duplicated, lower-cased scopes: the cache key's view of the target.
    /// Entra matches scopes (the resource URI and the permission) without regard to case,
    /// so `https://Graph.microsoft.com/User.Read` and `…/user.read` are one token, one entry.
    pub(crate) fn key(&self) -> String {
        let mut s: Vec<String> = self.scopes.iter().map(|x| x.to_ascii_lowercase()).collect();
        s.sort_unstable();
        s.dedup();
        s.join(" ")
    }
}

pub(crate) fn is_oidc_scope(s: &str) -> bool {
    matches!(s, "openid" | "profile" | "offline_access" | "email")
}

/// `{resource}/.default`; a resource ending in `/` keeps it (`https://management.azure.com//.default`).
pub(crate) fn default_scope(resource: &str) -> String {
    format!("{resource}/.default")
}

/// `X/.default` → `X`.
pub(crate) fn resource_of_scope(scope: &str) -> Option<String> {
    scope.strip_suffix("/.default").filter(|r| !r.is_empty()).map(str::to_string)
}

/// `https://graph.microsoft.com/User.Read` → `https://graph.microsoft.com`.
fn scope_resource_prefix(scope: &str) -> Option<String> {
    let idx = scope.rfind('/')?;
    let r = &scope[..idx];
    (r.contains("://") && r.len() > "https://".len() || is_guid(r)).then(|| r.to_string())
}

pub(crate) fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { *c == b'-' } else { c.is_ascii_hexdigit() })
}

/// Well-known resources by short name.
pub(crate) const ALIASES: &[(&str, &str)] = &[
    ("powerbi", "https://analysis.windows.net/powerbi/api"),
    ("pbi", "https://analysis.windows.net/powerbi/api"),
    ("fabric", "https://api.fabric.microsoft.com"),
    ("graph", "https://graph.microsoft.com"),
    ("arm", "https://management.azure.com/"),
    ("management", "https://management.azure.com/"),
    ("azure", "https://management.azure.com/"),
    ("storage", "https://storage.azure.com"),
    ("keyvault", "https://vault.azure.net"),
    ("vault", "https://vault.azure.net"),
    ("sql", "https://database.windows.net/"),
    ("devops", "499b84ac-1321-427f-aa17-267ca6975798"),
    ("ado", "499b84ac-1321-427f-aa17-267ca6975798"),
    ("aks", "6dae42f8-4368-4678-94ff-3960e28e3630"),
    ("kubernetes", "6dae42f8-4368-4678-94ff-3960e28e3630"),
    ("asazure", "https://*.asazure.windows.net"),
    ("analysisservices", "https://*.asazure.windows.net"),
    ("acr", "https://containerregistry.azure.net"),
    ("cosmos", "https://cosmos.azure.com"),
    ("eventhubs", "https://eventhubs.azure.net"),
    ("servicebus", "https://servicebus.azure.net"),
    ("loganalytics", "https://api.loganalytics.io"),
    ("kusto", "https://kusto.kusto.windows.net"),
];

/// An alias, a GUID, an `https://` App ID URI, `api://…`, or a `dscmd`-style server string.
pub(crate) fn resolve_resource(input: &str) -> Result<String> {
    let raw = input.trim();
    if raw.is_empty() {
        return Err(Error::bad_input("empty resource"));
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::bad_input_hint(
            format!("resource '{raw}' contains whitespace"),
            "pass one resource; use --scope for a space-separated list of scopes",
        ));
    }
    // A scope given as the resource (`https://graph.microsoft.com/.default`): its resource,
    // not `…/.default/.default`, which Entra refuses.
    if let Some(resource) = resource_of_scope(raw) {
        return resolve_resource(&resource);
    }
    let lower = raw.to_ascii_lowercase();
    if let Some((_, uri)) = ALIASES.iter().find(|(a, _)| *a == lower) {
        return Ok((*uri).to_string());
    }
    if is_guid(raw) {
        return Ok(lower);
    }
    // Power BI / Fabric XMLA endpoints, as dscmd takes them.
    if lower.starts_with("powerbi://") || lower.starts_with("pbiazure://") || lower.starts_with("pbidedicated://") {
        return Ok("https://analysis.windows.net/powerbi/api".into());
    }
    // asazure://westus.asazure.windows.net/server → https://westus.asazure.windows.net
    if let Some(rest) = lower.strip_prefix("asazure://") {
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() {
            return Err(Error::bad_input(format!("'{raw}' has no region host")));
        }
        return Ok(format!("https://{host}"));
    }
    if lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("api://") || lower.starts_with("spn:") {
        return Ok(raw.to_string());
    }
    let names: Vec<&str> = ALIASES.iter().map(|(a, _)| *a).collect();
    let mut guess = crate::suggest::did_you_mean(raw, names.iter().copied());
    // A host without its scheme (`management.azure.com`): the App ID URI meant.
    if guess.is_empty() && raw.contains('.') && !raw.contains("://") && raw.chars().all(|c| c.is_ascii_alphanumeric() || "-._/".contains(c)) {
        guess = format!(" (did you mean 'https://{raw}'?)");
    }
    Err(Error::bad_input_hint(
        format!("unknown resource '{raw}'{guess}"),
        format!("use an App ID URI (https://…), a GUID, or an alias: {}", names.join(", ")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_certificates_come_from_the_ssh_service_of_the_profiles_cloud() {
        assert_eq!(ssh_cert_scope(PUBLIC_HOST), "https://pas.windows.net/CheckMyAccess/Linux/.default");
        assert_eq!(ssh_cert_scope(cloud_host("china").unwrap()), "https://pas.chinacloudapi.cn/CheckMyAccess/Linux/.default");
        assert_eq!(ssh_cert_scope(cloud_host("usgov").unwrap()), "https://pasff.usgovcloudapi.net/CheckMyAccess/Linux/.default");
        assert_eq!(ssh_cert_scope("http://127.0.0.1:8080"), "https://pas.windows.net/CheckMyAccess/Linux/.default");
    }

    #[test]
    fn default_scope_keeps_trailing_slash() {
        assert_eq!(default_scope("https://management.azure.com/"), "https://management.azure.com//.default");
        assert_eq!(resource_of_scope("https://management.azure.com//.default").unwrap(), "https://management.azure.com/");
    }

    #[test]
    fn aliases_and_server_strings() {
        assert_eq!(resolve_resource("PowerBI").unwrap(), "https://analysis.windows.net/powerbi/api");
        assert_eq!(resolve_resource("powerbi://api.powerbi.com/v1.0/myorg/Workspace").unwrap(), "https://analysis.windows.net/powerbi/api");
        assert_eq!(resolve_resource("asazure://westus.asazure.windows.net/server").unwrap(), "https://westus.asazure.windows.net");
        assert_eq!(resolve_resource("499B84AC-1321-427F-AA17-267CA6975798").unwrap(), "499b84ac-1321-427f-aa17-267ca6975798");
        assert!(resolve_resource("nonsense").is_err());
        // A scope where a resource goes is its resource; a bare host gets its URI suggested.
        assert_eq!(resolve_resource("https://graph.microsoft.com/.default").unwrap(), "https://graph.microsoft.com");
        assert_eq!(resolve_resource("https://management.azure.com//.default").unwrap(), "https://management.azure.com/");
        assert_eq!(resolve_resource("api://my-app/.default").unwrap(), "api://my-app");
        let e = crate::error::one_line(&resolve_resource("management.azure.com").unwrap_err());
        assert!(e.contains("did you mean 'https://management.azure.com'?"), "{e}");
        assert!(resolve_resource("a b").is_err());
    }

    #[test]
    fn authority_urls_must_be_secure() {
        assert!(Authority::new("https://login.microsoftonline.com/", "contoso.com").is_ok());
        assert!(Authority::new("http://127.0.0.1:8080", "t").is_ok());
        assert!(Authority::new("http://localhost:1", "t").is_ok());
        assert!(Authority::new("http://[::1]:1", "t").is_ok());
        assert!(Authority::new("http://evil.test", "t").is_err());
        assert!(Authority::new("http://127.0.0.1.evil.test", "t").is_err());
        assert!(Authority::new("https://user@evil.test", "t").is_err());
        assert!(Authority::new("https://login.microsoftonline.com", "../x").is_err());
    }

    #[test]
    fn target_resource_from_scopes() {
        let t = Target::from_scopes(&["https://graph.microsoft.com/User.Read", "openid"]).unwrap();
        assert_eq!(t.resource_for_v1().unwrap(), "https://graph.microsoft.com");
        assert_eq!(t.key(), "https://graph.microsoft.com/user.read openid");
    }

    #[test]
    fn scope_spellings_that_differ_in_case_or_order_share_a_key() {
        let a = Target::from_scopes(&["https://Graph.Microsoft.com/User.Read", "openid"]).unwrap();
        let b = Target::from_scopes(&["openid", "https://graph.microsoft.com/user.read", "OpenID"]).unwrap();
        assert_eq!(a.key(), b.key());
        let c = Target::from_scopes(&["https://graph.microsoft.com/Mail.Read"]).unwrap();
        assert_ne!(a.key(), c.key());
    }
}
