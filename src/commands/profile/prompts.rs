//! `profile add`'s questions at a terminal: only the fields the chosen flow needs, and
//! never a secret (a variable name or a file path is asked for instead).

use super::AddArgs;
use super::edit::is_env_name;
use crate::config;
use crate::error::{Error, Result};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

/// Where a person's answers come from: stdin when it is a terminal, else the controlling
/// terminal when stderr (where the questions go) is one. None: nobody is there.
pub(super) fn prompt_input() -> Option<Box<dyn BufRead>> {
    if std::io::stdin().is_terminal() {
        return Some(Box::new(std::io::stdin().lock()));
    }
    if std::io::stderr().is_terminal()
        && let Ok(tty) = std::fs::File::open(if cfg!(windows) { "CONIN$" } else { "/dev/tty" })
    {
        return Some(Box::new(std::io::BufReader::new(tty)));
    }
    None
}

/// One question on `err`; the trimmed answer, `default` for an empty one, None at EOF.
fn ask(input: &mut dyn BufRead, err: &mut dyn Write, question: &str, default: Option<&str>) -> Result<Option<String>> {
    match default {
        Some(d) => write!(err, "{question} [{d}]: "),
        None => write!(err, "{question}: "),
    }
    .and_then(|_| err.flush())
    .map_err(|e| Error::caused("cannot write the prompt", e))?;
    let mut line = String::new();
    if input.read_line(&mut line).map_err(|e| Error::caused("cannot read the answer", e))? == 0 {
        let _ = writeln!(err);
        return Ok(None);
    }
    let answer = line.trim();
    Ok(if answer.is_empty() { default.map(str::to_string) } else { Some(answer.to_string()) })
}

/// Asks for the few fields the chosen flow needs and that no flag gave.
pub(crate) fn ask_missing(a: &mut AddArgs, input: &mut dyn BufRead, err: &mut dyn Write) -> Result<()> {
    use config::FlowKind;
    if a.flow.is_none() {
        a.flow = ask(input, err, "Flow (device-code, interactive, client-credentials, workload-identity, managed-identity, azure-cli)", Some("device-code"))?;
    }
    let flow = match a.flow.as_deref() {
        Some(f) => FlowKind::parse(f)?,
        None => return Ok(()),
    };
    let app = matches!(flow, FlowKind::ClientCredentials | FlowKind::WorkloadIdentity);
    if a.tenant.is_none() && !matches!(flow, FlowKind::ManagedIdentity | FlowKind::AzureCli) {
        a.tenant = ask(input, err, "Tenant (GUID or domain)", if app { None } else { Some("organizations") })?;
    }
    if flow == FlowKind::ManagedIdentity && a.mi_client_id.is_none() {
        a.mi_client_id = ask(input, err, "Client id of a user-assigned identity (empty: system-assigned)", None)?;
    } else if a.client_id.is_none() && flow != FlowKind::AzureCli {
        a.client_id = ask(input, err, "Application (client) id", if app { None } else { Some(config::AZURE_CLI_CLIENT_ID) })?;
        if a.client_id.as_deref() == Some(config::AZURE_CLI_CLIENT_ID) {
            a.client_id = None;
        }
    }
    if flow == FlowKind::ClientCredentials && a.client_secret_env.is_none() && a.client_secret_file.is_none() && a.certificate_path.is_none() {
        for _ in 0..3 {
            let Some(answer) = ask(input, err, "Where the client secret is: an environment variable NAME or a file path (never the secret itself)", None)? else {
                break;
            };
            if answer.contains('/') || answer.starts_with('~') || answer.starts_with('.') {
                let path = match answer.strip_prefix("~/") {
                    Some(rest) => dirs::home_dir().map(|h| h.join(rest)).unwrap_or_else(|| PathBuf::from(&answer)),
                    None => PathBuf::from(&answer),
                };
                a.client_secret_file = Some(path);
                break;
            }
            if is_env_name(&answer) {
                a.client_secret_env = Some(answer);
                break;
            }
            let _ = writeln!(err, "entra-token: that is neither a variable name nor a path; do not paste the secret here");
        }
    }
    if flow == FlowKind::WorkloadIdentity && a.federated_token_file.is_none() && a.service_connection_id.is_none() && a.federated_token.is_none() {
        a.federated_token_file = ask(input, err, "Federated token file (empty: AZURE_FEDERATED_TOKEN_FILE)", None)?.map(PathBuf::from);
    }
    if a.resource.is_none() {
        a.resource = ask(input, err, "Default resource (alias like graph/powerbi/arm, or a URI; empty: none)", None)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(name: &str) -> AddArgs {
        AddArgs { name: name.into(), ..AddArgs::default() }
    }

    #[test]
    fn prompts_ask_only_what_the_flow_needs() {
        let mut a = args("ci");
        let mut input = std::io::Cursor::new("client-credentials\ncontoso.com\napp-id\nnot a name!\nCI_SECRET\n\n");
        let mut err = Vec::new();
        ask_missing(&mut a, &mut input, &mut err).unwrap();
        assert_eq!(a.flow.as_deref(), Some("client-credentials"));
        assert_eq!(a.tenant.as_deref(), Some("contoso.com"));
        assert_eq!(a.client_id.as_deref(), Some("app-id"));
        assert_eq!(a.client_secret_env.as_deref(), Some("CI_SECRET"));
        assert_eq!(a.resource, None);
        let asked = String::from_utf8(err).unwrap();
        assert!(asked.contains("never the secret itself") && asked.contains("do not paste the secret"), "{asked}");

        // A person who accepts the defaults gets the built-in public client.
        let mut a = args("me");
        let mut input = std::io::Cursor::new("\n\n\n\n");
        ask_missing(&mut a, &mut input, &mut Vec::new()).unwrap();
        assert_eq!((a.flow.as_deref(), a.tenant.as_deref(), a.client_id.as_deref()), (Some("device-code"), Some("organizations"), None));
    }
}
