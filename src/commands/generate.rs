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
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    pub dir: Option<PathBuf>,
    /// One command's page instead, e.g. `entra-token man get-token` or `entra-token man ssh cert`.
    #[arg(value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// The completion script on stdout, e.g. `entra-token completions bash > /etc/bash_completion.d/entra-token`.
pub(crate) fn completions(args: &CompletionsArgs) -> Result<ExitCode> {
    let mut buf = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "entra-token", &mut buf);
    if args.shell == clap_complete::Shell::Bash {
        buf = bash_fixed(&String::from_utf8_lossy(&buf)).into_bytes();
    }
    crate::protocols::write_stdout(&buf)?;
    Ok(ExitCode::SUCCESS)
}

/// clap_complete's bash script for a name with a hyphen: its word loop names the state
/// `entra__token__subcmd__…`, but the branches that offer each subcommand's flags are
/// spelt `entra__subcmd__token__subcmd__…` (the hyphen of the binary's name mangled as a
/// subcommand separator), so none ever matched and only the first word completed. The
/// branches are renamed to match, and a wrapper completes profile names after
/// `-p`/`--profile` (from `entra-token profile list`) before handing over to clap's function.
fn bash_fixed(script: &str) -> String {
    let mut out = script.replace("entra__subcmd__token", "entra__token");
    out.push_str(BASH_PROFILES);
    out
}

const BASH_PROFILES: &str = r#"
# Profile names after -p/--profile, from the config (entra-token profile list).
_entra__token_profiles() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="" line names=()
    if [[ ${COMP_CWORD} -gt 0 ]]; then prev="${COMP_WORDS[COMP_CWORD-1]}"; fi
    if [[ "$prev" == "-p" || "$prev" == "--profile" ]]; then
        while read -r line; do
            line="${line#\* }"
            names+=("${line%% *}")
        done < <("$1" profile list 2>/dev/null)
        COMPREPLY=( $(compgen -W "${names[*]}" -- "${cur}") )
        return 0
    fi
    _entra__token "$@"
}
if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _entra__token_profiles -o nosort -o bashdefault -o default entra-token
else
    complete -F _entra__token_profiles -o bashdefault -o default entra-token
fi
"#;

/// The man page on stdout (`entra-token man | man -l -`), or all pages into `--dir`.
pub(crate) fn man(args: &ManArgs) -> Result<ExitCode> {
    let cmd = Cli::command();
    match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| Error::caused(format!("cannot create {}", dir.display()), e))?;
            clap_mangen::generate_to(cmd.clone(), dir).map_err(|e| Error::caused(format!("cannot write man pages to {}", dir.display()), e))?;
            let mut top = Vec::new();
            super::man_page::render_top(cmd, &mut top).map_err(|e| Error::caused("cannot render the man page", e))?;
            std::fs::write(dir.join("entra-token.1"), top).map_err(|e| Error::caused(format!("cannot write man pages to {}", dir.display()), e))?;
            crate::log::warn!("man pages written to {} (add it to MANPATH, or run `man -l {}/entra-token.1`)", dir.display(), dir.display());
        }
        None if !args.command.is_empty() => {
            // Built, so each page is named as `--dir` names its file (entra-token-ssh-cert).
            let mut page = cmd.disable_help_subcommand(true);
            page.build();
            for word in &args.command {
                let names: Vec<String> = page.get_subcommands().map(|s| s.get_name().to_string()).collect();
                page = page.find_subcommand(word).cloned().ok_or_else(|| {
                    let guess = crate::suggest::did_you_mean(word, names.iter().map(String::as_str));
                    Error::bad_input_hint(format!("no man page for '{}'{guess}", crate::log::escape(word)), format!("pages: {}", names.join(", ")))
                })?;
            }
            let mut buf = Vec::new();
            clap_mangen::Man::new(page).render(&mut buf).map_err(|e| Error::caused("cannot render the man page", e))?;
            crate::protocols::write_stdout(&buf)?;
        }
        None => {
            let mut buf = Vec::new();
            super::man_page::render_top(cmd, &mut buf).map_err(|e| Error::caused("cannot render the man page", e))?;
            crate::protocols::write_stdout(&buf)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
