//! az's active cloud, read as az reads it, so that with nothing configured here a
//! developer signed in to a sovereign or custom cloud (`az cloud set`) is answered from
//! that cloud: the name from `AZURE_CLOUD_NAME` or `[cloud] name` in az's `config` (default
//! `AzureCloud`), its endpoints from `clouds.config` (`az cloud register`/`update`) over
//! the clouds az knows by name.

use std::path::{Path, PathBuf};

/// az's files are small; anything bigger is not one of them.
const MAX_FILE: u64 = 1024 * 1024;

/// az's name for the public cloud, its default.
pub(crate) const PUBLIC: &str = "AzureCloud";

/// The clouds az knows by name: its login endpoint and ARM's audience
/// (`active_directory`, `active_directory_resource_id` in azure-cli's cloud.py).
const KNOWN: &[(&str, &str, &str)] = &[
    (PUBLIC, crate::authority::PUBLIC_HOST, "https://management.core.windows.net/"),
    ("AzureChinaCloud", "https://login.chinacloudapi.cn", "https://management.core.chinacloudapi.cn/"),
    ("AzureUSGovernment", "https://login.microsoftonline.us", "https://management.core.usgovcloudapi.net/"),
    ("AzureGermanCloud", "https://login.microsoftonline.de", "https://management.core.cloudapi.de/"),
    ("AzureBleuCloud", "https://login.sovcloud-identity.fr", "https://management.sovcloud-api.fr/"),
];

/// The cloud az uses now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AzCloud {
    pub name: String,
    /// Where az signs in (`endpoint_active_directory`).
    pub login: String,
    /// ARM's audience, what `az account get-access-token` asks for by default.
    pub arm_resource: String,
}

/// `$AZURE_CONFIG_DIR`, else `~/.azure`.
pub(crate) fn config_dir() -> Option<PathBuf> {
    crate::env::path(crate::env::AZURE_CONFIG_DIR).or_else(|| dirs::home_dir().map(|h| h.join(".azure")))
}

/// az's file at `path` as text, when it is there and trusted (`fs::read_users_file`).
fn read_small(path: &Path) -> Option<String> {
    String::from_utf8(crate::fs::read_users_file(path, MAX_FILE)?).ok()
}

/// The name of az's active cloud: `AZURE_CLOUD_NAME` (az reads every setting from
/// `AZURE_<SECTION>_<OPTION>` first), else `[cloud] name` in its `config`, else `AzureCloud`.
pub(crate) fn active_name() -> String {
    crate::env::var(crate::env::AZURE_CLOUD_NAME)
        .or_else(|| config_dir().and_then(|d| read_small(&d.join("config"))).and_then(|t| ini_value(&t, "cloud", "name")))
        .unwrap_or_else(|| PUBLIC.to_string())
}

/// az's active cloud with its endpoints; None when az's files name a cloud that neither
/// az knows by name nor `clouds.config` describes (az would refuse it too).
pub(crate) fn active() -> Option<AzCloud> {
    let name = active_name();
    let known = KNOWN.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(&name));
    // The public cloud's endpoints are az's own; another's may be registered or updated.
    let registered = if known.is_some_and(|(n, _, _)| *n == PUBLIC) { None } else { config_dir().and_then(|d| read_small(&d.join("clouds.config"))) };
    let endpoint = |key: &str| registered.as_deref().and_then(|t| ini_value(t, &name, key));
    let login = endpoint("endpoint_active_directory").or_else(|| known.map(|k| k.1.to_string()))?;
    // az falls back to the resource manager's address when a cloud names no ARM audience.
    let arm_resource = endpoint("endpoint_active_directory_resource_id").or_else(|| known.map(|k| k.2.to_string())).or_else(|| endpoint("endpoint_resource_manager"))?;
    Some(AzCloud { name, login: login.trim_end_matches('/').to_string(), arm_resource })
}

/// One value of an INI file as Python's configparser reads az's: sections by exact name,
/// keys in any case, `=` or `:`, values trimmed; comment lines skipped.
pub(crate) fn ini_value(text: &str, section: &str, key: &str) -> Option<String> {
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
            continue;
        }
        if inside
            && let Some((k, v)) = line.split_once(['=', ':'])
            && k.trim().eq_ignore_ascii_case(key)
        {
            return Some(v.trim().to_string()).filter(|v| !v.is_empty());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_values_as_configparser_reads_them() {
        let t = "[core]\nfirst_run = yes\n[cloud]\n# comment\nName = EntraTest\n[EntraTest]\nendpoint_active_directory = https://login.example/\nprofile: latest\n";
        assert_eq!(ini_value(t, "cloud", "name").as_deref(), Some("EntraTest"));
        assert_eq!(ini_value(t, "EntraTest", "ENDPOINT_ACTIVE_DIRECTORY").as_deref(), Some("https://login.example/"));
        assert_eq!(ini_value(t, "EntraTest", "profile").as_deref(), Some("latest"));
        assert_eq!(ini_value(t, "entratest", "profile"), None, "section names are exact");
        assert_eq!(ini_value(t, "core", "name"), None);
        assert_eq!(ini_value("", "cloud", "name"), None);
    }
}
