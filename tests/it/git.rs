//! The git credential helper, proven with the real git (2.46+ for `authtype`): `git
//! credential fill` with and without the Bearer capability, nothing for a URL no profile
//! claims, `reject` dropping the cached token, and a real `ls-remote` and `clone` over
//! HTTPS from a smart-HTTP server (`git http-backend` as CGI) that demands the token.

use crate::support;

use base64::Engine as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use crate::support::http::{Body, Reply, Request, Server};
use crate::support::{MockAuthority, Sandbox, TestCa, jwt_claims, run, run_with_stdin, text};

const TENANT: &str = "contoso.test";
const APP: &str = "44444444-4444-4444-4444-444444444444";
const SECRET: &str = "git~secret";
const AZURE_DEVOPS: &str = "499b84ac-1321-427f-aa17-267ca6975798";

/// A git new enough for `capability[]=authtype` (2.46+), or None with a printed reason.
fn git() -> Option<PathBuf> {
    for candidate in ["/usr/local/bin/git", "/usr/bin/git"] {
        let Ok(out) = Command::new(candidate).arg("--version").output() else { continue };
        let v = String::from_utf8_lossy(&out.stdout).to_string();
        let nums: Vec<u32> = v.trim().trim_start_matches("git version ").split('.').take(2).filter_map(|n| n.parse().ok()).collect();
        if nums.len() == 2 && (nums[0], nums[1]) >= (2, 46) {
            return Some(PathBuf::from(candidate));
        }
    }
    support::skip::not_here("no git >= 2.46 here (CI's image has /usr/local/bin/git 2.47)");
    None
}

struct Fixture {
    sb: Sandbox,
    git: PathBuf,
    mock: Arc<MockAuthority>,
    ca_pem: PathBuf,
    server: Server,
    /// Authorization headers the git server saw.
    seen: Arc<Mutex<Vec<String>>>,
    links: PathBuf,
}

impl Fixture {
    /// `https://127.0.0.1:PORT/org/repo.git`
    fn repo_url(&self) -> String {
        format!("{}/org/repo.git", self.server.url())
    }

    fn host(&self) -> String {
        self.server.url().trim_start_matches("https://").to_string()
    }

    /// The real git with a sealed config: no system or user helpers, no prompts, our CA,
    /// the helper link on PATH, and `credential.helper = entra-token` (a bare name).
    fn git(&self) -> Command {
        let mut c = self.sb.tool(&self.git);
        let path = format!("{}:{}", self.links.display(), crate::support::env::path().to_string_lossy());
        for v in ["GIT_ASKPASS", "SSH_ASKPASS", "GIT_CONFIG", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT", "GIT_DIR", "GIT_WORK_TREE"] {
            c.env_remove(v);
        }
        c.env("PATH", path)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", self.sb.path("gitconfig"))
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_SSL_CAINFO", &self.ca_pem)
            .env("GIT_SECRET", SECRET)
            .args(["-c", "credential.helper=", "-c", "credential.helper=entra-token", "-c", "credential.useHttpPath=true"]);
        c
    }

    fn fill(&self, input: &str) -> Output {
        let mut c = self.git();
        c.args(["credential", "fill"]);
        run_with_stdin(c, input)
    }
}

fn fixture() -> Option<Fixture> {
    let git = git()?;
    let (mock, sb, ca, ca_pem) = crate::support::feed_setup(TENANT, APP, SECRET);
    let repos = make_repo(&sb, &git);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = git_server(&ca, &mock, repos, &git, Arc::clone(&seen));
    sb.write_config(&format!(
        r#"
[profiles.azdo]
tenant = "{TENANT}"
client_id = "{APP}"
flow = "client-credentials"
client_secret_env = "GIT_SECRET"
authority = "{authority}"
resource = "{AZURE_DEVOPS}"
urls = ["{server}/org/"]

# Azure DevOps's own host: Azure DevOps is the default resource there.
[profiles.devops]
tenant = "{TENANT}"
client_id = "{APP}"
flow = "client-credentials"
client_secret_env = "GIT_SECRET"
authority = "{authority}"
urls = ["https://dev.azure.com/contoso/"]

# Another git server with no `resource`: no token is guessed for it.
[profiles.forge]
tenant = "{TENANT}"
client_id = "{APP}"
flow = "client-credentials"
client_secret_env = "GIT_SECRET"
authority = "{authority}"
urls = ["https://git.contoso.test/"]
"#,
        authority = mock.url(),
        server = server.url(),
    ));
    // The multi-call link git finds as `git-credential-entra-token` on PATH.
    let links = sb.path("bin");
    let mut c = sb.cmd();
    c.args(["setup", "links", "--apply", "--only", "git-credential-entra-token"]).arg(&links);
    let out = run(c);
    assert!(out.status.success(), "setup links failed: {}", text(&out.stderr));
    Some(Fixture { sb, git, mock, ca_pem, server, seen, links })
}

