//! One ASGI request. Its state is touched by the app's `receive`/`send` on the loop thread only;
//! tokio reaches it through pipes, atomics and wake-ups (the request-body pump, hyper reading the
//! response, the disconnect guard), never through the state lock and never with the GIL.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError, Weak};
use std::task::{Context, Poll, Wake, Waker};

use bytes::Bytes;
use http::{Response, StatusCode};
use pyo3::exceptions::{
    PyConnectionResetError, PyKeyError, PyRuntimeError, PyStopIteration, PyTypeError, PyValueError,
};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use tokio::sync::oneshot;

use super::{Event, LoopCtx, LoopShared};
use crate::body::{Aborted, Gone, PIPE_CAPACITY, Pipe, ResponseBody};
use crate::head::Head;
use crate::http::error_response;
use crate::wait;

/// The request body as the app will `receive` it.
pub(crate) enum RequestSide {
    /// Complete (or absent) already; handed over on the first `receive`.
    Ready(Option<Bytes>),
    /// Arriving through the pump.
    Stream(Arc<Pipe>),
    Done,
}

enum ResponseSide {
    Idle,
    /// `http.response.start` received; the head goes out with the first body message.
    Started(Head),
    Streaming(Arc<Pipe>),
    Done,
    /// The server answered itself (413); what the app sends is dropped.
    Refused,
}

struct State {
    reply: Option<oneshot::Sender<Response<ResponseBody>>>,
    request: RequestSide,
    response: ResponseSide,
    /// Futures of pending `receive()` calls (normally one).
    recv_waiters: Vec<Py<PyAny>>,
    /// Future of a `send()` waiting for the client to take data.
    send_waiter: Option<Py<PyAny>>,
    /// A strong reference to the request's task: asyncio keeps only weak ones.
    task: Option<Py<PyAny>>,
}

pub(crate) struct Exchange {
    shared: Arc<LoopShared>,
    disconnected: AtomicBool,
    over_limit: AtomicBool,
    /// Wakes the loop for this exchange (registered in its pipes).
    waker: Waker,
    state: Mutex<State>,
}

struct ExchangeWaker(Weak<Exchange>);

impl Wake for ExchangeWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(ex) = self.0.upgrade() {
            let shared = ex.shared.clone();
            shared.notify(Event::Wake(ex));
        }
    }
}

fn reentrant() -> PyErr {
    PyRuntimeError::new_err("ASGI receive/send called re-entrantly")
}

impl Exchange {
    pub(crate) fn new(
        shared: Arc<LoopShared>,
        reply: oneshot::Sender<Response<ResponseBody>>,
        request: RequestSide,
    ) -> Arc<Self> {
        Arc::new_cyclic(|weak| Self {
            shared,
            disconnected: AtomicBool::new(false),
            over_limit: AtomicBool::new(false),
            waker: Waker::from(Arc::new(ExchangeWaker(weak.clone()))),
            state: Mutex::new(State {
                reply: Some(reply),
                request,
                response: ResponseSide::Idle,
                recv_waiters: Vec::new(),
                send_waiter: None,
                task: None,
            }),
        })
    }

