//! `mse completions SHELL`: a completion script generated from the clap definitions.

use std::process::ExitCode;

use clap::CommandFactory as _;
use clap_complete::Shell;

use crate::ui::Ui;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// bash, zsh, fish, elvish or powershell.
    pub shell: Shell,
}

impl Args {
    pub fn run(self, _ui: Ui) -> anyhow::Result<ExitCode> {
        let mut cmd = public_command();
        let mut out = std::io::stdout().lock();
        clap_complete::generate(self.shell, &mut cmd, "mse", &mut out);
        Ok(ExitCode::SUCCESS)
    }
}

/// The command line without its hidden (internal) subcommands: clap_complete would offer them.
fn public_command() -> clap::Command {
    let full = super::Cli::command();
    let mut cmd = clap::Command::new("mse")
        .version(env!("CARGO_PKG_VERSION"))
        .propagate_version(true)
        .args(full.get_arguments().cloned());
    for sub in full.get_subcommands().filter(|s| !s.is_hide_set()) {
        cmd = cmd.subcommand(sub.clone());
    }
    cmd
}
