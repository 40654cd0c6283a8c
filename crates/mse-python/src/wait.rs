//! Waiting on Rust futures from a Python thread, releasing the GIL only when a wait is real, and
//! handing Python-owned bytes to hyper without copying.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;

struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

thread_local! {
    static THREAD_WAKER: Waker = Waker::from(Arc::new(Unpark(thread::current())));
}

/// Drive `fut` to completion on this thread, parking between polls.
pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    THREAD_WAKER.with(|waker| {
        let mut cx = Context::from_waker(waker);
        loop {
            if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                return out;
            }
            thread::park();
        }
    })
}

/// Poll `fut` once holding the GIL (the common case is that it is ready); release the GIL only
/// if it has to wait.
pub(crate) fn wait<F>(py: Python<'_>, fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    let mut fut = pin!(fut);
    let first = THREAD_WAKER.with(|waker| fut.as_mut().poll(&mut Context::from_waker(waker)));
    match first {
        Poll::Ready(out) => out,
        Poll::Pending => py.detach(|| block_on(fut.as_mut())),
    }
}

/// Chunks at least this large are handed to hyper without a copy. Smaller ones are copied: the
/// copy is cheaper than keeping a Python object alive across threads.
pub(crate) const ZERO_COPY_MIN: usize = 4096;

/// Set when a Python object was released on a thread without the GIL; PyO3 parks such releases in
/// a pool that it empties when a thread next re-attaches (see `release_deferred`).
static DEFERRED: AtomicBool = AtomicBool::new(false);

/// Python bytes kept alive while hyper writes them.
struct PyChunk(Option<PyBackedBytes>);

impl AsRef<[u8]> for PyChunk {
    fn as_ref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or_default()
    }
}

impl Drop for PyChunk {
    fn drop(&mut self) {
        drop(self.0.take());
        DEFERRED.store(true, Ordering::Release);
    }
}

/// The bytes of a Python `bytes` object as `Bytes`: zero-copy for large ones.
pub(crate) fn bytes_of(b: &Bound<'_, PyBytes>) -> Bytes {
    let data = b.as_bytes();
    if data.len() < ZERO_COPY_MIN {
        Bytes::copy_from_slice(data)
    } else {
        Bytes::from_owner(PyChunk(Some(PyBackedBytes::from(b.clone()))))
    }
}

/// A Python thread that holds the GIL for long stretches calls this between requests so that
/// objects released by hyper's threads (zero-copy chunks) are freed promptly.
pub(crate) fn release_deferred(py: Python<'_>) {
    if DEFERRED.swap(false, Ordering::Acquire) {
        // Detaching and re-attaching is what makes PyO3 drain its pool of pending releases.
        py.detach(|| ());
    }
}
