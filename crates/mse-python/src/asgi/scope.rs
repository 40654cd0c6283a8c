//! The ASGI HTTP scope, built from a template dict with interned keys and cached header names.

use std::collections::HashMap;
use std::net::SocketAddr;

use http::header::{self, HeaderName};
use http::request::Parts;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use super::{Keys, LoopCtx};
use crate::config::{ConnInfo, Scheme};
use crate::http::{percent_decode, version_str};

/// Header names cached as `bytes`; bounded so odd names cannot grow it forever.
const HEADER_NAME_CACHE: usize = 256;

pub(crate) struct ScopeBuilder {
    base: Py<PyDict>,
    asgi: Py<PyDict>,
    names: HashMap<HeaderName, Py<PyBytes>>,
    server: Option<(SocketAddr, Py<PyTuple>)>,
}

impl ScopeBuilder {
    pub(crate) fn new(py: Python<'_>, k: &Keys) -> Self {
        let base = PyDict::new(py);
        let asgi = PyDict::new(py);
        // Infallible in practice (string keys on a fresh dict); a failure leaves a key out, which
        // the app would report.
        let _ = base.set_item(&k.type_, &k.http);
        let _ = base.set_item(&k.root_path, "");
        let _ = asgi.set_item("version", "3.0");
        // 2.4: `send` raises OSError once the client is gone, so frameworks need no watcher task.
        let _ = asgi.set_item("spec_version", "2.4");
        Self {
            base: base.unbind(),
            asgi: asgi.unbind(),
            names: HashMap::new(),
            server: None,
        }
    }

    pub(crate) fn build<'py>(
        &mut self,
        py: Python<'py>,
        ctx: &LoopCtx,
        parts: &Parts,
        conn: &ConnInfo,
    ) -> PyResult<Bound<'py, PyDict>> {
        let k = &ctx.k;
        let scope = self.base.bind(py).copy()?;
        scope.set_item(&k.asgi, self.asgi.bind(py).copy()?)?;
        scope.set_item(&k.http_version, version_str(parts.version).1)?;
        scope.set_item(&k.server, self.server(py, conn.local)?)?;
        scope.set_item(
            &k.client,
            (
                conn.remote.ip().to_canonical().to_string(),
                conn.remote.port(),
            ),
        )?;
        scope.set_item(
            &k.scheme,
            if conn.scheme == Scheme::Https {
                &k.https
            } else {
                &k.http
            },
        )?;
        scope.set_item(&k.method, parts.method.as_str())?;
        let raw_path = parts.uri.path().as_bytes();
        scope.set_item(
            &k.path,
            PyString::new(py, &String::from_utf8_lossy(&percent_decode(raw_path))),
        )?;
        scope.set_item(&k.raw_path, PyBytes::new(py, raw_path))?;
        scope.set_item(
            &k.query_string,
            PyBytes::new(py, parts.uri.query().unwrap_or("").as_bytes()),
        )?;
        let headers = PyList::empty(py);
        for (name, value) in &parts.headers {
            headers.append(PyTuple::new(
                py,
                [
                    self.name(py, name).into_any(),
                    PyBytes::new(py, value.as_bytes()).into_any(),
                ],
            )?)?;
        }
        // HTTP/2 carries the host in :authority, not in a Host header.
        if !parts.headers.contains_key(header::HOST)
            && let Some(authority) = parts.uri.authority()
        {
            headers.append((
                PyBytes::new(py, b"host"),
                PyBytes::new(py, authority.as_str().as_bytes()),
            ))?;
        }
        scope.set_item(&k.headers, headers)?;
        if let Some(state) = &ctx.state {
            scope.set_item(&k.state, state.bind(py).copy()?)?;
        }
        Ok(scope)
    }

    fn server<'py>(&mut self, py: Python<'py>, local: SocketAddr) -> PyResult<Bound<'py, PyTuple>> {
        if let Some((addr, tuple)) = &self.server
            && *addr == local
        {
            return Ok(tuple.bind(py).clone());
        }
        let tuple = (local.ip().to_canonical().to_string(), local.port()).into_pyobject(py)?;
        self.server = Some((local, tuple.clone().unbind()));
        Ok(tuple)
    }

    fn name<'py>(&mut self, py: Python<'py>, name: &HeaderName) -> Bound<'py, PyBytes> {
        if let Some(b) = self.names.get(name) {
            return b.bind(py).clone();
        }
        let b = PyBytes::new(py, name.as_str().as_bytes());
        if self.names.len() < HEADER_NAME_CACHE {
            self.names.insert(name.clone(), b.clone().unbind());
        }
        b
    }
}