/// A bare repository `repos/repo.git` with one commit holding `hello.txt`.
fn make_repo(sb: &Sandbox, git: &Path) -> PathBuf {
    let repos = sb.path("repos");
    let work = sb.path("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("hello.txt"), "hello from the test server\n").unwrap();
    let g = |dir: &Path, args: &[&str]| {
        let out = Command::new(git)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.test")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.test")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
    };
    g(&work, &["init", "-q", "-b", "main"]);
    g(&work, &["add", "hello.txt"]);
    g(&work, &["commit", "-q", "-m", "first"]);
    std::fs::create_dir_all(&repos).unwrap();
    g(&repos, &["clone", "-q", "--bare", work.to_str().unwrap(), "repo.git"]);
    repos
}

/// Smart HTTP under `/org/`: `git http-backend` as a CGI, behind a check that the request
/// carries a token the mock authority issued (Bearer, or Basic with it as the password).
fn git_server(ca: &TestCa, mock: &Arc<MockAuthority>, repos: PathBuf, git: &Path, seen: Arc<Mutex<Vec<String>>>) -> Server {
    let mock = Arc::clone(mock);
    let git = git.to_path_buf();
    let handler = Arc::new(move |req: Request| {
        let auth = req.header("authorization").unwrap_or("").to_string();
        seen.lock().unwrap().push(auth.clone());
        let token = match auth.split_once(' ') {
            Some(("Bearer", t)) => t.to_string(),
            Some(("Basic", b)) => base64::engine::general_purpose::STANDARD
                .decode(b)
                .ok()
                .and_then(|d| String::from_utf8(d).ok())
                .and_then(|s| s.split_once(':').map(|(_, p)| p.to_string()))
                .unwrap_or_default(),
            _ => String::new(),
        };
        if token.is_empty() || !mock.issued_access_tokens().contains(&token) {
            return Reply::new(401, "text/plain", "authentication required\n").with_header("WWW-Authenticate", "Basic realm=\"test\"");
        }
        let Some(path_info) = req.path.strip_prefix("/org") else {
            return Reply::new(404, "text/plain", "not found\n");
        };
        cgi(&git, &repos, &req, path_info)
    });
    Server::start(handler, Some(ca.server_config()))
}

fn cgi(git: &Path, repos: &Path, req: &Request, path_info: &str) -> Reply {
    let query: Vec<String> = req.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut c = Command::new(git);
    c.arg("http-backend")
        .env_clear()
        .env("GIT_PROJECT_ROOT", repos)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("REQUEST_METHOD", &req.method)
        .env("PATH_INFO", path_info)
        .env("QUERY_STRING", query.join("&"))
        .env("CONTENT_TYPE", req.header("content-type").unwrap_or(""))
        .env("CONTENT_LENGTH", req.body.len().to_string())
        .env("REMOTE_USER", "test")
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(p) = req.header("git-protocol") {
        c.env("GIT_PROTOCOL", p);
    }
    if let Some(e) = req.header("content-encoding") {
        c.env("HTTP_CONTENT_ENCODING", e);
    }
    let mut child = c.spawn().expect("spawn git http-backend");
    let mut stdin = child.stdin.take().unwrap();
    let body = req.body.clone();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let out = child.wait_with_output().expect("git http-backend");
    let _ = writer.join();
    let split = out.stdout.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, 4)).or_else(|| out.stdout.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let Some((end, sep)) = split else {
        return Reply::new(500, "text/plain", format!("bad CGI output: {}", text(&out.stderr)));
    };
    let head = text(&out.stdout[..end]);
    let mut reply = Reply { status: 200, headers: Vec::new(), body: Body::Bytes(out.stdout[end + sep..].to_vec()) };
    for line in head.lines() {
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("status") {
                reply.status = v.trim().split(' ').next().and_then(|s| s.parse().ok()).unwrap_or(500);
            } else {
                reply.headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
    }
    reply
}

fn field<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines().find_map(|l| l.strip_prefix(&format!("{key}=")))
}