    /// Only the loop thread locks the state, so contention means re-entrancy (e.g. from a
    /// finalizer): refuse it rather than deadlock.
    fn lock(&self) -> Option<MutexGuard<'_, State>> {
        match self.state.try_lock() {
            Ok(g) => Some(g),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    // --- from tokio ---

    /// The client left before the response head went out.
    pub(crate) fn client_gone(self: &Arc<Self>) {
        self.disconnected.store(true, Ordering::Release);
        self.waker.wake_by_ref();
    }

    pub(crate) fn set_over_limit(&self) {
        self.over_limit.store(true, Ordering::Release);
    }

    // --- from the loop thread ---

    pub(crate) fn set_task(&self, task: Py<PyAny>) {
        if let Some(mut st) = self.lock() {
            st.task = Some(task);
        }
    }

    /// The request could not even start.
    pub(crate) fn fail_unstarted(&self, status: StatusCode) {
        if let Some(mut st) = self.lock()
            && let Some(tx) = st.reply.take()
        {
            let _ = tx.send(error_response(status));
        }
    }

    fn is_disconnected(&self, st: &State) -> bool {
        self.disconnected.load(Ordering::Acquire)
            || matches!(&st.response, ResponseSide::Streaming(p) if p.is_gone())
    }

    fn deliver(&self, st: &mut State, resp: Response<ResponseBody>) {
        if let Some(tx) = st.reply.take()
            && tx.send(resp).is_err()
        {
            self.disconnected.store(true, Ordering::Release);
        }
    }

    /// The next `receive()` message, if there is one without waiting.
    fn poll_receive<'py>(
        &self,
        py: Python<'py>,
        ctx: &LoopCtx,
        st: &mut State,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        if self.is_disconnected(st)
            || matches!(st.response, ResponseSide::Done | ResponseSide::Refused)
        {
            return disconnect(py, ctx).map(Some);
        }
        let (body, more) = match &mut st.request {
            RequestSide::Ready(body) => {
                let body = body.take().unwrap_or_default();
                st.request = RequestSide::Done;
                (body, false)
            }
            RequestSide::Stream(pipe) => match pipe.poll_pop(&mut Context::from_waker(&self.waker))
            {
                Poll::Ready(Some(Ok(chunk))) => {
                    let more = !pipe.is_finished();
                    if !more {
                        st.request = RequestSide::Done;
                    }
                    (chunk, more)
                }
                Poll::Ready(None) => {
                    st.request = RequestSide::Done;
                    (Bytes::new(), false)
                }
                Poll::Ready(Some(Err(Aborted))) => {
                    st.request = RequestSide::Done;
                    if self.over_limit.load(Ordering::Acquire) {
                        tracing::info!(target: "mse_python", "request body over the limit: 413");
                        if matches!(st.response, ResponseSide::Idle | ResponseSide::Started(_)) {
                            self.deliver(st, error_response(StatusCode::PAYLOAD_TOO_LARGE));
                            st.response = ResponseSide::Refused;
                        }
                    }
                    self.disconnected.store(true, Ordering::Release);
                    return disconnect(py, ctx).map(Some);
                }
                Poll::Pending => return Ok(None),
            },
            RequestSide::Done => return Ok(None),
        };
        let k = &ctx.k;
        let msg = PyDict::new(py);
        msg.set_item(&k.type_, &k.http_request)?;
        msg.set_item(&k.body, PyBytes::new(py, &body))?;
        msg.set_item(&k.more_body, more)?;
        Ok(Some(msg))
    }

