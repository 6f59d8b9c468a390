//! A tiny blocking HTTP/1.1 server bound to 127.0.0.1, one thread per connection,
//! so integration tests can stand in for Entra without an async runtime and can
//! observe real concurrency (many processes racing for one token).
//!
//! It answers exactly one request per connection (`Connection: close`), can wrap the
//! socket in rustls for https, and stops accepting when dropped.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Longest request line or header line we accept.
const MAX_LINE: usize = 64 * 1024;
/// Largest request body we accept (token requests are tiny).
const MAX_BODY: usize = 16 * 1024 * 1024;
/// A client that goes silent this long is dropped, so connection threads never leak forever.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// One parsed HTTP request.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The path without the query string, still percent-encoded.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What to send back.
pub enum Body {
    Bytes(Vec<u8>),
    /// This many bytes of JSON-looking garbage, written in chunks, never held in memory.
    Huge(usize),
    /// Never answer; hold the connection until the server is dropped.
    Hang,
    /// Close the connection without a byte of answer.
    Close,
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Reply {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: Body::Bytes(body.into()),
        }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Reply {
        let mut r = Reply::new(status, "application/json; charset=utf-8", value.to_string());
        r.headers
            .push(("Cache-Control".into(), "no-store, no-cache".into()));
        r.headers.push(("Pragma".into(), "no-cache".into()));
        r
    }

