//! A minimal local token authority for the benchmark: plain HTTP on 127.0.0.1, answers
//! the v2 (and v1) token endpoint with a realistic app token, counts token requests, and
//! can wait before answering the way Entra does. One thread per connection; nothing else.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// A 1.4 KB RS256-shaped app token (Entra's are 1.3–2.5 KB), with `tid` and `exp` claims.
pub const TOKEN: &str = concat!(
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsIng1dCI6ImJlbmNoYmVuY2hiZW5jaGJlbmNoYmVuY2gwIiwia2lkIjoiYmVuY2hiZW5jaGJlbmNoYmVuY2hiZW5jaDAifQ.",
    "eyJhdWQiOiJodHRwczovL2JlbmNoLmV4YW1wbGUvIiwiaXNzIjoiaHR0cHM6Ly9zdHMud2luZG93cy5uZXQvMGIwYjBiMGItMDAwMC00MDAwLTgwMDAtMDAwMDAwMDBiZTBjLyIs",
    "ImlhdCI6MTcwMDAwMDAwMCwibmJmIjoxNzAwMDAwMDAwLCJleHAiOjQxMDI0NDQ4MDAsImFpbyI6IkUyTmdZQmVuY2hCZW5jaEJlbmNoQmVuY2hCZW5jaEJlbmNoQmVuY2hCZW5j",
    "aEJlbmNoQmVuY2hCZW5jaEJlbmNoMEFBPSIsImFwcF9kaXNwbGF5bmFtZSI6ImVudHJhLXRva2VuIGJlbmNoIiwiYXBwaWQiOiIwMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAw",
    "MDAwMDAwYjEiLCJhcHBpZGFjciI6IjEiLCJpZHAiOiJodHRwczovL3N0cy53aW5kb3dzLm5ldC8wYjBiMGIwYi0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMGJlMGMvIiwiaWR0eXAi",
    "OiJhcHAiLCJvaWQiOiIxMTExMTExMS0yMjIyLTQzMzMtODQ0NC01NTU1NTU1NTU1NTUiLCJyaCI6IjAuQUFBQWJlbmNoYmVuY2hiZW5jaGJlbmNoYmVuY2hiZW5jaGJlbmNoYmVu",
    "Y2hiZW5jaEFBQS4iLCJyb2xlcyI6WyJCZW5jaC5SZWFkLkFsbCIsIkJlbmNoLlJlYWRXcml0ZS5BbGwiXSwic3ViIjoiMTExMTExMTEtMjIyMi00MzMzLTg0NDQtNTU1NTU1NTU1",
    "NTU1IiwidGlkIjoiMGIwYjBiMGItMDAwMC00MDAwLTgwMDAtMDAwMDAwMDBiZTBjIiwidXRpIjoiYmVuY2hiZW5jaGJlbmNoYmVuY2gwMCIsInZlciI6IjEuMCIsInhtc190Y2R0",
    "IjoxNjAwMDAwMDAwfQ.",
    "CzBVep_E6Q4zWH2ix-wRNluApcrvFDleg6jN8hc8YYar0PUaP2SJrtP4HUJnjLHW-yBFao-02f4jSG2St9wBJktwlbrfBClOc5i94gcsUXabwOUKL1R5nsPoDTJXfKHG6xA1Wn-k",
    "ye4TOF2Cp8zxFjtgharP9Bk-Y4it0vccQWaLsNX6H0RpjrPY_SJHbJG22wAlSm-Uud4DKE1yl7zhBitQdZq_5AkuU3idwucMMVZ7oMXqDzRZfqPI7RI3XIGmy_AVOl-Eqc7zGD1i",
    "h6zR9htAZYqv1PkeQ2iNstf8IUZrkLXa_yRJbpO43QInTHGWu-AFKk90mb7jCC1Sd5zB5g",
);

/// The tail of `TOKEN`: an answer containing it carries the token.
pub const TOKEN_MARK: &str = "AFKk90mb7jCC1Sd5zB5g";

pub struct Authority {
    pub port: u16,
    requests: Arc<AtomicUsize>,
    delay_ms: Arc<AtomicU64>,
}

impl Authority {
    /// Listens on 127.0.0.1 (an ephemeral port) and serves until the process ends.
    pub fn start() -> std::io::Result<Authority> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let requests = Arc::new(AtomicUsize::new(0));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (r, d) = (requests.clone(), delay_ms.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (r, d) = (r.clone(), d.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &r, &d);
                });
            }
        });
        Ok(Authority { port, requests, delay_ms })
    }

    /// Token requests answered so far.
    pub fn token_requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// How long a token answer takes (Entra: ~100–300 ms; 0 for round-trip comparisons).
    pub fn set_delay(&self, d: Duration) {
        self.delay_ms.store(d.as_millis() as u64, Ordering::SeqCst);
    }
}

fn serve(stream: TcpStream, requests: &AtomicUsize, delay_ms: &AtomicU64) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut length = 0usize;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length.min(64 * 1024)];
    reader.read_exact(&mut body)?;
    let is_token = method == "POST" && (path.ends_with("/oauth2/v2.0/token") || path.ends_with("/oauth2/token"));
    let has_grant = body.windows(11).any(|w| w == b"grant_type=");
    let (status, answer) = if is_token && has_grant {
        requests.fetch_add(1, Ordering::SeqCst);
        let delay = delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        ("200 OK", format!(r#"{{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"{TOKEN}"}}"#))
    } else {
        ("404 Not Found", r#"{"error":"invalid_request","error_description":"AADSTS900561: not a token endpoint of the bench authority."}"#.to_string())
    };
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: application/json; charset=utf-8\r\nCache-Control: no-store\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    )?;
    out.flush()
}
