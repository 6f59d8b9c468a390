//! Client credentials: an application signs in as itself, on the v2 endpoint
//! (`scope={resource}/.default`) or the v1 endpoint (`resource=`), proving who it is with a
//! client secret, a certificate-signed assertion (`certificate.rs`) or a federated token
//! (`workload_identity.rs`).

use super::{FlowCtx, with_claims};
use crate::authority::Endpoint;
use crate::error::{Error, Result};
use crate::oauth::{self, TokenReply};
use crate::secret::Secret;

/// How the application proves who it is.
pub(crate) enum ClientAuth {
    Secret(Secret<String>),
    /// A signed JWT (certificate) or a federated token (workload identity).
    Assertion(Secret<String>),
}

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

pub(crate) fn acquire(ctx: &FlowCtx<'_>) -> Result<TokenReply> {
    let p = ctx.profile;
    if p.settings.certificate_path.is_some() {
        if p.secret.is_some() {
            return Err(Error::bad_input_hint(
                format!("profile '{}' has both a client secret and certificate_path", p.name),
                "keep one of them",
            ));
        }
        return super::certificate::acquire(ctx);
    }
    check_tenant(ctx)?;
    let source = p.secret.as_ref().ok_or_else(|| {
        Error::bad_input_hint(
            format!("profile '{}' has no client secret or certificate", p.name),
            "set client_secret_env, client_secret_file or certificate_path in the profile",
        )
    })?;
    let secret = source.read()?;
    redeem(ctx, &p.client_id, ClientAuth::Secret(secret))
}

/// App tokens need a real tenant: Entra refuses client credentials on common/organizations.
pub(crate) fn check_tenant(ctx: &FlowCtx<'_>) -> Result<()> {
    let p = ctx.profile;
    if p.authority.is_multi_tenant() {
        return Err(Error::bad_input_hint(
            format!("profile '{}': client credentials need a real tenant, not '{}'", p.name, p.authority.tenant),
            match &p.origin {
                // A profile from the file takes its tenant from the file alone, never AZURE_TENANT_ID.
                crate::config::Origin::File(_) => format!("set its tenant: entra-token profile add {} --update --tenant YOUR-TENANT (id or domain)", p.name),
                _ => "set AZURE_TENANT_ID to your tenant id or domain".to_string(),
            },
        ));
    }
    Ok(())
}

/// Sends the client credentials grant for `client_id` with the given proof.
pub(crate) fn redeem(ctx: &FlowCtx<'_>, client_id: &str, auth: ClientAuth) -> Result<TokenReply> {
    let p = ctx.profile;
    let url = p.authority.token_url(p.endpoint);
    let scope;
    let resource;
    let mut form = vec![("grant_type", "client_credentials"), ("client_id", client_id)];
    match &auth {
        ClientAuth::Secret(s) => form.push(("client_secret", s.expose().as_str())),
        ClientAuth::Assertion(a) => {
            form.push(("client_assertion_type", JWT_BEARER));
            form.push(("client_assertion", a.expose().as_str()));
        }
    }
    match p.endpoint {
        Endpoint::V2 => {
            scope = ctx.target.scopes.join(" ");
            form.push(("scope", &scope));
        }
        Endpoint::V1 => {
            resource = ctx.target.resource_for_v1()?;
            form.push(("resource", &resource));
        }
    }
    let claims = crate::flows::sent_claims(ctx);
    let mut form = with_claims(form, claims.as_deref());
    ctx.binding.add_to(&mut form);
    oauth::redeem(ctx.http, &url, &form, ctx.deadline)
}
