//! `entra-token ssh cert|config|add`: Entra SSH certificates without az. The profile's
//! ordinary grant asks for `token_type=ssh-cert` with the RSA public key (`Binding::SshCert`);
//! the answer, a one-hour OpenSSH user certificate, is cached like any token (keyed by the
//! identity and the key's id), written beside the key as OpenSSH names it, renewed by ssh
//! itself through a generated `Match exec` block, or handed to ssh-agent for its lifetime.

mod openssh;

use crate::broker::{self, TokenRequest};
use crate::clock;
use crate::error::{Error, Result};
use crate::log::{line, trace};
use crate::oauth::{Binding, SshKey};
use openssh::{Certificate, RsaKey};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

#[derive(Debug, clap::Args)]
pub(crate) struct SshArgs {
    #[command(subcommand)]
    pub command: SshCommand,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum SshCommand {
    /// Get an SSH certificate for an RSA key (made with ssh-keygen when missing), write it as
    /// KEY-cert.pub and print the name to log in as.
    Cert(CertArgs),
    /// Print an ssh_config block for HOST patterns that renews the certificate whenever ssh connects.
    Config(ConfigArgs),
    /// Add the key and its certificate to the running ssh-agent for the certificate's lifetime.
    Add(KeyArgs),
}

/// The flags every `ssh` subcommand takes.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct KeyArgs {
    /// Profile to sign in with (default: ENTRA_TOKEN_PROFILE, the config's default_profile, or `default`).
    #[arg(short, long)]
    pub profile: Option<String>,
    /// The RSA private key (its public half in KEY.pub); made with ssh-keygen when neither
    /// exists. Default: ~/.ssh/entra-token/PROFILE.
    #[arg(long, value_name = "KEY")]
    pub key: Option<PathBuf>,
    /// Renew a certificate with less than this many seconds (or 5m, 10m) left.
    #[arg(long, value_name = "SECONDS", default_value_t = 300, value_parser = renewal_margin)]
    pub min_validity: i64,
    /// Network time limit, e.g. 30s, 2m.
    #[arg(long, default_value = "60s", value_parser = crate::clock::parse_duration)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CertArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    /// Keep KEY-cert.pub as it is when it certifies the key for more than --min-validity
    /// seconds (no network, no cache): what the generated ssh config runs on every connection.
    #[arg(long)]
    pub if_expiring: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ConfigArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    /// Host patterns the block applies to, as ssh_config's `Match host` takes them.
    #[arg(required = true, value_name = "HOST")]
    pub hosts: Vec<String>,
}

