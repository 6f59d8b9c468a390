//! The mock Entra authority that integration tests point the binary at: it owns the
//! registered tenants, apps and users, the knobs tests turn (faults, delays, refresh
//! token rotation, device code approval), and a record of every request, and routes
//! each HTTP request to discovery, device code, authorize or the token grants.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::http::{Body, Handler, Reply, Request, Server};
use super::tls::TestCa;
use super::wire::{self, AadError};
use super::{flows, grants};
pub(crate) use super::token_request::{AuthCode, Version};

mod recorded;
pub use recorded::RecordedRequest;

/// A failure injected into the next request that reaches a token endpoint (v1 or v2).
#[derive(Clone, Debug)]
pub enum Fault {
    /// Any status with this body (JSON when it starts with `{`) and an optional `Retry-After`.
    Status {
        status: u16,
        body: String,
        retry_after: Option<u64>,
    },
    /// Read the request, never answer (until the server is dropped).
    Hang,
    /// 200 with an HTML sign-in page, as a captive portal or proxy would send.
    Html200,
    /// 200 `application/json` whose JSON stops halfway.
    Truncated200,
    /// 200 with this many bytes of JSON-looking garbage, streamed.
    Huge200 { bytes: usize },
    /// Read the request, then close the connection without answering.
    CloseConnection,
}

fn token_version(path: &str) -> Option<Version> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        [_, "oauth2", "v2.0", "token"] => Some(Version::V2),
        [_, "oauth2", "token"] => Some(Version::V1),
        _ => None,
    }
}

pub(crate) type Checker = Arc<dyn Fn(&str, &str, &str) -> Result<(), String> + Send + Sync>;

/// A signed-in user as tokens describe them.
#[derive(Clone, Debug)]
pub(crate) struct UserCtx {
    pub username: String,
    pub oid: String,
    pub name: String,
    /// The user's home tenant (`utid` in client_info).
    pub home_tid: String,
}

impl UserCtx {
    pub fn new(username: &str, home_tid: &str) -> UserCtx {
        let local = username.split('@').next().unwrap_or(username);
        let mut name: Vec<char> = local.chars().collect();
        if let Some(c) = name.first_mut() {
            *c = c.to_ascii_uppercase();
        }
        UserCtx {
            username: username.to_string(),
            oid: wire::user_oid(username),
            name: format!("{} (mock)", name.into_iter().collect::<String>()),
            home_tid: home_tid.to_string(),
        }
    }
}

/// What a live refresh token was issued for.
#[derive(Clone, Debug)]
pub(crate) struct RtGrant {
    pub client_id: String,
    pub user: UserCtx,
    /// The v2 scope string, or the v1 resource, it was first issued with.
    pub scope: String,
    pub version: Version,
}

#[derive(Clone, Debug)]
pub(crate) struct DeviceCode {
    pub client_id: String,
    pub tenant: String,
    pub scope: String,
    pub version: Version,
    pub created: i64,
    pub expires_in: i64,
    pub pending_polls: u32,
    pub redeemed: bool,
}

