//! The node's threads run under `SCHED_BATCH`.
//!
//! A request crosses two threads of the same process (tokio, then a Python thread, then tokio
//! again), and on a busy CPU each hand-off made the woken thread preempt the one that woke it: a
//! context switch per hand-off, and no batching. `SCHED_BATCH` (sched(7): "for workloads that
//! want a deterministic scheduling policy without interactivity causing extra preemptions
//! between the workload's tasks") keeps the running thread until it blocks or its slice ends. An
//! idle CPU still runs a woken thread at once, so light-load latency is unchanged. Measured
//! effect: docs/benchmarks.md ("Scheduling policy").
//!
//! Set on the main thread before any other thread starts: threads inherit it. The nice value is
//! left as the operator set it: if it is not 0 the policy is not changed (the binding used sets
//! policy and nice together).

use thread_priority::unix::{
    NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
    thread_native_id,
};
use thread_priority::{ThreadPriority, ThreadPriorityValue};

/// `SCHED_BATCH` in Linux's uapi.
const SCHED_BATCH: u32 = 3;

/// The cross-platform priority that thread-priority maps to nice 0 for normal policies.
const NICE_ZERO: u8 = 48;

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Batch,
    /// The process runs at another nice value; nothing was changed.
    NiceLeftAlone(i32),
    /// The policy could not be read or set (e.g. a TEE runtime that does not emulate it).
    Unavailable(String),
}

/// The calling thread's (nice, policy) from /proc.
fn current() -> Option<(i32, u32)> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // proc(5): nice is field 19, policy field 41; `fields[0]` is field 3.
    Some((fields.get(16)?.parse().ok()?, fields.get(38)?.parse().ok()?))
}

/// Put the calling thread (and every thread it starts later) under `SCHED_BATCH`.
pub fn use_batch_policy() -> Outcome {
    let Some((nice, _)) = current() else {
        return Outcome::Unavailable("/proc/thread-self/stat is not readable".into());
    };
    if nice != 0 {
        return Outcome::NiceLeftAlone(nice);
    }
    let Ok(priority) = ThreadPriorityValue::try_from(NICE_ZERO) else {
        return Outcome::Unavailable("no priority value maps to nice 0".into());
    };
    let set = set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Crossplatform(priority),
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch),
    );
    if let Err(e) = set {
        return Outcome::Unavailable(format!("{e:?}"));
    }
    match current() {
        Some((0, SCHED_BATCH)) => Outcome::Batch,
        other => Outcome::Unavailable(format!("after the change: (nice, policy) = {other:?}")),
    }
}

#[cfg(test)]
#[allow(clippy::panic, reason = "test code")]
mod tests {
    use super::*;

    #[test]
    fn the_policy_becomes_batch_and_the_nice_value_stays() {
        // A fresh thread: the policy must not leak into the test harness's threads.
        let seen = std::thread::spawn(|| {
            let before = current();
            let outcome = use_batch_policy();
            // A thread started now inherits the policy, as the runtime's and Python's will.
            let child = std::thread::spawn(current).join().ok().flatten();
            (before, outcome, current(), child)
        })
        .join();
        let Ok((before, outcome, after, child)) = seen else {
            panic!("the test thread panicked");
        };
        match before {
            Some((0, _)) => {
                assert_eq!(outcome, Outcome::Batch);
                assert_eq!(after, Some((0, SCHED_BATCH)));
                assert_eq!(child, Some((0, SCHED_BATCH)), "threads inherit the policy");
            }
            Some((nice, policy)) => {
                assert_eq!(outcome, Outcome::NiceLeftAlone(nice));
                assert_eq!(after, Some((nice, policy)), "nothing changed");
            }
            None => panic!("cannot read /proc/thread-self/stat"),
        }
    }
}
