//! `entra-token completions SHELL` and `entra-token man`: shell completions and roff man
//! pages generated from the clap definitions at run time, so they can never drift from
//! the flags the binary really takes.

use crate::cli::Cli;
use crate::error::{Error, Result};
use clap::{Args, CommandFactory};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to generate for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub(crate) struct ManArgs {
    /// Write entra-token.1 and one page per subcommand (entra-token-get-token.1, …) into
    /// this directory instead of printing entra-token.1 to stdout.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The completion script on stdout, e.g. `entra-token completions bash > /etc/bash_completion.d/entra-token`.
pub(crate) fn completions(args: &CompletionsArgs) -> Result<ExitCode> {
    let mut buf = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "entra-token", &mut buf);
    crate::protocols::write_stdout(&buf)?;
    Ok(ExitCode::SUCCESS)
}

/// The man page on stdout (`entra-token man | man -l -`), or all pages into `--dir`.
pub(crate) fn man(args: &ManArgs) -> Result<ExitCode> {
    let cmd = Cli::command();
    match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| Error::caused(format!("cannot create {}", dir.display()), e))?;
            clap_mangen::generate_to(cmd, dir).map_err(|e| Error::caused(format!("cannot write man pages to {}", dir.display()), e))?;
            crate::log::warn!("man pages written to {} (add it to MANPATH, or run `man -l {}/entra-token.1`)", dir.display(), dir.display());
        }
        None => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut buf).map_err(|e| Error::caused("cannot render the man page", e))?;
            crate::protocols::write_stdout(&buf)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
