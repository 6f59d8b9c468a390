//! A desktop notification for a person who cannot see our stderr (an IDE, Lens, an MCP
//! client ran us): freedesktop Notifications over the session D-Bus, through the libdbus
//! the keyring feature already links. Best effort: no bus, no notification server, or a
//! build without it changes nothing but the trace. `ask` adds actions (Allow/Deny) and
//! waits for the one the person clicks: the token agent's `--confirm` without a terminal.

/// Shows `summary` / `body` (plain text; escaped for servers that render markup) if a session bus is there; never fails.
pub(crate) fn send(summary: &str, body: &str) {
    if !crate::env::is_set(crate::env::DBUS_SESSION_BUS_ADDRESS) {
        crate::log::trace!(1, "no session D-Bus (DBUS_SESSION_BUS_ADDRESS unset); no desktop notification");
        return;
    }
    match imp::send(summary, body) {
        Ok(()) => crate::log::trace!(1, "desktop notification sent"),
        Err(e) => crate::log::trace!(1, "no desktop notification: {e}"),
    }
}

/// What the person did with a question (`ask`). Only the D-Bus build answers one; the
/// others always say why they cannot ask.
#[cfg(unix)]
#[derive(Debug, PartialEq, Eq)]
#[cfg_attr(not(all(target_os = "linux", feature = "keyring")), allow(dead_code))]
pub(crate) enum Answer {
    /// Clicked the action with this key.
    Action(String),
    /// Closed the notification, or did nothing within the time.
    Dismissed,
}

/// Shows a notification with `actions` (key, label) and waits up to `wait` for the
/// person's click. Err (with the reason) when it cannot be shown at all: no session bus,
/// no notification server, a build without D-Bus. Unix only: the token agent asks.
#[cfg(unix)]
pub(crate) fn ask(summary: &str, body: &str, actions: &[(&str, &str)], wait: std::time::Duration) -> Result<Answer, String> {
    if !crate::env::is_set(crate::env::DBUS_SESSION_BUS_ADDRESS) {
        return Err("no session D-Bus (DBUS_SESSION_BUS_ADDRESS is unset)".into());
    }
    imp::ask(summary, body, actions, wait)
}

/// `body` as plain text to a server that renders the spec's markup (`<b>`, `<a href>`,
/// `<img>`; it says `body-markup` in its capabilities): `&`, `<` and `>` as entities, so
/// text from outside (a request's scope, a profile name) is shown, never rendered or
/// followed. A server that renders no markup shows the text as it is.
#[cfg_attr(not(all(target_os = "linux", feature = "keyring")), allow(dead_code))]
fn markup_escaped(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    for c in body.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(all(target_os = "linux", feature = "keyring"))]
mod imp {
    use dbus::arg::PropMap;
    use dbus::blocking::Connection;
    use std::time::Duration;

    /// `body` as this server shows it: escaped when it renders markup (or does not say).
    fn as_text(conn: &Connection, body: &str) -> String {
        let proxy = conn.with_proxy(NAME, PATH, Duration::from_secs(2));
        let caps: Result<(Vec<String>,), _> = proxy.method_call(NAME, "GetCapabilities", ());
        match caps {
            Ok((caps,)) if !caps.iter().any(|c| c == "body-markup") => body.to_string(),
            _ => super::markup_escaped(body),
        }
    }

    pub(super) fn send(summary: &str, body: &str) -> Result<(), String> {
        let conn = Connection::new_session().map_err(|e| e.to_string())?;
        let body = as_text(&conn, body);
        let proxy = conn.with_proxy("org.freedesktop.Notifications", "/org/freedesktop/Notifications", Duration::from_secs(2));
        let actions: Vec<&str> = Vec::new();
        let hints = PropMap::new();
        // Notify(app_name, replaces_id, app_icon, summary, body, actions, hints, expire_timeout ms)
        let (_id,): (u32,) = proxy
            .method_call("org.freedesktop.Notifications", "Notify", ("entra-token", 0u32, "dialog-password", summary, body, actions, hints, 0i32))
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    const NAME: &str = "org.freedesktop.Notifications";
    const PATH: &str = "/org/freedesktop/Notifications";

    pub(super) fn ask(summary: &str, body: &str, actions: &[(&str, &str)], wait: Duration) -> Result<super::Answer, String> {
        use dbus::message::MatchRule;
        use std::sync::{Arc, Mutex};
        let conn = Connection::new_session().map_err(|e| e.to_string())?;
        // Only the notification server's own signals count: any program on the bus may
        // send an ActionInvoked, so the rule names the unique name that owns the service.
        let bus = conn.with_proxy("org.freedesktop.DBus", "/org/freedesktop/DBus", Duration::from_secs(2));
        let (owner,): (String,) = bus.method_call("org.freedesktop.DBus", "GetNameOwner", (NAME,)).map_err(|e| format!("no notification server: {e}"))?;
        // (id, Some(action)) for a click, (id, None) for a close; subscribed before Notify so none is missed.
        type Events = Vec<(u32, Option<String>)>;
        let seen: Arc<Mutex<Events>> = Arc::default();
        for member in ["ActionInvoked", "NotificationClosed"] {
            let rule = MatchRule::new_signal(NAME, member).with_sender(owner.clone()).with_path(PATH);
            let seen = Arc::clone(&seen);
            conn.add_match(rule, move |(): (), _, msg: &dbus::Message| {
                let event = match msg.member().as_deref() {
                    Some("ActionInvoked") => msg.read2::<u32, String>().ok().map(|(id, key)| (id, Some(key))),
                    _ => msg.read1::<u32>().ok().map(|id| (id, None)),
                };
                seen.lock().unwrap_or_else(|p| p.into_inner()).extend(event);
                true
            })
            .map_err(|e| e.to_string())?;
        }
        let proxy = conn.with_proxy(NAME, PATH, Duration::from_secs(5));
        let body = as_text(&conn, body);
        let flat: Vec<&str> = actions.iter().flat_map(|(k, l)| [*k, *l]).collect();
        let mut hints = PropMap::new();
        // Critical urgency: the server keeps it on screen until the person answers.
        hints.insert("urgency".into(), dbus::arg::Variant(Box::new(2u8)));
        let (id,): (u32,) = proxy
            .method_call(NAME, "Notify", ("entra-token", 0u32, "dialog-password", summary, body, flat, hints, 0i32))
            .map_err(|e| e.to_string())?;
        let deadline = std::time::Instant::now() + wait;
        loop {
            if let Some((_, what)) = seen.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|(i, _)| *i == id) {
                return Ok(match what {
                    Some(key) => super::Answer::Action(key.clone()),
                    None => super::Answer::Dismissed,
                });
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                let _: Result<(), _> = proxy.method_call(NAME, "CloseNotification", (id,));
                return Ok(super::Answer::Dismissed);
            }
            conn.process(left.min(Duration::from_millis(250))).map_err(|e| e.to_string())?;
        }
    }
}

#[cfg(not(all(target_os = "linux", feature = "keyring")))]
mod imp {
    pub(super) fn send(_summary: &str, _body: &str) -> Result<(), String> {
        Err("this build has no D-Bus client".into())
    }

    #[cfg(unix)]
    pub(super) fn ask(_summary: &str, _body: &str, _actions: &[(&str, &str)], _wait: std::time::Duration) -> Result<super::Answer, String> {
        Err("this build has no D-Bus client".into())
    }
}
