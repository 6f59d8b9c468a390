//! What the emulator knows: its tenants, app registrations, people and token lifetimes,
//! from a small TOML file (`--config`) or the built-in default (one tenant, one app with
//! a secret, one person with a password), with flags for the common changes. The secrets
//! here are the emulator's own, made up per run unless the file names them: they open
//! nothing anywhere else.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::wire;
use crate::error::{Error, Result};

/// The default tenant's domain: the one Microsoft's docs (and ours) use in examples, so
/// every example runs against the emulator as written. Its tokens still name the emulator.
pub(crate) const DEFAULT_TENANT: &str = "contoso.com";
/// The default app's client id: a GUID of the emulator's own, no real app's.
pub(crate) const DEFAULT_CLIENT_ID: &str = "00000000-e4a1-4e10-8000-00000000e001";
pub(crate) const DEFAULT_USER: &str = "alice@contoso.com";
/// The managed identity the IMDS and App Service endpoints answer as, by default.
pub(crate) const DEFAULT_MI_CLIENT_ID: &str = "00000000-e4a1-4e10-8000-00000000e0a1";

/// Device code and browser sign-ins: approved at once, or when a person clicks on a local page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Approve {
    Auto,
    Click,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    tenants: Vec<TenantFile>,
    #[serde(default)]
    apps: Vec<AppFile>,
    #[serde(default)]
    users: Vec<UserFile>,
    token_lifetime: Option<String>,
    refresh_token_rotation: Option<bool>,
    approve: Option<Approve>,
    managed_identity_client_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantFile {
    domain: String,
    id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AppFile {
    client_id: String,
    /// None and no certificate or federation: a public client.
    secret: Option<String>,
    /// base64url SHA-256 (`x5t#S256`) or hex SHA-1 (`x5t`) thumbprints of the app's certificates.
    #[serde(default)]
    certificate_thumbprints: Vec<String>,
    /// Federated credentials: (issuer, subject) pairs whose tokens the app accepts as assertions.
    #[serde(default)]
    federated: Vec<Federated>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Federated {
    pub issuer: String,
    pub subject: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserFile {
    username: String,
    password: String,
    name: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Tenant {
    pub domain: String,
    pub id: String,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct App {
    pub secret: Option<String>,
    pub thumbprints: Vec<String>,
    pub federated: Vec<Federated>,
}

impl App {
    /// A confidential client must prove itself; a public one must not.
    pub(crate) fn confidential(&self) -> bool {
        self.secret.is_some() || !self.thumbprints.is_empty() || !self.federated.is_empty()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct User {
    pub username: String,
    pub password: String,
    pub name: String,
}

/// Everything the emulator serves from.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub tenants: Vec<Tenant>,
    pub apps: BTreeMap<String, App>,
    pub users: Vec<User>,
    pub lifetime: i64,
    pub rotate: bool,
    pub approve: Approve,
    pub mi_client_id: String,
}

fn tenant(domain: &str, id: Option<&str>) -> Result<Tenant> {
    let domain = domain.trim().to_ascii_lowercase();
    if domain.is_empty() || wire::is_multi_tenant(&domain) || domain.contains(['/', '?', '#', ' ']) {
        return Err(Error::bad_input(format!("emulator config: '{domain}' cannot be a tenant's domain")));
    }
    let id = match id {
        Some(id) if wire::is_guid(id) => id.to_ascii_lowercase(),
        Some(id) => return Err(Error::bad_input(format!("emulator config: tenant id '{id}' is not a GUID"))),
        None if wire::is_guid(&domain) => domain.clone(),
        None => wire::guid_from("tenant", &domain),
    };
    Ok(Tenant { domain, id })
}

/// A display name from `alice@…`: `Alice`.
fn name_of(username: &str) -> String {
    let local = username.split('@').next().unwrap_or(username);
    let mut c = local.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// A made-up secret for this run: 32 random bytes, base64url.
pub(crate) fn made_up_secret() -> String {
    wire::b64url(wire::random_bytes(24))
}

impl Settings {
    /// The built-in default: one tenant, one app with a (per-run) secret, one person with a (per-run) password.
    pub(crate) fn default_world() -> Settings {
        let mut apps = BTreeMap::new();
        apps.insert(DEFAULT_CLIENT_ID.to_string(), App { secret: Some(made_up_secret()), ..App::default() });
        Settings {
            tenants: vec![Tenant { domain: DEFAULT_TENANT.into(), id: wire::guid_from("tenant", DEFAULT_TENANT) }],
            apps,
            users: vec![User { username: DEFAULT_USER.into(), password: made_up_secret(), name: name_of(DEFAULT_USER) }],
            lifetime: 3600,
            rotate: true,
            approve: Approve::Auto,
            mi_client_id: DEFAULT_MI_CLIENT_ID.into(),
        }
    }

    /// The settings a config file describes; what it leaves out keeps the default's.
    pub(crate) fn from_toml(text: &str, origin: &Path) -> Result<Settings> {
        let file: File = toml::from_str(text).map_err(|e| {
            let first = e.to_string().lines().find(|l| !l.trim().is_empty()).unwrap_or("").to_string();
            Error::bad_input_hint(format!("{}: {first}", origin.display()), "see docs/emulator.md for the emulator's config keys")
        })?;
        let mut s = Settings::default_world();
        if !file.tenants.is_empty() {
            s.tenants = file.tenants.iter().map(|t| tenant(&t.domain, t.id.as_deref())).collect::<Result<_>>()?;
        }
        if !file.apps.is_empty() {
            s.apps.clear();
            for a in file.apps {
                let id = a.client_id.trim().to_ascii_lowercase();
                if id.is_empty() {
                    return Err(Error::bad_input(format!("{}: an app has an empty client_id", origin.display())));
                }
                s.apps.insert(id, App { secret: a.secret, thumbprints: a.certificate_thumbprints, federated: a.federated });
            }
        }
        if !file.users.is_empty() {
            s.users = file.users.into_iter().map(|u| User { name: u.name.unwrap_or_else(|| name_of(&u.username)), username: u.username, password: u.password }).collect();
        }
        if let Some(l) = file.token_lifetime {
            s.lifetime = lifetime(&l)?;
        }
        s.rotate = file.refresh_token_rotation.unwrap_or(true);
        s.approve = file.approve.unwrap_or(Approve::Auto);
        if let Some(mi) = file.managed_identity_client_id {
            s.mi_client_id = mi;
        }
        Ok(s)
    }

    /// Reads `--config FILE`, or the default world without one.
    pub(crate) fn load(path: Option<&Path>) -> Result<Settings> {
        let Some(path) = path else { return Ok(Settings::default_world()) };
        let text = std::fs::read_to_string(path).map_err(|e| Error::bad_input_hint(format!("cannot read the emulator config {}", path.display()), "check the path given to --config").because(e))?;
        Settings::from_toml(&text, path)
    }

    /// `--tenant`, `--client-id`, `--user`: the first tenant, app and person, renamed.
    pub(crate) fn override_first(&mut self, tenant_domain: Option<&str>, client_id: Option<&str>, user: Option<&str>) -> Result<()> {
        if let Some(d) = tenant_domain {
            self.tenants[0] = tenant(d, None)?;
        }
        if let Some(id) = client_id.map(|i| i.trim().to_ascii_lowercase()) {
            if id.is_empty() {
                return Err(Error::bad_input("--client-id is empty"));
            }
            let first = self.apps.keys().next().cloned();
            let app = first.and_then(|k| self.apps.remove(&k)).unwrap_or_else(|| App { secret: Some(made_up_secret()), ..App::default() });
            self.apps.insert(id, app);
        }
        if let Some(u) = user.map(str::trim) {
            if u.is_empty() || u.contains(char::is_whitespace) {
                return Err(Error::bad_input(format!("--user '{u}' is not a username")));
            }
            match self.users.first_mut() {
                Some(first) => *first = User { username: u.to_string(), name: name_of(u), password: first.password.clone() },
                None => self.users.push(User { username: u.to_string(), name: name_of(u), password: made_up_secret() }),
            }
        }
        Ok(())
    }

    /// The first tenant, app and person: what the printed exports name.
    pub(crate) fn first_tenant(&self) -> &Tenant {
        &self.tenants[0]
    }

    /// The configured tenant `name` names (domain or id, any case).
    pub(crate) fn tenant(&self, name: &str) -> Option<&Tenant> {
        let n = name.to_ascii_lowercase();
        self.tenants.iter().find(|t| t.domain == n || t.id == n)
    }

    /// An app registered here, or a first-party public client every tenant has.
    pub(crate) fn app(&self, client_id: &str) -> Option<App> {
        let id = client_id.to_ascii_lowercase();
        self.apps.get(&id).cloned().or_else(|| wire::FIRST_PARTY.contains(&id.as_str()).then(App::default))
    }
}

/// `3600`, `90m`, `1h`: a token lifetime, 1 minute to 1 day.
pub(crate) fn lifetime(s: &str) -> Result<i64> {
    let d = s.trim().parse::<u64>().map(Duration::from_secs).or_else(|_| crate::clock::parse_duration(s)).map_err(|e| Error::bad_input(format!("token lifetime '{s}': {e}")))?;
    let secs = d.as_secs() as i64;
    if !(60..=86_400).contains(&secs) {
        return Err(Error::bad_input(format!("token lifetime '{s}' is outside 1m..24h")));
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_file_replaces_what_it_names() {
        let s = Settings::from_toml(
            "token_lifetime = \"10m\"\napprove = \"click\"\n[[tenants]]\ndomain = \"Fabrikam.test\"\n[[apps]]\nclient_id = \"app-1\"\nsecret = \"s\"\n[[users]]\nusername = \"bob@fabrikam.test\"\npassword = \"p\"\n",
            Path::new("e.toml"),
        )
        .unwrap();
        assert_eq!(s.lifetime, 600);
        assert_eq!(s.approve, Approve::Click);
        assert_eq!(s.first_tenant().domain, "fabrikam.test");
        assert!(s.tenant(&s.first_tenant().id.clone()).is_some());
        assert!(s.app("APP-1").is_some_and(|a| a.confidential()));
        assert!(s.app("04b07795-8ddb-461a-bbee-02f9e1bf7b46").is_some_and(|a| !a.confidential()));
        assert!(s.app(DEFAULT_CLIENT_ID).is_none());
        assert_eq!(s.users[0].name, "Bob");
        let e = Settings::from_toml("tenant = 1\n", Path::new("e.toml")).unwrap_err();
        assert!(crate::error::one_line(&e).contains("e.toml"), "{}", crate::error::one_line(&e));
        assert!(lifetime("5s").is_err() && lifetime("3600").is_ok());
        let mut d = Settings::default_world();
        d.override_first(Some("Fabrikam.test"), Some("APP-2"), Some("carol@fabrikam.test")).unwrap();
        assert_eq!((d.first_tenant().domain.as_str(), d.users[0].username.as_str(), d.users[0].name.as_str()), ("fabrikam.test", "carol@fabrikam.test", "Carol"));
        assert!(d.app("app-2").is_some_and(|a| a.secret.is_some()) && d.app(DEFAULT_CLIENT_ID).is_none());
        assert!(d.override_first(Some("common"), None, None).is_err() && d.override_first(None, None, Some("a b")).is_err());
    }
}
