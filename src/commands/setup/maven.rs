//! `entra-token setup maven`: Maven reads a feed's credentials from a `<server>` of
//! settings.xml and expands `${env.VAR}` there, so the server's password is
//! `${env.ENTRA_ACCESS_TOKEN}` and `entra-token exec` fills the variable for the build:
//! no token is written into a file Maven keeps. settings.xml is only ever added to (a new
//! file, or one `<server>` inserted), never rewritten, and an id already there is left alone.

use super::ApplyArg;
use crate::error::{Error, Result};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub(crate) struct MavenSetupArgs {
    /// The repository id the pom (or settings profile) gives the feed; the `<server>` carries the same id.
    #[arg(long)]
    pub id: String,
    /// The feed's Maven URL, e.g. https://pkgs.dev.azure.com/ORG/_packaging/FEED/maven/v1; a profile's `urls` must claim it.
    #[arg(long)]
    pub url: String,
    /// The variable `entra-token exec` fills and settings.xml names (default ENTRA_ACCESS_TOKEN).
    #[arg(long, default_value = crate::commands::exec::DEFAULT_VARIABLE)]
    pub env: String,
    /// The settings file to change (default ~/.m2/settings.xml).
    #[arg(long)]
    pub settings: Option<PathBuf>,
    #[command(flatten)]
    pub apply: ApplyArg,
}

/// The `<server>` for the feed: Basic with any username and the token as password, which
/// Azure Artifacts accepts where its docs show a PAT.
pub(crate) fn server_block(id: &str, var: &str) -> String {
    format!("    <server>\n      <id>{id}</id>\n      <username>entra-token</username>\n      <password>${{env.{var}}}</password>\n    </server>\n")
}

/// settings.xml with the server added; None when a server of that id is already there.
pub(crate) fn insert(existing: &str, id: &str, var: &str) -> Result<Option<String>> {
    let block = server_block(id, var);
    if existing.trim().is_empty() {
        return Ok(Some(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<settings xmlns=\"http://maven.apache.org/SETTINGS/1.0.0\">\n  <servers>\n{block}  </servers>\n</settings>\n"
        )));
    }
    if existing.contains(&format!("<id>{id}</id>")) {
        return Ok(None);
    }
    let at = |tag: &str| existing.find(tag);
    let (pos, text) = match (at("</servers>"), at("</settings>")) {
        (Some(p), _) => (p, block),
        (None, Some(p)) => (p, format!("  <servers>\n{block}  </servers>\n")),
        (None, None) => return Err(Error::bad_input_hint("settings.xml has no </settings> to add a <server> before", "add the <server> printed by `entra-token setup maven` by hand")),
    };
    // Insert at the start of the closing tag's line, so the indentation stays as it was.
    let line_start = existing[..pos].rfind('\n').map_or(0, |i| i + 1);
    let line_start = if existing[line_start..pos].trim().is_empty() { line_start } else { pos };
    Ok(Some(format!("{}{text}{}", &existing[..line_start], &existing[line_start..])))
}

fn plain(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

pub(crate) fn run(args: &MavenSetupArgs) -> Result<ExitCode> {
    if !plain(&args.id) {
        return Err(Error::bad_input(format!("--id '{}': use letters, digits, '.', '_' or '-'", crate::log::escape(&args.id))));
    }
    if !plain(&args.env) || args.env.contains(['.', '-']) {
        return Err(Error::bad_input(format!("--env '{}' is not a variable name (letters, digits, _)", crate::log::escape(&args.env))));
    }
    let feed = super::npm::claimed(std::slice::from_ref(&args.url))?.remove(0);
    let path = match &args.settings {
        Some(p) => p.clone(),
        None => dirs::home_dir().map(|h| h.join(".m2").join("settings.xml")).ok_or_else(|| Error::bad_input_hint("HOME is not set", "pass --settings"))?,
    };
    let run_line = super::npm::exec_line(&feed.profile, &args.env, "mvn …");
    if args.apply.apply {
        let existing = super::read_or_empty(&path)?;
        match insert(&existing, &args.id, &args.env)? {
            Some(text) => {
                super::write_with_backup(&path, text.as_bytes())?;
            }
            None => crate::log::warn!("{} already has a <server> with id {}; left as it is (its password should be ${{env.{}}})", path.display(), args.id, args.env),
        }
        crate::log::warn!("now run Maven through exec: {run_line}");
        return Ok(ExitCode::SUCCESS);
    }
    super::print(&format!(
        "<!-- in {} (under <servers>); Maven expands ${{env.{var}}}, no token is written: -->\n{}\
         <!-- the repository in pom.xml (or a settings profile) with the same id: -->\n<!-- <repository><id>{id}</id><url>{url}</url></repository> -->\n\
         <!-- then run Maven through exec, which puts a fresh token in {var}: {run_line} -->\n",
        path.display(),
        server_block(&args.id, &args.env),
        var = args.env,
        id = args.id,
        url = args.url,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_a_server_and_keeps_the_rest() {
        let fresh = insert("", "feed", "T").unwrap().unwrap();
        assert!(fresh.contains("<servers>\n    <server>\n      <id>feed</id>\n      <username>entra-token</username>\n      <password>${env.T}</password>"), "{fresh}");
        let with_servers = "<settings>\n  <servers>\n    <server><id>other</id></server>\n  </servers>\n  <mirrors/>\n</settings>\n";
        let out = insert(with_servers, "feed", "T").unwrap().unwrap();
        assert_eq!(out, format!("<settings>\n  <servers>\n    <server><id>other</id></server>\n{}  </servers>\n  <mirrors/>\n</settings>\n", server_block("feed", "T")));
        assert_eq!(insert(&out, "feed", "T").unwrap(), None, "an id already there is left alone");
        let bare = "<settings><localRepository>/r</localRepository></settings>";
        assert_eq!(insert(bare, "feed", "T").unwrap().unwrap(), format!("<settings><localRepository>/r</localRepository>  <servers>\n{}  </servers>\n</settings>", server_block("feed", "T")));
        assert!(insert("<foo/>", "feed", "T").is_err());
    }

    #[test]
    fn ids_and_variables() {
        assert!(plain("my-feed.v1") && !plain("a<b") && !plain(""));
    }
}
