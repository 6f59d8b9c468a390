//! The network: lazily built ureq agents (never built on the cached path), TLS always
//! verified against the OS store plus SSL_CERT_FILE, proxies from the environment, bodies
//! read on 4xx, bounded sizes, and retries of 429/5xx that honour Retry-After inside the
//! invocation's deadline.

use crate::clock::Deadline;
use crate::error::{Error, Result};
use crate::log::trace;
use std::sync::OnceLock;
use std::time::Duration;

pub(crate) mod pinned;
pub(crate) mod server;

/// The longest Retry-After honoured, in seconds: a day, longer than any `--timeout`.
const MAX_RETRY_AFTER: u64 = 86_400;

/// No token or managed-identity answer comes close to this.
const MAX_BODY: u64 = 1024 * 1024;

/// What came back, whatever the status.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub retry_after: Option<u64>,
    pub date: Option<String>,
    pub www_authenticate: Option<String>,
}

/// Which answers are worth another try.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    pub attempts: u32,
    /// Also retry 404 and 410 (IMDS while it starts up or updates).
    pub imds: bool,
}

impl RetryPolicy {
    pub(crate) const TOKEN: RetryPolicy = RetryPolicy { attempts: 3, imds: false };
    pub(crate) const NONE: RetryPolicy = RetryPolicy { attempts: 1, imds: false };
}

pub(crate) struct Http {
    /// For https: verifies against the OS certificate store, loaded when first needed.
    tls: OnceLock<ureq::Agent>,
    /// For plain http, which only loopback authorities (`authority::check_secure_url`) and
    /// the link-local managed-identity endpoints use: loading and parsing the OS store costs
    /// milliseconds such a call never needs. It has no trusted roots, so it can never
    /// complete a TLS handshake: it fails closed.
    plain: OnceLock<ureq::Agent>,
    /// For Service Fabric's endpoint: trusts exactly the certificate the platform pins
    /// (IDENTITY_SERVER_THUMBPRINT), never the OS store, never through a proxy.
    pinned: OnceLock<(pinned::Pin, ureq::Agent)>,
}

impl Http {
    pub(crate) const fn new() -> Http {
        Http { tls: OnceLock::new(), plain: OnceLock::new(), pinned: OnceLock::new() }
    }

