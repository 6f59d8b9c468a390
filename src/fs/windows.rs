//! Windows access lists for `fs`: what 0700/0600 and the uid check mean on Windows.
//! Private = a protected DACL granting the current user alone (SYSTEM and the
//! Administrators can take any file anyway); a private file is unsafe when its owner is
//! someone else or its DACL lets another account read or change it; a file we only act
//! on (`fs::open_trusted`) when another account may change it. Every ACE kind is read:
//! allow entries (plain, object, callback: a callback's condition is taken as met) count,
//! deny and audit entries only ever take access away, and a kind we do not know refuses.

use std::ffi::OsStr;
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::path::Path;
use std::sync::OnceLock;
use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, LocalFree};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, GetNamedSecurityInfoW, SE_FILE_OBJECT, SetNamedSecurityInfoW,
};
use windows_sys::Win32::Security::{
    ACE_HEADER, ACL, ACL_SIZE_INFORMATION, AclSizeInformation, DACL_SECURITY_INFORMATION, GetAce, GetAclInformation, GetSecurityDescriptorDacl,
    GetTokenInformation, OWNER_SECURITY_INFORMATION, PROTECTED_DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID, TOKEN_QUERY, TOKEN_USER, TokenUser,
};
use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

pub(super) enum Problem {
    Os(io::Error),
    Unsafe(String),
}

/// Accounts that may hold rights without making a file shared: the user, SYSTEM, the
/// Administrators group (both can take ownership of anything) and OWNER RIGHTS.
const TRUSTED: [&str; 3] = ["S-1-5-18", "S-1-5-32-544", "S-1-3-4"];

// Access bits (winnt.h) that let someone change a file, a directory's contents or an
// access list.
const WRITE_BITS: u32 = 0x0002 /* FILE_WRITE_DATA / ADD_FILE */
    | 0x0004 /* FILE_APPEND_DATA / ADD_SUBDIRECTORY */
    | 0x0040 /* FILE_DELETE_CHILD */
    | 0x0001_0000 /* DELETE */
    | 0x0004_0000 /* WRITE_DAC */
    | 0x0008_0000 /* WRITE_OWNER */
    | 0x4000_0000 /* GENERIC_WRITE */
    | 0x1000_0000 /* GENERIC_ALL */;
// Access bits that let someone read a file's data or list a directory.
const READ_BITS: u32 = 0x0001 /* FILE_READ_DATA / LIST_DIRECTORY */ | 0x8000_0000 /* GENERIC_READ */ | 0x1000_0000 /* GENERIC_ALL */;
const INHERIT_ONLY_ACE: u8 = 0x08;

/// What `check` refuses besides another owner.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Want {
    /// Nobody else may read or change it (the cache, its entries).
    Private,
    /// Nobody else may change it (a config or secret file we act on).
    NotWritable,
}

/// Where an ACE of type `t` keeps its mask and SID, or why it grants nothing.
enum AceKind {
    /// ACCESS_ALLOWED (0) and ACCESS_ALLOWED_CALLBACK (9): mask at 4, SID at 8.
    Allowed,
    /// ACCESS_ALLOWED_OBJECT (5) and ACCESS_ALLOWED_CALLBACK_OBJECT (11): mask at 4, flags
    /// at 8, then the object GUIDs the flags announce, then the SID.
    AllowedObject,
    /// Deny (1, 6, 10, 12), audit and alarm (2, 3, 7, 8, 13, 14, 15, 16), and the label,
    /// attribute, policy, trust and filter entries (17–21): they grant nothing.
    GrantsNothing,
    /// ACCESS_ALLOWED_COMPOUND (4) and anything newer: not understood, so refused.
    Unknown,
}

fn ace_kind(t: u8) -> AceKind {
    match t {
        0 | 9 => AceKind::Allowed,
        5 | 11 => AceKind::AllowedObject,
        1 | 2 | 3 | 6 | 7 | 8 | 10 | 12..=21 => AceKind::GrantsNothing,
        _ => AceKind::Unknown,
    }
}

/// True under Wine, whose access lists are not Windows': every file reports Everyone-read
/// whatever DACL was set, so the read half of the check cannot be made there.
fn under_wine() -> bool {
    static WINE: OnceLock<bool> = OnceLock::new();
    *WINE.get_or_init(|| {
        let ntdll = wide(OsStr::new("ntdll.dll"));
        // SAFETY: a NUL-terminated module name; ntdll is loaded in every process.
        let module = unsafe { GetModuleHandleW(ntdll.as_ptr()) };
        // SAFETY: a valid module handle (or null, checked) and a NUL-terminated name.
        !module.is_null() && unsafe { GetProcAddress(module, c"wine_get_version".as_ptr().cast()) }.is_some()
    })
}

fn wide(s: &OsStr) -> Vec<u16> {
    s.encode_wide().chain(Some(0)).collect()
}

fn last_error() -> io::Error {
    io::Error::last_os_error()
}

