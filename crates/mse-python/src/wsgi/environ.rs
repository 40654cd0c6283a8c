//! The PEP 3333 environ: a template dict built once and copied per request, interned keys, and
//! per-thread caches for header keys and the server address.

use std::collections::HashMap;
use std::net::SocketAddr;

use http::header::{self, HeaderName};
use http::request::Parts;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyString, PyTuple};

use crate::config::{ConnInfo, Scheme};
use crate::http::{percent_decode, version_str};
use crate::wsgi::response::{ErrorStream, FileWrapper};

interned! {
Keys {
    request_method = "REQUEST_METHOD",
    script_name = "SCRIPT_NAME",
    path_info = "PATH_INFO",
    query_string = "QUERY_STRING",
    content_type = "CONTENT_TYPE",
    content_length = "CONTENT_LENGTH",
    server_name = "SERVER_NAME",
    server_port = "SERVER_PORT",
    server_protocol = "SERVER_PROTOCOL",
    remote_addr = "REMOTE_ADDR",
    remote_port = "REMOTE_PORT",
    http_host = "HTTP_HOST",
    wsgi_version = "wsgi.version",
    wsgi_url_scheme = "wsgi.url_scheme",
    wsgi_input = "wsgi.input",
    wsgi_errors = "wsgi.errors",
    wsgi_multithread = "wsgi.multithread",
    wsgi_multiprocess = "wsgi.multiprocess",
    wsgi_run_once = "wsgi.run_once",
    wsgi_file_wrapper = "wsgi.file_wrapper",
    wsgi_input_terminated = "wsgi.input_terminated",
    http = "http",
    https = "https",
}
}

/// What every request's environ starts from (shared by all workers).
pub(crate) struct Template {
    pub keys: Keys,
    base: Py<PyDict>,
}

impl Template {
    pub(crate) fn new(py: Python<'_>) -> PyResult<Self> {
        let keys = Keys::new(py);
        let base = PyDict::new(py);
        base.set_item(&keys.script_name, "")?;
        base.set_item(&keys.query_string, "")?;
        base.set_item(&keys.wsgi_version, PyTuple::new(py, [1, 0])?)?;
        base.set_item(&keys.wsgi_url_scheme, &keys.http)?;
        base.set_item(&keys.wsgi_errors, Py::new(py, ErrorStream)?)?;
        base.set_item(&keys.wsgi_multithread, PyBool::new(py, true))?;
        base.set_item(&keys.wsgi_multiprocess, PyBool::new(py, false))?;
        base.set_item(&keys.wsgi_run_once, PyBool::new(py, false))?;
        base.set_item(&keys.wsgi_file_wrapper, py.get_type::<FileWrapper>())?;
        Ok(Self {
            keys,
            base: base.unbind(),
        })
    }
}

/// Header keys cached per worker thread; bounded so odd header names cannot grow it forever.
const HEADER_KEY_CACHE: usize = 256;

/// Per-worker state for building environs.
pub(crate) struct Builder {
    header_keys: HashMap<HeaderName, Py<PyString>>,
    server: Option<(SocketAddr, Py<PyString>, Py<PyString>)>,
    joined: Vec<u8>,
}

impl Builder {
    pub(crate) fn new() -> Self {
        Self {
            header_keys: HashMap::new(),
            server: None,
            joined: Vec::new(),
        }
    }

