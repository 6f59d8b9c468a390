//! The one error type. Each variant knows its documented exit code, a stable machine
//! code for JSON answers, and a hint that tells the user what to do next. Messages are
//! lower-case, single-line, and never contain a token or secret.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// What failed underneath an error of ours, kept whole; the one-line rendering walks it.
pub(crate) type Source = Box<dyn std::error::Error + Send + Sync>;

/// Details Entra gave with a failed token request.
#[derive(Debug, Clone, Default)]
pub(crate) struct AadError {
    /// OAuth `error`, e.g. `invalid_client`.
    pub error: String,
    pub codes: Vec<u32>,
    pub correlation_id: Option<String>,
    pub trace_id: Option<String>,
    /// The first line of `error_description`, without trace/correlation noise.
    pub description: String,
    pub claims: Option<String>,
    pub suberror: Option<String>,
}

#[derive(Debug)]
pub(crate) enum Error {
    /// The caller's input is wrong (flags, JSON request, config values).
    BadInput { message: String, hint: Option<String>, source: Option<Source> },
    /// Config file problems: it exists but cannot be read or parsed. `message` may be
    /// empty when `source` says it all.
    Config { path: PathBuf, message: String, source: Option<Source> },
    /// A named profile does not exist.
    /// `note`: why it may be missing (ENTRA_TOKEN_CONFIG names a file that is not there).
    ProfileNotFound { name: String, available: Vec<String>, note: Option<String> },
    /// Entra (or another token source) refused; `hint` says what to fix.
    /// (`aad` is boxed: it is the largest part, and every `Result` would carry its size.)
    Auth { message: String, aad: Option<Box<AadError>>, hint: Option<String> },
    /// A sign-in is needed but nobody can answer a prompt.
    InteractionRequired { message: String, command: String },
    /// Could not reach or understand the server.
    Network { url: String, message: String, hint: Option<String> },
    /// The deadline passed.
    Timeout { what: String, after: Duration },
    /// The cache directory or an entry is unsafe or unusable.
    Cache { path: PathBuf, message: String, hint: Option<String>, source: Option<Source> },
    /// Anything else (I/O on our own files, a bug). `source` is what failed underneath,
    /// kept whole instead of flattened into `message`; `one_line` walks it.
    General { message: String, source: Option<Source> },
    /// The token agent (ENTRA_TOKEN_AGENT) answered with an error: its code, its exit code.
    Agent { code: &'static str, message: String, hint: Option<String>, exit: u8 },
}

impl Error {
    pub(crate) fn bad_input(message: impl Into<String>) -> Self {
        Error::BadInput { message: message.into(), hint: None, source: None }
    }
    pub(crate) fn bad_input_hint(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::BadInput { message: message.into(), hint: Some(hint.into()), source: None }
    }
    pub(crate) fn general(message: impl Into<String>) -> Self {
        Error::General { message: message.into(), source: None }
    }
    /// `message` (what we were doing) caused by `source` (what failed underneath).
    pub(crate) fn caused(message: impl Into<String>, source: impl Into<Source>) -> Self {
        Error::General { message: message.into(), source: Some(source.into()) }
    }
    /// A general error that is only its cause (which names what failed: an `fs` error says
    /// the operation and the path).
    pub(crate) fn failed(source: impl Into<Source>) -> Self {
        Error::General { message: String::new(), source: Some(source.into()) }
    }
    /// A config error at `path` caused by `source` (which names what failed).
    pub(crate) fn config(path: impl Into<PathBuf>, source: impl Into<Source>) -> Self {
        Error::Config { path: path.into(), message: String::new(), source: Some(source.into()) }
    }
    /// This error, caused by `source`: a bad input, config, cache or general error keeps it
    /// whole (exit code, code and hint stay this error's). Only those variants have a
    /// source; the others are returned as they are (and a debug build says so).
    pub(crate) fn because(mut self, cause: impl Into<Source>) -> Self {
        match &mut self {
            Error::BadInput { source, .. } | Error::Config { source, .. } | Error::Cache { source, .. } | Error::General { source, .. } => *source = Some(cause.into()),
            other => debug_assert!(false, "{} errors keep no source", other.code()),
        }
        self
    }
    pub(crate) fn auth(message: impl Into<String>, hint: Option<String>) -> Self {
        Error::Auth { message: message.into(), aad: None, hint }
    }

