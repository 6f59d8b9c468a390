//! One module per grant. The broker calls `acquire` with everything a flow may need; a
//! flow returns a token answer or a specific error. `identity` names whose token a
//! request gets, so tokens of different identities never mix.

use crate::authority::Target;
use crate::cache::Cache;
use crate::clock::Deadline;
use crate::config::{FlowKind, Profile};
use crate::error::Result;
use crate::http::Http;
use crate::oauth::{Binding, TokenReply};

pub(crate) mod auto;
pub(crate) mod az_cache;
pub(crate) mod azure_cli;
pub(crate) mod azure_pipelines;
pub(crate) mod certificate;
pub(crate) mod client_credentials;
pub(crate) mod identity;
pub(crate) mod user;
pub(crate) mod managed_identity;
pub(crate) mod workload_identity;

/// Can a person answer a prompt right now?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prompt {
    /// Someone may be watching stderr (a terminal), and the profile allows prompts.
    Allowed,
    /// An explicit `login`: show the prompt on stderr even without a terminal.
    Forced,
    /// Nobody can answer: fail fast with the command to run.
    Never,
}

/// What a flow gets to work with.
pub(crate) struct FlowCtx<'a> {
    pub profile: &'a Profile,
    pub target: &'a Target,
    pub http: &'a Http,
    pub deadline: Deadline,
    /// A CAE / conditional-access claims challenge to pass to Entra.
    pub claims: Option<&'a str>,
    /// For flows that keep refresh tokens; None under `--no-cache`.
    pub cache: Option<&'a Cache>,
    pub prompt: Prompt,
    /// What the token is bound to (a bearer token, or an SSH certificate for a key): the
    /// token endpoint grants add its fields; sources that cannot bind refuse.
    pub binding: &'a Binding,
}

/// Gets a new token through the profile's flow.
pub(crate) fn acquire(ctx: &FlowCtx<'_>) -> Result<TokenReply> {
    if *ctx.binding != Binding::Bearer && ctx.profile.flow == FlowKind::ManagedIdentity {
        return Err(managed_identity_cannot_bind(ctx));
    }
    match ctx.profile.flow {
        FlowKind::ClientCredentials => client_credentials::acquire(ctx),
        FlowKind::DeviceCode | FlowKind::Interactive | FlowKind::AuthorizationCode | FlowKind::Password => user::acquire(ctx),
        FlowKind::WorkloadIdentity => workload_identity::acquire(ctx),
        FlowKind::ManagedIdentity => managed_identity::acquire(ctx),
        FlowKind::AzureCli => azure_cli::acquire(ctx),
        FlowKind::Auto => auto::acquire(ctx),
    }
}

/// A managed identity has no token endpoint grant to carry a key: IMDS and its kin hand
/// out bearer tokens only (az refuses SSH certificates for it too, azure-cli #21443).
pub(crate) fn managed_identity_cannot_bind(ctx: &FlowCtx<'_>) -> crate::error::Error {
    managed_identity_cannot_get(&ctx.profile.name, ctx.binding.a_kind())
}

/// The same refusal, said before anything is made for the request (a PoP key).
pub(crate) fn managed_identity_cannot_get(profile: &str, kind: &str) -> crate::error::Error {
    crate::error::Error::bad_input_hint(
        format!("profile '{profile}' uses a managed identity, which cannot get {kind}: Entra issues those only through its token endpoint, to people and service principals"),
        "use a profile that signs a person or a service principal in",
    )
}

/// Adds the claims challenge to a form when there is one.
pub(crate) fn with_claims<'a>(mut form: Vec<(&'a str, &'a str)>, claims: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    if let Some(c) = claims {
        form.push(("claims", c));
    }
    form
}

/// The `claims` a token request of `ctx` sends: the caller's challenge, merged with the
/// profile's `cp1` capability as MSAL does (`{"access_token":{"xms_cc":{"values":["CP1"]}}}`
/// added to the challenge's `access_token` object). None when there is neither. The
/// capability is the profile's alone: a challenge's own `xms_cc` is dropped for a profile
/// that declares none, or a caller could have a long-lived CAE token minted and cached as
/// that profile's plain one (the cache binding keeps the two apart by the profile's word).
pub(crate) fn sent_claims<'a>(ctx: &FlowCtx<'a>) -> Option<std::borrow::Cow<'a, str>> {
    if !ctx.profile.cae() {
        return ctx.claims.and_then(without_capabilities);
    }
    Some(std::borrow::Cow::Owned(merge_capabilities(ctx.claims)))
}

/// A challenge without any `xms_cc` in its `access_token` (any case); None when nothing else is left.
fn without_capabilities(challenge: &str) -> Option<std::borrow::Cow<'_, str>> {
    use serde_json::Value;
    let Ok(Value::Object(mut claims)) = serde_json::from_str::<Value>(challenge) else { return Some(std::borrow::Cow::Borrowed(challenge)) };
    let Some(at) = claims.get_mut("access_token").and_then(Value::as_object_mut).filter(|at| at.keys().any(|k| k.eq_ignore_ascii_case("xms_cc"))) else {
        return Some(std::borrow::Cow::Borrowed(challenge));
    };
    crate::log::trace!(1, "dropping xms_cc from the claims challenge: the profile declares no client capability");
    at.retain(|k, _| !k.eq_ignore_ascii_case("xms_cc"));
    if at.is_empty() {
        claims.remove("access_token");
    }
    (!claims.is_empty()).then(|| std::borrow::Cow::Owned(Value::Object(claims).to_string()))
}

