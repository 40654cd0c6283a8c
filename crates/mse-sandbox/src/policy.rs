//! The reviewed seccomp policy: one table, one `why` per rule (docs/security/seccomp.md mirrors it).
//!
//! It is a deny-list on top of "allow": the app is ordinary Python whose syscalls we cannot
//! enumerate (C extensions, new CPython versions), so an allow-list would break apps in ways
//! nobody can test in advance. What is denied is what an app in an enclave never needs and what
//! would let it leave the seed's environment (new processes, other processes' memory, the
//! kernel's global state). Everything else is left to Landlock (files), the mount namespace
//! (storage) and the TEE itself.

/// What the kernel answers instead of running the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// `ENOSYS`: "this kernel has no such call", which makes callers fall back to an older one.
    Enosys,
    /// `EPERM`: the usual "not allowed", which Python turns into `PermissionError`.
    Eperm,
}

impl Action {
    pub(crate) fn errno(self) -> u32 {
        // Both constants are small positive numbers.
        match self {
            Action::Enosys => libc::ENOSYS.unsigned_abs(),
            Action::Eperm => libc::EPERM.unsigned_abs(),
        }
    }
}

/// When the rule applies. Conditions read only registers: BPF cannot follow pointers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum When {
    Always,
    /// `clone(flags, ..)` without `CLONE_THREAD`: a new process rather than a thread.
    CloneWithoutThread,
    /// `personality(p)` with `p` other than `PER_LINUX` (0) or the query value `0xffffffff`.
    PersonalityChange,
    /// The mode argument at this index creates a character or block device.
    DeviceNode {
        mode_arg: u8,
    },
    /// The pointer argument at this index is not NULL (e.g. `prlimit64` setting a limit).
    NonNull {
        arg: u8,
    },
}

/// The x32 ABI number of a call (`__X32_SYSCALL_BIT | n`), on x86_64 only.
///
/// A deny-list keyed on x86_64 numbers does not see x32 calls: they arrive with the same audit
/// arch and `nr | 0x40000000`. Kernels built without `CONFIG_X86_X32_ABI` answer ENOSYS to them
/// anyway, but we cannot know the target's configuration, so every rule also covers its x32 alias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum X32 {
    /// Same number as on x86_64 ("common" in arch/x86/entry/syscalls/syscall_64.tbl).
    Same,
    /// The x32-specific entry (512..) of the same call.
    Nr(i64),
}

pub(crate) const X32_SYSCALL_BIT: i64 = 0x4000_0000;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Rule {
    pub(crate) name: &'static str,
    pub(crate) nr: i64,
    pub(crate) x32: X32,
    pub(crate) action: Action,
    pub(crate) when: When,
    pub(crate) why: &'static str,
}

const fn rule(name: &'static str, nr: i64, action: Action, when: When, why: &'static str) -> Rule {
    Rule {
        name,
        nr,
        x32: X32::Same,
        action,
        when,
        why,
    }
}

const fn deny(name: &'static str, nr: i64, why: &'static str) -> Rule {
    rule(name, nr, Action::Eperm, When::Always, why)
}

const fn x32(mut r: Rule, nr: i64) -> Rule {
    r.x32 = X32::Nr(nr);
    r
}

const NEW_PROCESS: &str =
    "the hosted app must not start other processes or programs (seed: no fork, no subprocess)";
const NAMESPACES: &str =
    "changing mounts or namespaces could undo the private storage and the file confinement";
const KERNEL: &str =
    "changes global kernel state; an app never needs it and root in sim mode could";
const OTHER_PROCESS: &str = "reads or writes another process's memory or descriptors, e.g. the node's keys from outside the app";
const SURFACE: &str =
    "large kernel attack surface that a Python web app never uses (common escape vector)";