    fn agent(&self, url: &str) -> &ureq::Agent {
        if url.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("http://")) {
            self.plain.get_or_init(|| build_agent(ureq::tls::RootCerts::Specific(std::sync::Arc::new(Vec::new()))))
        } else {
            self.tls.get_or_init(|| build_agent(root_certs()))
        }
    }

    pub(crate) fn post_form(&self, url: &str, form: &[(&str, &str)], headers: &[(&str, &str)], deadline: Deadline, policy: RetryPolicy) -> Result<Reply> {
        let direct = route(url, Reach::Remote)?;
        trace!(1, "POST {url}{}", direct.note());
        self.with_retries(url, &direct, deadline, policy, |timeout| prepared(self.agent(url).post(url), headers, timeout, None, direct.0).send_form(form.iter().copied()))
    }

    /// A POST with a raw body (Azure DevOps' OIDC endpoint takes an empty one).
    pub(crate) fn post(&self, url: &str, body: &[u8], headers: &[(&str, &str)], deadline: Deadline, policy: RetryPolicy) -> Result<Reply> {
        let direct = route(url, Reach::Remote)?;
        trace!(1, "POST {}{}", url.split('?').next().unwrap_or(url), direct.note());
        self.with_retries(url, &direct, deadline, policy, |timeout| prepared(self.agent(url).post(url), headers, timeout, None, direct.0).send(body))
    }

    pub(crate) fn get(&self, url: &str, headers: &[(&str, &str)], deadline: Deadline, policy: RetryPolicy) -> Result<Reply> {
        let direct = route(url, Reach::Remote)?;
        trace!(1, "GET {}{}", url.split('?').next().unwrap_or(url), direct.note());
        self.with_retries(url, &direct, deadline, policy, |timeout| prepared(self.agent(url).get(url), headers, timeout, None, direct.0).call())
    }

    /// A GET to an endpoint on this host (managed identity): never through a proxy, and
    /// with a short connect timeout when it is only a probe.
    pub(crate) fn get_local(&self, url: &str, headers: &[(&str, &str)], deadline: Deadline, policy: RetryPolicy, connect: Option<Duration>) -> Result<Reply> {
        route(url, Reach::Host)?;
        trace!(1, "GET {} (no proxy)", url.split('?').next().unwrap_or(url));
        self.with_retries(url, &Direct::LOCAL, deadline, policy, |timeout| prepared(self.agent(url).get(url), headers, timeout, connect, true).call())
    }

    /// A GET over TLS that accepts only the certificate whose thumbprint is `pin` (Service
    /// Fabric), never through a proxy. The handshake, and so the pin check, completes before
    /// a byte of the request (headers included) is sent.
    pub(crate) fn get_pinned(&self, url: &str, headers: &[(&str, &str)], pin: &pinned::Pin, deadline: Deadline, policy: RetryPolicy) -> Result<Reply> {
        trace!(1, "GET {} (certificate pinned to {} {})", url.split('?').next().unwrap_or(url), pin.digest_name(), pin.display());
        let (held, agent) = self.pinned.get_or_init(|| (pin.clone(), build_pinned_agent(pin)));
        let other;
        let agent = if held == pin {
            agent
        } else {
            other = build_pinned_agent(pin);
            &other
        };
        let reply = self.with_retries(url, &Direct::LOCAL, deadline, policy, |timeout| prepared(agent.get(url), headers, timeout, None, true).call());
        // SSL_CERT_FILE, the usual TLS advice (on loopback: the emulator's), does not apply to a pinned endpoint.
        reply.map_err(|e| match e {
            Error::Network { url, message, hint } if matches!(hint.as_deref(), Some(TLS_HINT | LOCAL_TLS_HINT)) => {
                Error::Network { url, message, hint: Some("the server did not complete TLS as the holder of the pinned certificate (IDENTITY_SERVER_THUMBPRINT); SSL_CERT_FILE does not apply here".into()) }
            }
            other => other,
        })
    }

    /// A form POST to an endpoint on this host (Cloud Shell), never through a proxy.
    pub(crate) fn post_form_local(&self, url: &str, form: &[(&str, &str)], headers: &[(&str, &str)], deadline: Deadline, policy: RetryPolicy, connect: Option<Duration>) -> Result<Reply> {
        route(url, Reach::Host)?;
        trace!(1, "POST {} (no proxy)", url.split('?').next().unwrap_or(url));
        self.with_retries(url, &Direct::LOCAL, deadline, policy, |timeout| prepared(self.agent(url).post(url), headers, timeout, connect, true).send_form(form.iter().copied()))
    }

    fn with_retries(
        &self,
        url: &str,
        via: &Direct,
        deadline: Deadline,
        policy: RetryPolicy,
        send: impl Fn(Duration) -> std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Reply> {
        let shown = display_url(url);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let remaining = deadline.remaining();
            if remaining.is_zero() {
                return Err(Error::Timeout { what: format!("calling {shown}"), after: deadline.total });
            }
            let reply = match send(remaining) {
                Ok(resp) => read_reply(resp, &shown)?,
                Err(e) => return Err(map_error(e, &shown, via, deadline)),
            };
            let retryable = reply.status == 429 || reply.status >= 500 || (policy.imds && matches!(reply.status, 404 | 410));
            if !retryable || attempt >= policy.attempts {
                return Ok(reply);
            }
            let backoff = match reply.retry_after {
                Some(s) => Duration::from_secs(s),
                None => Duration::from_secs(1 << (attempt - 1)),
            };
            if backoff >= deadline.remaining() {
                trace!(1, "{shown} answered {}; no time left to wait {}s and retry", reply.status, backoff.as_secs());
                return Ok(reply);
            }
            trace!(1, "{shown} answered {}; retrying in {}s", reply.status, backoff.as_secs());
            std::thread::sleep(backoff);
        }
    }
}

/// Where a request may go: anywhere (token endpoints, OIDC, ACR: plain http only to
/// loopback), or to an endpoint of this host's platform (managed identity: IMDS's
/// link-local address, App Service's or Arc's local port, which are plain http).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    Remote,
    Host,
}

