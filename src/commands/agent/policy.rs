//! What an agent serves: its allow-lists of profiles and resources, and the request
//! fields a connecting program may not choose (how to sign in, another tenant). Checked
//! after the request is resolved against the agent's own profiles, before any token is
//! looked up.

use crate::authority::Target;
use crate::broker::{Resolved, TokenRequest};
use crate::error::{Error, Result};

/// The agent's rules, from its command line.
#[derive(Debug, Default)]
pub(crate) struct Policy {
    /// Profile names; empty: every profile.
    pub profiles: Vec<String>,
    /// Resources, normalized as the broker normalizes a request's; empty: every resource.
    pub resources: Vec<String>,
}

fn forbidden(message: String, hint: &str) -> Error {
    Error::Agent { code: "forbidden", message, hint: Some(hint.to_string()), exit: 3 }
}

impl Policy {
    /// Normalizes `--allow-resource` values (aliases, URIs, GUIDs) once, at start.
    pub(crate) fn new(profiles: &[String], resources: &[String]) -> Result<Policy> {
        let resources = resources
            .iter()
            .map(|r| Target::from_resource(r).and_then(|t| t.resource_for_v1()).map(|r| normalize(&r)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Policy { profiles: profiles.to_vec(), resources })
    }

    /// Refuses what a forwarded program may not ask for, before anything is resolved.
    pub(crate) fn check_request(&self, req: &TokenRequest) -> Result<()> {
        if req.flow.is_some() {
            return Err(forbidden("a request may not choose the flow; the agent's profile decides how to sign in".into(), "drop `flow` (or --flow) from the request"));
        }
        // A profile the client names is checked before it is looked up, so that no error
        // about it (not found, did you mean, what is available) shows the agent's others.
        if let Some(name) = &req.profile
            && !self.profiles.is_empty()
            && !self.profiles.contains(name)
        {
            return Err(self.not_served(Some(name)));
        }
        Ok(())
    }

    /// Refuses a resolved request the agent does not serve.
    pub(crate) fn check(&self, req: &TokenRequest, r: &Resolved) -> Result<()> {
        if !self.profiles.is_empty() && !self.profiles.contains(&r.profile.name) {
            // Named only when the client named it: the agent's other profiles stay unlisted.
            return Err(self.not_served(req.profile.as_ref().filter(|p| **p == r.profile.name)));
        }
        if r.profile.tenant_from_request {
            let asked = req.tenant.as_deref().unwrap_or_default();
            return Err(forbidden(
                format!("this agent serves profile '{}' at its own tenant only, not at '{asked}'", r.profile.name),
                "drop the tenant from the request, or give the agent a profile for that tenant",
            ));
        }
        if !self.resources.is_empty() {
            let wanted = r.target.resource_for_v1().map(|w| normalize(&w)).unwrap_or_default();
            if !self.resources.contains(&wanted) {
                return Err(forbidden(
                    format!("this agent does not serve tokens for {}", if wanted.is_empty() { r.target.scopes.join(" ") } else { wanted }),
                    "ask for a resource the agent allows, or start it with --allow-resource for this one",
                ));
            }
        }
        Ok(())
    }
}

impl Policy {
    fn not_served(&self, named: Option<&String>) -> Error {
        let hint = "ask for a profile the agent allows, or start it with --allow-profile for this one";
        match named {
            Some(name) => forbidden(format!("this agent does not serve profile '{name}'"), hint),
            None => forbidden("this agent does not serve the profile this request leads to".into(), hint),
        }
    }

    /// `e` as a client of an agent with `--allow-profile` may see it: a list of profiles
    /// keeps the allowed ones only, and an error naming another profile of the agent (a
    /// URL or a subscription several claim, a refusal about it) becomes a refusal that
    /// names none (the one the client named itself, `named`, may be named back).
    pub(crate) fn hide_other_profiles(&self, e: Error, named: Option<&str>) -> Error {
        if self.profiles.is_empty() {
            return e;
        }
        if let Error::ProfileNotFound { name, available, .. } = e {
            let available = available.into_iter().filter(|a| self.profiles.iter().any(|p| a.trim_end_matches(" (built-in)") == p)).collect();
            return Error::ProfileNotFound { name, available, note: None };
        }
        let text = format!("{e} {}", e.hint().unwrap_or_default());
        let names: Vec<String> = crate::config::config_path()
            .and_then(|p| crate::config::load_file(&p).ok())
            .map(|f| f.profiles.keys().cloned().collect())
            .unwrap_or_default();
        if names.iter().any(|n| !self.profiles.contains(n) && Some(n.as_str()) != named && text.contains(&format!("'{n}'"))) {
            return self.not_served(None);
        }
        e
    }
}

/// Resources compare without case and trailing slash (`https://x/` is `https://x`).
fn normalize(r: &str) -> String {
    r.trim().trim_end_matches('/').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_compare_as_the_broker_normalizes_them() {
        let p = Policy::new(&[], &["499b84ac-1321-427f-aa17-267ca6975798".into()]).unwrap();
        assert_eq!(p.resources, vec!["499b84ac-1321-427f-aa17-267ca6975798"]);
        assert_eq!(normalize("https://Management.azure.com/"), "https://management.azure.com");
        assert!(Policy::new(&[], &["not a resource\u{7}".into()]).is_err());
        let flow = TokenRequest { flow: Some("interactive".into()), ..TokenRequest::default() };
        assert_eq!(p.check_request(&flow).unwrap_err().exit_code(), 3);
        let only = Policy::new(&["ado".into()], &[]).unwrap();
        let other = TokenRequest { profile: Some("secret-prod".into()), ..TokenRequest::default() };
        assert_eq!(only.check_request(&other).unwrap_err().exit_code(), 3);
        let e = only.hide_other_profiles(Error::ProfileNotFound { name: "x".into(), available: vec!["ado".into(), "secret-prod".into()], note: None }, None);
        assert!(!e.to_string().contains("secret-prod") && e.to_string().contains("ado"), "{e}");
    }
}
