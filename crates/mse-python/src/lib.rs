//! Serve a WSGI or ASGI app from an embedded CPython (PyO3) to hyper.
//!
//! The node calls [`PyApp::load`] once the code is decrypted, then [`PyApp::handle`] for every
//! request, from any tokio thread. Tokio threads never take the GIL: WSGI requests go through a
//! queue to a fixed pool of Python threads, ASGI requests to one asyncio event-loop thread.
//!
//! Contract: docs/design/contracts.md (mse-python). Design and measurements:
//! docs/design/python-embedding.md.

/// A struct of interned Python strings, built once: setting a dict item with an interned key
/// costs no hashing and no allocation.
macro_rules! interned {
    ($name:ident { $($field:ident = $text:literal),* $(,)? }) => {
        pub(crate) struct $name { $(pub $field: pyo3::Py<pyo3::types::PyString>,)* }
        impl $name {
            pub(crate) fn new(py: pyo3::Python<'_>) -> Self {
                Self { $($field: pyo3::types::PyString::intern(py, $text).unbind(),)* }
            }
        }
    };
}

mod app;
mod asgi;
mod body;
mod config;
mod error;
mod head;
mod http;
mod interpreter;
mod wait;
mod wsgi;

pub use app::PyApp;
pub use body::{BodyError, ResponseBody};
pub use config::{
    ConnInfo, DEFAULT_MAX_BODY, DEFAULT_THREADS, EventLoop, Interface, MAX_REQUEST_HEADERS,
    PythonConfig, Scheme,
};
pub use error::{Error, Result};
