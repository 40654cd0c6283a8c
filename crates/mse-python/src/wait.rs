//! Waiting on Rust futures from a Python thread, releasing the GIL only when a wait is real, and
//! handing Python-owned bytes to hyper without copying.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::{Mutex, PoisonError};
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

/// Poll `fut` once on this thread (its waker unparks this thread).
pub(crate) fn poll_once<F: Future + ?Sized>(fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    THREAD_WAKER.with(|waker| fut.poll(&mut Context::from_waker(waker)))
}

/// Poll `fut` once holding the GIL (the common case is that it is ready); release the GIL only
/// if it has to wait.
pub(crate) fn wait<F>(py: Python<'_>, fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    let mut fut = pin!(fut);
    match poll_once(fut.as_mut()) {
        Poll::Ready(out) => out,
        Poll::Pending => py.detach(|| block_on(fut.as_mut())),
    }
}

/// Chunks at least this large are handed to hyper without a copy. Smaller ones are copied: the
/// copy is cheaper than keeping a Python object alive across threads.
pub(crate) const ZERO_COPY_MIN: usize = 4096;

/// Python bytes that hyper's threads are done with, to be released by the next thread that holds
/// the GIL anyway. Dropping them on a tokio thread would park them in PyO3's pool, which only a
/// thread *attaching* empties; a worker that holds the GIL for life would have to detach to
/// empty it, handing the GIL to another worker each time.
static DEFERRED: Mutex<Vec<PyBackedBytes>> = Mutex::new(Vec::new());

/// Python bytes kept alive while hyper writes them.
struct PyChunk(Option<PyBackedBytes>);

impl AsRef<[u8]> for PyChunk {
    fn as_ref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or_default()
    }
}

impl Drop for PyChunk {
    fn drop(&mut self) {
        if let Some(bytes) = self.0.take() {
            DEFERRED
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(bytes);
        }
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
/// bytes released by hyper's threads (zero-copy chunks) are freed promptly.
pub(crate) fn release_deferred(_py: Python<'_>) {
    let released = std::mem::take(&mut *DEFERRED.lock().unwrap_or_else(PoisonError::into_inner));
    // With the GIL held (the `Python` token proves it), each drop is an immediate decref.
    drop(released);
}
