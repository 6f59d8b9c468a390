//! az's MSAL token cache as az really keeps it, read-only: plaintext
//! `msal_token_cache.json`, or encrypted where `core.encrypt_token_cache` (the default on
//! Windows) puts it — `msal_token_cache.bin` under DPAPI on Windows, a libsecret item on
//! Linux, a Keychain item on macOS (msal-extensions' layouts; `os_secret` does the reading).
//! Every shape az writes parses: null fields (a service principal's tokens have no home
//! account), entries of kinds we do not know, sections that are not objects; one bad entry
//! is skipped, never the file. When the encrypted cache cannot be read, the caller runs
//! `az` instead, and the reason is said once, not on every call.

use crate::cache::Cache;
use crate::log::{trace, warn};
use crate::oauth;
use crate::os_secret::{self, ItemQuery};
use crate::secret::Secret;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// az's files hold every account and subscription; generous, but bounded.
pub(crate) const MAX_FILE: u64 = 16 * 1024 * 1024;
/// In our cache directory: why az's encrypted cache could not be read (said once).
const UNREADABLE_MARKER: &str = "azure-cli-cache-unreadable";

/// MSAL's token cache, the parts we read.
#[derive(Deserialize, Default)]
pub(crate) struct MsalCache {
    #[serde(rename = "AccessToken", default, deserialize_with = "entries")]
    pub(crate) access_tokens: BTreeMap<String, MsalToken>,
    #[serde(rename = "RefreshToken", default, deserialize_with = "entries")]
    pub(crate) refresh_tokens: BTreeMap<String, MsalToken>,
    #[serde(rename = "Account", default, deserialize_with = "entries")]
    pub(crate) accounts: BTreeMap<String, MsalAccount>,
}

#[derive(Deserialize)]
pub(crate) struct MsalToken {
    pub(crate) secret: Secret<String>,
    /// Empty for a service principal's tokens (az writes `null`).
    #[serde(default, deserialize_with = "text")]
    pub(crate) home_account_id: String,
    #[serde(default, deserialize_with = "text")]
    pub(crate) environment: String,
    #[serde(default, deserialize_with = "text")]
    pub(crate) client_id: String,
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) realm: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) target: Option<String>,
    #[serde(default, deserialize_with = "oauth::num")]
    pub(crate) expires_on: Option<i64>,
    #[serde(default, deserialize_with = "oauth::num")]
    pub(crate) refresh_on: Option<i64>,
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) family_id: Option<String>,
    /// `Bearer`, or a key-bound kind: `ssh-cert` (`az ssh`), `pop` (`az connectedk8s proxy`).
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) token_type: Option<String>,
    /// The key a key-bound token is bound to; a bearer token has none.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) key_id: Option<String>,
}

impl MsalToken {
    /// May this access token be handed out as a bearer token? Only when MSAL stored it as
    /// one (it always writes `token_type`) and it is bound to no key: an SSH certificate or
    /// a proof-of-possession token is of use only with its key, and is not ours to serve.
    pub(crate) fn is_bearer(&self) -> bool {
        self.token_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("bearer")) && self.key_id.is_none()
    }
}

#[derive(Deserialize)]
pub(crate) struct MsalAccount {
    #[serde(default, deserialize_with = "text")]
    pub(crate) home_account_id: String,
    #[serde(default, deserialize_with = "text")]
    pub(crate) environment: String,
    #[serde(default, deserialize_with = "text")]
    pub(crate) username: String,
}

/// A string field that may be null, missing or a number: null and missing are "".
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(opt_text(d)?.unwrap_or_default())
}

fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// A section of entries: each one that parses, whatever the others hold.
fn entries<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<BTreeMap<String, T>, D::Error> {
    let Value::Object(map) = Value::deserialize(d)? else {
        return Ok(BTreeMap::new());
    };
    let mut out = BTreeMap::new();
    for (key, v) in map {
        match T::deserialize(v) {
            Ok(t) => {
                out.insert(key, t);
            }
            // Never the serde message: it may quote a value.
            Err(_) => trace!(1, "skipping an entry of az's token cache that has no usable shape"),
        }
    }
    Ok(out)
}

/// Pure: the cache from its JSON (a UTF-8 BOM allowed). None only when it is not a JSON object.
pub(crate) fn parse(bytes: &[u8]) -> Option<MsalCache> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match serde_json::from_slice::<Value>(bytes).ok()? {
        v @ Value::Object(_) => MsalCache::deserialize(v).ok(),
        _ => None,
    }
}