    pub(crate) fn build<'py>(
        &mut self,
        py: Python<'py>,
        t: &Template,
        parts: &Parts,
        conn: &ConnInfo,
        input: &Bound<'py, PyAny>,
        unsized_body: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let k = &t.keys;
        let env = t.base.bind(py).copy()?;
        env.set_item(&k.request_method, method(py, &parts.method))?;
        env.set_item(
            &k.path_info,
            latin1(py, &percent_decode(parts.uri.path().as_bytes())),
        )?;
        if let Some(q) = parts.uri.query() {
            env.set_item(&k.query_string, q)?;
        }
        let (name, port) = self.server(py, conn.local);
        env.set_item(&k.server_name, name)?;
        env.set_item(&k.server_port, port)?;
        env.set_item(&k.server_protocol, protocol(py, parts.version))?;
        env.set_item(&k.remote_addr, conn.remote.ip().to_canonical().to_string())?;
        env.set_item(&k.remote_port, conn.remote.port().to_string())?;
        if conn.scheme == Scheme::Https {
            env.set_item(&k.wsgi_url_scheme, &k.https)?;
        }
        for name in parts.headers.keys() {
            let mut values = parts.headers.get_all(name).iter();
            let Some(first) = values.next() else { continue };
            let value = match values.next() {
                None => latin1(py, first.as_bytes()),
                Some(second) => {
                    // RFC 9110 §5.3: repeated fields join with commas; cookies with "; " (RFC 6265).
                    let sep: &[u8] = if name == header::COOKIE { b"; " } else { b", " };
                    self.joined.clear();
                    for v in [first, second].into_iter().chain(values) {
                        if !self.joined.is_empty() {
                            self.joined.extend_from_slice(sep);
                        }
                        self.joined.extend_from_slice(v.as_bytes());
                    }
                    latin1(py, &self.joined)
                }
            };
            if name == header::CONTENT_TYPE {
                env.set_item(&k.content_type, value)?;
            } else if name == header::CONTENT_LENGTH {
                env.set_item(&k.content_length, value)?;
            } else if name.as_str().contains('_') {
                // `X_Forwarded_For` would land on the same key as `X-Forwarded-For`: drop such
                // names rather than let a client shadow a header a proxy vouches for.
                continue;
            } else {
                env.set_item(self.header_key(py, name), value)?;
            }
        }
        // HTTP/2 carries the host in :authority, not in a Host header.
        if !parts.headers.contains_key(header::HOST)
            && let Some(authority) = parts.uri.authority()
        {
            env.set_item(&k.http_host, authority.as_str())?;
        }
        env.set_item(&k.wsgi_input, input)?;
        if unsized_body {
            // A body without CONTENT_LENGTH (chunked): the input returns b"" at its end, so the
            // app may read it to the end (Werkzeug honours this flag). Not set otherwise, so that
            // frameworks keep reading with a size, as PEP 3333 asks them to.
            env.set_item(&k.wsgi_input_terminated, PyBool::new(py, true))?;
        }
        Ok(env)
    }

    fn server<'py>(
        &mut self,
        py: Python<'py>,
        local: SocketAddr,
    ) -> (Bound<'py, PyString>, Bound<'py, PyString>) {
        match &self.server {
            Some((addr, name, port)) if *addr == local => {
                (name.bind(py).clone(), port.bind(py).clone())
            }
            _ => {
                let name = PyString::new(py, &local.ip().to_canonical().to_string());
                let port = PyString::new(py, &local.port().to_string());
                self.server = Some((local, name.clone().unbind(), port.clone().unbind()));
                (name, port)
            }
        }
    }

    fn header_key<'py>(&mut self, py: Python<'py>, name: &HeaderName) -> Bound<'py, PyString> {
        if let Some(key) = self.header_keys.get(name) {
            return key.bind(py).clone();
        }
        let mut key = String::with_capacity(5 + name.as_str().len());
        key.push_str("HTTP_");
        key.extend(name.as_str().chars().map(|c| {
            if c == '-' {
                '_'
            } else {
                c.to_ascii_uppercase()
            }
        }));
        let key = PyString::intern(py, &key);
        if self.header_keys.len() < HEADER_KEY_CACHE {
            self.header_keys.insert(name.clone(), key.clone().unbind());
        }
        key
    }
}

fn method<'py>(py: Python<'py>, m: &http::Method) -> Bound<'py, PyString> {
    use pyo3::intern;
    match *m {
        http::Method::GET => intern!(py, "GET").clone(),
        http::Method::POST => intern!(py, "POST").clone(),
        http::Method::HEAD => intern!(py, "HEAD").clone(),
        http::Method::PUT => intern!(py, "PUT").clone(),
        http::Method::DELETE => intern!(py, "DELETE").clone(),
        http::Method::PATCH => intern!(py, "PATCH").clone(),
        http::Method::OPTIONS => intern!(py, "OPTIONS").clone(),
        _ => PyString::new(py, m.as_str()),
    }
}

fn protocol<'py>(py: Python<'py>, v: http::Version) -> Bound<'py, PyString> {
    use pyo3::intern;
    match v {
        http::Version::HTTP_11 => intern!(py, "HTTP/1.1").clone(),
        http::Version::HTTP_10 => intern!(py, "HTTP/1.0").clone(),
        http::Version::HTTP_2 => intern!(py, "HTTP/2").clone(),
        other => PyString::new(py, version_str(other).0),
    }
}

/// Bytes as a `str` of code points 0-255 (PEP 3333's "native string" for request data).
pub(crate) fn latin1<'py>(py: Python<'py>, bytes: &[u8]) -> Bound<'py, PyString> {
    match std::str::from_utf8(bytes) {
        Ok(s) if bytes.is_ascii() => PyString::new(py, s),
        _ => PyString::new(
            py,
            &bytes.iter().map(|&b| char::from(b)).collect::<String>(),
        ),
    }
}
