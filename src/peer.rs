//! Who is on the other end of a loopback TCP connection. Every local user connects from
//! 127.0.0.1, so a per-client limit keyed by address would let one user starve another;
//! on Linux the kernel's socket table (/proc/net/tcp) names the uid owning the client's
//! end, which is what a limit per local user needs. Elsewhere, the address is all we know.

use std::net::{IpAddr, SocketAddr};

/// A client for connection limits: the local user owning the socket when the OS says,
/// else its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Client {
    Uid(u32),
    Addr(IpAddr),
}

/// The client behind an accepted connection from `peer` to our `local` address.
pub(crate) fn client(local: SocketAddr, peer: SocketAddr) -> Client {
    owner_uid(local, peer).map(Client::Uid).unwrap_or(Client::Addr(peer.ip()))
}

#[cfg(target_os = "linux")]
fn owner_uid(local: SocketAddr, peer: SocketAddr) -> Option<u32> {
    let (table, want_local, want_remote) = match (peer, local) {
        (SocketAddr::V4(p), SocketAddr::V4(l)) => ("/proc/net/tcp", v4(p.ip().octets(), p.port()), v4(l.ip().octets(), l.port())),
        _ => return None,
    };
    // The table is small on a developer machine; read it whole, bounded.
    let text = std::fs::read_to_string(table).ok()?;
    text.lines().skip(1).take(100_000).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // sl local_address rem_address st tx:rx tr:when retrnsmt uid …
        (f.len() > 7 && f[1].eq_ignore_ascii_case(&want_local) && f[2].eq_ignore_ascii_case(&want_remote)).then(|| f[7].parse().ok()).flatten()
    })
}

/// The kernel prints an IPv4 address as the in-memory (network order) word in hex.
#[cfg(target_os = "linux")]
fn v4(octets: [u8; 4], port: u16) -> String {
    format!("{:08X}:{port:04X}", u32::from_ne_bytes(octets))
}

#[cfg(not(target_os = "linux"))]
fn owner_uid(_: SocketAddr, _: SocketAddr) -> Option<u32> {
    None
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn names_the_uid_owning_a_loopback_client() {
        use std::net::{TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (conn, peer) = listener.accept().unwrap();
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        assert_eq!(super::client(conn.local_addr().unwrap(), peer), super::Client::Uid(me));
    }
}
