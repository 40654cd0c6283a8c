//! Response bodies of every phase, and the access log line written when a body is done.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Method, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};

/// `tracing` target of access log lines (routed to stdout, everything else to stderr).
pub const ACCESS_TARGET: &str = "mse_node::access";

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

enum Inner {
    Full(Option<Bytes>),
    App(Pin<Box<mse_python::ResponseBody>>),
}

/// A response body: a small one the node made, or the app's stream.
pub struct NodeBody {
    inner: Inner,
    log: Option<AccessLog>,
}

/// One request, as the access log shows it.
pub struct AccessLog {
    pub remote: std::net::SocketAddr,
    pub method: Method,
    /// Path only: query strings often carry tokens.
    pub path: String,
    pub version: Version,
    pub status: StatusCode,
    pub start: Instant,
    pub bytes: u64,
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        tracing::info!(
            target: ACCESS_TARGET,
            "{} \"{} {} {:?}\" {} {} {:.1}ms",
            self.remote,
            self.method,
            self.path,
            self.version,
            self.status.as_u16(),
            self.bytes,
            self.start.elapsed().as_secs_f64() * 1000.0
        );
    }
}

impl NodeBody {
    pub fn full(data: impl Into<Bytes>) -> Self {
        NodeBody {
            inner: Inner::Full(Some(data.into())),
            log: None,
        }
    }

    pub fn empty() -> Self {
        NodeBody {
            inner: Inner::Full(None),
            log: None,
        }
    }

    pub fn app(body: mse_python::ResponseBody) -> Self {
        NodeBody {
            inner: Inner::App(Box::pin(body)),
            log: None,
        }
    }

    /// The log line is written when the body is finished or dropped (client gone).
    pub fn logged(mut self, log: AccessLog) -> Self {
        self.log = Some(log);
        self
    }
}

impl Body for NodeBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = match &mut this.inner {
            Inner::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Inner::App(body) => body
                .as_mut()
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(BoxError::from))),
        };
        if let (Poll::Ready(Some(Ok(frame))), Some(log)) = (&polled, this.log.as_mut())
            && let Some(data) = frame.data_ref()
        {
            log.bytes += data.len() as u64;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Full(data) => data.is_none(),
            Inner::App(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Full(Some(d)) => SizeHint::with_exact(d.len() as u64),
            Inner::Full(None) => SizeHint::with_exact(0),
            Inner::App(body) => body.size_hint(),
        }
    }
}
