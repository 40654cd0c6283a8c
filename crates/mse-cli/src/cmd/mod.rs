//! One module per verb: clap `Args` plus `run(self, ui) -> anyhow::Result<ExitCode>`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::ui::{ColorChoice, Ui};

pub mod completions;
pub mod context;
pub mod deploy;
pub mod list;
pub mod localtest;
pub mod logs;
pub mod scaffold;
pub mod status;
pub mod stop;
pub mod supervise;
pub mod testcert;
pub mod verify;

/// Deploy Python web apps into trusted execution environments, with remote attestation.
#[derive(Debug, Parser)]
#[command(name = "mse", version, propagate_version = true)]
pub struct Cli {
    /// When to use colours and symbols.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, env = "MSE_COLOR")]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new app folder: a Flask app, mse.toml, a secrets.json example, tests.
    Scaffold(scaffold::Args),
    /// Run the app and its tests on this machine, without an enclave.
    Localtest(localtest::Args),
    /// Check the configuration, start the app in a node, verify it, send it its keys and secrets.
    Deploy(deploy::Args),
    /// List deployments.
    List(list::Args),
    /// Show one deployment: phase, URL, health, lifetime.
    Status(status::Args),
    /// Show (or follow) a deployment's node log.
    Logs(logs::Args),
    /// Stop a deployment and remove its plaintext storage.
    Stop(stop::Args),
    /// Verify a running app (address) or an evidence file; exit 1 if it does not verify.
    Verify(verify::Args),
    /// Show what the client keeps per deployment (key, nonces, certificate).
    Context(context::Args),
    /// Print a shell completion script.
    Completions(completions::Args),
    /// Create a self-signed certificate and key for a domain, for `[ssl]` in local tests.
    Testcert(testcert::Args),
    /// Internal: supervises one node process (started by `mse deploy`).
    #[command(name = "__supervise", hide = true)]
    Supervise(supervise::Args),
}

impl Command {
    pub fn run(self, ui: Ui) -> anyhow::Result<ExitCode> {
        match self {
            Command::Scaffold(a) => a.run(ui),
            Command::Localtest(a) => a.run(ui),
            Command::Deploy(a) => a.run(ui),
            Command::List(a) => a.run(ui),
            Command::Status(a) => a.run(ui),
            Command::Logs(a) => a.run(ui),
            Command::Stop(a) => a.run(ui),
            Command::Verify(a) => a.run(ui),
            Command::Context(a) => a.run(ui),
            Command::Completions(a) => a.run(ui),
            Command::Testcert(a) => a.run(ui),
            Command::Supervise(a) => a.run(ui),
        }
    }
}

/// A check said no (verification failed, tests failed): exit code 1 instead of 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NegativeVerdict(pub String);