/// What `core.encrypt_token_cache` in az's `config` says, if it says anything.
pub(crate) fn encrypt_setting(config_ini: &str) -> Option<bool> {
    let mut in_core = false;
    for line in config_ini.lines().map(str::trim) {
        if line.starts_with('[') {
            in_core = line.trim_matches(|c| c == '[' || c == ']').trim().eq_ignore_ascii_case("core");
            continue;
        }
        let Some((k, v)) = line.split_once(['=', ':']) else { continue };
        if in_core && k.trim().eq_ignore_ascii_case("encrypt_token_cache") {
            // Python's configparser getboolean.
            return match v.trim().to_ascii_lowercase().as_str() {
                "1" | "yes" | "true" | "on" => Some(true),
                "0" | "no" | "false" | "off" => Some(false),
                _ => None,
            };
        }
    }
    None
}

/// az's file at `path`, when it is there and trusted (`fs::read_users_file`).
fn read_small(path: &Path) -> Option<Vec<u8>> {
    crate::fs::read_users_file(path, MAX_FILE)
}

/// az's token cache from `dir` ($AZURE_CONFIG_DIR), wherever az's settings put it; Err says
/// why it cannot be read (the caller runs `az` instead). `ours`: where to remember that the
/// encrypted cache was unreadable, so the warning is said once.
pub(crate) fn load(dir: &Path, ours: Option<&Cache>) -> Result<MsalCache, String> {
    let json = dir.join("msal_token_cache.json");
    let bin = dir.join("msal_token_cache.bin");
    let setting = read_small(&dir.join("config")).and_then(|b| String::from_utf8(b).ok()).as_deref().and_then(encrypt_setting);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let encrypted = match setting {
        Some(on) => on,
        // Unset: az's platform default, unless only (or most recently) the plain file was written.
        None => match (modified(&json), modified(&bin)) {
            (Some(j), Some(b)) => b > j,
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (None, None) => cfg!(windows) || cfg!(target_os = "linux"),
        },
    };
    if !encrypted {
        let bytes = read_small(&json).ok_or_else(|| format!("az's token cache {} is absent or unreadable", json.display()))?;
        return parse(&bytes).ok_or_else(|| format!("az's token cache {} is not MSAL's JSON", json.display()));
    }
    match read_encrypted(&bin) {
        Ok(bytes) => {
            if let Some(c) = ours.filter(|c| c.dir().join(UNREADABLE_MARKER).exists()) {
                let _ = crate::fs::remove(&c.dir().join(UNREADABLE_MARKER));
            }
            trace!(1, "read az's encrypted token cache");
            match parse(&bytes) {
                Some(c) => Ok(c),
                None if serde_json::from_slice::<Vec<Value>>(&bytes).is_ok() => Err(unreadable(ours, "az's keyring entry holds its service-principal store, not its token cache")),
                None => Err(unreadable(ours, "az's encrypted token cache is not MSAL's JSON")),
            }
        }
        Err(why) => Err(unreadable(ours, &format!("az's encrypted token cache cannot be read here: {why}"))),
    }
}

/// Says (once per reason, remembered in our cache directory) that az is run instead.
fn unreadable(ours: Option<&Cache>, why: &str) -> String {
    let said = ours.and_then(|c| std::fs::read_to_string(c.dir().join(UNREADABLE_MARKER)).ok()).is_some_and(|s| s.trim() == why);
    if !said {
        warn!("{why}; running `az` for its tokens instead (said once)");
        if let Some(c) = ours
            && let Err(e) = crate::fs::write_atomic(&c.dir().join(UNREADABLE_MARKER), format!("{why}\n").as_bytes(), crate::fs::Access::Private, crate::fs::Durability::Sync)
        {
            trace!(1, "{e}");
        }
    }
    why.to_string()
}

