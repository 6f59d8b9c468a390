//! Username and password (ROPC), for legacy tenants and the token-server pattern. The
//! password comes from the variable `password_env` names, the file `password_file`
//! names, or AZURE_PASSWORD — never argv or the config file — or from a no-echo prompt on
//! the terminal when a person is there. Fails with a clear message under MFA.

use crate::flows::{FlowCtx, Prompt, user};
use crate::config::Profile;
use crate::error::{Error, Result};
use crate::oauth::TokenReply;
use crate::secret::Secret;
use std::io::{BufRead, Write};

use crate::env::var_untrimmed as env;

/// The username: the profile's `username`, else AZURE_USERNAME, else the login hint.
pub(crate) fn username(profile: &Profile) -> Option<String> {
    profile.settings.username.clone().filter(|u| !u.trim().is_empty()).or_else(|| env("AZURE_USERNAME")).or_else(|| profile.settings.login_hint.clone().filter(|u| !u.trim().is_empty()))
}

/// The person this profile is told to be, whatever its stored sign-in: the username the
/// flow signs in with (`username`, AZURE_USERNAME, the login hint). The cache identity and
/// the choice of refresh token read this, so another name is another person.
pub(crate) fn asked_username(profile: &Profile) -> Option<String> {
    username(profile).map(|u| u.trim().to_string()).filter(|u| !u.is_empty())
}

/// Where the password comes from without asking anyone, if anywhere.
fn stored_password(profile: &Profile) -> Result<Option<Secret<String>>> {
    let s = &profile.settings;
    if let Some(var) = &s.password_env {
        return match env(var) {
            Some(v) => Ok(Some(Secret::new(v))),
            None => Err(Error::bad_input_hint(format!("profile '{}': the password variable {var} is not set", profile.name), format!("export {var}=…, or set password_file"))),
        };
    }
    if let Some(path) = &s.password_file {
        return match crate::fs::read_trusted(path, 64 * 1024) {
            Ok(v) if !v.trim_end_matches(['\r', '\n']).is_empty() => Ok(Some(Secret::new(v.trim_end_matches(['\r', '\n']).to_string()))),
            Ok(_) => Err(Error::bad_input(format!("profile '{}': the password file {} is empty", profile.name, path.display()))),
            Err(e) => Err(crate::fs::trusted_error(&format!("profile '{}': the password file", profile.name), e, "check password_file in the profile")),
        };
    }
    Ok(env("AZURE_PASSWORD").map(Secret::new))
}

/// True when the flow can run with nobody at the terminal.
pub(crate) fn unattended(profile: &Profile) -> bool {
    username(profile).is_some() && matches!(stored_password(profile), Ok(Some(_)))
}

pub(crate) fn sign_in(ctx: &FlowCtx<'_>) -> Result<TokenReply> {
    let p = ctx.profile;
    let person = ctx.prompt != Prompt::Never;
    let username = match username(p) {
        Some(u) => u,
        None if person => ask_username()?,
        None => return Err(Error::bad_input_hint(format!("profile '{}' has no username", p.name), "set `username` in the profile or AZURE_USERNAME")),
    };
    let password = match stored_password(p)? {
        Some(pw) => pw,
        None if person => ask_password(&username)?,
        None => {
            return Err(Error::bad_input_hint(
                format!("profile '{}' has no password source", p.name),
                "set password_env or password_file in the profile, or AZURE_PASSWORD",
            ));
        }
    };
    let secret = user::client_secret(p)?;
    let grant = [("grant_type", "password"), ("client_id", p.client_id.as_str()), ("username", username.as_str()), ("password", password.expose().as_str())];
    user::redeem_grant(ctx, &grant, secret.as_ref(), ctx.deadline).map_err(|e| explain(e, &p.login_command()))
}

/// MFA is the usual reason ROPC stops working: say so, and what to use instead.
fn explain(e: Error, login: &str) -> Error {
    match e.aad() {
        Some(a) if a.codes.iter().any(|c| matches!(c, 50076 | 50079 | 50158)) || a.error == "interaction_required" => Error::Auth {
            message: format!("this account needs multi-factor authentication (AADSTS{}), which a password sign-in cannot do", a.codes.first().copied().unwrap_or(50076)),
            aad: Some(Box::new(a.clone())),
            hint: Some(format!("sign in with `{login} --flow device-code` (or --flow interactive); the refresh token then serves every call")),
        },
        _ => e,
    }
}

fn ask_username() -> Result<String> {
    let mut tty = crate::console::open_tty().ok_or_else(|| Error::bad_input_hint("no username and no terminal to ask for one", "set `username` in the profile or AZURE_USERNAME"))?;
    let _ = write!(tty, "entra-token: username: ");
    let _ = tty.flush();
    let mut line = String::new();
    std::io::BufReader::new(tty).read_line(&mut line).map_err(|e| Error::caused("cannot read the username", e))?;
    let line = line.trim().to_string();
    if line.is_empty() {
        return Err(Error::bad_input("no username given"));
    }
    Ok(line)
}

fn ask_password(username: &str) -> Result<Secret<String>> {
    if crate::console::open_tty().is_none() {
        return Err(Error::bad_input_hint("no password source and no terminal to ask on", "set password_env or password_file in the profile, or AZURE_PASSWORD"));
    }
    let pw = rpassword::prompt_password(format!("entra-token: password for {username}: ")).map_err(|e| Error::caused("cannot read the password", e))?;
    if pw.is_empty() {
        return Err(Error::bad_input("no password given"));
    }
    Ok(Secret::new(pw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AadError;
    use crate::oauth;

    #[test]
    fn mfa_gets_its_own_message() {
        let e = oauth::auth_error(AadError { error: "invalid_grant".into(), codes: vec![50076], ..AadError::default() });
        let out = explain(e, "entra-token login -p legacy");
        let text = crate::error::one_line(&out);
        assert!(text.contains("multi-factor") && text.contains("entra-token login -p legacy --flow device-code"), "{text}");
        assert_eq!(out.exit_code(), 3);
        let other = explain(oauth::auth_error(AadError { error: "invalid_grant".into(), codes: vec![50126], ..AadError::default() }), "x");
        assert!(crate::error::one_line(&other).contains("wrong username or password"));
    }
}
