//! `entra-token exec -- CMD ARGS`: a fresh token for a program that has no credential
//! helper protocol but reads one from its environment (npm's `${VAR}` in .npmrc,
//! TWINE_PASSWORD, POETRY_HTTP_BASIC_*, SYSTEM_ACCESSTOKEN in pipeline scripts) or from a
//! file (client-go's `tokenFile`). The token is never in an argv: CMD gets it in the
//! variables `--env` names and, with `--file`, in a 0600 file that is rewritten before
//! the token is due for as long as CMD runs and removed after. We stay in front of CMD
//! (`crate::child` passes signals on) and exit with its code.

use crate::broker::{self, Credential, TokenRequest};
use crate::clock;
use crate::commands::TargetArgs;
use crate::error::{Error, Result};
use crate::log::{trace, warn};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// The variable the token goes in when no `--env` names one (and no `--file` is given):
/// ours, so it can clash with nothing a tool already reads with another meaning.
pub(crate) const DEFAULT_VARIABLE: &str = "ENTRA_ACCESS_TOKEN";

/// After a failed refresh, try again this soon (or sooner, while the token still works).
const RETRY: Duration = Duration::from_secs(30);

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  entra-token exec -r devops --env SYSTEM_ACCESSTOKEN -- ./build.sh\n  entra-token exec --url https://pkgs.dev.azure.com/contoso/ --env NPM_TOKEN -- npm ci\n  entra-token exec -p feeds -r devops --env TWINE_USERNAME=entra --env TWINE_PASSWORD -- twine upload -r feed dist/*\n  entra-token exec -r api://my-app --file \"$XDG_RUNTIME_DIR/token\" -- ./long-running-job\n\nExit code: CMD's own (128 + the signal when a signal ended it); 126 when CMD cannot be run, 127 when it is not found; entra-token's codes (1-5) only when no token could be had, before CMD ran.")]
pub(crate) struct ExecArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Choose the profile and resource as the credential helpers do for this URL: the profile
    /// whose `urls` claim it, and Azure DevOps' resource on its hosts unless the profile names one.
    #[arg(long, value_name = "URL", conflicts_with_all = ["profile", "resource", "scope"])]
    pub url: Option<String>,
    /// Put the token in variable NAME for CMD (repeatable; default ENTRA_ACCESS_TOKEN).
    /// NAME=VALUE sets NAME to the literal VALUE instead, e.g. the username a tool also wants.
    #[arg(long = "env", value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,
    /// Also keep the token in this file (0600, just the token), rewritten before the token
    /// is due for as long as CMD runs, and removed when it ends.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// The program and its arguments, after `--`.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// What `--env` asked for: the token in some variables, literal values in others.
#[derive(Debug, PartialEq, Eq)]
struct Variables {
    token: Vec<String>,
    literal: Vec<(String, String)>,
}

/// Variables the OS, the loader or the shell read: never the token's.
const VITAL: &[&str] = &["PATH", "HOME", "SHELL", "USER", "LOGNAME", "PWD", "TMPDIR", "TEMP", "TMP", "IFS", "LD_PRELOAD", "LD_LIBRARY_PATH", "PATHEXT", "SYSTEMROOT", "COMSPEC"];

fn variables(args: &[String], file: bool) -> Result<Variables> {
    let mut v = Variables { token: Vec::new(), literal: Vec::new() };
    for a in args {
        let (name, value) = match a.split_once('=') {
            Some((n, val)) => (n, Some(val)),
            None => (a.as_str(), None),
        };
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(Error::bad_input_hint(
                format!("--env {:?} is not a variable name", crate::log::escape(name)),
                "give NAME (letters, digits, _) for the token, or NAME=VALUE for a literal value",
            ));
        }
        // The token in a variable the system reads itself: CMD cannot run (PATH), or a
        // loader or shell prints the value in its error (LD_PRELOAD), token and all.
        if value.is_none() && VITAL.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            return Err(Error::bad_input_hint(
                format!("--env {name} would put the token in {name}, which the system itself reads"),
                format!("name a variable of your program's, e.g. --env {DEFAULT_VARIABLE}"),
            ));
        }
        match value {
            Some(val) => v.literal.push((name.to_string(), val.to_string())),
            None => v.token.push(name.to_string()),
        }
    }
    if v.token.is_empty() && !file {
        v.token.push(DEFAULT_VARIABLE.to_string());
    }
    Ok(v)
}

/// The token `-p/-r/--scope` name, or the one a profile gives for `--url` (none: refused).
fn request(args: &ExecArgs) -> Result<TokenRequest> {
    let Some(url) = &args.url else { return Ok(args.target.to_request()) };
    let parts = crate::urlmatch::parse(url).ok_or_else(|| Error::bad_input_hint(format!("--url {:?} is not an https URL entra-token matches", crate::log::escape(url)), "give the URL the program will use, e.g. https://pkgs.dev.azure.com/ORG/"))?;
    let req = crate::protocols::url_request(&parts)?
        .ok_or_else(|| Error::bad_input_hint(format!("no profile claims {parts}, so there is no token for it"), "add it to a profile's `urls`, or name the token with -p and -r"))?;
    Ok(TokenRequest { tenant: args.target.tenant.clone(), timeout: args.target.timeout, ..req })
}

/// When to fetch the next token for the file: a margin before expiry (as client-go is
/// told, `protocols::early_expiry`), at least a second from now.
fn refresh_at(expires_on: i64, now: i64) -> i64 {
    crate::protocols::early_expiry(expires_on, now).max(now + 1)
}