/// msal-extensions' places for az's encrypted cache: azure-cli up to 2.9x registers it
/// under placeholder names (schema `my_schema_name`, attributes `my_attr1=foo`,
/// `my_attr2=bar`; Keychain `my_service_name`/`my_account_name`); newer releases label
/// it "Microsoft Azure CLI - Token cache".
fn read_encrypted(bin: &Path) -> Result<Vec<u8>, String> {
    if cfg!(windows) {
        let blob = read_small(bin).ok_or_else(|| format!("{} is absent or unreadable", bin.display()))?;
        return os_secret::dpapi_unprotect(&blob);
    }
    let found = if cfg!(target_os = "macos") {
        os_secret::keychain_lookup("my_service_name", "my_account_name")?
    } else {
        let placeholder = ItemQuery { schema: "my_schema_name", attributes: &[("my_attr1", "foo"), ("my_attr2", "bar")] };
        os_secret::secret_service_lookup(&[placeholder], "Microsoft Azure CLI", "token cache")?
    };
    found.ok_or_else(|| "the OS store holds no Azure CLI token cache (not signed in to az?)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_principal_nulls_and_bad_entries_do_not_lose_the_rest() {
        let c = parse(
            br#"{"AccessToken":{
                "sp":{"secret":"s1","home_account_id":null,"environment":"login.microsoftonline.com","client_id":"app","realm":"t","target":"https://management.core.windows.net//.default","expires_on":"99","cached_at":"1","token_type":"Bearer"},
                "user":{"secret":"s2","home_account_id":"u.t","environment":"login.microsoftonline.com","client_id":"04b07795-8ddb-461a-bbee-02f9e1bf7b46","realm":null,"target":"x","expires_on":99},
                "broken":{"secret":null},
                "odd":[1,2]},
              "RefreshToken":null,
              "Account":{"a":{"home_account_id":"u.t","environment":"login.microsoftonline.com","username":"ann@x","realm":"t","authority_type":"MSSTS"},"b":{"home_account_id":7}},
              "AppMetadata":{"x":{"family_id":null}}}"#,
        )
        .unwrap();
        assert_eq!(c.access_tokens.len(), 2);
        assert_eq!(c.access_tokens["sp"].home_account_id, "");
        assert_eq!(c.access_tokens["sp"].expires_on, Some(99));
        assert_eq!(c.access_tokens["user"].realm, None);
        assert!(c.access_tokens["sp"].is_bearer() && !c.access_tokens["user"].is_bearer(), "no token_type: not known to be bearer");
        assert!(c.refresh_tokens.is_empty());
        assert_eq!(c.accounts["a"].username, "ann@x");
        assert_eq!(c.accounts["b"].home_account_id, "7");
        assert!(parse(b"\xEF\xBB\xBF{}").is_some());
        assert!(parse(b"[]").is_none() && parse(b"garbage").is_none());
    }

    #[test]
    fn encrypt_setting_reads_azs_ini() {
        assert_eq!(encrypt_setting("[core]\nencrypt_token_cache = true\n"), Some(true));
        assert_eq!(encrypt_setting("[cloud]\nname = x\n[core]\nfirst_run = yes\nencrypt_token_cache=False\n"), Some(false));
        assert_eq!(encrypt_setting("[other]\nencrypt_token_cache = true\n"), None);
        assert_eq!(encrypt_setting(""), None);
    }

    /// az on Windows (msal-extensions' FilePersistenceWithDataProtection) writes
    /// `msal_token_cache.bin` as `CryptProtectData(json, "python_data", empty entropy,
    /// UI forbidden)`: the reader opens exactly that (under Wine's DPAPI here), and a blob
    /// sealed with other entropy (not az's) is a clear Err, not garbage.
    #[cfg(windows)]
    #[test]
    fn azs_dpapi_protected_cache_file_is_read_on_windows() {
        use windows_sys::Win32::Foundation::LocalFree;
        use windows_sys::Win32::Security::Cryptography::{CRYPT_INTEGER_BLOB, CRYPTPROTECT_UI_FORBIDDEN, CryptProtectData};
        fn protect(plain: &[u8], entropy: &[u8]) -> Vec<u8> {
            let blob = |b: &[u8]| CRYPT_INTEGER_BLOB { cbData: b.len() as u32, pbData: b.as_ptr().cast_mut() };
            let descr: Vec<u16> = "python_data".encode_utf16().chain([0]).collect();
            let mut out = CRYPT_INTEGER_BLOB { cbData: 0, pbData: std::ptr::null_mut() };
            // SAFETY: the blobs point at live slices; out is LocalAlloc'd by DPAPI, copied, freed.
            unsafe {
                assert_ne!(CryptProtectData(&blob(plain), descr.as_ptr(), &blob(entropy), std::ptr::null(), std::ptr::null(), CRYPTPROTECT_UI_FORBIDDEN, &mut out), 0, "{}", std::io::Error::last_os_error());
                let v = std::slice::from_raw_parts(out.pbData, out.cbData as usize).to_vec();
                LocalFree(out.pbData.cast());
                v
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let json = br#"{"AccessToken":{"k":{"secret":"az-access-token","home_account_id":"u.t","environment":"login.microsoftonline.com","client_id":"04b07795-8ddb-461a-bbee-02f9e1bf7b46","realm":"t","target":"https://management.core.windows.net//.default","expires_on":"4102444800","token_type":"Bearer"}},"Account":{"a":{"home_account_id":"u.t","environment":"login.microsoftonline.com","username":"ann@contoso.test","realm":"t"}}}"#;
        let sealed = protect(json, b"");
        assert!(!sealed.windows(15).any(|w| w == b"az-access-token"), "not encrypted");
        std::fs::write(dir.path().join("msal_token_cache.bin"), &sealed).unwrap();
        let c = load(dir.path(), None).unwrap();
        assert_eq!(c.access_tokens["k"].secret.expose(), "az-access-token");
        assert_eq!(c.accounts["a"].username, "ann@contoso.test");
        std::fs::write(dir.path().join("msal_token_cache.bin"), protect(json, b"someone else's entropy")).unwrap();
        let Err(why) = load(dir.path(), None) else { panic!("a blob sealed with other entropy was read") };
        assert!(why.contains("cannot be read here") && why.contains("could not decrypt"), "{why}");
    }
}