    pub(crate) fn receive<'py>(
        &self,
        py: Python<'py>,
        ctx: &LoopCtx,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut st = self.lock().ok_or_else(reentrant)?;
        if let Some(msg) = self.poll_receive(py, ctx, &mut st)? {
            return Ok(Bound::new(py, Ready::with(msg.into_any().unbind()))?.into_any());
        }
        let fut = ctx.create_future.bind(py).call0()?;
        st.recv_waiters.push(fut.clone().unbind());
        Ok(fut)
    }

    pub(crate) fn send<'py>(
        &self,
        py: Python<'py>,
        ctx: &LoopCtx,
        message: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let k = &ctx.k;
        let msg = message
            .cast::<PyDict>()
            .map_err(|_| PyTypeError::new_err("an ASGI message must be a dict"))?;
        let kind = msg
            .get_item(&k.type_)?
            .ok_or_else(|| PyKeyError::new_err("ASGI message without \"type\""))?;
        let kind = kind
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err("ASGI message \"type\" must be a str"))?;
        let mut st = self.lock().ok_or_else(reentrant)?;
        match kind.to_str()? {
            "http.response.start" => {
                if !matches!(st.response, ResponseSide::Idle) {
                    if matches!(st.response, ResponseSide::Refused) {
                        return Ok(ctx.ready_none.bind(py).clone().into_any());
                    }
                    return Err(PyRuntimeError::new_err("http.response.start sent twice"));
                }
                st.response = ResponseSide::Started(parse_start(ctx, msg)?);
                Ok(ctx.ready_none.bind(py).clone().into_any())
            }
            "http.response.body" => self.send_body(py, ctx, &mut st, msg),
            other => Err(PyRuntimeError::new_err(format!(
                "unsupported ASGI message type {other:?}"
            ))),
        }
    }

    fn send_body<'py>(
        &self,
        py: Python<'py>,
        ctx: &LoopCtx,
        st: &mut State,
        msg: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let k = &ctx.k;
        if matches!(st.response, ResponseSide::Refused) {
            return Ok(ctx.ready_none.bind(py).clone().into_any());
        }
        if self.is_disconnected(st) {
            return Err(PyConnectionResetError::new_err("the client disconnected"));
        }
        let body = match msg.get_item(&k.body)? {
            None => Bytes::new(),
            Some(b) => wait::bytes_of(
                b.cast::<PyBytes>()
                    .map_err(|_| PyTypeError::new_err("ASGI \"body\" must be bytes"))?,
            ),
        };
        let more = match msg.get_item(&k.more_body)? {
            None => false,
            Some(m) => m.is_truthy()?,
        };
        match std::mem::replace(&mut st.response, ResponseSide::Done) {
            ResponseSide::Idle => {
                st.response = ResponseSide::Idle;
                Err(PyRuntimeError::new_err(
                    "http.response.body sent before http.response.start",
                ))
            }
            ResponseSide::Done | ResponseSide::Refused => Err(PyRuntimeError::new_err(
                "http.response.body sent after the response was complete",
            )),
            ResponseSide::Started(head) if !more => {
                self.deliver(st, head.into_response(ResponseBody::full(body)));
                self.response_done(py, ctx, st)?;
                Ok(ctx.ready_none.bind(py).clone().into_any())
            }
            ResponseSide::Started(head) => {
                let pipe = Pipe::new(PIPE_CAPACITY);
                pipe.set_closer(self.waker.clone());
                let _ = pipe.push(body); // nobody reads it yet
                self.deliver(st, head.into_response(ResponseBody::pipe(pipe.clone())));
                st.response = ResponseSide::Streaming(pipe.clone());
                self.backpressure(py, ctx, st, &pipe)
            }
            ResponseSide::Streaming(pipe) => {
                if pipe.push(body) == Err(Gone) {
                    st.response = ResponseSide::Streaming(pipe);
                    return Err(PyConnectionResetError::new_err("the client disconnected"));
                }
                if !more {
                    pipe.finish();
                    self.response_done(py, ctx, st)?;
                    return Ok(ctx.ready_none.bind(py).clone().into_any());
                }
                st.response = ResponseSide::Streaming(pipe.clone());
                self.backpressure(py, ctx, st, &pipe)
            }
        }
    }

    /// Complete `send()` at once unless the client has not taken what is queued.
    fn backpressure<'py>(
        &self,
        py: Python<'py>,
        ctx: &LoopCtx,
        st: &mut State,
        pipe: &Pipe,
    ) -> PyResult<Bound<'py, PyAny>> {
        if !pipe.is_full() {
            return Ok(ctx.ready_none.bind(py).clone().into_any());
        }
        match pipe.poll_ready(&mut Context::from_waker(&self.waker)) {
            Poll::Ready(Ok(())) => Ok(ctx.ready_none.bind(py).clone().into_any()),
            Poll::Ready(Err(Gone)) => {
                Err(PyConnectionResetError::new_err("the client disconnected"))
            }
            Poll::Pending => {
                let fut = ctx.create_future.bind(py).call0()?;
                st.send_waiter = Some(fut.clone().unbind());
                Ok(fut)
            }
        }
    }

    /// After the last body message: a pending `receive()` now hears `http.disconnect`.
    fn response_done(&self, py: Python<'_>, ctx: &LoopCtx, st: &mut State) -> PyResult<()> {
        st.response = ResponseSide::Done;
        for fut in std::mem::take(&mut st.recv_waiters) {
            resolve(py, &fut, disconnect(py, ctx).map(Bound::into_any));
        }
        Ok(())
    }

    /// The request's task ended, normally (`exc` is `None`) or not.
    pub(crate) fn complete(&self, py: Python<'_>, ctx: &LoopCtx, exc: Option<Bound<'_, PyAny>>) {
        let Some(mut st) = self.lock() else { return };
        st.task = None;
        let gone = self.is_disconnected(&st);
        let response = std::mem::replace(&mut st.response, ResponseSide::Done);
        let status = if self.over_limit.load(Ordering::Acquire) {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        match exc {
            None => match response {
                ResponseSide::Done | ResponseSide::Refused => {}
                ResponseSide::Idle | ResponseSide::Started(_) => {
                    if !gone {
                        tracing::error!(target: "mse_python::app", "the ASGI app returned without sending a response");
                    }
                    self.deliver(&mut st, error_response(status));
                }
                ResponseSide::Streaming(pipe) => {
                    if !gone {
                        tracing::error!(target: "mse_python::app", "the ASGI app returned before the end of its response body");
                    }
                    pipe.abort();
                }
            },
            Some(exc) => {
                let cancelled = exc.is_instance(ctx.cancelled.bind(py)).unwrap_or(false);
                let err = PyErr::from_value(exc);
                if gone || cancelled {
                    tracing::debug!(target: "mse_python", error = %err, "ASGI request ended early (client gone or cancelled)");
                } else {
                    tracing::error!(
                        target: "mse_python::app",
                        headers_sent = matches!(response, ResponseSide::Streaming(_) | ResponseSide::Done),
                        traceback = ?ctx.rt.traceback(py, &err),
                        "the app raised an exception",
                    );
                }
                match response {
                    ResponseSide::Idle | ResponseSide::Started(_) => {
                        self.deliver(&mut st, error_response(status))
                    }
                    ResponseSide::Streaming(pipe) => pipe.abort(),
                    ResponseSide::Done | ResponseSide::Refused => {}
                }
            }
        }
        // The request is over: stop the body pump, answer whoever still waits.
        if let RequestSide::Stream(pipe) = std::mem::replace(&mut st.request, RequestSide::Done) {
            pipe.close_consumer();
        }
        for fut in std::mem::take(&mut st.recv_waiters) {
            resolve(py, &fut, disconnect(py, ctx).map(Bound::into_any));
        }
        if let Some(fut) = st.send_waiter.take() {
            resolve(
                py,
                &fut,
                Err(PyConnectionResetError::new_err("the request is over")),
            );
        }
    }

    /// A pipe or the disconnect guard woke us: complete what can be completed now.
    pub(crate) fn on_wake(&self, py: Python<'_>, ctx: &LoopCtx) {
        let Some(mut st) = self.lock() else { return };
        while !st.recv_waiters.is_empty() {
            match self.poll_receive(py, ctx, &mut st) {
                Ok(None) => break,
                Ok(Some(msg)) => {
                    let is_disconnect = msg
                        .get_item(&ctx.k.type_)
                        .ok()
                        .flatten()
                        .is_some_and(|t| t.is(ctx.k.http_disconnect.bind(py)));
                    let fut = st.recv_waiters.remove(0);
                    if !resolve(py, &fut, Ok(msg.into_any())) && !is_disconnect {
                        // Nobody took it (cancelled): no message may be lost.
                        tracing::debug!(target: "mse_python", "a cancelled receive() dropped a body chunk");
                    }
                    if is_disconnect {
                        for fut in std::mem::take(&mut st.recv_waiters) {
                            resolve(py, &fut, disconnect(py, ctx).map(Bound::into_any));
                        }
                    }
                }
                Err(e) => {
                    let fut = st.recv_waiters.remove(0);
                    resolve(py, &fut, Err(e));
                }
            }
        }
        if let Some(fut) = st.send_waiter.take() {
            let ready = match &st.response {
                ResponseSide::Streaming(pipe) => {
                    pipe.poll_ready(&mut Context::from_waker(&self.waker))
                }
                _ => Poll::Ready(Ok(())),
            };
            match ready {
                Poll::Pending => st.send_waiter = Some(fut),
                Poll::Ready(Ok(())) => {
                    resolve(py, &fut, Ok(py.None().into_bound(py)));
                }
                Poll::Ready(Err(Gone)) => {
                    resolve(
                        py,
                        &fut,
                        Err(PyConnectionResetError::new_err("the client disconnected")),
                    );
                }
            }
        }
    }
}