/// Frees a LocalAlloc'd pointer when dropped.
struct Local(*mut core::ffi::c_void);
impl Drop for Local {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from an API documented to LocalAlloc it.
            unsafe { LocalFree(self.0) };
        }
    }
}

/// SID → "S-1-…".
fn sid_string(sid: PSID) -> io::Result<String> {
    let mut out: *mut u16 = std::ptr::null_mut();
    // SAFETY: sid points at a valid SID owned by the caller; out receives a LocalAlloc'd string.
    if unsafe { ConvertSidToStringSidW(sid, &mut out) } == 0 {
        return Err(last_error());
    }
    let _free = Local(out.cast());
    // SAFETY: out is a NUL-terminated UTF-16 string.
    let len = (0..).take_while(|&i| unsafe { *out.add(i) } != 0).count();
    Ok(String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(out, len) }))
}

/// The SID of the user this process runs as, as a string (asked once).
fn current_user() -> io::Result<&'static str> {
    static USER: OnceLock<String> = OnceLock::new();
    if let Some(u) = USER.get() {
        return Ok(u);
    }
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: the pseudo-handle of our own process; token receives a handle we close below.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
        return Err(last_error());
    }
    let mut buf = vec![0u64; 64]; // 512 bytes, 8-aligned: a TOKEN_USER and its SID fit
    let mut len = 0u32;
    // SAFETY: buf is writable for its size in bytes; the token is open for query.
    let ok = unsafe { GetTokenInformation(token, TokenUser, buf.as_mut_ptr().cast(), (buf.len() * 8) as u32, &mut len) };
    let err = last_error();
    // SAFETY: token is a handle we opened.
    unsafe { CloseHandle(token) };
    if ok == 0 {
        return Err(err);
    }
    // SAFETY: GetTokenInformation filled a TOKEN_USER at the start of buf.
    let sid = unsafe { (*buf.as_ptr().cast::<TOKEN_USER>()).User.Sid };
    Ok(USER.get_or_init(|| sid_string(sid).unwrap_or_default()))
}

/// Applies an SDDL DACL to `path`.
fn set_dacl(path: &Path, sddl: &str, protected: bool) -> io::Result<()> {
    let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    let text = wide(OsStr::new(sddl));
    // SAFETY: text is NUL-terminated; sd receives a LocalAlloc'd descriptor freed below.
    if unsafe { ConvertStringSecurityDescriptorToSecurityDescriptorW(text.as_ptr(), 1, &mut sd, std::ptr::null_mut()) } == 0 {
        return Err(last_error());
    }
    let _free = Local(sd);
    let (mut present, mut defaulted, mut dacl) = (0, 0, std::ptr::null_mut::<ACL>());
    // SAFETY: sd is the valid descriptor made above; dacl points into it.
    if unsafe { GetSecurityDescriptorDacl(sd, &mut present, &mut dacl, &mut defaulted) } == 0 {
        return Err(last_error());
    }
    let mut info = DACL_SECURITY_INFORMATION;
    if protected {
        info |= PROTECTED_DACL_SECURITY_INFORMATION;
    }
    let name = wide(path.as_os_str());
    // SAFETY: name is NUL-terminated and dacl valid while sd lives.
    let rc = unsafe { SetNamedSecurityInfoW(name.as_ptr(), SE_FILE_OBJECT, info, std::ptr::null_mut(), std::ptr::null_mut(), dacl, std::ptr::null()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc as i32));
    }
    Ok(())
}

/// Gives `path` a protected DACL granting the current user alone full control
/// (inherited by files and folders created inside a directory).
pub(super) fn make_private(path: &Path, is_dir: bool) -> io::Result<()> {
    let me = current_user()?;
    let inherit = if is_dir { "OICI" } else { "" };
    set_dacl(path, &format!("D:P(A;{inherit};FA;;;{me})"), true)
}

/// Tests only: a DACL that lets Everyone read `path` (not change it).
#[cfg(test)]
pub(super) fn grant_everyone_read_for_tests(path: &Path) -> io::Result<()> {
    let me = current_user()?;
    set_dacl(path, &format!("D:P(A;OICI;FA;;;{me})(A;OICI;FR;;;WD)"), true)
}

/// Tests only: is this Wine (where the read half is not checked)?
#[cfg(test)]
pub(super) fn under_wine_for_tests() -> bool {
    under_wine()
}

/// Tests only: a DACL that lets Everyone change `path`, as a shared folder has.
#[cfg(test)]
pub(super) fn grant_everyone_for_tests(path: &Path) -> io::Result<()> {
    let me = current_user()?;
    set_dacl(path, &format!("D:P(A;OICI;FA;;;{me})(A;OICI;FA;;;WD)"), true)
}

fn friendly(sid: &str) -> String {
    match sid {
        "S-1-1-0" => "Everyone".into(),
        "S-1-5-11" => "Authenticated Users".into(),
        "S-1-5-32-545" => "Users".into(),
        "S-1-5-32-546" => "Guests".into(),
        "S-1-5-7" => "ANONYMOUS LOGON".into(),
        other => format!("account {other}"),
    }
}

