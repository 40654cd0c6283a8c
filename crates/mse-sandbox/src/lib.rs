//! Confine the hosted app: seccomp (no new processes), Landlock, private non-persistent storage
//! with a quota, resource limits. Contract: docs/design/contracts.md (mse-sandbox).
//!
//! Order of calls in the node (each step says why it sits where it does):
//!
//! 1. [`storage::setup`] first, while the process is still single-threaded: a mount namespace is
//!    per thread, so only threads created after it see the private storage.
//! 2. [`limits::apply`] (any time before the app runs; also turns core dumps off).
//! 3. After configuration (code decrypted, secrets written), on the thread that will start Python:
//!    [`landlock::confine`]. On kernels without Landlock TSYNC (ABI < 8) it covers the calling
//!    thread and the threads it creates afterwards, so Python's threads must be born from it.
//! 4. After the app is imported: run [`PYTHON_GUARD`], then [`seccomp::install`] (all threads).
//!
//! Every step returns a report that says what is actually enforced, so the node can log it and
//! refuse to serve when a protection it requires is missing. Nothing here silently degrades: a
//! step that cannot protect returns an error or a report that says so.
//!
//! On non-Linux targets every step returns [`Error::Unsupported`].

pub mod landlock;
pub mod limits;
pub(crate) mod policy;
pub mod seccomp;
pub mod storage;

use std::path::PathBuf;

/// Python source run once after the app is imported (with the GIL held, in `__main__`'s or a
/// fresh namespace) to turn the calls the seccomp filter blocks into a clear exception:
/// `mse_sandbox.SubprocessNotAllowedError`, a `PermissionError` with `errno == EPERM` whose message
/// says that subprocesses are not allowed inside an mse enclave. This is user experience only:
/// the filter is the control (code that saved a reference to `os.fork` before the guard ran still
/// gets a plain `PermissionError` from the kernel). Idempotent.
pub const PYTHON_GUARD: &str = include_str!("guard.py");

/// Everything that can go wrong while confining the app. Each message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The protection does not exist on this operating system.
    #[error(
        "{what} is not available on this operating system: the node must refuse to run the app unless an explicit insecure flag is given"
    )]
    Unsupported {
        /// The protection that is missing.
        what: &'static str,
    },
    /// seccompiler refused the policy (a bug in the table) or the kernel refused the filter.
    #[error(
        "cannot install the seccomp filter ({what}): {source}; the app must not run without it unless an explicit insecure flag is given"
    )]
    Seccomp {
        /// The step that failed.
        what: &'static str,
        /// The underlying error.
        source: seccompiler::Error,
    },
    /// seccompiler refused a rule of the policy table (a bug in the table).
    #[error("the seccomp policy table is invalid ({what}): {source}")]
    SeccompRule {
        /// The rule that failed.
        what: String,
        /// The underlying error.
        source: seccompiler::BackendError,
    },
    /// Landlock could not be set up.
    #[error("cannot confine the app's files with Landlock ({what}): {source}")]
    Landlock {
        /// The step that failed.
        what: String,
        /// The underlying error.
        source: ::landlock::RulesetError,
    },
    /// A path given to Landlock cannot be opened.
    #[error(
        "cannot open {path} for the Landlock rules: {source}; create it before confining the app, or drop it from the rules"
    )]
    LandlockPath {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        source: ::landlock::PathFdError,
    },
    /// The storage plan is not usable as given.
    #[error("invalid storage plan: {0}")]
    InvalidPlan(String),
    /// A step needs a single-threaded process and was called too late.
    #[error(
        "{what} must run while the process is single-threaded, but it has {threads} threads: call it first thing in main(), before tokio or Python start"
    )]
    NotSingleThreaded {
        /// The step.
        what: &'static str,
        /// The number of threads seen.
        threads: usize,
    },
    /// No private mount namespace could be created (neither as root nor through a user namespace).
    #[error(
        "cannot give the app private storage: {detail}. Run the node as root (or with CAP_SYS_ADMIN), or allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces > 0); otherwise the node must refuse unless an explicit insecure flag is given"
    )]
    NoPrivateNamespace {
        /// What was tried and how it failed.
        detail: String,
    },
    /// A mount or unmount failed.
    #[error("cannot {what} {path}: {source}")]
    Mount {
        /// The operation.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// The kernel's answer.
        source: nix::errno::Errno,
    },
    /// A RAM-backed store could reach the host's disk through swap.
    #[error(
        "the app's storage would be swappable to the host's disk in clear: {detail}. Disable swap (swapoff -a), or run the node with the privileges to mount tmpfs with `noswap` (root on Linux >= 6.4)"
    )]
    Swappable {
        /// Why.
        detail: String,
    },
    /// A file-system operation failed.
    #[error("cannot {what} {path}: {source}")]
    Io {
        /// The operation.
        what: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A resource limit could not be applied.
    #[error("cannot apply the {what} limit: {source}")]
    Limit {
        /// Which limit.
        what: &'static str,
        /// The kernel's answer.
        source: nix::errno::Errno,
    },
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Number of threads of the calling process (Linux: entries of /proc/self/task).
#[cfg(target_os = "linux")]
pub(crate) fn thread_count() -> Result<usize> {
    let dir = std::path::Path::new("/proc/self/task");
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
        what: "list the threads in",
        path: dir.to_path_buf(),
        source,
    })?;
    Ok(entries.count())
}
