//! What the mock authority records of each request, for tests to inspect: method, path,
//! query, headers and the decoded form body.

use super::super::http::Request;
use super::token_version;

/// One request as the mock saw it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body decoded as `application/x-www-form-urlencoded` (only when sent with that type).
    pub form: Vec<(String, String)>,
}

impl RecordedRequest {
    pub fn form_get(&self, k: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, k: &str) -> Option<&str> {
        let k = k.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.as_str())
    }

    pub fn query_get(&self, k: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }

    /// True for a POST to `/{tenant}/oauth2/token` or `/{tenant}/oauth2/v2.0/token`.
    pub fn is_token_request(&self) -> bool {
        self.method == "POST" && token_version(&self.path).is_some()
    }

    pub(super) fn from_http(req: &Request) -> RecordedRequest {
        let is_form = req.header("content-type").is_some_and(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
        let form = if is_form {
            form_urlencoded::parse(&req.body).into_owned().collect()
        } else {
            Vec::new()
        };
        RecordedRequest {
            method: req.method.clone(),
            path: req.path.clone(),
            query: req.query.clone(),
            headers: req.headers.clone(),
            form,
        }
    }
}
