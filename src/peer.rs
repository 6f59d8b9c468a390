//! Who is on the other end of a local (Unix) socket, as the kernel tells it: the one
//! place that knows SO_PEERCRED (Linux) and getpeereid (macOS, BSDs), so the token agent
//! can refuse every user but its own.

/// The peer's user id and, where the OS says it, its process id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peer {
    pub uid: u32,
    pub pid: Option<i32>,
}

/// Our own effective user id.
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
    Ok(Peer { uid, pid: None })
}
