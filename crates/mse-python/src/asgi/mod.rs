//! The ASGI server: one asyncio event loop on a dedicated Python thread. Tokio threads never take
//! the GIL: they put requests and wake-ups on a queue and, only when the loop is not already due
//! to look, write one byte to a socket the loop watches (`add_reader`). The loop thread drains
//! the queue in a batch, builds scopes, and runs each request as an asyncio task whose `receive`
//! and `send` complete at once whenever they can (no future, no extra loop iteration).

mod exchange;
mod scope;

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, Sender};
use http::request::Parts;
use http::{Response, StatusCode};
use hyper::body::Incoming;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule, PyTuple};
use tokio::sync::{mpsc, oneshot};

use crate::body::{PIPE_CAPACITY, Pipe, ResponseBody};
use crate::config::{ConnInfo, EventLoop, PythonConfig};
use crate::error::{Error, Result};
use crate::http::{RequestBody, error_response};
use crate::interpreter::Runtime;
use crate::wait;

use exchange::{Exchange, Protocol, Ready, RequestSide};
use scope::ScopeBuilder;

/// How long shutdown lets running requests finish before cancelling them.
const SHUTDOWN_GRACE_SECONDS: f64 = 10.0;

interned! {
    Keys {
        type_ = "type",
        body = "body",
        more_body = "more_body",
        status = "status",
        headers = "headers",
        http_request = "http.request",
        http_disconnect = "http.disconnect",
        asgi = "asgi",
        http_version = "http_version",
        server = "server",
        client = "client",
        scheme = "scheme",
        method = "method",
        root_path = "root_path",
        path = "path",
        raw_path = "raw_path",
        query_string = "query_string",
        state = "state",
        http = "http",
        https = "https",
    }
}

/// What tokio threads hand to the loop.
pub(crate) enum Event {
    Request(Box<NewRequest>),
    /// Something changed for this request (body arrived, client took data or left).
    Wake(Arc<Exchange>),
    Shutdown,
}

pub(crate) struct NewRequest {
    ex: Arc<Exchange>,
    parts: Parts,
    conn: ConnInfo,
}

/// The tokio side's handle on the loop.
pub(crate) struct LoopShared {
    tx: Sender<Event>,
    wake: UnixStream,
    /// A wake-up byte is in flight: later events need not write another.
    pending: AtomicBool,
}

impl LoopShared {
    pub(crate) fn notify(&self, ev: Event) {
        if self.tx.send(ev).is_ok() && !self.pending.swap(true, Ordering::AcqRel) {
            // Non-blocking: if the socket buffer were full, a wake-up is pending anyway.
            let _ = (&self.wake).write(&[1]);
        }
    }
}

/// Everything the loop thread needs per request, built once.
pub(crate) struct LoopCtx {
    rt: &'static Runtime,
    app: Py<PyAny>,
    create_future: Py<PyAny>,
    create_task: Py<PyAny>,
    run_http: Py<PyAny>,
    /// `await`-able that completes at once with `None`.
    ready_none: Py<Ready>,
    cancelled: Py<PyAny>,
    k: Keys,
    /// The lifespan state (copied into each request's scope), when the app uses lifespan.
    state: Option<Py<PyDict>>,
}

pub(crate) struct Server {
    shared: Arc<LoopShared>,
    closed: AtomicBool,
    max_body: u64,
    exited: tokio::sync::Mutex<mpsc::UnboundedReceiver<()>>,
}

