//! Maven (the machine's, Debian's `maven`) against a Maven-feed stand-in (https on
//! 127.0.0.1, Basic with a token the stand-in authority issued as the password, as Azure
//! Artifacts takes a PAT): `setup maven --apply` writes a `<server>` whose password is
//! `${env.ENTRA_ACCESS_TOKEN}`, and `entra-token exec` supplies it. This machine has no Maven
//! plugins and the tests download none, so what Maven resolves is what it needs before any
//! plugin runs: the project's parent POM from the feed, in `mvn validate`.

use crate::support::{Sandbox, run, stderr};
// The real-Maven test runs on Unix only (Debian's maven); what it alone uses is cfg'd so.
#[cfg(unix)]
use {
    crate::support::http::{Reply, StandIn},
    crate::support::text,
    base64::Engine as _,
    std::process::Command,
    std::sync::Arc,
};

#[cfg(unix)]
const TENANT: &str = "contoso.test";
#[cfg(unix)]
const APP: &str = "88888888-8888-8888-8888-888888888888";
#[cfg(unix)]
const SECRET: &str = "maven~secret";
#[cfg(unix)]
const FEED_PATH: &str = "/contoso/_packaging/feed/maven/v1";
#[cfg(unix)]
const PARENT: &str = "/com/contoso/feed-parent/1.0/feed-parent-1.0.pom";

#[cfg(unix)]
fn parent_pom() -> &'static str {
    "<project xmlns=\"http://maven.apache.org/POM/4.0.0\">\n  <modelVersion>4.0.0</modelVersion>\n  <groupId>com.contoso</groupId>\n  <artifactId>feed-parent</artifactId>\n  <version>1.0</version>\n  <packaging>pom</packaging>\n  <properties><from.feed>yes</from.feed></properties>\n</project>\n"
}

