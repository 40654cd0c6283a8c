//! The node's use of mse-sandbox: each protection is applied where the start-up order needs it,
//! logged with what is actually enforced, and fails the start when it cannot be had (unless
//! `--insecure-no-sandbox`).

use std::ffi::CString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use mse_sandbox::landlock::{Enforcement, FsRules};
use mse_sandbox::storage::SHM_DIR;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::paths::Paths;

/// The host's POSIX shared memory directory, when it has one. The app gets a private one (in its
/// storage, counted in its quota, writable under Landlock): `multiprocessing` locks and
/// `multiprocessing.pool.ThreadPool` create their semaphores there.
fn shm_dir() -> Option<PathBuf> {
    Some(PathBuf::from(SHM_DIR)).filter(|p| p.is_dir())
}

/// Private, RAM-only storage for the app's directories (and a private `/dev/shm`). Must run
/// single-threaded.
pub fn private_storage(paths: &Paths, quota: u64) -> Result<()> {
    let mut dirs = paths.writable_dirs();
    dirs.extend(shm_dir());
    let plan = mse_sandbox::storage::StoragePlan {
        dirs,
        quota_bytes: quota,
    };
    tracing::info!(
        quota_bytes = quota,
        "setting up private storage for HOME, TMP_PATH, MODULE_PATH, KEY_PATH, the secrets and /dev/shm"
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
    let mut rules = FsRules::for_app(
        &paths.module,
        runtime_roots,
        &secrets,
        &paths.home,
        &paths.tmp,
    );
    // The private one `private_storage` mounted: in the app's storage, not the host's.
    rules.read_write.extend(shm_dir());
    rules
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

/// No new processes, after the import and before serving: first the Python guard (so that
/// `subprocess`, `os.fork`, `os.posix_spawn`, `multiprocessing`... raise
/// `mse_sandbox.SubprocessNotAllowedError`, a `PermissionError` saying that subprocesses are not
/// allowed inside an mse enclave), then the seccomp filter on every thread, which is the control
/// (a reference to `os.fork` the app saved before the guard gets `EPERM` from the kernel).
pub fn no_new_processes() -> Result<()> {
    python_guard().context("cannot install the Python guard against subprocesses")?;
    tracing::info!("installing the seccomp filter: no new processes");
    mse_sandbox::seccomp::install().context("cannot install the seccomp filter")?;
    Ok(())
}

/// Runs [`mse_sandbox::PYTHON_GUARD`] in the app's interpreter (started by the app's load).
fn python_guard() -> Result<()> {
    let code = CString::new(mse_sandbox::PYTHON_GUARD)
        .map_err(|e| anyhow!("the guard's source has a NUL byte: {e}"))?;
    Python::try_attach(|py| -> PyResult<()> {
        let globals = PyDict::new(py);
        py.run(&code, Some(&globals), None)
    })
    .ok_or_else(|| anyhow!("the Python interpreter is not running (the app must be loaded first)"))?
    .map_err(|e| anyhow!("{e}"))?;
    tracing::info!(
        "Python guard installed: process creation raises mse_sandbox.SubprocessNotAllowedError"
    );
    Ok(())
}