impl Server {
    /// Start the loop thread and run the lifespan startup; returns once the app is ready.
    pub(crate) fn start(
        py: Python<'_>,
        rt: &'static Runtime,
        app: Py<PyAny>,
        cfg: &PythonConfig,
    ) -> Result<Self> {
        let thread_err = |source| Error::Thread {
            name: "mse-asgi-loop".into(),
            source,
        };
        let (wake_tx, wake_rx) = UnixStream::pair().map_err(thread_err)?;
        wake_tx.set_nonblocking(true).map_err(thread_err)?;
        wake_rx.set_nonblocking(true).map_err(thread_err)?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(LoopShared {
            tx,
            wake: wake_tx,
            pending: AtomicBool::new(false),
        });
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (exit_tx, exit_rx) = mpsc::unbounded_channel::<()>();
        let loop_shared = shared.clone();
        let event_loop = cfg.event_loop;
        std::thread::Builder::new()
            .name("mse-asgi-loop".into())
            .spawn(move || {
                let _exit = exit_tx;
                run_loop(rt, loop_shared, app, event_loop, rx, wake_rx, &ready_tx);
            })
            .map_err(thread_err)?;
        match py.detach(move || ready_rx.recv()) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(Error::Startup {
                    message: "the event loop thread ended during startup".into(),
                });
            }
        }
        Ok(Self {
            shared,
            closed: AtomicBool::new(false),
            max_body: cfg.max_body,
            exited: tokio::sync::Mutex::new(exit_rx),
        })
    }

    pub(crate) async fn submit(
        &self,
        parts: Parts,
        body: RequestBody,
        conn: ConnInfo,
    ) -> Response<ResponseBody> {
        if self.closed.load(Ordering::Acquire) {
            return error_response(StatusCode::SERVICE_UNAVAILABLE);
        }
        let (reply, rx) = oneshot::channel();
        let (side, stream) = match body {
            RequestBody::Empty => (RequestSide::Ready(None), None),
            RequestBody::Full(b) => (RequestSide::Ready(Some(b)), None),
            RequestBody::Stream(incoming) => {
                let pipe = Pipe::new(PIPE_CAPACITY);
                (RequestSide::Stream(pipe.clone()), Some((incoming, pipe)))
            }
        };
        let ex = Exchange::new(self.shared.clone(), reply, side);
        if let Some((incoming, pipe)) = stream {
            tokio::spawn(pump(incoming, pipe, ex.clone(), self.max_body));
        }
        self.shared.notify(Event::Request(Box::new(NewRequest {
            ex: ex.clone(),
            parts,
            conn,
        })));
        // If hyper drops this future (the client left), the app hears `http.disconnect`.
        let mut guard = DisconnectGuard(Some(ex));
        let resp = rx
            .await
            .unwrap_or_else(|_| error_response(StatusCode::SERVICE_UNAVAILABLE));
        guard.0 = None;
        resp
    }

    /// New requests get 503; running ones get a grace period; then the lifespan shutdown.
    pub(crate) async fn shutdown(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.shared.notify(Event::Shutdown);
        }
        let mut exited = self.exited.lock().await;
        while exited.recv().await.is_some() {}
    }
}

struct DisconnectGuard(Option<Arc<Exchange>>);

impl Drop for DisconnectGuard {
    fn drop(&mut self) {
        if let Some(ex) = self.0.take() {
            ex.client_gone();
        }
    }
}

/// Feed a streamed request body to the app as it asks for it (the pipe's capacity is the window).
async fn pump(mut body: Incoming, pipe: Arc<Pipe>, ex: Arc<Exchange>, limit: u64) {
    use http_body_util::BodyExt;
    let mut received: u64 = 0;
    loop {
        if std::future::poll_fn(|cx| pipe.poll_ready(cx))
            .await
            .is_err()
        {
            return;
        }
        let frame = tokio::select! {
            frame = body.frame() => frame,
            () = std::future::poll_fn(|cx| pipe.poll_gone(cx)) => return,
        };
        match frame {
            None => return pipe.finish(),
            Some(Err(_)) => return pipe.abort(),
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                received += data.len() as u64;
                if received > limit {
                    ex.set_over_limit();
                    return pipe.abort();
                }
                if pipe.push(data).is_err() {
                    return;
                }
            }
        }
    }
}

