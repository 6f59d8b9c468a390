//! NuGet's cross-platform credential plugin (protocol 2.0.0): dotnet, nuget.exe and
//! MSBuild start the plugin with `-Plugin` and exchange one JSON message per line over
//! stdin/stdout: `{"RequestId","Type","Method","Payload"}`. Both sides send a `Handshake`
//! request (symmetric: each negotiates the other's versions), NuGet then asks for the
//! operation claims, initializes, sets the log level and asks `GetAuthenticationCredentials`
//! per feed URL. A URL no profile's `urls` claims is answered `NotFound` at once, which NuGet
//! reads as "provider not applicable" and moves on. This file is the pure codec; the
//! blocking adapter with its progress and cancel handling is `nuget/serve.rs`.

pub(crate) mod serve;

use crate::broker::Credential;
use serde::Deserialize;
use serde_json::{Value, json};

/// The protocol version we speak, and the oldest we accept: authentication came with 2.0.0.
pub(crate) const PROTOCOL_VERSION: Version = Version(2, 0, 0);
pub(crate) const MINIMUM_VERSION: Version = Version(2, 0, 0);
/// The username NuGet sends with the token (Azure Artifacts takes any; git's is the same).
pub(crate) const USERNAME: &str = "entra-token";

/// A protocol version, `MAJOR.MINOR.PATCH` (NuGet's SemanticVersion, without labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Version(pub u32, pub u32, pub u32);

impl Version {
    pub(crate) fn parse(s: &str) -> Option<Version> {
        let mut parts = s.trim().splitn(3, '.').map(|p| p.parse::<u32>().ok());
        Some(Version(parts.next()??, parts.next()??, parts.next()??))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// The message types of the protocol; anything else is read as `Unknown` and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(crate) enum Kind {
    Request,
    Response,
    Progress,
    Fault,
    Cancel,
    #[serde(other)]
    Unknown,
}

/// One message as read. `Method` stays a string: a method we do not know is answered with
/// a fault naming it, not a parse error.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Message {
    pub request_id: String,
    #[serde(rename = "Type")]
    pub kind: Kind,
    pub method: String,
    #[serde(default)]
    pub payload: Option<Value>,
}

/// Parses one line. Request ids are echoed back, so they are held to printable ASCII.
pub(crate) fn decode(line: &[u8]) -> Result<Message, String> {
    let m: Message = serde_json::from_slice(line).map_err(|e| format!("NuGet sent a message entra-token cannot read ({e})"))?;
    if m.request_id.is_empty() || m.request_id.len() > 256 || !m.request_id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("NuGet sent a message with an unusable RequestId".into());
    }
    Ok(m)
}

/// A field of a payload, as a string (NuGet's payloads are PascalCase objects).
fn field<'a>(payload: Option<&'a Value>, name: &str) -> Option<&'a Value> {
    payload?.as_object()?.get(name)
}

/// The answer to NuGet's `Handshake` request, following NuGet's own `SymmetricHandshake`:
/// refused when its range is inverted or does not meet ours; else the lower of the two
/// current versions.
pub(crate) fn negotiate(payload: Option<&Value>) -> Option<Version> {
    let version = Version::parse(field(payload, "ProtocolVersion")?.as_str()?)?;
    let minimum = Version::parse(field(payload, "MinimumProtocolVersion")?.as_str()?)?;
    if minimum > version || version < MINIMUM_VERSION || minimum > PROTOCOL_VERSION {
        return None;
    }
    Some(version.min(PROTOCOL_VERSION))
}

/// NuGet's answer to our own `Handshake` request: the version it chose, if it is one we speak.
pub(crate) fn handshake_accepted(payload: Option<&Value>) -> Option<Version> {
    if field(payload, "ResponseCode")?.as_str()? != "Success" {
        return None;
    }
    let v = Version::parse(field(payload, "ProtocolVersion")?.as_str()?)?;
    (MINIMUM_VERSION..=PROTOCOL_VERSION).contains(&v).then_some(v)
}

/// `Initialize`'s `RequestTimeout`, a .NET TimeSpan (`[d.]hh:mm:ss[.fffffff]`), bounded to
/// one hour; None when absent or unreadable (the protocol's 5 s then stands).
pub(crate) fn request_timeout(payload: Option<&Value>) -> Option<std::time::Duration> {
    let s = field(payload, "RequestTimeout")?.as_str()?.trim();
    let (days, rest) = match s.split_once('.') {
        Some((d, r)) if r.contains(':') && !d.contains(':') => (d.parse::<u64>().ok()?, r),
        _ => (0, s),
    };
    let mut hms = rest.splitn(3, ':');
    let h: u64 = hms.next()?.parse().ok()?;
    let m: u64 = hms.next()?.parse().ok()?;
    let secs: f64 = hms.next()?.parse().ok()?;
    if m > 59 || !(0.0..60.0).contains(&secs) || days > 1 || h > 23 {
        return None;
    }
    let total = (days * 86_400 + h * 3600 + m * 60) as f64 + secs;
    (total > 0.0).then(|| std::time::Duration::from_secs_f64(total.min(3600.0)))
}

