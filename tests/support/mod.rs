//! Test support shared by every integration test (`mod support;`): a faithful local
//! stand-in for Microsoft Entra ID, a throwaway TLS CA, and a sealed way to run the
//! `entra-token` binary, so no test ever talks to a real cloud or reads a real cache.
//!
//! - [`MockAuthority`]: discovery, token (v1 and v2), device code and authorize endpoints
//!   on 127.0.0.1, with injectable [`Fault`]s and a record of every request.
//! - [`TestCa`]: a CA whose server certificate the https mock presents.
//! - [`bin`], [`Sandbox`], [`run_with_stdin`]: the binary with a scrubbed environment.

#![allow(dead_code, unused_imports)]

pub mod authority;
pub mod env;
mod flows;
mod grants;
pub mod http;
mod issue;
pub mod output;
pub mod skip;
pub mod tls;
pub mod wire;

pub use authority::{Fault, MockAuthority, RecordedRequest};
pub use env::{Sandbox, bin, bin_at, copy_executable, install_executable, run, run_with_stdin, run_with_timeout};
pub use http::refused_url;
pub use output::{code, ok, ok_stdout, stderr, stdout, text};
pub use tls::TestCa;
pub use wire::{
    AKS_CLIENT, AZURE_CLI, AZURE_POWERSHELL, DEFAULT_USER, HOME_TENANT, jwt_claims, tenant_id,
    user_oid,
};

/// The most common fixture: a mock with `tenant` and a confidential `app` whose secret is
/// `secret`, and a sandbox whose profile `ci` signs that app in with the secret read from
/// `CI_SECRET` (the caller sets it on each command).
pub fn client_credentials_setup(tenant: &str, app: &str, secret: &str) -> (MockAuthority, Sandbox) {
    let mock = MockAuthority::start();
    mock.add_tenant(tenant);
    mock.add_app(app, Some(secret));
    let sb = Sandbox::new();
    sb.write_config(&format!(
        "[profiles.ci]\nauthority = \"{}\"\ntenant = \"{tenant}\"\nclient_id = \"{app}\"\nflow = \"client-credentials\"\nclient_secret_env = \"CI_SECRET\"\n",
        mock.url()
    ));
    (mock, sb)
}
