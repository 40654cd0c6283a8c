//! [`PyApp`]: load an app, serve its requests, shut it down.

use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use pyo3::prelude::*;

use crate::body::ResponseBody;
use crate::config::{AppRef, ConnInfo, Interface, PythonConfig};
use crate::error::{Error, Result};
use crate::http::prepare;
use crate::{asgi, interpreter, wsgi};

static LOADING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A loaded app, ready to serve. Cheap to clone; all clones serve the same app.
#[derive(Clone)]
pub struct PyApp {
    inner: Arc<Inner>,
}

struct Inner {
    interface: Interface,
    max_body: u64,
    server: Server,
}

enum Server {
    Wsgi(wsgi::Server),
    Asgi(asgi::Server),
}

impl std::fmt::Debug for PyApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyApp")
            .field("interface", &self.inner.interface)
            .finish_non_exhaustive()
    }
}

impl PyApp {
    /// Start the interpreter if needed, import `cfg.app` from `cfg.module_path`, detect its
    /// interface and start serving it (for ASGI, run the lifespan startup). Blocks until ready.
    ///
    /// May be called more than once per process: the interpreter is shared, the apps are not.
    pub fn load(cfg: PythonConfig) -> Result<Self> {
        let app_ref = AppRef::parse(&cfg.app)?;
        if cfg.threads == 0 {
            return Err(Error::Config("threads must be at least 1".into()));
        }
        let rt = interpreter::runtime()?;
        // sys.path and os.environ are process-wide: loads happen one at a time. Taken before the
        // GIL so that a thread waiting here never holds the GIL.
        let _one_at_a_time = LOADING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (interface, server) = Python::attach(|py| -> Result<_> {
            let loaded = interpreter::load(rt, py, &cfg, &app_ref)?;
            let server = match loaded.interface {
                Interface::Wsgi => Server::Wsgi(wsgi::Server::start(py, rt, loaded.app, &cfg)?),
                Interface::Asgi => Server::Asgi(asgi::Server::start(py, rt, loaded.app, &cfg)?),
            };
            Ok((loaded.interface, server))
        })?;
        tracing::info!(
            target: "mse_python",
            app = %app_ref,
            %interface,
            module_path = %cfg.module_path.display(),
            "app loaded"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                interface,
                max_body: cfg.max_body,
                server,
            }),
        })
    }

    pub fn interface(&self) -> Interface {
        self.inner.interface
    }

    /// Serve one request. Never fails: app errors become 500 (and a log line with the traceback),
    /// oversized bodies 413, too many headers 431, a shut-down app 503.
    pub async fn handle(&self, req: Request<Incoming>, conn: ConnInfo) -> Response<ResponseBody> {
        let (parts, body) = req.into_parts();
        let body = match prepare(&parts.headers, body, self.inner.max_body).await {
            Ok(body) => body,
            Err(resp) => return resp,
        };
        match &self.inner.server {
            Server::Wsgi(s) => s.submit(parts, body, conn).await,
            Server::Asgi(s) => s.submit(parts, body, conn).await,
        }
    }

    /// Stop serving: new requests get 503; queued ones finish; for ASGI, run the lifespan
    /// shutdown. Idempotent.
    pub async fn shutdown(&self) {
        match &self.inner.server {
            Server::Wsgi(s) => s.shutdown().await,
            Server::Asgi(s) => s.shutdown().await,
        }
    }
}
