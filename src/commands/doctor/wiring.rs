//! Whether each tool is wired to us, read from the tool's own configuration: git's
//! credential helpers, kubeconfig users' exec commands, cargo's credential providers,
//! `az`/`azd` on PATH, Docker's credHelpers. Read-only; a tool that is not wired is
//! information, a wiring that cannot work (helper missing, profile unknown, URL no
//! profile claims) is a failure with the fix.

use super::{Check, Status};
use crate::config::{self, ConfigFile};
use crate::env;
use crate::urlmatch;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the wiring checks resolve profiles against.
pub(crate) struct Ctx<'a> {
    pub file: Option<&'a ConfigFile>,
    pub config_path: Option<&'a Path>,
    pub self_exe: Option<PathBuf>,
}

impl Ctx<'_> {
    /// `Ok(profile)` when `name` resolves (built-in and env profiles included).
    fn profile_ok(&self, name: Option<&str>) -> Result<config::Profile, String> {
        let empty = ConfigFile::default();
        let file = self.file.unwrap_or(&empty);
        config::resolve_in(file, self.config_path, name).map_err(|e| e.to_string())
    }

    /// The profile whose `urls` claim `url`.
    fn profile_for(&self, url: &str) -> Option<String> {
        self.file.and_then(|f| urlmatch::profile_in(f, url))
    }
}

/// The first `name` on PATH.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = env::os(env::PATH)?;
    // Windows (as `cmd` does): the bare name, then each PATHEXT extension, per directory;
    // so `az` finds the Azure CLI's az.cmd or our az.exe, whichever comes first on PATH.
    let exts: Vec<String> = if cfg!(windows) && Path::new(name).extension().is_none() {
        let pathext = env::raw(env::PATHEXT).unwrap_or_else(|| ".COM;.EXE;.BAT;.CMD".into());
        std::iter::once(String::new()).chain(pathext.split(';').filter(|e| !e.is_empty()).map(str::to_ascii_lowercase)).collect()
    } else {
        vec![String::new()]
    };
    std::env::split_paths(&path).flat_map(|d| exts.iter().map(move |e| d.join(format!("{name}{e}")))).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

/// Whether `cmd` (an absolute path or a name on PATH) is this very binary.
fn is_us(ctx: &Ctx<'_>, cmd: &Path) -> bool {
    let found = if cmd.is_absolute() { Some(cmd.to_path_buf()) } else { cmd.to_str().and_then(which) };
    match (found.and_then(|p| std::fs::canonicalize(p).ok()), &ctx.self_exe) {
        (Some(a), Some(b)) if &a == b => true,
        // Windows links are hard links or copies (`setup links`): the same bytes are us.
        (Some(a), Some(b)) => cfg!(windows) && matches!((std::fs::read(&a), std::fs::read(b)), (Ok(x), Ok(y)) if x == y),
        _ => false,
    }
}

/// `-p NAME`, `--profile NAME` or `--profile=NAME` in an argument list.
pub(crate) fn profile_arg<S: AsRef<str>>(args: &[S]) -> Option<String> {
    let mut it = args.iter().map(AsRef::as_ref);
    while let Some(a) = it.next() {
        if a == "-p" || a == "--profile" {
            return it.next().map(str::to_string);
        }
        if let Some(v) = a.strip_prefix("--profile=") {
            return Some(v.to_string());
        }
    }
    None
}

/// Does this command line point at us (by name or path)?
fn mentions_us(words: &[String]) -> bool {
    words.first().is_some_and(|w| Path::new(w).file_name().and_then(|n| n.to_str()).is_some_and(|n| n.contains("entra-token")))
}

/// Whether the command's program exists (absolute path or on PATH).
fn runnable(program: &str) -> bool {
    let p = Path::new(program);
    if p.is_absolute() { is_executable(p) } else { which(program).is_some() }
}

fn check(name: &'static str, status: Status, message: String, fix: Option<String>) -> Check {
    Check { name, status, message, fix, details: Vec::new() }
}