/// How a request travels: straight to its host (bypassing any proxy the environment
/// names), or through the proxy named here (for messages: a failure names it).
#[derive(Debug, Clone)]
struct Direct(bool, Option<String>);

impl Direct {
    const LOCAL: Direct = Direct(true, None);
    fn note(&self) -> String {
        match (self.0, &self.1) {
            (true, _) => " (loopback: no proxy)".into(),
            (false, Some(p)) => format!(" (through proxy {p})"),
            (false, None) => String::new(),
        }
    }
}

/// The one decision, for every request, of how it may travel, made on the host exactly
/// as ureq will read it. A loopback host (127.0.0.0/8, ::1, localhost) is never reached
/// through HTTPS_PROXY/HTTP_PROXY/ALL_PROXY: what is sent to it (a client secret, a
/// refresh token) was allowed in plain http only because it never leaves the machine.
/// Plain http to any other host is refused unless it is the platform's own endpoint
/// (`Reach::Host`, sent without a proxy by its callers, as azure-identity does): no
/// secret, assertion or refresh token crosses a network in clear text.
fn route(url: &str, reach: Reach) -> Result<Direct> {
    let bad = |why: &str| Error::bad_input_hint(format!("refusing to call '{}': {why}", crate::log::escape(&display_url(url))), "use an https:// URL (plain http is allowed only for 127.0.0.1, [::1] and localhost)");
    let uri: ureq::http::Uri = url.parse().map_err(|_| bad("it is not a valid URL"))?;
    let host = uri.host().ok_or_else(|| bad("it names no host"))?;
    let loopback = is_loopback(host);
    match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("https") => {}
        Some(s) if s.eq_ignore_ascii_case("http") => {
            if !loopback && reach == Reach::Remote {
                return Err(bad("plain http to a host other than this one would send credentials in clear text"));
            }
        }
        _ => return Err(bad("only https (and http to this host) is spoken")),
    }
    if loopback || reach == Reach::Host {
        return Ok(Direct::LOCAL);
    }
    let proxy = ureq::Proxy::try_from_env().filter(|p| !p.is_no_proxy(&uri)).map(|p| format!("{}:{}", p.host(), p.port()));
    Ok(Direct(false, proxy))
}

/// 127.0.0.0/8, ::1 (also IPv4-mapped, ::ffff:127.x.y.z), `localhost` and names under it
/// (RFC 6761), with or without the root's trailing dot.
pub(crate) fn is_loopback(host: &str) -> bool {
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return match ip {
            std::net::IpAddr::V4(v4) => v4.is_loopback(),
            std::net::IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        };
    }
    let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// The URL without its query (which may carry a resource list, never a secret, but keep logs short).
fn display_url(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_string()
}

fn read_reply(mut resp: ureq::http::Response<ureq::Body>, url: &str) -> Result<Reply> {
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    // A server may ask for any wait; more than MAX_RETRY_AFTER is read as that (the retry
    // loop then gives up at once, as no deadline is that long).
    let retry_after = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()).map(|s| s.min(MAX_RETRY_AFTER));
    let date = header("date");
    let www_authenticate = header("www-authenticate");
    let status = resp.status().as_u16();
    let body = resp.body_mut().with_config().limit(MAX_BODY).read_to_vec().map_err(|e| match e {
        ureq::Error::BodyExceedsLimit(_) => Error::Network {
            url: url.to_string(),
            message: format!("the answer is larger than {} KiB, which no token answer is", MAX_BODY / 1024),
            hint: Some("check that the authority URL points at Entra, not a proxy or web page".into()),
        },
        other => Error::Network { url: url.to_string(), message: format!("reading the answer failed: {other}"), hint: None },
    })?;
    trace!(2, "{url} answered {status} ({} bytes)", body.len());
    Ok(Reply { status, body, retry_after, date, www_authenticate })
}

const LOCAL_TLS_HINT: &str = "the local endpoint presents a CA that SSL_CERT_FILE does not hold: `entra-token emulator` makes a new one at each start, so load the running emulator's exports again (its state directory's exports.sh)";
const TLS_HINT: &str = "a proxy or security tool re-signing TLS (interception) is the usual cause: point SSL_CERT_FILE at its root CA (PEM), e.g. SSL_CERT_FILE=/path/corp-root.pem";

