//! No new processes: the seccomp policy of [`crate::policy`], installed on every thread.
//!
//! Install it once, after the app is imported (PyPI packages may legitimately spawn helpers at
//! import time) and before the listener accepts app traffic. It cannot be removed afterwards.

/// What [`install`] put in place, for the node's log.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SeccompReport {
    /// Target architecture of the filters (a call from another ABI, e.g. i386 `int 0x80`, kills
    /// the process: seccompiler's architecture check).
    pub arch: &'static str,
    /// Number of stacked filters (one per errno).
    pub filters: usize,
    /// Installed with TSYNC: every existing thread and all future ones are covered.
    pub all_threads: bool,
    /// Names of the syscalls the policy answers with an error (some only under a condition).
    pub denied: Vec<&'static str>,
    /// Whether the x32 aliases of those syscalls are covered too (x86_64).
    pub x32_covered: bool,
}

impl std::fmt::Display for SeccompReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seccomp: {} filters on {} ({}), {} syscalls denied{}: no fork, vfork, exec or process-creating clone",
            self.filters,
            self.arch,
            if self.all_threads {
                "all threads"
            } else {
                "calling thread"
            },
            self.denied.len(),
            if self.x32_covered {
                " incl. x32 aliases"
            } else {
                ""
            },
        )
    }
}

/// One rule of the policy, as documented in docs/security/seccomp.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuleInfo {
    /// Syscall name.
    pub syscall: &'static str,
    /// The errno returned: `"ENOSYS"` or `"EPERM"`.
    pub errno: &'static str,
    /// When the rule applies.
    pub when: &'static str,
    /// Why the app never needs the call.
    pub why: &'static str,
}

/// The reviewed policy table, for documentation and the node's `--help`.
pub fn rules() -> impl Iterator<Item = RuleInfo> {
    use crate::policy::{Action, RULES, When};
    RULES.iter().map(|r| RuleInfo {
        syscall: r.name,
        errno: match r.action {
            Action::Enosys => "ENOSYS",
            Action::Eperm => "EPERM",
        },
        when: match r.when {
            When::Always => "always",
            When::CloneWithoutThread => "flags without CLONE_THREAD",
            When::PersonalityChange => "persona other than PER_LINUX or the 0xffffffff query",
            When::DeviceNode { .. } => "mode is S_IFCHR or S_IFBLK",
            When::NonNull { .. } => "a new limit is given",
        },
        why: r.why,
    })
}

/// Install the policy on all threads (TSYNC; also sets `no_new_privs`). Fails closed: on any error
/// nothing is reported as enforced, and the caller must not serve the app.
#[cfg(target_os = "linux")]
pub fn install() -> crate::Result<SeccompReport> {
    imp::install()
}

/// Not available off Linux.
#[cfg(not(target_os = "linux"))]
pub fn install() -> crate::Result<SeccompReport> {
    Err(crate::Error::Unsupported { what: "seccomp" })
}

#[cfg(target_os = "linux")]
pub(crate) mod imp {
    use std::collections::BTreeMap;

    use seccompiler::{
        BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
        SeccompRule, TargetArch,
    };

    use super::SeccompReport;
    use crate::policy::{Action, RULES, Rule, When, X32, X32_SYSCALL_BIT};
    use crate::{Error, Result};

    #[cfg(target_arch = "x86_64")]
    const ARCH: (TargetArch, &str) = (TargetArch::x86_64, "x86_64");
    #[cfg(target_arch = "aarch64")]
    const ARCH: (TargetArch, &str) = (TargetArch::aarch64, "aarch64");
    #[cfg(target_arch = "riscv64")]
    const ARCH: (TargetArch, &str) = (TargetArch::riscv64, "riscv64");

    const X32_COVERED: bool = cfg!(target_arch = "x86_64");

    fn cond(
        arg: u8,
        len: SeccompCmpArgLen,
        op: SeccompCmpOp,
        value: u64,
        r: &Rule,
    ) -> Result<SeccompCondition> {
        SeccompCondition::new(arg, len, op, value).map_err(|source| Error::SeccompRule {
            what: r.name.to_owned(),
            source,
        })
    }

