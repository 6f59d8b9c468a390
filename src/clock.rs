//! Time: unix seconds, RFC 3339 formatting, and the per-invocation deadline every network
//! step shares (so `--timeout` bounds the whole call, retries included).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub(crate) fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// 9999-12-31T23:59:59Z, the last second RFC 3339 (and `time`) can write: every unix time
/// this program formats is clamped into 0..=MAX_TIME, so a far-future expiry prints as the
/// year 9999, never as 1970.
pub(crate) const MAX_TIME: i64 = 253_402_300_799;

/// `2026-11-22T06:28:04Z`: UTC, whole seconds, literal Z.
pub(crate) fn rfc3339(ts: i64) -> String {
    let dt = OffsetDateTime::from_unix_timestamp(ts.clamp(0, MAX_TIME)).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let dt = dt.replace_nanosecond(0).unwrap_or(dt);
    dt.format(&Rfc3339).unwrap_or_default()
}

/// The longest duration a person may give (`--timeout`, and any other duration flag):
/// one day. Nothing this program waits for takes longer, and a bound keeps every
/// `Instant + duration` far from overflow.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(86_400);

/// A duration as a person writes it: "2m", "90s", "1h", "1h 30m".
pub(crate) fn short_duration(secs: u64) -> String {
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

/// Parses `30s`, `2m`, `1h`, `500ms`, `1m30s` or plain seconds, at most [`MAX_DURATION`].
/// Every duration a person gives goes through here: the error is one line saying what
/// was wrong and what is accepted, never an overflow.
/// `--min-validity`: whole seconds, or a duration as `--timeout` takes it (`5m`, `2h`).
pub(crate) fn parse_seconds(s: &str) -> Result<i64, String> {
    parse_duration(s).map(|d| d.as_secs() as i64)
}

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = parse_unbounded(s)?;
    if d > MAX_DURATION {
        return Err(format!("'{}' is longer than {}h, the longest accepted", s.trim().escape_default(), MAX_DURATION.as_secs() / 3600));
    }
    Ok(d)
}

fn parse_unbounded(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let too_large = || format!("'{s}' is longer than {}h, the longest accepted", MAX_DURATION.as_secs() / 3600);
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u64>().map(Duration::from_secs).map_err(|_| too_large());
    }
    if !s.is_ascii() || s.bytes().any(|b| b.is_ascii_control()) {
        return Err(format!("'{}' is not a duration (try 30s, 2m, 1h)", s.escape_default()));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("'{s}' is not a duration (try 30s, 2m, 1h)"));
        }
        let n: u64 = rest[..digits].parse().map_err(|_| too_large())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => Some(Duration::from_millis(n)),
            "s" | "sec" | "secs" => Some(Duration::from_secs(n)),
            "m" | "min" | "mins" => n.checked_mul(60).map(Duration::from_secs),
            "h" => n.checked_mul(3600).map(Duration::from_secs),
            _ => return Err(format!("'{s}' has unknown unit '{unit}' (use ms, s, m or h)")),
        };
        total = part.and_then(|p| total.checked_add(p)).ok_or_else(too_large)?;
    }
    Ok(total)
}

/// The end of the time an invocation may spend on the network.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    end: Instant,
    pub total: Duration,
}

impl Deadline {
    /// Saturates: a duration past what `Instant` can hold is capped at [`MAX_DURATION`]
    /// (inputs are checked where they are parsed; this only keeps a bug from aborting).
    pub(crate) fn after(total: Duration) -> Deadline {
        let now = Instant::now();
        let end = now.checked_add(total).unwrap_or(now + MAX_DURATION);
        Deadline { end, total }
    }
    pub(crate) fn remaining(&self) -> Duration {
        self.end.saturating_duration_since(Instant::now())
    }
    pub(crate) fn expired(&self) -> bool {
        self.remaining().is_zero()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3d").is_err());
        assert_eq!(parse_duration("24h").unwrap(), MAX_DURATION);
        for huge in ["18446744073709551615", "99999999999999999999", "5124095576030431h", "18446744073709551615ms", "25h", "86401", "1h86400s"] {
            let e = parse_duration(huge).unwrap_err();
            assert!(e.contains("longest accepted"), "{huge}: {e}");
        }
        assert!(parse_duration("1\u{1b}[2Jh").is_err());
    }

    #[test]
    fn far_future_times_print_as_9999_never_1970() {
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(MAX_TIME + 1), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(i64::MIN), "1970-01-01T00:00:00Z");
        let d = Deadline::after(Duration::MAX);
        assert!(!d.expired());
    }

    #[test]
    fn rfc3339_is_whole_seconds_utc() {
        assert_eq!(rfc3339(1795328884), "2026-11-22T06:28:04Z");
    }
}
