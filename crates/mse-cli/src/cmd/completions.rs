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
        let mut cmd = super::Cli::command();
        let mut out = std::io::stdout().lock();
        clap_complete::generate(self.shell, &mut cmd, "mse", &mut out);
        Ok(ExitCode::SUCCESS)
    }
}
