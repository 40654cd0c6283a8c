//! `mse-node`: see the library's documentation and docs/node.md.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::Parser;
use mse_node::cli::Cli;
use mse_node::paths::Paths;
use mse_node::server::body::ACCESS_TARGET;
use tracing::Level;
use tracing_subscriber::filter::{EnvFilter, LevelFilter, filter_fn};
use tracing_subscriber::prelude::*;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.debug);
    // argv[1..] verbatim: it is measured.
    let args: Vec<String> = match std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect()
    {
        Ok(a) => a,
        Err(bad) => {
            tracing::error!("argument {bad:?} is not UTF-8");
            return ExitCode::from(2);
        }
    };
    let result = cli
        .into_launch(args, SystemTime::now())
        .and_then(|launch| Ok((launch, Paths::from_env(|k| std::env::var_os(k))?)))
        .and_then(|(launch, paths)| mse_node::run(launch, paths));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Access log lines go to stdout (as hypercorn's `accesslog="-"`), everything else to stderr.
///
/// rustls's warnings are dropped unless `--debug` is given or `RUST_LOG` names rustls. In a server
/// each of them is about what a client sent: an IP address as SNI (RFC 6066 forbids it; `wrk`
/// sends one), a TLS 1.2 warning alert, a message out of order. Kept, they would let any client
/// write lines to the node's log, one or more per connection. The node logs its own handshake
/// failures at debug level too (`server`). rustls's errors are kept.
fn init_logging(debug: bool) {
    let rustls_asked = std::env::var("RUST_LOG").is_ok_and(|v| v.contains("rustls"));
    let drop_rustls_warnings = !debug && !rustls_asked;
    let level = if debug {
        LevelFilter::DEBUG
    } else {
        LevelFilter::INFO
    };
    let filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .from_env_lossy();
    let access = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stdout().is_terminal())
        .with_writer(std::io::stdout)
        .with_target(false)
        .with_level(false)
        .with_filter(filter_fn(|m| m.target() == ACCESS_TARGET));
    let logs = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_filter(filter_fn(move |m| {
            m.target() != ACCESS_TARGET
                && !(drop_rustls_warnings && is_rustls(m.target()) && *m.level() != Level::ERROR)
        }));
    tracing_subscriber::registry()
        .with(filter)
        .with(access)
        .with(logs)
        .init();
}

fn is_rustls(target: &str) -> bool {
    target == "rustls" || target.starts_with("rustls::")
}
