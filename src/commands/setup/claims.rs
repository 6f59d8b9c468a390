//! Which of the profiles' `urls` each tool's `setup` takes. One config holds URLs for
//! several tools (a git remote, a cargo feed, a Docker registry), and each setup must wire
//! only its own: a registry written as Docker names it (`contoso.azurecr.io`) is no git
//! URL, and Azure DevOps' hosts are no Docker registry. One place decides, so git, Docker,
//! Bazel and cargo agree, and so do their warnings.

use crate::config::ConfigFile;
use crate::error::Result;
use crate::urlmatch::{self, UrlParts};

/// The tool a `setup` wires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tool {
    Git,
    Cargo,
    Bazel,
    Docker,
    /// A package manager asking for a feed (NuGet, npm, Maven).
    Feed,
}

/// One `urls` entry of one profile.
#[derive(Debug, Clone)]
pub(crate) struct Claim {
    pub profile: String,
    /// As written in the config.
    pub url: String,
    pub parts: UrlParts,
    /// An Azure Container Registry (by host, or the profile's `acr = true`): ACR's exchange
    /// of the profile's token (default ARM) answers there.
    pub acr: bool,
    /// The profile names `resource` or `scopes`.
    pub names_resource: bool,
}

impl Claim {
    /// A container registry: an ACR, or an entry written as Docker names registries
    /// (`host[:port]`, no scheme, no path) on a host that is not Azure DevOps'.
    pub(crate) fn is_registry(&self) -> bool {
        let bare = !self.url.contains("://") && self.parts.segments.is_empty();
        self.acr || (bare && !azure_devops(&self.parts.host))
    }

    /// Is this entry one `tool` calls us for?
    pub(crate) fn meant_for(&self, tool: Tool) -> bool {
        let host = self.parts.host.as_str();
        match tool {
            Tool::Docker => self.is_registry(),
            // Azure Artifacts' feeds are no git remotes.
            Tool::Git => !self.is_registry() && !artifacts(host),
            Tool::Cargo | Tool::Feed => !self.is_registry(),
            // Bazel fetches from caches and download servers, not Azure DevOps' git or feeds.
            Tool::Bazel => !self.is_registry() && !azure_devops(host),
        }
    }

    /// Would a tool's request here get no token (no `resource`, and no default for the host)?
    pub(crate) fn gets_no_token(&self) -> bool {
        !self.names_resource && !self.acr && crate::protocols::default_resource_for(&self.parts).is_none()
    }

    /// The entry as an https URL (git's config keys need the scheme).
    pub(crate) fn https_url(&self) -> String {
        if self.url.contains("://") { self.url.clone() } else { format!("https://{}", self.url) }
    }
}

/// Azure DevOps' hosts: dev.azure.com and its subdomains (pkgs., vssps., …), *.visualstudio.com.
fn azure_devops(host: &str) -> bool {
    host == "dev.azure.com" || host.ends_with(".dev.azure.com") || (host.ends_with(".visualstudio.com") && host.len() > ".visualstudio.com".len())
}

/// Azure Artifacts' feed hosts.
fn artifacts(host: &str) -> bool {
    host == "pkgs.dev.azure.com" || host.ends_with(".pkgs.visualstudio.com")
}

/// Every claim in `file`, in profile order; an entry entra-token can never match is
/// skipped with a warning naming its profile.
pub(crate) fn all_in(file: &ConfigFile) -> Vec<Claim> {
    let mut out = Vec::new();
    for (name, p) in &file.profiles {
        let names_resource = p.resource.is_some() || p.scopes.as_ref().is_some_and(|s| !s.is_empty());
        for url in &p.urls {
            let Some(parts) = urlmatch::parse(url) else {
                crate::log::warn!("profile '{name}' claims '{url}', which entra-token never matches (an https URL or host[:port] is needed); skipped");
                continue;
            };
            let acr = p.acr == Some(true) || crate::acr::is_acr_host(&parts.host);
            out.push(Claim { profile: name.clone(), url: url.clone(), parts, acr, names_resource });
        }
    }
    out
}

/// Every claim of the user's config.
pub(crate) fn all() -> Result<Vec<Claim>> {
    let file = match crate::config::config_path() {
        Some(p) => crate::config::load_file(&p)?,
        None => ConfigFile::default(),
    };
    Ok(all_in(&file))
}

/// The claims of the user's config meant for `tool`.
pub(crate) fn for_tool(tool: Tool) -> Result<Vec<Claim>> {
    Ok(all()?.into_iter().filter(|c| c.meant_for(tool)).collect())
}

/// Warns, once per entry, where a claim meant for this tool would get no token: the front
/// ends never send a token for another API to a server merely listed. Said at setup time,
/// so the first `git fetch` is not where it is learnt.
pub(crate) fn warn_without_resource(claims: &[Claim]) {
    for c in claims.iter().filter(|c| c.gets_no_token()) {
        crate::log::warn!(
            "profile '{}' claims {} but names no `resource`, so no token will be sent there; add resource = \"…\" (the API that server accepts tokens for) to the profile",
            c.profile,
            c.url
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(toml: &str) -> Vec<Claim> {
        all_in(&crate::config::parse_file(toml).unwrap())
    }

    fn urls(cs: &[Claim], tool: Tool) -> Vec<String> {
        cs.iter().filter(|c| c.meant_for(tool)).map(|c| c.url.clone()).collect()
    }

    #[test]
    fn each_tool_takes_only_its_own_urls() {
        let cs = claims(
            "[profiles.acr]\nflow=\"device-code\"\nurls=[\"contoso.azurecr.io\"]\n\
             [profiles.ado]\nflow=\"device-code\"\nurls=[\"https://dev.azure.com/contoso/\", \"https://pkgs.dev.azure.com/contoso/\"]\n\
             [profiles.own]\nflow=\"device-code\"\nresource=\"api://x\"\nurls=[\"registry.contoso.test:5000\", \"https://cache.contoso.test/bazel/\"]\n\
             [profiles.marked]\nflow=\"device-code\"\nacr=true\nurls=[\"https://acr.contoso.test\"]\n",
        );
        assert_eq!(urls(&cs, Tool::Docker), ["contoso.azurecr.io", "https://acr.contoso.test", "registry.contoso.test:5000"]);
        assert_eq!(urls(&cs, Tool::Git), ["https://dev.azure.com/contoso/", "https://cache.contoso.test/bazel/"]);
        assert_eq!(urls(&cs, Tool::Cargo), ["https://dev.azure.com/contoso/", "https://pkgs.dev.azure.com/contoso/", "https://cache.contoso.test/bazel/"]);
        assert_eq!(urls(&cs, Tool::Bazel), ["https://cache.contoso.test/bazel/"]);
        // ACR gets the ARM token by default, Azure DevOps its own: no warning for either.
        let silent: Vec<&str> = cs.iter().filter(|c| !c.gets_no_token()).map(|c| c.url.as_str()).collect();
        assert_eq!(silent.len(), cs.len(), "{silent:?}");
        assert!(claims("[profiles.p]\nflow=\"device-code\"\nurls=[\"https://git.example.test/\"]\n")[0].gets_no_token());
        assert_eq!(claims("[profiles.p]\nflow=\"device-code\"\nurls=[\"dev.azure.com/contoso\"]\n")[0].https_url(), "https://dev.azure.com/contoso");
    }
}