/// The policy. Order is irrelevant; each syscall appears once.
pub(crate) const RULES: &[Rule] = &[
    // --- No new processes (filter 1: ENOSYS; filter 2: EPERM) ---------------------------------
    rule(
        "clone3",
        libc::SYS_clone3,
        Action::Enosys,
        When::Always,
        "its flags live in user memory that BPF cannot read; ENOSYS makes glibc fall back to clone(), \
         where CLONE_THREAD is visible (EPERM here would break thread creation)",
    ),
    rule(
        "clone",
        libc::SYS_clone,
        Action::Eperm,
        When::CloneWithoutThread,
        "clone without CLONE_THREAD creates a process (fork, posix_spawn, vfork); threads stay allowed",
    ),
    #[cfg(target_arch = "x86_64")]
    deny("fork", libc::SYS_fork, NEW_PROCESS),
    #[cfg(target_arch = "x86_64")]
    deny("vfork", libc::SYS_vfork, NEW_PROCESS),
    x32(deny("execve", libc::SYS_execve, NEW_PROCESS), 520),
    x32(
        deny(
            "execveat",
            libc::SYS_execveat,
            "runs another program; also closes the memfd_create + AT_EMPTY_PATH way to exec",
        ),
        545,
    ),
    // --- Other processes ---------------------------------------------------------------------
    x32(deny("ptrace", libc::SYS_ptrace, OTHER_PROCESS), 521),
    x32(
        deny(
            "process_vm_readv",
            libc::SYS_process_vm_readv,
            OTHER_PROCESS,
        ),
        539,
    ),
    x32(
        deny(
            "process_vm_writev",
            libc::SYS_process_vm_writev,
            OTHER_PROCESS,
        ),
        540,
    ),
    deny("pidfd_getfd", libc::SYS_pidfd_getfd, OTHER_PROCESS),
    deny("process_madvise", libc::SYS_process_madvise, OTHER_PROCESS),
    // --- Mounts and namespaces ---------------------------------------------------------------
    deny("mount", libc::SYS_mount, NAMESPACES),
    deny("umount2", libc::SYS_umount2, NAMESPACES),
    deny("pivot_root", libc::SYS_pivot_root, NAMESPACES),
    deny("chroot", libc::SYS_chroot, NAMESPACES),
    deny("unshare", libc::SYS_unshare, NAMESPACES),
    deny("setns", libc::SYS_setns, NAMESPACES),
    deny("open_tree", libc::SYS_open_tree, NAMESPACES),
    deny("move_mount", libc::SYS_move_mount, NAMESPACES),
    deny("fsopen", libc::SYS_fsopen, NAMESPACES),
    deny("fsconfig", libc::SYS_fsconfig, NAMESPACES),
    deny("fsmount", libc::SYS_fsmount, NAMESPACES),
    deny("fspick", libc::SYS_fspick, NAMESPACES),
    deny("mount_setattr", libc::SYS_mount_setattr, NAMESPACES),
    deny(
        "open_by_handle_at",
        libc::SYS_open_by_handle_at,
        "opens files by handle, bypassing path-based confinement (the classic container escape)",
    ),
    // --- Kernel modules, kexec, reboot, swap, accounting ---------------------------------------
    deny("init_module", libc::SYS_init_module, KERNEL),
    deny("finit_module", libc::SYS_finit_module, KERNEL),
    deny("delete_module", libc::SYS_delete_module, KERNEL),
    x32(deny("kexec_load", libc::SYS_kexec_load, KERNEL), 528),
    deny("kexec_file_load", libc::SYS_kexec_file_load, KERNEL),
    deny("reboot", libc::SYS_reboot, KERNEL),
    deny("swapon", libc::SYS_swapon, KERNEL),
    deny("swapoff", libc::SYS_swapoff, KERNEL),
    deny("acct", libc::SYS_acct, KERNEL),
    deny("quotactl", libc::SYS_quotactl, KERNEL),
    deny(
        "syslog",
        libc::SYS_syslog,
        "reads or clears the kernel log, which may hold other tenants' data",
    ),
    deny("settimeofday", libc::SYS_settimeofday, KERNEL),
    deny("clock_settime", libc::SYS_clock_settime, KERNEL),
    deny("clock_adjtime", libc::SYS_clock_adjtime, KERNEL),
    deny("adjtimex", libc::SYS_adjtimex, KERNEL),
    deny("sethostname", libc::SYS_sethostname, KERNEL),
    deny("setdomainname", libc::SYS_setdomainname, KERNEL),
    // --- Keyrings ------------------------------------------------------------------------------
    deny(
        "add_key",
        libc::SYS_add_key,
        "kernel keyrings are shared with the host and outlive the app",
    ),
    deny(
        "request_key",
        libc::SYS_request_key,
        "kernel keyrings are shared with the host and outlive the app",
    ),
    deny(
        "keyctl",
        libc::SYS_keyctl,
        "kernel keyrings are shared with the host and outlive the app",
    ),
    // --- Attack surface ------------------------------------------------------------------------
    deny("bpf", libc::SYS_bpf, SURFACE),
    deny(
        "perf_event_open",
        libc::SYS_perf_event_open,
        "side channels and kernel attack surface",
    ),
    deny(
        "userfaultfd",
        libc::SYS_userfaultfd,
        "lets a thread stall the kernel mid-copy: a building block of kernel exploits",
    ),
    deny("io_uring_setup", libc::SYS_io_uring_setup, SURFACE),
    deny("io_uring_enter", libc::SYS_io_uring_enter, SURFACE),
    deny("io_uring_register", libc::SYS_io_uring_register, SURFACE),
    #[cfg(target_arch = "x86_64")]
    deny("iopl", libc::SYS_iopl, "direct hardware port access"),
    #[cfg(target_arch = "x86_64")]
    deny("ioperm", libc::SYS_ioperm, "direct hardware port access"),
    #[cfg(target_arch = "x86_64")]
    deny(
        "modify_ldt",
        libc::SYS_modify_ldt,
        "16-bit segments: only old emulators need it; past kernel bugs",
    ),
    #[cfg(target_arch = "x86_64")]
    deny("uselib", libc::SYS_uselib, "obsolete a.out loader"),
    rule(
        "personality",
        libc::SYS_personality,
        Action::Eperm,
        When::PersonalityChange,
        "personality flags such as ADDR_NO_RANDOMIZE weaken ASLR; querying (0xffffffff) and PER_LINUX stay allowed",
    ),
    #[cfg(target_arch = "x86_64")]
    rule(
        "mknod",
        libc::SYS_mknod,
        Action::Eperm,
        When::DeviceNode { mode_arg: 1 },
        "a device node (root in sim mode) would expose raw disks or memory; FIFOs and sockets stay allowed",
    ),
    rule(
        "mknodat",
        libc::SYS_mknodat,
        Action::Eperm,
        When::DeviceNode { mode_arg: 2 },
        "a device node (root in sim mode) would expose raw disks or memory; FIFOs and sockets stay allowed",
    ),
    // --- Resource limits -----------------------------------------------------------------------
    deny(
        "setrlimit",
        libc::SYS_setrlimit,
        "the node's memory and CPU limits must hold: as root the app could raise them",
    ),
    rule(
        "prlimit64",
        libc::SYS_prlimit64,
        Action::Eperm,
        When::NonNull { arg: 2 },
        "setting a limit (new_limit != NULL) is denied for the same reason; reading limits stays allowed",
    ),
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_rule_is_unique_and_explained() {
        let mut seen = BTreeSet::new();
        let mut names = BTreeSet::new();
        for r in RULES {
            assert!(seen.insert(r.nr), "{} appears twice", r.name);
            assert!(names.insert(r.name), "{} appears twice", r.name);
            assert!(r.why.len() > 20, "{} needs a real reason", r.name);
            assert!(
                r.nr >= 0 && r.nr < X32_SYSCALL_BIT,
                "{}: bad number",
                r.name
            );
            if let X32::Nr(n) = r.x32 {
                assert!(
                    (512..=547).contains(&n),
                    "{}: x32-specific numbers are 512..=547",
                    r.name
                );
            }
        }
    }

    #[test]
    fn clone3_falls_back_and_process_creation_is_eperm() {
        let get = |name: &str| RULES.iter().find(|r| r.name == name).copied();
        let clone3 = get("clone3").map(|r| (r.action, r.when));
        assert_eq!(clone3, Some((Action::Enosys, When::Always)));
        let clone = get("clone").map(|r| (r.action, r.when));
        assert_eq!(clone, Some((Action::Eperm, When::CloneWithoutThread)));
        for name in [
            "execve", "execveat", "ptrace", "mount", "unshare", "bpf", "keyctl",
        ] {
            assert_eq!(get(name).map(|r| r.action), Some(Action::Eperm), "{name}");
        }
        #[cfg(target_arch = "x86_64")]
        for name in ["fork", "vfork"] {
            assert_eq!(
                get(name).map(|r| (r.action, r.when)),
                Some((Action::Eperm, When::Always))
            );
        }
        // Only clone3 may answer ENOSYS: anything else would make callers retry another way.
        assert_eq!(
            RULES.iter().filter(|r| r.action == Action::Enosys).count(),
            1
        );
    }

    #[test]
    fn every_rule_is_documented() {
        let doc = include_str!("../../../docs/security/seccomp.md");
        for r in RULES {
            assert!(
                doc.contains(&format!("`{}`", r.name)),
                "docs/security/seccomp.md does not mention `{}`",
                r.name
            );
        }
    }

    #[test]
    fn x32_specific_numbers_match_the_kernel_table() {
        // arch/x86/entry/syscalls/syscall_64.tbl: these calls have "64" entries and a separate
        // x32 entry, so their x32 alias is not `nr | X32_SYSCALL_BIT`.
        let expected = [
            ("execve", 520),
            ("ptrace", 521),
            ("kexec_load", 528),
            ("process_vm_readv", 539),
            ("process_vm_writev", 540),
            ("execveat", 545),
        ];
        for (name, nr) in expected {
            let r = RULES.iter().find(|r| r.name == name).map(|r| r.x32);
            assert_eq!(r, Some(X32::Nr(nr)), "{name}");
        }
    }
}
