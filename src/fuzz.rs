//! Entry points for the fuzz targets in `fuzz/` and the property tests: each feeds
//! arbitrary bytes to one decoder we own. A decoder may refuse its input, but it must
//! return: no panic, no hang, no unbounded allocation. Not part of the tool's interface.

use crate::authority::Target;
use crate::broker::TokenEntry;
use crate::http::Reply;

/// A fuzz target: its name and the decoder it feeds.
pub type FuzzTarget = (&'static str, fn(&[u8]));

/// Every target by name, for `fuzz/run.sh` and the property tests.
pub const TARGETS: &[FuzzTarget] = &[
    ("native_request", native_request),
    ("config_toml", config_toml),
    ("token_response", token_response),
    ("jwt", jwt),
    ("cache_entry", cache_entry),
    ("url_match", url_match),
    ("kubectl_exec_info", kubectl_exec_info),
    ("git_credential", git_credential),
    ("cargo_request", cargo_request),
    ("bazel_request", bazel_request),
    ("docker_request", docker_request),
    ("acr_exchange", acr_exchange),
    ("azure_cli_files", azure_cli_files),
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
    if let Some(s) = text(data)
        && let Some((_, claims)) = crate::jwt::decode(s)
    {
        let _ = crate::jwt::claim(&claims, "tid");
    }
    if let Some(s) = text(data) {
        let _ = crate::jwt::account_claims(s);
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

/// git's credential request lines; what decodes to a URL has no `.`/`..` segment, no
/// control characters, and reads back as itself.
pub fn git_credential(data: &[u8]) {
    if let Ok(req) = crate::protocols::git::decode(data)
        && let Some(url) = req.url()
    {
        assert!(url.segments.iter().all(|s| s != "." && s != ".." && !s.contains(['/', '?', '#', '\\']) && !s.chars().any(char::is_control)), "{url:?}");
        assert_eq!(crate::urlmatch::parse(&url.to_string()).as_ref(), Some(&url), "a git URL must read back as itself");
    }
}

/// One line of cargo's credential-provider protocol, with its config args.
pub fn cargo_request(data: &[u8]) {
    if let Ok(req) = crate::protocols::cargo::decode(data) {
        let _ = crate::protocols::cargo::parse_args(&req.args);
        let _ = crate::urlmatch::parse(crate::protocols::cargo::index_url(&req.registry.index_url));
    }
}

/// Bazel's `{"uri":…}` request, then the URL matcher on what it names.
pub fn bazel_request(data: &[u8]) {
    if let Ok(req) = crate::protocols::bazel::decode(data) {
        let _ = crate::urlmatch::parse(&crate::protocols::bazel::match_url(&req.uri));
    }
}

/// Docker's `get`/`erase` input: one server URL.
pub fn docker_request(data: &[u8]) {
    if let Ok(server) = crate::protocols::docker::decode_server(data) {
        assert!(!server.contains(['\n', '\0']), "a decoded server URL carries a line break or NUL: {server:?}");
        let _ = crate::urlmatch::parse(&server);
    }
}

/// An ACR `/oauth2/exchange` answer (any status).
pub fn acr_exchange(data: &[u8]) {
    let status = if data.first().is_some_and(|b| b % 2 == 0) { 200 } else { 401 };
    let _ = crate::acr::parse_exchange(status, data, "contoso.azurecr.io", 1_700_000_000);
}

/// The Azure CLI's files and output we read: azureProfile.json and `az account get-access-token`.
pub fn azure_cli_files(data: &[u8]) {
    let _ = crate::flows::azure_cli::parse_profile(data, None, "AzureCloud");
    let _ = crate::flows::azure_cli::parse_az_output(data, 1_700_000_000);
}

/// The short, deterministic version of `fuzz/run.sh` that runs in `cargo test`: each
/// target gets its committed seeds, mutations of them and random bytes.
#[cfg(test)]
mod tests {
    use super::TARGETS;

    /// splitmix64: a reproducible stream, so a failure names its seed and iteration.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Fragments that steer mutations toward the decoders' interesting paths.
    const DICT: &[&[u8]] = &[
        b"\"", b"{", b"}", b"[", b"]", b":", b",", b"null", b"true", b"-1", b"1e400", b"18446744073709551616",
        b"\"expires_in\":", b"\"access_token\":", b"\"scopes\":", b"\"v\":", b"[profiles.x]\n", b"=", b"\n", b"\\u0000",
        b"%2e%2e", b"..", b"@", b"://", b"https://", b"http://", b":443", b":0", b".", b"/", b"\xff", b"\xc3\xa9", b"eyJ",
    ];

    fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
        let mut v = input.to_vec();
        for _ in 0..1 + rng.below(4) {
            match rng.below(6) {
                0 if !v.is_empty() => {
                    let i = rng.below(v.len());
                    v[i] ^= 1 << rng.below(8);
                }
                1 if !v.is_empty() => {
                    let i = rng.below(v.len());
                    let n = rng.below(8).min(v.len() - i);
                    v.drain(i..i + n);
                }
                2 => {
                    let i = rng.below(v.len() + 1);
                    let frag = DICT[rng.below(DICT.len())];
                    v.splice(i..i, frag.iter().copied());
                }
                3 if !v.is_empty() => v.truncate(rng.below(v.len())),
                4 if !v.is_empty() => {
                    let (a, b) = (rng.below(v.len()), rng.below(v.len()));
                    let (a, b) = (a.min(b), a.max(b));
                    let chunk = v[a..b].to_vec();
                    let i = rng.below(v.len() + 1);
                    v.splice(i..i, chunk);
                }
                _ => v.push(rng.next() as u8),
            }
        }
        v
    }

    fn seeds(target: &str) -> Vec<Vec<u8>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds").join(target);
        let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
            .map(|rd| rd.filter_map(|e| std::fs::read(e.ok()?.path()).ok()).collect())
            .unwrap_or_default();
        assert!(!out.is_empty(), "no seeds in {}", dir.display());
        out.push(Vec::new());
        out
    }

    #[test]
    fn every_decoder_survives_mutated_and_random_input() {
        const ROUNDS: usize = 3000;
        for (name, target) in TARGETS {
            let seeds = seeds(name);
            let mut rng = Rng(0xE27A_70CE ^ name.len() as u64);
            for s in &seeds {
                target(s);
            }
            for i in 0..ROUNDS {
                let input = if i % 10 == 0 {
                    (0..rng.below(256)).map(|_| rng.next() as u8).collect()
                } else {
                    let base = &seeds[rng.below(seeds.len())];
                    mutate(&mut rng, base)
                };
                let result = std::panic::catch_unwind(|| target(&input));
                assert!(result.is_ok(), "{name} panicked on round {i}, input {:?}", String::from_utf8_lossy(&input));
            }
        }
    }

    #[test]
    fn every_target_has_seeds_and_a_fuzz_binary() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        for (name, _) in TARGETS {
            assert!(!seeds(name).is_empty());
            assert!(root.join(format!("fuzz_targets/{name}.rs")).exists(), "no fuzz/fuzz_targets/{name}.rs");
            assert!(manifest.contains(&format!("name = \"{name}\"")), "fuzz/Cargo.toml lacks [[bin]] {name}");
        }
    }
}
