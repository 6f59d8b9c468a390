//! Python package managers against an Azure Artifacts feed stand-in (`support::pyfeed`),
//! each the real client from PyPI (pip, uv, twine, poetry: .ci/run installs them into
//! target/feeds-venv): pip and uv install through the `keyring` link
//! (`--keyring-provider subprocess`), twine and poetry upload through `entra-token exec`.
//! The feed sees the very token the stand-in authority issued, as the Basic password; an
//! index no profile claims gets no credential at all. Unix only (the venv's bin/ layout,
//! symlinked multi-call names).

use crate::support::pyfeed::{AZURE_DEVOPS, PyFeed, Wheel};
use crate::support::{CcProfile, MockAuthority, Sandbox, TestCa, code, run, skip, stderr};
use std::path::PathBuf;
use std::process::Command;

const TENANT: &str = "contoso";
const APP: &str = "feed-app";
const FEED: &str = "/contoso/_packaging/feed/pypi";
const WHEEL: &str = "tinypkg-0.1.0-py3-none-any.whl";

/// target/feeds-venv/bin/TOOL, or a skip (a failure under CI) when it is not there.
fn tool(name: &str, what: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/feeds-venv/bin").join(name);
    if p.is_file() {
        return Some(p);
    }
    skip::missing_tool(&format!("{name} (target/feeds-venv)"), what);
    None
}

/// A one-module wheel, built with the venv's own Python (zipfile) in `dir`.
fn wheel(python: &PathBuf, dir: &std::path::Path) -> Wheel {
    let script = format!(
        r#"import zipfile, hashlib, base64
files = {{"tinypkg/__init__.py": b"VALUE = 42\n",
 "tinypkg-0.1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinypkg\nVersion: 0.1.0\nSummary: a test package\n",
 "tinypkg-0.1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}}
rec = []
with zipfile.ZipFile("{WHEEL}", "w") as z:
    for n, b in files.items():
        z.writestr(n, b)
        h = base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b"=").decode()
        rec.append(f"{{n}},sha256={{h}},{{len(b)}}")
    rec.append("tinypkg-0.1.0.dist-info/RECORD,,")
    z.writestr("tinypkg-0.1.0.dist-info/RECORD", "\n".join(rec) + "\n")
"#
    );
    let out = Command::new(python).arg("-c").arg(script).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "building the wheel: {}", String::from_utf8_lossy(&out.stderr));
    Wheel { name: WHEEL.into(), bytes: std::fs::read(dir.join(WHEEL)).unwrap() }
}

struct Fixture {
    mock: MockAuthority,
    sb: Sandbox,
    feed: PyFeed,
    ca_pem: PathBuf,
    venv_bin: PathBuf,
}

/// The stand-in authority, a profile `feed` claiming the feed's org (client credentials,
/// the Azure DevOps resource: on 127.0.0.1 the host does not imply it), the feed, and the
/// `keyring` link in the sandbox's bin/.
fn fixture(what: &str) -> Option<Fixture> {
    let python = tool("python", what)?;
    let venv_bin = python.parent().unwrap().to_path_buf();
    let ca = TestCa::new();
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some("s3cret"));
    let sb = Sandbox::new();
    let feed = PyFeed::start(&ca, wheel(&python, sb.dir.path()));
    let claim = format!("{}/contoso/", feed.url());
    sb.write_config(&CcProfile::new("feed", &mock.url(), TENANT, APP).with(&format!("resource = \"{AZURE_DEVOPS}\"\nurls = [\"{claim}\"]\n")).toml());
    let ca_pem = ca.write_pem(sb.dir.path());
    sb.link("keyring");
    Some(Fixture { mock, sb, feed, ca_pem, venv_bin })
}