    /// The documented exit code: 0 ok, 1 general/bad input, 2 profile not found,
    /// 3 authentication failed, 4 network error, 5 timeout.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Error::BadInput { .. } | Error::Config { .. } | Error::Cache { .. } | Error::General { .. } => 1,
            Error::ProfileNotFound { .. } => 2,
            Error::Auth { .. } | Error::InteractionRequired { .. } => 3,
            Error::Network { .. } => 4,
            Error::Timeout { .. } => 5,
            Error::Agent { exit, .. } => *exit,
        }
    }

    /// A stable, machine-readable code for JSON error answers.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Error::BadInput { .. } => "bad_input",
            Error::Config { .. } => "config_error",
            Error::ProfileNotFound { .. } => "profile_not_found",
            Error::Auth { .. } => "auth_failed",
            Error::InteractionRequired { .. } => "interaction_required",
            Error::Network { .. } => "network_error",
            Error::Timeout { .. } => "timeout",
            Error::Cache { .. } => "cache_error",
            Error::General { .. } => "error",
            Error::Agent { code, .. } => code,
        }
    }

    pub(crate) fn hint(&self) -> Option<String> {
        match self {
            Error::BadInput { hint, .. } | Error::Auth { hint, .. } | Error::Network { hint, .. } | Error::Cache { hint, .. } | Error::Agent { hint, .. } => hint.clone(),
            Error::Config { path, .. } => Some(format!("fix {} or point ENTRA_TOKEN_CONFIG elsewhere", path.display())),
            Error::ProfileNotFound { .. } => Some("add it to the config file or pick one of the listed profiles".into()),
            Error::InteractionRequired { command, .. } => Some(format!("run `{command}` in a terminal, then try again")),
            Error::Timeout { .. } => Some("raise --timeout, or check the network path to the authority".into()),
            Error::General { .. } => None,
        }
    }

    /// The message and its causes, without the path a config or cache error leads with
    /// (for reports that name the path themselves).
    pub(crate) fn detail(&self) -> String {
        match self {
            Error::Config { message, .. } | Error::Cache { message, .. } => chain(message, std::error::Error::source(self)),
            other => other.to_string(),
        }
    }

    pub(crate) fn aad(&self) -> Option<&AadError> {
        match self {
            Error::Auth { aad, .. } => aad.as_deref(),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadInput { message, .. } | Error::General { message, .. } => f.write_str(&chain(message, std::error::Error::source(self))),
            Error::Config { path, message, .. } => write!(f, "config {}: {}", path.display(), chain(message, std::error::Error::source(self))),
            Error::ProfileNotFound { name, available, note } => {
                if available.is_empty() {
                    write!(f, "profile '{name}' not found (no profiles are configured)")?;
                } else {
                    let names = available.iter().map(|a| a.trim_end_matches(" (built-in)"));
                    let guess = crate::suggest::did_you_mean(name, names);
                    write!(f, "profile '{name}' not found{guess}; available: {}", available.join(", "))?;
                }
                note.as_ref().map_or(Ok(()), |n| write!(f, "; {n}"))
            }
            Error::Auth { message, .. } | Error::InteractionRequired { message, .. } => f.write_str(message),
            Error::Network { url, message, .. } => write!(f, "network error calling {url}: {message}"),
            Error::Timeout { what, after } => write!(f, "timed out after {}s {what}", after.as_secs_f64().round()),
            Error::Cache { path, message, .. } => write!(f, "cache {}: {}", path.display(), chain(message, std::error::Error::source(self))),
            Error::Agent { message, .. } => write!(f, "the token agent (ENTRA_TOKEN_AGENT): {message}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::BadInput { source: Some(s), .. } | Error::Config { source: Some(s), .. } | Error::Cache { source: Some(s), .. } | Error::General { source: Some(s), .. } => Some(s.as_ref()),
            _ => None,
        }
    }
}