/// Shared verdict for one wiring: the program must run and the profile must resolve.
fn verdict(ctx: &Ctx<'_>, name: &'static str, what: String, program: &str, profile: Option<String>, by_url: Option<&str>) -> Check {
    if !runnable(program) {
        return check(name, Status::Fail, format!("{what} runs {program}, which is not found"), Some("put entra-token on PATH, or run `entra-token setup links DIR --apply` with DIR on PATH".into()));
    }
    let profile = match (profile, by_url) {
        (Some(p), _) => Some(p),
        (None, Some(url)) => match ctx.profile_for(url) {
            Some(p) => Some(p),
            None => {
                return check(
                    name,
                    Status::Fail,
                    format!("{what}, but no profile's urls claim {url}: the helper will answer nothing"),
                    Some(format!("entra-token profile add NAME --url {url}  (or --update an existing profile)")),
                );
            }
        },
        (None, None) => None,
    };
    match ctx.profile_ok(profile.as_deref()) {
        Ok(p) => no_challenge_back(check(name, Status::Ok, format!("{what} → profile '{}'", p.name), None), &p),
        Err(e) => check(name, Status::Fail, format!("{what}, but {e}"), Some("entra-token profile list; entra-token profile add NAME".into())),
    }
}

/// A `cp1` profile (long-lived tokens, revoked through claims challenges) wired to a tool
/// that cannot bring a challenge back: a revoked token stays in use until it expires.
/// Every wiring `verdict` names is such a tool (git, kubectl, cargo, Docker), and so is `az`.
fn no_challenge_back(c: Check, p: &config::Profile) -> Check {
    if !p.cae() || c.status != Status::Ok {
        return c;
    }
    check(
        c.name,
        Status::Warn,
        format!("{}, which declares cp1: {} cannot bring a claims challenge back, so a revoked long-lived token stays in use until it expires (up to a day)", c.message, c.name),
        Some(format!("give {} a profile without client_capabilities (docs/cae.md)", c.name)),
    )
}

/// git: `credential.<url>.helper` values that run us.
pub(crate) fn git(ctx: &Ctx<'_>) -> Check {
    let Some(git) = which("git") else {
        return check("git", Status::Info, "git is not installed".into(), None);
    };
    let out = Command::new(git).args(["config", "--get-regexp", r"^credential\..*helper$"]).output();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    let mut found = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(' ') else { continue };
        let url = key.strip_prefix("credential.").and_then(|k| k.strip_suffix(".helper")).map(|u| u.trim_end_matches('.')).unwrap_or("");
        let value = value.trim();
        let (program, args): (String, Vec<String>) = if let Some(cmd) = value.strip_prefix('!') {
            let words: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
            if !mentions_us(&words) {
                continue;
            }
            (words[0].clone(), words[1..].to_vec())
        } else if Path::new(value.split_whitespace().next().unwrap_or("")).is_absolute() {
            let words: Vec<String> = value.split_whitespace().map(str::to_string).collect();
            if !mentions_us(&words) {
                continue;
            }
            (words[0].clone(), words[1..].to_vec())
        } else {
            let words: Vec<String> = value.split_whitespace().map(str::to_string).collect();
            match words.first() {
                Some(n) if n.contains("entra-token") => (format!("git-credential-{n}"), words[1..].to_vec()),
                _ => continue,
            }
        };
        found.push((url.to_string(), program, profile_arg(&args)));
    }
    let Some((url, program, profile)) = found.into_iter().next() else {
        return check("git", Status::Info, "git's credential helpers do not call entra-token".into(), Some("entra-token setup git --apply".into()));
    };
    let what = if url.is_empty() { "git credential.helper".to_string() } else { format!("git credential.{url}.helper") };
    let by_url = (!url.is_empty() && profile.is_none()).then_some(url.as_str());
    if url.is_empty() && profile.is_none() {
        // A helper for every host answers only URLs some profile claims.
        let claimed = ctx.file.map(|f| f.profiles.values().map(|p| p.urls.len()).sum::<usize>()).unwrap_or(0);
        if !runnable(&program) {
            return verdict(ctx, "git", what, &program, None, None);
        }
        return if claimed == 0 {
            check("git", Status::Fail, format!("{what} calls entra-token, but no profile has urls: it will answer nothing"), Some("entra-token profile add NAME --url https://dev.azure.com/ORG/".into()))
        } else {
            let c = check("git", Status::Ok, format!("{what} → the profile whose urls claim each remote ({claimed} url prefixes)"), None);
            // Any profile with urls may answer: warn for the first that declares cp1.
            match ctx.file.and_then(|f| f.profiles.keys().find(|n| f.profiles[*n].cae() && !f.profiles[*n].urls.is_empty())).and_then(|n| ctx.profile_ok(Some(n)).ok()) {
                Some(p) => no_challenge_back(Check { message: format!("{} (profile '{}' among them)", c.message, p.name), ..c }, &p),
                None => c,
            }
        };
    }
    verdict(ctx, "git", what, &program, profile, by_url)
}

