//! What only Windows has, run under Wine by `scripts/windows.sh`: the per-user folders
//! (%APPDATA%, %LOCALAPPDATA%), `setup links` making `.exe` names that `cmd /c az …`
//! finds (as every Azure SDK's AzureCliCredential runs it), and refresh tokens at rest.

#![cfg(windows)]


use std::path::Path;
use crate::support::{CcProfile, MockAuthority, Sandbox, client_credentials_setup, ok, run, stdout};

const TENANT: &str = "contoso.test";
const APP: &str = "22222222-2222-2222-2222-222222222222";
const SECRET: &str = "s3cret~value&more";

fn json_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.ends_with(".json")).collect())
        .unwrap_or_default()
}

#[test]
fn config_lives_in_appdata_and_the_cache_in_localappdata() {
    let (mock, sb) = client_credentials_setup(TENANT, APP, SECRET);
    let config = sb.path("home/AppData/Roaming/entra-token/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::rename(sb.path("config.toml"), &config).unwrap();
    let cmd = || {
        let mut c = sb.cmd();
        for v in ["ENTRA_TOKEN_CONFIG", "ENTRA_TOKEN_CACHE_DIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"] {
            c.env_remove(v);
        }
        c.env("CI_SECRET", SECRET).args(["get-token", "-p", "ci", "-r", "graph"]);
        c
    };
    let first = ok(run(cmd()));
    let second = ok(run(cmd()));
    assert_eq!(stdout(&first), stdout(&second));
    assert_eq!(mock.issued_access_tokens().len(), 1, "the second answer comes from the cache");
    let cache = sb.path("home/AppData/Local/entra-token");
    assert!(!json_files(&cache).is_empty(), "no cache entry in {}", cache.display());
}

/// `setup links` makes `az.exe`, `git-credential-entra-token.exe`, …; Wine's `cmd /c az
/// account get-access-token …` finds ours first on PATH and gets a token, arguments intact.
#[test]
fn setup_links_makes_exe_names_that_cmd_runs_as_az() {
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_app(APP, Some(SECRET));
    let sb = Sandbox::new();
    sb.write_config(&CcProfile::new("default", &mock.url(), TENANT, APP).secret_env("APP_SECRET").toml());
    let links = sb.path("links");
    let mut setup = sb.cmd();
    setup.args(["setup", "links"]).arg(&links).arg("--apply");
    ok(run(setup));
    for name in ["az", "azd", "git-credential-entra-token", "docker-credential-entra-token", "entra-token-bazel"] {
        assert!(links.join(format!("{name}.exe")).is_file(), "{name}.exe missing");
        assert!(!links.join(name).exists(), "an extension-less {name} Windows cannot run");
    }
    // Again: already there, nothing to force.
    let mut again = sb.cmd();
    again.args(["setup", "links"]).arg(&links).arg("--apply");
    ok(run(again));

    let mut az = sb.tool("cmd");
    let path = crate::support::env::path();
    az.env("PATH", std::env::join_paths(std::iter::once(links.clone()).chain(std::env::split_paths(&path))).unwrap());
    az.env("APP_SECRET", SECRET);
    az.args(["/c", "az account get-access-token --output json --resource https://management.azure.com"]);
    let out = ok(run(az));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(&out)));
    let issued = mock.issued_access_tokens();
    assert_eq!(issued.len(), 1);
    assert_eq!(v["accessToken"], issued[0].as_str());
    assert_eq!(v["tokenType"], "Bearer");
}