fn disconnect<'py>(py: Python<'py>, ctx: &LoopCtx) -> PyResult<Bound<'py, PyDict>> {
    let msg = PyDict::new(py);
    msg.set_item(&ctx.k.type_, &ctx.k.http_disconnect)?;
    Ok(msg)
}

/// Complete an asyncio future unless it is already done (cancelled). Whether it was completed.
fn resolve(py: Python<'_>, fut: &Py<PyAny>, value: PyResult<Bound<'_, PyAny>>) -> bool {
    let fut = fut.bind(py);
    if fut
        .call_method0(intern!(py, "done"))
        .and_then(|d| d.is_truthy())
        .unwrap_or(true)
    {
        return false;
    }
    let set = match value {
        Ok(v) => fut.call_method1(intern!(py, "set_result"), (v,)),
        Err(e) => fut.call_method1(intern!(py, "set_exception"), (e.value(py),)),
    };
    set.is_ok()
}

fn parse_start(ctx: &LoopCtx, msg: &Bound<'_, PyDict>) -> PyResult<Head> {
    let k = &ctx.k;
    let status: u16 = msg
        .get_item(&k.status)?
        .ok_or_else(|| PyKeyError::new_err("http.response.start without \"status\""))?
        .extract()?;
    let status = StatusCode::from_u16(status)
        .map_err(|_| PyValueError::new_err(format!("invalid HTTP status {status}")))?;
    let headers = msg.get_item(&k.headers)?.filter(|h| !h.is_none());
    let capacity = headers.as_ref().and_then(|h| h.len().ok()).unwrap_or(0);
    let mut head = Head::new(status, capacity);
    if let Some(headers) = headers {
        for pair in headers.try_iter()? {
            let pair = pair?;
            let (name, value) = (pair.get_item(0)?, pair.get_item(1)?);
            let (Ok(name), Ok(value)) = (name.cast::<PyBytes>(), value.cast::<PyBytes>()) else {
                return Err(PyTypeError::new_err(
                    "ASGI header names and values must be bytes",
                ));
            };
            head.push(name.as_bytes(), value.as_bytes())
                .map_err(|e| PyValueError::new_err(e.0))?;
        }
    }
    Ok(head)
}

