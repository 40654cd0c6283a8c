//! Storage as the seed promises: HOME, TMP_PATH, MODULE_PATH, KEY_PATH and the secrets live in
//! one RAM-only tmpfs (`noswap`), private to the node's mount namespace, size-limited to the quota.
//!
//! - never on the host's disk: tmpfs pages are RAM; `noswap` keeps them out of swap;
//! - encrypted where the TEE encrypts memory (TDX, SEV-SNP: the CPU's per-VM key, which exists
//!   only in the CPU for this instance); in sim mode the host can read the node's RAM anyway;
//! - private: the mount exists only in the node's namespace (other host processes see the empty
//!   directories underneath);
//! - removed when the app stops: the namespace, hence the tmpfs, dies with the node's last
//!   thread, even on SIGKILL or a crash;
//! - quota: the tmpfs size, so writing past it fails with `ENOSPC` in the writer only.
//!
//! docs/security/storage.md gives the measurements and why this beats an encrypted disk-backed
//! file system here.

use std::path::{Path, PathBuf};

/// The seed's default storage quota: 10 GiB.
pub const DEFAULT_QUOTA_BYTES: u64 = 10 << 30;

/// POSIX shared memory and named semaphores (`multiprocessing.pool.ThreadPool`, `multiprocessing`
/// locks) live here. The node puts it in [`StoragePlan::dirs`] and in
/// [`crate::landlock::FsRules::read_write`]: the app then gets a private one, counted in its quota,
/// instead of the host's (shared with every host process, outside any quota).
pub const SHM_DIR: &str = "/dev/shm";

/// The smallest quota accepted (below it the app cannot even hold its code).
pub const MIN_QUOTA_BYTES: u64 = 1 << 20;

/// What to make private and how much the app may store in total.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoragePlan {
    /// Absolute directories: HOME, TMP_PATH, MODULE_PATH, KEY_PATH, the secrets directory. A
    /// directory nested in another one (the seed's `$HOME/.cache/mse`) is created inside it.
    /// Missing directories are created on the host as empty mount points.
    pub dirs: Vec<PathBuf>,
    /// Total bytes for all of them (one tmpfs): [`DEFAULT_QUOTA_BYTES`] by default.
    pub quota_bytes: u64,
}

/// Where the app's files physically are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protection {
    /// One tmpfs in a private mount namespace, excluded from swap by the `noswap` mount option.
    TmpfsNoswap,
    /// One tmpfs in a private mount namespace, without `noswap` (unprivileged mounts cannot set
    /// it, or the kernel is older than 6.4) on a host that had no active swap at setup.
    TmpfsHostWithoutSwap,
}

/// How the private mount namespace was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Namespace {
    /// The node has CAP_SYS_ADMIN (root).
    Privileged,
    /// Through an unprivileged user namespace (the node appears as uid 0 inside it).
    UserNamespace,
}

/// What [`setup`] put in place, for the node's log.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StorageReport {
    /// What protects the files.
    pub protection: Protection,
    /// How the namespace was obtained.
    pub namespace: Namespace,
    /// The tmpfs size, which is the quota the app sees (`ENOSPC` past it).
    pub quota_bytes: u64,
    /// The quota that was asked for (larger than `quota_bytes` when capped to half the RAM).
    pub requested_quota_bytes: u64,
    /// The directories mounted from the tmpfs (nested plan directories are inside them).
    pub mounted: Vec<PathBuf>,
    /// All directories of the plan, as given.
    pub dirs: Vec<PathBuf>,
    /// Mount points that did not exist and were created (empty) on the host.
    pub created_on_host: Vec<PathBuf>,
    /// Things the operator should know (quota capped, no noswap, ...).
    pub warnings: Vec<String>,
}

impl std::fmt::Display for StorageReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.protection {
            Protection::TmpfsNoswap => "RAM-only tmpfs (noswap)",
            Protection::TmpfsHostWithoutSwap => "RAM-only tmpfs (host has no swap)",
        };
        let ns = match self.namespace {
            Namespace::Privileged => "private mount namespace",
            Namespace::UserNamespace => "private mount namespace in a user namespace",
        };
        write!(
            f,
            "storage: {what}, {ns}, quota {} bytes for {} dirs; removed when the node exits",
            self.quota_bytes,
            self.dirs.len()
        )?;
        for w in &self.warnings {
            write!(f, "; WARNING: {w}")?;
        }
        Ok(())
    }
}