/// A challenge (a JSON object, `parse_claims` checked it) with `xms_cc` CP1 in its `access_token`.
fn merge_capabilities(challenge: Option<&str>) -> String {
    use serde_json::{Map, Value, json};
    let mut claims: Map<String, Value> = challenge.and_then(|c| serde_json::from_str(c).ok()).unwrap_or_default();
    let at = claims.entry("access_token").or_insert_with(|| json!({}));
    if !at.is_object() {
        *at = json!({});
    }
    if let Some(at) = at.as_object_mut() {
        at.insert("xms_cc".into(), json!({ "values": [crate::config::CP1.to_ascii_uppercase()] }));
    }
    Value::Object(claims).to_string()
}

/// The most claims-challenge text we take: Entra's challenges are a few hundred bytes.
const MAX_CLAIMS: usize = 16 * 1024;

/// A claims challenge as a caller gives it — the JSON, or base64 of it as APIs send it in
/// `WWW-Authenticate` (standard or URL-safe, padded or not) — checked once, here: it must
/// be a JSON object. Returns the JSON as given (Entra takes it verbatim).
pub(crate) fn parse_claims(given: &str) -> Result<String> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let given = given.trim();
    if given.len() > MAX_CLAIMS {
        return Err(crate::error::Error::bad_input(format!("the claims challenge is longer than {MAX_CLAIMS} bytes")));
    }
    let is_object = |s: &str| matches!(serde_json::from_str::<serde_json::Value>(s), Ok(serde_json::Value::Object(_)));
    if is_object(given) {
        return Ok(given.to_string());
    }
    let decoded = STANDARD.decode(given).or_else(|_| URL_SAFE_NO_PAD.decode(given.trim_end_matches('='))).ok().and_then(|b| String::from_utf8(b).ok());
    match decoded {
        Some(json) if is_object(&json) => Ok(json),
        _ => Err(crate::error::Error::bad_input_hint("the claims challenge is neither a JSON object nor base64 of one", "pass the `claims` value from the WWW-Authenticate challenge as it came")),
    }
}

/// ` --claims <base64>`, for a `login` command that must carry the request's claims
/// challenge: base64 needs no quoting in any shell (sh, PowerShell, cmd), and shows the
/// terminal nothing but letters, digits and `+/=`.
pub(crate) fn claims_arg(claims: Option<&str>) -> String {
    use base64::Engine;
    claims.map(|c| format!(" --claims {}", base64::engine::general_purpose::STANDARD.encode(c))).unwrap_or_default()
}

#[cfg(test)]
mod claims_tests {
    use super::*;

    #[test]
    fn claims_are_json_objects_given_plain_or_in_base64() {
        use base64::Engine;
        let json = r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#;
        assert_eq!(parse_claims(json).unwrap(), json);
        let b64 = base64::engine::general_purpose::STANDARD.encode(json);
        assert_eq!(parse_claims(&b64).unwrap(), json);
        assert_eq!(parse_claims(b64.trim_end_matches('=')).unwrap(), json);
        assert_eq!(parse_claims(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)).unwrap(), json);
        for bad in ["", "[1]", "%%%", "\"null\"", &"a".repeat(MAX_CLAIMS + 1)] {
            assert!(parse_claims(bad).is_err(), "{bad}");
        }
        // e30 is base64 of {}: an object.
        assert_eq!(parse_claims("e30=").unwrap(), "{}");
        let arg = claims_arg(Some("{\"a\":\"it's $(x) `y`\"}"));
        assert!(arg.starts_with(" --claims ") && arg[10..].chars().all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c)), "{arg}");
        assert_eq!(claims_arg(None), "");
    }

    #[test]
    fn the_cp1_capability_is_merged_into_the_challenge_as_msal_does() {
        let cc = r#"{"access_token":{"xms_cc":{"values":["CP1"]}}}"#;
        assert_eq!(merge_capabilities(None), cc);
        assert_eq!(merge_capabilities(Some("{}")), cc);
        let merged: serde_json::Value = serde_json::from_str(&merge_capabilities(Some(r#"{"access_token":{"nbf":{"essential":true,"value":"1"}},"id_token":{"x":null}}"#))).unwrap();
        assert_eq!(merged, serde_json::json!({"access_token":{"nbf":{"essential":true,"value":"1"},"xms_cc":{"values":["CP1"]}},"id_token":{"x":null}}));
        // A challenge's own xms_cc is replaced (MSAL's `update`), never doubled.
        assert_eq!(merge_capabilities(Some(r#"{"access_token":{"xms_cc":{"values":["other"]}}}"#)), cc);
    }
}
