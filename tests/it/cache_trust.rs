//! A cached token answers only the request it was minted for, whatever its file is called:
//! another local user who can rename files in a shared cache directory (or swap the whole
//! directory) must never make `get-token -r graph` answer with an ARM token.

use crate::support;
use crate::support::{MockAuthority, Sandbox, run_with_stdin, stderr};
use std::path::{Path, PathBuf};
use std::process::Command;

const TENANT: &str = "contoso.test";
const APP: &str = "77777777-7777-7777-7777-777777777777";
const SECRET: &str = "trust~secret~value";

fn setup() -> (MockAuthority, Sandbox) {
    support::client_credentials_setup(TENANT, APP, SECRET)
}

fn get(sb: &Sandbox, resource: &str, cache: &Path) -> Command {
    let mut c = sb.cmd();
    c.env("CI_SECRET", SECRET).env("ENTRA_TOKEN_CACHE_DIR", cache).args(["get-token", "-v", "-p", "ci", "-r", resource, "--timeout", "20s"]);
    c
}

/// Runs `get-token -r resource` with the cache at `cache`: the token printed and stderr.
fn token(sb: &Sandbox, resource: &str, cache: &Path) -> (String, String) {
    let out = run_with_stdin(get(sb, resource, cache), "");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    (String::from_utf8_lossy(&out.stdout).trim().to_string(), stderr(&out))
}

/// The access-token entry in `cache` whose resource starts with `resource`.
fn entry_for(cache: &Path, resource: &str) -> PathBuf {
    for e in std::fs::read_dir(cache).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("at-") && name.ends_with(".json") {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            if v["resource"].as_str().is_some_and(|r| r.starts_with(resource)) {
                return p;
            }
        }
    }
    panic!("no entry for {resource} in {}", cache.display());
}

#[test]
fn an_entry_renamed_onto_another_requests_name_is_a_miss() {
    let (mock, sb) = setup();
    let cache = sb.path("cache");
    let (arm, _) = token(&sb, "arm", &cache);
    let (graph, _) = token(&sb, "graph", &cache);
    assert_ne!(arm, graph);
    // Another user who can rename files in the directory puts the ARM entry under graph's name.
    let graph_entry = entry_for(&cache, "https://graph.microsoft.com");
    std::fs::rename(entry_for(&cache, "https://management.azure.com"), &graph_entry).unwrap();
    // `status` lists no token under a name that is not its own.
    let listed = status(&sb, &cache);
    assert!(!listed.contains("management.azure.com"), "status lists the misplaced ARM token: {listed}");
    let before = mock.token_requests();
    let (answer, err) = token(&sb, "graph", &cache);
    assert_ne!(answer, arm, "the ARM token answered a request for graph; stderr: {err}");
    assert_eq!(mock.token_requests(), before + 1, "a graph token is fetched anew");
    assert!(err.contains("stored for another request"), "-v says why the entry was not served: {err}");
    // The entry under graph's name is graph's again, and answers from the cache.
    let (again, err) = token(&sb, "graph", &cache);
    assert_eq!(again, answer, "{err}");
    assert_eq!(mock.token_requests(), before + 1);
    assert!(status(&sb, &cache).contains("graph.microsoft.com"), "status lists the graph token");
}

