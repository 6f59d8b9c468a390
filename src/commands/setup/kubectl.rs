//! `entra-token setup kubectl`: a kubeconfig user whose exec plugin is `entra-token
//! kubectl`, printed as YAML plus the `kubectl config` commands that create it; `--apply`
//! runs those commands (kubectl is the one tool that edits kubeconfigs correctly, merged
//! KUBECONFIG lists included) after backing up every kubeconfig file.
//! `--from-kubelogin` converts the users that run kubelogin (see `kubelogin.rs`).

use super::ApplyArg;
use crate::error::{Error, Result};
use crate::log::warn;
use clap::Args;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

pub(crate) const API_VERSION: &str = "client.authentication.k8s.io/v1";

#[derive(Debug, Args)]
pub(crate) struct KubectlSetupArgs {
    /// Profile the user signs in with (default: the default profile).
    #[arg(short, long)]
    pub profile: Option<String>,
    /// Resource (the cluster's server application id); default: the AKS server id.
    #[arg(short, long)]
    pub resource: Option<String>,
    /// Name of the kubeconfig user to create (default: entra-token, or entra-token-PROFILE).
    #[arg(long)]
    pub user: Option<String>,
    /// Also point this kubeconfig context at the user.
    #[arg(long)]
    pub context: Option<String>,
    /// Convert every user that runs `kubelogin get-token` into an entra-token user with the
    /// same tenant, client and server id (profiles are added to the entra-token config).
    #[arg(long, conflicts_with_all = ["profile", "resource", "user", "context"])]
    pub from_kubelogin: bool,
    /// Kubeconfig file to change (default: KUBECONFIG, else ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    #[command(flatten)]
    pub apply: ApplyArg,
}

/// One kubeconfig user with an entra-token exec block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecUser {
    pub name: String,
    /// Arguments after the command: `kubectl --profile P …`.
    pub args: Vec<String>,
}

impl ExecUser {
    pub(crate) fn new(name: &str, profile: Option<&str>, resource: Option<&str>) -> ExecUser {
        let mut args = vec!["kubectl".to_string()];
        if let Some(p) = profile {
            args.extend(["--profile".to_string(), p.to_string()]);
        }
        if let Some(r) = resource.filter(|r| *r != crate::protocols::kubectl::AKS_SERVER_ID) {
            args.extend(["--resource".to_string(), r.to_string()]);
        }
        ExecUser { name: name.to_string(), args }
    }

    /// The user as a kubeconfig `users:` entry (JSON strings are valid YAML scalars).
    pub(crate) fn yaml(&self, exe: &str) -> String {
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let mut y = format!("- name: {}\n  user:\n    exec:\n      apiVersion: {API_VERSION}\n      command: {}\n      args:\n", q(&self.name), q(exe));
        for a in &self.args {
            y.push_str(&format!("      - {}\n", q(a)));
        }
        y.push_str("      interactiveMode: IfAvailable\n      provideClusterInfo: false\n");
        y
    }

    /// `kubectl config set-credentials …` arguments (after `kubectl`).
    pub(crate) fn set_credentials(&self, exe: &str) -> Vec<String> {
        let mut a = vec![
            "config".to_string(),
            "set-credentials".to_string(),
            self.name.clone(),
            format!("--exec-command={exe}"),
            format!("--exec-api-version={API_VERSION}"),
            "--exec-interactive-mode=IfAvailable".to_string(),
        ];
        a.extend(self.args.iter().map(|x| format!("--exec-arg={x}")));
        a
    }
}

/// The kubeconfig files kubectl would read and write.
pub(crate) fn kubeconfig_files(flag: Option<&PathBuf>) -> Vec<PathBuf> {
    if let Some(f) = flag {
        return vec![f.clone()];
    }
    if let Some(list) = crate::env::os(crate::env::KUBECONFIG).filter(|v| !v.is_empty()) {
        return std::env::split_paths(&list).filter(|p| !p.as_os_str().is_empty()).collect();
    }
    dirs::home_dir().map(|h| vec![h.join(".kube").join("config")]).unwrap_or_default()
}