pub(crate) struct State {
    pub url: String,
    pub tenants: HashSet<String>,
    /// client id → secret (None: public client).
    pub apps: HashMap<String, Option<String>>,
    /// (username, password), in the order added.
    pub users: Vec<(String, String)>,
    pub checker: Option<Checker>,
    pub lifetime: i64,
    pub refresh_in: Option<i64>,
    pub rotate: bool,
    pub mfa_for_password: bool,
    pub faults: VecDeque<Fault>,
    pub delay: Duration,
    pub approve_after: u32,
    pub declined: bool,
    pub interval: u64,
    pub slow_down_once: bool,
    pub device_expires_in: i64,
    pub device_codes: HashMap<String, DeviceCode>,
    pub auth_codes: HashMap<String, AuthCode>,
    pub live_rts: HashMap<String, RtGrant>,
    /// Refresh tokens that no longer work, with the AADSTS code they fail with.
    pub dead_rts: HashMap<String, u32>,
    /// Tenants (as named in the path, lower-cased, and their ids) whose policy refuses a
    /// refresh token with this AADSTS code, although the token works elsewhere.
    pub refresh_refusals: HashMap<String, u32>,
    /// When set, a family (FOCI) client redeeming another family client's refresh token
    /// is refused with this error and AADSTS code, as after Microsoft took a client out of
    /// the family; each client's own refresh token keeps working.
    pub family_refusal: Option<(&'static str, u32)>,
    /// A refresh grant that carries a claims challenge is refused (interaction_required,
    /// AADSTS50076): the challenge asks for what only a new sign-in gives (MFA).
    pub claims_need_sign_in: bool,
    pub issued_ats: Vec<String>,
    pub requests: Vec<RecordedRequest>,
    pub token_requests: usize,
    pub grant_counts: HashMap<String, usize>,
    pub serial: u64,
    /// Each person's home tenant id: where they first signed in. Entra's `utid` in
    /// client_info is the home tenant wherever the person signs in (guests included).
    pub homes: HashMap<String, String>,
    /// The account the person at the browser (or device code page) picks, whatever the
    /// login_hint said: a sign-in that comes back as someone else.
    pub person_at_browser: Option<String>,
    /// The CA that signs SSH certificates (`token_type=ssh-cert`), and what it issued.
    pub ssh_ca: super::sshcert::SshCa,
    pub issued_ssh_certs: Vec<String>,
    /// Managed identities its IMDS route serves: client id ("system": system-assigned) → home tenant.
    pub managed_identities: HashMap<String, String>,
}

impl State {
    fn new() -> State {
        let apps = [wire::AZURE_CLI, wire::AZURE_POWERSHELL, wire::AKS_CLIENT]
            .iter()
            .map(|id| (id.to_string(), None))
            .collect();
        State {
            url: String::new(),
            tenants: HashSet::new(),
            apps,
            users: Vec::new(),
            checker: None,
            lifetime: 3600,
            refresh_in: None,
            rotate: true,
            mfa_for_password: false,
            faults: VecDeque::new(),
            delay: Duration::ZERO,
            person_at_browser: None,
            managed_identities: HashMap::new(),
            approve_after: 2,
            declined: false,
            interval: 1,
            slow_down_once: false,
            device_expires_in: 900,
            device_codes: HashMap::new(),
            auth_codes: HashMap::new(),
            live_rts: HashMap::new(),
            dead_rts: HashMap::new(),
            refresh_refusals: HashMap::new(),
            family_refusal: None,
            claims_need_sign_in: false,
            issued_ats: Vec::new(),
            requests: Vec::new(),
            token_requests: 0,
            grant_counts: HashMap::new(),
            serial: 0,
            homes: HashMap::new(),
            ssh_ca: super::sshcert::SshCa::new().expect("an Ed25519 key"),
            issued_ssh_certs: Vec::new(),
        }
    }

    /// A registered tenant, the home tenant, or (for user flows) common/organizations/consumers.
    pub fn tenant_exists(&self, tenant: &str) -> bool {
        let t = tenant.to_ascii_lowercase();
        wire::is_multi_tenant(&t) || t == wire::HOME_TENANT || self.tenants.contains(&t)
    }

    /// The person `username` signing in at tenant id `tid`: their home is where they first did.
    pub fn person(&mut self, username: &str, tid: &str) -> UserCtx {
        let home = self.homes.entry(username.to_ascii_lowercase()).or_insert_with(|| tid.to_string()).clone();
        UserCtx::new(username, &home)
    }

    /// The user flows sign in when nobody typed a name: the first added, or `user@contoso.test`.
    pub fn default_user(&self) -> String {
        if let Some(p) = &self.person_at_browser {
            return p.clone();
        }
        self.users
            .first()
            .map(|(u, _)| u.clone())
            .unwrap_or_else(|| wire::DEFAULT_USER.to_string())
    }

    /// A fresh opaque value with a serial number, so every one differs.
    pub fn opaque(&mut self, prefix: &str) -> String {
        self.serial += 1;
        format!(
            "{prefix}{}.{}",
            self.serial,
            wire::b64url(wire::random_bytes(24))
        )
    }
}

pub(crate) type Shared = Arc<Mutex<State>>;

pub(crate) fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// A local stand-in for login.microsoftonline.com; stops when dropped.
pub struct MockAuthority {
    shared: Shared,
    server: Server,
}

impl MockAuthority {
    /// Plain http on 127.0.0.1 with an OS-assigned port.
    pub fn start() -> MockAuthority {
        MockAuthority::start_with(None)
    }

