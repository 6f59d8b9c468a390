//! Device code sign-in, for machines without a browser: show the code on stderr (never
//! stdout, which carries the answer), then poll the token endpoint at the given interval
//! until the person approves, declines, or the code expires. Waiting for the person has
//! its own limit (the code's `expires_in`); each poll is still bounded by `--timeout`.

use crate::flows::{FlowCtx, user};
use crate::clock::Deadline;
use crate::error::{Error, Result};
use crate::log::{line, trace};
use crate::oauth::{self, TokenReply};
use crate::secret::Secret;
use serde::Deserialize;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub(crate) const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Entra's default when a field is missing.
const DEFAULT_INTERVAL: u64 = 5;
const DEFAULT_EXPIRES_IN: u64 = 900;
/// Bounds on what a devicecode answer may ask for (Entra: 5s and 900s): a poll at least
/// every minute, and at most an hour to sign in, whatever the server says.
const MAX_INTERVAL: u64 = 60;
const MAX_EXPIRES_IN: u64 = 3600;

/// The devicecode endpoint's answer (v2 `verification_uri`, v1 `verification_url`;
/// numbers may be strings).
#[derive(Deserialize)]
pub(crate) struct DeviceCode {
    pub device_code: Secret<String>,
    pub user_code: String,
    #[serde(alias = "verification_url")]
    pub verification_uri: String,
    #[serde(default, deserialize_with = "oauth::num")]
    pub expires_in: Option<i64>,
    #[serde(default, deserialize_with = "oauth::num")]
    pub interval: Option<i64>,
    #[serde(default)]
    pub message: Option<String>,
}

impl DeviceCode {
    /// The code's lifetime and the poll interval in seconds, defaulted and bounded.
    pub(crate) fn bounded(&self) -> (u64, u64) {
        let expires_in = self.expires_in.filter(|s| *s > 0).map_or(DEFAULT_EXPIRES_IN, |s| (s as u64).min(MAX_EXPIRES_IN));
        let interval = self.interval.filter(|s| *s > 0).map_or(DEFAULT_INTERVAL, |s| (s as u64).min(MAX_INTERVAL));
        (expires_in, interval)
    }
}

pub(crate) fn parse(body: &[u8], url: &str) -> Result<DeviceCode> {
    serde_json::from_slice(body).map_err(|_| Error::Network {
        url: url.to_string(),
        message: "the device code answer is not what Entra sends".into(),
        hint: Some("check that the authority URL points at Entra".into()),
    })
}

/// What one poll told us.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Poll {
    Pending,
    SlowDown,
}

/// Maps a refused poll: keep going, slow down, or a final error with a clear message.
pub(crate) fn classify(e: Error) -> std::result::Result<Poll, Error> {
    let Some(aad) = e.aad() else { return Err(e) };
    let msg = |m: &str, hint: &str| Err(Error::Auth { message: m.to_string(), aad: Some(Box::new(aad.clone())), hint: Some(hint.to_string()) });
    match aad.error.as_str() {
        "authorization_pending" => Ok(Poll::Pending),
        "slow_down" => Ok(Poll::SlowDown),
        "authorization_declined" => msg("the sign-in was declined in the browser", "run the command again and approve the request"),
        "expired_token" => msg("the device code expired before anyone signed in", "run the command again and enter the code within its time"),
        "bad_verification_code" => msg("Entra does not know this device code", "run the command again for a new code"),
        _ => Err(e),
    }
}

