//! The bare HTTP round trip a cold answer is compared with: connect to the local authority,
//! POST one form, read the answer, print its body. std only, no HTTP library.
//! Usage: bare-client HOST:PORT PATH FORM-BODY

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, path, body] = args.as_slice() else {
        eprintln!("usage: bare-client HOST:PORT PATH FORM-BODY");
        return ExitCode::from(1);
    };
    let Ok(mut stream) = TcpStream::connect(addr.as_str()) else {
        eprintln!("bare-client: cannot connect to {addr}");
        return ExitCode::from(4);
    };
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut answer = Vec::new();
    if stream.write_all(request.as_bytes()).is_err() || stream.read_to_end(&mut answer).is_err() {
        eprintln!("bare-client: the round trip failed");
        return ExitCode::from(4);
    }
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let _ = writeln!(std::io::stdout().lock(), "{body}");
    if head.starts_with("HTTP/1.1 200") { ExitCode::SUCCESS } else { ExitCode::from(3) }
}
