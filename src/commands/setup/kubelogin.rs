//! `entra-token setup kubectl --from-kubelogin`: kubeconfig users whose exec plugin is
//! `kubelogin get-token --login MODE --server-id S --client-id C --tenant-id T …` become
//! entra-token users with the same tenant, client and server id. Each distinct identity
//! becomes one profile (reused when the config already has an equivalent one), and the
//! user keeps its name, so contexts need no change. A client secret written into the
//! kubeconfig's args is not copied anywhere: the profile reads it from the environment.

use super::kubectl::{ExecUser, KubectlSetupArgs};
use crate::config::{self, ConfigFile, FlowKind, ProfileConfig};
use crate::error::{Error, Result};
use crate::log::warn;
use serde::Deserialize;
use std::process::ExitCode;

/// What a `kubelogin get-token` command line says, reduced to what we map.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct GetToken {
    pub login: Option<String>,
    pub server_id: Option<String>,
    pub client_id: Option<String>,
    pub tenant_id: Option<String>,
    pub environment: Option<String>,
    pub authority_host: Option<String>,
    pub client_certificate: Option<String>,
    pub username: Option<String>,
    pub identity_resource_id: Option<String>,
    pub federated_token_file: Option<String>,
    pub service_connection_id: Option<String>,
    /// `--pop-enabled` (Azure Arc): PoP tokens signed with `--pop-claims`, which carry over.
    pub pop_enabled: bool,
    pub pop_claims: Option<String>,
    /// `--client-secret` / `--password` were given in argv (plaintext in the kubeconfig).
    pub secret_in_args: bool,
    pub ignored: Vec<String>,
}

/// Parses kubelogin's argv after the command; None unless it is `get-token`.
pub(crate) fn parse(args: &[String]) -> Option<GetToken> {
    let mut it = args.iter();
    if it.next().map(String::as_str) != Some("get-token") {
        return None;
    }
    let mut g = GetToken::default();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with('-') => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let slot = match flag.as_str() {
            "--login" | "-l" => &mut g.login,
            "--server-id" => &mut g.server_id,
            "--client-id" => &mut g.client_id,
            "--tenant-id" | "-t" => &mut g.tenant_id,
            "--environment" | "-e" => &mut g.environment,
            "--authority-host" => &mut g.authority_host,
            "--client-certificate" => &mut g.client_certificate,
            "--username" => &mut g.username,
            "--identity-resource-id" => &mut g.identity_resource_id,
            "--federated-token-file" => &mut g.federated_token_file,
            "--azure-pipelines-service-connection-id" => &mut g.service_connection_id,
            "--pop-claims" => &mut g.pop_claims,
            "--pop-enabled" => {
                g.pop_enabled = inline.as_deref().is_none_or(|v| v.eq_ignore_ascii_case("true"));
                continue;
            }
            "--client-secret" | "--password" | "--client-certificate-password" => {
                g.secret_in_args = true;
                if inline.is_none() {
                    it.next();
                }
                continue;
            }
            other => {
                // Boolean switches (--legacy, …) and flags we do not map.
                g.ignored.push(other.to_string());
                continue;
            }
        };
        *slot = inline.or_else(|| it.next().cloned());
    }
    Some(g)
}