/// The `receive`/`send` pair of one request (plus `complete`, called by the driver).
#[pyclass(module = "mse_python", frozen)]
pub(crate) struct Protocol {
    ex: Arc<Exchange>,
    ctx: Arc<LoopCtx>,
}

impl Protocol {
    pub(crate) fn new(ex: Arc<Exchange>, ctx: Arc<LoopCtx>) -> Self {
        Self { ex, ctx }
    }
}

#[pymethods]
impl Protocol {
    fn receive<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.ex.receive(py, &self.ctx)
    }

    fn send<'py>(
        &self,
        py: Python<'py>,
        message: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.ex.send(py, &self.ctx, message)
    }

    #[pyo3(signature = (exc = None))]
    fn complete(&self, py: Python<'_>, exc: Option<Bound<'_, PyAny>>) {
        self.ex.complete(py, &self.ctx, exc);
    }
}

/// An awaitable that is already complete: `await` on it costs no future and no loop iteration.
#[pyclass(module = "mse_python", frozen)]
pub(crate) struct Ready {
    value: Option<Py<PyAny>>,
}

impl Ready {
    pub(crate) fn none() -> Self {
        Self { value: None }
    }

    fn with(value: Py<PyAny>) -> Self {
        Self { value: Some(value) }
    }
}

#[pymethods]
impl Ready {
    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<()> {
        Err(match &self.value {
            None => PyStopIteration::new_err(()),
            Some(v) => PyStopIteration::new_err((v.clone_ref(py),)),
        })
    }
}
