//! The emulator's HTTP/1.1 server: blocking std sockets on 127.0.0.1, one thread per
//! connection (bounded), https through rustls (ring) or plain http. The request head is
//! parsed by `serve`'s codec; this adds what an authority needs besides: a bounded
//! form body, redirects, HTML pages and headers. Every connection is closed after one
//! answer (clients open a new one), so nothing waits on an idle keep-alive.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::commands::serve::parse_request;
use crate::log::trace;

/// A request head or form body larger than these is not a client of Entra.
const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 256 * 1024;
/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 64;
/// The whole request must arrive within this.
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

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}

pub(crate) fn encode(r: &Reply) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status));
    for (k, v) in &r.headers {
        // Header values we write come from our own code or URL-encoded parameters; a
        // line break would split the answer, so it never passes.
        head.push_str(&format!("{k}: {}\r\n", v.replace(['\r', '\n'], " ")));
    }
    head.push_str(&format!("Content-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n", r.body.len()));
    let mut out = head.into_bytes();
    out.extend_from_slice(&r.body);
    out
}

/// Reads one request (head, then a Content-Length body) within the deadline. Err: the status to answer.
fn read_request(stream: &mut impl Read) -> Result<Request, u16> {
    let started = Instant::now();
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(431);
        }
        if started.elapsed() > DEADLINE {
            return Err(408);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err(400),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => return Err(408),
            Err(_) => return Err(400),
        }
    };
    let head = parse_request(&buf[..head_end])?;
    let mut req = Request { method: head.method, path: head.path, query: head.query, headers: head.headers, form: Vec::new() };
    if req.header("transfer-encoding").is_some() {
        return Err(411);
    }
    let len: usize = match req.header("content-length") {
        None => 0,
        Some(v) => v.trim().parse().map_err(|_| 400u16)?,
    };
    if len > MAX_BODY {
        return Err(413);
    }
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        if started.elapsed() > DEADLINE {
            return Err(408);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err(400),
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(_) => return Err(408),
        }
    }
    body.truncate(len);
    if req.header("content-type").is_some_and(|t| t.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded")) {
        req.form = form_urlencoded::parse(&body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    }
    Ok(req)
}

pub(crate) type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

fn answer(stream: &mut (impl Read + Write), handler: &Handler) {
    let reply = match read_request(stream) {
        Ok(req) => {
            let r = handler(&req);
            trace!(1, "emulator: {} {} → {}", req.method, req.path, r.status);
            r
        }
        Err(status) => Reply::new(status, "text/plain; charset=utf-8", reason(status)),
    };
    let _ = stream.write_all(&encode(&reply));
    let _ = stream.flush();
}

fn connection(tcp: TcpStream, tls: Option<&Arc<rustls::ServerConfig>>, handler: &Handler) {
    let _ = tcp.set_read_timeout(Some(DEADLINE));
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
    fn reads_a_form_post_and_writes_an_answer() {
        let raw = b"POST /t/oauth2/v2.0/token?x=1 HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 32\r\n\r\ngrant_type=password&scope=a+b%2F";
        let req = read_request(&mut &raw[..]).unwrap();
        assert_eq!((req.method.as_str(), req.path.as_str(), req.query("x")), ("POST", "/t/oauth2/v2.0/token", Some("1")));
        assert_eq!(req.form("grant_type"), Some("password"));
        assert_eq!(req.form("scope"), Some("a b/"));
        let too_big = format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", MAX_BODY + 1);
        assert_eq!(read_request(&mut too_big.as_bytes()).unwrap_err(), 413);
        let wire = String::from_utf8(encode(&Reply::redirect("http://localhost:1/?code=a\r\nX: y"))).unwrap();
        assert!(wire.starts_with("HTTP/1.1 302 Found\r\n") && wire.contains("Location: http://localhost:1/?code=a  X: y\r\n"), "{wire}");
    }
}
