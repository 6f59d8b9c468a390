//! The one error type. Each variant knows its documented exit code, a stable machine
//! code for JSON answers, and a hint that tells the user what to do next. Messages are
//! lower-case, single-line, and never contain a token or secret.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

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
    BadInput { message: String, hint: Option<String> },
    /// Config file problems: it exists but cannot be read or parsed.
    Config { path: PathBuf, message: String },
    /// A named profile does not exist.
    ProfileNotFound { name: String, available: Vec<String> },
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
    Cache { path: PathBuf, message: String, hint: Option<String> },
    /// Anything else (I/O on our own files, a bug).
    General { message: String },
    /// The token agent (ENTRA_TOKEN_AGENT) answered with an error: its code, its exit code.
    Agent { code: &'static str, message: String, hint: Option<String>, exit: u8 },
}

impl Error {
    pub(crate) fn bad_input(message: impl Into<String>) -> Self {
        Error::BadInput { message: message.into(), hint: None }
    }
    pub(crate) fn bad_input_hint(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::BadInput { message: message.into(), hint: Some(hint.into()) }
    }
    pub(crate) fn general(message: impl Into<String>) -> Self {
        Error::General { message: message.into() }
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
            Error::BadInput { message, .. } | Error::General { message } => f.write_str(message),
            Error::Config { path, message } => write!(f, "config {}: {message}", path.display()),
            Error::ProfileNotFound { name, available } => {
                if available.is_empty() {
                    write!(f, "profile '{name}' not found (no profiles are configured)")
                } else {
                    let names = available.iter().map(|a| a.trim_end_matches(" (built-in)"));
                    let guess = crate::suggest::did_you_mean(name, names);
                    write!(f, "profile '{name}' not found{guess}; available: {}", available.join(", "))
                }
            }
            Error::Auth { message, .. } | Error::InteractionRequired { message, .. } => f.write_str(message),
            Error::Network { url, message, .. } => write!(f, "network error calling {url}: {message}"),
            Error::Timeout { what, after } => write!(f, "timed out after {}s {what}", after.as_secs_f64().round()),
            Error::Cache { path, message, .. } => write!(f, "cache {}: {message}", path.display()),
            Error::Agent { message, .. } => write!(f, "the token agent (ENTRA_TOKEN_AGENT): {message}"),
        }
    }
}

impl std::error::Error for Error {}

/// The message and hint on one line, the way every front end reports to stderr.
pub(crate) fn one_line(e: &Error) -> String {
    match e.hint() {
        Some(h) => format!("{e} (hint: {h})"),
        None => e.to_string(),
    }
}