    pub fn redirect(location: &str) -> Reply {
        let mut r = Reply::new(302, "text/html; charset=utf-8", "");
        r.headers.push(("Location".into(), location.into()));
        r
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

pub type Handler = Arc<dyn Fn(Request) -> Reply + Send + Sync>;

/// Set once when the server is dropped; hanging connections wait on it.
struct Stop {
    stopped: Mutex<bool>,
    cv: Condvar,
}

impl Stop {
    fn is_set(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }

    fn wait(&self) {
        let mut stopped = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        while !*stopped {
            stopped = self.cv.wait(stopped).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// A running server; dropping it stops accepting and releases hanging connections.
pub struct Server {
    addr: SocketAddr,
    https: bool,
    stop: Arc<Stop>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds 127.0.0.1 on an OS-assigned port and serves `handler` until dropped.
    pub fn start(handler: Handler, tls: Option<Arc<rustls::ServerConfig>>) -> Server {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let stop = Arc::new(Stop {
            stopped: Mutex::new(false),
            cv: Condvar::new(),
        });
        let https = tls.is_some();
        let accept = {
            let stop = Arc::clone(&stop);
            thread::Builder::new()
                .name(format!("mock-accept-{}", addr.port()))
                .spawn(move || accept_loop(listener, handler, tls, stop))
                .expect("spawn accept thread")
        };
        Server {
            addr,
            https,
            stop,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT` or `https://…`, without a trailing slash.
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.set();
        // Wake the blocking accept() so the thread sees the flag and drops the listener.
        let woke = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2)).is_ok();
        if let Some(handle) = self.accept.take()
            && woke
        {
            let _ = handle.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    handler: Handler,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: Arc<Stop>,
) {
    for conn in listener.incoming() {
        if stop.is_set() {
            break;
        }
        let stream = match conn {
            Ok(s) => s,
            Err(_) => {
                // EMFILE and friends: back off instead of spinning.
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let handler = Arc::clone(&handler);
        let tls = tls.clone();
        let stop = Arc::clone(&stop);
        let spawned = thread::Builder::new()
            .name("mock-conn".into())
            .spawn(move || serve_connection(stream, handler, tls, stop));
        if spawned.is_err() {
            thread::sleep(Duration::from_millis(10));
        }
    }
}

fn serve_connection(
    stream: TcpStream,
    handler: Handler,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: Arc<Stop>,
) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_nodelay(true);
    match tls {
        None => {
            let mut s = stream;
            if exchange(&mut s, &handler, &stop) == Outcome::Answered {
                let _ = s.flush();
                let _ = s.shutdown(Shutdown::Write);
                drain_briefly(&mut s);
            } else {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        Some(cfg) => {
            let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                return;
            };
            let mut s = rustls::StreamOwned::new(conn, stream);
            if exchange(&mut s, &handler, &stop) == Outcome::Answered {
                s.conn.send_close_notify();
                let _ = s.flush();
                let _ = s.sock.shutdown(Shutdown::Write);
                drain_briefly(&mut s.sock);
            } else {
                let _ = s.sock.shutdown(Shutdown::Both);
            }
        }
    }
}

/// After answering, read until the client closes (briefly), so closing the socket with
/// unread bytes does not turn into a reset that could eat the answer.
fn drain_briefly(s: &mut TcpStream) {
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 4096];
    for _ in 0..64 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

#[derive(PartialEq, Eq)]
enum Outcome {
    Answered,
    Closed,
}

fn exchange<S: Read + Write>(s: &mut S, handler: &Handler, stop: &Stop) -> Outcome {
    let req = match read_request(&mut *s) {
        Ok(r) => r,
        Err(_) => return Outcome::Closed,
    };
    let reply = handler(req);
    let result = match reply.body {
        Body::Hang => {
            stop.wait();
            return Outcome::Closed;
        }
        Body::Close => return Outcome::Closed,
        Body::Bytes(ref bytes) => write_head(s, reply.status, &reply.headers, bytes.len())
            .and_then(|()| s.write_all(bytes)),
        Body::Huge(n) => {
            write_head(s, reply.status, &reply.headers, n).and_then(|()| write_huge(s, n))
        }
    };
    match result.and_then(|()| s.flush()) {
        Ok(()) => Outcome::Answered,
        Err(_) => Outcome::Closed,
    }
}

fn write_head<W: Write>(
    w: &mut W,
    status: u16,
    headers: &[(String, String)],
    len: usize,
) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    // A handler may set its own Date (a server with a skewed clock); else it is now.
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("date")) {
        head.push_str(&format!(
            "Date: {}\r\n",
            http_date(time::OffsetDateTime::now_utc())
        ));
    }
    head.push_str(&format!("Content-Length: {len}\r\n"));
    head.push_str("Connection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())
}

/// Streams `n` bytes that start like a token answer and never become valid JSON.
fn write_huge<W: Write>(w: &mut W, n: usize) -> io::Result<()> {
    let prefix = br#"{"token_type":"Bearer","access_token":""#;
    let chunk = vec![b'A'; 64 * 1024];
    let mut left = n;
    let first = prefix.len().min(left);
    w.write_all(&prefix[..first])?;
    left -= first;
    while left > 0 {
        let k = left.min(chunk.len());
        w.write_all(&chunk[..k])?;
        left -= k;
    }
    Ok(())
}

fn read_request<R: Read>(r: R) -> io::Result<Request> {
    let mut r = BufReader::new(r);
    let line = read_line(&mut r)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(_version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (target, ""),
    };
    let mut headers = Vec::new();
    loop {
        let line = read_line(&mut r)?;
        if line.is_empty() {
            break;
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| bad("malformed header"))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        if headers.len() > 200 {
            return Err(bad("too many headers"));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let chunked =
        header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        read_chunked(&mut r)?
    } else if let Some(len) = header("content-length") {
        let len: usize = len.parse().map_err(|_| bad("bad content-length"))?;
        if len > MAX_BODY {
            return Err(bad("body too large"));
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body)?;
        body
    } else {
        Vec::new()
    };
    Ok(Request {
        method: method.to_string(),
        path: path.to_string(),
        query: form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect(),
        headers,
        body,
    })
}

fn read_chunked<R: BufRead>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(r)?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| bad("bad chunk size"))?;
        if size == 0 {
            // Trailers, then the empty line.
            while !read_line(r)?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            return Err(bad("body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        read_line(r)?;
    }
}

/// One CRLF- (or LF-) terminated line, without the terminator.
fn read_line<R: BufRead>(r: &mut R) -> io::Result<String> {
    let mut buf = Vec::new();
    let n = r
        .by_ref()
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    if buf.last() != Some(&b'\n') {
        return Err(bad("line too long or truncated"));
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|_| bad("non-utf8 header"))
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
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
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// RFC 9110 IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        &t.weekday().to_string()[..3],
        t.day(),
        &t.month().to_string()[..3],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `http://127.0.0.1:PORT` of a port that was bound and closed again: connecting is refused.
pub fn refused_url() -> String {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local_addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// A loopback stand-in (plain, or TLS with `tls`) that records each request it reads and
/// answers with `f(request, index)`; a request is recorded only once it arrived whole.
pub struct StandIn {
    server: Server,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl StandIn {
    pub fn start(f: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static) -> StandIn {
        StandIn::start_tls(None, f)
    }

    pub fn start_tls(tls: Option<Arc<rustls::ServerConfig>>, f: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static) -> StandIn {
        let seen: Arc<Mutex<Vec<Request>>> = Arc::default();
        let handler = {
            let seen = Arc::clone(&seen);
            Arc::new(move |req: Request| {
                let n = {
                    let mut s = seen.lock().unwrap();
                    s.push(req.clone());
                    s.len() - 1
                };
                f(&req, n)
            })
        };
        StandIn { server: Server::start(handler, tls), seen }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }
}

/// A proxy stand-in on 127.0.0.1 that accepts anything, answers nothing, and records
/// every byte it receives: point HTTP(S)_PROXY/ALL_PROXY at it to prove a request
/// never went through a proxy (or never left at all).
pub struct Trap {
    pub url: String,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl Trap {
    pub fn start() -> Trap {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut c) = conn else { continue };
                let _ = c.set_read_timeout(Some(Duration::from_millis(500)));
                let mut buf = [0u8; 4096];
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    s.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            }
        });
        Trap { url, seen }
    }

    /// What reached the trap so far.
    pub fn seen(&self) -> Vec<u8> {
        self.seen.lock().unwrap().clone()
    }

    pub fn assert_untouched_by(&self, case: &str) {
        let seen = self.seen();
        assert!(seen.is_empty(), "{case}: something was sent to the proxy: {:?}", String::from_utf8_lossy(&seen));
    }

    /// Every proxy variable, upper and lower case, pointing at the trap, and no NO_PROXY.
    pub fn proxy_env(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"].iter().flat_map(|n| [(n.to_string(), self.url.clone()), (n.to_lowercase(), self.url.clone())]).collect();
        v.push(("NO_PROXY".into(), String::new()));
        v.push(("no_proxy".into(), String::new()));
        v
    }
}
