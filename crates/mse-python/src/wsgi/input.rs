//! `wsgi.input`: the request body, pulled from hyper as the app reads it (never buffered whole by
//! the server). A read that must wait for the network releases the GIL.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::{Buf, Bytes};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use crate::http::RequestBody;
use crate::wait;

pyo3::create_exception!(
    mse_python,
    RequestBodyTooLarge,
    PyOSError,
    "The request body exceeds the server's limit; the server answers 413."
);

/// How a [`gather`] ended.
enum Filled {
    Enough,
    End,
    Failed(String),
    TooLarge,
}

/// What a [`gather`] received, and the body to continue from.
struct Gathered {
    body: Incoming,
    chunks: Vec<Bytes>,
    received: u64,
    end: Filled,
}

/// Receive at least `need` bytes (or up to the end of the body), counting against `limit`.
async fn gather(mut body: Incoming, need: usize, mut received: u64, limit: u64) -> Gathered {
    let mut chunks = Vec::new();
    let mut got = 0;
    let end = loop {
        if got >= need {
            break Filled::Enough;
        }
        let data = match body.frame().await {
            None => break Filled::End,
            Some(Err(e)) => break Filled::Failed(e.to_string()),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if !data.is_empty() => data,
                _ => continue, // empty data or trailers
            },
        };
        received += data.len() as u64;
        if received > limit {
            break Filled::TooLarge;
        }
        got += data.len();
        chunks.push(data);
    };
    Gathered {
        body,
        chunks,
        received,
        end,
    }
}

#[pyclass(module = "mse_python")]
pub(crate) struct Input {
    /// Received, not yet read by the app.
    buf: VecDeque<Bytes>,
    buffered: usize,
    /// Where more comes from; `None` once the body ended (or was released).
    stream: Option<Mutex<Incoming>>,
    /// The runtime that serves the connection, where waits for the network run.
    rt: Option<tokio::runtime::Handle>,
    received: u64,
    limit: u64,
    over_limit: bool,
}

fn size_arg(size: Option<isize>) -> usize {
    match size {
        Some(n) if n >= 0 => usize::try_from(n).unwrap_or(usize::MAX),
        _ => usize::MAX,
    }
}

impl Input {
    pub(crate) fn new(body: RequestBody, limit: u64, rt: Option<tokio::runtime::Handle>) -> Self {
        let mut this = Self {
            buf: VecDeque::new(),
            buffered: 0,
            stream: None,
            rt,
            received: 0,
            limit,
            over_limit: false,
        };
        match body {
            RequestBody::Empty => {}
            RequestBody::Full(b) => {
                this.buffered = b.len();
                this.received = b.len() as u64;
                this.buf.push_back(b);
            }
            RequestBody::Stream(s) => this.stream = Some(Mutex::new(s)),
        }
        this
    }

    /// Whether the app read past the body limit (the server then answers 413).
    pub(crate) fn over_limit(&self) -> bool {
        self.over_limit
    }

    /// Let go of the connection's body once the request is done, whatever the app kept.
    pub(crate) fn release(&mut self) {
        self.stream = None;
        self.buf.clear();
        self.buffered = 0;
    }

    /// Receive at least one more chunk into `buf`; `false` at the end of the body.
    fn fetch(&mut self, py: Python<'_>) -> PyResult<bool> {
        let before = self.buffered;
        self.fill(py, before.saturating_add(1))?;
        Ok(self.buffered > before)
    }