/// kubectl: kubeconfig users whose exec command is us.
pub(crate) fn kubectl(ctx: &Ctx<'_>) -> Check {
    let users = kube_users();
    let ours: Vec<&(String, String, Vec<String>)> = users.iter().filter(|(_, cmd, _)| cmd.contains("entra-token")).collect();
    let Some((user, cmd, args)) = ours.first() else {
        return check("kubectl", Status::Info, "no kubeconfig user runs entra-token".into(), Some("entra-token setup kubectl -p PROFILE --apply".into()));
    };
    let mut c = verdict(ctx, "kubectl", format!("kubeconfig user '{user}'"), cmd, profile_arg(args), None);
    if ours.len() > 1 {
        c.details.push(format!("{} kubeconfig users run entra-token", ours.len()));
    }
    c
}

/// (user, exec command, exec args) from `kubectl config view`, or a scan of the files.
fn kube_users() -> Vec<(String, String, Vec<String>)> {
    if let Some(kubectl) = which("kubectl")
        && let Ok(o) = Command::new(kubectl).args(["config", "view", "-o", "json"]).output()
        && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&o.stdout)
    {
        return v["users"]
            .as_array()
            .map(|us| {
                us.iter()
                    .filter_map(|u| {
                        let exec = &u["user"]["exec"];
                        let cmd = exec["command"].as_str()?;
                        let args = exec["args"].as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()).unwrap_or_default();
                        Some((u["name"].as_str().unwrap_or("?").to_string(), cmd.to_string(), args))
                    })
                    .collect()
            })
            .unwrap_or_default();
    }
    // No kubectl: a line scan of the kubeconfig files is enough to say "wired or not".
    let files: Vec<PathBuf> = match env::os(env::KUBECONFIG).filter(|v| !v.is_empty()) {
        Some(v) => std::env::split_paths(&v).collect(),
        None => dirs::home_dir().map(|h| vec![h.join(".kube").join("config")]).unwrap_or_default(),
    };
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for line in text.lines() {
            if let Some(cmd) = line.trim().strip_prefix("command:").map(|c| c.trim().trim_matches('"').trim_matches('\''))
                && cmd.contains("entra-token")
            {
                out.push(("?".to_string(), cmd.to_string(), Vec::new()));
            }
        }
    }
    out
}

/// cargo: credential providers (global or per registry) that run us.
pub(crate) fn cargo(ctx: &Ctx<'_>) -> Check {
    let home = env::path(env::CARGO_HOME).or_else(|| dirs::home_dir().map(|h| h.join(".cargo")));
    let Some(home) = home else {
        return check("cargo", Status::Info, "no cargo home".into(), None);
    };
    let path = [home.join("config.toml"), home.join("config")].into_iter().find(|p| p.is_file());
    let Some(path) = path else {
        return check("cargo", Status::Info, format!("no {}; cargo does not call entra-token", home.join("config.toml").display()), Some("entra-token setup cargo --registry NAME=INDEX_URL --apply".into()));
    };
    let table: toml::Table = match std::fs::read_to_string(&path).ok().and_then(|t| t.parse().ok()) {
        Some(t) => t,
        None => return check("cargo", Status::Fail, format!("{} does not parse as TOML", path.display()), Some(format!("fix {}", path.display()))),
    };
    let words = |v: &toml::Value| -> Vec<String> {
        match v {
            toml::Value::String(s) => s.split_whitespace().map(str::to_string).collect(),
            toml::Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        }
    };
    // A provider may be an alias defined under [credential-alias].
    let expand = |v: &toml::Value| -> Vec<String> {
        let w = words(v);
        match (w.as_slice(), table.get("credential-alias")) {
            ([one], Some(aliases)) => aliases.get(one).map(words).unwrap_or(w),
            _ => w,
        }
    };
    let registries = table.get("registries").and_then(|r| r.as_table());
    for (name, reg) in registries.into_iter().flatten() {
        if let Some(w) = reg.get("credential-provider").map(expand).filter(|w| mentions_us(w)) {
            let index = reg.get("index").and_then(|i| i.as_str()).unwrap_or("").trim_start_matches("sparse+").to_string();
            let profile = profile_arg(&w[1..]);
            let by_url = (profile.is_none() && !index.is_empty()).then_some(index.as_str());
            return verdict(ctx, "cargo", format!("cargo registry '{name}'"), &w[0], profile, by_url);
        }
    }
    let global = table.get("registry").and_then(|r| r.get("global-credential-providers")).and_then(|g| g.as_array());
    for v in global.into_iter().flatten() {
        let w = expand(v);
        if mentions_us(&w) {
            let profile = profile_arg(&w[1..]);
            return verdict(ctx, "cargo", "cargo global credential provider".into(), &w[0], profile, None);
        }
    }
    check("cargo", Status::Info, format!("{} names no entra-token credential provider", path.display()), Some("entra-token setup cargo --registry NAME=INDEX_URL --apply".into()))
}

