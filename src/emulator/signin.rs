//! The front halves of the person flows: the device code endpoint that hands out a user
//! code and its verification page, and the authorize endpoint that redirects back to the
//! client's `redirect_uri` with a code. With `--approve auto` both are approved at once
//! (as the first person); with `--approve click` they wait for someone to pick a person
//! and click Approve on the emulator's own page.

use serde_json::json;

use super::config::Approve;
use super::http::{Reply, Request};
use super::state::{AuthCode, DeviceCode, Shared, State, Target, Version, lock};
use super::wire::{self, AadError};

/// Minimal HTML escaping for values we echo into our pages.
fn esc(s: &str) -> String {
    s.chars().fold(String::with_capacity(s.len()), |mut o, c| {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
        o
    })
}

fn page(title: &str, body: &str) -> String {
    format!("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t} - entra-token emulator</title></head><body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\">\n<p style=\"color:#a00\">entra-token emulator: a local stand-in for Microsoft Entra ID. Nothing here signs in anywhere real.</p>\n<h1>{t}</h1>\n{body}\n</body></html>\n", t = esc(title))
}

fn people_select(st: &State) -> String {
    let options: String = st.settings.users.iter().map(|u| format!("<option value=\"{0}\">{1} ({0})</option>", esc(&u.username), esc(&u.name))).collect();
    format!("<label>Sign in as <select name=\"user\">{options}</select></label>")
}

/// Nine characters from an alphabet without look-alikes, like Entra's user codes.
fn user_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    wire::random_bytes(9).iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

/// `POST /{tenant}/oauth2[/v2.0]/devicecode`.
pub(crate) fn devicecode(shared: &Shared, tenant: &str, v: Version, req: &Request) -> Reply {
    let mut st = lock(shared);
    if st.tenant_id(tenant).is_none() {
        return AadError::tenant_not_found(tenant).reply();
    }
    let Some(client_id) = req.form("client_id").map(str::to_ascii_lowercase) else { return AadError::missing("client_id").reply() };
    if st.settings.app(&client_id).is_none() {
        return AadError::unknown_client(&client_id, tenant).reply();
    }
    let field = if v == Version::V2 { "scope" } else { "resource" };
    let Some(scope) = req.form(field).filter(|s| !s.trim().is_empty()) else { return AadError::missing(field).reply() };
    if v == Version::V2
        && let Err(e) = Target::v2(scope)
    {
        return e.reply();
    }
    let device_code = st.opaque("EMULATOR-DC.");
    let user_code = user_code();
    let approved_by = (st.settings.approve == Approve::Auto).then(|| st.default_user());
    let dc = DeviceCode { client_id, tenant: tenant.to_string(), scope: scope.to_string(), version: v, user_code: user_code.clone(), expires: wire::now() + 900, approved_by, redeemed: false };
    st.device_codes.insert(device_code.clone(), dc);
    let verification = format!("{}/devicelogin", st.url);
    let mut body = json!({
        "user_code": user_code,
        "device_code": device_code,
        "expires_in": 900,
        "interval": 1,
        "message": format!("To sign in, use a web browser to open the page {verification} and enter the code {user_code} to authenticate."),
    });
    body[if v == Version::V2 { "verification_uri" } else { "verification_url" }] = json!(verification);
    Reply::json(200, &body)
}

/// `GET /devicelogin`: enter the code; `POST /devicelogin`: approve it as the chosen person.
pub(crate) fn devicelogin(shared: &Shared, req: &Request) -> Reply {
    let mut st = lock(shared);
    if req.method == "POST" {
        let code = req.form("user_code").unwrap_or("").trim().to_ascii_uppercase().replace('-', "");
        let user = req.form("user").map(str::to_string).unwrap_or_else(|| st.default_user());
        if st.user(&user).is_none() {
            return Reply::html(400, page("Unknown person", "<p>Pick one of the people the emulator knows.</p>"));
        }
        let found = st.device_codes.values_mut().find(|d| d.user_code == code && !d.redeemed && d.expires >= wire::now());
        return match found {
            Some(d) => {
                d.approved_by = Some(user.clone());
                Reply::html(200, page("You are signed in", &format!("<p>Signed in as {}. You can close this window; the application continues.</p>", esc(&user))))
            }
            None => Reply::html(400, page("Code not found", "<p>AADSTS70018: that code is unknown or expired. <a href=\"/devicelogin\">Try again</a>.</p>")),
        };
    }
    let form = format!("<form method=\"post\" action=\"/devicelogin\"><p><label>Code <input name=\"user_code\" autofocus></label></p><p>{}</p><p><button type=\"submit\">Approve</button></p></form>", people_select(&st));
    Reply::html(200, page("Enter code", &form))
}

/// Entra shows an error page (no redirect) when it cannot trust the redirect_uri.
fn error_page(e: &AadError) -> Reply {
    Reply::html(400, page("Sign-in error", &format!("<p>AADSTS{}: {}</p>", e.code, esc(&e.message))))
}

fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    format!("{uri}{}{}", if uri.contains('?') { '&' } else { '?' }, ser.finish())
}

/// Loopback redirect URIs only (`http://localhost…`, `http://127.0.0.1…`), or the
/// native-client page: the emulator never sends a code off this machine.
fn local_redirect(uri: &str) -> bool {
    let rest = uri.strip_prefix("http://").or_else(|| uri.strip_prefix("https://"));
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or("")).map(|h| h.rsplit_once(':').map_or(h, |(h, _)| h));
    matches!(host, Some("localhost" | "127.0.0.1" | "[::1]")) || uri == "https://login.microsoftonline.com/common/oauth2/nativeclient"
}

/// `GET /{tenant}/oauth2[/v2.0]/authorize` (and the POST of the emulator's own approval
/// page): a redirect to `redirect_uri` with a code, or with an OAuth error.
pub(crate) fn authorize(shared: &Shared, tenant: &str, v: Version, req: &Request) -> Reply {
    let mut st = lock(shared);
    let q = |k: &str| req.param(k);
    if st.tenant_id(tenant).is_none() {
        return error_page(&AadError::tenant_not_found(tenant));
    }
    let Some(client_id) = q("client_id").map(str::to_ascii_lowercase) else { return error_page(&AadError::missing("client_id")) };
    if st.settings.app(&client_id).is_none() {
        return error_page(&AadError::unknown_client(&client_id, tenant));
    }
    let Some(redirect_uri) = q("redirect_uri") else { return error_page(&AadError::missing("redirect_uri")) };
    if !local_redirect(redirect_uri) {
        return error_page(&AadError::bad_request("invalid_request", 50011, format!("The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application: the emulator redirects only to http://localhost or http://127.0.0.1.")));
    }
    let state = q("state");
    let fail = |error: &str, code: u32, msg: &str| {
        let desc = format!("AADSTS{code}: {msg}");
        let mut params = vec![("error", error), ("error_description", desc.as_str())];
        params.extend(state.map(|s| ("state", s)));
        Reply::redirect(&with_query(redirect_uri, &params))
    };
    if q("response_type") != Some("code") {
        return fail("unsupported_response_type", 700054, "response_type 'code' is the only one the emulator serves.");
    }
    let challenge = q("code_challenge");
    if challenge.is_some() && q("code_challenge_method") != Some("S256") {
        return fail("invalid_request", 501481, "The Code_Challenge_Method must be 'S256'.");
    }
    let scope = match v {
        Version::V2 => q("scope"),
        Version::V1 => q("resource"),
    };
    let Some(scope) = scope else { return fail("invalid_request", 900144, "The request body must contain the following parameter: 'scope'.") };
    if v == Version::V2
        && let Err(e) = Target::v2(scope)
    {
        return fail(e.error, e.code, &e.message);
    }
    let hinted = q("login_hint").filter(|h| st.user(h).is_some()).map(str::to_string);
    let user = match (st.settings.approve, req.method.as_str(), q("approve")) {
        (Approve::Auto, _, _) => hinted.unwrap_or_else(|| st.default_user()),
        (Approve::Click, "POST", Some("yes")) => match q("user").filter(|u| st.user(u).is_some()) {
            Some(u) => u.to_string(),
            None => return error_page(&AadError::bad_request("invalid_request", 50034, "The user account does not exist in this directory.")),
        },
        (Approve::Click, "POST", Some(_)) => return fail("access_denied", 65004, "User declined to consent to access the app."),
        (Approve::Click, _, _) => {
            let hidden: String = req.query.iter().chain(req.form.iter()).filter(|(k, _)| k != "approve" && k != "user").map(|(k, v)| format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", esc(k), esc(v))).collect();
            let form = format!("<form method=\"post\">{hidden}<p>Application {} asks to sign you in for <code>{}</code>.</p><p>{}</p><p><button name=\"approve\" value=\"yes\">Approve</button> <button name=\"approve\" value=\"no\">Decline</button></p></form>", esc(&client_id), esc(scope), people_select(&st));
            return Reply::html(200, page("Sign in", &form));
        }
    };
    let code = st.opaque("EMULATOR-AC.");
    let ac = AuthCode { client_id, tenant: tenant.to_string(), redirect_uri: redirect_uri.to_string(), challenge: challenge.map(str::to_string), scope: scope.to_string(), user, nonce: q("nonce").map(str::to_string), redeemed: false };
    st.auth_codes.insert(code.clone(), ac);
    let session_state = wire::random_guid();
    let mut params = vec![("code", code.as_str())];
    params.extend(state.map(|s| ("state", s)));
    params.push(("session_state", session_state.as_str()));
    Reply::redirect(&with_query(redirect_uri, &params))
}
