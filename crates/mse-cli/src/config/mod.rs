//! `mse.toml`: the seed's layout and the mse-cli layout, parsed into a typed [`DeployConfig`].
//!
//! Two stages: [`parse`] (text only, pure, fuzzed) and [`check`] (reads the files the
//! configuration points to). Every error names the file, the key and the fix.

mod check;
mod error;
mod parse;

pub use check::{DeployConfig, Secrets, Ssl, check};
pub use error::{ConfigError, ConfigErrorKind};
pub use parse::{Layout, ParsedConfig, PythonApp, SslPaths, TestsConfig, parse};

pub(crate) use parse::is_dns_name;

use std::path::Path;

/// Default configuration file name.
pub const DEFAULT_FILE: &str = "mse.toml";

/// Read, parse and check a configuration file at time `now`.
pub fn load(file: &Path, now: time::OffsetDateTime) -> Result<DeployConfig, ConfigError> {
    let parsed = parse_file(file)?;
    check(parsed, now)
}

/// Read and parse only (what `localtest` needs: no certificate or secrets checks).
/// Relative paths in the file resolve against its folder, made absolute here so they stay
/// right whatever folder later steps run in (tests run in the tests folder).
pub fn parse_file(file: &Path) -> Result<ParsedConfig, ConfigError> {
    let unreadable =
        |reason: String| ConfigError::new(file, None, ConfigErrorKind::Unreadable { reason });
    let file = std::path::absolute(file).map_err(|e| unreadable(e.to_string()))?;
    let text = std::fs::read_to_string(&file).map_err(|e| unreadable(e.to_string()))?;
    parse(&text, &file)
}
