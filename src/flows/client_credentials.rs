//! Client credentials with a client secret: an application signs in as itself, on the v2
//! endpoint (`scope={resource}/.default`) or the v1 endpoint (`resource=`).

use super::{FlowCtx, with_claims};
use crate::authority::Endpoint;
use crate::error::{Error, Result};
use crate::oauth::{self, TokenReply};

pub(crate) fn acquire(ctx: &FlowCtx<'_>) -> Result<TokenReply> {
    let p = ctx.profile;
    if p.authority.is_multi_tenant() {
        return Err(Error::bad_input_hint(
            format!("profile '{}': client credentials need a real tenant, not '{}'", p.name, p.authority.tenant),
            "set `tenant` (or AZURE_TENANT_ID) to your tenant id or domain",
        ));
    }
    let source = p.secret.as_ref().ok_or_else(|| {
        Error::bad_input_hint(format!("profile '{}' has no client secret", p.name), "set client_secret_env or client_secret_file in the profile")
    })?;
    let secret = source.read()?;
    let url = p.authority.token_url(p.endpoint);
    let scope;
    let resource;
    let mut form = vec![("grant_type", "client_credentials"), ("client_id", p.client_id.as_str()), ("client_secret", secret.expose().as_str())];
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
    let form = with_claims(form, ctx.claims);
    oauth::redeem(ctx.http, &url, &form, ctx.deadline)
}
