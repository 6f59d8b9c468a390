//! Which profile may answer for a URL. git, cargo, Bazel and Docker tell us the URL they
//! want a credential for; a hostile remote can name any URL, so a token is released only
//! when a profile's `urls` entry matches exactly. Every front end's URL is normalised and
//! checked here, once: https only, the host's case and one trailing dot folded, no
//! userinfo, the default port made explicit, percent-escapes decoded, empty segments
//! (double slashes) dropped, and any path that could mean something else to a server or
//! a client (`.`/`..` segments, backslashes, an escaped `/`, `?` or `#` inside a path
//! segment, control characters) refused outright rather than resolved.

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

/// Parses an https URL (or a bare `host[:port][/path]`, which means https). The query
/// and fragment are not part of the path. None for anything we refuse to match: other
/// schemes, userinfo, bad ports, suspicious segments (see the module comment), non-ASCII
/// or control characters.
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
    let end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let (host, port) = host_port(authority)?;
    // A URL's query and fragment are not its path: the server never sees them as one.
    let path = path.split(['?', '#']).next().unwrap_or("");
    Some(UrlParts { host, port, segments: segments(path)? })
}

/// The same check for a URL given in pieces, as git's credential protocol does:
/// `protocol`, `host` (with an optional `:port`) and a path that git has already
/// percent-decoded. Here a `?` or `#` is part of the path (git took `%3F` out of the
/// URL), so a path holding one is refused instead of being cut there.
pub(crate) fn from_components(protocol: &str, host: &str, decoded_path: Option<&str>) -> Option<UrlParts> {
    if !protocol.eq_ignore_ascii_case("https") || host.chars().any(|c| c.is_control() || c.is_whitespace() || !c.is_ascii() || "/?#\\".contains(c)) {
        return None;
    }
    let (host, port) = host_port(host)?;
    let path = decoded_path.unwrap_or("");
    if path.chars().any(|c| c.is_control()) {
        return None;
    }
    Some(UrlParts { host, port, segments: segments(path)? })
}

