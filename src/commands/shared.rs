//! What login, logout, refresh, status and inspect share: how an expiry is said to a person,
//! and the user's cache directory opened (created when missing).

use crate::cache::{self, Cache};
use crate::error::Result;

/// "42m", "1h 05m", "2d 3h", "30s".
pub(crate) fn human_duration(secs: i64) -> String {
    let s = secs.abs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

/// "expires in 42m" / "expired 3m ago".
pub(crate) fn expiry_phrase(expires_on: i64, now: i64) -> String {
    if expires_on > now { format!("expires in {}", human_duration(expires_on - now)) } else { format!("expired {} ago", human_duration(now - expires_on)) }
}

pub(super) fn open_cache() -> Result<Cache> {
    Cache::open(cache::default_dir()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_person_would_say_them() {
        assert_eq!(human_duration(42 * 60 + 10), "42m");
        assert_eq!(human_duration(30), "30s");
        assert_eq!(human_duration(3600 + 300), "1h 05m");
        assert_eq!(human_duration(2 * 86400 + 3 * 3600), "2d 3h");
        assert_eq!(expiry_phrase(1000 + 42 * 60, 1000), "expires in 42m");
        assert_eq!(expiry_phrase(1000, 1000 + 180), "expired 3m ago");
    }
}