/// A failed call, as one line naming the likely cause and its fix: DNS, a refused
/// connection (the endpoint's or the proxy's), a proxy in the way, TLS interception (an
/// unknown issuer: SSL_CERT_FILE), an expired or misnamed certificate, a timeout.
fn map_error(e: ureq::Error, url: &str, via: &Direct, deadline: Deadline) -> Error {
    let net = |message: String, hint: String| Error::Network { url: url.to_string(), message, hint: Some(hint) };
    if let Some(m) = pinned::mismatch_in(&e) {
        return net(
            format!("TLS refused: {m}"),
            "the endpoint is not the cluster's managed identity service, or the platform rotated its certificate: restart the service so it gets the current IDENTITY_SERVER_THUMBPRINT".into(),
        );
    }
    let host = url.parse::<ureq::http::Uri>().ok().and_then(|u| u.authority().map(|a| a.to_string())).unwrap_or_else(|| url.to_string());
    let proxy = via.1.as_deref();
    let timeout = |why: String| Error::Timeout { what: format!("calling {url} ({why})"), after: deadline.total };
    let no_answer = || match proxy {
        Some(p) => timeout(format!("no answer through the proxy {p}: check HTTPS_PROXY, or add {host} to NO_PROXY if it is reached directly")),
        None => timeout("no answer: a firewall may drop the traffic, or this network reaches out only through a proxy (set HTTPS_PROXY)".into()),
    };
    let refused = || match proxy {
        Some(p) => net(format!("connection refused by the proxy {p}"), "check HTTPS_PROXY/HTTP_PROXY/ALL_PROXY (is the proxy running?), or add the host to NO_PROXY".into()),
        // Loopback is never proxied (see Direct), so a proxy is no fix there.
        None if authority_is_loopback(&host) => net(
            format!("connection refused: nothing accepts connections at {host}"),
            "check the URL and port: is the local endpoint running? A stopped `entra-token emulator`: start it again and load its new exports".into(),
        ),
        None => net(format!("connection refused: nothing accepts connections at {host}"), "check the URL and port (is the endpoint up?); if this network needs a proxy, set HTTPS_PROXY".into()),
    };
    // On loopback no proxy re-signs TLS: the local endpoint's own CA is the one missing.
    let local = proxy.is_none() && authority_is_loopback(&host);
    let dns = || {
        net(
            format!("DNS cannot resolve {}", host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h)),
            "check the URL's spelling and your DNS or VPN; if this network resolves names only through a proxy, set HTTPS_PROXY".into(),
        )
    };
    match e {
        ureq::Error::Timeout(_) => no_answer(),
        ureq::Error::HostNotFound => dns(),
        // std's resolver (getaddrinfo) failing reaches us as an I/O error with this text.
        ureq::Error::Io(io) if io.to_string().contains("failed to lookup address") => dns(),
        ureq::Error::ConnectionFailed => refused(),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => no_answer(),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => refused(),
        ureq::Error::Rustls(r) => tls_error(&r.to_string(), proxy, local, net),
        ureq::Error::Tls(m) => tls_error(m, proxy, local, net),
        ureq::Error::Io(io) if is_tls_text(&io.to_string()) => tls_error(&io.to_string(), proxy, local, net),
        ureq::Error::Io(io) => net(io.to_string(), "check the network path to the host (VPN, firewall, HTTPS_PROXY/NO_PROXY)".into()),
        other => net(other.to_string(), "check the URL and the network path to the host (HTTPS_PROXY/NO_PROXY)".into()),
    }
}

/// `host[:port]` (as in a URL's authority) names this machine: [`is_loopback`] of its host.
fn authority_is_loopback(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    is_loopback(host)
}

fn is_tls_text(s: &str) -> bool {
    let s = s.to_ascii_lowercase();
    s.contains("certificate") || s.contains("unknownissuer") || s.contains("tls") || s.contains("handshake")
}