/// The profile a kubelogin identity maps to, or why it cannot be converted.
pub(crate) fn profile_for(g: &GetToken, env_names: &[String]) -> std::result::Result<ProfileConfig, String> {
    let login = g.login.as_deref().unwrap_or("devicecode").to_ascii_lowercase();
    let mut p = ProfileConfig { tenant: g.tenant_id.clone(), client_id: g.client_id.clone(), ..ProfileConfig::default() };
    let flow = match login.as_str() {
        "devicecode" => FlowKind::DeviceCode,
        "interactive" => FlowKind::Interactive,
        "spn" => {
            if let Some(cert) = &g.client_certificate {
                p.certificate_path = Some(cert.into());
                p.certificate_password_env = Some("AAD_SERVICE_PRINCIPAL_CLIENT_CERTIFICATE_PASSWORD".into());
            } else {
                let var = if env_names.iter().any(|n| n == "AZURE_CLIENT_SECRET") && !env_names.iter().any(|n| n == "AAD_SERVICE_PRINCIPAL_CLIENT_SECRET") { "AZURE_CLIENT_SECRET" } else { "AAD_SERVICE_PRINCIPAL_CLIENT_SECRET" };
                p.client_secret_env = Some(var.into());
            }
            FlowKind::ClientCredentials
        }
        "ropc" => {
            p.username = g.username.clone();
            p.password_env = Some("AAD_USER_PRINCIPAL_PASSWORD".into());
            FlowKind::Password
        }
        "msi" => {
            p.mi_client_id = p.client_id.take();
            p.mi_res_id = g.identity_resource_id.clone();
            p.tenant = None;
            FlowKind::ManagedIdentity
        }
        "azurecli" => FlowKind::AzureCli,
        "workloadidentity" => {
            p.federated_token_file = g.federated_token_file.as_ref().map(Into::into);
            FlowKind::WorkloadIdentity
        }
        "azurepipelines" => {
            // Like kubelogin, a missing id, client or tenant is read at run time from the
            // AZURESUBSCRIPTION_* variables AzureCLI@2 sets.
            p.service_connection_id = g.service_connection_id.clone();
            FlowKind::WorkloadIdentity
        }
        other => return Err(format!("kubelogin --login {other} has no entra-token equivalent")),
    };
    let from_env = login == "azurepipelines";
    if matches!(flow, FlowKind::ClientCredentials | FlowKind::WorkloadIdentity | FlowKind::Password) && p.client_id.is_none() && !from_env {
        return Err(format!("--login {login} without --client-id (kubelogin took it from the environment); add --client-id to the kubeconfig or write the profile by hand"));
    }
    if matches!(flow, FlowKind::ClientCredentials | FlowKind::WorkloadIdentity) && p.tenant.is_none() && !from_env {
        return Err(format!("--login {login} without --tenant-id; add --tenant-id to the kubeconfig or write the profile by hand"));
    }
    p.flow = Some(flow.name().to_string());
    match g.environment.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("azurepubliccloud") | Some("azurecloud") => {}
        Some("azurechinacloud") => p.cloud = Some("china".into()),
        Some("azureusgovernmentcloud") | Some("azureusgovernment") => p.cloud = Some("usgov".into()),
        Some(other) => return Err(format!("kubelogin --environment {other} is not a cloud entra-token knows")),
    }
    if let Some(a) = &g.authority_host {
        p.authority = Some(a.trim_end_matches('/').to_string());
        p.cloud = None;
    }
    Ok(p)
}

/// Two profiles that sign in as the same identity the same way.
fn same(a: &ProfileConfig, b: &ProfileConfig) -> bool {
    let flow = |p: &ProfileConfig| p.flow.as_deref().and_then(|f| FlowKind::parse(f).ok());
    let lower = |s: &Option<String>| s.as_ref().map(|v| v.to_ascii_lowercase());
    flow(a) == flow(b)
        && lower(&a.tenant) == lower(&b.tenant)
        && lower(&a.client_id) == lower(&b.client_id)
        && a.cloud == b.cloud
        && a.authority == b.authority
        && lower(&a.mi_client_id) == lower(&b.mi_client_id)
        && a.mi_res_id == b.mi_res_id
        && a.username == b.username
        && a.certificate_path == b.certificate_path
        && a.federated_token_file == b.federated_token_file
        && a.service_connection_id == b.service_connection_id
}

/// A profile as a `[profiles.NAME]` table (JSON strings are valid TOML basic strings).
pub(crate) fn profile_toml(name: &str, p: &ProfileConfig) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut t = format!("\n[profiles.{}]\n", q(name));
    let path = |p: &Option<std::path::PathBuf>| p.as_ref().map(|x| x.to_string_lossy().into_owned());
    for (k, v) in [
        ("flow", p.flow.clone()),
        ("tenant", p.tenant.clone()),
        ("client_id", p.client_id.clone()),
        ("cloud", p.cloud.clone()),
        ("authority", p.authority.clone()),
        ("client_secret_env", p.client_secret_env.clone()),
        ("certificate_path", path(&p.certificate_path)),
        ("certificate_password_env", p.certificate_password_env.clone()),
        ("username", p.username.clone()),
        ("password_env", p.password_env.clone()),
        ("mi_client_id", p.mi_client_id.clone()),
        ("mi_res_id", p.mi_res_id.clone()),
        ("federated_token_file", path(&p.federated_token_file)),
        ("service_connection_id", p.service_connection_id.clone()),
    ] {
        if let Some(v) = v {
            t.push_str(&format!("{k} = {}\n", q(&v)));
        }
    }
    t
}