/// The loop thread: set up, lifespan startup, serve until shutdown, drain, lifespan shutdown.
fn run_loop(
    rt: &'static Runtime,
    shared: Arc<LoopShared>,
    app: Py<PyAny>,
    kind: EventLoop,
    rx: Receiver<Event>,
    wake_rx: UnixStream,
    ready: &std::sync::mpsc::Sender<Result<()>>,
) {
    Python::attach(|py| {
        let fail = |e: PyErr| Error::Startup {
            message: rt.traceback(py, &e),
        };
        let setup = (|| -> PyResult<_> {
            let code = std::ffi::CString::new(include_str!("driver.py"))
                .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
            let driver =
                PyModule::from_code(py, &code, c"<mse-python asgi driver>", c"_mse_asgi_driver")?;
            let (event_loop, name) = driver
                .call_method1("new_event_loop", (kind.as_str(),))?
                .extract::<(Bound<'_, PyAny>, String)>()?;
            tracing::info!(target: "mse_python", event_loop = %name, "ASGI event loop");
            py.import("asyncio")?
                .call_method1("set_event_loop", (&event_loop,))?;
            Ok((driver, event_loop))
        })();
        let (driver, event_loop) = match setup {
            Ok(v) => v,
            Err(e) => {
                let _ = ready.send(Err(fail(e)));
                return;
            }
        };
        let started = driver
            .getattr("startup")
            .and_then(|f| f.call1((app.bind(py),)))
            .and_then(|coro| event_loop.call_method1("run_until_complete", (coro,)))
            .and_then(|r| r.cast_into::<PyTuple>().map_err(PyErr::from));
        let (lifespan, outcome, detail) = match started.and_then(|t| {
            Ok((
                t.get_item(0)?,
                t.get_item(1)?.extract::<String>()?,
                t.get_item(2)?.extract::<Option<String>>()?,
            ))
        }) {
            Ok(v) => v,
            Err(e) => {
                let _ = ready.send(Err(fail(e)));
                let _ = event_loop.call_method0("close");
                return;
            }
        };
        match outcome.as_str() {
            "ok" => {}
            "unsupported" => tracing::info!(
                target: "mse_python",
                reason = detail.as_deref().unwrap_or(""),
                "the ASGI app does not support lifespan; serving it without"
            ),
            _ => {
                let _ = ready.send(Err(Error::Startup {
                    message: detail.unwrap_or_default(),
                }));
                let _ = event_loop.call_method0("close");
                return;
            }
        }
        let ctx = (|| -> PyResult<LoopCtx> {
            let supported = lifespan.getattr("supported")?.is_truthy()?;
            let state = if supported {
                Some(lifespan.getattr("state")?.cast_into::<PyDict>()?.unbind())
            } else {
                None
            };
            Ok(LoopCtx {
                rt,
                app: app.clone_ref(py),
                create_future: event_loop.getattr("create_future")?.unbind(),
                create_task: event_loop.getattr("create_task")?.unbind(),
                run_http: driver.getattr("run_http")?.unbind(),
                ready_none: Py::new(py, Ready::none())?,
                cancelled: py.import("asyncio")?.getattr("CancelledError")?.unbind(),
                k: Keys::new(py),
                state,
            })
        })();
        let ctx = match ctx {
            Ok(c) => Arc::new(c),
            Err(e) => {
                let _ = ready.send(Err(fail(e)));
                return;
            }
        };
        let fd = wake_rx.as_raw_fd();
        let inbox = Inbox {
            shared,
            rx,
            wake_rx,
            scope: ScopeBuilder::new(py, &ctx.k),
            ctx: ctx.clone(),
            event_loop: event_loop.clone().unbind(),
        };
        if let Err(e) =
            Py::new(py, inbox).and_then(|inbox| event_loop.call_method1("add_reader", (fd, inbox)))
        {
            let _ = ready.send(Err(fail(e)));
            return;
        }
        let _ = ready.send(Ok(()));

        if let Err(e) = event_loop.call_method0("run_forever") {
            tracing::error!(target: "mse_python", traceback = ?rt.traceback(py, &e), "the ASGI event loop failed");
        }
        let _ = event_loop.call_method1("remove_reader", (fd,));
        let stopped = driver
            .getattr("shutdown")
            .and_then(|f| f.call1((&lifespan, SHUTDOWN_GRACE_SECONDS)))
            .and_then(|coro| event_loop.call_method1("run_until_complete", (coro,)))
            .and_then(|r| r.extract::<(String, Option<String>)>());
        match stopped {
            Ok((outcome, _)) if outcome == "ok" => {
                tracing::info!(target: "mse_python", "ASGI app shut down")
            }
            Ok((_, detail)) => tracing::error!(
                target: "mse_python::app",
                message = detail.unwrap_or_default(),
                "the ASGI app failed its lifespan shutdown"
            ),
            Err(e) => {
                tracing::error!(target: "mse_python", traceback = ?rt.traceback(py, &e), "ASGI shutdown failed")
            }
        }
        let _ = event_loop.call_method0("close");
    });
}

/// The loop's reader callback: drains the queue.
#[pyclass(module = "mse_python")]
struct Inbox {
    shared: Arc<LoopShared>,
    rx: Receiver<Event>,
    wake_rx: UnixStream,
    scope: ScopeBuilder,
    ctx: Arc<LoopCtx>,
    event_loop: Py<PyAny>,
}

#[pymethods]
impl Inbox {
    fn __call__(&mut self, py: Python<'_>) {
        let mut buf = [0u8; 64];
        while matches!((&self.wake_rx).read(&mut buf), Ok(n) if n > 0) {}
        // Reset before draining: an event queued after this point writes a new wake-up byte.
        self.shared.pending.swap(false, Ordering::AcqRel);
        while let Ok(ev) = self.rx.try_recv() {
            match ev {
                Event::Request(req) => self.start(py, *req),
                Event::Wake(ex) => ex.on_wake(py, &self.ctx),
                Event::Shutdown => {
                    if let Err(e) = self.event_loop.call_method0(py, "stop") {
                        tracing::error!(target: "mse_python", error = %e, "cannot stop the ASGI loop");
                    }
                }
            }
        }
        wait::release_deferred(py);
    }
}

impl Inbox {
    fn start(&mut self, py: Python<'_>, req: NewRequest) {
        let NewRequest { ex, parts, conn } = req;
        let ctx = &self.ctx;
        let started = self.scope.build(py, ctx, &parts, &conn).and_then(|scope| {
            let proto = Py::new(py, Protocol::new(ex.clone(), ctx.clone()))?;
            let coro = ctx
                .run_http
                .bind(py)
                .call1((ctx.app.bind(py), scope, proto))?;
            ctx.create_task.bind(py).call1((coro,))
        });
        match started {
            Ok(task) => ex.set_task(task.unbind()),
            Err(e) => {
                tracing::error!(target: "mse_python", traceback = ?ctx.rt.traceback(py, &e), "cannot start an ASGI request");
                ex.fail_unstarted(StatusCode::INTERNAL_SERVER_ERROR);
            }
        }
    }
}
