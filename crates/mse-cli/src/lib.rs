//! The `mse` command line, as a library so that tests and fuzz targets reach its parsers.
//!
//! Layout: [`cmd`] holds one module per verb (clap arguments + `run`); the nouns it composes
//! are [`config`] (mse.toml, with `.mseignore` from `mse_crypto::ignore`), [`profile`] (resource profiles), [`runtime`]
//! (Python runtimes), [`state`] (the client's per-deployment context), [`node`] (launching and
//! supervising a local node), [`attest`] (policies and checks before anything is sent) and
//! [`ui`] (terminal output).

pub mod attest;
pub mod cmd;
pub mod config;
pub mod node;
pub mod profile;
pub mod runtime;
pub mod state;
pub mod ui;
