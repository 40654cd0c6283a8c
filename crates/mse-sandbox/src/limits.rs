//! Memory and CPU limits from the resource profile, and no core dumps.
//!
//! Memory: cgroup v2 `memory.max` (+ `memory.swap.max = 0`) when the node is alone in a
//! writable cgroup v2 with the memory controller (a systemd unit or a container); otherwise
//! `RLIMIT_DATA`, which counts the heap and anonymous mappings but not mapped files or
//! reserved-but-inaccessible address space (glibc's 64 MiB thread arenas), so it is close to what
//! the app really uses without breaking thread creation the way `RLIMIT_AS` does.
//! We never write to a cgroup shared with other processes: its limit would apply to them too.
//!
//! CPU: `RLIMIT_CPU`, total CPU seconds (SIGXCPU at the limit, SIGKILL 5 s of CPU later).
//!
//! Hard limits equal soft limits (CPU: the hard one 5 s later, so SIGXCPU comes first), and the
//! seccomp policy denies `setrlimit`/`prlimit64` writes, so the app cannot raise them even as root.

use std::path::PathBuf;

/// The resource profile's limits. `None` leaves a resource unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Memory the node (app included) may use.
    pub memory_bytes: Option<u64>,
    /// Total CPU time, in seconds.
    pub cpu_seconds: Option<u64>,
}

/// How the memory limit was applied.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemoryLimit {
    /// No memory limit was requested.
    Unlimited,
    /// cgroup v2 `memory.max` of this cgroup directory; `memory.swap.max` was set to 0 when the
    /// kernel has swap accounting.
    CgroupV2 {
        /// The cgroup directory.
        cgroup: PathBuf,
        /// Whether `memory.swap.max` is 0 (the app's memory never goes to swap).
        swap_disabled: bool,
    },
    /// `RLIMIT_DATA` (no cgroup of our own was available: the reason is given).
    RlimitData {
        /// Why cgroup v2 was not used.
        no_cgroup: String,
    },
}

/// What [`apply`] put in place, for the node's log.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LimitsReport {
    /// The memory limit and how it is enforced.
    pub memory_bytes: Option<u64>,
    /// How.
    pub memory: MemoryLimit,
    /// `RLIMIT_CPU`, if set.
    pub cpu_seconds: Option<u64>,
    /// Core dumps are off (`RLIMIT_CORE = 0`, not dumpable): a crash never writes the node's
    /// memory, keys and the app's data included, to the host's disk.
    pub core_dumps_disabled: bool,
    /// Swap is active on the host: anonymous memory of the node may be written to disk in clear
    /// unless the cgroup disabled it (in sim mode; CVM images should have no swap).
    pub host_swap_active: bool,
}

impl std::fmt::Display for LimitsReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mem = match (&self.memory, self.memory_bytes) {
            (MemoryLimit::CgroupV2 { cgroup, .. }, Some(b)) => {
                format!("memory {b} B (cgroup v2 {})", cgroup.display())
            }
            (MemoryLimit::RlimitData { no_cgroup }, Some(b)) => {
                format!("memory {b} B (RLIMIT_DATA; {no_cgroup})")
            }
            _ => "memory unlimited".to_owned(),
        };
        let cpu = self.cpu_seconds.map_or_else(
            || "CPU unlimited".to_owned(),
            |s| format!("CPU {s} s (RLIMIT_CPU)"),
        );
        write!(f, "limits: {mem}, {cpu}, core dumps off")?;
        if self.host_swap_active
            && !matches!(
                self.memory,
                MemoryLimit::CgroupV2 {
                    swap_disabled: true,
                    ..
                }
            )
        {
            write!(
                f,
                "; WARNING: host swap is active and may receive the node's memory"
            )?;
        }
        Ok(())
    }
}

/// Apply `l` to the whole process and turn core dumps off.
#[cfg(target_os = "linux")]
pub fn apply(l: &Limits) -> crate::Result<LimitsReport> {
    imp::apply(l)
}