    /// Receive until at least `want` bytes are buffered or the body ends.
    ///
    /// Frames hyper already has are taken with the GIL held. If more must come from the network,
    /// the rest of the wait runs as a task on the node's runtime, next to the connection that
    /// receives the frames, and this thread sleeps (GIL released) until the task has gathered
    /// enough: one wake-up per read, not one per TLS record. Waiting here frame by frame cost a
    /// thread switch and a GIL hand-off per ~16 KiB of upload.
    fn fill(&mut self, py: Python<'_>, want: usize) -> PyResult<()> {
        if self.buffered >= want {
            return Ok(());
        }
        let Some(stream) = self.stream.take() else {
            return Ok(());
        };
        let body = stream
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut task = Box::pin(gather(
            body,
            want - self.buffered,
            self.received,
            self.limit,
        ));
        let done = match wait::poll_once(task.as_mut()) {
            std::task::Poll::Ready(done) => done,
            std::task::Poll::Pending => match &self.rt {
                Some(rt) => {
                    let handle = rt.spawn(task);
                    py.detach(|| wait::block_on(handle)).map_err(|e| {
                        PyOSError::new_err(format!("reading the request body failed: {e}"))
                    })?
                }
                None => py.detach(|| wait::block_on(task)),
            },
        };
        self.received = done.received;
        self.buffered += done.chunks.iter().map(Bytes::len).sum::<usize>();
        self.buf.extend(done.chunks);
        match done.end {
            Filled::Enough => {
                self.stream = Some(Mutex::new(done.body));
                Ok(())
            }
            Filled::End => Ok(()),
            Filled::Failed(e) => Err(PyOSError::new_err(format!(
                "reading the request body failed: {e}"
            ))),
            Filled::TooLarge => {
                self.over_limit = true;
                self.release();
                Err(RequestBodyTooLarge::new_err(format!(
                    "the request body exceeds the limit of {} bytes",
                    self.limit
                )))
            }
        }
    }

    /// Take `n <= buffered` bytes as one Python `bytes`.
    fn take<'py>(&mut self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyBytes>> {
        self.buffered -= n;
        if let Some(front) = self.buf.front_mut()
            && front.len() >= n
        {
            let out = PyBytes::new(py, &front[..n]);
            front.advance(n);
            if front.is_empty() {
                self.buf.pop_front();
            }
            return Ok(out);
        }
        let buf = &mut self.buf;
        PyBytes::new_with(py, n, |dst| {
            let mut filled = 0;
            while filled < n {
                let Some(front) = buf.front_mut() else { break };
                let k = front.len().min(n - filled);
                dst[filled..filled + k].copy_from_slice(&front[..k]);
                front.advance(k);
                filled += k;
                if front.is_empty() {
                    buf.pop_front();
                }
            }
            Ok(())
        })
    }

    /// Offset just past the first newline at or after `from`, if buffered.
    fn newline_end(&self, from: usize) -> Option<usize> {
        let mut offset = 0;
        for chunk in &self.buf {
            let end = offset + chunk.len();
            if end > from {
                let start = from.saturating_sub(offset);
                if let Some(i) = chunk[start..].iter().position(|&b| b == b'\n') {
                    return Some(offset + start + i + 1);
                }
            }
            offset = end;
        }
        None
    }
}

#[pymethods]
impl Input {
    /// Read up to `size` bytes (all that remains without a size); fewer only at the end.
    #[pyo3(signature = (size = None))]
    fn read<'py>(&mut self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let want = size_arg(size);
        self.fill(py, want)?;
        let n = want.min(self.buffered);
        self.take(py, n)
    }

    /// Read one line (with its `\n`), at most `size` bytes.
    #[pyo3(signature = (size = None))]
    fn readline<'py>(
        &mut self,
        py: Python<'py>,
        size: Option<isize>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let limit = size_arg(size);
        let mut scanned = 0;
        loop {
            if let Some(end) = self.newline_end(scanned) {
                return self.take(py, end.min(limit));
            }
            scanned = self.buffered;
            if self.buffered >= limit || !self.fetch(py)? {
                let n = limit.min(self.buffered);
                return self.take(py, n);
            }
        }
    }

    /// Read lines until the end, or until about `hint` bytes were read.
    #[pyo3(signature = (hint = None))]
    fn readlines<'py>(
        &mut self,
        py: Python<'py>,
        hint: Option<isize>,
    ) -> PyResult<Bound<'py, PyList>> {
        let hint = match size_arg(hint) {
            0 => usize::MAX,
            h => h,
        };
        let lines = PyList::empty(py);
        let mut total = 0;
        loop {
            let line = self.readline(py, None)?;
            let len = line.as_bytes().len();
            if len == 0 {
                break;
            }
            lines.append(line)?;
            total += len;
            if total >= hint {
                break;
            }
        }
        Ok(lines)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let line = self.readline(py, None)?;
        Ok((!line.as_bytes().is_empty()).then_some(line))
    }

    fn readable(&self) -> bool {
        true
    }

    fn close(&self) {}
}