    /// https with a certificate for 127.0.0.1 and localhost signed by `ca`.
    pub fn start_https(ca: &TestCa) -> MockAuthority {
        MockAuthority::start_with(Some(ca.server_config()))
    }

    fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> MockAuthority {
        let shared: Shared = Arc::new(Mutex::new(State::new()));
        let handler: Handler = {
            let shared = Arc::clone(&shared);
            Arc::new(move |req: Request| handle(&shared, req))
        };
        let server = Server::start(handler, tls);
        lock(&shared).url = server.url();
        MockAuthority { shared, server }
    }

    fn st(&self) -> MutexGuard<'_, State> {
        lock(&self.shared)
    }

    /// `http://127.0.0.1:PORT` (or `https://…`), no trailing slash.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// A tenant (id or domain) that exists. A domain's tenant id ([`MockAuthority::tenant_id`],
    /// the `tid` of its tokens) exists from then on too, as in Entra.
    pub fn add_tenant(&self, tenant: &str) {
        let mut st = self.st();
        st.tenants.insert(tenant.to_ascii_lowercase());
        st.tenants.insert(wire::tenant_id(tenant));
    }

    /// A confidential app with this secret, or a public client with `None`. Client
    /// assertions are accepted for any registered app (the checker decides).
    /// Azure CLI, Azure PowerShell and the AKS client exist without being added.
    pub fn add_app(&self, client_id: &str, secret: Option<&str>) {
        self.st()
            .apps
            .insert(client_id.to_string(), secret.map(str::to_string));
    }

    /// A managed identity of `tenant` this host has (None: the system-assigned one), served
    /// at IMDS's path (point AZURE_POD_IDENTITY_AUTHORITY_HOST at [`url`](Self::url)).
    pub fn add_managed_identity(&self, client_id: Option<&str>, tenant: &str) {
        self.st().managed_identities.insert(client_id.unwrap_or("system").to_string(), tenant.to_string());
    }

    /// Judges `client_assertion`s: (client_id, assertion JWT, token endpoint URL). Err → 401 AADSTS700027.
    pub fn set_assertion_checker(
        &self,
        f: impl Fn(&str, &str, &str) -> Result<(), String> + Send + Sync + 'static,
    ) {
        self.st().checker = Some(Arc::new(f));
    }

    pub fn add_user(&self, username: &str, password: &str) {
        self.st()
            .users
            .push((username.to_string(), password.to_string()));
    }

    /// Access token lifetime in seconds (default 3600; negative issues already-expired tokens).
    pub fn set_token_lifetime(&self, secs: i64) {
        self.st().lifetime = secs;
    }

    /// The v2 `refresh_in` hint (default none).
    pub fn set_refresh_in(&self, secs: Option<i64>) {
        self.st().refresh_in = secs;
    }

    /// On (default): each refresh returns a new refresh token and the old one dies (AADSTS70008).
    /// Off: refresh answers carry no refresh_token and the old one stays good.
    pub fn set_rotate_refresh_tokens(&self, on: bool) {
        self.st().rotate = on;
    }

    /// Every refresh token issued so far now fails with invalid_grant and this AADSTS code.
    pub fn kill_refresh_tokens(&self, aadsts: u32) {
        let mut st = self.st();
        let live: Vec<String> = st.live_rts.drain().map(|(k, _)| k).collect();
        for rt in live {
            st.dead_rts.insert(rt, aadsts);
        }
        for code in st.dead_rts.values_mut() {
            *code = aadsts;
        }
    }

    /// Refresh tokens redeemed at `tenant` (a name or id) are refused with this AADSTS code
    /// (e.g. 50076 MFA required by the tenant's policy, 50020 user not in the tenant, 65001
    /// consent); the token stays good at other tenants. Sign-ins are not affected.
    pub fn refuse_refresh_tokens_in(&self, tenant: &str, aadsts: u32) {
        let mut st = self.st();
        st.refresh_refusals.insert(tenant.to_ascii_lowercase(), aadsts);
        st.refresh_refusals.insert(wire::tenant_id(tenant), aadsts);
    }