/// `az` / `azd` on PATH: ours (a multi-call link) or the real CLI.
pub(crate) fn on_path(ctx: &Ctx<'_>, tool: &'static str) -> Check {
    match which(tool) {
        None => check(tool, Status::Info, format!("no {tool} on PATH"), Some(format!("`entra-token setup {tool} --apply` answers Azure SDKs"))),
        Some(p) if is_us(ctx, &p) => {
            let profile = env::raw(env::PROFILE).filter(|v| !v.is_empty());
            match ctx.profile_ok(profile.as_deref()) {
                Ok(profile) => {
                    let c = check(tool, Status::Ok, format!("{tool} on PATH is entra-token ({}) → profile '{}'", p.display(), profile.name), None);
                    // azd passes a claims challenge (`--claims`); `az account get-access-token` has none.
                    if tool == "az" { no_challenge_back(c, &profile) } else { c }
                }
                Err(e) => check(tool, Status::Fail, format!("{tool} on PATH is entra-token, but {e}"), Some("entra-token profile add NAME; entra-token profile default NAME".into())),
            }
        }
        Some(p) => check(tool, Status::Info, format!("{tool} on PATH is {} (not entra-token)", p.display()), Some(format!("`entra-token setup {tool} --apply`, with its --dir before {} on PATH", "the real CLI"))),
    }
}

/// Docker: `credHelpers` entries (and `credsStore`) naming our helper.
pub(crate) fn docker(ctx: &Ctx<'_>) -> Check {
    let dir = env::path(env::DOCKER_CONFIG).or_else(|| dirs::home_dir().map(|h| h.join(".docker")));
    let Some(path) = dir.map(|d| d.join("config.json")).filter(|p| p.is_file()) else {
        return check("docker", Status::Info, "no Docker config.json; Docker does not call entra-token".into(), Some("entra-token setup docker --apply".into()));
    };
    let v: serde_json::Value = match std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok()) {
        Some(v) => v,
        None => return check("docker", Status::Fail, format!("{} is not valid JSON", path.display()), Some(format!("fix {}", path.display()))),
    };
    let ours = |h: &serde_json::Value| h.as_str().is_some_and(|s| s.contains("entra-token"));
    let helpers: Vec<(String, String)> = v["credHelpers"]
        .as_object()
        .map(|m| m.iter().filter(|(_, h)| ours(h)).map(|(r, h)| (r.clone(), h.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default();
    if let Some((registry, helper)) = helpers.first() {
        let mut c = verdict(ctx, "docker", format!("docker credHelpers[{registry}]"), &format!("docker-credential-{helper}"), None, Some(registry));
        if helpers.len() > 1 {
            c.details.push(format!("{} entra-token", crate::log::count(helpers.len(), "registry uses", "registries use")));
        }
        return c;
    }
    if ours(&v["credsStore"]) {
        let helper = format!("docker-credential-{}", v["credsStore"].as_str().unwrap_or_default());
        if !runnable(&helper) {
            return verdict(ctx, "docker", "docker credsStore".into(), &helper, None, None);
        }
        return check("docker", Status::Ok, "docker credsStore is entra-token → the profile whose urls claim each registry".into(), None);
    }
    check("docker", Status::Info, format!("{} names no entra-token credential helper", path.display()), Some("entra-token setup docker --apply".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_profile_flag() {
        assert_eq!(profile_arg(&["kubectl", "-p", "aks"]).as_deref(), Some("aks"));
        assert_eq!(profile_arg(&["--profile=ci"]).as_deref(), Some("ci"));
        assert_eq!(profile_arg(&["--profile", "x", "-p", "y"]).as_deref(), Some("x"));
        assert_eq!(profile_arg(&["get-token", "-r", "p"]), None);
    }
}
