//! A desktop notification for a person who cannot see our stderr (an IDE, Lens, an MCP
//! client ran us): freedesktop Notifications over the session D-Bus, through the libdbus
//! the keyring feature already links. Best effort: no bus, no notification server, or a
//! build without it changes nothing but the trace.

/// Shows `summary` / `body` (plain text) if a session bus is there; never fails.
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

#[cfg(all(target_os = "linux", feature = "keyring"))]
mod imp {
    use dbus::arg::PropMap;
    use dbus::blocking::Connection;
    use std::time::Duration;

    pub(super) fn send(summary: &str, body: &str) -> Result<(), String> {
        let conn = Connection::new_session().map_err(|e| e.to_string())?;
        let proxy = conn.with_proxy("org.freedesktop.Notifications", "/org/freedesktop/Notifications", Duration::from_secs(2));
        let actions: Vec<&str> = Vec::new();
        let hints = PropMap::new();
        // Notify(app_name, replaces_id, app_icon, summary, body, actions, hints, expire_timeout ms)
        let (_id,): (u32,) = proxy
            .method_call("org.freedesktop.Notifications", "Notify", ("entra-token", 0u32, "dialog-password", summary, body, actions, hints, 0i32))
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

#[cfg(not(all(target_os = "linux", feature = "keyring")))]
mod imp {
    pub(super) fn send(_summary: &str, _body: &str) -> Result<(), String> {
        Err("this build has no D-Bus client".into())
    }
}
