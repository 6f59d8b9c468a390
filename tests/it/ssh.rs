//! `entra-token ssh`: Entra SSH certificates, proven with real OpenSSH. The stand-in
//! authority certifies the key a grant sends in `req_cnf` (as Entra does) with its CA; a
//! throwaway sshd on 127.0.0.1 trusts that CA and lets in the principals of the local user,
//! and `ssh` logs in with the certificate: for a service principal, for a person, after
//! the certificate expired (renewed by the generated ssh config), and from ssh-agent.

use crate::support::sshd::{self, Sshd};
use crate::support::{CcProfile, MockAuthority, Sandbox, code, run, stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::Command;

const TENANT: &str = "contoso.test";
const APP: &str = "66666666-6666-4666-8666-666666666666";
const SECRET: &str = "ssh~secret";
const ANN: &str = "Ann@Contoso.test";

/// A stand-in with a service principal (profile `sp`) and a person (profile `me`, password
/// flow with az's client id), and an sshd trusting the stand-in's CA for `principals`.
struct Stand {
    mock: MockAuthority,
    sb: Sandbox,
    sshd: Sshd,
}

fn stand(what: &str) -> Option<Stand> {
    if !sshd::openssh_here(what) {
        return None;
    }
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some(SECRET));
    mock.add_user(ANN, "ann-password");
    let sb = Sandbox::new();
    let me = format!(
        "[profiles.me]\nauthority = \"{}\"\ntenant = \"{TENANT}\"\nclient_id = \"{}\"\nflow = \"password\"\nusername = \"{ANN}\"\npassword_env = \"PW\"\n",
        mock.url(),
        crate::support::AZURE_CLI
    );
    sb.write_config(&format!("{}{me}", CcProfile::new("sp", &mock.url(), TENANT, APP).toml()));
    let dir = sb.path("sshd");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.pub"), mock.ssh_ca_public_key() + "\n").unwrap();
    // The local user may log in with a certificate naming the service principal or Ann.
    std::fs::write(dir.join("principals"), format!("{APP}\n{ANN}\n")).unwrap();
    let extra = format!("TrustedUserCAKeys {d}/ca.pub\nAuthorizedPrincipalsFile {d}/principals\n", d = dir.display());
    let sshd = sshd::start(&dir, &extra);
    Some(Stand { mock, sb, sshd })
}

impl Stand {
    fn et(&self, args: &[&str]) -> Command {
        let mut c = self.sb.cmd();
        c.env("CI_SECRET", SECRET).env("PW", "ann-password").args(args);
        c
    }

    /// `ssh` with `key` and its certificate only; stdout on success, else the failure.
    fn login(&self, key: &Path) -> Result<String, String> {
        let key_s = key.to_str().unwrap();
        let cert = format!("{key_s}-cert.pub");
        let out = run(self.sshd.ssh(&["-o", "IdentitiesOnly=yes", "-i", key_s, "-o", &format!("CertificateFile={cert}")]));
        if code(&out) == 0 { Ok(stdout(&out)) } else { Err(format!("ssh: {}\nsshd: {}", stderr(&out), self.sshd.log())) }
    }
}