/// The az fallback never takes our own az.exe (a hard link or copy `setup links` made) for
/// the real az: the same "is this us?" check `setup` uses.
#[test]
fn the_az_fallback_skips_our_own_az_exe() {
    let sb = Sandbox::new();
    let links = sb.path("links");
    let mut setup = sb.cmd();
    setup.args(["setup", "links"]).arg(&links).arg("--apply");
    ok(run(setup));
    // az signed in as a service principal: its token comes from running az.
    sb.write_file("azure/azureProfile.json", r#"{"subscriptions":[{"id":"s","name":"S","isDefault":true,"tenantId":"t","environmentName":"AzureCloud","user":{"name":"app","type":"servicePrincipal"}}]}"#);
    let mut c = sb.cmd();
    c.args(["-v", "get-token", "--flow", "azure-cli", "-r", "arm"]).env("PATH", &links);
    let out = run(c);
    let err = crate::support::stderr(&out);
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(err.contains("it is entra-token itself") && err.contains("no `az` (other than entra-token) is on PATH"), "{err}");
}

/// The dry run shows PowerShell, not `ln -s`.
#[test]
fn setup_links_dry_run_speaks_powershell() {
    let sb = Sandbox::new();
    let mut c = sb.cmd();
    c.args(["setup", "links"]).arg(sb.path("links"));
    let out = ok(run(c));
    let text = stdout(&out);
    assert!(text.contains("New-Item -ItemType HardLink") && text.contains("az.exe"), "{text}");
    assert!(!text.contains("ln -s"), "{text}");
}

/// `setup bazel` names the helper by the file `--apply` makes, `entra-token-bazel.exe`,
/// and both dry runs (bazel, docker) print PowerShell.
#[test]
fn setup_bazel_and_docker_name_the_exe_they_make() {
    let sb = Sandbox::new();
    sb.write_config("[profiles.ci]\ntenant = \"t\"\nclient_id = \"c\"\nurls = [\"https://cache.contoso.test/\", \"contoso.azurecr.io\"]\nresource = \"api://x\"\n");
    let (dir, rc) = (sb.path("bin"), sb.path("bazelrc"));
    let helper = dir.join("entra-token-bazel.exe");
    for tool in ["bazel", "docker"] {
        let mut c = sb.cmd();
        c.args(["setup", tool, "--dir"]).arg(&dir);
        if tool == "bazel" {
            c.arg("--bazelrc").arg(&rc);
        }
        let text = stdout(&ok(run(c)));
        assert!(text.contains("New-Item -ItemType HardLink") && !text.contains("ln -s"), "{text}");
    }
    let mut c = sb.cmd();
    c.args(["setup", "bazel", "--apply", "--dir"]).arg(&dir).arg("--bazelrc").arg(&rc);
    ok(run(c));
    let lines = std::fs::read_to_string(&rc).unwrap();
    assert!(lines.contains(&format!("common --credential_helper=cache.contoso.test={}\n", helper.display())), "{lines}");
    assert!(helper.is_file(), "the .bazelrc names {}, which --apply did not make", helper.display());
}

/// `storage = "auto"` (the default) keeps a person's refresh token in Credential Manager:
/// no refresh-token file and no fallback marker in the cache, the next resource is minted
/// from it, and `logout` removes it.
#[test]
fn refresh_tokens_live_in_credential_manager_by_default_and_logout_removes_them() {
    let mock = MockAuthority::start();
    let sb = Sandbox::new();
    sb.write_config(&format!("[profiles.dev]\nauthority = \"{}\"\nflow = \"device-code\"\ntenant = \"organizations\"\n", mock.url()));
    let cmd = |args: &[&str]| {
        let mut c = sb.cmd();
        c.args(args);
        c
    };
    mock.approve_device_codes(0);
    ok(run(cmd(&["login", "-p", "dev"])));
    let cache = sb.path("cache");
    assert!(!cache.join("keyring-unavailable").exists(), "Credential Manager was not used: {:?}", std::fs::read_to_string(cache.join("keyring-unavailable")));
    let files = json_files(&cache);
    assert!(!files.iter().any(|n| n.starts_with("rt-")), "a refresh-token file beside Credential Manager: {files:?}");
    ok(run(cmd(&["get-token", "-p", "dev", "-r", "graph"])));
    assert_eq!(mock.grant_count("refresh_token"), 1, "graph's token comes from the stored refresh token");
    let out = ok(run(cmd(&["logout", "-p", "dev"])));
    assert!(stdout(&out).is_empty());
    let again = run(cmd(&["get-token", "-p", "dev", "-r", "storage"]));
    assert_eq!(again.status.code(), Some(3), "the refresh token outlived logout");
    assert_eq!(mock.grant_count("refresh_token"), 1);
}

/// `completions powershell` prints a script PowerShell loads with `Invoke-Expression`: it
/// registers a native argument completer for entra-token that knows the subcommands and
/// their flags. (pwsh itself is not installable here: no Debian package, no Wine build.)
#[test]
fn powershell_completions_register_a_native_completer_with_every_subcommand() {
    let sb = Sandbox::new();
    let mut c = sb.cmd();
    c.args(["completions", "powershell"]);
    let out = ok(run(c));
    let script = stdout(&out);
    assert!(script.contains("Register-ArgumentCompleter -Native -CommandName 'entra-token'"), "{script}");
    for word in ["get-token", "login", "logout", "status", "inspect", "serve", "--profile", "--resource"] {
        assert!(script.contains(&format!("'{word}'")), "{word} is not completed");
    }
    assert!(script.contains("[CompletionResult]::new("), "not PowerShell's completion objects");
}

/// Types `text` into this process's console, as keystrokes: a child started without its
/// own console shares it and reads them from `CONIN$`.
fn type_into_console(text: &str) {
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::System::Console::{INPUT_RECORD, KEY_EVENT, WriteConsoleInputW};
    let conin = std::fs::OpenOptions::new().read(true).write(true).open("CONIN$").expect("this test needs a console (see its ignore reason)");
    let mut records = Vec::new();
    for c in text.encode_utf16() {
        for down in [1, 0] {
            // SAFETY: INPUT_RECORD is plain data; zero is a valid value of every field.
            let mut r: INPUT_RECORD = unsafe { std::mem::zeroed() };
            r.EventType = KEY_EVENT as u16;
            r.Event.KeyEvent.bKeyDown = down;
            r.Event.KeyEvent.wRepeatCount = 1;
            r.Event.KeyEvent.uChar.UnicodeChar = c;
            r.Event.KeyEvent.wVirtualKeyCode = if c == 13 { 0x0D } else { 0 };
            records.push(r);
        }
    }
    let mut written = 0u32;
    // SAFETY: the handle is a live console input handle; the records outlive the call.
    let ok = unsafe { WriteConsoleInputW(conin.as_raw_handle(), records.as_ptr(), records.len() as u32, &mut written) };
    assert!(ok != 0 && written as usize == records.len(), "cannot type into the console: {}", std::io::Error::last_os_error());
}

/// The transcript of the console this test runs in (util-linux `script`'s typescript, as
/// scripts/windows.sh starts it): what a person would see on the screen.
fn console_screen() -> String {
    let path = std::env::var_os("ENTRA_TEST_CONSOLE_TRANSCRIPT").expect("ENTRA_TEST_CONSOLE_TRANSCRIPT (set by scripts/windows.sh)");
    String::from_utf8_lossy(&std::fs::read(path).expect("read the console transcript")).into_owned()
}

/// A password sign-in with nothing configured to answer: the username prompt reads the
/// console (`CONIN$`, never stdin, which may carry a protocol request), and the password
/// prompt reads it without echo: the password reaches the authority and never the screen.
#[test]
#[ignore = "needs a console to type into: scripts/windows.sh runs it alone under a pseudo-terminal (util-linux `script`), as Wine gives the other tests none"]
fn console_prompts_read_conin_and_the_password_is_not_echoed() {
    let mock = MockAuthority::start();
    mock.add_tenant(TENANT);
    mock.add_user("ann@contoso.test", "correct horse battery");
    let sb = Sandbox::new();
    sb.write_config(&format!("[profiles.pw]\nauthority = \"{}\"\nflow = \"password\"\ntenant = \"{TENANT}\"\nstorage = \"file\"\n", mock.url()));
    let typist = std::thread::spawn(|| {
        std::thread::sleep(std::time::Duration::from_secs(2));
        type_into_console("ann@contoso.test\rcorrect horse battery\r");
    });
    let mut c = sb.cmd();
    c.args(["login", "-p", "pw"]);
    let out = run(c);
    typist.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert!(err.contains("signed in as ann@contoso.test"), "{err}");
    let sent = mock.requests().into_iter().find(|r| r.form_get("grant_type") == Some("password")).expect("no password grant");
    assert_eq!((sent.form_get("username"), sent.form_get("password")), (Some("ann@contoso.test"), Some("correct horse battery")));
    let screen = console_screen();
    assert!(screen.contains("username:") && screen.contains("password for ann@contoso.test"), "the prompts are not on the console:\n{screen}");
    // What is typed is seen (the username, echoed before the next prompt)…
    assert!(screen.matches("ann@contoso.test").count() >= 2, "typing is not echoed at all, so no echo proves nothing:\n{screen}");
    // …but not the password.
    assert!(!screen.contains("correct horse"), "the password was echoed:\n{screen}");
}

/// A browser sign-in whose redirect_uri is not on this machine (no listener can take it):
/// the address is printed, and the address the browser ends on is pasted into the console
/// (`CONIN$`), as over SSH; its code is redeemed with the configured redirect_uri.
#[test]
#[ignore = "needs a console to type into: scripts/windows.sh runs it alone under a pseudo-terminal (util-linux `script`), as Wine gives the other tests none"]
fn console_paste_back_of_the_final_address_completes_a_browser_sign_in() {
    use std::io::BufRead;
    let mock = MockAuthority::start();
    let sb = Sandbox::new();
    let redirect = "https://app.contoso.test/auth";
    sb.write_config(&format!("[profiles.web]\nauthority = \"{}\"\nflow = \"interactive\"\ntenant = \"organizations\"\nredirect_uri = \"{redirect}\"\nstorage = \"file\"\n", mock.url()));
    let mut c = sb.cmd();
    c.args(["login", "-p", "web"]).stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    // The address is the first word that is one (every stderr line starts `entra-token: `).
    let url = lines.by_ref().map_while(Result::ok).find_map(|l| l.split_whitespace().find(|w| w.starts_with("http")).map(str::to_string)).expect("the sign-in address on stderr");
    // The browser's part: the authority answers with a redirect to the app's address.
    let agent: ureq::Agent = ureq::Agent::config_builder().proxy(None).max_redirects(0).http_status_as_error(false).build().into();
    let reply = agent.get(&url).call().unwrap();
    let landed = reply.headers().get("location").and_then(|l| l.to_str().ok()).expect("a redirect").to_string();
    assert!(landed.starts_with(redirect) && landed.contains("code="), "{landed}");
    type_into_console(&format!("{landed}\r"));
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{}", rest.join("\n"));
    assert!(rest.iter().any(|l| l.contains("signed in as")), "{}", rest.join("\n"));
    let redeem = mock.requests().into_iter().find(|r| r.form_get("grant_type") == Some("authorization_code")).expect("the code was not redeemed");
    assert_eq!(redeem.form_get("redirect_uri"), Some(redirect));
    assert!(console_screen().contains("paste it here"), "the paste prompt is not on the console");
}

/// Ctrl+C on the console, which Windows sends to every process on it: exec stays (it must
/// remove the token file), the command gets it too and ends as Windows ends a program on
/// Ctrl+C (0xC000013A), and exec removes the file and ends with that whole code. (This test
/// is on the console too: it says "handled" while the event goes round.)
#[test]
#[ignore = "needs a console to type into: scripts/windows.sh runs it alone under a pseudo-terminal (util-linux `script`), as Wine gives the other tests none"]
fn console_ctrl_c_reaches_execs_command_and_exec_cleans_up() {
    use windows_sys::Win32::System::Console::{CTRL_C_EVENT, GenerateConsoleCtrlEvent, SetConsoleCtrlHandler};
    unsafe extern "system" fn handled(_: u32) -> i32 {
        1
    }
    let (_mock, sb) = client_credentials_setup(TENANT, APP, SECRET);
    let (file, ready) = (sb.path("token"), sb.path("ready"));
    let me = std::env::current_exe().expect("the test binary's path");
    let mut c = sb.cmd();
    c.env("CI_SECRET", SECRET).env("STAND_IN_READY", &ready).env("STAND_IN_SECONDS", "60");
    c.args(["exec", "-p", "ci", "-r", "graph", "--file"]).arg(&file).arg("--").arg(me).args(["--exact", "exec::stand_in", "--ignored", "--nocapture"]);
    c.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let start = std::time::Instant::now();
    while !ready.exists() {
        assert!(start.elapsed().as_secs() < 30, "the command never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(file.exists(), "no token file while the command runs");
    // SAFETY: registers (and below removes) a handler that only returns "handled".
    unsafe { SetConsoleCtrlHandler(Some(handled), 1) };
    // SAFETY: sends Ctrl+C to the processes on this console (group 0).
    let sent = unsafe { GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0) };
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed().as_secs() > 50 {
            let _ = child.kill();
            panic!("Ctrl+C did not end the command (sent: {sent})");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: removes the handler registered above.
    unsafe { SetConsoleCtrlHandler(Some(handled), 0) };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(0xC000013A_u32 as i32), "exec's code is the command's end by Ctrl+C: {err}");
    assert!(!file.exists(), "exec did not remove the token file: {err}");
}
