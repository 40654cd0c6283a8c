//! `start_response`, `write()`, and where the response goes: one `Full` body when the app's first
//! chunk completes it, otherwise a pipe streamed to hyper with backpressure.

use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};
use tokio::sync::oneshot;

use crate::body::{Gone, PIPE_CAPACITY, Pipe, ResponseBody};
use crate::head::{Head, latin1_bytes};
use crate::wait;

/// Where the response stands.
enum Sink {
    /// Nothing sent yet; hyper waits on the other end.
    Waiting(oneshot::Sender<Response<ResponseBody>>),
    /// Head and complete body sent (the app's `Content-Length` was reached); anything more the
    /// app produces is dropped.
    Complete,
    /// Head sent, body streaming.
    Streaming(Arc<Pipe>),
    /// Nothing more can be sent (HEAD response sent, client gone, or failure handled).
    Closed,
}

/// What the caller of `send` should do next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    Continue,
    /// Stop iterating the app's body (it cannot be sent anywhere).
    Stop,
}

/// The `start_response` callable of one request; also holds the response state.
#[pyclass(module = "mse_python")]
pub(crate) struct StartResponse {
    head: Option<Head>,
    sink: Sink,
    head_only: bool,
    overflow_warned: bool,
    /// The client went away while we were sending.
    gone: bool,
}

impl StartResponse {
    pub(crate) fn new(reply: oneshot::Sender<Response<ResponseBody>>, head_only: bool) -> Self {
        Self {
            head: None,
            sink: Sink::Waiting(reply),
            head_only,
            overflow_warned: false,
            gone: false,
        }
    }

    /// Whether the head went out (after that a failure can only abort the connection).
    pub(crate) fn committed(&self) -> bool {
        !matches!(self.sink, Sink::Waiting(_))
    }

    /// Whether the client went away.
    pub(crate) fn client_gone(&self) -> bool {
        self.gone
            || match &self.sink {
                Sink::Waiting(tx) => tx.is_closed(),
                Sink::Streaming(pipe) => pipe.is_gone(),
                Sink::Complete | Sink::Closed => false,
            }
    }

    fn closed_by_client(&mut self) -> Next {
        self.sink = Sink::Closed;
        self.gone = true;
        Next::Stop
    }

    fn take_head(&mut self) -> PyResult<Head> {
        self.head.take().ok_or_else(|| {
            PyRuntimeError::new_err(
                "the app produced a body without calling start_response() first",
            )
        })
    }

    fn deliver(&mut self, resp: Response<ResponseBody>, then: Sink) {
        if let Sink::Waiting(tx) = std::mem::replace(&mut self.sink, then)
            && tx.send(resp).is_err()
        {
            self.closed_by_client();
        }
    }

    /// Send one non-empty body chunk.
    pub(crate) fn send(&mut self, py: Python<'_>, chunk: Bytes) -> PyResult<Next> {
        match &self.sink {
            Sink::Waiting(_) => {
                let head = self.take_head()?;
                if self.head_only {
                    self.deliver(head.into_response(ResponseBody::empty()), Sink::Closed);
                    return Ok(Next::Stop);
                }
                if head.content_length == Some(chunk.len() as u64) {
                    self.deliver(
                        head.into_response(ResponseBody::full(chunk)),
                        Sink::Complete,
                    );
                    return Ok(if self.gone {
                        Next::Stop
                    } else {
                        Next::Continue
                    });
                }
                let pipe = Pipe::new(PIPE_CAPACITY);
                // Cannot fail: nobody reads the pipe yet.
                let _ = pipe.push(chunk);
                self.deliver(
                    head.into_response(ResponseBody::pipe(pipe.clone())),
                    Sink::Streaming(pipe),
                );
                self.backpressure(py)
            }
            Sink::Streaming(pipe) => match pipe.push(chunk) {
                Ok(()) => self.backpressure(py),
                Err(Gone) => Ok(self.closed_by_client()),
            },
            Sink::Complete => {
                if !self.overflow_warned {
                    self.overflow_warned = true;
                    tracing::warn!(
                        target: "mse_python::app",
                        "the app produced more body than its Content-Length; the excess was dropped"
                    );
                }
                Ok(Next::Stop)
            }
            Sink::Closed => Ok(Next::Stop),
        }
    }

    /// Wait (without the GIL) while the client has not taken what is already queued.
    fn backpressure(&mut self, py: Python<'_>) -> PyResult<Next> {
        let Sink::Streaming(pipe) = &self.sink else {
            return Ok(Next::Continue);
        };
        if !pipe.is_full() {
            return Ok(Next::Continue);
        }
        let pipe = pipe.clone();
        match wait::wait(py, std::future::poll_fn(|cx| pipe.poll_ready(cx))) {
            Ok(()) => Ok(Next::Continue),
            Err(Gone) => Ok(self.closed_by_client()),
        }
    }

    /// The app's body is complete (`all` holds it when it was a list, else it was streamed).
    pub(crate) fn finish(&mut self, all: Option<Bytes>) -> PyResult<()> {
        match &self.sink {
            Sink::Waiting(_) => {
                let head = self.take_head()?;
                let body = match all {
                    Some(b) if !self.head_only => ResponseBody::full(b),
                    _ => ResponseBody::empty(),
                };
                self.deliver(head.into_response(body), Sink::Closed);
            }
            Sink::Streaming(pipe) => {
                pipe.finish();
                self.sink = Sink::Closed;
            }
            Sink::Complete | Sink::Closed => {}
        }
        Ok(())
    }

