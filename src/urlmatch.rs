//! Which profile may answer for a URL. git, cargo, Bazel and Docker tell us the URL they
//! want a credential for; a hostile remote can name any URL, so a token is released only
//! when a profile's `urls` entry matches exactly: https, the same host (case and a
//! trailing dot folded, no userinfo), the same port, and a path prefix on a segment
//! boundary with no `..` escapes.

use crate::config::{self, ConfigFile};
use crate::error::Result;

/// A parsed https URL, normalised for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UrlParts {
    pub host: String,
    pub port: u16,
    /// Decoded path segments, without empty ones.
    pub segments: Vec<String>,
}

/// Parses an https URL (or a bare `host[:port][/path]`, which means https). None for
/// anything we refuse to match: other schemes, userinfo, bad ports, `.`/`..` segments,
/// non-ASCII or control characters.
pub(crate) fn parse(url: &str) -> Option<UrlParts> {
    let url = url.trim();
    if url.is_empty() || url.chars().any(|c| c.is_control() || c.is_whitespace() || !c.is_ascii()) {
        return None;
    }
    let rest = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => rest,
        Some(_) => return None,
        None => url,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.contains('@') || authority.contains('\\') {
        return None;
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(']') || h.ends_with(']') => (h, p.parse::<u16>().ok().filter(|p| *p != 0)?),
        _ => (authority, 443),
    };
    // One trailing dot is the same (fully qualified) host; `host..` is not a host at all.
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(c)) || host.contains("..") || host.ends_with('.') {
        return None;
    }
    let path = path.split(['?', '#']).next().unwrap_or("");
    let mut segments = Vec::new();
    for raw in path.split('/').filter(|s| !s.is_empty()) {
        let seg: String = form_urlencoded_decode(raw)?;
        if seg == "." || seg == ".." || seg.contains('/') || seg.contains('\\') {
            return None;
        }
        segments.push(seg);
    }
    Some(UrlParts { host, port, segments })
}

/// Percent-decodes one path segment; None if it decodes to invalid UTF-8 or control characters.
fn form_urlencoded_decode(raw: &str) -> Option<String> {
    // form_urlencoded turns '+' into ' '; in a path '+' is literal, so protect it first.
    let protected = raw.replace('+', "%2B");
    let decoded: String = form_urlencoded::parse(format!("x={protected}").as_bytes()).next().map(|(_, v)| v.into_owned())?;
    (!decoded.chars().any(|c| c.is_control() || c == '\u{FFFD}')).then_some(decoded)
}

/// True when `url` falls under `prefix`.
pub(crate) fn matches(prefix: &str, url: &str) -> bool {
    let (Some(p), Some(u)) = (parse(prefix), parse(url)) else {
        return false;
    };
    p.host == u.host && p.port == u.port && u.segments.len() >= p.segments.len() && p.segments.iter().zip(&u.segments).all(|(a, b)| a == b)
}

/// The profile whose `urls` claim `url` (the longest matching prefix wins; ties go to
/// the first profile by name). None: answer nothing.
pub(crate) fn profile_for_url(url: &str) -> Result<Option<String>> {
    let file = match config::config_path() {
        Some(p) => config::load_file(&p)?,
        None => ConfigFile::default(),
    };
    Ok(profile_in(&file, url))
}

pub(crate) fn profile_in(file: &ConfigFile, url: &str) -> Option<String> {
    let mut best: Option<(usize, &String)> = None;
    for (name, p) in &file.profiles {
        for prefix in &p.urls {
            if matches(prefix, url) {
                let len = parse(prefix).map(|p| p.segments.len() + 1).unwrap_or(0);
                if best.is_none_or(|(l, _)| len > l) {
                    best = Some((len, name));
                }
            }
        }
    }
    best.map(|(_, n)| n.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_host_port_and_segment_prefix() {
        let p = "https://dev.azure.com/contoso/";
        assert!(matches(p, "https://dev.azure.com/contoso/repo/_git/x"));
        assert!(matches(p, "https://DEV.Azure.com./contoso"));
        assert!(matches(p, "dev.azure.com/contoso/x"));
        assert!(!matches(p, "https://dev.azure.com/contosoevil/x"));
        assert!(!matches(p, "https://dev.azure.com/other"));
        assert!(!matches(p, "http://dev.azure.com/contoso/x"));
        assert!(!matches(p, "https://dev.azure.com:8443/contoso/x"));
        assert!(!matches(p, "https://dev.azure.com.evil.test/contoso/x"));
        assert!(!matches(p, "https://dev.azure.com@evil.test/contoso/x"));
        assert!(!matches(p, "https://evil.test@dev.azure.com/contoso/x"));
        assert!(!matches(p, "https://dev.azure.com/contoso/../other"));
        assert!(!matches(p, "https://dev.azure.com/contoso/%2e%2e/other"));
        assert!(!matches(p, "https://dev.azure.com/contoso%2F..%2Fother"));
        assert!(!matches(p, "ftp://dev.azure.com/contoso/"));
        assert!(!matches(p, "https://dév.azure.com/contoso/"));
        assert!(!matches(p, "https://dev.azure.com../contoso/"));
        assert!(matches("https://dev.azure.com:443/contoso", "https://dev.azure.com/contoso/a"));
    }

    #[test]
    fn longest_prefix_wins() {
        let f = config::parse_file("[profiles.a]\nflow=\"device-code\"\nurls=[\"https://h/\"]\n[profiles.b]\nflow=\"device-code\"\nurls=[\"https://h/org\"]\n").unwrap();
        assert_eq!(profile_in(&f, "https://h/org/x").as_deref(), Some("b"));
        assert_eq!(profile_in(&f, "https://h/other").as_deref(), Some("a"));
        assert_eq!(profile_in(&f, "https://other/org").as_deref(), None);
    }
}
