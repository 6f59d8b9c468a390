//! Whether a person is here to answer, and their console: the controlling terminal on
//! Unix (`/dev/tty`), the console on Windows (`CONIN$`/`CONOUT$`), and whether a browser
//! opened here would be seen. The flows above ask these questions without knowing the
//! platform, so "nobody can answer" means the same thing everywhere.

/// The controlling terminal, for prompts that must not read stdin (it may carry a
/// protocol request) or write stdout (it carries the answer): `/dev/tty`, or on Windows
/// the console itself (`CONIN$` to read, `CONOUT$` to write). None: nobody to ask.
pub(crate) fn open_tty() -> Option<Tty> {
    #[cfg(unix)]
    {
        let f = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty").ok()?;
        Some(Tty { input: f.try_clone().ok()?, output: f })
    }
    #[cfg(windows)]
    {
        let input = std::fs::OpenOptions::new().read(true).write(true).open("CONIN$").ok()?;
        let output = std::fs::OpenOptions::new().read(true).write(true).open("CONOUT$").ok()?;
        Some(Tty { input, output })
    }
    #[cfg(not(any(unix, windows)))]
    {
        None
    }
}

/// The controlling terminal when this process is its foreground job: a background job
/// (`cmd &`) that read it would be stopped by SIGTTIN. Unix only (None elsewhere).
#[cfg(unix)]
pub(crate) fn foreground_tty() -> Option<std::fs::File> {
    use std::os::fd::AsRawFd;
    let tty = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty").ok()?;
    let mut foreground: libc::pid_t = 0;
    // ioctl(TIOCGPGRP) is tcgetpgrp, and getpgid(0) is getpgrp: the same answers through
    // calls the binary already links, since each new libc symbol is resolved at the start
    // of every process, the cached path included.
    // SAFETY: TIOCGPGRP writes one pid_t through a pointer to ours; getpgid(0) has no preconditions.
    let ours = unsafe {
        if libc::ioctl(tty.as_raw_fd(), libc::TIOCGPGRP, &mut foreground) != 0 {
            return None;
        }
        #[cfg(target_os = "linux")]
        let ours = libc::syscall(libc::SYS_getpgid, 0) as libc::pid_t;
        #[cfg(not(target_os = "linux"))]
        let ours = libc::getpgrp();
        ours
    };
    (foreground == ours).then_some(tty)
}

/// Drops what was typed on `tty` and not yet read (type-ahead): an answer counts only when
/// typed after the question. tcflush(TCIFLUSH), as its ioctl on Linux (no new libc symbol).
#[cfg(unix)]
pub(crate) fn drop_typeahead(tty: &std::fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: a flush request on a descriptor we own; it reads and writes no memory of ours.
    unsafe {
        #[cfg(target_os = "linux")]
        libc::ioctl(tty.as_raw_fd(), libc::TCFLSH, libc::TCIFLUSH);
        #[cfg(not(target_os = "linux"))]
        libc::tcflush(tty.as_raw_fd(), libc::TCIFLUSH);
    }
}

/// One line typed on `tty` within `wait`, without its line end (at most `max` bytes kept);
/// None when the time is up, or the terminal is gone, first. Each read waits in poll(2)
/// for at most the time left, so nothing is left reading the terminal after a timeout
/// (a reader thread blocked in read(2) would take the next question's answer).
#[cfg(unix)]
pub(crate) fn read_line_within(tty: &mut std::fs::File, wait: std::time::Duration, max: usize) -> Option<String> {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let deadline = std::time::Instant::now() + wait;
    let mut line = Vec::new();
    loop {
        let left = deadline.checked_duration_since(std::time::Instant::now()).filter(|l| !l.is_zero())?;
        let mut p = libc::pollfd { fd: tty.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one pollfd of ours, for the call's duration.
        match unsafe { libc::poll(&mut p, 1, left.as_millis().clamp(1, i32::MAX as u128) as i32) } {
            0 => continue,
            n if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => continue,
            n if n < 0 => return None,
            _ if p.revents & libc::POLLIN == 0 => return None,
            _ => {}
        }
        let mut chunk = [0u8; 256];
        match tty.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => {
                line.extend_from_slice(&chunk[..n]);
                if let Some(end) = line.iter().position(|b| *b == b'\n') {
                    line.truncate(end);
                    return Some(String::from_utf8_lossy(&line).into_owned());
                }
                line.truncate(max);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// The person's terminal: reads their typing, writes what they should see.
pub(crate) struct Tty {
    input: std::fs::File,
    output: std::fs::File,
}

impl std::io::Read for Tty {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.input.read(buf)
    }
}

impl std::io::Write for Tty {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.output.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.output.flush()
    }
}

/// Would a browser opened here be seen by a person? Linux and the BSDs: a display
/// (`DISPLAY`/`WAYLAND_DISPLAY`). macOS: yes. Windows: an interactive desktop (not a
/// service's or an SSH session's hidden window station) *and* a console someone sits
/// at: `login` from a scheduled task, a service, a pipe-only parent or CI then signs in
/// by device code as Linux does without a display, instead of opening a browser nobody
/// sees and waiting ten minutes for it.
pub(crate) fn browser_can_be_seen() -> bool {
    #[cfg(windows)]
    {
        interactive_desktop() && open_tty().is_some()
    }
    #[cfg(target_os = "macos")]
    {
        true
    }
    #[cfg(not(any(windows, target_os = "macos")))]
    {
        crate::env::graphical()
    }
}

/// The process's window station is the visible, interactive one (`WSF_VISIBLE`): false
/// for services, scheduled tasks run without a logged-on user and OpenSSH sessions.
#[cfg(windows)]
fn interactive_desktop() -> bool {
    use windows_sys::Win32::System::StationsAndDesktops::{GetProcessWindowStation, GetUserObjectInformationW, UOI_FLAGS, USEROBJECTFLAGS};
    const WSF_VISIBLE: u32 = 1;
    let mut flags = USEROBJECTFLAGS { fInherit: 0, fReserved: 0, dwFlags: 0 };
    let mut needed = 0u32;
    // SAFETY: the window station handle belongs to the process and is not closed; the
    // output buffer is a USEROBJECTFLAGS of the size passed.
    let ok = unsafe {
        let station = GetProcessWindowStation();
        !station.is_null()
            && GetUserObjectInformationW(station, UOI_FLAGS, (&raw mut flags).cast(), std::mem::size_of::<USEROBJECTFLAGS>() as u32, &mut needed) != 0
    };
    ok && flags.dwFlags & WSF_VISIBLE != 0
}