#[test]
fn credential_fill_answers_bearer_when_git_offers_authtype() {
    let Some(f) = fixture() else { return };
    let out = f.fill(&format!("capability[]=authtype\nprotocol=https\nhost={}\npath=org/repo.git\n\n", f.host()));
    let so = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(field(&so, "authtype"), Some("Bearer"), "{so}");
    let token = field(&so, "credential").expect("a credential");
    assert!(f.mock.issued_access_tokens().contains(&token.to_string()));
    assert_eq!(jwt_claims(token).unwrap()["aud"], AZURE_DEVOPS, "the profile's resource");
    assert!(field(&so, "password").is_none(), "{so}");
}

#[test]
fn credential_fill_answers_a_password_without_authtype_and_reject_drops_it() {
    let Some(f) = fixture() else { return };
    let input = format!("protocol=https\nhost={}\npath=org/repo.git\n\n", f.host());
    let out = f.fill(&input);
    let so = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(field(&so, "username"), Some("entra-token"));
    let token = field(&so, "password").expect("a password").to_string();
    assert!(f.mock.issued_access_tokens().contains(&token));
    let expiry: i64 = field(&so, "password_expiry_utc").unwrap().parse().unwrap();
    // We compute expiry from `expires_in` when the answer arrives; the authority stamped
    // `exp` a moment earlier, so the two may straddle a second boundary.
    let exp = jwt_claims(&token).unwrap()["exp"].as_i64().unwrap();
    assert!((expiry - exp).abs() <= 1, "password_expiry_utc {expiry} vs exp {exp}");
    assert!(field(&so, "authtype").is_none());

    // Served from the cache the second time.
    let requests = f.mock.token_requests();
    let again = f.fill(&input);
    assert_eq!(field(&text(&again.stdout), "password"), Some(token.as_str()));
    assert_eq!(f.mock.token_requests(), requests);

    // A rejection erases the cached token: the next fill gets a new one.
    let mut c = f.git();
    c.args(["credential", "reject"]);
    let out = run_with_stdin(c, &format!("protocol=https\nhost={}\npath=org/repo.git\nusername=entra-token\npassword={token}\n\n", f.host()));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let fresh = f.fill(&input);
    let new_token = field(&text(&fresh.stdout), "password").unwrap().to_string();
    assert_eq!(f.mock.token_requests(), requests + 1, "reject must drop the cached token");
    assert_ne!(new_token, token);
}

#[test]
fn a_url_no_profile_claims_gets_nothing() {
    let Some(f) = fixture() else { return };
    for (host, path) in [("evil.test", "org/repo.git"), (f.host().as_str(), "other/repo.git"), (f.host().as_str(), "organisation/x")] {
        let out = f.fill(&format!("capability[]=authtype\nprotocol=https\nhost={host}\npath={path}\n\n"));
        assert!(!out.status.success(), "git got a credential for https://{host}/{path}: {}", text(&out.stdout));
        assert!(!text(&out.stdout).contains("credential=") && !text(&out.stdout).contains("password="));
    }
    // Plain http to the claimed host and path is not claimed either.
    let out = f.fill(&format!("protocol=http\nhost={}\npath=org/repo.git\n\n", f.host()));
    assert!(!out.status.success());
    assert_eq!(f.mock.token_requests(), 0, "no token may be fetched for a URL nobody claims");
    // The helper itself, asked directly, prints nothing at all.
    let mut c = f.sb.cmd();
    c.args(["git", "get"]);
    let out = run_with_stdin(c, "protocol=https\nhost=evil.test\npath=org/repo.git\n\n");
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
}

