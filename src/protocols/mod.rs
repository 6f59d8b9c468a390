//! One module per wire format. Each is a pure codec (bytes in, values out) plus a thin
//! adapter that turns the caller's request into one `TokenRequest` for the broker and
//! the `Credential` back into the caller's format.

pub(crate) mod az;
pub(crate) mod azd;
pub(crate) mod bazel;
pub(crate) mod docker;
pub(crate) mod get_token;
pub(crate) mod native;

use crate::error::{Error, Result};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::process::ExitCode;

/// Multi-call entry points: the protocol a tool expects, chosen by the name we were run
/// under (a link such as `git-credential-entra-token`) or by cargo's `--cargo-plugin`.
/// None: parse the command line normally.
pub(crate) fn multicall(args: &[OsString]) -> Option<Result<ExitCode>> {
    let argv0 = args.first().map(std::path::Path::new)?;
    let name = argv0.file_stem()?.to_str()?;
    let rest = || args[1..].to_vec();
    let first = || args.get(1).and_then(|a| a.to_str());
    match name {
        "az" => Some(az::run(rest())),
        "azd" => Some(azd::run(rest())),
        "entra-token-bazel" => Some(bazel::run(first())),
        "docker-credential-entra-token" => Some(docker::run(first())),
        _ => None,
    }
}

/// Reads all of stdin up to `limit` bytes; more is bad input, not an allocation.
pub(crate) fn read_stdin_limited(limit: u64) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::io::stdin().lock().take(limit + 1).read_to_end(&mut buf).map_err(|e| Error::general(format!("cannot read stdin: {e}")))?;
    if buf.len() as u64 > limit {
        return Err(Error::bad_input(format!("the request on stdin is larger than {} KiB", limit / 1024)));
    }
    Ok(buf)
}

/// Writes the protocol answer to stdout. A closed pipe is not our error.
pub(crate) fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::general(format!("cannot write to stdout: {e}"))),
    }
}
