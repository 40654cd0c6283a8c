//! PEP 3333 conformance as the standard library checks it: apps wrapped in
//! `wsgiref.validate.validator` run a request mix, and every complaint of the validator (raised in
//! the call, the iteration, `close()`, or a destructor) is collected and must be absent.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod common;

use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::Full;
use mse_python::PyApp;

/// Records the validator's complaints; `/__problems__` returns them. Imported by the apps below.
const RECORDER: &str = r#"
import gc
import sys
import warnings
from wsgiref.validate import validator, WSGIWarning

warnings.simplefilter("error", WSGIWarning)
PROBLEMS = []
_previous_hook = sys.unraisablehook

def _unraisable(u):
    PROBLEMS.append(f"unraisable: {u.exc_type.__name__}: {u.exc_value}")
    _previous_hook(u)

sys.unraisablehook = _unraisable
CHECKED = (AssertionError, WSGIWarning)


class _Iter:
    def __init__(self, inner):
        self.inner = inner
        self.it = iter(inner)

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return next(self.it)
        except CHECKED as e:
            PROBLEMS.append(f"next: {e!r}")
            raise

    def close(self):
        try:
            self.inner.close()
        except CHECKED as e:
            PROBLEMS.append(f"close: {e!r}")
            raise


def validated(app):
    checked = validator(app)

    def outer(environ, start_response):
        if environ["PATH_INFO"] == "/__problems__":
            gc.collect()
            start_response("200 OK", [("Content-Type", "text/plain")])
            return ["\n".join(PROBLEMS).encode()]
        try:
            return _Iter(checked(environ, start_response))
        except CHECKED as e:
            PROBLEMS.append(f"call: {e!r}")
            raise

    return outer
"#;

const PLAIN_APP: &str = r#"
from validation_plain import validated

def inner(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/hello":
        body = b"hello"
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/echo":
        n = int(environ.get("CONTENT_LENGTH") or 0)
        data = environ["wsgi.input"].read(n)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [data]
    if path == "/lines":
        inp = environ["wsgi.input"]
        first = inp.readline()
        rest = inp.readlines()
        body = b"%d|%s|%d" % (len(first), first.strip(), len(rest))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        def gen():
            for i in range(100):
                yield b"chunk %d\n" % i
        return gen()
    if path == "/errors":
        environ["wsgi.errors"].write("a line for the log\n")
        environ["wsgi.errors"].writelines(["two\n", "lines\n"])
        environ["wsgi.errors"].flush()
        start_response("204 No Content", [])
        return []
    if path == "/boom":
        raise RuntimeError("boom (deliberate)")
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]

app = validated(inner)
"#;

const FLASK_APP: &str = r#"
from flask import Flask, Response, request
from validation_flask import validated

flask_app = Flask(__name__)

@flask_app.get("/hello")
def hello():
    return "hello"

@flask_app.post("/echo")
def echo():
    return request.get_data()

@flask_app.get("/stream")
def stream():
    def gen():
        for i in range(100):
            yield f"chunk {i}\n"
    return Response(gen(), mimetype="text/plain")

@flask_app.get("/boom")
def boom():
    raise RuntimeError("boom (deliberate)")

app = validated(flask_app)
"#;

async fn request_mix(addr: std::net::SocketAddr) {
    let r = send(addr, get("/hello")).await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "hello"));

    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let r = send(
        addr,
        post("/echo", "application/octet-stream", payload.clone()),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, payload, "POST body echoed byte for byte");

    let r = send(addr, get("/stream")).await;
    assert_eq!(r.status, 200);
    let expected: String = (0..100).map(|i| format!("chunk {i}\n")).collect();
    assert_eq!(r.text(), expected);

    let head = Request::head("/hello")
        .header("host", "t")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = send(addr, head).await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty(), "HEAD has no body");
    assert_eq!(
        r.header("content-length"),
        Some("5"),
        "HEAD keeps the GET's length"
    );

    let r = send(addr, get("/boom")).await;
    assert_eq!(r.status, 500, "an exception in the app is a 500");

    // The server is still there after the exception.
    let r = send(addr, get("/hello")).await;
    assert_eq!(r.status, 200);
}

async fn problems(addr: std::net::SocketAddr) -> String {
    let r = send(addr, get("/__problems__")).await;
    assert_eq!(r.status, 200);
    r.text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_wsgi_app_passes_the_validator() {
    init_logs();
    let dir = AppDir::new(&[
        ("validation_plain.py", RECORDER),
        ("plain_validated.py", PLAIN_APP),
    ]);
    let app = PyApp::load(dir.config("plain_validated:app", &[])).unwrap();
    let addr = serve(app).await;
    request_mix(addr).await;

    let r = send(
        addr,
        post("/lines", "text/plain", "first line\nsecond\nthird\n"),
    )
    .await;
    assert_eq!(r.text(), "11|first line|2");
    let r = send(addr, get("/errors")).await;
    assert_eq!(r.status, 204);

    let problems = problems(addr).await;
    assert!(problems.is_empty(), "the validator complained:\n{problems}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flask_app_passes_the_validator() {
    init_logs();
    let Some(site) = site_packages("a_flask_app_passes_the_validator") else {
        return;
    };
    let dir = AppDir::new(&[
        ("validation_flask.py", RECORDER),
        ("flask_validated.py", FLASK_APP),
    ]);
    let app = PyApp::load(dir.config("flask_validated:app", &site)).unwrap();
    let addr = serve(app).await;
    request_mix(addr).await;
    let problems = problems(addr).await;
    assert!(problems.is_empty(), "the validator complained:\n{problems}");
}
