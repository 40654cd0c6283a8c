//! Confined files: the app reads its code, the Python runtime, the secrets and a few system files,
//! writes only under HOME and TMP_PATH, and cannot reach anything else (KEY_PATH included).
//!
//! Landlock, best effort: the report says which ABI the kernel has and what is enforced; when the
//! kernel has no Landlock the report says so and nothing is confined (the node logs it loudly).
//!
//! Scope of a call: with Landlock ABI >= 8 the domain is applied to every thread (TSYNC). Before
//! that (this project's reference kernel, 6.18, has ABI 7) it covers the calling thread and the
//! threads it creates afterwards, so call [`confine`] on the thread that then starts Python.

use std::path::{Path, PathBuf};

/// Which files the app may reach. Paths must exist when [`confine`] runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FsRules {
    /// Readable (files and directory listings), never writable: module path, Python runtime
    /// roots, secrets files, [`SYSTEM_READ`].
    pub read: Vec<PathBuf>,
    /// Readable and writable (create, delete, rename, truncate): HOME and TMP_PATH.
    pub read_write: Vec<PathBuf>,
}

/// System files CPython and common packages need at run time, found empirically with the
/// Flask/FastAPI test venv (tests/python_guard.rs lists what it exercised):
/// - `/dev/null`, `/dev/urandom`, `/dev/random`: opened by the stdlib (`os.devnull`, `random`
///   fallbacks, OpenSSL seeding on some builds);
/// - `/proc/self` (resolved to this process): `os.cpu_count` fallbacks, `/proc/self/fd` for
///   `os.closerange` and thread names;
/// - `/sys/devices/system/cpu`: glibc's `sysconf(_SC_NPROCESSORS_ONLN)` (thread pool sizing);
/// - `/etc/localtime`, `/usr/share/zoneinfo`, `/etc/timezone`: `time.localtime`, `zoneinfo`;
/// - name resolution for outbound connections: `/etc/hosts`, `/etc/resolv.conf`,
///   `/etc/nsswitch.conf`, `/etc/host.conf`, `/etc/gai.conf`, `/etc/services`, `/etc/protocols`;
/// - `/etc/passwd`, `/etc/group`: `getpass.getuser`, `os.path.expanduser("~user")`;
/// - TLS clients: `/etc/ssl`, `/usr/lib/ssl`, `/etc/ca-certificates` (OpenSSL's default paths);
/// - `/etc/mime.types`: `mimetypes` (Flask's `send_file`);
/// - shared libraries that extension modules load lazily (`libssl`, `libffi`, `libz`, NSS
///   modules) and the loader's cache: `/etc/ld.so.cache`, `/lib`, `/lib64`, `/usr/lib`,
///   `/usr/lib64`, `/usr/local/lib` (the official Python images install there).
///
/// Method: tests/python_guard.rs run under `strace -f` shows what is opened after
/// `landlock_restrict_self` (the only EACCES are the test's deliberate probes). Entries it did not
/// open (`/dev/null`, `/etc/gai.conf`, `/etc/services`, `/etc/group`, ...) are read by stdlib
/// paths the test does not take (`os.devnull`, IPv6 address sorting, `socket.getservbyname`,
/// `grp`). `/usr/bin`, `/home`, `/root`, `/var`, `/opt`, `/dev/shm` (the host's) and the rest of
/// `/etc` are deliberately absent.
pub const SYSTEM_READ: &[&str] = &[
    "/dev/null",
    "/dev/urandom",
    "/dev/random",
    "/proc/self",
    "/sys/devices/system/cpu",
    "/etc/localtime",
    "/etc/timezone",
    "/usr/share/zoneinfo",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/passwd",
    "/etc/group",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/usr/lib/ssl",
    "/etc/mime.types",
    "/etc/ld.so.cache",
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/usr/local/lib",
];

