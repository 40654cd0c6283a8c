//! The Python runtime the app runs on: what the node measures and what the app may read.
//!
//! mse-python sets `sys.path` to exactly `[MODULE_PATH, stdlib, lib-dynload, site-packages...]`.
//! The runtime roots are therefore the standard library of the interpreter the node links
//! (its entries one by one, without the interpreter's own `site-packages`, which is not on
//! `sys.path`), then each `--site-packages` directory, in that order.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The interpreter's standard library directory, from the build.
pub fn stdlib() -> Option<&'static Path> {
    option_env!("MSE_NODE_PYTHON_STDLIB").map(Path::new)
}

/// The runtime roots, in `sys.path` order.
pub fn measured(site_packages: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut roots = Vec::new();
    if let Some(stdlib) = stdlib().filter(|p| p.is_dir()) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(stdlib)
            .with_context(|| format!("cannot read the standard library {}", stdlib.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| {
                let name = e.file_name();
                name != "site-packages" && name != "__pycache__"
            })
            .map(|e| e.path())
            .collect();
        // Byte order of the names: the same on every machine.
        entries.sort_by(|a, b| {
            a.as_os_str()
                .as_encoded_bytes()
                .cmp(b.as_os_str().as_encoded_bytes())
        });
        roots.extend(entries);
    } else {
        tracing::warn!(
            "the interpreter's standard library was not found: it is neither measured nor readable by the app"
        );
    }
    roots.extend(site_packages.iter().cloned());
    Ok(roots)
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