/// Checks owner and DACL of `path` for `want`: see the module comment.
pub(super) fn check(path: &Path, want: Want) -> Result<(), Problem> {
    let me = current_user().map_err(Problem::Os)?;
    let name = wide(path.as_os_str());
    let (mut owner, mut dacl, mut sd): (PSID, *mut ACL, PSECURITY_DESCRIPTOR) = (std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: name is NUL-terminated; owner and dacl point into sd, which we free.
    let rc = unsafe {
        GetNamedSecurityInfoW(
            name.as_ptr(),
            SE_FILE_OBJECT,
            OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
            &mut owner,
            std::ptr::null_mut(),
            &mut dacl,
            std::ptr::null_mut(),
            &mut sd,
        )
    };
    if rc != 0 {
        return Err(Problem::Os(io::Error::from_raw_os_error(rc as i32)));
    }
    let _free = Local(sd);
    if !owner.is_null() {
        let o = sid_string(owner).map_err(Problem::Os)?;
        if o != me && !TRUSTED.contains(&o.as_str()) {
            return Err(Problem::Unsafe(format!("owned by {}, not by you ({me})", friendly(&o))));
        }
    }
    if dacl.is_null() {
        return Err(Problem::Unsafe("it has no access list, so everyone can read and change it".into()));
    }
    let mut size = ACL_SIZE_INFORMATION { AceCount: 0, AclBytesInUse: 0, AclBytesFree: 0 };
    // SAFETY: dacl is valid while sd lives; size is the struct the class asks for.
    if unsafe { GetAclInformation(dacl, (&mut size as *mut ACL_SIZE_INFORMATION).cast(), size_of::<ACL_SIZE_INFORMATION>() as u32, AclSizeInformation) } == 0 {
        return Err(Problem::Os(last_error()));
    }
    // Nobody else may change it, nor (private) read it. Wine (where the Windows build is
    // tested) reports Everyone-read on every file, a DACL set or not: there only the write
    // half can be checked.
    let bad = if want == Want::Private && !under_wine() { WRITE_BITS | READ_BITS } else { WRITE_BITS };
    for i in 0..size.AceCount {
        let mut ace: *mut core::ffi::c_void = std::ptr::null_mut();
        // SAFETY: i < AceCount; ace points into the DACL.
        if unsafe { GetAce(dacl, i, &mut ace) } == 0 {
            return Err(Problem::Os(last_error()));
        }
        // SAFETY: every ACE starts with an ACE_HEADER.
        let header = unsafe { &*ace.cast::<ACE_HEADER>() };
        if header.AceFlags & INHERIT_ONLY_ACE != 0 {
            continue;
        }
        let base = ace.cast::<u8>();
        let sid_offset = match ace_kind(header.AceType) {
            AceKind::GrantsNothing => continue,
            AceKind::Unknown => return Err(Problem::Unsafe(format!("its access list has an entry of a kind entra-token does not know (type {})", header.AceType))),
            AceKind::Allowed => 8,
            AceKind::AllowedObject if header.AceSize < 12 => return Err(Problem::Unsafe(format!("its access list has a malformed entry (type {})", header.AceType))),
            AceKind::AllowedObject => {
                // SAFETY: an object ACE (at least 12 bytes, checked) holds a u32 flags field at offset 8.
                let flags = unsafe { base.add(8).cast::<u32>().read_unaligned() };
                12 + if flags & 1 != 0 { 16 } else { 0 } + if flags & 2 != 0 { 16 } else { 0 }
            }
        };
        if sid_offset + 8 > usize::from(header.AceSize) {
            return Err(Problem::Unsafe(format!("its access list has a malformed entry (type {})", header.AceType)));
        }
        // SAFETY: every granting ACE holds its access mask at offset 4.
        let mask = unsafe { base.add(4).cast::<u32>().read_unaligned() };
        if mask & bad == 0 {
            continue;
        }
        // SAFETY: the SID sits at `sid_offset`, inside the ACE (checked against AceSize).
        let sid = sid_string(unsafe { base.add(sid_offset) }.cast()).map_err(Problem::Os)?;
        if sid == me || TRUSTED.contains(&sid.as_str()) {
            continue;
        }
        let verb = if mask & WRITE_BITS != 0 { "change" } else { "read" };
        return Err(Problem::Unsafe(format!("its access list lets {} {verb} it", friendly(&sid))));
    }
    Ok(())
}

/// The command that makes `path` private again.
pub(super) fn private_fix(path: &Path, is_dir: bool) -> String {
    let grant = if is_dir { "%USERNAME%:(OI)(CI)F" } else { "%USERNAME%:F" };
    format!("run `icacls \"{}\" /inheritance:r /grant:r \"{grant}\"` and remove the other entries it lists, or delete it so entra-token recreates it private", path.display())
}
