//! What the node tells the app server: the configuration, the connection of a request, and the
//! parsed `module:variable` app reference.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// Python worker threads when the node does not say otherwise: on one core this is where the
/// throughput of a CPU-bound app peaks and p99 is still low (docs/design/python-embedding.md).
pub const DEFAULT_THREADS: usize = 8;

/// The original server's request body cap for WSGI apps (hypercorn `wsgi_max_body_size`).
pub const DEFAULT_MAX_BODY: u64 = 2 * 1024 * 1024 * 1024;

/// Requests with more header lines than this get 431 without reaching the app (hyper's own
/// HTTP/1 default; HTTP/2 has no such default).
pub const MAX_REQUEST_HEADERS: usize = 100;

/// What the app server needs to start the app.
#[derive(Clone, Debug)]
pub struct PythonConfig {
    /// MODULE_PATH: the decrypted code, first on `sys.path`.
    pub module_path: PathBuf,
    /// `module:variable`, e.g. `app:app` (the variable may be a dotted attribute path).
    pub app: String,
    /// The runtime's site-packages directories, after the stdlib on `sys.path`. Their `.pth`
    /// files are not executed.
    pub site_packages: Vec<PathBuf>,
    /// Set in `os.environ` before the import (HOME, SECRETS_PATH, ...).
    pub env: Vec<(String, String)>,
    /// Python worker threads for a WSGI app (ASGI apps run on one event-loop thread).
    pub threads: usize,
    /// Request body limit in bytes: larger bodies get 413.
    pub max_body: u64,
    /// The event loop of an ASGI app.
    pub event_loop: EventLoop,
}

/// Which event loop runs an ASGI app.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EventLoop {
    /// uvloop when the runtime has it (as uvicorn's and Granian's `auto`), else asyncio's.
    #[default]
    Auto,
    /// The standard library's loop, even when uvloop is installed.
    Asyncio,
    /// uvloop; starting fails if the runtime does not have it.
    Uvloop,
}

impl EventLoop {
    /// The name the node's `--loop` takes and the driver understands.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Asyncio => "asyncio",
            Self::Uvloop => "uvloop",
        }
    }
}

impl PythonConfig {
    /// A configuration with the defaults: no site-packages, no env, [`DEFAULT_THREADS`],
    /// [`DEFAULT_MAX_BODY`], [`EventLoop::Auto`].
    pub fn new(module_path: impl Into<PathBuf>, app: impl Into<String>) -> Self {
        Self {
            module_path: module_path.into(),
            app: app.into(),
            site_packages: Vec::new(),
            env: Vec::new(),
            threads: DEFAULT_THREADS,
            max_body: DEFAULT_MAX_BODY,
            event_loop: EventLoop::Auto,
        }
    }
}

/// The app's calling convention, detected at import as the original did: a coroutine function,
/// or an object whose `__call__` is one, is ASGI; anything else callable is WSGI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interface {
    /// PEP 3333.
    Wsgi,
    /// ASGI 3 (HTTP and lifespan scopes).
    Asgi,
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Wsgi => "wsgi",
            Self::Asgi => "asgi",
        })
    }
}

/// `http` or `https`, as the app sees it (`wsgi.url_scheme`, ASGI `scheme`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

/// The connection a request came in on.
#[derive(Clone, Copy, Debug)]
pub struct ConnInfo {
    pub remote: SocketAddr,
    pub local: SocketAddr,
    pub scheme: Scheme,
    pub http_version: http::Version,
}

/// `module:attr.attr`, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AppRef {
    pub module: String,
    pub attrs: Vec<String>,
}

impl AppRef {
    pub(crate) fn parse(spec: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::Config(format!(
                "app `{spec}` is not `module:variable` ({why}); e.g. `app:app`"
            ))
        };
        let (module, attr) = spec.split_once(':').ok_or_else(|| bad("no `:`"))?;
        if attr.contains(':') {
            return Err(bad("more than one `:`"));
        }
        let dotted = |s: &str| -> Option<Vec<String>> {
            s.split('.')
                .map(|part| is_identifier(part).then(|| part.to_owned()))
                .collect()
        };
        let attrs = dotted(attr).ok_or_else(|| bad("the variable is not a Python name"))?;
        if dotted(module).is_none() {
            return Err(bad("the module is not a dotted Python name"));
        }
        Ok(Self {
            module: module.to_owned(),
            attrs,
        })
    }

    pub(crate) fn attr_path(&self) -> String {
        self.attrs.join(".")
    }
}

impl fmt::Display for AppRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.module, self.attr_path())
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_ref_accepts_module_and_dotted_attribute() {
        let r = AppRef::parse("pkg.app:server.wsgi_app").unwrap();
        assert_eq!(r.module, "pkg.app");
        assert_eq!(r.attrs, ["server", "wsgi_app"]);
        assert_eq!(r.to_string(), "pkg.app:server.wsgi_app");
    }

    #[test]
    fn app_ref_rejects_what_python_could_not_name() {
        for bad in [
            "app",
            "app:",
            ":app",
            "app:app:x",
            "app:create_app()",
            "a-b:app",
            "app:1x",
            "a..b:app",
        ] {
            assert!(AppRef::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
