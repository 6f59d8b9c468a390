//! `entra-token setup azd`: azure-identity's AzureDeveloperCliCredential finds `azd` on
//! PATH, so the setup is a link named `azd` to this binary ahead of any real azd.

use super::az::{PathLinkArgs, run_link};
use crate::error::Result;
use std::process::ExitCode;

pub(crate) fn run(args: &PathLinkArgs) -> Result<ExitCode> {
    run_link("azd", "azd auth token", "azd auth token --output json --scope https://management.azure.com/.default", args)
}
