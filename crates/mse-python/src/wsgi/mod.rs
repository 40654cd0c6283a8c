//! The WSGI server: a fixed pool of Python threads, each attached to the interpreter for life,
//! fed by a queue (`queue`). A worker holds the GIL while it runs requests back to back and
//! releases it only to wait (for work, for the request body, for the client to take the response).

mod environ;
mod input;
mod queue;
mod response;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Bytes, BytesMut};
use http::request::Parts;
use http::{Method, Response, StatusCode};
use pyo3::exceptions::{PyAttributeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use tokio::sync::{mpsc, oneshot};

use crate::body::ResponseBody;
use crate::config::{ConnInfo, PythonConfig};
use crate::error::{Error, Result};
use crate::http::{RequestBody, error_response};
use crate::interpreter::Runtime;
use crate::wait;

use environ::{Builder, Template};
use input::Input;
use queue::{JobQueue, Take};
use response::{FileWrapper, Next, StartResponse};

/// One request on its way to a worker.
struct Job {
    parts: Parts,
    body: RequestBody,
    /// For a streamed body: the runtime serving the connection (see `Input::fill`).
    rt: Option<tokio::runtime::Handle>,
    conn: ConnInfo,
    reply: oneshot::Sender<Response<ResponseBody>>,
}

/// What every worker shares.
struct Shared {
    rt: &'static Runtime,
    app: Py<PyAny>,
    template: Template,
    max_body: u64,
}

pub(crate) struct Server {
    queue: Arc<JobQueue<Job>>,
    closed: AtomicBool,
    /// Closes when the last worker exits (each holds a sender and never sends).
    exited: tokio::sync::Mutex<mpsc::UnboundedReceiver<()>>,
}

impl Server {
    pub(crate) fn start(
        py: Python<'_>,
        rt: &'static Runtime,
        app: Py<PyAny>,
        cfg: &PythonConfig,
    ) -> Result<Self> {
        let template = Template::new(py).map_err(|e| Error::Interpreter {
            message: e.to_string(),
            traceback: rt.traceback(py, &e),
        })?;
        let shared = Arc::new(Shared {
            rt,
            app,
            template,
            max_body: cfg.max_body,
        });
        let queue = Arc::new(JobQueue::new());
        let (exit_tx, exit_rx) = mpsc::unbounded_channel();
        for i in 0..cfg.threads {
            let (shared, jobs, exit_tx) = (shared.clone(), queue.clone(), exit_tx.clone());
            let name = format!("mse-wsgi-{i}");
            let spawned = std::thread::Builder::new()
                .name(name.clone())
                .spawn(move || worker(&shared, &jobs, exit_tx));
            if let Err(source) = spawned {
                queue.close(); // let the workers already started exit
                return Err(Error::Thread { name, source });
            }
        }
        Ok(Self {
            queue,
            closed: AtomicBool::new(false),
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
        let rt = matches!(body, RequestBody::Stream(_))
            .then(tokio::runtime::Handle::try_current)
            .and_then(std::result::Result::ok);
        if self
            .queue
            .push(Job {
                parts,
                body,
                rt,
                conn,
                reply,
            })
            .is_err()
        {
            return error_response(StatusCode::SERVICE_UNAVAILABLE);
        }
        // A worker always answers; a dropped sender means the request could not be run at all.
        rx.await
            .unwrap_or_else(|_| error_response(StatusCode::INTERNAL_SERVER_ERROR))
    }

    /// Stop taking requests, let the workers finish what is queued, and wait for them.
    pub(crate) async fn shutdown(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.queue.close();
        }
        let mut exited = self.exited.lock().await;
        while exited.recv().await.is_some() {}
    }
}

fn worker(shared: &Shared, queue: &JobQueue<Job>, _exit: mpsc::UnboundedSender<()>) {
    Python::attach(|py| {
        let mut builder = Builder::new();
        let mut woken = false;
        loop {
            wait::release_deferred(py);
            // Requests already queued run back to back under the GIL; only an empty queue makes
            // the worker release it.
            match queue.take(woken) {
                Take::Job(job) => {
                    woken = false;
                    serve(py, shared, &mut builder, job);
                }
                Take::Idle => woken = py.detach(|| queue.sleep()),
                Take::Closed => break,
            }
        }
    });
}

fn serve(py: Python<'_>, shared: &Shared, builder: &mut Builder, job: Job) {
    let Job {
        parts,
        body,
        rt,
        conn,
        reply,
    } = job;
    if reply.is_closed() {
        return; // the client left while the request was queued
    }
    let head_only = parts.method == Method::HEAD;
    let unsized_body = matches!(body, RequestBody::Stream(_))
        && !parts.headers.contains_key(http::header::CONTENT_LENGTH);
    let (input, sr) = match (
        Bound::new(py, Input::new(body, shared.max_body, rt)),
        Bound::new(py, StartResponse::new(reply, head_only)),
    ) {
        (Ok(i), Ok(s)) => (i, s),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(target: "mse_python", error = %e, "cannot set up a WSGI request");
            return;
        }
    };
    let outcome = builder
        .build(
            py,
            &shared.template,
            &parts,
            &conn,
            input.as_any(),
            unsized_body,
        )
        .and_then(|environ| shared.app.bind(py).call1((environ, &sr)))
        .and_then(|iterable| {
            let sent = drive(py, &sr, &iterable);
            // PEP 3333: close() is called however the iteration ended.
            let closed = close(py, &iterable);
            match (sent, closed) {
                (Err(e), Err(close_err)) => {
                    tracing::error!(
                        target: "mse_python::app",
                        traceback = ?shared.rt.traceback(py, &close_err),
                        "the app's close() raised (after an earlier error)"
                    );
                    Err(e)
                }
                (sent, closed) => sent.and(closed),
            }
        });
    input.borrow_mut().release();
    if let Err(err) = outcome {
        fail(py, shared, &sr, &input, &parts, &err);
    }
}

/// Send the app's body: all at once for a list or tuple, in large blocks for a file wrapper,
/// chunk by chunk otherwise.
fn drive(
    py: Python<'_>,
    sr: &Bound<'_, StartResponse>,
    iterable: &Bound<'_, PyAny>,
) -> PyResult<()> {
    if let Ok(list) = iterable.cast_exact::<PyList>() {
        return send_all(py, sr, list.iter());
    }
    if let Ok(tuple) = iterable.cast_exact::<PyTuple>() {
        return send_all(py, sr, tuple.iter());
    }
    if let Ok(wrapper) = iterable.cast::<FileWrapper>() {
        let wrapper = wrapper.get();
        loop {
            let block = wrapper.read_block(py)?;
            if block.as_bytes().is_empty() {
                break;
            }
            if sr.borrow_mut().send(py, wait::bytes_of(&block))? == Next::Stop {
                return Ok(());
            }
        }
        return sr.borrow_mut().finish(None);
    }
    for item in iterable.try_iter()? {
        let chunk = chunk_of(&item?)?;
        if chunk.is_empty() {
            continue; // PEP 3333: the head waits for the first non-empty chunk
        }
        if sr.borrow_mut().send(py, chunk)? == Next::Stop {
            return Ok(());
        }
    }
    sr.borrow_mut().finish(None)
}

fn send_all<'py>(
    py: Python<'py>,
    sr: &Bound<'py, StartResponse>,
    items: impl Iterator<Item = Bound<'py, PyAny>>,
) -> PyResult<()> {
    if sr.borrow().committed() {
        // write() already started a stream: the list continues it.
        for item in items {
            let chunk = chunk_of(&item)?;
            if !chunk.is_empty() && sr.borrow_mut().send(py, chunk)? == Next::Stop {
                return Ok(());
            }
        }
        return sr.borrow_mut().finish(None);
    }
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    for item in items {
        let b = item
            .cast_into::<PyBytes>()
            .map_err(|e| not_bytes(&e.into_inner()))?;
        if b.as_bytes().is_empty() {
            continue;
        }
        match (&first, &mut joined) {
            (None, _) => first = Some(wait::bytes_of(&b)),
            (Some(f), None) => {
                let mut buf = BytesMut::with_capacity(f.len() + b.as_bytes().len());
                buf.extend_from_slice(f);
                buf.extend_from_slice(b.as_bytes());
                joined = Some(buf);
            }
            (Some(_), Some(buf)) => buf.extend_from_slice(b.as_bytes()),
        }
    }
    let all = joined.map(BytesMut::freeze).or(first).unwrap_or_default();
    sr.borrow_mut().finish(Some(all))
}