/// `ssh-keygen -L -f CERT`: what OpenSSH itself reads in the certificate.
fn keygen_l(cert: &Path) -> String {
    let out = Command::new("ssh-keygen").arg("-L").arg("-f").arg(cert).output().unwrap();
    assert!(out.status.success(), "ssh-keygen -L: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn cert_of(key: &Path) -> PathBuf {
    PathBuf::from(format!("{}-cert.pub", key.display()))
}

#[test]
fn a_service_principal_gets_a_certificate_for_a_new_key_and_logs_in_with_real_ssh() {
    let Some(s) = stand("SSH certificates with real OpenSSH") else { return };
    let key = s.sb.path("keys/sp");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();

    let out = run(s.et(&["ssh", "cert", "-p", "sp", "--key", key.to_str().unwrap()]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), APP, "the login name is the certificate's first principal");
    assert!(stderr(&out).contains("making a new RSA key"), "{}", stderr(&out));

    // The wire: the service principal's ordinary grant plus token_type and the key as a JWK.
    let req = s.mock.requests().into_iter().rfind(|r| r.form_get("grant_type") == Some("client_credentials")).expect("a client credentials grant");
    assert_eq!(req.form_get("token_type"), Some("ssh-cert"));
    assert_eq!(req.form_get("scope"), Some("https://pas.windows.net/CheckMyAccess/Linux/.default"));
    let jwk: serde_json::Value = serde_json::from_str(req.form_get("req_cnf").unwrap()).unwrap();
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(req.form_get("key_id"), jwk["kid"].as_str(), "key_id is the JWK's kid");

    // OpenSSH reads the certificate the stand-in issued: for the key, the principal, one hour.
    let cert = cert_of(&key);
    let text = std::fs::read_to_string(&cert).unwrap();
    assert!(text.starts_with(&format!("ssh-rsa-cert-v01@openssh.com {} ", s.mock.issued_ssh_certs()[0])), "{text}");
    let l = keygen_l(&cert);
    assert!(l.contains("Type: ssh-rsa-cert-v01@openssh.com user certificate"), "{l}");
    assert!(l.contains(&format!("Principals: \n                {APP}")), "{l}");
    assert!(l.contains("Valid: from "), "{l}");

    // Real ssh logs in with it; without the certificate the same key is refused.
    assert_eq!(s.login(&key).unwrap(), format!("logged-in-as {}", s.sshd.user));
    let bare = run(s.sshd.ssh(&["-o", "IdentitiesOnly=yes", "-i", key.to_str().unwrap(), "-o", "CertificateFile=/dev/null"]));
    assert_ne!(code(&bare), 0, "the key alone must not log in");

    // Again: the cached certificate, no new grant; the file is the same.
    let before = s.mock.token_requests();
    let out = run(s.et(&["ssh", "cert", "-p", "sp", "--key", key.to_str().unwrap()]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(s.mock.token_requests(), before, "served from the cache");
    assert_eq!(std::fs::read_to_string(&cert).unwrap(), text);

    // --if-expiring keeps a good certificate without asking anyone, but one another
    // profile wrote for the key is not this profile's: it is renewed.
    let out = run(s.et(&["ssh", "cert", "--if-expiring", "-p", "sp", "--key", key.to_str().unwrap()]));
    assert_eq!((code(&out), stdout(&out), s.mock.token_requests()), (0, APP.to_string(), before), "{}", stderr(&out));
    let out = run(s.et(&["ssh", "cert", "--if-expiring", "-p", "me", "--key", key.to_str().unwrap()]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), ANN.to_ascii_lowercase(), "renewed for profile me, not kept from sp");
}

#[test]
fn a_person_logs_in_and_each_key_gets_its_own_certificate_never_a_bearer_token() {
    let Some(s) = stand("SSH certificates with real OpenSSH") else { return };
    let keys = s.sb.path("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let (one, two) = (keys.join("one"), keys.join("two"));
    for k in [&one, &two] {
        let ok = Command::new("ssh-keygen").args(["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f"]).arg(k).status().unwrap().success();
        assert!(ok);
    }
    // A key given without its .pub: its public half is read with ssh-keygen -y.
    std::fs::remove_file(keys.join("two.pub")).unwrap();

    let out = run(s.et(&["ssh", "cert", "-p", "me", "--key", one.to_str().unwrap()]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), ANN.to_ascii_lowercase(), "the first principal, lower-cased");
    assert_eq!(s.login(&one).unwrap(), format!("logged-in-as {}", s.sshd.user));

    // The second key: a new certificate for it (the first key's cached one is not served),
    // through the person's refresh token.
    let rts = s.mock.grant_count("refresh_token");
    let out = run(s.et(&["ssh", "cert", "-p", "me", "--key", two.to_str().unwrap()]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(s.mock.issued_ssh_certs().len(), 2, "one certificate per key");
    assert_eq!(s.mock.grant_count("refresh_token"), rts + 1, "the person's refresh token, with token_type=ssh-cert");
    assert_eq!(s.login(&two).unwrap(), format!("logged-in-as {}", s.sshd.user));
    assert!(keygen_l(&cert_of(&two)).contains(&format!("Principals: \n                {ANN}")));

    // A bearer request for the same profile never gets a certificate, nor the reverse.
    let out = run(s.et(&["get-token", "-p", "me", "-s", "https://pas.windows.net/CheckMyAccess/Linux/.default"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let bearer = stdout(&out).trim().to_string();
    assert!(crate::support::jwt_claims(&bearer).is_some(), "a bearer JWT, not a certificate: {bearer}");
    assert!(!s.mock.issued_ssh_certs().contains(&bearer));
    let out = run(s.et(&["ssh", "cert", "-p", "me", "--key", one.to_str().unwrap()]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(s.mock.issued_ssh_certs().len(), 2, "the first key's certificate from the cache");
    assert_eq!(s.login(&one).unwrap(), format!("logged-in-as {}", s.sshd.user));

    // status lists the certificate entries as what they are; logout takes them with the rest.
    let out = run(s.et(&["status", "-o", "json"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let listed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let me = listed["profiles"].as_array().and_then(|a| a.iter().find(|p| p["name"] == "me")).cloned().unwrap_or_default();
    let certs: Vec<&serde_json::Value> = me["tokens"].as_array().map(|t| t.iter().filter(|t| t["token_type"] == "ssh-cert").collect()).unwrap_or_default();
    assert_eq!(certs.len(), 2, "one certificate per key: {listed}");
    assert!(certs.iter().all(|c| c["key_id"].as_str().is_some_and(|k| k.len() == 64)), "{listed}");
    let text = stdout(&run(s.et(&["status"])));
    assert_eq!(text.matches("https://pas.windows.net/CheckMyAccess/Linux (ssh-cert for the key ").count(), 2, "{text}");
    assert!(!stdout(&out).contains(&s.mock.issued_ssh_certs()[0]), "status never shows a certificate");
    let out = run(s.et(&["logout", "-p", "me"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run(s.et(&["ssh", "cert", "-p", "me", "--key", one.to_str().unwrap()]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(s.mock.issued_ssh_certs().len(), 3, "after logout, a new sign-in and certificate");
}

#[test]
fn keys_that_are_not_rsa_and_managed_identities_are_refused_in_one_line() {
    if !sshd::openssh_here("SSH certificate refusals") {
        return;
    }
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some(SECRET));
    let sb = Sandbox::new();
    sb.write_config(&format!("{}[profiles.mi]\nflow = \"managed-identity\"\n", CcProfile::new("sp", &mock.url(), TENANT, APP).toml()));
    let ed = sb.path("ed");
    assert!(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&ed).status().unwrap().success());
    let mut c = sb.cmd();
    c.env("CI_SECRET", SECRET).args(["ssh", "cert", "-p", "sp", "--key", ed.to_str().unwrap()]);
    let out = run(c);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("it is a ssh-ed25519 key, and Entra certifies RSA keys only"), "{}", stderr(&out));
    assert!(!cert_of(&ed).exists());

    let rsa = sb.path("rsa");
    let mut c = sb.cmd();
    c.args(["ssh", "cert", "-p", "mi", "--key", rsa.to_str().unwrap()]);
    let out = run(c);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("profile 'mi' uses a managed identity, which cannot get an ssh-cert"), "{err}");
    assert_eq!(err.lines().filter(|l| l.contains("managed identity")).count(), 1, "{err}");
    assert_eq!(mock.token_requests(), 0, "nothing was asked of anyone");
}

#[test]
fn the_generated_ssh_config_renews_an_expired_certificate_as_ssh_connects() {
    let Some(s) = stand("ssh config renewal with real OpenSSH") else { return };
    // Certificates of four seconds, renewed when less than one is left.
    s.mock.set_token_lifetime(4);
    let key = s.sb.path("keys/sp");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    let out = run(s.et(&["ssh", "config", "-p", "sp", "--key", key.to_str().unwrap(), "--min-validity", "1", "127.0.0.1"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let block = stdout(&out);
    assert!(block.contains("Match host 127.0.0.1 exec \"'") && block.contains("' ssh cert --if-expiring -p sp --min-validity 1 --key '"), "{block}");
    assert!(block.contains(&format!("\n    User {APP}\n")), "{block}");
    assert!(block.contains(&format!("CertificateFile \"{}\"", cert_of(&key).display())), "{block}");
    let config = s.sb.write_file("ssh_config", &block);
    let ssh = || {
        let mut c = s.sb.tool("ssh");
        c.env("CI_SECRET", SECRET);
        run(s.sshd.ssh_in(c, &["-F", config.to_str().unwrap()]))
    };

    // Only the config names the key and certificate: ssh logs in with them.
    let out = ssh();
    assert_eq!(code(&out), 0, "ssh: {}\nsshd: {}", stderr(&out), s.sshd.log());
    assert_eq!(stdout(&out), format!("logged-in-as {}", s.sshd.user));
    assert_eq!(s.mock.issued_ssh_certs().len(), 1, "the certificate `ssh config` got was still good");

    // Past its end: the old certificate is refused by sshd, and ssh through the config
    // renews it first and logs in.
    let old = s.sb.path("old-cert.pub");
    std::fs::copy(cert_of(&key), &old).unwrap();
    std::thread::sleep(std::time::Duration::from_secs(5));
    let stale = run(s.sshd.ssh(&["-o", "IdentitiesOnly=yes", "-i", key.to_str().unwrap(), "-o", &format!("CertificateFile={}", old.display())]));
    assert_ne!(code(&stale), 0, "an expired certificate must not log in");
    let out = ssh();
    assert_eq!(code(&out), 0, "ssh: {}\nsshd: {}", stderr(&out), s.sshd.log());
    assert_eq!(s.mock.issued_ssh_certs().len(), 2, "renewed once");
    let (was, now) = (keygen_l(&old), keygen_l(&cert_of(&key)));
    let serial = |l: &str| l.lines().find(|l| l.trim_start().starts_with("Serial:")).unwrap().to_string();
    assert_ne!(serial(&was), serial(&now), "a new certificate on disk");
}

#[test]
fn ssh_add_puts_key_and_certificate_in_ssh_agent_until_the_certificate_ends() {
    let Some(s) = stand("ssh add with real OpenSSH") else { return };
    s.mock.set_token_lifetime(6);
    let sock = s.sb.path("agent.sock");
    let _agent = Stopped(Command::new("ssh-agent").arg("-D").arg("-a").arg(&sock).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap());
    let start = std::time::Instant::now();
    while !sock.exists() {
        assert!(start.elapsed().as_secs() < 10, "ssh-agent did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let key = s.sb.path("keys/sp");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    let mut c = s.et(&["ssh", "add", "-p", "sp", "--key", key.to_str().unwrap(), "--min-validity", "1"]);
    c.env("SSH_AUTH_SOCK", &sock);
    let out = run(c);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), APP);
    let listed = || {
        let out = Command::new("ssh-add").arg("-l").env("SSH_AUTH_SOCK", &sock).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let l = listed();
    assert!(l.contains("(RSA-CERT)") && l.contains("(RSA)"), "ssh-add -l: {l}");

    // ssh with nothing but the agent logs in with the certificate.
    let mut ssh = s.sshd.ssh(&["-o", "IdentitiesOnly=no"]);
    ssh.env("SSH_AUTH_SOCK", &sock);
    let out = run(ssh);
    assert_eq!(code(&out), 0, "ssh: {}\nsshd: {}", stderr(&out), s.sshd.log());

    // The agent forgets both when the certificate ends (ssh-add -t).
    std::thread::sleep(std::time::Duration::from_secs(7));
    let l = listed();
    assert!(!l.contains("RSA"), "ssh-add -l after the certificate's end: {l}");
}

/// A child process stopped when the test ends, passed or not.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn through_the_token_agent_a_remote_key_gets_its_certificate_with_the_laptops_sign_in() {
    let Some(s) = stand("SSH certificates through the token agent") else { return };
    let mut agent = crate::agent::start_agent_with(&s.sb, &["--allow-profile", "sp"], &[("CI_SECRET", SECRET)]);
    let agent_log = agent.stderr.take().unwrap();
    let _agent = Stopped(agent);
    let socket = s.sb.path("run/entra-token/agent.sock");
    // The "remote" side: an empty HOME, nothing configured, only ENTRA_TOKEN_AGENT; its key.
    let (remote, on_remote) = crate::agent::client(&socket);
    let key = remote.path("keys/remote");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    let out = run(on_remote(&["ssh", "cert", "-p", "sp", "--key", key.to_str().unwrap()]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), APP);
    // The certificate is for the remote's own key: sshd lets that key in with it.
    assert_eq!(s.login(&key).unwrap(), format!("logged-in-as {}", s.sshd.user));
    let req = s.mock.requests().into_iter().rfind(|r| r.form_get("token_type").is_some()).unwrap();
    let jwk: serde_json::Value = serde_json::from_str(req.form_get("req_cnf").unwrap()).unwrap();
    assert_eq!(req.form_get("key_id"), jwk["kid"].as_str());
    // Nothing was cached or signed in on the remote side; the agent cached it for that key.
    assert!(!remote.path("cache").exists() && !remote.path("home/.cache").exists(), "the remote side cached something");
    let before = s.mock.token_requests();
    let out = run(on_remote(&["ssh", "cert", "-p", "sp", "--key", key.to_str().unwrap()]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(s.mock.token_requests(), before, "the agent answered from its cache");
    // A key that is not RSA never reaches the agent; a bearer request through it stays bearer.
    let ed = remote.path("keys/ed");
    assert!(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&ed).status().unwrap().success());
    let out = run(on_remote(&["ssh", "cert", "-p", "sp", "--key", ed.to_str().unwrap()]));
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let out = run(on_remote(&["get-token", "-p", "sp", "-s", "https://pas.windows.net/CheckMyAccess/Linux/.default"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(crate::support::jwt_claims(stdout(&out).trim()).is_some(), "a bearer token, not the certificate");
    drop(_agent);
    let mut said = String::new();
    std::io::Read::read_to_string(&mut { agent_log }, &mut said).unwrap();
    assert!(said.contains("an SSH certificate for the key "), "the agent says what it gave: {said}");
}

#[test]
fn a_person_signed_in_to_az_gets_a_certificate_through_azs_refresh_token() {
    let Some(s) = stand("SSH certificates with az's sign-in") else { return };
    // What `az login` leaves: azureProfile.json and MSAL's cache with Ann's refresh token
    // for az's client (minted by the stand-in's password grant, as az's sign-in would be).
    let url = format!("{}/{TENANT}/oauth2/v2.0/token", s.mock.url());
    let form = [("grant_type", "password"), ("client_id", crate::support::AZURE_CLI), ("username", ANN), ("password", "ann-password"), ("scope", "https://management.azure.com//.default openid profile offline_access")];
    let mut answer = ureq::post(&url).send_form(form).unwrap();
    let v: serde_json::Value = serde_json::from_str(&answer.body_mut().read_to_string().unwrap()).unwrap();
    let info: serde_json::Value = serde_json::from_slice(&crate::support::wire::b64url_decode(v["client_info"].as_str().unwrap()).unwrap()).unwrap();
    let home = format!("{}.{}", info["uid"].as_str().unwrap(), info["utid"].as_str().unwrap());
    let tid = s.mock.tenant_id(TENANT);
    let profile = serde_json::json!({"subscriptions": [{"id": "sub-1", "name": "Dev", "user": {"name": ANN, "type": "user"}, "isDefault": true, "tenantId": tid}]});
    s.sb.write_file("azure/azureProfile.json", serde_json::to_vec(&profile).unwrap());
    let cache = serde_json::json!({
        "Account": {"a": {"home_account_id": home, "environment": "127.0.0.1", "realm": tid, "username": ANN, "authority_type": "MSSTS"}},
        "RefreshToken": {"r": {"credential_type": "RefreshToken", "secret": v["refresh_token"], "home_account_id": home, "environment": "127.0.0.1", "client_id": crate::support::AZURE_CLI}},
        "AccessToken": {}
    });
    s.sb.write_file("azure/msal_token_cache.json", serde_json::to_vec(&cache).unwrap());
    let config = std::fs::read_to_string(s.sb.path("config.toml")).unwrap();
    s.sb.write_config(&format!("{config}[profiles.az]\nflow = \"azure-cli\"\nauthority = \"{}\"\ntenant = \"{TENANT}\"\n", s.mock.url()));

    let key = s.sb.path("keys/az");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    assert!(Command::new("ssh-keygen").args(["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f"]).arg(&key).status().unwrap().success());
    let rts = s.mock.grant_count("refresh_token");
    // No az on PATH: az's files are read, az itself is never run.
    let mut c = s.et(&["ssh", "cert", "-p", "az", "--key", key.to_str().unwrap()]);
    c.env("PATH", s.sb.path("empty-bin"));
    let out = run(c);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), ANN.to_ascii_lowercase());
    assert_eq!(s.mock.grant_count("refresh_token"), rts + 1, "az's refresh token, redeemed with token_type=ssh-cert");
    let req = s.mock.requests().into_iter().rfind(|r| r.form_get("grant_type") == Some("refresh_token")).unwrap();
    assert_eq!((req.form_get("client_id"), req.form_get("token_type")), (Some(crate::support::AZURE_CLI), Some("ssh-cert")));
    assert_eq!(s.login(&key).unwrap(), format!("logged-in-as {}", s.sshd.user));

    // Without the refresh token, az's cached bearer token for the same scope is not a
    // certificate, and `az account get-access-token` gives none: one line saying so.
    let exp = (crate::support::wire::now() + 3600).to_string();
    let at = serde_json::json!({"credential_type": "AccessToken", "secret": "az-bearer-token", "home_account_id": home, "environment": "127.0.0.1", "client_id": crate::support::AZURE_CLI, "realm": tid,
        "target": "https://pas.windows.net/CheckMyAccess/Linux/.default", "token_type": "Bearer", "expires_on": exp, "cached_at": "0"});
    let cache = serde_json::json!({"Account": cache["Account"], "RefreshToken": {}, "AccessToken": {"t": at}});
    s.sb.write_file("azure/msal_token_cache.json", serde_json::to_vec(&cache).unwrap());
    let other = s.sb.path("keys/other");
    assert!(Command::new("ssh-keygen").args(["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f"]).arg(&other).status().unwrap().success());
    let mut c = s.et(&["ssh", "cert", "-p", "az", "--key", other.to_str().unwrap()]);
    c.env("PATH", s.sb.path("empty-bin"));
    let out = run(c);
    assert_ne!(code(&out), 0, "{}", stdout(&out));
    assert!(stderr(&out).contains("gives bearer tokens only, not an ssh-cert"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("az-bearer-token") && !cert_of(&other).exists());
}

/// The certificate file beside the key is a cache entry like any other: `--if-expiring`
/// (what the generated ssh config runs on every connection) keeps it only for the identity
/// that got it. The profile now names another app (as after a sign-out and a sign-in as
/// someone else): a new certificate, never the earlier identity's; and without -p the
/// default profile never takes another profile's certificate.
#[test]
fn if_expiring_keeps_a_certificate_only_for_the_identity_that_got_it() {
    let Some(s) = stand("SSH certificates for one identity") else { return };
    const APP2: &str = "77777777-7777-4777-8777-777777777777";
    s.mock.add_app(APP2, Some(SECRET));
    let key = s.sb.path("keys/sp");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    let cert = |args: &[&str]| run(s.et(&[&["ssh", "cert", "--if-expiring", "--key", key.to_str().unwrap()][..], args].concat()));
    let out = cert(&["-p", "sp"]);
    assert_eq!((code(&out), stdout(&out)), (0, APP.to_string()), "{}", stderr(&out));
    let out = cert(&["-p", "sp"]);
    assert_eq!((code(&out), stdout(&out)), (0, APP.to_string()), "kept: {}", stderr(&out));
    // The default profile (here: no source at all) is not `sp`: its certificate is not kept.
    let out = cert(&[]);
    assert!(code(&out) != 0 || stdout(&out) != APP, "the default profile was handed sp's certificate");
    // `sp` is now another app.
    let config = std::fs::read_to_string(s.sb.path("config.toml")).unwrap();
    s.sb.write_config(&config.replace(APP, APP2));
    let out = cert(&["-p", "sp"]);
    assert_eq!((code(&out), stdout(&out)), (0, APP2.to_string()), "the earlier identity's certificate was kept: {}", stderr(&out));
    assert!(keygen_l(&cert_of(&key)).contains(APP2));
}

/// The key decides whose key Entra certifies as you: a public key (or key) that another
/// user could have put there (group- or world-writable, another's) is refused with the
/// fix, before any token request; made private, it is used.
#[cfg(unix)]
#[test]
fn a_key_others_could_have_planted_is_never_certified() {
    use std::os::unix::fs::PermissionsExt;
    let Some(s) = stand("SSH keys others may change") else { return };
    let key = s.sb.path("keys/shared");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    let made = Command::new("ssh-keygen").args(["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f"]).arg(&key).status().unwrap();
    assert!(made.success());
    let public = PathBuf::from(format!("{}.pub", key.display()));
    let cert = |k: &Path| run(s.et(&["ssh", "cert", "-p", "sp", "--key", k.to_str().unwrap()]));
    std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = cert(&key);
    assert_eq!(code(&out), 1, "a public key others may write was certified: {}", stderr(&out));
    assert!(stderr(&out).contains(&public.display().to_string()) && stderr(&out).contains("chmod go-w"), "{}", stderr(&out));
    assert_eq!(s.mock.token_requests(), 0);
    assert!(!cert_of(&key).exists());
    std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = cert(&key);
    assert_eq!((code(&out), stdout(&out)), (0, APP.to_string()), "{}", stderr(&out));
}