impl FsRules {
    /// The rules for the seed's layout: `read` = module path, runtime roots (e.g. `sys.prefix`,
    /// `sys.base_prefix`, site-packages, the libpython directory), secrets files and those of
    /// [`SYSTEM_READ`] that exist; `read_write` = HOME and TMP_PATH. KEY_PATH is simply absent.
    pub fn for_app(
        module_path: &Path,
        runtime_roots: &[PathBuf],
        secrets: &[PathBuf],
        home: &Path,
        tmp: &Path,
    ) -> Self {
        let mut read = vec![module_path.to_path_buf()];
        read.extend(runtime_roots.iter().cloned());
        read.extend(secrets.iter().filter(|p| p.exists()).cloned());
        read.extend(SYSTEM_READ.iter().map(PathBuf::from).filter(|p| p.exists()));
        Self {
            read,
            read_write: vec![home.to_path_buf(), tmp.to_path_buf()],
        }
    }

    /// Whether `path` lies under one of the rules (lexically, after resolving symlinks of both
    /// sides where they exist). The node checks `!rules.reaches(KEY_PATH)` before confining.
    pub fn reaches(&self, path: &Path) -> bool {
        let target = resolve(path);
        self.read
            .iter()
            .chain(&self.read_write)
            .any(|root| target.starts_with(resolve(root)))
    }
}

fn resolve(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// How much of the requested confinement the kernel enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enforcement {
    /// Every requested restriction is enforced.
    Full,
    /// Landlock works but lacks some requested right (older ABI): see the report's `abi`.
    Partial,
    /// No Landlock: the app's files are NOT confined by the kernel.
    None,
}

/// What [`confine`] put in place, for the node's log.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LandlockReport {
    /// The Landlock ABI the kernel reports (`None`: not built or not enabled).
    pub abi: Option<i32>,
    /// What is enforced.
    pub enforcement: Enforcement,
    /// Applied to every thread (TSYNC, ABI >= 8); otherwise the calling thread and its future
    /// children only.
    pub all_threads: bool,
    /// Signals to processes outside the domain are denied (ABI >= 6).
    pub signals_scoped: bool,
    /// Connecting to abstract UNIX sockets outside the domain is denied (ABI >= 6).
    pub abstract_unix_scoped: bool,
    /// The rules that were installed.
    pub rules: FsRules,
}

impl std::fmt::Display for LandlockReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.enforcement, self.abi) {
            (Enforcement::None, abi) => write!(
                f,
                "Landlock: NOT enforced (kernel {}): the app's files are not confined",
                abi.map_or_else(|| "without Landlock".to_owned(), |a| format!("ABI {a}"))
            ),
            (e, abi) => write!(
                f,
                "Landlock ABI {}: {} ({} read-only roots, {} read-write roots, KEY_PATH and everything else unreachable), {}{}",
                abi.unwrap_or(0),
                if e == Enforcement::Full {
                    "fully enforced"
                } else {
                    "partially enforced"
                },
                self.rules.read.len(),
                self.rules.read_write.len(),
                if self.all_threads {
                    "all threads"
                } else {
                    "calling thread and its new threads"
                },
                if self.signals_scoped {
                    ", signals and abstract sockets scoped"
                } else {
                    ""
                },
            ),
        }
    }
}

/// Confine the calling thread (and, with ABI >= 8, all threads) to `rules`. Also sets
/// `no_new_privs`. Irreversible.
#[cfg(target_os = "linux")]
pub fn confine(rules: &FsRules) -> crate::Result<LandlockReport> {
    imp::confine(rules)
}

/// Not available off Linux.
#[cfg(not(target_os = "linux"))]
pub fn confine(_rules: &FsRules) -> crate::Result<LandlockReport> {
    Err(crate::Error::Unsupported { what: "Landlock" })
}

#[cfg(target_os = "linux")]
mod imp {
    use std::path::Path;

    use landlock::{
        ABI, Access, AccessFs, BitFlags, LandlockStatus, PathBeneath, PathFd, RestrictSelfAttr,
        Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
    };

    use super::{Enforcement, FsRules, LandlockReport};
    use crate::{Error, Result};

