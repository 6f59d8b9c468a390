//! Stamps `entra-token --version` with the commit and target it was built from, so a bug
//! report names the exact build. The commit comes from `ENTRA_TOKEN_COMMIT` (release
//! scripts), else git, else the `.cargo_vcs_info.json` that `cargo package` writes into a
//! published crate, else "unknown". Nothing here affects what the binary does.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=ENTRA_TOKEN_COMMIT");
    let commit = std::env::var("ENTRA_TOKEN_COMMIT").ok().filter(|c| !c.trim().is_empty()).or_else(git_commit).or_else(vcs_info_commit);
    let commit = commit.map(|c| c.trim().chars().take(12).collect::<String>()).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=ENTRA_TOKEN_COMMIT={commit}");
    println!("cargo:rustc-env=ENTRA_TOKEN_TARGET={}", std::env::var("TARGET").unwrap_or_default());
}

/// `git rev-parse HEAD`, re-run when HEAD or the branch it names moves (worktrees included).
fn git_commit() -> Option<String> {
    let out = |args: &[&str]| -> Option<String> {
        let o = Command::new("git").args(args).output().ok().filter(|o| o.status.success())?;
        Some(String::from_utf8(o.stdout).ok()?.trim().to_string())
    };
    let git_dir = out(&["rev-parse", "--git-dir"])?;
    let head = Path::new(&git_dir).join("HEAD");
    println!("cargo:rerun-if-changed={}", head.display());
    if let Some(refname) = out(&["symbolic-ref", "-q", "HEAD"]) {
        let common = out(&["rev-parse", "--git-common-dir"]).unwrap_or(git_dir);
        let loose = Path::new(&common).join(&refname);
        if loose.exists() {
            println!("cargo:rerun-if-changed={}", loose.display());
        }
        println!("cargo:rerun-if-changed={}", Path::new(&common).join("packed-refs").display());
    }
    out(&["rev-parse", "HEAD"])
}

/// The commit `cargo package` recorded, for builds from a published crate.
fn vcs_info_commit() -> Option<String> {
    let text = std::fs::read_to_string(".cargo_vcs_info.json").ok()?;
    let info: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(info.get("git")?.get("sha1")?.as_str()?.to_string())
}