/// TLS failures by cause, told apart by rustls' words.
fn tls_error(text: &str, proxy: Option<&str>, local: bool, net: impl Fn(String, String) -> Error) -> Error {
    let t = text.to_ascii_lowercase();
    let by = proxy.map(|p| format!(" (through the proxy {p})")).unwrap_or_default();
    let hint = if local { LOCAL_TLS_HINT } else { TLS_HINT };
    if t.contains("unknownissuer") || t.contains("unknown issuer") {
        net(format!("TLS refused: the certificate is signed by a CA this machine does not trust{by}"), hint.into())
    } else if t.contains("expired") || t.contains("notvalidyet") {
        net(format!("TLS refused: the certificate is expired or not yet valid{by}"), "check this machine's clock; otherwise the server (or a proxy re-signing TLS) presents an outdated certificate".into())
    } else if t.contains("notvalidforname") || t.contains("not valid for name") {
        net(format!("TLS refused: the certificate is for another host{by}"), "check the URL's host; a proxy re-signing TLS may be answering instead (then point SSL_CERT_FILE at its root CA)".into())
    } else {
        net(format!("TLS failed: {text}{by}"), hint.into())
    }
}
/// One attempt's request: `headers`, the attempt's time limit (and a connect limit where
/// given), and no proxy where the endpoint is reached directly.
fn prepared<B>(mut req: ureq::RequestBuilder<B>, headers: &[(&str, &str)], timeout: Duration, connect: Option<Duration>, direct: bool) -> ureq::RequestBuilder<B> {
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let c = req.config().timeout_global(Some(timeout)).timeout_connect(connect);
    let c = if direct { c.proxy(None) } else { c };
    c.build()
}

fn build_agent(roots: ureq::tls::RootCerts) -> ureq::Agent {
    trace!(2, "building the HTTP client");
    let tls = ureq::tls::TlsConfig::builder().root_certs(roots).build();
    let config = agent_config().tls_config(tls).proxy(ureq::Proxy::try_from_env()).build();
    ureq::Agent::with_parts(config, ureq::unversioned::transport::DefaultConnector::new(), LiteralFirst::default())
}

/// TCP, then TLS through [`pinned::PinnedConnector`]: no proxy, no OS store, no plain http.
fn build_pinned_agent(pin: &pinned::Pin) -> ureq::Agent {
    use ureq::unversioned::transport::{Connector, TcpConnector};
    trace!(2, "building the pinned HTTP client");
    let connector = ().chain(TcpConnector::default()).chain(pinned::PinnedConnector::new(pin));
    ureq::Agent::with_parts(agent_config().proxy(None).build(), connector, LiteralFirst::default())
}

/// What every agent shares: answers read whatever their status, no redirects, small buffers.
fn agent_config() -> ureq::config::ConfigBuilder<ureq::typestate::AgentScope> {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("entra-token/", env!("CARGO_PKG_VERSION")))
        // ureq zeroes 128 KiB for each direction per connection; token answers have
        // a few KiB of headers and requests a few KiB of form, so 32/16 KiB is ample.
        .max_response_header_size(32 * 1024)
        .input_buffer_size(32 * 1024)
        .output_buffer_size(16 * 1024)
}

/// ureq's resolver, except that an IP literal (a loopback authority, IMDS at
/// 169.254.169.254) is answered at once: with a timeout set, ureq resolves every host on a
/// fresh thread, which cost a cold local answer a thread spawn for a lookup that is none.
/// (ureq's `unversioned` API: Cargo.lock pins it; revisit on a ureq upgrade.)
#[derive(Debug, Default)]
struct LiteralFirst(ureq::unversioned::resolver::DefaultResolver);

impl ureq::unversioned::resolver::Resolver for LiteralFirst {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> std::result::Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        match ip_literal(uri) {
            Some(addr) => {
                let mut found = self.empty();
                found.push(addr);
                Ok(found)
            }
            None => self.0.resolve(uri, config, timeout),
        }
    }
}

/// The socket address of a URI whose host is an IP literal (`127.0.0.1`, `[::1]`).
fn ip_literal(uri: &ureq::http::Uri) -> Option<std::net::SocketAddr> {
    let host = uri.host()?;
    let ip: std::net::IpAddr = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host).parse().ok()?;
    let port = uri.port_u16().or(match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("https") => Some(443),
        Some(s) if s.eq_ignore_ascii_case("http") => Some(80),
        _ => None,
    })?;
    Some(std::net::SocketAddr::new(ip, port))
}

