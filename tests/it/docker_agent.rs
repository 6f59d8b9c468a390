//! Docker through the token agent: with ENTRA_TOKEN_AGENT set, `docker-credential-entra-token`
//! on a machine with nothing configured gets its registry credential from the agent. The
//! agent's profiles claim the registry, the agent trades its Entra token at the registry's
//! ACR exchange (the Entra token never crosses the socket), its allow-lists apply, and
//! `docker logout` drops the agent's cached registry token. Proved with the helper's wire
//! and with the real docker CLI against a mock ACR on 127.0.0.1.

use crate::agent::{APP, TENANT, client, start_agent_with};
use crate::docker::{MockRegistry, NULL_USER, docker};
use crate::support::{CcProfile, MockAuthority, Sandbox, TestCa, code, run, run_with_stdin, stderr, stdout, text};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

/// The laptop: profile `acr` claims `registry` (an ACR by name, or marked `acr = true`),
/// `ado` claims Azure DevOps; an agent with `args` runs with `env`.
struct AcrLaptop {
    mock: MockAuthority,
    registry: MockRegistry,
    sb: Sandbox,
    agent: Child,
    socket: PathBuf,
}

impl Drop for AcrLaptop {
    fn drop(&mut self) {
        let _ = self.agent.kill();
        let _ = self.agent.wait();
    }
}

fn acr_laptop(args: &[&str], tls: Option<&TestCa>, claim: impl Fn(&MockRegistry) -> String) -> AcrLaptop {
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some(crate::agent::SECRET));
    let registry = MockRegistry::start(tls, mock.tenant_id(TENANT));
    let sb = Sandbox::new();
    let profile = |name: &str, rest: &str| CcProfile::new(name, &mock.url(), TENANT, APP).secret_env("AGENT_SECRET").with(rest).with("\n").toml();
    sb.write_config(&format!("{}{}", profile("acr", &claim(&registry)), profile("ado", "urls = [\"https://dev.azure.com/org/\"]")));
    let exchange = format!("{}/oauth2/exchange", registry.server.url());
    let mut env = vec![("ENTRA_TOKEN_ACR_EXCHANGE_URL", exchange.clone())];
    if let Some(ca) = tls {
        env = vec![("SSL_CERT_FILE", ca.write_pem(&sb.path("tls")).display().to_string())];
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let agent = start_agent_with(&sb, args, &env);
    let socket = sb.path("run/entra-token/agent.sock");
    AcrLaptop { mock, registry, sb, agent, socket }
}

/// The helper on the client, as Docker runs it.
fn helper(client_sb: &Sandbox, socket: &Path, action: &str, stdin: &str) -> Output {
    let mut c = client_sb.tool(client_sb.link("docker-credential-entra-token"));
    c.env("ENTRA_TOKEN_AGENT", socket).arg(action);
    run_with_stdin(c, stdin)
}