/// Picks a profile name: an equivalent existing or planned profile, else a new `aks-…` name.
fn choose_name(file: &ConfigFile, planned: &[(String, ProfileConfig)], p: &ProfileConfig) -> (String, bool) {
    if let Some((n, _)) = file.profiles.iter().find(|(_, e)| same(e, p)) {
        return (n.clone(), false);
    }
    if let Some((n, _)) = planned.iter().find(|(_, e)| same(e, p)) {
        return (n.clone(), false);
    }
    let flow = p.flow.as_deref().unwrap_or("auto");
    let who = p.tenant.as_deref().or(p.mi_client_id.as_deref()).or(p.service_connection_id.as_deref()).unwrap_or("any");
    let base = format!("aks-{flow}-{}", who.chars().filter(|c| c.is_ascii_alphanumeric()).take(8).collect::<String>().to_ascii_lowercase());
    let taken = |n: &str| file.profiles.contains_key(n) || planned.iter().any(|(x, _)| x == n);
    let mut name = base.clone();
    let mut i = 2;
    while taken(&name) {
        name = format!("{base}-{i}");
        i += 1;
    }
    (name, true)
}

#[derive(Deserialize)]
struct View {
    #[serde(default)]
    users: Option<Vec<NamedUser>>,
}

#[derive(Deserialize)]
struct NamedUser {
    name: String,
    #[serde(default)]
    user: Option<UserBody>,
}

#[derive(Deserialize)]
struct UserBody {
    #[serde(default)]
    exec: Option<ExecBody>,
}

#[derive(Deserialize)]
struct ExecBody {
    command: String,
    #[serde(default)]
    args: Option<Vec<String>>,
    #[serde(default)]
    env: Option<Vec<EnvVar>>,
}

#[derive(Deserialize)]
struct EnvVar {
    name: String,
}

/// What a conversion does: the kubeconfig users to rewrite, and the profiles (name, keys) to add.
pub(crate) type Plan = (Vec<ExecUser>, Vec<(String, ProfileConfig)>);

/// The conversion plan for a `kubectl config view --raw -o json` document: the users to
/// rewrite and the profiles to add.
pub(crate) fn plan(view_json: &[u8], file: &ConfigFile) -> Result<Plan> {
    let view: View = serde_json::from_slice(view_json).map_err(|e| Error::caused("cannot read `kubectl config view` output", e))?;
    let mut users = Vec::new();
    let mut new_profiles: Vec<(String, ProfileConfig)> = Vec::new();
    for u in view.users.unwrap_or_default() {
        let Some(exec) = u.user.and_then(|b| b.exec) else { continue };
        let cmd = std::path::Path::new(&exec.command).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        if cmd != "kubelogin" {
            continue;
        }
        let Some(g) = parse(&exec.args.unwrap_or_default()) else {
            warn!("user '{}': kubelogin without get-token; left as is", u.name);
            continue;
        };
        let env_names: Vec<String> = exec.env.unwrap_or_default().into_iter().map(|e| e.name).collect();
        let profile = match profile_for(&g, &env_names) {
            Ok(p) => p,
            Err(why) => {
                warn!("user '{}': {why}; left as is", u.name);
                continue;
            }
        };
        if g.secret_in_args {
            warn!(
                "user '{}': the kubeconfig holds a secret in plain text in kubelogin's args; the new user does not, export {} instead",
                u.name,
                profile.client_secret_env.as_deref().or(profile.password_env.as_deref()).or(profile.certificate_password_env.as_deref()).unwrap_or("the secret")
            );
        }
        if !g.ignored.is_empty() {
            warn!("user '{}': ignoring kubelogin flags {}", u.name, g.ignored.join(" "));
        }
        let pop = match (g.pop_enabled, &g.pop_claims) {
            (false, _) => None,
            (true, Some(claims)) => Some(claims.clone()),
            (true, None) => {
                warn!("user '{}': kubelogin --pop-enabled without --pop-claims signs nothing; left as is", u.name);
                continue;
            }
        };
        let (name, new) = choose_name(file, &new_profiles, &profile);
        if new {
            new_profiles.push((name.clone(), profile));
        }
        let mut user = ExecUser::new(&u.name, Some(&name), g.server_id.as_deref());
        if let Some(claims) = pop {
            user.args.extend(["--pop-enabled".to_string(), "--pop-claims".to_string(), claims]);
        }
        users.push(user);
    }
    Ok((users, new_profiles))
}

