//! A program we run and stand in front of (`entra-token exec`): what reaches it of the
//! signals sent to us, and how its end becomes our exit code, per platform.
//!
//! Unix: SIGINT, SIGTERM and SIGHUP sent to us by another process (`kill`, a supervisor,
//! a CI runner) are passed on to the child with `kill(2)`; while it runs they never end
//! us, so we are still there to clean up after it. One sent by the terminal (Ctrl-C, a
//! hang-up) reached the child already: it is in our process group, the terminal's
//! foreground group, so passing it on would deliver it twice (a second Ctrl-C means
//! "force quit" to many programs). That is how sudo decides too: the kernel marks a
//! terminal's signal (`si_code` SI_KERNEL on Linux; no sending pid elsewhere).
//! Windows has no signals: Ctrl+C and Ctrl+Break go to every process on the console, the
//! child included, so we only ignore them while it runs (a handler that says "handled",
//! which unlike ignoring Ctrl+C outright is not inherited by the child).

use std::process::ExitStatus;

/// What the child's end means as our own exit code: its code, or 128 + the signal that
/// killed it (as shells report it). On Windows an exit code is 32 bits and the larger ones
/// carry meaning (NTSTATUS values: 0xC000013A after Ctrl+C, 0xC0000005 after a crash), so
/// like cmd.exe we end with the child's whole code: `ExitCode` holds only a byte, so a code
/// outside 0-255 ends this process here, with stdout and stderr flushed.
pub(crate) fn exit_code(status: ExitStatus) -> std::process::ExitCode {
    #[cfg(windows)]
    if let Some(c) = status.code().filter(|c| u8::try_from(*c).is_err()) {
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        std::process::exit(c);
    }
    std::process::ExitCode::from(exit_byte(status))
}

fn exit_byte(status: ExitStatus) -> u8 {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return u8::try_from(128 + sig).unwrap_or(255);
        }
    }
    match status.code() {
        Some(c) => u8::try_from(c).unwrap_or(255),
        None => 1,
    }
}

/// Before starting a program that outlives us (`emulator --background`): it must not hold
/// our caller's pipes open, or a caller reading our output to its end (a script's `$(…)`,
/// PowerShell capturing it, a test) waits for that program instead of us. On Windows every
/// inheritable handle goes to a child, and the standard handles we were given are
/// inheritable: they are made ours alone here (std still hands a child the ones its
/// `Stdio::inherit` names, through duplicates). On Unix the child's 0, 1 and 2 are the
/// ones its `Stdio` names, so the caller's pipes stay behind: nothing to do.
pub(crate) fn keep_our_std_handles() {
    #[cfg(windows)]
    windows::keep_std_handles();
}

/// Signals are being passed on (or, on Windows, console events ignored) from `prepare`
/// until this is dropped; `child` names whom they go to.
pub(crate) struct Forwarding(());

/// Starts catching the signals we pass on, before the child exists: one arriving before
/// [`Forwarding::child`] is held and delivered then, so none is lost to the race.
pub(crate) fn prepare() -> Forwarding {
    #[cfg(unix)]
    unix::install();
    #[cfg(windows)]
    windows::install();
    Forwarding(())
}

impl Forwarding {
    /// From now on signals go to process `pid` (the child, just spawned).
    pub(crate) fn child(&self, pid: u32) {
        #[cfg(unix)]
        unix::set_child(pid);
        #[cfg(not(unix))]
        let _ = pid;
    }
}

impl Drop for Forwarding {
    /// The child was reaped: its pid may be reused, so nothing more is sent to it.
    fn drop(&mut self) {
        #[cfg(unix)]
        unix::set_child(0);
    }
}

#[cfg(unix)]
mod unix {
    use std::sync::atomic::{AtomicI32, Ordering};

    /// The child's pid once it runs (0 before, and after it was reaped).
    static CHILD: AtomicI32 = AtomicI32::new(0);
    /// A signal that arrived while there was no child yet.
    static PENDING: AtomicI32 = AtomicI32::new(0);

    pub(super) const PASSED_ON: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

    pub(super) fn install() {
        for sig in PASSED_ON {
            // SAFETY: a zeroed sigaction is a valid empty one; the handler only reads and
            // writes atomics and calls kill(2), both async-signal-safe.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = handler as *const () as libc::sighandler_t;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(sig, &action, std::ptr::null_mut());
            }
        }
    }

    pub(super) fn set_child(pid: u32) {
        let pid = i32::try_from(pid).unwrap_or(0);
        CHILD.store(pid, Ordering::SeqCst);
        let pending = PENDING.swap(0, Ordering::SeqCst);
        if pid > 0 && pending != 0 {
            // SAFETY: kill(2) with a pid we spawned and a signal number from our list.
            unsafe { libc::kill(pid, pending) };
        }
    }

    extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
        // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo_t (or null, checked).
        if !info.is_null() && unsafe { from_terminal(&*info) } {
            return;
        }
        let pid = CHILD.load(Ordering::SeqCst);
        if pid > 0 {
            // SAFETY: kill(2) is async-signal-safe.
            unsafe { libc::kill(pid, sig) };
        } else {
            PENDING.store(sig, Ordering::SeqCst);
        }
    }

    /// The terminal sent it (Ctrl-C, Ctrl-\, a hang-up): the child, in our process group,
    /// has it already.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    unsafe fn from_terminal(info: &libc::siginfo_t) -> bool {
        info.si_code == libc::SI_KERNEL
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    unsafe fn from_terminal(info: &libc::siginfo_t) -> bool {
        // SAFETY: the caller passes the kernel's siginfo_t.
        unsafe { info.si_pid() == 0 }
    }
}

#[cfg(windows)]
mod windows {
    use windows_sys::Win32::System::Console::{CTRL_BREAK_EVENT, CTRL_C_EVENT, SetConsoleCtrlHandler};

    /// Ctrl+C and Ctrl+Break: handled (the child got them too and decides); anything
    /// else (the console closing, log-off) goes on to the default handler.
    unsafe extern "system" fn handler(event: u32) -> i32 {
        i32::from(event == CTRL_C_EVENT || event == CTRL_BREAK_EVENT)
    }

    pub(super) fn install() {
        // SAFETY: registers a handler that only compares its argument.
        unsafe { SetConsoleCtrlHandler(Some(handler), 1) };
    }

    pub(super) fn keep_std_handles() {
        use windows_sys::Win32::Foundation::{HANDLE_FLAG_INHERIT, SetHandleInformation};
        use windows_sys::Win32::System::Console::{GetStdHandle, STD_ERROR_HANDLE, STD_INPUT_HANDLE, STD_OUTPUT_HANDLE};
        for which in [STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE] {
            // SAFETY: GetStdHandle returns this process's handle (or null/invalid, which
            // SetHandleInformation refuses harmlessly); only its inherit flag changes.
            unsafe { SetHandleInformation(GetStdHandle(which), HANDLE_FLAG_INHERIT, 0) };
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(unix)]
    #[test]
    fn a_child_killed_by_a_signal_exits_128_plus_it() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(super::exit_byte(std::process::ExitStatus::from_raw(15)), 143);
        assert_eq!(super::exit_byte(std::process::ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(super::exit_byte(std::process::ExitStatus::from_raw(0)), 0);
    }
}