    /// Family refresh tokens stop crossing clients: redeeming one family client's refresh
    /// token for another fails with `error` (`invalid_grant`, `unauthorized_client`) and
    /// this AADSTS code (700007: not in the same family); the token stays good for its
    /// own client. None: family redemption works again.
    pub fn refuse_family_redemption(&self, refusal: Option<(&'static str, u32)>) {
        self.st().family_refusal = refusal;
    }

    /// On: a refresh grant carrying `claims` is refused with interaction_required
    /// (AADSTS50076), as when a claims challenge demands MFA; sign-ins still work.
    #[cfg(unix)]
    pub fn require_sign_in_for_claims(&self, on: bool) {
        self.st().claims_need_sign_in = on;
    }

    /// ROPC answers AADSTS50076 (MFA required) after a correct password.
    pub fn require_mfa_for_password(&self, on: bool) {
        self.st().mfa_for_password = on;
    }

    /// Queued faults are consumed in order by the next token endpoint requests.
    pub fn push_fault(&self, f: Fault) {
        self.st().faults.push_back(f);
    }

    /// Sleep this long before answering every token request (after recording it).
    pub fn set_delay(&self, d: Duration) {
        self.st().delay = d;
    }

    /// Each device code is approved after this many pending polls (default 2).
    pub fn approve_device_codes(&self, after_polls: u32) {
        let mut st = self.st();
        st.approve_after = after_polls;
        st.declined = false;
    }

    /// From now on, browser and device code sign-ins come back as `user`, whatever account
    /// the request hinted at (the person picked another account in the browser).
    pub fn set_person_at_browser(&self, user: Option<&str>) {
        self.st().person_at_browser = user.map(str::to_string);
    }

    /// Polls answer authorization_declined from now on.
    pub fn decline_device_codes(&self) {
        self.st().declined = true;
    }

    /// The `interval` in device code answers, sent as a string (default 1; real Entra: 5).
    pub fn set_device_interval(&self, secs: u64) {
        self.st().interval = secs;
    }

    /// Device codes issued from now on expire after this many seconds (default 900).
    pub fn set_device_code_expiry(&self, secs: i64) {
        self.st().device_expires_in = secs;
    }

    /// The next device code poll answers slow_down.
    pub fn send_slow_down_once(&self) {
        self.st().slow_down_once = true;
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.st().requests.clone()
    }

    /// Token endpoint POSTs (v1 and v2) so far, faulted ones included.
    pub fn token_requests(&self) -> usize {
        self.st().token_requests
    }

    /// Token endpoint POSTs with this `grant_type`, faulted ones included.
    pub fn grant_count(&self, grant_type: &str) -> usize {
        self.st().grant_counts.get(grant_type).copied().unwrap_or(0)
    }

    pub fn issued_access_tokens(&self) -> Vec<String> {
        self.st().issued_ats.clone()
    }

    /// The SSH certificates issued (base64 blobs), and the CA public key sshd is to trust.
    pub fn issued_ssh_certs(&self) -> Vec<String> {
        self.st().issued_ssh_certs.clone()
    }

    pub fn ssh_ca_public_key(&self) -> String {
        self.st().ssh_ca.public_line()
    }

    pub fn live_refresh_tokens(&self) -> Vec<String> {
        self.st().live_rts.keys().cloned().collect()
    }

    /// The refresh tokens that still work, each with the user it was issued to.
    pub fn live_refresh_tokens_by_user(&self) -> Vec<(String, String)> {
        self.st().live_rts.iter().map(|(rt, g)| (g.user.username.clone(), rt.clone())).collect()
    }

    /// The `tid` tokens issued through `tenant` carry.
    pub fn tenant_id(&self, tenant: &str) -> String {
        wire::tenant_id(tenant)
    }
}

/// Routes one HTTP request; every request is recorded before it is answered.
fn handle(shared: &Shared, req: Request) -> Reply {
    let rec = RecordedRequest::from_http(&req);
    let segs: Vec<String> = req
        .path
        .trim_start_matches('/')
        .split('/')
        .map(str::to_string)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let version = token_version(&req.path);
    let token_post = req.method == "POST" && version.is_some();

    let (fault, delay) = {
        let mut st = lock(shared);
        st.requests.push(rec.clone());
        if token_post {
            st.token_requests += 1;
            let grant = rec.form_get("grant_type").unwrap_or("").to_string();
            *st.grant_counts.entry(grant).or_insert(0) += 1;
            (st.faults.pop_front(), st.delay)
        } else {
            (None, Duration::ZERO)
        }
    };

    let reply = match (req.method.as_str(), segs.as_slice()) {
        ("POST", [tenant, ..]) if token_post => {
            if !delay.is_zero() {
                std::thread::sleep(delay);
            }
            match fault {
                Some(f) => fault_reply(f),
                None => grants::token(shared, tenant, version.unwrap_or(Version::V2), &rec),
            }
        }
        (_, [_, "oauth2", "v2.0", "token"] | [_, "oauth2", "token"]) => AadError::bad_request(
            "invalid_request",
            900561,
            "The endpoint only accepts POST requests.",
        )
        .reply(),
        ("GET", [tenant, "v2.0", ".well-known", "openid-configuration"]) => {
            flows::discovery(shared, tenant, Version::V2)
        }
        ("GET", [tenant, ".well-known", "openid-configuration"]) => {
            flows::discovery(shared, tenant, Version::V1)
        }
        ("POST", [tenant, "oauth2", "v2.0", "devicecode"]) => {
            flows::devicecode(shared, tenant, Version::V2, &rec)
        }
        ("POST", [tenant, "oauth2", "devicecode"]) => {
            flows::devicecode(shared, tenant, Version::V1, &rec)
        }
        ("GET", [tenant, "oauth2", "v2.0", "authorize"]) => flows::authorize(shared, tenant, &rec),
        ("GET", ["metadata", "identity", "oauth2", "token"]) => flows::imds(shared, &rec),
        _ => Reply::new(404, "text/plain; charset=utf-8", "not found"),
    };
    let reply = reply.with_header("x-ms-request-id", &wire::random_guid());
    match req.header("client-request-id") {
        Some(id) => reply.with_header("client-request-id", id),
        None => reply,
    }
}

fn fault_reply(f: Fault) -> Reply {
    match f {
        Fault::Status {
            status,
            body,
            retry_after,
        } => {
            let ctype = if body.trim_start().starts_with('{') {
                "application/json; charset=utf-8"
            } else {
                "text/plain; charset=utf-8"
            };
            let r = Reply::new(status, ctype, body);
            match retry_after {
                Some(secs) => r.with_header("Retry-After", &secs.to_string()),
                None => r,
            }
        }
        Fault::Hang => Reply {
            status: 200,
            headers: Vec::new(),
            body: Body::Hang,
        },
        Fault::CloseConnection => Reply {
            status: 200,
            headers: Vec::new(),
            body: Body::Close,
        },
        Fault::Html200 => Reply::new(
            200,
            "text/html; charset=utf-8",
            "<!DOCTYPE html>\n<html><head><title>Sign in to your account</title></head>\
             <body><form method=\"post\" action=\"/login\"><input type=\"email\" name=\"loginfmt\">\
             <input type=\"submit\" value=\"Next\"></form></body></html>\n",
        ),
        Fault::Truncated200 => Reply::new(
            200,
            "application/json; charset=utf-8",
            r#"{"token_type":"Bearer","scope":"https://management.azure.com/.default","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0eXAiOiJKV1Qi"#,
        ),
        Fault::Huge200 { bytes } => Reply {
            status: 200,
            headers: vec![(
                "Content-Type".into(),
                "application/json; charset=utf-8".into(),
            )],
            body: Body::Huge(bytes),
        },
    }
}

pub(crate) fn tenant_not_found(tenant: &str) -> String {
    format!(
        "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into \
         the correct cloud. Check with your subscription administrator, this may happen if there are no active \
         subscriptions for the tenant."
    )
}