fn chunk_of(item: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    item.cast::<PyBytes>()
        .map(|b| wait::bytes_of(b))
        .map_err(|_| not_bytes(item))
}

fn not_bytes(item: &Bound<'_, PyAny>) -> PyErr {
    let type_name = item
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    PyTypeError::new_err(format!(
        "a WSGI response body must yield bytes, not {type_name}"
    ))
}

fn close(py: Python<'_>, iterable: &Bound<'_, PyAny>) -> PyResult<()> {
    if iterable.is_exact_instance_of::<PyList>() || iterable.is_exact_instance_of::<PyTuple>() {
        return Ok(());
    }
    match iterable.getattr(pyo3::intern!(py, "close")) {
        Ok(close) => close.call0().map(drop),
        Err(e) if e.is_instance_of::<PyAttributeError>(py) => Ok(()),
        Err(e) => Err(e),
    }
}

fn fail(
    py: Python<'_>,
    shared: &Shared,
    sr: &Bound<'_, StartResponse>,
    input: &Bound<'_, Input>,
    parts: &Parts,
    err: &PyErr,
) {
    let mut sr = sr.borrow_mut();
    if input.borrow().over_limit() {
        tracing::info!(target: "mse_python", method = %parts.method, path = parts.uri.path(), "request body over the limit: 413");
        sr.fail(|| error_response(StatusCode::PAYLOAD_TOO_LARGE));
        return;
    }
    if sr.client_gone() {
        tracing::debug!(target: "mse_python", method = %parts.method, path = parts.uri.path(), "client left during the response");
        sr.fail(|| error_response(StatusCode::INTERNAL_SERVER_ERROR));
        return;
    }
    tracing::error!(
        target: "mse_python::app",
        method = %parts.method,
        path = parts.uri.path(),
        headers_sent = sr.committed(),
        traceback = ?shared.rt.traceback(py, err),
        "the app raised an exception",
    );
    sr.fail(|| error_response(StatusCode::INTERNAL_SERVER_ERROR));
}