impl StoragePlan {
    /// Check the plan and return its directories, normalised, and the top-level ones (those not
    /// nested inside another directory of the plan).
    pub(crate) fn checked(&self) -> crate::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
        use crate::Error::InvalidPlan;
        if self.dirs.is_empty() {
            return Err(InvalidPlan("no directories to protect".into()));
        }
        if self.quota_bytes < MIN_QUOTA_BYTES {
            return Err(InvalidPlan(format!(
                "quota {} bytes is below the minimum {MIN_QUOTA_BYTES}",
                self.quota_bytes
            )));
        }
        let mut dirs = Vec::with_capacity(self.dirs.len());
        for d in &self.dirs {
            let mut clean = PathBuf::new();
            for c in d.components() {
                match c {
                    std::path::Component::RootDir | std::path::Component::Normal(_) => {
                        clean.push(c)
                    }
                    std::path::Component::CurDir => {}
                    _ => {
                        return Err(InvalidPlan(format!(
                            "{}: use an absolute path without `..`",
                            d.display()
                        )));
                    }
                }
            }
            if !d.is_absolute() || clean.parent().is_none() {
                return Err(InvalidPlan(format!(
                    "{}: must be an absolute directory other than /",
                    d.display()
                )));
            }
            if !dirs.contains(&clean) {
                dirs.push(clean);
            }
        }
        let top: Vec<PathBuf> = dirs
            .iter()
            .filter(|d| !dirs.iter().any(|o| o != *d && d.starts_with(o)))
            .cloned()
            .collect();
        Ok((dirs, top))
    }
}

/// Make the plan's directories private, RAM-only and quota-limited. Must run while the process is
/// single-threaded (before tokio and Python start): threads created earlier would keep seeing
/// the host's directories. Fails closed: when no private storage can be set up the error says
/// why, and the node must refuse to run the app unless an explicit insecure flag is given.
#[cfg(target_os = "linux")]
pub fn setup(plan: &StoragePlan) -> crate::Result<StorageReport> {
    imp::setup(plan)
}

/// Not available off Linux.
#[cfg(not(target_os = "linux"))]
pub fn setup(_plan: &StoragePlan) -> crate::Result<StorageReport> {
    Err(crate::Error::Unsupported {
        what: "private storage",
    })
}

/// Detach the storage now (its RAM is freed once no file on it is open) and remove the mount
/// points [`setup`] created. Only for a node that goes on after stopping the app, or that fails
/// before serving: after [`crate::seccomp::install`] unmounting is denied, and exiting the
/// process is what removes the storage.
#[cfg(target_os = "linux")]
pub fn teardown(report: &StorageReport) -> crate::Result<()> {
    imp::teardown(report)
}

/// Not available off Linux.
#[cfg(not(target_os = "linux"))]
pub fn teardown(_report: &StorageReport) -> crate::Result<()> {
    Err(crate::Error::Unsupported {
        what: "private storage",
    })
}

/// Whether `path` is on a tmpfs (for checks and tests).
#[cfg(target_os = "linux")]
pub fn is_tmpfs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
}

#[cfg(target_os = "linux")]
mod imp {
    use std::os::unix::fs::DirBuilderExt;
    use std::path::{Path, PathBuf};

    use nix::errno::Errno;
    use nix::mount::{MntFlags, MsFlags, mount, umount2};
    use nix::sched::{CloneFlags, unshare};

    use super::{Namespace, Protection, StoragePlan, StorageReport};
    use crate::{Error, Result};

    /// Existing directories over which the tmpfs is mounted for a moment, in our namespace only,
    /// to carve it into per-directory bind mounts; the first one unrelated to the plan is used.
    const STAGING: &[&str] = &[
        "/mnt",
        "/media",
        "/srv",
        "/opt",
        "/var/tmp",
        "/run",
        "/tmp",
        "/dev/shm",
        "/home",
        "/boot",
        "/usr/local",
    ];

    fn mount_err(what: &'static str, path: &Path) -> impl FnOnce(Errno) -> Error + use<> {
        let path = path.to_path_buf();
        move |source| Error::Mount { what, path, source }
    }

    fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error + use<> {
        let path = path.to_path_buf();
        move |source| Error::Io { what, path, source }
    }

    /// Create `dir` and its missing parents with mode 0700, returning those created, outermost first.
    fn create_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
        let mut missing = Vec::new();
        let mut cur = Some(dir);
        while let Some(p) = cur {
            if p.exists() {
                break;
            }
            missing.push(p.to_path_buf());
            cur = p.parent();
        }
        missing.reverse();
        for p in &missing {
            match std::fs::DirBuilder::new().mode(0o700).create(p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(Error::Io {
                        what: "create the mount point",
                        path: p.clone(),
                        source: e,
                    });
                }
            }
        }
        if !dir.is_dir() {
            return Err(Error::InvalidPlan(format!(
                "{} exists and is not a directory",
                dir.display()
            )));
        }
        Ok(missing)
    }

    fn enter_user_namespace() -> std::result::Result<(), String> {
        let uid = nix::unistd::geteuid();
        let gid = nix::unistd::getegid();
        unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS)
            .map_err(|e| format!("unshare(CLONE_NEWUSER|CLONE_NEWNS): {e}"))?;
        // A non-dumpable process (after a uid change, or limits::apply) does not own its
        // /proc/self files and cannot write its own maps: be dumpable for these three writes.
        let dumpable = nix::sys::prctl::get_dumpable().unwrap_or(true);
        if !dumpable {
            nix::sys::prctl::set_dumpable(true).map_err(|e| format!("set dumpable: {e}"))?;
        }
        // setgroups must be denied before an unprivileged process may write gid_map.
        let writes = [
            ("/proc/self/setgroups", "deny".to_owned()),
            ("/proc/self/uid_map", format!("0 {uid} 1")),
            ("/proc/self/gid_map", format!("0 {gid} 1")),
        ];
        let written = writes.into_iter().try_for_each(|(file, content)| {
            std::fs::write(file, content).map_err(|e| format!("write {file}: {e}"))
        });
        if !dumpable {
            nix::sys::prctl::set_dumpable(false)
                .map_err(|e| format!("restore non-dumpable: {e}"))?;
        }
        written
    }

    fn enter_namespace() -> Result<Namespace> {
        let privileged = match unshare(CloneFlags::CLONE_NEWNS) {
            Ok(()) => return Ok(Namespace::Privileged),
            Err(e) => format!(
                "unshare(CLONE_NEWNS) as uid {}: {e}",
                nix::unistd::geteuid()
            ),
        };
        match enter_user_namespace() {
            Ok(()) => Ok(Namespace::UserNamespace),
            Err(userns) => Err(Error::NoPrivateNamespace {
                detail: format!("{privileged}; {userns}"),
            }),
        }
    }

    fn mem_total() -> Option<u64> {
        let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
        let kib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))?
            .trim()
            .trim_end_matches("kB")
            .trim();
        kib.parse::<u64>().ok()?.checked_mul(1024)
    }

    fn mount_tmpfs(at: &Path, size: u64, noswap: bool) -> std::result::Result<(), Errno> {
        let mut data = format!("size={size},mode=0700");
        if noswap {
            data.push_str(",noswap");
        }
        mount(
            Some("mse-storage"),
            at,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(data.as_str()),
        )
    }

    // THREAT: T7
    pub(super) fn setup(plan: &StoragePlan) -> Result<StorageReport> {
        let (dirs, top) = plan.checked()?;
        let threads = crate::thread_count()?;
        if threads != 1 {
            return Err(Error::NotSingleThreaded {
                what: "storage::setup",
                threads,
            });
        }
        let staging = STAGING
            .iter()
            .map(Path::new)
            .find(|s| s.is_dir() && !dirs.iter().any(|d| d.starts_with(s) || s.starts_with(d)))
            .ok_or_else(|| {
                Error::InvalidPlan("no free staging directory among /mnt, /media, /srv, ...".into())
            })?;

        let mut warnings = Vec::new();
        let mut quota = plan.quota_bytes;
        if let Some(half) = mem_total().map(|m| m / 2)
            && quota > half
        {
            warnings.push(format!(
                "quota capped from {} to {half} bytes (half the RAM): the storage is RAM-backed, and a full tmpfs must give ENOSPC, not exhaust memory",
                plan.quota_bytes
            ));
            quota = half.max(super::MIN_QUOTA_BYTES);
        }

        let mut created_on_host = Vec::new();
        for d in &top {
            created_on_host.extend(create_dirs(d)?);
        }
        let namespace = enter_namespace()?;
        // Nothing we mount may propagate back to the host (or to other namespaces).
        let root = Path::new("/");
        mount(
            None::<&str>,
            root,
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(mount_err("make private", root))?;

        let protection = match mount_tmpfs(staging, quota, true) {
            Ok(()) => Protection::TmpfsNoswap,
            // EINVAL: kernel < 6.4, or an unprivileged (user namespace) mount, which may not set noswap.
            Err(Errno::EINVAL) => {
                if crate::limits::host_swap_active() {
                    return Err(Error::Swappable {
                        detail: format!(
                            "the host has active swap and tmpfs refused `noswap` ({namespace:?} mount)"
                        ),
                    });
                }
                mount_tmpfs(staging, quota, false).map_err(mount_err("mount tmpfs on", staging))?;
                warnings.push(
                    "tmpfs without `noswap`: safe only while the host has no swap (none now)"
                        .into(),
                );
                Protection::TmpfsHostWithoutSwap
            }
            Err(e) => {
                return Err(Error::Mount {
                    what: "mount tmpfs on",
                    path: staging.to_path_buf(),
                    source: e,
                });
            }
        };

        let carve = || -> Result<()> {
            for (i, d) in top.iter().enumerate() {
                let part = staging.join(format!("d{i}"));
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&part)
                    .map_err(io_err("create", &part))?;
                mount(
                    Some(&part),
                    d.as_path(),
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(mount_err("bind the private storage onto", d))?;
            }
            Ok(())
        };
        let carved = carve();
        // The staging mount goes away whatever happened; the binds keep the tmpfs alive.
        umount2(staging, MntFlags::MNT_DETACH)
            .map_err(mount_err("detach the staging mount", staging))?;
        carved?;
        for d in &dirs {
            if !top.contains(d) {
                create_dirs(d)?;
            }
        }
        for d in &top {
            if !super::is_tmpfs(d) {
                return Err(Error::InvalidPlan(format!(
                    "{} is not on the private tmpfs after setup",
                    d.display()
                )));
            }
        }
        let report = StorageReport {
            protection,
            namespace,
            quota_bytes: quota,
            requested_quota_bytes: plan.quota_bytes,
            mounted: top,
            dirs,
            created_on_host,
            warnings,
        };
        tracing::info!(target: "mse_sandbox", "{report}");
        Ok(report)
    }

    pub(super) fn teardown(report: &StorageReport) -> Result<()> {
        for d in report.mounted.iter().rev() {
            umount2(d.as_path(), MntFlags::MNT_DETACH).map_err(mount_err("detach", d))?;
        }
        for d in report.created_on_host.iter().rev() {
            match std::fs::remove_dir(d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::Io {
                        what: "remove the mount point",
                        path: d.clone(),
                        source: e,
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(dirs: &[&str]) -> StoragePlan {
        StoragePlan {
            dirs: dirs.iter().map(PathBuf::from).collect(),
            quota_bytes: DEFAULT_QUOTA_BYTES,
        }
    }

    #[test]
    fn nested_dirs_live_inside_their_parent() {
        let p = plan(&[
            "/root",
            "/tmp",
            "/mse-app",
            "/key",
            "/root/.cache/mse",
            "/tmp/",
        ]);
        let (dirs, top) = p.checked().map_err(|e| e.to_string()).unwrap_or_default();
        assert_eq!(dirs.len(), 5, "duplicates removed: {dirs:?}");
        let top: Vec<_> = top
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        assert_eq!(top, ["/root", "/tmp", "/mse-app", "/key"]);
    }

    #[test]
    fn bad_plans_are_refused() {
        for dirs in [&["relative"][..], &["/"], &["/a/../etc"], &[]] {
            assert!(plan(dirs).checked().is_err(), "{dirs:?}");
        }
        let tiny = StoragePlan {
            quota_bytes: 4096,
            ..plan(&["/x"])
        };
        assert!(tiny.checked().is_err());
    }
}
