//! The Python runtime the app runs on: what the node measures and what the app may read.
//!
//! mse-python sets `sys.path` to exactly `[MODULE_PATH, stdlib, lib-dynload, site-packages...]`.
//! The runtime roots are therefore the standard library of the interpreter the node links
//! (its entries one by one, without the interpreter's own `site-packages`, which is not on
//! `sys.path`), then each `--site-packages` directory, in that order
//! ([`mse_measure::python_runtime_roots`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The interpreter's standard library directory, from the build.
pub fn stdlib() -> Option<&'static Path> {
    option_env!("MSE_NODE_PYTHON_STDLIB").map(Path::new)
}

/// The runtime roots, in `sys.path` order (the client computes them with the same function).
pub fn measured(site_packages: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let stdlib = stdlib().filter(|p| p.is_dir());
    if stdlib.is_none() {
        tracing::warn!(
            "the interpreter's standard library was not found: it is neither measured nor readable by the app"
        );
    }
    mse_measure::python_runtime_roots(stdlib, site_packages)
        .context("cannot list the Python runtime to measure")
}

/// What the app may read of the runtime (Landlock): the standard library directory as a whole
/// and the site-packages.
pub fn readable(site_packages: &[PathBuf]) -> Vec<PathBuf> {
    stdlib()
        .filter(|p| p.is_dir())
        .map(Path::to_path_buf)
        .into_iter()
        .chain(site_packages.iter().cloned())
        .collect()
}