pub(crate) fn run(args: &ExecArgs) -> Result<ExitCode> {
    // Said before any token is fetched.
    let (program, rest) = args.command.split_first().ok_or_else(|| Error::bad_input_hint("no command to run", "put it after `--`: entra-token exec -r devops --env SYSTEM_ACCESSTOKEN -- ./build.sh"))?;
    let vars = variables(&args.env, args.file.is_some())?;
    let req = TokenRequest { prompts: true, ..request(args)? };
    let cred = broker::get_token(&req)?;
    if let Some(path) = &args.file {
        write_file(path, &cred)?;
    }
    let mut cmd = std::process::Command::new(program);
    cmd.args(rest);
    for name in &vars.token {
        cmd.env(name, cred.access_token.expose());
    }
    for (name, value) in &vars.literal {
        cmd.env(name, value);
    }
    trace!(1, "running {} with the token in {}{}", Path::new(program).display(), if vars.token.is_empty() { "no variable".to_string() } else { vars.token.join(", ") }, args.file.as_ref().map(|f| format!(" and {}", f.display())).unwrap_or_default());
    let forwarding = crate::child::prepare();
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            remove_file(args.file.as_deref());
            let code = if e.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 };
            crate::log::error(format_args!("cannot run {}: {e}", crate::log::escape(&Path::new(program).display().to_string())));
            return Ok(ExitCode::from(code));
        }
    };
    forwarding.child(child.id());
    let (tx, rx) = mpsc::channel();
    let mut child = child;
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    // The file's renewals run beside the wait, so a slow token endpoint never holds up
    // CMD's end; `done` (set under its lock before the file is removed) keeps a renewal
    // that finishes later from writing it again.
    let done = Arc::new(Mutex::new(false));
    if let Some(path) = args.file.clone() {
        let done = Arc::clone(&done);
        // Never prompt while CMD owns the terminal: a person signs in again with `entra-token login`.
        let req = TokenRequest { prompts: false, ..req.clone() };
        let expires_on = cred.expires_on;
        std::thread::spawn(move || renew(&path, &req, expires_on, &done));
    }
    let status = rx.recv().unwrap_or_else(|_| Err(std::io::Error::other("the waiting thread ended")));
    drop(forwarding);
    {
        let mut done = done.lock().unwrap_or_else(|e| e.into_inner());
        *done = true;
        remove_file(args.file.as_deref());
    }
    match status {
        Ok(status) => Ok(crate::child::exit_code(status)),
        Err(e) => Err(Error::caused("lost track of the command", e)),
    }
}

/// Keeps `path` holding a token that is not yet due, while CMD runs (the variables cannot
/// change under a running process); returns once CMD has ended (`done`).
fn renew(path: &Path, req: &TokenRequest, mut expires_on: i64, done: &Mutex<bool>) {
    let mut next = refresh_at(expires_on, clock::now());
    loop {
        std::thread::sleep(Duration::from_secs(u64::try_from(next - clock::now()).unwrap_or(0)));
        let now = clock::now();
        let result = broker::get_token(req).and_then(|c| {
            let done = done.lock().unwrap_or_else(|e| e.into_inner());
            if *done {
                return Ok(None);
            }
            write_file(path, &c).map(|()| Some(c))
        });
        match result {
            Ok(None) => return,
            Ok(Some(c)) => {
                trace!(1, "token in {} renewed (expires {})", path.display(), clock::rfc3339(c.expires_on));
                expires_on = c.expires_on;
                next = refresh_at(expires_on, clock::now());
            }
            Err(e) => {
                if *done.lock().unwrap_or_else(|e| e.into_inner()) {
                    return;
                }
                let left = (expires_on - now).max(0);
                warn!("could not renew the token in {} ({}); it {}; trying again", path.display(), crate::error::one_line(&e), if left > 0 { format!("expires in {}", clock::short_duration(left as u64)) } else { "has expired".into() });
                next = now + i64::try_from(RETRY.as_secs()).unwrap_or(30).min((left / 2).max(1));
            }
        }
    }
}

fn write_file(path: &Path, cred: &Credential) -> Result<()> {
    crate::fs::write_private_at(path, cred.access_token.expose().as_bytes()).map_err(|e| Error::BadInput { message: String::new(), hint: e.hint(), source: Some(e.into()) })
}

fn remove_file(path: Option<&Path>) {
    if let Some(p) = path
        && let Err(e) = crate::fs::remove(p)
    {
        warn!("could not remove {}: {}", p.display(), e.cause_text());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_the_token_or_sets_a_literal() {
        let v = variables(&["A".into(), "U=me".into(), "B_2".into()], false).unwrap();
        assert_eq!(v, Variables { token: vec!["A".into(), "B_2".into()], literal: vec![("U".into(), "me".into())] });
        assert_eq!(variables(&[], false).unwrap().token, [DEFAULT_VARIABLE]);
        assert_eq!(variables(&["U=x".into()], false).unwrap().token, [DEFAULT_VARIABLE]);
        assert!(variables(&[], true).unwrap().token.is_empty(), "--file alone puts the token nowhere else");
        for bad in ["", "1A", "A-B", "=x", "A B"] {
            assert!(variables(&[bad.into()], false).is_err(), "{bad}");
        }
        for vital in ["PATH", "Path", "LD_PRELOAD", "HOME"] {
            assert!(variables(&[vital.into()], false).is_err(), "{vital}");
            assert!(variables(&[format!("{vital}=x")], false).is_ok(), "a literal value is the caller's own: {vital}");
        }
    }

    #[test]
    fn the_file_is_renewed_before_the_token_is_due() {
        assert_eq!(refresh_at(1000 + 3600, 1000), 1000 + 3300);
        assert_eq!(refresh_at(1000 + 10, 1000), 1005);
        assert_eq!(refresh_at(900, 1000), 1001);
    }
}
