//! The client-credentials profile most suites configure, built in one place instead of
//! each suite spelling the same TOML table by hand.

/// A `[profiles.NAME]` table signing `client_id` in at `tenant` on `authority` with the
/// client-credentials flow, its secret read from the environment (`CI_SECRET` unless
/// [`secret_env`](Self::secret_env) says otherwise); [`with`](Self::with) adds lines.
pub struct CcProfile {
    name: String,
    authority: String,
    tenant: String,
    client_id: String,
    secret_env: String,
    extra: String,
}

impl CcProfile {
    pub fn new(name: &str, authority: &str, tenant: &str, client_id: &str) -> CcProfile {
        CcProfile {
            name: name.into(),
            authority: authority.into(),
            tenant: tenant.into(),
            client_id: client_id.into(),
            secret_env: "CI_SECRET".into(),
            extra: String::new(),
        }
    }

    /// The environment variable the secret is read from.
    pub fn secret_env(mut self, var: &str) -> CcProfile {
        self.secret_env = var.into();
        self
    }

    /// More `key = value` lines for the table (each ending in a newline), or whole tables after it.
    pub fn with(mut self, lines: &str) -> CcProfile {
        self.extra.push_str(lines);
        self
    }

    /// The TOML text, ending in a newline unless the extra lines did not.
    pub fn toml(&self) -> String {
        let CcProfile { name, authority, tenant, client_id, secret_env, extra } = self;
        format!(
            "[profiles.{name}]\ntenant = \"{tenant}\"\nclient_id = \"{client_id}\"\nflow = \"client-credentials\"\nclient_secret_env = \"{secret_env}\"\nauthority = \"{authority}\"\n{extra}"
        )
    }
}
