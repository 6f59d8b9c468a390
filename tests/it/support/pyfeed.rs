//! A stand-in for an Azure Artifacts Python feed on 127.0.0.1 (https, the test CA): a PEP
//! 503 simple index, its files and the legacy upload API that twine and poetry publish to.
//! Like the real feed it demands HTTP Basic with any non-empty username and an Entra
//! access token for Azure DevOps as the password (what Azure Artifacts documents for a PAT
//! or `$(System.AccessToken)`); anything else is a 401 with a Basic challenge, which is
//! what makes pip and uv ask their keyring. Every request is recorded with the
//! credentials it carried, so a test can say which token went where.

use super::http::{Reply, Request, StandIn};
use super::tls::TestCa;
use base64::Engine;
use std::sync::{Arc, Mutex};

/// Azure DevOps' resource id: the audience the feed accepts.
pub const AZURE_DEVOPS: &str = "499b84ac-1321-427f-aa17-267ca6975798";

/// One wheel the index serves for every feed path.
pub struct Wheel {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// A request as the feed saw it: method, path, and the Basic credentials if any.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub basic: Option<(String, String)>,
    /// For an upload, the file name of the distribution in the multipart body.
    pub uploaded: Option<String>,
}

pub struct PyFeed {
    server: StandIn,
    seen: Arc<Mutex<Vec<Seen>>>,
}

fn basic(req: &Request) -> Option<(String, String)> {
    let v = req.header("authorization")?;
    let (scheme, b64) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let text = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// A password the feed takes: a JWT for Azure DevOps (the test then checks it is the very
/// token the stand-in authority issued).
fn accepted(creds: &Option<(String, String)>) -> bool {
    let Some((user, password)) = creds else { return false };
    !user.is_empty() && super::jwt_claims(password).is_some_and(|c| c["aud"].as_str().is_some_and(|a| a.trim_end_matches('/') == AZURE_DEVOPS || a == format!("api://{AZURE_DEVOPS}")))
}

fn uploaded_name(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let at = text.find("filename=\"")? + "filename=\"".len();
    Some(text[at..].split('"').next()?.to_string())
}

impl PyFeed {
    pub fn start(ca: &TestCa, wheel: Wheel) -> PyFeed {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let record = Arc::clone(&seen);
        let server = StandIn::start_tls(Some(ca.server_config()), move |req, _| {
            let creds = basic(req);
            let uploaded = (req.method == "POST").then(|| uploaded_name(&req.body)).flatten();
            record.lock().unwrap().push(Seen { method: req.method.clone(), path: req.path.clone(), basic: creds.clone(), uploaded });
            if !accepted(&creds) {
                return Reply::new(401, "text/plain", "authentication required").with_header("WWW-Authenticate", "Basic realm=\"feed\"");
            }
            let html = |body: String| Reply::new(200, "text/html; charset=utf-8", format!("<!DOCTYPE html><html><body>\n{body}\n</body></html>\n"));
            let path = req.path.as_str();
            if req.method == "POST" && path.ends_with("/upload/") {
                return Reply::new(200, "text/plain", "OK");
            }
            if path.ends_with("/simple/") {
                return html("<a href=\"tinypkg/\">tinypkg</a>".into());
            }
            if path.ends_with("/simple/tinypkg/") {
                let digest = ring::digest::digest(&ring::digest::SHA256, &wheel.bytes);
                let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
                return html(format!("<a href=\"../../files/{n}#sha256={hex}\">{n}</a>", n = wheel.name));
            }
            if path.ends_with(&format!("/files/{}", wheel.name)) {
                return Reply::new(200, "application/octet-stream", wheel.bytes.clone());
            }
            Reply::new(404, "text/plain", "not found")
        });
        PyFeed { server, seen }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}
