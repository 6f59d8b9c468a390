//! Refresh tokens kept in files, sealed at rest where the OS offers a per-user key:
//! DPAPI on Windows (CryptProtectData, as MSAL's own token cache does there), so a copy
//! of the file is useless off the user's account. Elsewhere the private 0600 file is
//! the protection (and the OS keyring the better place): `seal` is `None` there.

use crate::error::{Error, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A refresh-token entry as written to its file: sealed as `{"v":1,"dpapi":"BASE64"}`
/// where the OS can seal, else the entry itself.
pub(crate) fn to_file<T: Serialize>(entry: &T) -> Result<serde_json::Value> {
    let plain = serde_json::to_vec(entry).map_err(|e| Error::caused("cannot encode the refresh token entry", e))?;
    Ok(match seal(&plain)? {
        Some(sealed) => serde_json::json!({ "v": 1, "dpapi": STANDARD.encode(sealed) }),
        None => serde_json::from_slice(&plain).map_err(|e| Error::caused("cannot encode the refresh token entry", e))?,
    })
}

/// The entry in a file written by [`to_file`] (or an unsealed one from before); `None`
/// when it cannot be opened here (another user's or machine's seal): a miss, and the
/// next sign-in replaces it.
pub(crate) fn from_file<T: DeserializeOwned>(file: serde_json::Value) -> Option<T> {
    let Some(sealed) = file.get("dpapi").and_then(|d| d.as_str()) else {
        return serde_json::from_value(file).ok();
    };
    let plain = STANDARD.decode(sealed).ok().and_then(|b| match unseal(&b) {
        Ok(p) => Some(p),
        Err(e) => {
            crate::log::warn!("{}; treating it as signed out", crate::error::one_line(&e));
            None
        }
    })?;
    serde_json::from_slice(&plain).ok()
}

/// Seals `plain` for the current user; `None` where this platform has no such key.
pub(crate) fn seal(plain: &[u8]) -> Result<Option<Vec<u8>>> {
    #[cfg(windows)]
    {
        dpapi::protect(plain).map(Some).map_err(|e| Error::caused("cannot encrypt the refresh token with DPAPI", e))
    }
    #[cfg(not(windows))]
    {
        let _ = plain;
        Ok(None)
    }
}

/// Opens what [`seal`] sealed (on this machine, for this user).
pub(crate) fn unseal(sealed: &[u8]) -> Result<Vec<u8>> {
    #[cfg(windows)]
    {
        dpapi::unprotect(sealed).map_err(|e| Error::caused("cannot decrypt the refresh token with DPAPI (sealed by another user or machine?)", e))
    }
    #[cfg(not(windows))]
    {
        let _ = sealed;
        Err(Error::general("this refresh token was sealed with Windows DPAPI; sign in again here"))
    }
}

#[cfg(windows)]
mod dpapi {
    use std::io;
    use windows_sys::Win32::Foundation::LocalFree;
    use windows_sys::Win32::Security::Cryptography::{CRYPT_INTEGER_BLOB, CRYPTPROTECT_UI_FORBIDDEN, CryptProtectData, CryptUnprotectData};

    /// Entropy binding the blobs to this program: another DPAPI user of the same
    /// account cannot unseal them by accident.
    const ENTROPY: &[u8] = b"entra-token refresh token v1";

    fn call(input: &[u8], protect: bool) -> io::Result<Vec<u8>> {
        let blob = |b: &[u8]| CRYPT_INTEGER_BLOB { cbData: b.len() as u32, pbData: b.as_ptr().cast_mut() };
        let (data, entropy) = (blob(input), blob(ENTROPY));
        let mut out = CRYPT_INTEGER_BLOB { cbData: 0, pbData: std::ptr::null_mut() };
        // SAFETY: the input blobs point at live slices; out receives a LocalAlloc'd buffer
        // that we copy and free.
        let ok = unsafe {
            if protect {
                CryptProtectData(&data, std::ptr::null(), &entropy, std::ptr::null(), std::ptr::null(), CRYPTPROTECT_UI_FORBIDDEN, &mut out)
            } else {
                CryptUnprotectData(&data, std::ptr::null_mut(), &entropy, std::ptr::null(), std::ptr::null(), CRYPTPROTECT_UI_FORBIDDEN, &mut out)
            }
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: out holds cbData bytes allocated by DPAPI.
        let bytes = unsafe { std::slice::from_raw_parts(out.pbData, out.cbData as usize) }.to_vec();
        // SAFETY: allocated by DPAPI with LocalAlloc.
        unsafe { LocalFree(out.pbData.cast()) };
        Ok(bytes)
    }

    pub(super) fn protect(plain: &[u8]) -> io::Result<Vec<u8>> {
        call(plain, true)
    }
    pub(super) fn unprotect(sealed: &[u8]) -> io::Result<Vec<u8>> {
        call(sealed, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_round_trips_and_hides_the_plain_text_where_the_os_has_a_key() {
        let plain = b"0.AXEA-refresh-token-value";
        let sealed = seal(plain).unwrap();
        // Windows seals with DPAPI; elsewhere there is no key here and nothing is sealed.
        assert_eq!(sealed.is_some(), cfg!(windows), "Windows must seal with DPAPI, and only Windows does here");
        if let Some(sealed) = sealed {
            assert!(!sealed.windows(plain.len()).any(|w| w == plain), "the sealed bytes contain the token");
            assert_eq!(unseal(&sealed).unwrap(), plain);
            assert!(unseal(b"not a dpapi blob").is_err());
        }
    }
}
