//! The server side of HTTP/1.1 for our loopback listeners (`serve`, `emulator`): one
//! request per connection, read blocking, bounded in size and in total time (each read
//! waits only for what is left of the deadline, so a client trickling bytes is cut off
//! there), checked as it is parsed; and the one answer, closing the connection.

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A parsed request: the head, and the body where the caller takes one.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Request {
    pub method: String,
    /// The path without the query string, as sent.
    pub path: String,
    /// The query's fields, decoded, in order.
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    /// A query field as sent (an empty value is Some("")).
    pub(crate) fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// How much a request may be, and how long it may take to arrive whole.
pub(crate) struct Limits {
    pub head: usize,
    /// The largest Content-Length body; None: the head is the request, a body is not read.
    pub body: Option<usize>,
    pub deadline: Duration,
}

/// A connection whose reads can be bounded in time.
pub(crate) trait Timed: Read {
    fn wait_at_most(&mut self, wait: Duration) -> std::io::Result<()>;
}

impl Timed for TcpStream {
    fn wait_at_most(&mut self, wait: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(wait))
    }
}

impl Timed for rustls::StreamOwned<rustls::ServerConnection, TcpStream> {
    fn wait_at_most(&mut self, wait: Duration) -> std::io::Result<()> {
        self.sock.set_read_timeout(Some(wait))
    }
}

/// Reads one request within `limits`. Err: the status to answer (400 not HTTP/1.x,
/// 408 too slow, 411 chunked, 413 body too large, 431 head too large).
pub(crate) fn read_request(stream: &mut impl Timed, limits: &Limits) -> Result<Request, u16> {
    let deadline = Instant::now() + limits.deadline;
    let mut buf = Vec::with_capacity(2048);
    let head_end = loop {
        match buf.windows(4).position(|w| w == b"\r\n\r\n") {
            Some(i) if i + 4 > limits.head => return Err(431),
            Some(i) => break i + 4,
            None => {}
        }
        if buf.len() > limits.head {
            return Err(431);
        }
        read_some(stream, &mut buf, deadline)?;
    };
    let mut req = parse_head(&buf[..head_end])?;
    let Some(max_body) = limits.body else { return Ok(req) };
    if req.header("transfer-encoding").is_some() {
        return Err(411);
    }
    let len: usize = match req.header("content-length") {
        None => 0,
        Some(v) => v.trim().parse().map_err(|_| 400u16)?,
    };
    if len > max_body {
        return Err(413);
    }
    let mut body = buf.split_off(head_end);
    while body.len() < len {
        read_some(stream, &mut body, deadline)?;
    }
    body.truncate(len);
    req.body = body;
    Ok(req)
}

/// One read onto `buf`, waiting no longer than what is left until `deadline`.
fn read_some(stream: &mut impl Timed, buf: &mut Vec<u8>, deadline: Instant) -> Result<(), u16> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(408);
    }
    stream.wait_at_most(left).map_err(|_| 400u16)?;
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk) {
        Ok(0) => Err(400),
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(())
        }
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => Err(408),
        Err(_) => Err(400),
    }
}

/// Parses `GET /path?query HTTP/1.1\r\nName: value\r\n…\r\n\r\n`. Err is the status to answer.
pub(crate) fn parse_head(head: &[u8]) -> Result<Request, u16> {
    let text = std::str::from_utf8(head).map_err(|_| 400u16)?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().ok_or(400u16)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(400);
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() {
        return Err(400);
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let mut headers = Vec::new();
    for line in lines.take_while(|l| !l.is_empty()) {
        let (k, v) = line.split_once(':').ok_or(400u16)?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok(Request { method: method.to_string(), path: path.to_string(), query, headers, body: Vec::new() })
}

/// The reason phrase of a status we answer with.
pub(crate) fn reason(status: u16) -> &'static str {
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
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

/// The answer on the wire: never cached, and the connection closes after it.
pub(crate) fn encode<K: AsRef<str>, V: AsRef<str>>(status: u16, headers: &[(K, V)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in headers {
        // Header values come from our own code or from URL-encoded parameters; a line
        // break would split the answer, so it never passes.
        head.push_str(&format!("{}: {}\r\n", k.as_ref(), v.as_ref().replace(['\r', '\n'], " ")));
    }
    head.push_str(&format!("Content-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n", body.len()));
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Timed for &[u8] {
        fn wait_at_most(&mut self, _: Duration) -> std::io::Result<()> {
            Ok(())
        }
    }

    const FORM: Limits = Limits { head: 1024, body: Some(64), deadline: Duration::from_secs(5) };

    #[test]
    fn reads_a_head_and_a_bounded_body() {
        let raw = b"POST /t/oauth2/v2.0/token?x=1&e= HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nabcdeIGNORED";
        let req = read_request(&mut &raw[..], &FORM).unwrap();
        assert_eq!((req.method.as_str(), req.path.as_str(), req.query("x"), req.query("e")), ("POST", "/t/oauth2/v2.0/token", Some("1"), Some("")));
        assert_eq!((req.header("HOST"), req.body.as_slice()), (Some("h"), &b"abcde"[..]));
        let head_only = Limits { body: None, ..FORM };
        assert!(read_request(&mut &raw[..], &head_only).unwrap().body.is_empty(), "no body is read where none is taken");
        let too_big = b"POST / HTTP/1.1\r\nContent-Length: 65\r\n\r\n";
        assert_eq!(read_request(&mut &too_big[..], &FORM).unwrap_err(), 413);
        assert_eq!(read_request(&mut &b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"[..], &FORM).unwrap_err(), 411);
        assert_eq!(read_request(&mut &b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nabc"[..], &FORM).unwrap_err(), 400, "the body ends early");
        let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(2000));
        assert_eq!(read_request(&mut huge.as_bytes(), &FORM).unwrap_err(), 431);
        for bad in ["GET /\r\n\r\n", "GET / SPDY/3\r\n\r\n", "GET / HTTP/1.1\r\nno colon\r\n\r\n"] {
            assert_eq!(parse_head(bad.as_bytes()), Err(400), "{bad:?}");
        }
    }

    #[test]
    fn answers_close_and_cannot_be_split() {
        let wire = String::from_utf8(encode(302, &[("Location", "http://localhost:1/?code=a\r\nX: y")], b"")).unwrap();
        assert!(wire.starts_with("HTTP/1.1 302 Found\r\n") && wire.contains("Location: http://localhost:1/?code=a  X: y\r\n"), "{wire}");
        assert!(wire.ends_with("Content-Length: 0\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"), "{wire}");
    }
}
