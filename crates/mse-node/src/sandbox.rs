//! The node's use of mse-sandbox: each protection is applied where the start-up order needs it,
//! logged with what is actually enforced, and fails the start when it cannot be had (unless
//! `--insecure-no-sandbox`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use mse_sandbox::landlock::{Enforcement, FsRules};

use crate::paths::Paths;

/// Private, RAM-only storage for the app's directories. Must run single-threaded.
pub fn private_storage(paths: &Paths, quota: u64) -> Result<()> {
    let plan = mse_sandbox::storage::StoragePlan {
        dirs: paths.writable_dirs(),
        quota_bytes: quota,
    };
    tracing::info!(
        "setting up private storage for HOME, TMP_PATH, MODULE_PATH, KEY_PATH and the secrets"
    );
    // mse-sandbox logs what each step enforces.
    mse_sandbox::storage::setup(&plan).context(
        "cannot give the app private storage (or pass --insecure-no-sandbox for development)",
    )?;
    Ok(())
}

/// Memory limit (`--memory`) and no core dumps.
pub fn limits(memory: Option<u64>) -> Result<()> {
    mse_sandbox::limits::apply(&mse_sandbox::limits::Limits {
        memory_bytes: memory,
        cpu_seconds: None,
    })
    .context("cannot apply the resource limits")?;
    Ok(())
}

/// The app's file rules: read its code, runtime and secrets; write HOME and TMP_PATH; nothing
/// else, KEY_PATH least of all.
pub fn app_rules(paths: &Paths, runtime_roots: &[PathBuf]) -> FsRules {
    let secrets = [paths.secrets.clone(), paths.sealed_secrets.clone()];
    FsRules::for_app(
        &paths.module,
        runtime_roots,
        &secrets,
        &paths.home,
        &paths.tmp,
    )
}

/// Landlock on the calling thread (and its future threads: Python's). Refuses rules that would
/// let the app read KEY_PATH (a path variable pointing into it).
pub fn confine_files(rules: &FsRules, key_path: &Path) -> Result<()> {
    if rules.reaches(key_path) {
        bail!(
            "the app's file rules reach KEY_PATH {}: HOME, TMP_PATH, MODULE_PATH and the secrets paths must lie outside it",
            key_path.display()
        );
    }
    tracing::info!(
        read = rules.read.len(),
        read_write = rules.read_write.len(),
        "confining the app's files (Landlock)"
    );
    let report = mse_sandbox::landlock::confine(rules).context("cannot confine the app's files")?;
    if report.enforcement == Enforcement::None {
        tracing::warn!("the kernel has no Landlock: the app's files are NOT confined");
    }
    Ok(())
}

/// seccomp on every thread: no fork, no exec. After the import, before serving.
pub fn no_new_processes() -> Result<()> {
    tracing::info!("installing the seccomp filter: no new processes");
    mse_sandbox::seccomp::install().context("cannot install the seccomp filter")?;
    Ok(())
}