#[test]
fn the_helper_gets_the_registry_token_the_agent_exchanged_and_logout_drops_it_there() {
    let lap = acr_laptop(&[], None, |_| "urls = [\"contoso.azurecr.io\"]".into());
    let (client_sb, _) = client(&lap.socket);
    let out = helper(&client_sb, &lap.socket, "get", "contoso.azurecr.io\n");
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    let rt = lap.registry.state().refresh_tokens[0].clone();
    assert_eq!(text(&out.stdout), format!("{{\"ServerURL\":\"contoso.azurecr.io\",\"Username\":\"{NULL_USER}\",\"Secret\":\"{rt}\"}}\n"));
    {
        // The agent traded its own ARM token, for this registry only; that token stayed on its side.
        let st = lap.registry.state();
        let form = &st.exchanges[0];
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("service"), Some("contoso.azurecr.io"));
        assert_eq!(get("access_token"), Some(lap.mock.issued_access_tokens()[0].as_str()));
    }
    assert!(!stdout(&out).contains(&lap.mock.issued_access_tokens()[0]) && !stderr(&out).contains(&rt));
    // Again: the agent's cache answers (no exchange, no Entra request); nothing is kept on the client.
    let out = helper(&client_sb, &lap.socket, "get", "https://contoso.azurecr.io");
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!((v["Secret"].as_str(), v["ServerURL"].as_str()), (Some(rt.as_str()), Some("https://contoso.azurecr.io")));
    assert_eq!((lap.registry.state().exchanges.len(), lap.mock.token_requests()), (1, 1));
    assert!(!client_sb.path("cache").exists(), "the client cached a registry token");
    // erase (docker logout) drops the agent's registry token: the next get exchanges anew.
    let out = helper(&client_sb, &lap.socket, "erase", "contoso.azurecr.io\n");
    assert!(code(&out) == 0 && stdout(&out).is_empty(), "{}", stdout(&out));
    let out = helper(&client_sb, &lap.socket, "get", "contoso.azurecr.io\n");
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert_eq!((lap.registry.state().exchanges.len(), lap.mock.token_requests()), (2, 1));
    // `store` (what `docker login` saves) keeps nothing: accepted for a registry the agent
    // claims, refused for any other so Docker says the password was not saved.
    let out = helper(&client_sb, &lap.socket, "store", r#"{"ServerURL":"contoso.azurecr.io","Username":"u","Secret":"typed"}"#);
    assert!(code(&out) == 0 && stdout(&out).is_empty(), "{}", stdout(&out));
    let out = helper(&client_sb, &lap.socket, "store", r#"{"ServerURL":"https://index.docker.io/v1/","Username":"u","Secret":"typed"}"#);
    assert_eq!(code(&out), 1);
    assert!(stdout(&out).contains("keeps no passwords"), "{}", stdout(&out));
    assert_eq!(lap.registry.state().exchanges.len(), 2);
    // A registry no agent profile claims: Docker's "not found", byte for byte.
    for server in ["other.azurecr.io", "https://index.docker.io/v1/"] {
        let out = helper(&client_sb, &lap.socket, "get", server);
        assert_eq!((code(&out), text(&out.stdout).as_str()), (1, "credentials not found in native keychain\n"), "{server}");
    }
    assert_eq!(lap.registry.state().exchanges.len(), 2);
}

#[test]
fn an_agent_that_serves_only_azure_devops_gives_no_registry_credential() {
    for args in [&["--allow-resource", "devops"][..], &["--allow-profile", "ado"]] {
        let lap = acr_laptop(args, None, |_| "urls = [\"contoso.azurecr.io\"]".into());
        let (client_sb, cmd) = client(&lap.socket);
        let out = helper(&client_sb, &lap.socket, "get", "contoso.azurecr.io\n");
        assert_eq!(code(&out), 1, "{args:?}: {}", stdout(&out));
        assert!(stdout(&out).contains("this agent does not serve"), "{args:?}: {}", stdout(&out));
        assert_eq!((lap.registry.state().exchanges.len(), lap.mock.token_requests()), (0, 0), "{args:?}");
        // Azure DevOps still works through the same socket.
        let out = run(cmd(&["get-token", "-p", "ado", "-r", "devops"]));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
}

#[test]
fn real_docker_cli_pulls_through_the_agent_and_logout_reaches_it() {
    let Some(docker) = docker() else { return };
    let ca = TestCa::new();
    let lap = acr_laptop(&[], Some(&ca), |r| format!("acr = true\nurls = [\"https://{}\"]", r.host()));
    let host = lap.registry.host();
    let (client_sb, _) = client(&lap.socket);
    let ca_pem = ca.write_pem(&client_sb.path("tls"));
    std::fs::create_dir_all(client_sb.path("docker")).unwrap();
    std::fs::write(client_sb.path("docker/config.json"), json!({"credHelpers": {host.clone(): "entra-token"}}).to_string()).unwrap();
    client_sb.link("docker-credential-entra-token");
    let docker_cmd = |args: &[&str]| {
        let mut c: Command = client_sb.tool_with_links(&docker);
        c.args(args).env("ENTRA_TOKEN_AGENT", &lap.socket).env("DOCKER_CONFIG", client_sb.path("docker")).env("SSL_CERT_FILE", &ca_pem);
        run(c)
    };
    let image = format!("{host}/app:1");
    let out = docker_cmd(&["manifest", "inspect", &image]);
    assert_eq!(code(&out), 0, "docker: {}\n{}", stdout(&out), stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap_or_else(|_| panic!("{}", stdout(&out)));
    assert_eq!(v["schemaVersion"], 2);
    assert_eq!(lap.registry.state().exchanges.len(), 1);
    let out = docker_cmd(&["manifest", "inspect", &image]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!((lap.registry.state().exchanges.len(), lap.mock.token_requests()), (1, 1));
    // `docker logout` runs our erase, which the agent carries out: the next pull exchanges anew.
    let out = docker_cmd(&["logout", &host]);
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    let out = docker_cmd(&["manifest", "inspect", &image]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!((lap.registry.state().exchanges.len(), lap.mock.token_requests()), (2, 1));
    assert!(!client_sb.path("cache").exists() && !client_sb.path("config.toml").exists());
    let _ = &lap.sb;
}

/// An agent (hostile, or answering from a mix-up) that hands a registry's token to the wrong
/// request: Docker would send it to the registry it asked about, so another registry's token
/// (or one whose registry the answer does not name) is refused on the client, as is a
/// registry's token for a request that is not Docker's. Only the asked registry's own token,
/// named so, is Docker's password. (The stub agent is the Linux-only agent_boundary suite's.)
#[cfg(target_os = "linux")]
#[test]
fn a_registry_token_for_another_registry_or_a_request_not_dockers_is_refused() {
    use crate::agent_boundary::{now, stub_agent, token_answer};
    use std::sync::{Arc, Mutex};
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("stub")).unwrap();
    let socket = sb.path("stub/agent.sock");
    let next: Arc<Mutex<Value>> = Arc::default();
    let n = Arc::clone(&next);
    let sent = stub_agent(&socket, move || n.lock().unwrap().to_string());
    let (client_sb, cmd) = client(&socket);
    let token = "eyJ.registry.token";
    let answer = |registry: Option<&str>| {
        let mut v: Value = serde_json::from_str(&token_answer(token, "acr_refresh_token", now() + 3600)).unwrap();
        if let Some(r) = registry {
            v["registry"] = r.into();
        }
        v
    };
    for named in [Some("fabrikam.azurecr.io"), Some("contoso.azurecr.io:5000"), None] {
        *next.lock().unwrap() = answer(named);
        let out = helper(&client_sb, &socket, "get", "contoso.azurecr.io\n");
        assert_eq!(code(&out), 1, "{named:?}: {}", stdout(&out));
        assert!(stdout(&out).contains("ENTRA_TOKEN_AGENT") && stdout(&out).contains("registry"), "{named:?}: {}", stdout(&out));
        assert!(!stdout(&out).contains(token) && !stderr(&out).contains(token), "{named:?}: {}", stdout(&out));
    }
    let first: Value = serde_json::from_slice(sent.lock().unwrap().split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!((first["docker"].as_bool(), first["url"].as_str()), (Some(true), Some("contoso.azurecr.io")), "{first}");
    // Requests that are not Docker's never take a registry's token, even one naming the registry.
    *next.lock().unwrap() = answer(Some("contoso.azurecr.io"));
    let out = run(cmd(&["get-token", "-r", "graph"]));
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(stdout(&out).is_empty() && !stderr(&out).contains(token), "{}", stderr(&out));
    let mut git = client_sb.tool(client_sb.link("git-credential-entra-token"));
    git.env("ENTRA_TOKEN_AGENT", &socket).arg("get");
    let out = run_with_stdin(git, "protocol=https\nhost=contoso.azurecr.io\n\n");
    assert!(!stdout(&out).contains(token), "git got the registry's token: {}", stdout(&out));
    // The asked registry's own token, named so (by the host of Docker's URL), is taken.
    let out = helper(&client_sb, &socket, "get", "https://contoso.azurecr.io/\n");
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!((v["Username"].as_str(), v["Secret"].as_str()), (Some(NULL_USER), Some(token)));
}