    /// The app failed: answer `fallback` if nothing was sent yet, otherwise abort the body so the
    /// client cannot mistake a truncated response for a complete one.
    pub(crate) fn fail(&mut self, fallback: impl FnOnce() -> Response<ResponseBody>) {
        match std::mem::replace(&mut self.sink, Sink::Closed) {
            Sink::Waiting(tx) => {
                let _ = tx.send(fallback());
            }
            Sink::Streaming(pipe) => pipe.abort(),
            Sink::Complete | Sink::Closed => {}
        }
    }
}

#[pymethods]
impl StartResponse {
    #[pyo3(signature = (status, headers, exc_info = None))]
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        status: &Bound<'py, PyAny>,
        headers: &Bound<'py, PyAny>,
        exc_info: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        {
            let mut this = slf.borrow_mut();
            let exc_value = match exc_info {
                Some(info) if !info.is_none() => Some(info.get_item(1)?),
                _ => None,
            };
            match exc_value {
                // PEP 3333: once the head is out, re-raise the app's error so it aborts the response.
                Some(value) if this.committed() => return Err(PyErr::from_value(value)),
                Some(_) => {}
                None if this.head.is_some() => {
                    return Err(PyRuntimeError::new_err(
                        "start_response() called a second time without exc_info",
                    ));
                }
                None if this.committed() => {
                    return Err(PyRuntimeError::new_err(
                        "start_response() called after the response was sent",
                    ));
                }
                None => {}
            }
            this.head = Some(parse_head(status, headers)?);
        }
        slf.getattr(pyo3::intern!(py, "write"))
    }

    /// The legacy `write()` callable: the data is queued for the client before it returns.
    fn write(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let data = data.cast::<PyBytes>().map_err(|_| {
            PyTypeError::new_err(format!(
                "write() takes bytes, not {}",
                data.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        if self.head.is_none() && !self.committed() {
            return Err(PyRuntimeError::new_err(
                "write() called before start_response()",
            ));
        }
        if data.as_bytes().is_empty() {
            return Ok(());
        }
        match self.send(py, wait::bytes_of(data))? {
            Next::Stop if self.gone => Err(PyOSError::new_err("the client disconnected")),
            Next::Continue | Next::Stop => Ok(()),
        }
    }
}

fn parse_head(status: &Bound<'_, PyAny>, headers: &Bound<'_, PyAny>) -> PyResult<Head> {
    let status = status
        .cast::<PyString>()
        .map_err(|_| {
            PyTypeError::new_err("start_response(): status must be a str such as \"200 OK\"")
        })?
        .to_str()?;
    let bad = |e: crate::head::BadHead| PyValueError::new_err(format!("start_response(): {}", e.0));
    let list = headers.cast::<PyList>().map_err(|_| {
        PyTypeError::new_err("start_response(): headers must be a list of (name, value) tuples")
    })?;
    let mut head = Head::from_status_line(status, list.len()).map_err(bad)?;
    for item in list.iter() {
        let pair = item
            .cast::<PyTuple>()
            .ok()
            .filter(|t| t.len() == 2)
            .ok_or_else(|| {
                PyTypeError::new_err("start_response(): each header must be a (name, value) tuple")
            })?;
        let (name, value) = (pair.get_item(0)?, pair.get_item(1)?);
        let (Ok(name), Ok(value)) = (name.cast::<PyString>(), value.cast::<PyString>()) else {
            return Err(PyTypeError::new_err(
                "start_response(): header names and values must be str",
            ));
        };
        let (name, value) = (name.to_str()?, value.to_str()?);
        let value = latin1_bytes(value).ok_or_else(|| {
            PyValueError::new_err(format!(
                "start_response(): header {name} is not latin-1 encodable"
            ))
        })?;
        head.push(name.as_bytes(), &value).map_err(bad)?;
    }
    Ok(head)
}

/// `wsgi.file_wrapper`: an iterable over a file-like object, which the server reads in large
/// blocks without going through the Python iterator protocol.
#[pyclass(module = "mse_python", frozen)]
pub(crate) struct FileWrapper {
    filelike: Py<PyAny>,
    blksize: usize,
}

/// The block size the server uses for a wrapped file, whatever smaller size the app suggests.
pub(crate) const FILE_BLOCK: usize = 256 * 1024;

impl FileWrapper {
    /// Read the next block (empty at the end).
    pub(crate) fn read_block<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let data = self
            .filelike
            .bind(py)
            .call_method1(pyo3::intern!(py, "read"), (self.blksize.max(FILE_BLOCK),))?;
        data.cast_into::<PyBytes>().map_err(|_| {
            PyTypeError::new_err("wsgi.file_wrapper: the file's read() must return bytes")
        })
    }
}

#[pymethods]
impl FileWrapper {
    #[new]
    #[pyo3(signature = (filelike, block_size = 8192))]
    fn new(filelike: Py<PyAny>, block_size: usize) -> Self {
        Self {
            filelike,
            blksize: block_size.max(1),
        }
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let data = self
            .filelike
            .bind(py)
            .call_method1(pyo3::intern!(py, "read"), (self.blksize,))?;
        Ok(if data.is_truthy()? { Some(data) } else { None })
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let f = self.filelike.bind(py);
        if f.hasattr(pyo3::intern!(py, "close"))? {
            f.call_method0(pyo3::intern!(py, "close"))?;
        }
        Ok(())
    }
}

/// `wsgi.errors`: what the app writes goes to the node's log, one event per write.
#[pyclass(module = "mse_python", frozen)]
pub(crate) struct ErrorStream;

#[pymethods]
impl ErrorStream {
    fn write(&self, s: &str) {
        let s = s.trim_end();
        if !s.is_empty() {
            tracing::warn!(target: "mse_python::app", "{s}");
        }
    }

    fn writelines(&self, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        for line in lines.try_iter()? {
            self.write(line?.cast::<PyString>()?.to_str()?);
        }
        Ok(())
    }

    fn flush(&self) {}
}
