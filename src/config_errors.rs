//! One short line for a config file that does not parse: where (line, profile), what, and the
//! fix, never a value from the file (a secret pasted in must not reach a terminal or a log).
//! The TOML parser's own rendering quotes the offending line and serde's lists every key.

/// Keys that would hold a secret and their replacement: secrets are never read from the file.
const SECRET_KEYS: &[(&str, &str)] = &[
    ("client_secret", "client_secret_env = \"VARIABLE\" or client_secret_file = \"/path/to/file\""),
    ("secret", "client_secret_env = \"VARIABLE\" or client_secret_file = \"/path/to/file\""),
    ("password", "password_env = \"VARIABLE\" or password_file = \"/path/to/file\""),
    ("certificate_password", "certificate_password_env = \"VARIABLE\" (or decrypt the key once into a 0600 file)"),
];

/// Whether a key someone wrote looks like it holds a secret value itself (not its name).
fn secret_like(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace('-', "_");
    let named = k.ends_with("_env") || k.ends_with("_file") || k.ends_with("_path");
    !named && ["secret", "password", "passwd", "token", "assertion", "private_key", "pfx"].iter().any(|w| k.contains(w))
}

/// The advice for a secret-like key.
fn secret_advice(key: &str, profile: Option<&str>) -> String {
    let k = key.to_ascii_lowercase().replace('-', "_");
    let fix = SECRET_KEYS.iter().find(|(name, _)| *name == k).map(|(_, fix)| (*fix).to_string()).unwrap_or_else(|| {
        if k.contains("token") || k.contains("assertion") {
            let who = profile.map(|p| format!(" -p {p}")).unwrap_or_default();
            format!("sign in with `entra-token login{who}` (refresh tokens are kept for you), or name client_secret_env / client_secret_file")
        } else if k.contains("password") || k.contains("passwd") {
            "password_env = \"VARIABLE\" or password_file = \"/path/to/file\"".to_string()
        } else {
            "client_secret_env = \"VARIABLE\" or client_secret_file = \"/path/to/file\"".to_string()
        }
    });
    format!("{}`{key}` would hold a secret, and secrets are never read from the config file (value not shown); remove it and use {fix}", place(profile))
}

fn place(profile: Option<&str>) -> String {
    profile.map(|p| format!("profile '{p}': ")).unwrap_or_default()
}

/// 1-based line of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1
}

/// The `[profiles.NAME]` table that encloses line `line` (1-based).
fn profile_at(text: &str, line: usize) -> Option<String> {
    text.lines().take(line).filter_map(|l| l.trim().strip_prefix("[profiles.").and_then(|r| r.split(']').next())).last().map(|n| n.trim().trim_matches('"').to_string())
}

/// The key of the `key = …` line at or above line `line` (an unclosed string is reported
/// where the file ends, below the key that opened it).
fn key_on_line(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let last = line.min(lines.len());
    lines[..last].iter().rev().find_map(|l| {
        let (key, _) = l.split_once('=')?;
        let key = key.trim().trim_matches(|c| c == '"' || c == '\'');
        (!key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))).then(|| key.rsplit('.').next().unwrap_or(key).to_string())
    })
}

/// Every token that appears on the value side of a line of the file: whatever a message says
/// that is one of these is replaced, so no value (secret or not) is echoed.
fn values(text: &str) -> Vec<&str> {
    let mut out: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('['))
        .flat_map(|l| l.split_once('=').map_or(l, |(_, v)| v).split(|c: char| c.is_whitespace() || "\"',[]{}=#".contains(c)))
        .filter(|t| t.len() >= 3)
        .collect();
    out.sort_by_key(|t| std::cmp::Reverse(t.len()));
    out
}

/// The parser's message with quoted strings and anything from the file's values removed.
/// Backticked parts are the parser's own tokens (`"`, `]`) and are kept.
fn scrub(message: &str, text: &str) -> String {
    let mut out = String::new();
    for (i, part) in message.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        if i % 2 == 1 {
            out.push_str(part);
            continue;
        }
        let mut in_quote = false;
        for c in part.chars() {
            if c == '"' {
                if !in_quote {
                    out.push_str("\"…\"");
                }
                in_quote = !in_quote;
            } else if !in_quote {
                out.push(c);
            }
        }
    }
    for v in values(text) {
        if out.contains(v) {
            out = out.replace(v, "…");
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The text between backticks after `marker` in `message`, e.g. the key in "unknown field `x`".
fn backticked_after<'a>(message: &'a str, marker: &str) -> Option<&'a str> {
    message.split(marker).nth(1)?.split('`').next()
}

/// Known names serde lists after "expected one of".
fn expected(message: &str) -> Vec<&str> {
    message.split("expected").nth(1).map(|r| r.split('`').skip(1).step_by(2).collect()).unwrap_or_default()
}

/// The one-line explanation of `err` for the file `text`.
pub(crate) fn explain(text: &str, err: &toml::de::Error) -> String {
    explain_parts(text, err.message(), err.span())
}