/// The message and hint on one line, the way every front end reports to stderr.
pub(crate) fn one_line(e: &Error) -> String {
    match e.hint() {
        Some(h) => format!("{e} (hint: {h})"),
        None => e.to_string(),
    }
}

/// `message`, then each cause after a colon (cargo's "caused by", on one line). A cause of
/// ours is shown with its hint; a cause whose text its parent already printed (a wrapper
/// that shows its inner error) is not repeated.
fn chain(message: &str, source: Option<&(dyn std::error::Error + 'static)>) -> String {
    let mut text = message.to_string();
    let mut cause = source;
    while let Some(c) = cause {
        let shown = match c.downcast_ref::<Error>() {
            Some(ours) => one_line(ours),
            None => c.to_string(),
        };
        if text.is_empty() {
            text = shown;
        } else if !text.contains(&shown) {
            text = format!("{text}: {shown}");
        }
        // one_line has walked the rest of a cause of ours.
        cause = if c.is::<Error>() { None } else { c.source() };
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_is_kept_whole_and_shown_after_a_colon() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied");
        let e = Error::caused("cannot write /x", io);
        assert_eq!(one_line(&e), "cannot write /x: permission denied");
        let source = std::error::Error::source(&e).expect("the cause is kept");
        assert_eq!(source.downcast_ref::<std::io::Error>().map(std::io::Error::kind), Some(std::io::ErrorKind::PermissionDenied));
        assert_eq!((e.exit_code(), e.code(), e.hint()), (1, "error", None));

        // A cause of ours keeps its hint in the line; the outer error keeps its own codes.
        let inner = Error::Cache { path: "/c".into(), message: "not private".into(), hint: Some("chmod 700 /c".into()), source: None };
        let e = Error::caused("cannot write /y", inner);
        assert_eq!(one_line(&e), "cannot write /y: cache /c: not private (hint: chmod 700 /c)");
        assert_eq!((e.exit_code(), e.code(), e.hint()), (1, "error", None));
    }

    #[test]
    fn config_cache_and_bad_input_errors_keep_their_cause_and_their_codes() {
        let denied = || std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied");
        let kind = |e: &Error| std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>()).map(std::io::Error::kind);

        let e = Error::config("/etc/c.toml", denied());
        assert_eq!(one_line(&e), "config /etc/c.toml: permission denied (hint: fix /etc/c.toml or point ENTRA_TOKEN_CONFIG elsewhere)");
        assert_eq!((e.exit_code(), e.code(), kind(&e)), (1, "config_error", Some(std::io::ErrorKind::PermissionDenied)));
        assert_eq!(e.detail(), "permission denied");

        let e = Error::Cache { path: "/c".into(), message: "cannot write".into(), hint: None, source: Some(denied().into()) };
        assert_eq!(one_line(&e), "cache /c: cannot write: permission denied");
        assert_eq!((e.exit_code(), e.code(), kind(&e)), (1, "cache_error", Some(std::io::ErrorKind::PermissionDenied)));
        assert_eq!(e.detail(), "cannot write: permission denied");

        let e = Error::bad_input_hint("cannot read the certificate /k.pem", "check certificate_path").because(denied());
        assert_eq!(one_line(&e), "cannot read the certificate /k.pem: permission denied (hint: check certificate_path)");
        assert_eq!((e.exit_code(), e.code(), kind(&e)), (1, "bad_input", Some(std::io::ErrorKind::PermissionDenied)));

        // A general error that is only its cause reads as the cause.
        let e = Error::failed(denied());
        assert_eq!((one_line(&e), e.exit_code(), e.code()), ("permission denied".to_string(), 1, "error"));
    }

    #[test]
    fn a_wrapper_that_prints_its_inner_error_is_not_repeated() {
        #[derive(Debug)]
        struct Wrapper(std::io::Error);
        impl fmt::Display for Wrapper {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "keyring failure: {}", self.0)
            }
        }
        impl std::error::Error for Wrapper {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Error::caused("the OS keyring failed", Wrapper(std::io::Error::other("no D-Bus")));
        assert_eq!(one_line(&e), "the OS keyring failed: keyring failure: no D-Bus");
    }
}