#[test]
fn azure_devops_is_the_default_resource_only_on_azure_devops_hosts() {
    let Some(f) = fixture() else { return };
    let out = f.fill("url=https://dev.azure.com/contoso/_git/repo\ncapability[]=authtype\n\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let so = text(&out.stdout);
    let token = field(&so, "credential").unwrap_or_else(|| panic!("no credential: {so} {}", text(&out.stderr)));
    assert_eq!(jwt_claims(token).unwrap()["aud"], AZURE_DEVOPS, "Azure DevOps is the default resource on dev.azure.com");
    // A claimed server that is not Azure DevOps, with no `resource`: no token at all,
    // and a line saying what to add.
    let before = f.mock.token_requests();
    let out = f.fill("url=https://git.contoso.test/team/repo\ncapability[]=authtype\n\n");
    assert!(!out.status.success());
    assert!(!text(&out.stdout).contains("credential=") && !text(&out.stdout).contains("password="), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains("entra-token: profile 'forge' claims https://git.contoso.test/team/repo but names no `resource`"), "{err}");
    assert!(err.contains("[profiles.forge]"), "{err}");
    assert_eq!(f.mock.token_requests(), before);
}

#[test]
fn paths_that_leave_the_claimed_prefix_get_nothing_through_real_git() {
    let Some(f) = fixture() else { return };
    // (`url=` resets what came before it, so the capability follows it.)
    // git decodes `%3F` into the `path` it gives helpers: `contoso?/../../evilorg/_git/repo`.
    for url in [
        "https://dev.azure.com/contoso%3F/../../evilorg/_git/repo",
        "https://dev.azure.com/contoso%23/../evilorg/_git/repo",
        "https://dev.azure.com/contoso/%2e%2e/evilorg/_git/repo",
        "https://dev.azure.com/contoso%2F..%2Fevilorg/_git/repo",
        "https://dev.azure.com/contoso%5C..%5Cevilorg/_git/repo",
        "https://dev.azure.com/contoso/.%2E/evilorg/_git/repo",
        "https://dev.azure.com/contoso%252F..%252Fevilorg/_git/repo",
    ] {
        let out = f.fill(&format!("url={url}\ncapability[]=authtype\n\n"));
        let so = text(&out.stdout);
        assert!(!so.contains("credential=") && !so.contains("password="), "git got a credential for {url}: {so}");
    }
    // The helper asked directly, with the decoded path git would pass: nothing.
    for path in ["contoso?/../../evilorg/_git/repo", "contoso#/../evilorg", "contoso/../evilorg", "contoso\\..\\evilorg"] {
        let mut c = f.sb.cmd();
        c.args(["git", "get"]).env("GIT_SECRET", SECRET);
        let out = run_with_stdin(c, &format!("protocol=https\nhost=dev.azure.com\npath={path}\n\n"));
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(out.stdout.is_empty(), "{path}: {}", text(&out.stdout));
    }
    assert_eq!(f.mock.token_requests(), 0, "no token may be fetched for a path outside the claim");
    // The same profile still answers its own, oddly spelt, URL.
    let out = f.fill("url=https://DEV.azure.com:443/contoso//_git/repo\ncapability[]=authtype\n\n");
    assert!(field(&text(&out.stdout), "credential").is_some(), "{}", text(&out.stderr));
}

#[test]
fn helper_ignores_unknown_operations_and_refuses_nul() {
    let Some(f) = fixture() else { return };
    let mut c = f.sb.cmd();
    c.args(["git", "frobnicate"]);
    let out = run_with_stdin(c, &format!("protocol=https\nhost={}\npath=org/repo.git\n\n", f.host()));
    assert!(out.status.success() && out.stdout.is_empty());
    let mut c = f.sb.cmd();
    c.env("GIT_SECRET", SECRET).args(["git", "get"]);
    let out = run_with_stdin(c, &format!("protocol=https\nhost={}\npath=org/repo.git\0\n\n", f.host()));
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(f.mock.token_requests(), 0);
}

#[test]
fn real_ls_remote_and_clone_over_https_with_the_token() {
    let Some(f) = fixture() else { return };
    let mut c = f.git();
    c.args(["ls-remote", &f.repo_url()]);
    let out = run(c);
    assert!(out.status.success(), "ls-remote failed: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("refs/heads/main"), "{}", text(&out.stdout));

    let dest = f.sb.path("clone");
    let mut c = f.git();
    c.args(["clone", "-q", &f.repo_url()]).arg(&dest);
    let out = run(c);
    assert!(out.status.success(), "clone failed: {}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(dest.join("hello.txt")).unwrap(), "hello from the test server\n");

    let issued = f.mock.issued_access_tokens();
    assert_eq!(issued.len(), 1, "ls-remote and clone share one cached token");
    let token = &issued[0];
    let seen = f.seen.lock().unwrap();
    let carried = seen.iter().filter(|a| {
        a.strip_prefix("Bearer ").is_some_and(|t| t == token)
            || a.strip_prefix("Basic ").and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok()).is_some_and(|d| text(&d).ends_with(&format!(":{token}")))
    });
    assert!(carried.count() >= 2, "the server never saw our token: {seen:?}");
}
