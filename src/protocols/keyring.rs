//! The `keyring` command line that pip and uv run with `--keyring-provider subprocess`
//! (jaraco/keyring's CLI), answered through the multi-call name `keyring`:
//!
//! - pip 23.1+: `keyring --mode=creds --output=json get URL [USERNAME]`, stdin /dev/null;
//!   stdout `{"username":…,"password":…}`; any non-zero exit means "nothing here" (exit 2
//!   with "unrecognized arguments" and "--mode=creds" on stderr means "keyring too old").
//! - uv: `keyring get URL USERNAME` (the username from the index URL), stdout the password
//!   and a newline; without a username `keyring get URL --mode creds`, stdout the username
//!   and the password on two lines. Non-zero: nothing here.
//!
//! Both ask for the index URL first and then for its bare `host[:port]`. The password is
//! the profile's Entra token, only for a URL a profile's `urls` claims (with the Azure
//! DevOps resource on Azure Artifacts' hosts, as for git and cargo); every other service
//! gets exit 1 and not a byte on stdout or stderr, as a keyring without that entry does.
//! Azure Artifacts takes the token as the Basic password with any username, so without
//! one we answer `VssSessionToken`, the name Microsoft's own artifacts-keyring uses.
//! `set` and `del` are refused (exit 1): tokens are fetched, never stored by a caller.

use crate::broker;
use crate::error::{Error, Result};
use crate::log::trace;
use std::ffi::OsString;
use std::process::ExitCode;

/// The username we answer when the caller named none.
pub(crate) const USERNAME: &str = "VssSessionToken";

/// What a `keyring` command line asks.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Invocation {
    pub op: Op,
    pub service: String,
    pub username: Option<String>,
    /// `--mode creds`: answer the username too.
    pub creds: bool,
    /// `--output json`.
    pub json: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Get,
    Set,
    Del,
    /// `--list-backends`, `--help` and friends: say what we are.
    About,
}

/// A usage error, exit 2 as argparse gives (the keyring CLI is argparse).
fn usage(msg: impl Into<String>) -> Error {
    Error::bad_input_hint(msg, "usage: keyring [--mode password|creds] [--output plain|json] get|set|del SERVICE [USERNAME] (entra-token's read-only keyring for pip and uv)")
}

/// Parses keyring's argv (after the program name): options may come anywhere, as
/// argparse allows (`uv` puts `--mode creds` after the service).
pub(crate) fn parse(args: &[String]) -> Result<Invocation> {
    let mut positional = Vec::new();
    let (mut creds, mut json, mut about) = (false, false, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = |name: &str| inline.clone().or_else(|| it.next().cloned()).ok_or_else(|| usage(format!("{name} needs a value")));
        match flag {
            "--mode" => match value("--mode")?.as_str() {
                "creds" => creds = true,
                "password" => creds = false,
                other => return Err(usage(format!("--mode {other:?}: use password or creds"))),
            },
            "--output" => match value("--output")?.as_str() {
                "json" => json = true,
                "plain" => json = false,
                other => return Err(usage(format!("--output {other:?}: use plain or json"))),
            },
            // Which backend to load: we are the backend.
            "-b" | "--keyring-backend" | "-p" | "--keyring-path" => {
                value(flag)?;
            }
            "--list-backends" | "-h" | "--help" | "--version" => about = true,
            "--" => positional.extend(it.by_ref().cloned()),
            f if f.starts_with('-') && f.len() > 1 => return Err(usage(format!("unrecognized argument {:?}", crate::log::escape(f)))),
            _ => positional.push(a.clone()),
        }
    }
    if about {
        return Ok(Invocation { op: Op::About, service: String::new(), username: None, creds, json });
    }
    let mut p = positional.into_iter();
    let op = match p.next().as_deref() {
        Some("get") => Op::Get,
        Some("set") => Op::Set,
        Some("del") => Op::Del,
        Some(other) => return Err(usage(format!("unknown operation {:?}", crate::log::escape(other)))),
        None => return Err(usage("no operation given")),
    };
    let service = p.next().ok_or_else(|| usage("no service (URL) given"))?;
    let username = p.next().filter(|u| !u.is_empty());
    if p.next().is_some() {
        return Err(usage("too many arguments"));
    }
    Ok(Invocation { op, service, username, creds, json })
}