pub(crate) fn run(args: &SshArgs) -> Result<ExitCode> {
    match &args.command {
        SshCommand::Cert(a) => {
            let got = certificate(&a.key, a.if_expiring)?;
            println!("{}", got.cert.login());
        }
        SshCommand::Config(a) => {
            let got = certificate(&a.key, false)?;
            print!("{}", config_block(a, &got)?);
        }
        SshCommand::Add(a) => {
            let got = certificate(a, false)?;
            add_to_agent(&got)?;
            println!("{}", got.cert.login());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A key with a current certificate on disk.
struct Certified {
    key: PathBuf,
    cert_file: PathBuf,
    cert: Certificate,
}

/// The key's certificate, renewed through the broker unless `if_expiring` finds the file's
/// one good for longer than `min_validity`; written to KEY-cert.pub when it changed.
fn certificate(args: &KeyArgs, if_expiring: bool) -> Result<Certified> {
    let key = match &args.key {
        Some(k) => k.clone(),
        None => default_key(args.profile.as_deref())?,
    };
    let public = public_key(&key)?;
    let cert_file = cert_path(&key);
    let now = clock::now();
    let on_disk = std::fs::read_to_string(&cert_file).ok();
    let req = TokenRequest {
        profile: args.profile.clone(),
        min_validity: args.min_validity,
        timeout: args.timeout,
        binding: Binding::SshCert(SshKey::rsa(&public.n, &public.e)),
        ..TokenRequest::default()
    };
    // The file is a cache entry like any other: its certificate counts only for this key
    // and the identity this request resolves to now (the line ends with the request's
    // `label`, naming its cache key: profile, identity, key), so after a sign-in as someone
    // else, or for another profile, it is renewed, never kept.
    if if_expiring {
        let label = label(&req)?;
        let ours = |t: &str| t.split_whitespace().nth(2) == Some(label.as_str());
        let current = on_disk.as_deref().filter(|t| ours(t)).and_then(|t| openssh::parse_certificate_line(t).ok()).filter(|c| c.key == public);
        if let Some(cert) = current.filter(|c| c.seconds_left(now) > args.min_validity as u64) {
            trace!(1, "{} certifies the key for {}s more; kept", cert_file.display(), cert.seconds_left(now));
            return Ok(Certified { key, cert_file, cert });
        }
    }
    let credential = broker::get_token(&req)?;
    let blob = credential.access_token.expose();
    let bad = |why: String| Error::auth(format!("Entra's SSH certificate cannot be used: {why}"), Some("nothing was written; try again, or report it with `entra-token -vv ssh cert`".into()));
    let cert = openssh::parse_certificate(blob).map_err(bad)?;
    if cert.key != public {
        return Err(bad("it certifies another key than the one asked for".into()));
    }
    // Named after the sign-in that got it (a first sign-in links the profile to its person).
    let text = format!("{} {} {}\n", openssh::CERT_TYPE, blob.trim(), label(&req)?);
    if on_disk.as_deref() != Some(text.as_str()) {
        crate::fs::write_private_at(&cert_file, text.as_bytes()).map_err(|e| Error::general(e.to_string()))?;
        trace!(1, "wrote {} (serial {}, valid {} to {})", cert_file.display(), cert.serial, cert.valid_after, cert.valid_before);
    }
    Ok(Certified { key, cert_file, cert })
}

/// What a certificate file's line ends with: `entra-token:PROFILE:KEY`, KEY the cache key of
/// the request's resolved identity and key (`tokens::Resolved::key`; no secret, no
/// network). Under a token agent the identities are the agent's: the profile's name only.
fn label(req: &TokenRequest) -> Result<String> {
    Ok(match broker::resolve_here(req).transpose()? {
        Some(r) => format!("entra-token:{}:{}", r.profile.name, r.key.trim_end_matches(".json")),
        None => format!("entra-token:{}", req.profile.as_deref().unwrap_or("default")),
    })
}

/// `~/.ssh/entra-token/PROFILE` (the directory made 0700 when missing).
fn default_key(profile: Option<&str>) -> Result<PathBuf> {
    let name = profile.unwrap_or("default");
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) || name.starts_with('.') {
        return Err(Error::bad_input_hint(format!("profile '{}' makes no file name for its key", crate::log::escape(name)), "give the key's path with --key"));
    }
    let home = dirs::home_dir().ok_or_else(|| Error::bad_input_hint("no home directory for the default key", "give the key's path with --key"))?;
    let dir = home.join(".ssh").join("entra-token");
    // Made, or (Unix) checked: a directory others may change could hold their key.
    if cfg!(unix) || !dir.is_dir() {
        crate::fs::create_private_dir(&dir).map_err(|e| Error::general(e.to_string()))?;
    }
    Ok(dir.join(name))
}

/// OpenSSH's name for a key's certificate: `KEY-cert.pub` (ssh, ssh-add and sshd look there).
fn cert_path(key: &Path) -> PathBuf {
    let mut name = key.as_os_str().to_owned();
    name.push("-cert.pub");
    PathBuf::from(name)
}

/// The key's public half: KEY.pub, else derived from KEY by ssh-keygen, else a new RSA
/// key made by ssh-keygen (ring makes no RSA keys). Anything but RSA is refused.
fn public_key(key: &Path) -> Result<RsaKey> {
    let mut pub_path = key.as_os_str().to_owned();
    pub_path.push(".pub");
    let pub_path = PathBuf::from(pub_path);
    // The key decides whose key Entra certifies as you: KEY.pub and KEY are read only when
    // nobody else could have put theirs there (`fs::read_trusted`'s rule, as ssh's for keys).
    let refused = |e: crate::fs::FsError| crate::fs::trusted_error("the SSH key", e, "give a key of your own with --key");
    let text = match crate::fs::read_trusted(&pub_path, 64 * 1024) {
        Ok(t) => Some(t),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(refused(e)),
    };
    let text = if let Some(t) = text {
        t
    } else if key.exists() {
        crate::fs::check_trusted_file(key).map_err(refused)?;
        String::from_utf8_lossy(&ssh_keygen(&["-y", "-f"], key, "read the public half of")?).into_owned()
    } else {
        line(format_args!("making a new RSA key {}", key.display()));
        ssh_keygen(&["-q", "-t", "rsa", "-b", "3072", "-N", "", "-C", "entra-token", "-f"], key, "make")?;
        std::fs::read_to_string(&pub_path).map_err(|e| Error::caused(format!("cannot read {}", pub_path.display()), e))?
    };
    openssh::parse_public_key(&text).map_err(|why| Error::bad_input_hint(format!("cannot use {} for an SSH certificate: {why}", key.display()), "give an RSA key (ssh-keygen -t rsa), or a new path with --key and entra-token makes one"))
}

/// Runs `ssh-keygen ARGS KEY`; its stdout, or one error saying what failed.
fn ssh_keygen(args: &[&str], key_path: &Path, what: &str) -> Result<Vec<u8>> {
    let key = key_path.display();
    let out = Command::new("ssh-keygen").args(args).arg(key_path).stdin(std::process::Stdio::null()).output().map_err(|e| {
        Error::bad_input_hint(format!("cannot run ssh-keygen to {what} the key {key}: {e}"), "install OpenSSH's client tools (ssh-keygen), or give an RSA key that has its KEY.pub beside it")
    })?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        return Err(Error::bad_input(format!("ssh-keygen could not {what} the key {key}: {}", crate::log::escape(said.trim()))));
    }
    Ok(out.stdout)
}

/// A path as ssh_config and the shell behind `Match exec` both take it, or a refusal.
fn quoted(p: &Path) -> Result<String> {
    let s = p.to_str().filter(|s| !s.chars().any(|c| c == '"' || c == '\'' || c.is_control())).ok_or_else(|| {
        Error::bad_input_hint(format!("the path {} has characters ssh_config cannot quote", p.display()), "use a key path without quotes or control characters")
    })?;
    // ssh expands %-tokens in Match exec, CertificateFile and IdentityFile.
    Ok(s.replace('%', "%%"))
}

/// `--min-validity`: seconds or a duration, up to 3000 s (a certificate lives an hour).
fn renewal_margin(s: &str) -> std::result::Result<i64, String> {
    let v = crate::clock::parse_seconds(s)?;
    if v > 3000 {
        return Err(format!("{v} seconds is more than a certificate's hour allows (at most 3000, or 50m)"));
    }
    Ok(v)
}

fn config_block(args: &ConfigArgs, got: &Certified) -> Result<String> {
    for h in &args.hosts {
        if h.is_empty() || !h.chars().all(|c| c.is_ascii_alphanumeric() || ".-_*?!:[]".contains(c)) {
            return Err(Error::bad_input(format!("'{}' is not a host pattern ssh_config takes (letters, digits, . - _ * ? ! : [ ])", crate::log::escape(h))));
        }
    }
    let exe = std::env::current_exe().map_err(|e| Error::caused("cannot find this program's own path", e))?;
    let (exe, key, cert) = (quoted(&exe)?, quoted(&std::path::absolute(&got.key).unwrap_or(got.key.clone()))?, quoted(&std::path::absolute(&got.cert_file).unwrap_or(got.cert_file.clone()))?);
    let profile = match &args.key.profile {
        Some(p) if p.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) => format!(" -p {p}"),
        Some(p) => return Err(Error::bad_input(format!("profile '{}' cannot be named in ssh_config; rename it", crate::log::escape(p)))),
        None => String::new(),
    };
    let margin = if args.key.min_validity == 300 { String::new() } else { format!(" --min-validity {}", args.key.min_validity) };
    Ok(format!(
        "# entra-token: Entra SSH certificates for {user} (profile '{name}'); ssh renews the certificate as it connects\n\
         Match host {hosts} exec \"'{exe}' ssh cert --if-expiring{profile}{margin} --key '{key}'\"\n\
         \x20   User {user}\n\
         \x20   IdentityFile \"{key}\"\n\
         \x20   CertificateFile \"{cert}\"\n",
        hosts = args.hosts.join(","),
        user = got.cert.login(),
        name = args.key.profile.as_deref().unwrap_or("default"),
    ))
}

/// `ssh-add -t SECONDS KEY`: ssh-add loads KEY-cert.pub with it, and the agent forgets
/// both when the certificate ends.
fn add_to_agent(got: &Certified) -> Result<()> {
    let left = got.cert.seconds_left(clock::now());
    if left == 0 {
        return Err(Error::auth("the certificate has already ended", Some("check the system clock, then run `entra-token ssh add` again".into())));
    }
    let out = Command::new("ssh-add").arg("-t").arg(left.to_string()).arg(&got.key).stdin(std::process::Stdio::null()).output().map_err(|e| {
        Error::bad_input_hint(format!("cannot run ssh-add: {e}"), "install OpenSSH's client tools, or use `entra-token ssh cert` and give ssh the key and certificate files")
    })?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        return Err(Error::bad_input_hint(format!("ssh-add could not add {}: {}", got.key.display(), crate::log::escape(said.trim())), "start ssh-agent (eval $(ssh-agent)) so SSH_AUTH_SOCK names it"));
    }
    line(format_args!("added {} and {} to ssh-agent for {left}s", got.key.display(), got.cert_file.display()));
    Ok(())
}
