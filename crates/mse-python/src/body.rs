//! Bodies between hyper and Python: a bounded byte [`Pipe`] (one producer, one consumer, each of
//! which may wait through a `Waker`), and [`ResponseBody`], what the node hands to hyper.
//!
//! The same pipe serves a WSGI worker pushing response chunks (it waits by parking its thread), an
//! ASGI task (it waits through the event loop) and the ASGI request-body pump (a tokio task).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

/// Bytes a pipe holds before its producer must wait: enough for a few large chunks in flight,
/// small enough that a slow client pins little memory per request.
pub(crate) const PIPE_CAPACITY: usize = 256 * 1024;

/// The consumer went away (client disconnected); the producer should stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gone;

/// The producer failed mid-body; the consumer must not treat what it got as complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Aborted;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Open,
    Finished,
    Aborted,
}

struct State {
    chunks: VecDeque<Bytes>,
    buffered: usize,
    end: End,
    consumer_gone: bool,
    consumer: Option<Waker>,
    producer: Option<Waker>,
    /// Told when the consumer goes away (the ASGI side, to answer `http.disconnect`).
    closer: Option<Waker>,
}

pub(crate) struct Pipe {
    state: Mutex<State>,
    capacity: usize,
}

fn store(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(w) if w.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

impl Pipe {
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                chunks: VecDeque::new(),
                buffered: 0,
                end: End::Open,
                consumer_gone: false,
                consumer: None,
                producer: None,
                closer: None,
            }),
            capacity,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No critical section below can panic; a poisoned lock still holds consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    // --- producer side ---

    /// Queue a chunk. Never waits: the producer calls [`Pipe::poll_ready`] afterwards, so the
    /// pipe holds at most `capacity` plus one chunk.
    pub(crate) fn push(&self, chunk: Bytes) -> Result<(), Gone> {
        let waker = {
            let mut s = self.lock();
            if s.consumer_gone {
                return Err(Gone);
            }
            if chunk.is_empty() {
                return Ok(());
            }
            s.buffered += chunk.len();
            s.chunks.push_back(chunk);
            s.consumer.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Ready when the pipe has room again (or the consumer is gone).
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), Gone>> {
        let mut s = self.lock();
        if s.consumer_gone {
            return Poll::Ready(Err(Gone));
        }
        if s.buffered < self.capacity {
            return Poll::Ready(Ok(()));
        }
        store(&mut s.producer, cx.waker());
        Poll::Pending
    }

    /// Ready once the consumer is gone (a producer waiting on its own source watches this too).
    pub(crate) fn poll_gone(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.lock();
        if s.consumer_gone {
            return Poll::Ready(());
        }
        store(&mut s.producer, cx.waker());
        Poll::Pending
    }

    /// Who to tell when the consumer goes away.
    pub(crate) fn set_closer(&self, waker: Waker) {
        self.lock().closer = Some(waker);
    }

    /// The body ended and everything in it was taken.
    pub(crate) fn is_finished(&self) -> bool {
        let s = self.lock();
        s.end == End::Finished && s.chunks.is_empty()
    }

    /// Whether the pipe is at capacity (the producer should wait before pushing more).
    pub(crate) fn is_full(&self) -> bool {
        self.lock().buffered >= self.capacity
    }

    pub(crate) fn is_gone(&self) -> bool {
        self.lock().consumer_gone
    }

    /// The body is complete.
    pub(crate) fn finish(&self) {
        self.end(End::Finished);
    }

    /// The body is incomplete and will stay so: the consumer gets an error.
    pub(crate) fn abort(&self) {
        self.end(End::Aborted);
    }

    fn end(&self, end: End) {
        let waker = {
            let mut s = self.lock();
            if s.end == End::Open {
                s.end = end;
            }
            s.consumer.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    // --- consumer side ---

    pub(crate) fn poll_pop(&self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Aborted>>> {
        match self.pop(cx.waker()) {
            Popped::Chunk(b) => Poll::Ready(Some(Ok(b))),
            Popped::Aborted => Poll::Ready(Some(Err(Aborted))),
            Popped::End => Poll::Ready(None),
            Popped::Empty => Poll::Pending,
        }
    }

    fn pop(&self, waker: &Waker) -> Popped {
        let (out, producer) = {
            let mut s = self.lock();
            match s.chunks.pop_front() {
                Some(chunk) => {
                    let was_full = s.buffered >= self.capacity;
                    s.buffered -= chunk.len();
                    let producer = if was_full && s.buffered < self.capacity {
                        s.producer.take()
                    } else {
                        None
                    };
                    (Popped::Chunk(chunk), producer)
                }
                None if s.end == End::Finished => return Popped::End,
                // What was sent before the failure still goes out; then the error.
                None if s.end == End::Aborted => return Popped::Aborted,
                None => {
                    store(&mut s.consumer, waker);
                    return Popped::Empty;
                }
            }
        };
        if let Some(w) = producer {
            w.wake();
        }
        out
    }

    /// The consumer stops reading (dropped body, finished request).
    pub(crate) fn close_consumer(&self) {
        let (producer, closer) = {
            let mut s = self.lock();
            if s.consumer_gone {
                return;
            }
            s.consumer_gone = true;
            s.chunks.clear();
            s.buffered = 0;
            (s.producer.take(), s.closer.take())
        };
        for w in [producer, closer].into_iter().flatten() {
            w.wake();
        }
    }
}

enum Popped {
    Chunk(Bytes),
    End,
    Aborted,
    Empty,
}

/// The body ended early because the app failed while producing it; hyper then aborts the
/// connection so that the client cannot take a truncated body for a complete one.
#[derive(Debug, thiserror::Error)]
#[error("the app failed while producing the response body")]
pub struct BodyError;

/// The body of a response from [`PyApp::handle`](crate::PyApp::handle).
pub struct ResponseBody {
    kind: Kind,
}

enum Kind {
    Empty,
    Full(Bytes),
    Pipe(Reader),
}

/// The consumer end of a pipe; dropping it tells the producer the client is gone.
struct Reader(Arc<Pipe>);

impl Drop for Reader {
    fn drop(&mut self) {
        self.0.close_consumer();
    }
}

impl ResponseBody {
    pub fn empty() -> Self {
        Self { kind: Kind::Empty }
    }

    pub fn full(data: impl Into<Bytes>) -> Self {
        let data = data.into();
        if data.is_empty() {
            Self::empty()
        } else {
            Self {
                kind: Kind::Full(data),
            }
        }
    }

    pub(crate) fn pipe(pipe: Arc<Pipe>) -> Self {
        Self {
            kind: Kind::Pipe(Reader(pipe)),
        }
    }
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Empty => f.write_str("ResponseBody::Empty"),
            Kind::Full(b) => write!(f, "ResponseBody::Full({} bytes)", b.len()),
            Kind::Pipe(_) => f.write_str("ResponseBody::Stream"),
        }
    }
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        match &mut this.kind {
            Kind::Empty => Poll::Ready(None),
            Kind::Full(_) => match std::mem::replace(&mut this.kind, Kind::Empty) {
                Kind::Full(b) => Poll::Ready(Some(Ok(Frame::data(b)))),
                _ => Poll::Ready(None),
            },
            Kind::Pipe(reader) => match reader.0.poll_pop(cx) {
                Poll::Ready(Some(Ok(b))) => Poll::Ready(Some(Ok(Frame::data(b)))),
                Poll::Ready(Some(Err(Aborted))) => Poll::Ready(Some(Err(BodyError))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.kind, Kind::Empty)
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Full(b) => SizeHint::with_exact(b.len() as u64),
            Kind::Pipe(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    #[test]
    fn chunks_come_out_in_order_then_end() {
        let p = Pipe::new(1024);
        p.push(Bytes::from_static(b"ab")).unwrap();
        p.push(Bytes::from_static(b"")).unwrap();
        p.push(Bytes::from_static(b"cd")).unwrap();
        p.finish();
        let (_, w) = counting();
        let mut cx = Context::from_waker(&w);
        assert_eq!(
            p.poll_pop(&mut cx),
            Poll::Ready(Some(Ok(Bytes::from_static(b"ab"))))
        );
        assert_eq!(
            p.poll_pop(&mut cx),
            Poll::Ready(Some(Ok(Bytes::from_static(b"cd"))))
        );
        assert_eq!(p.poll_pop(&mut cx), Poll::Ready(None));
    }

    #[test]
    fn a_full_pipe_makes_the_producer_wait_until_the_consumer_drains_it() {
        let p = Pipe::new(4);
        let (producer, pw) = counting();
        let (consumer, cw) = counting();
        p.push(Bytes::from_static(b"12345")).unwrap();
        assert!(p.poll_ready(&mut Context::from_waker(&pw)).is_pending());
        assert_eq!(producer.0.load(Ordering::SeqCst), 0);
        assert!(p.poll_pop(&mut Context::from_waker(&cw)).is_ready());
        assert_eq!(
            producer.0.load(Ordering::SeqCst),
            1,
            "draining below capacity wakes the producer"
        );
        assert_eq!(
            p.poll_ready(&mut Context::from_waker(&pw)),
            Poll::Ready(Ok(()))
        );
        assert!(p.poll_pop(&mut Context::from_waker(&cw)).is_pending());
        p.push(Bytes::from_static(b"x")).unwrap();
        assert_eq!(
            consumer.0.load(Ordering::SeqCst),
            1,
            "a push wakes the waiting consumer"
        );
    }

    #[test]
    fn a_gone_consumer_stops_the_producer() {
        let p = Pipe::new(4);
        let (producer, pw) = counting();
        p.push(Bytes::from_static(b"12345")).unwrap();
        assert!(p.poll_ready(&mut Context::from_waker(&pw)).is_pending());
        p.close_consumer();
        assert_eq!(producer.0.load(Ordering::SeqCst), 1);
        assert_eq!(p.push(Bytes::from_static(b"x")), Err(Gone));
        assert_eq!(
            p.poll_ready(&mut Context::from_waker(&pw)),
            Poll::Ready(Err(Gone))
        );
    }

    #[test]
    fn an_aborted_body_is_an_error_not_an_end() {
        let p = Pipe::new(4);
        p.push(Bytes::from_static(b"ab")).unwrap();
        p.abort();
        let (_, w) = counting();
        let mut cx = Context::from_waker(&w);
        assert_eq!(
            p.poll_pop(&mut cx),
            Poll::Ready(Some(Ok(Bytes::from_static(b"ab"))))
        );
        assert_eq!(p.poll_pop(&mut cx), Poll::Ready(Some(Err(Aborted))));
    }
}
