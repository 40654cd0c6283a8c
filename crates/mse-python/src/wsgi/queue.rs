//! The queue between hyper's threads and the WSGI workers, shaped around the GIL.
//!
//! Only one worker runs Python at a time, so a worker takes a job only once it holds the GIL:
//! a job never sits in a thread that is itself waiting for the GIL, and jobs run in the order
//! they arrived. Idle workers sleep here without the GIL. A new job wakes at most one of them,
//! and only if no other woken worker is already on its way; that spare is what runs the queue
//! when the worker holding the GIL blocks in the app (I/O, `time.sleep`). A worker that takes a
//! job and still sees a backlog wakes the next spare, so a backlog never waits on a blocked app.
//!
//! Compared with every idle worker grabbing a job as it arrives, this turns a GIL hand-off per
//! request into one per switch interval (5 ms) under load.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

pub(crate) struct JobQueue<T> {
    inner: Mutex<Inner<T>>,
    wakeup: Condvar,
}

struct Inner<T> {
    jobs: VecDeque<T>,
    /// Workers asleep in `sleep`.
    sleeping: usize,
    /// Wake-ups granted and not yet claimed by a sleeper.
    tokens: usize,
    /// Workers that claimed a wake-up and have not yet looked at the queue (they wait for the
    /// GIL in between).
    woken: usize,
    closed: bool,
}

/// What a worker holding the GIL finds in the queue.
pub(crate) enum Take<T> {
    Job(T),
    /// Nothing to do: call `sleep` (without the GIL).
    Idle,
    /// Closed and drained: the worker exits.
    Closed,
}

impl<T> Inner<T> {
    /// Grant one wake-up if there is work, a sleeper, and nobody already on the way.
    fn wake_spare(&mut self, cv: &Condvar) {
        if !self.jobs.is_empty() && self.tokens + self.woken == 0 && self.sleeping > 0 {
            self.tokens += 1;
            cv.notify_one();
        }
    }
}

impl<T> JobQueue<T> {
    pub(crate) fn new() -> Self {
        Self {
            inner: Mutex::new(Inner {
                jobs: VecDeque::new(),
                sleeping: 0,
                tokens: 0,
                woken: 0,
                closed: false,
            }),
            wakeup: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        // No code panics with the lock held; a poisoned lock still holds consistent counters.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queue a job; `Err` gives it back once the queue is closed.
    pub(crate) fn push(&self, job: T) -> Result<(), T> {
        let mut inner = self.lock();
        if inner.closed {
            return Err(job);
        }
        inner.jobs.push_back(job);
        inner.wake_spare(&self.wakeup);
        Ok(())
    }

    /// Called with the GIL held. `was_woken`: the caller comes straight from a `sleep` that
    /// returned `true`.
    pub(crate) fn take(&self, was_woken: bool) -> Take<T> {
        let mut inner = self.lock();
        if was_woken {
            inner.woken -= 1;
        }
        match inner.jobs.pop_front() {
            Some(job) => {
                inner.wake_spare(&self.wakeup);
                Take::Job(job)
            }
            None if inner.closed => Take::Closed,
            None => {
                inner.sleeping += 1;
                Take::Idle
            }
        }
    }

    /// Called without the GIL after `take` returned `Idle`. Returns whether this worker claimed
    /// a wake-up (pass it to the next `take`).
    pub(crate) fn sleep(&self) -> bool {
        let mut inner = self.lock();
        loop {
            if inner.tokens > 0 {
                inner.tokens -= 1;
                inner.sleeping -= 1;
                inner.woken += 1;
                return true;
            }
            if inner.closed {
                inner.sleeping -= 1;
                return false;
            }
            inner = self
                .wakeup
                .wait(inner)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    #[cfg(test)]
    fn sleeping(&self) -> usize {
        self.lock().sleeping
    }

    /// Refuse new jobs; the workers run what is queued, then `take` returns `Closed`.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.wakeup.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    type Log = Arc<Mutex<Vec<u32>>>;

    fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        m.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A worker as the WSGI pool runs it, with a mutex standing in for the GIL. Job `block`
    /// stands for an app waiting on I/O: it releases the GIL until `wait_for` jobs have run (or
    /// 10 s pass).
    fn worker(q: &JobQueue<u32>, gil: &Mutex<()>, log: &Log, block: u32, wait_for: usize) {
        let mut woken = false;
        let mut held = Some(lock(gil));
        loop {
            match q.take(woken) {
                Take::Job(j) => {
                    woken = false;
                    lock(log).push(j);
                    if j == block {
                        drop(held.take());
                        let deadline = Instant::now() + Duration::from_secs(10);
                        while lock(log).len() < wait_for && Instant::now() < deadline {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        held = Some(lock(gil));
                    }
                }
                Take::Idle => {
                    drop(held.take());
                    woken = q.sleep();
                    held = Some(lock(gil));
                }
                Take::Closed => break,
            }
        }
        drop(held);
    }

    fn pool(
        threads: usize,
        block: u32,
        wait_for: usize,
    ) -> (Arc<JobQueue<u32>>, Log, Vec<std::thread::JoinHandle<()>>) {
        let q = Arc::new(JobQueue::new());
        let gil = Arc::new(Mutex::new(()));
        let log: Log = Arc::default();
        let handles = (0..threads)
            .map(|_| {
                let (q, gil, log) = (q.clone(), gil.clone(), log.clone());
                std::thread::spawn(move || worker(&q, &gil, &log, block, wait_for))
            })
            .collect();
        (q, log, handles)
    }

    fn finish(q: &JobQueue<u32>, handles: Vec<std::thread::JoinHandle<()>>) {
        q.close();
        for h in handles {
            assert!(h.join().is_ok());
        }
    }

    #[test]
    fn jobs_run_in_arrival_order_and_close_drains_the_queue() {
        let (q, log, handles) = pool(4, u32::MAX, 0);
        for j in 0..200 {
            assert!(q.push(j).is_ok());
        }
        finish(&q, handles);
        assert_eq!(q.push(999), Err(999), "a closed queue refuses jobs");
        // One worker at a time holds the GIL and takes the oldest job: FIFO across the pool.
        assert_eq!(*lock(&log), (0..200).collect::<Vec<_>>());
    }

    #[test]
    fn a_backlog_does_not_wait_for_a_blocked_app() {
        // Job 0 waits (GIL released) until jobs 1-4 have run. They were queued at once, so
        // if one wake-up were all they got, they would sit behind job 0 for the full 10 s.
        let (q, log, handles) = pool(3, 0, 5);
        while q.sleeping() < 3 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let start = Instant::now();
        for j in 0..5 {
            assert!(q.push(j).is_ok());
        }
        while lock(&log).len() < 5 && start.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(2));
        }
        finish(&q, handles);
        let log = lock(&log).clone();
        assert_eq!(log.first(), Some(&0));
        assert_eq!(log.len(), 5);
        assert!(
            start.elapsed() < Duration::from_secs(9),
            "jobs 1-4 waited for job 0 ({:?}): {log:?}",
            start.elapsed()
        );
    }
}