/// Not available off Linux.
#[cfg(not(target_os = "linux"))]
pub fn apply(_l: &Limits) -> crate::Result<LimitsReport> {
    Err(crate::Error::Unsupported {
        what: "resource limits",
    })
}

/// Whether the host has an active swap area (`/proc/swaps` lists one).
#[cfg(target_os = "linux")]
pub(crate) fn host_swap_active() -> bool {
    // Unreadable /proc/swaps: assume the worst.
    std::fs::read_to_string("/proc/swaps")
        .map_or(true, |s| s.lines().skip(1).any(|l| !l.trim().is_empty()))
}

#[cfg(target_os = "linux")]
mod imp {
    use std::path::{Path, PathBuf};

    use nix::sys::resource::{Resource, setrlimit};

    use super::{Limits, LimitsReport, MemoryLimit};
    use crate::{Error, Result};

    fn rlimit(what: &'static str, resource: Resource, soft: u64, hard: u64) -> Result<()> {
        setrlimit(resource, soft, hard).map_err(|source| Error::Limit { what, source })
    }

    /// This process's own cgroup v2 directory, if it is alone in it and may set memory limits.
    fn own_cgroup() -> std::result::Result<PathBuf, String> {
        let cgroup = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("/proc/self/cgroup: {e}"))?;
        let rel = cgroup
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .ok_or("no cgroup v2 hierarchy")?;
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("mountinfo: {e}"))?;
        let mount = mountinfo
            .lines()
            .find_map(|l| {
                let (pre, post) = l.split_once(" - ")?;
                (post.split_whitespace().next()? == "cgroup2")
                    .then(|| pre.split_whitespace().nth(4))?
            })
            .ok_or("cgroup v2 is not mounted")?;
        let dir = Path::new(mount).join(rel.trim_start_matches('/'));
        if rel == "/" {
            return Err("the node runs in the root cgroup".to_owned());
        }
        let procs = std::fs::read_to_string(dir.join("cgroup.procs"))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let me = std::process::id().to_string();
        if procs.lines().any(|p| p.trim() != me) {
            return Err(format!(
                "cgroup {} is shared with other processes",
                dir.display()
            ));
        }
        if !dir.join("memory.max").exists() {
            return Err(format!(
                "the memory controller is not enabled for {}",
                dir.display()
            ));
        }
        Ok(dir)
    }

    pub(super) fn apply(l: &Limits) -> Result<LimitsReport> {
        rlimit("core dump", Resource::RLIMIT_CORE, 0, 0)?;
        nix::sys::prctl::set_dumpable(false).map_err(|source| Error::Limit {
            what: "dumpable",
            source,
        })?;

        let memory = match l.memory_bytes {
            None => MemoryLimit::Unlimited,
            Some(bytes) => match own_cgroup() {
                Ok(cgroup) => {
                    let max = cgroup.join("memory.max");
                    std::fs::write(&max, bytes.to_string()).map_err(|source| Error::Io {
                        what: "write",
                        path: max,
                        source,
                    })?;
                    // Absent without swap accounting; then there is nothing to disable.
                    let swap_disabled = std::fs::write(cgroup.join("memory.swap.max"), "0").is_ok();
                    MemoryLimit::CgroupV2 {
                        cgroup,
                        swap_disabled,
                    }
                }
                Err(no_cgroup) => {
                    rlimit("memory (RLIMIT_DATA)", Resource::RLIMIT_DATA, bytes, bytes)?;
                    MemoryLimit::RlimitData { no_cgroup }
                }
            },
        };
        if let Some(secs) = l.cpu_seconds {
            rlimit(
                "CPU time",
                Resource::RLIMIT_CPU,
                secs,
                secs.saturating_add(5),
            )?;
        }
        let report = LimitsReport {
            memory_bytes: l.memory_bytes,
            memory,
            cpu_seconds: l.cpu_seconds,
            core_dumps_disabled: true,
            host_swap_active: super::host_swap_active(),
        };
        tracing::info!(target: "mse_sandbox", "{report}");
        Ok(report)
    }
}
