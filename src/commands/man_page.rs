//! The top man page, `entra-token(1)`: clap_mangen's sections (name, synopsis, options,
//! subcommands), then what a man page reader looks for and clap cannot express: the stdin
//! protocol with its request fields (from protocol/README.md, so they never drift), exit
//! status, environment and files. Example lines are set unfilled so none runs into the
//! next sentence.

use std::io::Write;

/// protocol/README.md's request table, one row per field: (field, type, meaning).
fn request_fields() -> Vec<(String, String, String)> {
    let text = include_str!("../../protocol/README.md");
    text.lines()
        .skip_while(|l| !l.starts_with("| `"))
        .take_while(|l| l.starts_with("| `"))
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim().trim_matches('|').split(" | ").map(str::trim).collect();
            (cells.len() == 3).then(|| (cells[0].trim_matches('`').to_string(), cells[1].to_string(), cells[2].to_string()))
        })
        .collect()
}

/// Text as a roff line: backslashes escaped, a leading `.` or `'` kept from being a request.
fn esc(s: &str) -> String {
    let s = s.replace('\\', "\\e").replace('`', "");
    if s.starts_with('.') || s.starts_with('\'') { format!("\\&{s}") } else { s }
}

/// One `.TP` item: a bold term and its text.
fn item(out: &mut String, term: &str, text: &str) {
    out.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", esc(term), esc(text)));
}

const ENVIRONMENT: &[(&str, &str)] = &[
    ("ENTRA_TOKEN_PROFILE", "the profile a request uses when it names none (over the config's default_profile)"),
    ("ENTRA_TOKEN_CONFIG", "the config file, instead of entra-token/config.toml in the config directory"),
    ("ENTRA_TOKEN_CACHE_DIR", "the token cache directory, instead of entra-token in the cache directory"),
    ("ENTRA_TOKEN_VERBOSE", "a trace level (1, 2) for runs whose command line a tool owns (git, cargo, az, ...)"),
    ("ENTRA_TOKEN_AGENT", "the token agent's socket: every front end asks the agent instead of signing in here"),
    ("AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH", "a service principal for the default profile's environment source, as the Azure SDKs read them"),
    ("AZURE_FEDERATED_TOKEN_FILE", "workload identity's federated token (with AZURE_CLIENT_ID and AZURE_TENANT_ID)"),
    ("AZURE_AUTHORITY_HOST", "the Entra authority host (sovereign clouds, or a local emulator)"),
    ("AZURE_CONFIG_DIR", "the Azure CLI's directory, whose sign-in the default profile reuses (default ~/.azure)"),
    ("HTTPS_PROXY, NO_PROXY", "the proxy for calls to Entra; loopback is never proxied"),
    ("SSL_CERT_FILE", "a PEM file of extra trusted roots (a TLS-intercepting proxy's CA)"),
    ("NO_COLOR", "no colour on stderr"),
];

const FILES: &[(&str, &str)] = &[
    ("$XDG_CONFIG_HOME/entra-token/config.toml", "profiles (ENTRA_TOKEN_CONFIG overrides; %APPDATA%\\entra-token on Windows); never holds a secret"),
    ("$XDG_CACHE_HOME/entra-token/", "cached access tokens and, where no OS secret store is used, refresh tokens: 0600 files in a 0700 directory (ENTRA_TOKEN_CACHE_DIR overrides)"),
    ("~/.azure/", "the Azure CLI's sign-in, read (never written) by the default profile"),
];

/// The roff of our own sections.
fn sections() -> String {
    let mut out = String::from(".SH \"STANDARD INPUT PROTOCOL\"\nWith no command, entra\\-token reads one JSON request on stdin and writes one JSON credential (the token and its expiry) on stdout:\n.PP\n.RS 4\n.nf\necho '{\"resource\":\"graph\"}' | entra\\-token\n.fi\n.RE\n.PP\nRequest fields (every field is optional; an unknown field is an error, except those starting with x\\-):\n");
    for (field, kind, meaning) in request_fields() {
        item(&mut out, &format!("{field} ({kind})"), &meaning);
    }
    out.push_str(".PP\nAn error is a JSON object {\"error\":{\"code\",\"exit_code\",\"message\",\"hint\"}} on stdout, and the same one line on stderr.\n");
    out.push_str(".SH \"EXIT STATUS\"\n");
    for (code, meaning) in [("0", "success"), ("1", "general error or bad input"), ("2", "profile not found"), ("3", "authentication failed (or a sign-in is needed and nobody can answer a prompt)"), ("4", "network error"), ("5", "timeout")] {
        item(&mut out, code, meaning);
    }
    out.push_str(".SH ENVIRONMENT\n");
    for (name, meaning) in ENVIRONMENT {
        item(&mut out, name, meaning);
    }
    out.push_str(".SH FILES\n");
    for (path, meaning) in FILES {
        item(&mut out, path, meaning);
    }
    out
}

/// `entra-token(1)` for `cmd` (the whole CLI), written to `w`.
pub(crate) fn render_top(cmd: clap::Command, w: &mut dyn Write) -> std::io::Result<()> {
    // No `help` subcommand: it has no page of its own to list.
    let man = clap_mangen::Man::new(cmd.disable_help_subcommand(true));
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    man.render_options_section(w)?;
    man.render_subcommands_section(w)?;
    w.write_all(sections().as_bytes())?;
    man.render_version_section(w)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_request_fields_come_from_the_protocol_spec() {
        let fields: Vec<String> = super::request_fields().into_iter().map(|f| f.0).collect();
        let known: Vec<&str> = crate::protocols::native::FIELDS.to_vec();
        assert_eq!(fields, known, "protocol/README.md's request table and the fields the parser knows");
        assert_eq!(super::esc(".x \\ `y`"), "\\&.x \\e y");
    }
}