/// The OS store (and SSL_CERT_FILE / SSL_CERT_DIR, which rustls-native-certs honours);
/// Mozilla's roots when the OS store is empty.
fn root_certs() -> ureq::tls::RootCerts {
    let found = rustls_native_certs::load_native_certs();
    if !found.errors.is_empty() {
        trace!(1, "some OS certificates could not be loaded ({} errors)", found.errors.len());
    }
    if found.certs.is_empty() {
        trace!(1, "no OS certificates found; using the built-in Mozilla roots");
        return ureq::tls::RootCerts::WebPki;
    }
    let certs = found.certs.iter().map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned()).collect();
    ureq::tls::RootCerts::Specific(std::sync::Arc::new(certs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_resolve_without_a_lookup_and_names_do_not() {
        let uri = |s: &str| s.parse::<ureq::http::Uri>().unwrap();
        assert_eq!(ip_literal(&uri("http://127.0.0.1:8080/t/oauth2/v2.0/token")), Some("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(ip_literal(&uri("http://[::1]:9000/x")), Some("[::1]:9000".parse().unwrap()));
        assert_eq!(ip_literal(&uri("http://169.254.169.254/metadata/identity/oauth2/token")), Some("169.254.169.254:80".parse().unwrap()));
        assert_eq!(ip_literal(&uri("https://10.0.0.1/")), Some("10.0.0.1:443".parse().unwrap()));
        assert_eq!(ip_literal(&uri("https://login.microsoftonline.com/t")), None);
        assert_eq!(ip_literal(&uri("http://localhost:8080/")), None);
    }

    #[test]
    fn loopback_goes_direct_and_plain_http_elsewhere_is_refused() {
        for url in ["http://127.0.0.1:1/t", "http://127.8.9.10/t", "http://[::1]:9/t", "http://localhost:5/t", "http://LOCALHOST./t", "http://a.localhost/t", "http://[::ffff:127.0.0.1]/t", "https://127.0.0.1/t"] {
            assert!(route(url, Reach::Remote).unwrap().0, "{url}");
        }
        assert!(!route("https://login.microsoftonline.com/t", Reach::Remote).unwrap().0);
        for url in ["http://login.microsoftonline.com/t", "http://128.0.0.1/t", "http://localhost.evil.test/t", "http://127.0.0.1.evil.test/t", "http://169.254.169.254/x", "ftp://127.0.0.1/", "http://user@/x"] {
            assert!(route(url, Reach::Remote).is_err(), "{url}");
        }
        assert!(route("http://169.254.169.254/metadata/identity/oauth2/token", Reach::Host).unwrap().0);
        assert!(route("https://10.0.0.4:2377/metadata/identity/oauth2/token", Reach::Host).unwrap().0);
    }

    /// What docs/troubleshooting.md's table says: `DNS cannot resolve HOST` (std's resolver
    /// reports it as an I/O error), and no proxy advice for loopback, which is never proxied.
    #[test]
    fn dns_failures_and_refused_connections_say_what_the_docs_say() {
        let d = crate::clock::Deadline::after(Duration::from_secs(5));
        let line = |e: ureq::Error, url: &str| crate::error::one_line(&map_error(e, url, &Direct(true, None), d));
        let lookup = std::io::Error::other("failed to lookup address information: Name or service not known");
        let got = line(ureq::Error::Io(lookup), "https://login.contoso.invalid/t/oauth2/v2.0/token");
        assert!(got.contains("DNS cannot resolve login.contoso.invalid (hint: check the URL's spelling"), "{got}");
        let refused = || ureq::Error::Io(std::io::ErrorKind::ConnectionRefused.into());
        for url in ["http://127.0.0.1:9/t", "http://localhost:9/t", "http://[::1]:9/t"] {
            let got = line(refused(), url);
            assert!(got.contains("connection refused: nothing accepts connections at") && !got.contains("PROXY"), "{got}");
        }
        assert!(line(refused(), "https://login.contoso.test/t").contains("HTTPS_PROXY"));
        let docs = include_str!("../docs/troubleshooting.md");
        assert!(docs.contains("| `DNS cannot resolve HOST` |"));
    }
}