/// `GetAuthenticationCredentials`' payload.
#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct AuthRequest {
    pub uri: String,
    #[serde(default)]
    pub is_retry: bool,
    #[serde(default, alias = "NonInteractive")]
    pub is_non_interactive: bool,
    #[serde(default)]
    pub can_show_dialog: bool,
}

pub(crate) fn auth_request(payload: Option<&Value>) -> Result<AuthRequest, String> {
    let p = payload.ok_or("GetAuthenticationCredentials came without a payload")?;
    serde_json::from_value(p.clone()).map_err(|e| format!("GetAuthenticationCredentials: {e}"))
}

/// What we answer for a feed URL.
pub(crate) enum AuthAnswer {
    Token(Credential),
    /// Not ours (no profile claims the URL): NuGet tries its next provider.
    NotFound,
    Error(String),
}

/// `GetAuthenticationCredentials`' response payload: Basic credentials whose password is
/// the token, as Azure Artifacts takes them.
pub(crate) fn auth_payload(a: &AuthAnswer) -> Value {
    match a {
        AuthAnswer::Token(c) => json!({
            "ResponseCode": "Success", "Username": USERNAME, "Password": c.access_token.expose(),
            "Message": null, "AuthenticationTypes": ["Basic"],
        }),
        AuthAnswer::NotFound => json!({"ResponseCode": "NotFound", "Username": null, "Password": null, "Message": null, "AuthenticationTypes": null}),
        AuthAnswer::Error(m) => json!({"ResponseCode": "Error", "Username": null, "Password": null, "Message": m, "AuthenticationTypes": null}),
    }
}

/// `GetOperationClaims`' source: None for NuGet's source-agnostic question (the one it asks
/// authentication plugins), else the feed it names.
pub(crate) fn claims_source(payload: Option<&Value>) -> Option<String> {
    field(payload, "PackageSourceRepository").and_then(Value::as_str).map(str::to_string)
}

/// `GetOperationClaims`' response: authentication, or nothing for a feed that is not ours.
pub(crate) fn claims_payload(ours: bool) -> Value {
    let claims: &[&str] = if ours { &["Authentication"] } else { &[] };
    json!({"ResponseCode": "Success", "Claims": claims})
}

pub(crate) fn success_payload() -> Value {
    json!({"ResponseCode": "Success"})
}

pub(crate) fn handshake_payload(v: Option<Version>) -> Value {
    match v {
        Some(v) => json!({"ResponseCode": "Success", "ProtocolVersion": v.to_string()}),
        None => json!({"ResponseCode": "Error", "ProtocolVersion": null}),
    }
}

/// Our own `Handshake` request's payload.
pub(crate) fn handshake_request() -> Value {
    json!({"ProtocolVersion": PROTOCOL_VERSION.to_string(), "MinimumProtocolVersion": MINIMUM_VERSION.to_string()})
}

/// One message line (with its newline); `payload` None leaves the field out (Cancel, Close).
pub(crate) fn encode(request_id: &str, kind: &str, method: &str, payload: Option<Value>) -> String {
    let mut m = json!({"RequestId": request_id, "Type": kind, "Method": method});
    if let Some(p) = payload {
        m["Payload"] = p;
    }
    format!("{m}\n")
}

/// A `Progress` message: the request is still being worked on (resets NuGet's timeout).
pub(crate) fn progress(request_id: &str, method: &str) -> String {
    encode(request_id, "Progress", method, Some(json!({"Percentage": null})))
}

