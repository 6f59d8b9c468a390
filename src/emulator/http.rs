//! The emulator's HTTP/1.1 server: blocking std sockets on 127.0.0.1, one thread per
//! connection (bounded), https through rustls (ring) or plain http. The request is read
//! and the answer written by `http::server`, as for `serve`; this adds what an authority
//! needs besides: form bodies, redirects, HTML pages and headers. Every connection is
//! closed after one answer (clients open a new one), so nothing waits on an idle keep-alive.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::http::server;
use crate::log::trace;

/// A request head or form body larger than these is not a client of Entra, and the whole
/// request must arrive within the deadline.
const LIMITS: server::Limits = server::Limits { head: 16 * 1024, body: Some(256 * 1024), deadline: DEADLINE };
/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 64;
const DEADLINE: Duration = Duration::from_secs(10);

/// One parsed request.
#[derive(Debug)]
pub(crate) struct Request {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    /// application/x-www-form-urlencoded fields of a POST body.
    pub form: Vec<(String, String)>,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub(crate) fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }
    pub(crate) fn form(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }
    /// A form field, else the query's (MSI endpoints take either).
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.form(name).or_else(|| self.query(name))
    }
}

/// One answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub(crate) fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply { status, headers: vec![("Content-Type".into(), content_type.into())], body: body.into() }
    }
    pub(crate) fn json(status: u16, v: &serde_json::Value) -> Reply {
        Reply::new(status, "application/json; charset=utf-8", v.to_string())
    }
    pub(crate) fn html(status: u16, body: String) -> Reply {
        Reply::new(status, "text/html; charset=utf-8", body)
    }
    pub(crate) fn redirect(location: &str) -> Reply {
        Reply::new(302, "text/html; charset=utf-8", "").with_header("Location", location)
    }
    pub(crate) fn with_header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
}

impl super::wire::AadError {
    /// Entra's error answer as the emulator sends it.
    pub(crate) fn reply(&self) -> Reply {
        Reply::json(self.status, &self.body())
    }
}

/// Reads one request and its form body within the limits. Err: the status to answer.
fn read_request(stream: &mut impl server::Timed) -> Result<Request, u16> {
    let r = server::read_request(stream, &LIMITS)?;
    let form = match r.header("content-type") {
        Some(t) if t.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") => form_urlencoded::parse(&r.body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect(),
        _ => Vec::new(),
    };
    Ok(Request { method: r.method, path: r.path, query: r.query, headers: r.headers, form })
}

pub(crate) type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

fn answer(stream: &mut (impl server::Timed + Write), handler: &Handler) {
    let reply = match read_request(stream) {
        Ok(req) => {
            let r = handler(&req);
            trace!(1, "emulator: {} {} → {}", req.method, req.path, r.status);
            r
        }
        Err(status) => Reply::new(status, "text/plain; charset=utf-8", server::reason(status)),
    };
    // A Date header, as Entra sends: `doctor` measures the clock's skew from it.
    let mut headers = reply.headers;
    headers.push(("Date".into(), http_date(time::OffsetDateTime::now_utc())));
    let _ = stream.write_all(&server::encode(reply.status, &headers, &reply.body));
    let _ = stream.flush();
}

/// RFC 9110's IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(t: time::OffsetDateTime) -> String {
    t.format(time::macros::format_description!("[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT")).unwrap_or_default()
}

fn connection(tcp: TcpStream, tls: Option<&Arc<rustls::ServerConfig>>, handler: &Handler) {
    let _ = tcp.set_write_timeout(Some(DEADLINE));
    let _ = tcp.set_nodelay(true);
    match tls {
        None => {
            let mut tcp = tcp;
            answer(&mut tcp, handler);
        }
        Some(config) => {
            let Ok(conn) = rustls::ServerConnection::new(Arc::clone(config)) else { return };
            let mut stream = rustls::StreamOwned::new(conn, tcp);
            answer(&mut stream, handler);
            stream.conn.send_close_notify();
            let _ = stream.flush();
        }
    }
}

/// Serves `listener` until the process ends.
pub(crate) fn serve(listener: TcpListener, tls: Option<Arc<rustls::ServerConfig>>, handler: Handler) {
    let live = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let Ok(tcp) = conn else { continue };
        if live.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            continue;
        }
        live.fetch_add(1, Ordering::SeqCst);
        let (tls, handler, live) = (tls.clone(), Arc::clone(&handler), Arc::clone(&live));
        let spawned = std::thread::Builder::new().name("emulator".into()).spawn(move || {
            connection(tcp, tls.as_ref(), &handler);
            live.fetch_sub(1, Ordering::SeqCst);
        });
        if spawned.is_err() {
            trace!(1, "emulator: no thread for a connection");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_http_dates() {
        assert_eq!(super::http_date(time::OffsetDateTime::from_unix_timestamp(784_111_777).unwrap()), "Sun, 06 Nov 1994 08:49:37 GMT");
    }

    #[test]
    fn reads_a_form_post() {
        let raw = b"POST /t/oauth2/v2.0/token?x=1 HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 32\r\n\r\ngrant_type=password&scope=a+b%2F";
        let req = read_request(&mut &raw[..]).unwrap();
        assert_eq!((req.method.as_str(), req.path.as_str(), req.query("x")), ("POST", "/t/oauth2/v2.0/token", Some("1")));
        assert_eq!(req.form("grant_type"), Some("password"));
        assert_eq!(req.form("scope"), Some("a b/"));
    }
}
