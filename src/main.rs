//! The binary: everything lives in the library (`lib.rs`) so fuzz targets can reach it.
//!
//! It starts at C's `main`, not through Rust's runtime start-up: that start-up finds the
//! main thread's stack guard by reading and `sscanf`-parsing /proc/self/maps and maps an
//! alternate signal stack, about 100,000 instructions and 9 system calls, which was a sixth
//! of a cached answer's whole cost (callgrind) and buys only the "stack overflow" message
//! before the same SIGSEGV. What the runtime did that we rely on is done here: the
//! arguments taken from `argv` (std finds them by itself only on glibc), closed standard
//! descriptors reopened on /dev/null, SIGPIPE ignored (a reader that goes away is a write
//! error, not a silent kill), and stdout flushed before the process exits.
#![no_main]

use std::ffi::{OsString, c_char, c_int};
use std::io::Write;
use std::process::ExitCode;

#[unsafe(no_mangle)]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    // SAFETY: the C runtime hands `main` argc valid pointers to NUL-terminated strings,
    // alive for the whole process; SIG_IGN is set before any thread exists.
    let args = unsafe { arguments(argc, argv) };
    #[cfg(unix)]
    unsafe {
        standard_fds_open();
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let code = entra_token::run_with(args);
    let _ = std::io::stdout().flush();
    // ExitCode has no stable getter; it compares, so find the byte it was made from.
    (0..=u8::MAX).find(|&c| ExitCode::from(c) == code).map_or(1, c_int::from)
}

/// Opens /dev/null on any of stdin, stdout and stderr that the caller closed, as std's
/// start-up does: otherwise the next file we open (a cache entry, its lock) would become
/// fd 1, and the answer meant for stdout would be written into it.
#[cfg(unix)]
unsafe fn standard_fds_open() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd { fd, events: 0, revents: 0 });
    // SAFETY: `fds` is a valid array of three pollfd for the duration of the call.
    if unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } == -1 {
        return;
    }
    for p in fds {
        if p.revents & libc::POLLNVAL != 0 {
            // SAFETY: a constant NUL-terminated path; the lowest free fd is the closed one.
            let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
            if fd == -1 {
                std::process::abort();
            }
        }
    }
}

#[cfg(unix)]
unsafe fn arguments(argc: c_int, argv: *const *const c_char) -> Vec<OsString> {
    use std::os::unix::ffi::OsStrExt;
    (0..usize::try_from(argc).unwrap_or(0))
        .map(|i| unsafe { *argv.add(i) })
        .take_while(|p| !p.is_null())
        .map(|p| std::ffi::OsStr::from_bytes(unsafe { std::ffi::CStr::from_ptr(p) }.to_bytes()).to_os_string())
        .collect()
}

/// Windows: `argv` is in the ANSI code page; std reads the UTF-16 command line itself.
#[cfg(not(unix))]
unsafe fn arguments(_: c_int, _: *const *const c_char) -> Vec<OsString> {
    std::env::args_os().collect()
}