impl Fixture {
    /// A client from the venv, with the sandbox's bin/ (the `keyring` link) first on PATH
    /// and the venv's own bin/ (its real `keyring`, a dependency of twine and poetry) not on it.
    fn client(&self, name: &str) -> Command {
        let mut cmd = self.sb.tool_with_links(self.venv_bin.join(name));
        cmd.env("CI_SECRET", "s3cret")
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("PIP_NO_INPUT", "1")
            .env("UV_CACHE_DIR", self.sb.path("uv-cache"))
            .env("UV_NO_CONFIG", "1")
            .env("SSL_CERT_FILE", &self.ca_pem);
        cmd
    }

    /// `entra-token exec -p feed ARGS…` with the same environment as [`Fixture::client`].
    fn exec(&self, args: &[&str]) -> Command {
        let mut cmd = self.sb.tool_with_links(env!("CARGO_BIN_EXE_entra-token"));
        cmd.env("CI_SECRET", "s3cret").env("SSL_CERT_FILE", &self.ca_pem).env("REQUESTS_CA_BUNDLE", &self.ca_pem).args(["exec", "-p", "feed"]).args(args);
        cmd
    }

    /// The only token the stand-in authority issued (every answer came from one cache entry).
    fn token(&self) -> String {
        let issued = self.mock.issued_access_tokens();
        assert_eq!(issued.len(), 1, "one token, cached for every later call");
        issued[0].clone()
    }

    /// Every request to `prefix` that carried a password carried `token` (uv first sends the
    /// URL's username with an empty password, then asks the keyring on the 401).
    fn feed_saw_token(&self, prefix: &str, token: &str) -> usize {
        let seen: Vec<_> = self.feed.seen().into_iter().filter(|s| s.path.starts_with(prefix) && s.basic.as_ref().is_some_and(|(_, p)| !p.is_empty())).collect();
        for s in &seen {
            let (user, password) = s.basic.as_ref().unwrap();
            assert!(!user.is_empty(), "{s:?}");
            assert_eq!(password, token, "{} {} carried another password", s.method, s.path);
        }
        seen.len()
    }

    fn no_credential_to(&self, prefix: &str) {
        let seen: Vec<_> = self.feed.seen().into_iter().filter(|s| s.path.starts_with(prefix)).collect();
        assert!(!seen.is_empty(), "nothing reached {prefix}");
        assert!(seen.iter().all(|s| s.basic.as_ref().is_none_or(|(_, p)| p.is_empty() || super::support::jwt_claims(p).is_none())), "a token reached an unclaimed index: {seen:?}");
    }
}

#[test]
fn pip_installs_through_the_keyring_link_and_unclaimed_indexes_get_nothing() {
    let Some(f) = fixture("pip through the keyring link") else { return };
    let index = format!("{}{FEED}/simple/", f.feed.url());
    let cert = f.ca_pem.display().to_string();
    let target = f.sb.path("site");
    let pip = |index: &str| {
        let mut c = f.client("pip");
        c.args(["install", "--no-deps", "--keyring-provider", "subprocess", "--cert", &cert, "--index-url", index, "--target"]).arg(&target).arg("tinypkg");
        run(c)
    };
    let out = pip(&index);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(target.join("tinypkg/__init__.py").is_file(), "the wheel was not installed");
    let token = f.token();
    assert!(f.feed_saw_token(FEED, &token) >= 2, "pip did not send the token to the feed");

    // The link's own answer, as pip reads it; a trace names steps, never the token.
    let mut k = f.sb.tool(f.sb.path("bin/keyring"));
    k.env("CI_SECRET", "s3cret").env("ENTRA_TOKEN_VERBOSE", "2").args(["--mode=creds", "--output=json", "get", &index]);
    let out = run(k);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((answer["username"].as_str(), answer["password"].as_str()), (Some("VssSessionToken"), Some(token.as_str())));
    assert!(stderr(&out).contains("claims") && !stderr(&out).contains(&token), "{}", stderr(&out));

    // An index under no profile's urls: the keyring stays silent, pip gets a 401.
    let other = format!("{}/other/pypi/simple/", f.feed.url());
    let out = pip(&other);
    assert_ne!(code(&out), 0, "installed from an unclaimed index: {}", stderr(&out));
    f.no_credential_to("/other/");
    // …and the link itself says nothing for it, exit 1, as a keyring without the entry.
    let mut k = f.sb.tool(f.sb.path("bin/keyring"));
    k.args(["--mode=creds", "--output=json", "get", &other]);
    let out = run(k);
    assert_eq!((code(&out), out.stdout.len(), out.stderr.len()), (1, 0, 0), "{}", stderr(&out));
    // set/del are refused: read-only.
    let mut k = f.sb.tool(f.sb.path("bin/keyring"));
    k.args(["set", &index, "me"]);
    let out = run(k);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("read-only"), "{}", stderr(&out));
}

