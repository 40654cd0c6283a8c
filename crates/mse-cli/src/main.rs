//! `mse`: parse the command line, run the verb, map the outcome to an exit code.
//! 0 = success, 1 = negative verdict (verification, tests), 2 = usage or operational error.

use std::process::ExitCode;

use clap::Parser as _;
use mse_cli::cmd::{Cli, NegativeVerdict};
use mse_cli::ui::Ui;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap: --help/--version are successes, everything else is a usage error.
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let ui = Ui::new(cli.color);
    tracing_init();
    match cli.command.run(ui) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            ui.error(&format!("{e:#}"));
            if e.chain()
                .any(|c| c.downcast_ref::<NegativeVerdict>().is_some())
            {
                ExitCode::from(1)
            } else {
                ExitCode::from(2)
            }
        }
    }
}

/// `MSE_LOG=debug` shows the libraries' tracing output on stderr.
fn tracing_init() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("MSE_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
