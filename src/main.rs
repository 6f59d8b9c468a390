//! The binary: everything lives in the library (`lib.rs`) so fuzz targets can reach it.
//!
//! It starts at C's `main`, not through Rust's runtime start-up: that start-up finds the
//! main thread's stack guard by reading and `sscanf`-parsing /proc/self/maps and maps an
//! alternate signal stack, about 100,000 instructions and 9 system calls, which was a sixth
//! of a cached answer's whole cost (callgrind) and buys only the "stack overflow" message
//! before the same SIGSEGV. std itself needs no start-up on this target (it takes argv
//! from `.init_array`); the two things the runtime did that we rely on are done here:
//! SIGPIPE ignored, so a reader that goes away is a write error and not a silent kill,
//! and stdout flushed before the process exits.
#![no_main]

use std::io::Write;
use std::process::ExitCode;

#[unsafe(no_mangle)]
extern "C" fn main(_argc: std::ffi::c_int, _argv: *const *const std::ffi::c_char) -> std::ffi::c_int {
    // SAFETY: setting a signal's disposition to SIG_IGN before any thread exists.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let code = entra_token::run();
    let _ = std::io::stdout().flush();
    // ExitCode has no stable getter; it compares, so find the byte it was made from.
    (0..=u8::MAX).find(|&c| ExitCode::from(c) == code).map_or(1, std::ffi::c_int::from)
}