    /// The seccompiler rules for one table entry (empty = always).
    fn rules_for(r: &Rule) -> Result<Vec<SeccompRule>> {
        let one = |conds: Vec<SeccompCondition>| {
            SeccompRule::new(conds).map_err(|source| Error::SeccompRule {
                what: r.name.to_owned(),
                source,
            })
        };
        Ok(match r.when {
            When::Always => Vec::new(),
            When::CloneWithoutThread => {
                let thread = u64::try_from(libc::CLONE_THREAD).unwrap_or(0x0001_0000);
                vec![one(vec![cond(
                    0,
                    SeccompCmpArgLen::Qword,
                    SeccompCmpOp::MaskedEq(thread),
                    0,
                    r,
                )?])?]
            }
            When::PersonalityChange => vec![one(vec![
                cond(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, 0, r)?,
                cond(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, 0xffff_ffff, r)?,
            ])?],
            When::DeviceNode { mode_arg } => {
                let fmt = u64::from(libc::S_IFMT);
                vec![
                    one(vec![cond(
                        mode_arg,
                        SeccompCmpArgLen::Dword,
                        SeccompCmpOp::MaskedEq(fmt),
                        u64::from(libc::S_IFCHR),
                        r,
                    )?])?,
                    one(vec![cond(
                        mode_arg,
                        SeccompCmpArgLen::Dword,
                        SeccompCmpOp::MaskedEq(fmt),
                        u64::from(libc::S_IFBLK),
                        r,
                    )?])?,
                ]
            }
            When::NonNull { arg } => {
                vec![one(vec![cond(
                    arg,
                    SeccompCmpArgLen::Qword,
                    SeccompCmpOp::Ne,
                    0,
                    r,
                )?])?]
            }
        })
    }

    /// Compile the filter answering `action` (one per errno: seccompiler allows one match action
    /// per filter).
    pub(crate) fn compile(action: Action) -> Result<BpfProgram> {
        let mut map: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
        for r in RULES.iter().filter(|r| r.action == action) {
            map.insert(r.nr, rules_for(r)?);
            if X32_COVERED {
                let alias = match r.x32 {
                    X32::Same => r.nr,
                    X32::Nr(n) => n,
                };
                map.insert(X32_SYSCALL_BIT | alias, rules_for(r)?);
            }
        }
        let filter = SeccompFilter::new(
            map,
            SeccompAction::Allow,
            SeccompAction::Errno(action.errno()),
            ARCH.0,
        )
        .map_err(|source| Error::SeccompRule {
            what: format!("{action:?} filter"),
            source,
        })?;
        BpfProgram::try_from(filter).map_err(|source| Error::SeccompRule {
            what: format!("{action:?} filter"),
            source,
        })
    }

    // THREAT: T10
    pub(crate) fn install() -> Result<SeccompReport> {
        // Compile both before installing either, so a table bug cannot leave half a policy.
        let programs = [compile(Action::Enosys)?, compile(Action::Eperm)?];
        for program in &programs {
            seccompiler::apply_filter_all_threads(program).map_err(|source| Error::Seccomp {
                what: "apply with TSYNC",
                source,
            })?;
        }
        let report = SeccompReport {
            arch: ARCH.1,
            filters: programs.len(),
            all_threads: true,
            denied: RULES.iter().map(|r| r.name).collect(),
            x32_covered: X32_COVERED,
        };
        tracing::info!(target: "mse_sandbox", "{report}");
        Ok(report)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn both_filters_compile_within_bpf_limits() {
            for action in [Action::Enosys, Action::Eperm] {
                let program = compile(action);
                assert!(program.is_ok(), "{action:?}: {program:?}");
                let len = program.map(|p| p.len()).unwrap_or(usize::MAX);
                // BPF_MAXINSNS; seccomp also caps the total over stacked filters.
                assert!(len > 4 && len < 4096, "{action:?}: {len} instructions");
            }
        }
    }
}
