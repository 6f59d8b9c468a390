//! `entra-token inspect`: what a JWT says — audience, issuer, tenant, who, scopes or
//! roles, and its times in local time — read from stdin (`-`), the cache (`-p/-r`), or an
//! argument (with a warning: argv is visible to other users). It decodes, it never
//! verifies: the signature is shown as unchecked, never as trusted.

use crate::broker;
use crate::clock;
use crate::error::{Error, Result};
use crate::log::warn;
use crate::secret::Secret;
use crate::commands::{OutputFormat, TargetArgs};
use crate::commands::shared::{expiry_phrase, human_duration};
use clap::Args;
use serde_json::{Map, Value, json};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// `-` reads the token from stdin. A token given here is visible to other users in
    /// the process list: prefer `-` or the cache form (-p/-r).
    #[arg(value_name = "TOKEN | -")]
    pub token: Option<String>,
    /// Or inspect the cached token of this profile and resource (getting one if needed).
    #[command(flatten)]
    pub target: TargetArgs,
    /// text (default) or json.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

const MAX_TOKEN: u64 = 64 * 1024;

pub(crate) fn run(args: &InspectArgs) -> Result<ExitCode> {
    let token: Secret<String> = match args.token.as_deref() {
        Some("-") => {
            let bytes = crate::protocols::read_stdin_limited(MAX_TOKEN)?;
            Secret::new(String::from_utf8(bytes).map_err(|_| Error::bad_input("the token on stdin is not UTF-8"))?)
        }
        Some(t) => {
            if args.target.names_a_token() {
                return Err(Error::bad_input("give a token or -p/-r, not both"));
            }
            warn!("a token on the command line is visible to other users (ps, shell history); prefer `entra-token inspect -` with the token on stdin");
            Secret::new(t.to_string())
        }
        None => {
            broker::get_token(&args.target.to_request())?.access_token
        }
    };
    let raw = strip_bearer(token.expose());
    let (header, claims) = crate::jwt::decode(raw).ok_or_else(|| {
        Error::bad_input_hint("that is not a JWT (three base64url parts with JSON header and claims)", "refresh tokens and some Microsoft account tokens are opaque and cannot be decoded")
    })?;
    let now = clock::now();
    let text = match args.output {
        OutputFormat::Json => format!("{}\n", to_json(&header, &claims, now)),
        OutputFormat::Text => render(&header, &claims, now, local_offset()),
    };
    crate::protocols::write_stdout(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// Accepts `Bearer …` and `Authorization: Bearer …` as pasted from a request.
fn strip_bearer(s: &str) -> &str {
    let s = s.trim();
    let s = s.strip_prefix("Authorization:").or_else(|| s.strip_prefix("authorization:")).map(str::trim).unwrap_or(s);
    s.strip_prefix("Bearer ").or_else(|| s.strip_prefix("bearer ")).map(str::trim).unwrap_or(s)
}

fn local_offset() -> time::UtcOffset {
    time::UtcOffset::current_local_offset().unwrap_or(time::UtcOffset::UTC)
}

fn local_time(ts: i64, offset: time::UtcOffset) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] [offset_hour sign:mandatory]:[offset_minute]");
    time::OffsetDateTime::from_unix_timestamp(ts).map(|t| t.to_offset(offset)).ok().and_then(|t| t.format(&fmt).ok()).unwrap_or_else(|| ts.to_string())
}

fn num(claims: &Map<String, Value>, name: &str) -> Option<i64> {
    match claims.get(name)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).map(|t| t.clamp(-crate::oauth::MAX_NUM, crate::oauth::MAX_NUM)),
        Value::String(s) => s.parse::<i64>().ok().map(|t| t.clamp(-crate::oauth::MAX_NUM, crate::oauth::MAX_NUM)),
        _ => None,
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(text_of).collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    }
}

pub(crate) fn to_json(header: &Map<String, Value>, claims: &Map<String, Value>, now: i64) -> Value {
    let exp = num(claims, "exp");
    json!({
        "header": header,
        "claims": claims,
        "expires_in": exp.map(|e| e.saturating_sub(now).max(0)),
        "expired": exp.map(|e| e <= now),
        "signature_verified": false,
    })
}

pub(crate) fn render(header: &Map<String, Value>, claims: &Map<String, Value>, now: i64, offset: time::UtcOffset) -> String {
    let mut rows: Vec<(&str, String)> = Vec::new();
    let head: Vec<String> = ["alg", "typ", "kid", "x5t"].iter().filter_map(|k| header.get(*k).map(|v| format!("{k}={}", text_of(v)))).collect();
    rows.push(("header", head.join(" ")));
    let mut claim = |label: &'static str, name: &str| {
        if let Some(v) = claims.get(name) {
            rows.push((label, text_of(v)));
        }
    };
    claim("audience", "aud");
    claim("issuer", "iss");
    claim("tenant", "tid");
    claim("user", "upn");
    if !claims.contains_key("upn") {
        claim("user", "preferred_username");
    }
    claim("name", "name");
    claim("object id", "oid");
    claim("app", "appid");
    if !claims.contains_key("appid") {
        claim("app", "azp");
    }
    claim("scopes", "scp");
    claim("roles", "roles");
    claim("version", "ver");
    let times = [("issued", "iat"), ("not before", "nbf"), ("expires", "exp")];
    for (label, name) in times {
        if let Some(t) = num(claims, name) {
            let rel = match name {
                "exp" => expiry_phrase(t, now),
                _ if t > now => format!("in {}", human_duration(t - now)),
                _ => format!("{} ago", human_duration(now - t)),
            };
            rows.push((label, format!("{} ({rel})", local_time(t, offset))));
        }
    }
    rows.push(("signature", "not verified (inspect only decodes; never trust these claims for access decisions)".into()));
    let width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    // Every value came from the token: escaped, so a claim cannot act on the terminal.
    rows.iter().map(|(l, v)| format!("{l:<width$}  {}\n", crate::log::escape(v))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maps() -> (Map<String, Value>, Map<String, Value>) {
        let h = json!({"alg":"RS256","typ":"JWT","kid":"k1"});
        let c = json!({"aud":"https://graph.microsoft.com","iss":"https://sts.windows.net/t/","tid":"t","upn":"ann@contoso.test","oid":"o","appid":"a","scp":"User.Read Mail.Read","iat":1000,"nbf":1000,"exp":1000 + 42 * 60 + 30});
        (h.as_object().unwrap().clone(), c.as_object().unwrap().clone())
    }

    #[test]
    fn renders_the_claims_people_look_for() {
        let (h, c) = maps();
        let out = render(&h, &c, 1000, time::UtcOffset::UTC);
        for want in ["audience    https://graph.microsoft.com", "tenant      t", "user        ann@contoso.test", "scopes      User.Read Mail.Read", "expires in 42m", "1970-01-01 00:16:40 +00:00", "not verified"] {
            assert!(out.contains(want), "{want} missing in:\n{out}");
        }
        assert!(!out.to_lowercase().contains("signature valid"));
    }

    #[test]
    fn json_never_claims_a_verified_signature() {
        let (h, c) = maps();
        let v = to_json(&h, &c, 1000);
        assert_eq!(v["signature_verified"], false);
        assert_eq!(v["expires_in"], 42 * 60 + 30);
        assert_eq!(v["claims"]["tid"], "t");
    }

    #[test]
    fn strips_pasted_headers() {
        assert_eq!(strip_bearer("Authorization: Bearer abc\n"), "abc");
        assert_eq!(strip_bearer("Bearer abc"), "abc");
        assert_eq!(strip_bearer(" abc "), "abc");
    }
}