/// `host[:port]` → lower-case host without a trailing dot, and the port (443 by default).
fn host_port(authority: &str) -> Option<(String, u16)> {
    if authority.contains(['@', '\\', '/', '?', '#']) {
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
    Some((host, port))
}

/// A path's segments, each percent-decoded; None when any segment is one a server or
/// client could read as something else (`.`, `..`, or holding `/`, `\`, `?`, `#` once
/// decoded, or a `%` left after decoding, which a second decoding would turn into more).
fn segments(path: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for raw in path.split('/').filter(|s| !s.is_empty()) {
        let seg = percent_decode(raw)?;
        if seg == "." || seg == ".." || seg.contains(['/', '\\', '?', '#', '%']) {
            return None;
        }
        out.push(seg);
    }
    Some(out)
}

/// Percent-decodes one path segment; None if it decodes to invalid UTF-8 or control characters.
fn percent_decode(raw: &str) -> Option<String> {
    // form_urlencoded turns '+' into ' '; in a path '+' is literal, so protect it first.
    let protected = raw.replace('+', "%2B");
    let decoded: String = form_urlencoded::parse(format!("x={protected}").as_bytes()).next().map(|(_, v)| v.into_owned())?;
    (!decoded.chars().any(|c| c.is_control() || c == '\u{FFFD}')).then_some(decoded)
}

/// True when `url` falls under `prefix`.
pub(crate) fn matches(prefix: &str, url: &str) -> bool {
    parse(url).is_some_and(|u| under(prefix, &u))
}

/// True when the normalised URL `u` falls under `prefix` (host, port, whole segments).
pub(crate) fn under(prefix: &str, u: &UrlParts) -> bool {
    let Some(p) = parse(prefix) else { return false };
    p.host == u.host && p.port == u.port && u.segments.len() >= p.segments.len() && p.segments.iter().zip(&u.segments).all(|(a, b)| a == b)
}

/// The profile whose `urls` claim `url` (the longest matching prefix wins; ties go to
/// the first profile by name). None: answer nothing.
pub(crate) fn profile_for(url: &UrlParts) -> Result<Option<String>> {
    let file = match config::config_path() {
        Some(p) => config::load_file(&p)?,
        None => ConfigFile::default(),
    };
    Ok(profile_claiming(&file, url))
}

/// `profile_claiming` for a URL string; None when it does not parse.
pub(crate) fn profile_in(file: &ConfigFile, url: &str) -> Option<String> {
    profile_claiming(file, &parse(url)?)
}

pub(crate) fn profile_claiming(file: &ConfigFile, url: &UrlParts) -> Option<String> {
    let mut best: Option<(usize, &String)> = None;
    for (name, p) in &file.profiles {
        for prefix in &p.urls {
            if under(prefix, url) {
                let len = parse(prefix).map(|p| p.segments.len() + 1).unwrap_or(0);
                if best.is_none_or(|(l, _)| len > l) {
                    best = Some((len, name));
                }
            }
        }
    }
    best.map(|(_, n)| n.clone())
}

impl std::fmt::Display for UrlParts {
    /// The normalised URL, for messages (segments re-escaped where they need it).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "https://{}", self.host)?;
        if self.port != 443 {
            write!(f, ":{}", self.port)?;
        }
        write!(f, "/")?;
        // form_urlencoded writes a space as '+' (and a '+' as %2B); a path wants %20.
        let path: Vec<String> = self.segments.iter().map(|s| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")).collect();
        write!(f, "{}", path.join("/"))
    }
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
    fn every_spelling_of_an_escape_is_refused_or_folded() {
        let p = "https://dev.azure.com/contoso/";
        for hostile in [
            "https://dev.azure.com/contoso/%2E%2E/evilorg",
            "https://dev.azure.com/contoso/./x",
            "https://dev.azure.com/contoso%3F/../../evilorg/_git/repo",
            "https://dev.azure.com/contoso\\..\\evilorg",
            "https://dev.azure.com/contoso/%5C..%5Cevilorg",
            "https://dev.azure.com/contoso/%252e%252e/evilorg",
            "https://dev.azure.com\\contoso",
            "https://user:pw@dev.azure.com/contoso/x",
        ] {
            assert!(!matches(p, hostile), "{hostile}");
        }
        // The query and fragment of a real URL are not its path.
        assert!(matches(p, "https://dev.azure.com/contoso?x=/../evil"));
        assert!(!matches(p, "https://dev.azure.com/evil?/contoso"));
        // Double slashes, host case, the default port: one URL.
        assert!(matches(p, "https://DEV.azure.com:443//contoso//x"));
    }

    #[test]
    fn git_paths_are_decoded_paths_so_query_marks_are_refused() {
        let p = "https://dev.azure.com/contoso/";
        let git = |host: &str, path: &str| from_components("https", host, Some(path)).is_some_and(|u| under(p, &u));
        assert!(git("dev.azure.com", "contoso/_git/repo"));
        assert!(git("DEV.AZURE.COM:443", "/contoso//_git/repo"));
        for path in ["contoso?/../../evilorg/_git/repo", "contoso#/../evilorg", "contoso/../evilorg", "contoso/./x", "contoso\\..\\evilorg", "contoso/%2e%2e/evilorg", "contoso/a\nb"] {
            assert!(!git("dev.azure.com", path), "{path}");
        }
        assert!(!git("evil.test@dev.azure.com", "contoso/x"));
        assert!(!git("dev.azure.com/contoso", "x"));
        assert!(from_components("http", "dev.azure.com", Some("contoso")).is_none());
        let u = from_components("https", "h:8443", Some("a b/c+d/é")).unwrap();
        assert_eq!(parse(&u.to_string()), Some(u));
    }

    #[test]
    fn longest_prefix_wins() {
        let f = config::parse_file("[profiles.a]\nflow=\"device-code\"\nurls=[\"https://h/\"]\n[profiles.b]\nflow=\"device-code\"\nurls=[\"https://h/org\"]\n").unwrap();
        assert_eq!(profile_in(&f, "https://h/org/x").as_deref(), Some("b"));
        assert_eq!(profile_in(&f, "https://h/other").as_deref(), Some("a"));
        assert_eq!(profile_in(&f, "https://other/org").as_deref(), None);
    }
}