/// [`explain`] from a parser's message and the byte range it points at (toml_edit's errors too).
pub(crate) fn explain_parts(text: &str, message: &str, span: Option<std::ops::Range<usize>>) -> String {
    let line = span.map(|s| line_of(text, s.start));
    let profile = line.and_then(|l| profile_at(text, l));
    let at = line.map(|l| format!("line {l}: ")).unwrap_or_default();
    if let Some(key) = backticked_after(message, "unknown field `") {
        if secret_like(key) {
            return format!("{at}{}", secret_advice(key, profile.as_deref()));
        }
        // A key is echoed only when it looks like a key; a value pasted as a quoted key is not.
        let shown = key.len() <= 40 && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
        if !shown {
            return format!("{at}{}an unknown key (not shown: it does not look like a key name); the keys are listed in docs/profiles.md", place(profile.as_deref()));
        }
        let known = expected(message);
        let what = if profile.is_some() { "key" } else { "top-level key (profiles go under [profiles.NAME])" };
        let hint = match crate::suggest::closest(key, known.iter().copied()) {
            Some(k) => format!(": did you mean '{k}'?"),
            None => "; the keys are listed in docs/profiles.md (`entra-token profile add --help` shows them as flags)".to_string(),
        };
        return format!("{at}{}unknown {what} '{key}'{hint}", place(profile.as_deref()));
    }
    // A syntax or type error on a line that holds a secret: the advice, not the parser's text.
    if let Some(key) = line.and_then(|l| key_on_line(text, l)).filter(|k| secret_like(k)) {
        return format!("{at}{}", secret_advice(&key, profile.as_deref()));
    }
    format!("{at}{}{}", place(profile.as_deref()), scrub(message, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        explain(text, &toml::from_str::<crate::config::ConfigFile>(text).unwrap_err())
    }

    #[test]
    fn a_typo_gets_one_line_with_the_key_meant() {
        let e = err("[profiles.ci]\nflow = \"device-code\"\ntennant = \"contoso.com\"\n");
        assert_eq!(e, "line 3: profile 'ci': unknown key 'tennant': did you mean 'tenant'?");
        let e = err("default_profil = \"ci\"\n");
        assert!(e.contains("'default_profil'") && e.contains("did you mean 'default_profile'?") && !e.contains("ci"), "{e}");
        let e = err("[profiles.ci]\nwhatever_this_is = 1\n");
        assert!(e.contains("unknown key 'whatever_this_is'") && !e.contains("client_secret_env"), "{e}");
    }

    #[test]
    fn no_value_from_the_file_is_ever_echoed() {
        for text in [
            "[profiles.ci]\nclient_secret = \"s3cr3t-VALUE\"\n",
            "[profiles.ci]\npassword = \"s3cr3t-VALUE\"\n",
            "[profiles.ci]\nrefresh_token = \"s3cr3t-VALUE\"\n",
            "[profiles.ci]\ncertificate_password = \"s3cr3t-VALUE\"\n",
            "[profiles.ci]\nclient_secret = s3cr3t-VALUE\n",
            "[profiles.ci]\nclient_secret = \"s3cr3t-VALUE\n",
            "[profiles.ci]\nclient_secret = '''s3cr3t-VALUE\n",
            "[profiles.ci]\nclient_secret = \"\"\"s3cr3t-VALUE\n",
            "[profiles.ci]\nclient_secret = \"\"\"s3cr3t\nVALUE\n",
            "[profiles.ci]\ninteractive = \"s3cr3t-VALUE\"\n",
            "[profiles.ci]\nendpoint = \"s3cr3t-VALUE\"\n",
            "[profiles.ci]\nurls = [\"s3cr3t-VALUE\", 1]\n",
            "[profiles.ci]\ntenant = s3cr3t-VALUE\n",
            "client_secret = \"s3cr3t-VALUE\"\n",
            "[profiles.ci]\nclient_secret_env = \"s3cr3t-VALUE\" x\n",
            "[profiles.ci]\n\"s3cr3t~VALUE.x\" = 1\n",
            "[profiles.ci]\ns3cr3t-VALUE\n",
            "[profiles.ci]\nclient_secret: s3cr3t-VALUE\n",
        ] {
            let e = err(text);
            assert!(!e.contains("s3cr3t") && !e.contains("VALUE"), "{text:?} → {e}");
            assert!(!e.contains('\n') && e.len() < 300, "{e}");
        }
        let e = err("[profiles.ci]\nflow = \"client-credentials\"\nclient_secret = \"s3cr3t\"\n");
        assert!(e.starts_with("line 3: profile 'ci': `client_secret` would hold a secret") && e.contains("client_secret_env") && e.contains("client_secret_file"), "{e}");
        let e = err("[profiles.ci]\npassword = \"s3cr3t\"\n");
        assert!(e.contains("password_env") && e.contains("password_file"), "{e}");
        let e = err("[profiles.ci]\nrefresh_token = \"s3cr3t\"\n");
        assert!(e.contains("entra-token login -p ci"), "{e}");
        let e = err("[profiles.ci]\nclient_secret = s3cr3t\n");
        assert!(e.contains("client_secret_env"), "a syntax error on a secret's line gives the same advice: {e}");
        let e = err("[profiles.ci]\nclient_secret = \"\"\"s3cr3t\nmore\n");
        assert!(e.contains("client_secret_env"), "an unclosed string is blamed on the key that opened it: {e}");
        let e = err("[profiles.ci]\ntenant = \"\"\"x\n");
        assert!(e.contains("`\"`"), "the parser's own tokens stay readable: {e}");
    }
}