/// The answer for a token: what `--mode`/`--output` ask, ending in a newline.
pub(crate) fn encode(inv: &Invocation, token: &str) -> String {
    let username = inv.username.as_deref().unwrap_or(USERNAME);
    if inv.json {
        return format!("{}\n", serde_json::json!({"username": username, "password": token}));
    }
    if inv.creds { format!("{username}\n{token}\n") } else { format!("{token}\n") }
}

/// Exit 1 with nothing said: "no such entry", for a service no profile claims.
fn nothing() -> Result<ExitCode> {
    Ok(ExitCode::from(1))
}

/// `keyring …` (the multi-call name).
pub(crate) fn run(args: Vec<OsString>) -> Result<ExitCode> {
    let args: Vec<String> = args.into_iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let inv = match parse(&args) {
        Ok(inv) => inv,
        Err(e) => {
            crate::log::error(format_args!("keyring: {}", crate::error::one_line(&e)));
            return Ok(ExitCode::from(2));
        }
    };
    match inv.op {
        Op::About => {
            super::write_stdout(b"entra-token (read-only): Entra ID tokens for the URLs your profiles claim\n")?;
            return Ok(ExitCode::SUCCESS);
        }
        Op::Set => return Err(Error::bad_input_hint("keyring set: entra-token's keyring is read-only: its passwords are Entra ID tokens, fetched when asked; nothing was stored", "for other secrets use your own keyring (see docs/feeds.md)")),
        Op::Del => return Err(Error::bad_input_hint("keyring del: entra-token's keyring is read-only; nothing was deleted", "`entra-token logout -p PROFILE` forgets a profile's tokens")),
        Op::Get => {}
    }
    let Some(url) = crate::urlmatch::parse(&inv.service) else {
        trace!(1, "keyring: {:?} is no URL entra-token matches; answering nothing", crate::log::escape(&inv.service));
        return nothing();
    };
    let Some(req) = super::url_request(&url)? else {
        return nothing();
    };
    let cred = match broker::get_token(&req) {
        Ok(c) => c,
        Err(e) if super::unclaimed(&e) => {
            trace!(1, "no profile of the token agent claims {url}; answering nothing");
            return nothing();
        }
        Err(e) => return Err(e),
    };
    super::write_stdout(encode(&inv, cred.access_token.expose()).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn pip_and_uv_command_lines() {
        // pip 26: options first, username optional.
        let pip = parse(&argv("--mode=creds --output=json get https://h/simple/")).unwrap();
        assert_eq!(pip, Invocation { op: Op::Get, service: "https://h/simple/".into(), username: None, creds: true, json: true });
        assert_eq!(encode(&pip, "tok"), "{\"password\":\"tok\",\"username\":\"VssSessionToken\"}\n");
        // uv with a username in the index URL; and without one, `--mode creds` after the service.
        let uv = parse(&argv("get https://h/simple/ VssSessionToken")).unwrap();
        assert_eq!(encode(&uv, "tok"), "tok\n");
        let uv = parse(&argv("get https://h/simple/ --mode creds")).unwrap();
        assert!(uv.creds && uv.username.is_none());
        assert_eq!(encode(&uv, "tok"), "VssSessionToken\ntok\n");
        let named = parse(&argv("--mode creds get h me")).unwrap();
        assert_eq!(encode(&named, "tok"), "me\ntok\n");
        assert_eq!(parse(&argv("-b x.Backend set h u")).unwrap().op, Op::Set);
        assert_eq!(parse(&argv("--list-backends")).unwrap().op, Op::About);
    }

    #[test]
    fn bad_command_lines_are_usage_errors() {
        for bad in ["", "get", "fetch h", "get h u extra", "--mode secret get h", "--frobnicate get h", "--mode"] {
            assert!(parse(&argv(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn azure_artifacts_hosts_default_to_azure_devops() {
        for host in ["https://pkgs.dev.azure.com/contoso/_packaging/f/pypi/simple/", "https://contoso.pkgs.visualstudio.com/_packaging/f/pypi/simple/"] {
            let url = crate::urlmatch::parse(host).unwrap();
            assert_eq!(super::super::default_resource_for(&url), Some(super::super::AZURE_DEVOPS_RESOURCE), "{host}");
        }
    }
}