pub(crate) fn sign_in(ctx: &FlowCtx<'_>) -> Result<TokenReply> {
    let p = ctx.profile;
    let target = user::TargetForm::new(ctx)?;
    let url = p.authority.devicecode_url(p.endpoint);
    let mut form: Vec<(&str, &str)> = vec![("client_id", p.client_id.as_str())];
    target.add_to(&mut form);
    let claims = crate::flows::sent_claims(ctx);
    let form = crate::flows::with_claims(form, claims.as_deref());
    let reply = ctx.http.post_form(&url, &form, &[("Accept", "application/json")], Deadline::after(ctx.deadline.total), crate::http::RetryPolicy::TOKEN)?;
    if reply.status != 200 {
        return Err(oauth::error_from_reply(&reply, &url));
    }
    let dc = parse(&reply.body, &url)?;
    let (expires_in, mut interval) = dc.bounded();
    match &dc.message {
        Some(m) if !m.trim().is_empty() => line(format_args!("{}", m.trim())),
        _ => line(format_args!("To sign in, open {} in a browser and enter the code {}", dc.verification_uri, dc.user_code)),
    }
    let wait_until = Instant::now() + Duration::from_secs(expires_in);
    let countdown = std::io::stderr().is_terminal();
    let token_url = p.authority.token_url(p.endpoint);
    let secret = user::client_secret(p)?;
    let result = loop {
        if let Err(e) = wait(Duration::from_secs(interval), wait_until, countdown) {
            break Err(e);
        }
        let mut form: Vec<(&str, &str)> = vec![("grant_type", GRANT), ("client_id", p.client_id.as_str()), ("device_code", dc.device_code.expose().as_str())];
        if let Some(s) = &secret {
            form.push(("client_secret", s.expose().as_str()));
        }
        ctx.binding.add_to(&mut form);
        // Each poll gets the whole network budget: the wait is not the network's fault.
        match oauth::redeem(ctx.http, &token_url, &form, Deadline::after(ctx.deadline.total)).map_err(classify) {
            Ok(reply) => break Ok(reply),
            Err(Ok(Poll::Pending)) => trace!(2, "authorization pending"),
            Err(Ok(Poll::SlowDown)) => {
                interval = (interval + 5).min(MAX_INTERVAL);
                trace!(1, "Entra asked to slow down; polling every {interval}s");
            }
            Err(Err(e)) => break Err(e),
        }
    };
    if countdown {
        let _ = write!(std::io::stderr(), "\r\x1b[2K");
    }
    result
}

/// Sleeps `interval` (or until the code expires), rewriting one countdown line on a terminal.
fn wait(interval: Duration, until: Instant, countdown: bool) -> Result<()> {
    let end = Instant::now() + interval;
    loop {
        let now = Instant::now();
        if now >= until {
            return Err(Error::auth("the device code expired before anyone signed in", Some("run the command again and enter the code within its time".into())));
        }
        if now >= end {
            return Ok(());
        }
        if countdown {
            let left = until - now;
            let _ = write!(std::io::stderr(), "\r\x1b[2Kentra-token: waiting for the sign-in… {}:{:02} left", left.as_secs() / 60, left.as_secs() % 60);
            let _ = std::io::stderr().flush();
        }
        std::thread::sleep((end - now).min(until - now).min(Duration::from_secs(1)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AadError;

    #[test]
    fn parses_string_numbers_and_v1_names() {
        let d = parse(br#"{"device_code":"d","user_code":"U","verification_url":"https://x/devicelogin","expires_in":"900","interval":"5"}"#, "u").unwrap();
        assert_eq!((d.expires_in, d.interval), (Some(900), Some(5)));
        assert_eq!(d.verification_uri, "https://x/devicelogin");
        let d = parse(br#"{"device_code":"d","user_code":"U","verification_uri":"v","expires_in":600,"interval":1,"message":"m"}"#, "u").unwrap();
        assert_eq!((d.expires_in, d.interval, d.message.as_deref()), (Some(600), Some(1), Some("m")));
        assert!(parse(b"<html>", "u").is_err());
        let d = parse(br#"{"device_code":"d","user_code":"U","verification_uri":"v","expires_in":9223372036854775807,"interval":1e300}"#, "u").unwrap();
        assert_eq!(d.bounded(), (MAX_EXPIRES_IN, MAX_INTERVAL));
        let d = parse(br#"{"device_code":"d","user_code":"U","verification_uri":"v","expires_in":-5,"interval":"0"}"#, "u").unwrap();
        assert_eq!(d.bounded(), (DEFAULT_EXPIRES_IN, DEFAULT_INTERVAL));
    }

    #[test]
    fn classifies_polls() {
        let e = |err: &str| oauth::auth_error(AadError { error: err.into(), codes: vec![70016], ..AadError::default() });
        assert_eq!(classify(e("authorization_pending")).unwrap(), Poll::Pending);
        assert_eq!(classify(e("slow_down")).unwrap(), Poll::SlowDown);
        for (err, text) in [("authorization_declined", "declined"), ("expired_token", "expired"), ("bad_verification_code", "does not know")] {
            let out = classify(e(err)).unwrap_err();
            assert_eq!(out.exit_code(), 3);
            assert!(out.to_string().contains(text), "{out}");
        }
        assert_eq!(classify(Error::general("x")).unwrap_err().exit_code(), 1);
    }
}