#[cfg(unix)]
#[test]
fn maven_resolves_from_the_feed_with_the_token_exec_supplies() {
    for tool in ["mvn", "keytool"] {
        if Command::new(tool).arg("--help").output().is_err() && Command::new(tool).arg("-help").output().is_err() {
            return crate::support::skip::missing_tool(tool, "the Maven feed test");
        }
    }
    let (mock, sb, ca, ca_pem) = crate::support::feed_setup(TENANT, APP, SECRET);
    let issued = Arc::clone(&mock);
    let feed = StandIn::start_tls(Some(ca.server_config()), move |req, _| {
        let basic = req.header("authorization").and_then(|a| a.strip_prefix("Basic ")).and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
        let password = basic.as_deref().map(String::from_utf8_lossy).and_then(|up| up.split_once(':').map(|(_, p)| p.to_string())).unwrap_or_default();
        if !issued.issued_access_tokens().contains(&password) {
            return Reply::new(401, "text/plain", "token required\n").with_header("WWW-Authenticate", "Basic realm=\"feed\"");
        }
        match req.path.strip_prefix(FEED_PATH) {
            Some(PARENT) => Reply::new(200, "application/xml", parent_pom()),
            _ => Reply::new(404, "text/plain", "not found\n"),
        }
    });
    let url = format!("{}{FEED_PATH}", feed.url());
    sb.write_config(&format!(
        "[profiles.feed]\ntenant = \"{TENANT}\"\nclient_id = \"{APP}\"\nflow = \"client-credentials\"\nclient_secret_env = \"FEED_SECRET\"\nauthority = \"{}\"\nresource = \"499b84ac-1321-427f-aa17-267ca6975798\"\nurls = [\"{}/contoso/\"]\n",
        mock.url(),
        feed.url()
    ));

    let mut c = sb.cmd();
    c.args(["setup", "maven", "--id", "feed", "--url", &url, "--apply"]);
    let out = run(c);
    assert!(out.status.success(), "{}", stderr(&out));
    let settings = std::fs::read_to_string(sb.path("home/.m2/settings.xml")).unwrap();
    assert!(settings.contains("<password>${env.ENTRA_ACCESS_TOKEN}</password>"), "{settings}");

    // Java trusts the test CA through a trust store made with the JDK's keytool.
    let store = sb.path("truststore.p12");
    let out = Command::new("keytool")
        .args(["-importcert", "-noprompt", "-alias", "testca", "-storetype", "PKCS12", "-storepass", "changeit", "-file"])
        .arg(&ca_pem)
        .arg("-keystore")
        .arg(&store)
        .output()
        .unwrap();
    assert!(out.status.success(), "keytool: {}", text(&out.stderr));
    let proj = sb.path("proj");
    std::fs::create_dir_all(&proj).unwrap();
    std::fs::write(
        proj.join("pom.xml"),
        format!(
            "<project xmlns=\"http://maven.apache.org/POM/4.0.0\">\n  <modelVersion>4.0.0</modelVersion>\n  <parent><groupId>com.contoso</groupId><artifactId>feed-parent</artifactId><version>1.0</version><relativePath/></parent>\n  <artifactId>consumer</artifactId>\n  <packaging>pom</packaging>\n  <repositories><repository><id>feed</id><url>{url}</url></repository></repositories>\n</project>\n"
        ),
    )
    .unwrap();
    let maven_opts = format!("-Duser.home={} -Djavax.net.ssl.trustStore={} -Djavax.net.ssl.trustStorePassword=changeit -Djavax.net.ssl.trustStoreType=PKCS12", sb.path("home").display(), store.display());
    let repo = format!("-Dmaven.repo.local={}", sb.path("m2-repo").display());
    // Every repository but the feed (Maven Central above all) is mirrored to a refused
    // loopback port: the test never reaches the internet.
    let global = sb.write_file(
        "global-settings.xml",
        format!("<settings><mirrors><mirror><id>nowhere</id><mirrorOf>*,!feed</mirrorOf><url>{}</url></mirror></mirrors></settings>\n", crate::support::refused_url().replace("http://", "https://")),
    );
    let global = format!("--global-settings={}", global.display());
    let mvn = |through_exec: bool| {
        let mut c = if through_exec {
            let mut c = sb.tool(env!("CARGO_BIN_EXE_entra-token"));
            c.args(["exec", "-p", "feed", "-r", "devops", "--", "mvn"]);
            c
        } else {
            sb.tool("mvn")
        };
        c.args(["-B", &global, &repo, "validate"]).current_dir(&proj).env("MAVEN_OPTS", &maven_opts).env("FEED_SECRET", SECRET);
        run(c)
    };
    // Without exec Maven sends an empty password and the feed refuses it.
    let out = mvn(false);
    assert!(!out.status.success(), "mvn resolved the parent without a token");
    assert!(text(&out.stdout).contains("401"), "{}", text(&out.stdout));
    // Through exec: the parent POM comes from the feed.
    let out = mvn(true);
    assert!(out.status.success(), "mvn: {}\n{}", text(&out.stdout), text(&out.stderr));
    assert!(sb.path("m2-repo/com/contoso/feed-parent/1.0/feed-parent-1.0.pom").is_file());
    assert_eq!(mock.issued_access_tokens().len(), 1);
    let token = &mock.issued_access_tokens()[0];
    for f in [sb.path("home/.m2/settings.xml"), proj.join("pom.xml")] {
        assert!(!std::fs::read_to_string(&f).unwrap().contains(token.as_str()), "{} holds the token", f.display());
    }
}

#[test]
fn setup_maven_adds_one_server_and_never_rewrites_an_existing_one() {
    let sb = Sandbox::new();
    sb.write_config("[profiles.feed]\nflow = \"device-code\"\ntenant = \"contoso.test\"\nurls = [\"https://pkgs.dev.azure.com/contoso/\"]\n");
    let settings = sb.write_file("home/.m2/settings.xml", "<settings>\n  <servers>\n    <server><id>feed</id><password>hand-written</password></server>\n  </servers>\n</settings>\n");
    let before = std::fs::read_to_string(&settings).unwrap();
    let mut c = sb.cmd();
    c.args(["setup", "maven", "--id", "feed", "--url", "https://pkgs.dev.azure.com/contoso/_packaging/feed/maven/v1", "--apply"]);
    let out = run(c);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&settings).unwrap(), before, "an existing server id is left alone");
    assert!(stderr(&out).contains("already has a <server> with id feed"), "{}", stderr(&out));
    let mut c = sb.cmd();
    c.args(["setup", "maven", "--id", "other", "--url", "https://pkgs.dev.azure.com/contoso/_packaging/other/maven/v1", "--apply"]);
    assert!(run(c).status.success());
    let after = std::fs::read_to_string(&settings).unwrap();
    assert!(after.contains("<server><id>feed</id><password>hand-written</password></server>") && after.contains("<id>other</id>") && after.contains("${env.ENTRA_ACCESS_TOKEN}"), "{after}");
    // A feed no profile claims: refused, nothing written.
    let mut c = sb.cmd();
    c.args(["setup", "maven", "--id", "central", "--url", "https://repo.maven.apache.org/maven2", "--apply"]);
    let out = run(c);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&settings).unwrap(), after);
}