/// A `Fault` for a request we cannot serve.
pub(crate) fn fault(request_id: &str, method: &str, message: &str) -> String {
    encode(request_id, "Fault", method, Some(json!({"Message": message})))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn p(v: Value) -> Option<Value> {
        Some(v)
    }

    #[test]
    fn decodes_the_published_message_shape() {
        let m = decode(br#"{"RequestId":"a1b2","Type":"Request","Method":"Handshake","Payload":{"ProtocolVersion":"2.0.0","MinimumProtocolVersion":"1.0.0"}}"#).unwrap();
        assert_eq!((m.request_id.as_str(), m.kind, m.method.as_str()), ("a1b2", Kind::Request, "Handshake"));
        let m = decode(br#"{"RequestId":"x","Type":"Cancel","Method":"GetAuthenticationCredentials"}"#).unwrap();
        assert_eq!(m.kind, Kind::Cancel);
        assert!(m.payload.is_none());
        assert_eq!(decode(br#"{"RequestId":"x","Type":"Future","Method":"M"}"#).unwrap().kind, Kind::Unknown);
        assert!(decode(br#"{"RequestId":"a\nb","Type":"Request","Method":"M"}"#).is_err());
        assert!(decode(br#"{"RequestId":"","Type":"Request","Method":"M"}"#).is_err());
        assert!(decode(b"{").is_err());
    }

    #[test]
    fn negotiates_as_nugets_symmetric_handshake_does() {
        let hs = |v: &str, min: &str| negotiate(p(json!({"ProtocolVersion": v, "MinimumProtocolVersion": min})).as_ref());
        assert_eq!(hs("2.0.0", "1.0.0"), Some(Version(2, 0, 0)));
        assert_eq!(hs("3.1.0", "2.0.0"), Some(Version(2, 0, 0)));
        assert_eq!(hs("1.0.0", "1.0.0"), None, "no authentication before 2.0.0");
        assert_eq!(hs("3.0.0", "3.0.0"), None, "a host that needs more than we speak");
        assert_eq!(hs("1.0.0", "2.0.0"), None, "an inverted range");
        assert_eq!(hs("two", "1.0.0"), None);
        assert_eq!(negotiate(None), None);
        assert_eq!(handshake_accepted(p(json!({"ResponseCode":"Success","ProtocolVersion":"2.0.0"})).as_ref()), Some(Version(2, 0, 0)));
        assert_eq!(handshake_accepted(p(json!({"ResponseCode":"Success","ProtocolVersion":"1.0.0"})).as_ref()), None);
        assert_eq!(handshake_accepted(p(json!({"ResponseCode":"Error"})).as_ref()), None);
    }

    #[test]
    fn reads_dotnet_timespans() {
        let t = |s: &str| request_timeout(p(json!({"ClientVersion":"6.0","Culture":"en-US","RequestTimeout": s})).as_ref());
        assert_eq!(t("00:00:05"), Some(Duration::from_secs(5)));
        assert_eq!(t("00:01:30.5000000"), Some(Duration::from_millis(90_500)));
        assert_eq!(t("1.00:00:00"), Some(Duration::from_secs(3600)), "bounded");
        assert_eq!(t("00:00:00"), None);
        assert_eq!(t("-00:00:05"), None);
        assert_eq!(t("00:99:00"), None);
        assert_eq!(t("soon"), None);
    }

    #[test]
    fn auth_requests_and_answers() {
        let r = auth_request(p(json!({"Uri":"https://pkgs.dev.azure.com/o/_packaging/f/nuget/v3/index.json","IsRetry":true,"IsNonInteractive":true,"CanShowDialog":false})).as_ref()).unwrap();
        assert!(r.is_retry && r.is_non_interactive && !r.can_show_dialog);
        assert!(auth_request(p(json!({"IsRetry":false})).as_ref()).is_err());
        assert!(auth_request(None).is_err());
        let c = Credential::sample("eyJtok", 2000);
        let ok = auth_payload(&AuthAnswer::Token(c));
        assert_eq!(ok, json!({"ResponseCode":"Success","Username":"entra-token","Password":"eyJtok","Message":null,"AuthenticationTypes":["Basic"]}));
        assert_eq!(auth_payload(&AuthAnswer::NotFound)["ResponseCode"], "NotFound");
        assert_eq!(auth_payload(&AuthAnswer::Error("no".into()))["Message"], "no");
    }

    #[test]
    fn encodes_messages_exactly() {
        assert_eq!(encode("r1", "Cancel", "GetAuthenticationCredentials", None), "{\"Method\":\"GetAuthenticationCredentials\",\"RequestId\":\"r1\",\"Type\":\"Cancel\"}\n");
        assert_eq!(progress("r1", "M"), "{\"Method\":\"M\",\"Payload\":{\"Percentage\":null},\"RequestId\":\"r1\",\"Type\":\"Progress\"}\n");
        assert_eq!(claims_payload(true), json!({"ResponseCode":"Success","Claims":["Authentication"]}));
        assert_eq!(claims_payload(false), json!({"ResponseCode":"Success","Claims":[]}));
        assert_eq!(claims_source(p(json!({"PackageSourceRepository":null,"ServiceIndex":null})).as_ref()), None);
        assert_eq!(handshake_payload(None), json!({"ResponseCode":"Error","ProtocolVersion":null}));
        let f: Value = serde_json::from_str(&fault("r", "Frob", "no such method")).unwrap();
        assert_eq!(f, json!({"RequestId":"r","Type":"Fault","Method":"Frob","Payload":{"Message":"no such method"}}));
    }
}