#[test]
fn uv_installs_through_the_keyring_link_with_the_username_in_the_index_url() {
    let Some(f) = fixture("uv through the keyring link") else { return };
    let Some(_) = tool("uv", "uv through the keyring link") else { return };
    let index = format!("https://VssSessionToken@{}{FEED}/simple/", f.feed.url().trim_start_matches("https://"));
    let python = f.venv_bin.join("python").display().to_string();
    let mut c = f.client("uv");
    c.args(["pip", "install", "--no-deps", "--keyring-provider", "subprocess", "--python", &python, "--index-url", &index, "--target"]).arg(f.sb.path("site")).arg("tinypkg");
    let out = run(c);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(f.sb.path("site/tinypkg/__init__.py").is_file());
    let token = f.token();
    assert!(f.feed_saw_token(FEED, &token) >= 2, "uv did not send the token to the feed: {:?}", f.feed.seen());
}

#[test]
fn twine_uploads_through_exec() {
    let Some(f) = fixture("twine through entra-token exec") else { return };
    let Some(twine) = tool("twine", "twine through entra-token exec") else { return };
    let upload = format!("{}{FEED}/upload/", f.feed.url());
    let cert = f.ca_pem.display().to_string();
    let twine = twine.display().to_string();
    let out = run(f.exec(&["--env", "TWINE_USERNAME=entra", "--env", "TWINE_PASSWORD", "--", &twine, "upload", "--non-interactive", "--disable-progress-bar", "--cert", &cert, "--repository-url", &upload, WHEEL]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let token = f.token();
    let uploads: Vec<_> = f.feed.seen().into_iter().filter(|s| s.method == "POST" && s.basic.as_ref().is_some_and(|(u, p)| u == "entra" && *p == token)).collect();
    assert_eq!(uploads.len(), 1, "{:?}", f.feed.seen());
    assert_eq!(uploads[0].uploaded.as_deref(), Some(WHEEL));
    assert!(!stderr(&out).contains(&token), "the token reached stderr");
}

#[test]
fn poetry_publishes_through_exec() {
    let Some(f) = fixture("poetry through entra-token exec") else { return };
    let Some(poetry) = tool("poetry", "poetry through entra-token exec") else { return };
    let project = f.sb.path("proj");
    std::fs::create_dir_all(project.join("tinypoetry")).unwrap();
    std::fs::write(project.join("tinypoetry/__init__.py"), "VALUE = 1\n").unwrap();
    std::fs::write(project.join("pyproject.toml"), "[project]\nname = \"tinypoetry\"\nversion = \"0.1.0\"\ndescription = \"test\"\nauthors = [{name = \"t\"}]\n\n[build-system]\nrequires = [\"poetry-core>=2.0\"]\nbuild-backend = \"poetry.core.masonry.api\"\n").unwrap();
    let poetry = poetry.display().to_string();
    let mut cmd = f.exec(&["--env", "POETRY_HTTP_BASIC_FEED_USERNAME=entra", "--env", "POETRY_HTTP_BASIC_FEED_PASSWORD", "--", &poetry, "publish", "--build", "--no-interaction", "-r", "feed"]);
    cmd.current_dir(&project)
        .env("POETRY_REPOSITORIES_FEED_URL", format!("{}{FEED}/upload/", f.feed.url()))
        .env("POETRY_CERTIFICATES_FEED_CERT", &f.ca_pem)
        .env("POETRY_CACHE_DIR", f.sb.path("poetry-cache"))
        .env("POETRY_KEYRING_ENABLED", "false");
    let out = run(cmd);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let token = f.token();
    let uploads: Vec<String> = f.feed.seen().into_iter().filter(|s| s.method == "POST" && s.basic.as_ref().is_some_and(|(u, p)| u == "entra" && *p == token)).filter_map(|s| s.uploaded).collect();
    assert!(uploads.iter().any(|n| n.ends_with(".whl")), "{uploads:?}");
    assert!(uploads.iter().any(|n| n.ends_with(".tar.gz")), "{uploads:?}");
}

/// `setup pip` and `setup uv --apply` write the link (in a directory of its own) and the
/// config; then the real clients install from the feed with no flag of ours, only the
/// link's directory put first on PATH as the setup output says.
#[test]
fn setup_pip_and_uv_wire_the_real_clients() {
    let Some(f) = fixture("setup pip|uv with the real clients") else { return };
    let Some(_) = tool("uv", "setup uv with the real uv") else { return };
    let index = format!("{}{FEED}/simple/", f.feed.url());
    let kbin = f.sb.path("keyring-bin");
    let setup = |client: &str, config: &str, extra: &[&str]| {
        let mut c = f.sb.cmd();
        c.args(["setup", client, "--index-url", &index, "--config"]).arg(f.sb.path(config)).arg("--dir").arg(&kbin).args(extra);
        run(c)
    };
    // The dry run writes nothing and says how to keep a real keyring.
    let out = setup("pip", "pip.conf", &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("keyring-provider = subprocess") && text.contains("alias pip="), "{text}");
    assert!(!kbin.exists() && !f.sb.path("pip.conf").exists(), "a dry run wrote something");
    for (client, config) in [("pip", "pip.conf"), ("uv", "uv.toml")] {
        let out = setup(client, config, &["--apply"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    assert_eq!(std::fs::canonicalize(kbin.join("keyring")).unwrap(), std::fs::canonicalize(env!("CARGO_BIN_EXE_entra-token")).unwrap());
    let uv_toml = std::fs::read_to_string(f.sb.path("uv.toml")).unwrap();
    assert!(uv_toml.contains("https://VssSessionToken@127.0.0.1:"), "{uv_toml}");
    // A URL no profile claims is refused at setup time, not at the first install.
    let mut c = f.sb.cmd();
    c.args(["setup", "pip", "--index-url", "https://pypi.example.test/simple/", "--config"]).arg(f.sb.path("other.conf"));
    let out = run(c);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("no profile claims"), "{}", stderr(&out));

    let path = std::env::join_paths(std::iter::once(kbin.clone()).chain(std::env::split_paths(&crate::support::env::path()))).unwrap();
    let python = f.venv_bin.join("python").display().to_string();
    let mut pip = f.sb.tool(f.venv_bin.join("pip"));
    pip.env("PATH", &path).env("PIP_CONFIG_FILE", f.sb.path("pip.conf")).env("SSL_CERT_FILE", &f.ca_pem).env("PIP_NO_INPUT", "1").env("CI_SECRET", "s3cret");
    pip.args(["install", "--no-deps", "--target"]).arg(f.sb.path("site-pip")).arg("tinypkg");
    let out = run(pip);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut uv = f.sb.tool(f.venv_bin.join("uv"));
    uv.env("PATH", &path).env("UV_CONFIG_FILE", f.sb.path("uv.toml")).env("SSL_CERT_FILE", &f.ca_pem).env("UV_CACHE_DIR", f.sb.path("uv-cache")).env("CI_SECRET", "s3cret");
    uv.args(["pip", "install", "--no-deps", "--python", &python, "--target"]).arg(f.sb.path("site-uv")).arg("tinypkg");
    let out = run(uv);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(f.sb.path("site-pip/tinypkg/__init__.py").is_file() && f.sb.path("site-uv/tinypkg/__init__.py").is_file());
    assert!(f.feed_saw_token(FEED, &f.token()) >= 4);
}
