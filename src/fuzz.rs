//! Entry points for the fuzz targets in `fuzz/` and the property tests: each feeds
//! arbitrary bytes to one decoder we own. A decoder may refuse its input, but it must
//! return: no panic, no hang, no unbounded allocation. Not part of the tool's interface.

use crate::authority::Target;
use crate::broker::TokenEntry;
use crate::http::Reply;

/// Every target by name, for `fuzz/run.sh` and the property tests.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("native_request", native_request),
    ("config_toml", config_toml),
    ("token_response", token_response),
    ("jwt", jwt),
    ("cache_entry", cache_entry),
    ("url_match", url_match),
    ("kubectl_exec_info", kubectl_exec_info),
    ("git_credential", git_credential),
    ("cargo_request", cargo_request),
];

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// The native protocol's stdin request.
pub fn native_request(data: &[u8]) {
    if let Ok(req) = crate::protocols::native::decode(data) {
        // What the broker does next with a decoded request, minus the I/O.
        if let Some(scopes) = &req.scopes {
            let _ = Target::from_scopes(scopes).map(|t| t.resource_for_v1());
        }
        if let Some(r) = &req.resource {
            let _ = Target::from_resource(r);
        }
    }
}

/// The profiles file, resolved profile by profile (validation included).
pub fn config_toml(data: &[u8]) {
    let Some(s) = text(data) else { return };
    if let Ok(file) = crate::config::parse_file(s) {
        for name in file.profiles.keys() {
            let _ = crate::config::resolve_in(&file, None, Some(name));
        }
    }
}

/// A token endpoint's answer: a 200 body, or an error body with any status.
pub fn token_response(data: &[u8]) {
    let _ = crate::oauth::parse_token_reply(data, "https://127.0.0.1/t", 1_700_000_000);
    let status = data.first().map_or(400, |b| 400 + u16::from(*b % 200));
    let reply = Reply { status, body: data.to_vec(), retry_after: None, date: None, www_authenticate: None };
    let _ = crate::error::one_line(&crate::oauth::error_from_reply(&reply, "https://127.0.0.1/t"));
}

/// JWT decode (header and claims of an access or id token).
pub fn jwt(data: &[u8]) {
    if let Some(s) = text(data) {
        if let Some((_, claims)) = crate::jwt::decode(s) {
            let _ = crate::jwt::claim(&claims, "tid");
        }
    }
}

/// A cached access-token entry as read back from disk.
pub fn cache_entry(data: &[u8]) {
    let _ = serde_json::from_slice::<TokenEntry>(data);
}

/// The URL-scoped release matcher: the first line is a profile's prefix, the rest the URL asked for.
pub fn url_match(data: &[u8]) {
    let Some(s) = text(data) else { return };
    let (prefix, url) = s.split_once('\n').unwrap_or((s, s));
    if crate::urlmatch::matches(prefix, url) {
        let (p, u) = (crate::urlmatch::parse(prefix), crate::urlmatch::parse(url));
        let (p, u) = (p.expect("a matching prefix parses"), u.expect("a matching url parses"));
        assert!(p.host == u.host && p.port == u.port, "matched across hosts or ports: {prefix:?} {url:?}");
        assert!(!u.host.contains('@') && !u.segments.iter().any(|s| s == ".."), "matched a userinfo or .. url: {url:?}");
    }
}

/// kubectl's KUBERNETES_EXEC_INFO.
pub fn kubectl_exec_info(data: &[u8]) {
    let _ = crate::protocols::kubectl::decode(data);
}

/// git's credential request lines; what decodes must re-form a URL without line breaks.
pub fn git_credential(data: &[u8]) {
    if let Ok(req) = crate::protocols::git::decode(data) {
        if let Some(url) = req.url() {
            assert!(!url.contains(['\n', '\0']), "a decoded url carries a line break or NUL: {url:?}");
            let _ = crate::urlmatch::parse(&url);
        }
    }
}

/// One line of cargo's credential-provider protocol, with its config args.
pub fn cargo_request(data: &[u8]) {
    if let Ok(req) = crate::protocols::cargo::decode(data) {
        let _ = crate::protocols::cargo::parse_args(&req.args);
        let _ = crate::urlmatch::parse(crate::protocols::cargo::index_url(&req.registry.index_url));
    }
}