    /// The newest ABI this code was written and tested against. Rights added by later ABIs are
    /// not handled (so not denied) until someone reviews them and bumps this.
    const TESTED_ABI: ABI = ABI::V7;

    fn ll(what: &str) -> impl FnOnce(landlock::RulesetError) -> Error + '_ {
        move |source| Error::Landlock {
            what: what.to_owned(),
            source,
        }
    }

    fn beneath(path: &Path, access: BitFlags<AccessFs>) -> Result<PathBeneath<PathFd>> {
        let fd = PathFd::new(path).map_err(|source| Error::LandlockPath {
            path: path.to_path_buf(),
            source,
        })?;
        // Directory-only rights on a file make the kernel reject the rule.
        let access = if path.is_dir() {
            access
        } else {
            access & AccessFs::from_file(TESTED_ABI)
        };
        Ok(PathBeneath::new(fd, access))
    }

    // THREAT: T11
    pub(super) fn confine(rules: &FsRules) -> Result<LandlockReport> {
        let all = AccessFs::from_all(TESTED_ABI);
        let read = AccessFs::from_read(TESTED_ABI);
        // Device nodes are never needed (and seccomp denies creating them as well).
        let read_write = all & !(AccessFs::MakeChar | AccessFs::MakeBlock);

        let mut created = Ruleset::default()
            .handle_access(all)
            .map_err(ll("handle file access"))?
            .scope(Scope::from_all(TESTED_ABI))
            .map_err(ll("scope signals and abstract sockets"))?
            .create()
            .map_err(ll("create the ruleset"))?;
        for path in &rules.read {
            created = created
                .add_rule(beneath(path, read)?)
                .map_err(ll("add a read-only rule"))?;
        }
        for path in &rules.read_write {
            created = created
                .add_rule(beneath(path, read_write)?)
                .map_err(ll("add a read-write rule"))?;
        }
        let status = created
            .all_threads(true)
            .map_err(ll("request all threads"))?
            .restrict_self()
            .map_err(ll("restrict the process"))?;

        let abi = match status.landlock {
            LandlockStatus::Available {
                effective_abi,
                kernel_abi,
            } => Some(kernel_abi.unwrap_or(effective_abi as i32)),
            LandlockStatus::NotEnabled | LandlockStatus::NotImplemented => None,
        };
        let enforcement = match status.ruleset {
            RulesetStatus::FullyEnforced => Enforcement::Full,
            // The crate also counts a dropped TSYNC request as "partial"; the file rules and
            // scopes of TESTED_ABI are all there when the kernel has at least that ABI, and the
            // thread coverage is reported separately (`all_threads`).
            RulesetStatus::PartiallyEnforced if abi.is_some_and(|a| a >= TESTED_ABI as i32) => {
                Enforcement::Full
            }
            RulesetStatus::PartiallyEnforced => Enforcement::Partial,
            RulesetStatus::NotEnforced => Enforcement::None,
        };
        let scoped = enforcement != Enforcement::None && abi.is_some_and(|a| a >= 6);
        let report = LandlockReport {
            abi,
            enforcement,
            all_threads: status.all_threads,
            signals_scoped: scoped,
            abstract_unix_scoped: scoped,
            rules: rules.clone(),
        };
        if enforcement == Enforcement::None {
            tracing::warn!(target: "mse_sandbox", "{report}");
        } else {
            tracing::info!(target: "mse_sandbox", "{report}");
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_path_is_not_reached_by_the_seed_layout() {
        let rules = FsRules::for_app(
            Path::new("/mse-app"),
            &[PathBuf::from("/opt/python")],
            &[],
            Path::new("/root"),
            Path::new("/tmp"),
        );
        assert!(!rules.reaches(Path::new("/key/enclave.key")));
        assert!(rules.reaches(Path::new("/mse-app/app.py")));
        assert!(rules.reaches(Path::new("/root/.cache/mse/secrets.json")));
        assert!(
            !rules.reaches(Path::new("/mse-application")),
            "prefix is not containment"
        );
    }
}