fn status(sb: &Sandbox, cache: &Path) -> String {
    let mut c = sb.cmd();
    c.env("ENTRA_TOKEN_CACHE_DIR", cache).args(["status", "--output", "json"]);
    let out = run_with_stdin(c, "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_swapped_cache_directory_answers_only_what_its_entries_were_minted_for() {
    let (mock, sb) = setup();
    let cache = sb.path("cache");
    let other = sb.path("other");
    let (graph, _) = token(&sb, "graph", &cache);
    // A second directory of ours holding an ARM token, planted under graph's name, is
    // swapped in for the cache directory.
    let (arm, _) = token(&sb, "arm", &other);
    std::fs::rename(entry_for(&other, "https://management.azure.com"), other.join(entry_for(&cache, "https://graph.microsoft.com").file_name().unwrap())).unwrap();
    std::fs::rename(&cache, sb.path("cache.away")).unwrap();
    std::fs::rename(&other, &cache).unwrap();
    let before = mock.token_requests();
    let (answer, err) = token(&sb, "graph", &cache);
    assert_ne!(answer, arm, "the ARM token answered a request for graph; stderr: {err}");
    assert_ne!(answer, graph);
    assert_eq!(mock.token_requests(), before + 1, "{err}");
}

/// The cache directory's path, walked from `/`: inside a directory others can change
/// (sticky like `/tmp`, or another user's), every component must be a real directory of
/// ours (or root's) that nobody else can change; a link there is refused, since another
/// user could point it anywhere.
#[cfg(unix)]
mod directories {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A uid with no passwd entry and no files of its own.
    const STRANGER: u32 = 54322;

    fn is_root() -> bool {
        // SAFETY: geteuid cannot fail.
        unsafe { libc::geteuid() == 0 }
    }

    /// `shared/`: world-writable and sticky, as `/tmp` is.
    fn shared(sb: &Sandbox) -> PathBuf {
        let d = sb.path("shared");
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777)).unwrap();
        d
    }

    /// Runs get-token with the cache at `cache`, expecting a refusal (exit 1, no token, no
    /// request to the authority); returns stderr.
    fn refused(mock: &MockAuthority, sb: &Sandbox, cache: &Path) -> String {
        let out = run_with_stdin(get(sb, "graph", cache), "");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "stderr: {err}");
        assert!(out.stdout.is_empty(), "{err}");
        assert_eq!(mock.token_requests(), 0, "a token was fetched for a cache it could only put in a place others control: {err}");
        err
    }

    #[test]
    fn a_link_in_a_shared_directory_is_refused_even_to_a_directory_of_ours() {
        let (mock, sb) = setup();
        let mine = sb.path("mine");
        std::fs::create_dir(&mine).unwrap();
        std::fs::set_permissions(&mine, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = shared(&sb).join("cache");
        std::os::unix::fs::symlink(&mine, &link).unwrap();
        let err = refused(&mock, &sb, &link);
        assert!(err.contains("symbolic link") && err.contains("others can change") && err.contains("directory of your own"), "{err}");
        // The same link in a directory only we can change is followed (as ~/.cache may be a link).
        let ours = sb.path("cache-link");
        std::os::unix::fs::symlink(&mine, &ours).unwrap();
        let (_, err) = token(&sb, "graph", &ours);
        assert!(std::fs::read_dir(&mine).unwrap().count() >= 1, "nothing stored through the link: {err}");
    }

    #[test]
    fn a_directory_of_another_user_on_the_way_is_refused() {
        if !is_root() {
            return support::skip::not_here("chown to another uid needs root");
        }
        let (mock, sb) = setup();
        let theirs = shared(&sb).join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(&theirs, Some(STRANGER), Some(STRANGER)).unwrap();
        let cache = theirs.join("cache");
        let err = refused(&mock, &sb, &cache);
        assert!(err.contains(&format!("owned by uid {STRANGER}")) && err.contains(&theirs.display().to_string()), "{err}");
        assert!(!cache.exists(), "created the cache inside another user's directory");
    }

    #[test]
    fn a_directory_others_can_write_on_the_way_is_refused() {
        let (mock, sb) = setup();
        let open = shared(&sb).join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let cache = open.join("cache");
        let err = refused(&mock, &sb, &cache);
        assert!(err.contains("permissions 777") && err.contains(&open.display().to_string()), "{err}");
        // Fixed as the message says, the same path works.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (_, err) = token(&sb, "graph", &cache);
        assert!(cache.join(".").exists(), "{err}");
    }
}

/// A registry's exchanged token answers only that registry and that Entra request: one
/// renamed onto another registry's name is a miss (a new exchange), never an answer.
#[test]
fn a_registry_token_renamed_onto_another_registrys_name_is_a_miss() {
    use crate::docker::MockRegistry;
    let (mock, sb) = setup();
    let registry = MockRegistry::start(None, mock.tenant_id(TENANT));
    sb.write_config(&support::CcProfile::new("ci", &mock.url(), TENANT, APP).with("urls = [\"a.azurecr.io\", \"b.azurecr.io\"]\n").toml());
    let exchange = format!("{}/oauth2/exchange", registry.server.url());
    let get = |server: &str| {
        let mut c = sb.tool_with_links(sb.link("docker-credential-entra-token"));
        c.env("CI_SECRET", SECRET).env("ENTRA_TOKEN_ACR_EXCHANGE_URL", &exchange).env("ENTRA_TOKEN_VERBOSE", "1").arg("get");
        let out = run_with_stdin(c, server);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (v["Secret"].as_str().unwrap().to_string(), stderr(&out))
    };
    let cache = sb.path("cache");
    // Each registry's entry is the one its first answer added (a sealed entry names nothing).
    let (a, _) = get("a.azurecr.io");
    let entry_a = crate::docker::registry_entries(&cache);
    let (b, _) = get("b.azurecr.io");
    let entry_b: Vec<_> = crate::docker::registry_entries(&cache).into_iter().filter(|p| !entry_a.contains(p)).collect();
    assert_ne!(a, b);
    assert_eq!((entry_a.len(), entry_b.len()), (1, 1), "one core entry per registry");
    std::fs::rename(&entry_a[0], &entry_b[0]).unwrap();
    let (answer, err) = get("b.azurecr.io");
    assert_ne!(answer, a, "registry a's token answered registry b: {err}");
    assert_eq!(registry.state().exchanges.len(), 3, "b's token is exchanged anew: {err}");
}

