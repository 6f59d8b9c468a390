//! Secrets another program (the Azure CLI, through msal-extensions) keeps in the OS's
//! protected stores, read-only: a DPAPI blob on Windows, a Secret Service item found by its
//! attributes or label on Linux, a Keychain item on macOS. The platform differences of
//! reusing `az login` live here and nowhere above; every function answers Err(why) where
//! the platform has no such store, so callers fall back the same way everywhere.

/// A Secret Service item as libsecret stores it: its schema name and attributes.
pub(crate) struct ItemQuery<'a> {
    pub schema: &'a str,
    pub attributes: &'a [(&'a str, &'a str)],
}

/// The secret of the first unlocked Secret Service item matching one of `queries`, else of
/// an item in the default collection whose label starts with `label_prefix` and contains
/// `label_contains` (case-insensitive). Ok(None): the service answered and holds none.
/// Never unlocks anything (that would prompt): a locked match is an Err saying so.
#[cfg(all(target_os = "linux", feature = "keyring"))]
pub(crate) fn secret_service_lookup(queries: &[ItemQuery<'_>], label_prefix: &str, label_contains: &str) -> Result<Option<Vec<u8>>, String> {
    use dbus_secret_service::{EncryptionType, SecretService};
    use std::collections::HashMap;
    let ss = SecretService::connect(EncryptionType::Plain).map_err(|e| format!("no Secret Service on the session bus ({e})"))?;
    let mut locked = false;
    for q in queries {
        // libsecret stores the schema name as the `xdg:schema` attribute and matches on it.
        let mut attrs: HashMap<&str, &str> = q.attributes.iter().copied().collect();
        attrs.insert("xdg:schema", q.schema);
        let found = ss.search_items(attrs).map_err(|e| format!("the Secret Service search failed ({e})"))?;
        if let Some(item) = found.unlocked.first() {
            return item.get_secret().map(Some).map_err(|e| format!("the Secret Service would not give the item ({e})"));
        }
        locked |= !found.locked.is_empty();
    }
    let (prefix, contains) = (label_prefix.to_lowercase(), label_contains.to_lowercase());
    if let Ok(collection) = ss.get_default_collection() {
        for item in collection.get_all_items().unwrap_or_default() {
            let label = item.get_label().unwrap_or_default().to_lowercase();
            if !(label.starts_with(&prefix) && label.contains(&contains)) {
                continue;
            }
            if item.is_locked().unwrap_or(true) {
                locked = true;
                continue;
            }
            return item.get_secret().map(Some).map_err(|e| format!("the Secret Service would not give the item ({e})"));
        }
    }
    if locked {
        return Err("the keyring holding it is locked (unlock it, or run any `az` command once)".into());
    }
    Ok(None)
}

/// Where there is no Secret Service to ask, Err names the item that was wanted.
#[cfg(not(all(target_os = "linux", feature = "keyring")))]
pub(crate) fn secret_service_lookup(queries: &[ItemQuery<'_>], label_prefix: &str, _: &str) -> Result<Option<Vec<u8>>, String> {
    let why = if cfg!(target_os = "linux") { "this build has no keyring support" } else { "there is no Secret Service on this platform" };
    let wanted: Vec<String> = queries.iter().map(|q| format!("{} {:?}", q.schema, q.attributes)).chain([format!("label {label_prefix:?}")]).collect();
    Err(format!("{why} (wanted an item by {})", wanted.join(" or ")))
}

/// The password of the Keychain item `service`/`account` (macOS). Ok(None): none there.
#[cfg(all(target_os = "macos", feature = "keyring"))]
pub(crate) fn keychain_lookup(service: &str, account: &str) -> Result<Option<Vec<u8>>, String> {
    match keyring::Entry::new(service, account).and_then(|e| e.get_secret()) {
        Ok(s) => Ok(Some(s)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(format!("the Keychain would not give the item ({e})")),
    }
}

#[cfg(not(all(target_os = "macos", feature = "keyring")))]
pub(crate) fn keychain_lookup(_: &str, _: &str) -> Result<Option<Vec<u8>>, String> {
    Err("there is no Keychain on this platform".into())
}

/// Decrypts a blob `CryptProtectData` made for the current Windows user (no entropy, no
/// prompt), as msal-extensions writes az's `msal_token_cache.bin`.
#[cfg(windows)]
pub(crate) fn dpapi_unprotect(blob: &[u8]) -> Result<Vec<u8>, String> {
    use std::ffi::c_void;
    #[repr(C)]
    struct DataBlob {
        cb: u32,
        pb: *mut u8,
    }
    #[link(name = "crypt32")]
    unsafe extern "system" {
        fn CryptUnprotectData(
            data_in: *const DataBlob,
            descr: *mut *mut u16,
            entropy: *const DataBlob,
            reserved: *const c_void,
            prompt: *const c_void,
            flags: u32,
            data_out: *mut DataBlob,
        ) -> i32;
    }
    #[link(name = "kernel32")]
    unsafe extern "system" {
        fn LocalFree(mem: *mut c_void) -> *mut c_void;
    }
    const CRYPTPROTECT_UI_FORBIDDEN: u32 = 0x1;
    let len = u32::try_from(blob.len()).map_err(|_| "the encrypted file is too large".to_string())?;
    let input = DataBlob { cb: len, pb: blob.as_ptr() as *mut u8 };
    let mut out = DataBlob { cb: 0, pb: std::ptr::null_mut() };
    // SAFETY: `input` points at `blob`, alive for the call and only read; `out` is filled by
    // the call with a LocalAlloc'd buffer of `out.cb` bytes, copied and then freed once.
    let ok = unsafe { CryptUnprotectData(&input, std::ptr::null_mut(), std::ptr::null(), std::ptr::null(), std::ptr::null(), CRYPTPROTECT_UI_FORBIDDEN, &mut out) };
    if ok == 0 || out.pb.is_null() {
        return Err(format!("Windows could not decrypt it for this user ({})", std::io::Error::last_os_error()));
    }
    // SAFETY: on success `out.pb` holds `out.cb` initialised bytes owned by us until LocalFree.
    let plain = unsafe { std::slice::from_raw_parts(out.pb, out.cb as usize) }.to_vec();
    // SAFETY: `out.pb` came from CryptUnprotectData and is freed exactly once.
    unsafe { LocalFree(out.pb.cast()) };
    Ok(plain)
}

#[cfg(not(windows))]
pub(crate) fn dpapi_unprotect(_: &[u8]) -> Result<Vec<u8>, String> {
    Err("DPAPI exists only on Windows".into())
}
