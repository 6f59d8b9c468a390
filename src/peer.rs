//! Who is on the other end of a local connection. Loopback TCP: every local user connects
//! from 127.0.0.1, so a per-client limit keyed by address would let one user starve another;
//! on Linux the kernel's socket table (/proc/net/tcp) names the uid owning the client's
//! end, which is what a limit per local user needs (elsewhere, the address is all we know).
//! Unix sockets: the kernel says who connected (SO_PEERCRED on Linux, getpeereid on macOS
//! and the BSDs), so the token agent can refuse every user but its own.

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

/// The peer's user id and, where the OS says it, its process id (Unix sockets only).
#[cfg(unix)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peer {
    pub uid: u32,
    pub pid: Option<i32>,
}

/// Our own effective user id.
/// Waits until a connection is waiting on `listener` (true) or `limit` has passed (false);
/// no limit waits for ever. poll(2), as an `accept` that can end at a deadline.
#[cfg(unix)]
pub(crate) fn wait_for_connection(listener: std::os::fd::BorrowedFd<'_>, limit: Option<std::time::Duration>) -> bool {
    use std::os::fd::AsRawFd;
    let deadline = limit.map(|l| std::time::Instant::now() + l);
    loop {
        let ms = match deadline {
            None => -1,
            Some(d) => match d.checked_duration_since(std::time::Instant::now()) {
                Some(left) => left.as_millis().clamp(1, i32::MAX as u128) as i32,
                None => return false,
            },
        };
        let mut fd = libc::pollfd { fd: listener.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one pollfd of ours, for the call's duration.
        match unsafe { libc::poll(&mut fd, 1, ms) } {
            n if n > 0 => return true,
            0 => {}
            _ if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
            _ => return true, // let accept report the error
        }
    }
}

#[cfg(unix)]
pub(crate) fn my_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The credentials of the process that connected on `fd` (as of connect(2)).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn of(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<Peer> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred and len are valid for writes of the sizes given; fd is a live socket.
    let rc = unsafe { libc::getsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_PEERCRED, (&mut cred as *mut libc::ucred).cast(), &mut len) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Peer { uid: cred.uid, pid: (cred.pid > 0).then_some(cred.pid) })
}

/// The credentials of the process that connected on `fd` (as of connect(2)).
#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
pub(crate) fn of(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<Peer> {
    use std::os::fd::AsRawFd;
    let (mut uid, mut gid) = (0, 0);
    // SAFETY: uid and gid are valid for writes; fd is a live socket.
    let rc = unsafe { libc::getpeereid(fd.as_raw_fd(), &mut uid, &mut gid) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // macOS also names the process (LOCAL_PEERPID), which the agent's per-peer limits use.
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    let pid = {
        let mut pid: libc::pid_t = 0;
        let mut len = std::mem::size_of::<libc::pid_t>() as libc::socklen_t;
        // SAFETY: pid and len are valid for writes of the sizes given; fd is a live socket.
        let rc = unsafe { libc::getsockopt(fd.as_raw_fd(), libc::SOL_LOCAL, libc::LOCAL_PEERPID, (&mut pid as *mut libc::pid_t).cast(), &mut len) };
        (rc == 0 && pid > 0).then_some(pid)
    };
    #[cfg(not(any(target_os = "macos", target_os = "ios")))]
    let pid = None;
    Ok(Peer { uid, pid })
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
