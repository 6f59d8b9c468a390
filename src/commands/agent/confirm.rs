//! The agent's `--confirm`: its person approves each request, on its terminal or by a
//! desktop notification, within the request's own time. On the terminal the answer names
//! the request (a short code shown in the question must be typed back), what was typed
//! before the question is dropped, and the read ends at the deadline with nothing left
//! waiting on the terminal: one keypress, early or late, never approves a request the
//! person did not see.

use super::Shared;
use crate::agent::Confirm;
use crate::error::{Error, Result};
use std::io::Write;
use std::time::{Duration, Instant};

/// How long a person has to answer a `--confirm` question.
const CONFIRM_WAIT: Duration = Duration::from_secs(60);
/// The characters of a question's code: no look-alikes (0/o, 1/l/i).
const CODE_LETTERS: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// Asks the agent's person, one question at a time; anything but a yes in time is a no.
pub(super) fn confirm(shared: &Shared, how: Confirm, what: &str, who: &str, within: Duration) -> Result<()> {
    // Everything (waiting for an earlier question to end included) ends a second before
    // the client gives up, so it hears why.
    let deadline = Instant::now() + CONFIRM_WAIT.min(within.saturating_sub(Duration::from_secs(1)));
    let _one = loop {
        match shared.tty.try_lock() {
            Ok(g) => break g,
            Err(std::sync::TryLockError::Poisoned(p)) => break p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(std::sync::TryLockError::WouldBlock) => return Err(refused("did not answer in time (another request's question was still open)")),
        }
    };
    let wait = deadline.saturating_duration_since(Instant::now());
    let tty = match how {
        Confirm::Notify => None,
        _ => crate::console::foreground_tty(),
    };
    match (how, tty) {
        (Confirm::Terminal, None) => Err(refused("cannot be asked (the agent has no terminal, or runs in its background, for --confirm=terminal)")),
        (_, Some(tty)) => ask_terminal(tty, what, who, wait),
        (_, None) => ask_desktop(what, who, wait),
    }
}

pub(super) fn refused(why: &str) -> Error {
    Error::Agent { code: "forbidden", message: format!("the agent's person {why}"), hint: None, exit: 3 }
}

/// Four characters, fresh for each question.
fn short_code() -> String {
    let mut r = [0u8; 4];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut r);
    r.iter().map(|b| CODE_LETTERS[*b as usize % CODE_LETTERS.len()] as char).collect()
}

/// The code on the controlling terminal, typed back within `wait`.
fn ask_terminal(mut tty: std::fs::File, what: &str, who: &str, wait: Duration) -> Result<()> {
    let code = short_code();
    crate::console::drop_typeahead(&tty);
    let _ = write!(tty, "entra-token: {who} asks for a token: {}. Allow? Type {code} to allow it (anything else refuses): ", crate::log::escape(what));
    let _ = tty.flush();
    match crate::console::read_line_within(&mut tty, wait, 256) {
        Some(a) if a.trim().eq_ignore_ascii_case(&code) => Ok(()),
        Some(_) => {
            let _ = writeln!(tty, "entra-token: not the code; refused");
            Err(refused("declined the request"))
        }
        None => {
            let _ = writeln!(tty, "\nentra-token: no answer; refused");
            Err(refused("did not answer in time"))
        }
    }
}

/// A desktop notification with Allow and Deny; only a click on Allow in time is a yes.
fn ask_desktop(what: &str, who: &str, wait: Duration) -> Result<()> {
    let body = format!("{who} asks for a token: {what}.");
    match crate::notify::ask("entra-token agent: allow a token?", &body, &[("allow", "Allow"), ("deny", "Deny")], wait) {
        Ok(crate::notify::Answer::Action(a)) if a == "allow" => Ok(()),
        Ok(crate::notify::Answer::Action(_)) => Err(refused("declined the request")),
        Ok(crate::notify::Answer::Dismissed) => Err(refused("did not allow the request in time (the notification was closed or not answered)")),
        Err(e) => Err(refused(&format!("cannot be asked (no terminal, and no desktop notification: {e})"))),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn codes_are_four_unambiguous_characters_and_differ() {
        let (a, b) = (super::short_code(), super::short_code());
        assert_eq!(a.len(), 4);
        assert!(a.bytes().all(|c| super::CODE_LETTERS.contains(&c)), "{a}");
        assert!(a != b || super::short_code() != a);
    }
}