pub(crate) fn run(args: &KubectlSetupArgs, exe: &str) -> Result<ExitCode> {
    let view = super::kubectl::kubectl(args.kubeconfig.as_ref(), &["config".into(), "view".into(), "--raw".into(), "-o".into(), "json".into()])?;
    let path = config::config_path().ok_or_else(|| Error::general("cannot find the entra-token config file location; set ENTRA_TOKEN_CONFIG"))?;
    let file = config::load_file(&path)?;
    let (users, profiles) = plan(&view, &file)?;
    if users.is_empty() {
        warn!("no kubeconfig user runs `kubelogin get-token`; nothing to convert");
        return Ok(ExitCode::SUCCESS);
    }
    let added: String = profiles.iter().map(|(n, p)| profile_toml(n, p)).collect();
    if !args.apply.apply {
        let mut preface = String::new();
        if !added.is_empty() {
            preface.push_str(&format!("# profiles to add to {}:", path.display()));
            for line in added.lines() {
                preface.push_str(&format!("\n# {line}"));
            }
            preface.push('\n');
        }
        return super::kubectl::write_users(args, exe, &users, &[], &preface);
    }
    if !added.is_empty() {
        let old = super::read_or_empty(&path)?;
        let new = format!("{}{added}", if old.is_empty() || old.ends_with('\n') { old.clone() } else { format!("{old}\n") });
        config::parse_file(&new).map_err(|m| Error::Config { path: path.clone(), message: format!("adding the converted profiles would break it ({m}); add them by hand"), source: None })?;
        super::write_with_backup(&path, new.as_bytes())?;
        for (n, _) in &profiles {
            warn!("added profile '{n}' to {}", path.display());
        }
    }
    super::kubectl::write_users(args, exe, &users, &[], "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_get_token_flags_both_spellings() {
        let g = parse(&s(&["get-token", "--login", "devicecode", "--server-id=6dae", "--client-id", "80fa", "--tenant-id", "t1", "--environment", "AzurePublicCloud", "--legacy"])).unwrap();
        assert_eq!(g.login.as_deref(), Some("devicecode"));
        assert_eq!(g.server_id.as_deref(), Some("6dae"));
        assert_eq!(g.client_id.as_deref(), Some("80fa"));
        assert_eq!(g.tenant_id.as_deref(), Some("t1"));
        assert_eq!(g.ignored, vec!["--legacy"]);
        assert!(parse(&s(&["convert-kubeconfig"])).is_none());
        let g = parse(&s(&["get-token", "-l", "spn", "--client-secret", "hunter2", "--client-id", "c"])).unwrap();
        assert!(g.secret_in_args);
        assert_eq!(g.client_id.as_deref(), Some("c"));
        let g = parse(&s(&["get-token", "--pop-enabled", "--pop-claims", "u=/subscriptions/s/x"])).unwrap();
        assert_eq!((g.pop_enabled, g.pop_claims.as_deref(), g.ignored.len()), (true, Some("u=/subscriptions/s/x"), 0));
        assert!(!parse(&s(&["get-token", "--pop-enabled=false"])).unwrap().pop_enabled);
    }

    #[test]
    fn maps_login_modes_to_profiles() {
        let g = |v: &[&str]| parse(&s(v)).unwrap();
        let p = profile_for(&g(&["get-token", "--login", "devicecode", "--client-id", "c", "--tenant-id", "t"]), &[]).unwrap();
        assert_eq!((p.flow.as_deref(), p.tenant.as_deref(), p.client_id.as_deref()), (Some("device-code"), Some("t"), Some("c")));
        let p = profile_for(&g(&["get-token", "--login", "spn", "--client-id", "c", "--tenant-id", "t"]), &s(&["AZURE_CLIENT_SECRET"])).unwrap();
        assert_eq!(p.client_secret_env.as_deref(), Some("AZURE_CLIENT_SECRET"));
        let p = profile_for(&g(&["get-token", "--login", "msi", "--client-id", "mi"]), &[]).unwrap();
        assert_eq!((p.flow.as_deref(), p.mi_client_id.as_deref(), p.client_id.as_deref()), (Some("managed-identity"), Some("mi"), None));
        let p = profile_for(&g(&["get-token", "-l", "interactive", "-e", "AzureChinaCloud", "--tenant-id", "t"]), &[]).unwrap();
        assert_eq!(p.cloud.as_deref(), Some("china"));
        let p = profile_for(&g(&["get-token", "--login", "azurepipelines", "--server-id", "s", "--client-id", "c", "--tenant-id", "t", "--azure-pipelines-service-connection-id", "sc-1"]), &[]).unwrap();
        assert_eq!((p.flow.as_deref(), p.service_connection_id.as_deref(), p.client_id.as_deref(), p.tenant.as_deref()), (Some("workload-identity"), Some("sc-1"), Some("c"), Some("t")));
        // kubelogin's documented pipeline form: everything but the server id from AZURESUBSCRIPTION_*.
        let p = profile_for(&g(&["get-token", "--login=azurepipelines", "--server-id", "s"]), &[]).unwrap();
        assert_eq!((p.flow.as_deref(), p.service_connection_id.as_deref(), p.client_id.as_deref(), p.tenant.as_deref()), (Some("workload-identity"), None, None, None));
        assert!(profile_for(&g(&["get-token", "--login", "azd"]), &[]).is_err());
        assert!(profile_for(&g(&["get-token", "--login", "spn", "--tenant-id", "t"]), &[]).is_err());
    }

    #[test]
    fn plans_one_profile_per_identity_and_reuses_existing_ones() {
        let view = br#"{"users":[
          {"name":"a","user":{"exec":{"command":"kubelogin","args":["get-token","--login","devicecode","--server-id","6dae42f8-4368-4678-94ff-3960e28e3630","--client-id","80faf920-1908-4b52-b5ef-a8e7bedfc67a","--tenant-id","t1"]}}},
          {"name":"b","user":{"exec":{"command":"/usr/local/bin/kubelogin","args":["get-token","--login","devicecode","--server-id","custom","--client-id","80faf920-1908-4b52-b5ef-a8e7bedfc67a","--tenant-id","t1"]}}},
          {"name":"c","user":{"exec":{"command":"kubelogin","args":["get-token","--login","spn","--server-id","s","--client-id","app","--tenant-id","t1"]}}},
          {"name":"d","user":{"exec":{"command":"gke-gcloud-auth-plugin"}}},
          {"name":"e","user":{"token":"x"}},
          {"name":"arc","user":{"exec":{"command":"kubelogin","args":["get-token","--login","spn","--server-id","s","--client-id","app","--tenant-id","t1","--pop-enabled","--pop-claims","u=/subscriptions/s/connectedClusters/c"]}}},
          {"name":"arc-half","user":{"exec":{"command":"kubelogin","args":["get-token","--login","spn","--client-id","app","--tenant-id","t1","--pop-enabled"]}}}
        ]}"#;
        let (users, profiles) = plan(view, &ConfigFile::default()).unwrap();
        assert_eq!(users.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(), vec!["a", "b", "c", "arc"]);
        assert_eq!(users[3].args, vec!["kubectl", "--profile", "aks-client-credentials-t1", "--resource", "s", "--pop-enabled", "--pop-claims", "u=/subscriptions/s/connectedClusters/c"]);
        assert_eq!(profiles.len(), 2);
        assert_eq!(users[0].args, vec!["kubectl", "--profile", "aks-device-code-t1"]);
        assert_eq!(users[1].args, vec!["kubectl", "--profile", "aks-device-code-t1", "--resource", "custom"]);
        assert_eq!(users[2].args, vec!["kubectl", "--profile", "aks-client-credentials-t1", "--resource", "s"]);
        let text: String = profiles.iter().map(|(n, p)| profile_toml(n, p)).collect();
        let parsed = config::parse_file(&text).unwrap();
        assert_eq!(parsed.profiles["aks-client-credentials-t1"].client_secret_env.as_deref(), Some("AAD_SERVICE_PRINCIPAL_CLIENT_SECRET"));
        let (users, profiles) = plan(view, &parsed).unwrap();
        assert!(profiles.is_empty(), "equivalent profiles are reused");
        assert_eq!(users[2].args[2], "aks-client-credentials-t1");
    }
}