/// A registry's refresh token and the Entra token it was exchanged for are entries of one
/// shape, told apart only by their binding: each renamed onto the other's name is a miss.
/// The bearer request never answers with the registry's token, and the registry is never
/// handed the ARM token (which would let it act as us).
#[test]
fn a_registry_token_and_a_bearer_token_never_answer_for_each_other() {
    use crate::docker::{MockRegistry, registry_entries};
    let (mock, sb) = setup();
    let registry = MockRegistry::start(None, mock.tenant_id(TENANT));
    sb.write_config(&support::CcProfile::new("ci", &mock.url(), TENANT, APP).with("urls = [\"a.azurecr.io\"]\n").toml());
    let exchange = format!("{}/oauth2/exchange", registry.server.url());
    let docker_get = || {
        let mut c = sb.tool_with_links(sb.link("docker-credential-entra-token"));
        c.env("CI_SECRET", SECRET).env("ENTRA_TOKEN_ACR_EXCHANGE_URL", &exchange).env("ENTRA_TOKEN_VERBOSE", "1").arg("get");
        let out = run_with_stdin(c, "a.azurecr.io");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (v["Secret"].as_str().unwrap().to_string(), stderr(&out))
    };
    let cache = sb.path("cache");
    let (rt, _) = docker_get();
    let acr = registry_entries(&cache);
    assert_eq!(acr.len(), 1, "{acr:?}");
    let arm = entry_for(&cache, "https://management.azure.com");
    assert_ne!(acr[0], arm);
    // The registry's entry on the ARM token's name: get-token answers a new Entra token.
    std::fs::copy(&acr[0], &arm).unwrap();
    let (token, err) = token(&sb, "https://management.azure.com/", &cache);
    assert_ne!(token, rt, "the registry's refresh token answered a bearer request: {err}");
    assert_eq!(support::jwt_claims(&token).unwrap()["aud"].as_str().map(|a| a.trim_end_matches('/')), Some("https://management.azure.com"), "{err}");
    assert!(err.contains("stored for another request (token type)"), "{err}");
    assert_eq!(mock.token_requests(), 2, "{err}");
    // The ARM token's entry on the registry's name: a new exchange, never the ARM token.
    std::fs::copy(&arm, &acr[0]).unwrap();
    let (answer, err) = docker_get();
    assert_ne!(answer, token, "the ARM token was handed to the registry: {err}");
    assert!(err.contains("stored for another request (token type)"), "{err}");
    assert_eq!(registry.state().exchanges.len(), 2, "{err}");
}

/// `logout` leaves no `.lock` sidecar of what it removed (an empty file named after the
/// entry's key, which says a token was cached for it), while another profile's entries keep
/// theirs; `logout --all` leaves none.
#[test]
fn logout_leaves_no_lock_of_the_entries_it_removed() {
    let (mock, sb) = setup();
    // Another app: a profile with the same identity shares ci's entries, and its logout removes them.
    const OTHER_APP: &str = "77777777-7777-7777-7777-777777777778";
    mock.add_app(OTHER_APP, Some(SECRET));
    sb.write_config(&format!("{}\n{}", support::CcProfile::new("ci", &mock.url(), TENANT, APP).toml(), support::CcProfile::new("other", &mock.url(), TENANT, OTHER_APP).toml()));
    let cache = sb.path("cache");
    token(&sb, "arm", &cache);
    token(&sb, "graph", &cache);
    let mut c = sb.cmd();
    c.env("CI_SECRET", SECRET).env("ENTRA_TOKEN_CACHE_DIR", &cache).args(["get-token", "-p", "other", "-r", "api://other-resource"]);
    assert_eq!(run_with_stdin(c, "").status.code(), Some(0));
    let names = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    };
    let locks = |names: &[String]| names.iter().filter(|n| n.ends_with(".lock")).cloned().collect::<Vec<_>>();
    assert_eq!(locks(&names()).len(), 3, "{:?}", names());
    let logout = |args: &[&str]| {
        let mut c = sb.cmd();
        c.env("ENTRA_TOKEN_CACHE_DIR", &cache).arg("logout").args(args);
        let out = run_with_stdin(c, "");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    };
    logout(&["-p", "ci"]);
    let left = names();
    for lock in locks(&left) {
        assert!(left.contains(&lock.trim_end_matches(".lock").to_string()), "{lock} outlived its entry: {left:?}");
    }
    assert_eq!(left.iter().filter(|n| n.starts_with("at-") && n.ends_with(".lock")).count(), 1, "the other profile's lock stays: {left:?}");
    logout(&["--all"]);
    assert!(locks(&names()).is_empty(), "{:?}", names());
}
