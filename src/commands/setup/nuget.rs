//! `entra-token setup nuget`: NuGet (dotnet, nuget.exe, MSBuild) runs credential plugins
//! it discovers; a native executable is found as `nuget-plugin-*` on PATH (the discovery
//! newer NuGet adds for plugins installed as .NET tools) or named in NUGET_PLUGIN_PATHS.
//! So the setup is the `nuget-plugin-entra-token` link; nuget.config is left alone (its
//! feeds need no password: the plugin answers for the URLs the profiles claim).

use super::ApplyArg;
use super::az::default_bin_dir;
use super::links;
use crate::error::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

pub(crate) const LINK: &str = "nuget-plugin-entra-token";

#[derive(Debug, Args)]
pub(crate) struct NugetSetupArgs {
    /// Directory on PATH for the `nuget-plugin-entra-token` link (default ~/.local/bin; %LOCALAPPDATA%\entra-token\bin on Windows).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Move an existing file of the link's name in DIR aside instead of stopping.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub apply: ApplyArg,
}

pub(crate) fn run(args: &NugetSetupArgs) -> Result<ExitCode> {
    let claimed = super::claims::for_tool(super::claims::Tool::Feed)?;
    super::claims::warn_without_resource(&claimed);
    let dir = args.dir.clone().map_or_else(default_bin_dir, Ok)?;
    let link = dir.join(links::file_name(LINK));
    let feeds: Vec<String> = claimed.iter().map(|c| format!("#   {} (profile {})\n", c.url, c.profile)).collect();
    if args.apply.apply {
        links::make(dir, LINK, args.force)?;
        if feeds.is_empty() {
            crate::log::warn!("no profile has `urls`, so the plugin will answer NotFound for every feed; add the feed's URL to a profile's urls");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let set_paths = if cfg!(windows) { format!("$env:NUGET_PLUGIN_PATHS = '{}'", link.display()) } else { format!("export NUGET_PLUGIN_PATHS={}", super::shell_quote(&link.to_string_lossy())) };
    let text = format!(
        "# the plugin NuGet runs with -Plugin ({LINK}, found on PATH by NuGet versions that discover nuget-plugin-* there):\n{}\n\
         # older NuGet, or to use only this plugin (this replaces NuGet's own plugin discovery):\n# {set_paths}\n\
         # feeds it answers for (the profiles' urls; any other feed gets NotFound and NuGet tries its next provider):\n{}",
        links::link_command(&super::self_exe()?, &link),
        if feeds.is_empty() { "#   none yet: add the feed's URL to a profile's urls\n".to_string() } else { feeds.concat() }
    );
    super::print(&text)
}