/// Runs `kubectl ARGS` (with `--kubeconfig` when given) and returns stdout.
pub(crate) fn kubectl(kubeconfig: Option<&PathBuf>, args: &[String]) -> Result<Vec<u8>> {
    let program: OsString = crate::env::os(crate::env::KUBECTL).filter(|v| !v.is_empty()).unwrap_or_else(|| "kubectl".into());
    let mut c = Command::new(&program);
    if let Some(k) = kubeconfig {
        c.arg("--kubeconfig").arg(k);
    }
    let out = c.args(args).output().map_err(|e| {
        Error::bad_input_hint(format!("cannot run {}", program.to_string_lossy()), "install kubectl, or run the printed commands yourself").because(e)
    })?;
    if !out.status.success() {
        return Err(Error::general(format!("kubectl {} failed: {}", args.first().map(String::as_str).unwrap_or(""), String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(out.stdout)
}

/// Prints the plan or carries it out: users to (re)write and contexts to repoint.
pub(crate) fn write_users(args: &KubectlSetupArgs, exe: &str, users: &[ExecUser], contexts: &[(String, String)], preface: &str) -> Result<ExitCode> {
    let kc = args.kubeconfig.as_ref();
    let kc_flag = kc.map(|k| format!(" --kubeconfig {}", super::shell_quote(&k.to_string_lossy()))).unwrap_or_default();
    if !args.apply.apply {
        let mut text = String::from(preface);
        text.push_str("# kubeconfig users (YAML):\nusers:\n");
        for u in users {
            text.push_str(&u.yaml(exe));
        }
        text.push_str("# or, the same with kubectl:\n");
        for u in users {
            let words: Vec<String> = u.set_credentials(exe).iter().map(|w| super::shell_quote(w)).collect();
            text.push_str(&format!("kubectl{kc_flag} {}\n", words.join(" ")));
        }
        for (ctx, user) in contexts {
            text.push_str(&format!("kubectl{kc_flag} config set-context {} --user={}\n", super::shell_quote(ctx), super::shell_quote(user)));
        }
        text.push_str("# run with --apply to do this (every kubeconfig file gets a 0600 backup first)\n");
        return super::print(&text);
    }
    let contexts = usable_contexts(kc, contexts)?;
    for f in kubeconfig_files(kc) {
        super::backup(&f)?;
    }
    for u in users {
        kubectl(kc, &u.set_credentials(exe))?;
        warn!("kubeconfig user '{}' now runs entra-token {}", u.name, u.args.join(" "));
    }
    for (ctx, user) in &contexts {
        kubectl(kc, &["config".into(), "set-context".into(), ctx.clone(), format!("--user={user}")])?;
        warn!("context '{ctx}' now uses '{user}'");
    }
    Ok(ExitCode::SUCCESS)
}

/// The contexts that can be pointed at the user: kubectl would create a missing one with
/// no cluster, which nothing can use, so a missing context is left alone with the next step
/// said instead, and a context without a cluster is pointed but said to need one.
fn usable_contexts(kc: Option<&PathBuf>, contexts: &[(String, String)]) -> Result<Vec<(String, String)>> {
    if contexts.is_empty() {
        return Ok(Vec::new());
    }
    let view = kubectl(kc, &["config".into(), "view".into(), "-o".into(), "json".into()])?;
    let view: serde_json::Value = serde_json::from_slice(&view).map_err(|e| Error::general(format!("kubectl config view printed no JSON: {e}")))?;
    let known = view["contexts"].as_array().cloned().unwrap_or_default();
    let mut usable = Vec::new();
    for (ctx, user) in contexts {
        let shown = crate::log::escape(ctx);
        match known.iter().find(|c| c["name"].as_str() == Some(ctx.as_str())) {
            None => warn!(
                "the kubeconfig has no context '{shown}', so none was made (it would have no cluster): get it first (e.g. `az aks get-credentials -g GROUP -n CLUSTER`), then run `kubectl config set-context {} --user={}`",
                super::shell_quote(ctx),
                super::shell_quote(user)
            ),
            Some(c) => {
                if c["context"]["cluster"].as_str().is_none_or(str::is_empty) {
                    warn!("context '{shown}' has no cluster, so kubectl cannot use it yet: kubectl config set-context {} --cluster=CLUSTER", super::shell_quote(ctx));
                }
                usable.push((ctx.clone(), user.clone()));
            }
        }
    }
    Ok(usable)
}

pub(crate) fn run(args: &KubectlSetupArgs) -> Result<ExitCode> {
    let exe = super::self_exe()?.to_string_lossy().into_owned();
    if args.from_kubelogin {
        return super::kubelogin::run(args, &exe);
    }
    if let Some(p) = &args.profile {
        crate::config::resolve(Some(p))?;
    }
    let name = args.user.clone().unwrap_or_else(|| match &args.profile {
        Some(p) => format!("entra-token-{p}"),
        None => "entra-token".to_string(),
    });
    let user = ExecUser::new(&name, args.profile.as_deref(), args.resource.as_deref());
    let contexts: Vec<(String, String)> = args.context.iter().map(|c| (c.clone(), name.clone())).collect();
    let preface = if contexts.is_empty() { format!("# point a context at it: kubectl config set-context CONTEXT --user={name}\n") } else { String::new() };
    write_users(args, &exe, &[user], &contexts, &preface)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_block_and_commands() {
        let u = ExecUser::new("entra-token-aks", Some("aks"), Some("api://c"));
        assert_eq!(u.args, vec!["kubectl", "--profile", "aks", "--resource", "api://c"]);
        let y = u.yaml("/bin/entra-token");
        assert!(y.starts_with("- name: \"entra-token-aks\"\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: \"/bin/entra-token\"\n"), "{y}");
        assert!(y.contains("      - \"--resource\"\n      - \"api://c\"\n      interactiveMode: IfAvailable\n"), "{y}");
        let c = u.set_credentials("/bin/entra-token");
        assert_eq!(&c[..4], &["config", "set-credentials", "entra-token-aks", "--exec-command=/bin/entra-token"]);
        assert!(c.contains(&"--exec-arg=--profile".to_string()));
        assert_eq!(ExecUser::new("u", None, Some(crate::protocols::kubectl::AKS_SERVER_ID)).args, vec!["kubectl"]);
    }
}
