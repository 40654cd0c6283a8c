//! WSGI semantics the apps rely on (PEP 3333), with plain WSGI apps (standard library only).
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
use http_body_util::{BodyExt, Full};
use mse_python::{Interface, PyApp};
use serde_json::Value;

const APP: &str = r#"
import json
import os
import sys

CLOSED = []

class Tracked:
    def __init__(self, path, inner):
        self.path, self.inner = path, inner
    def __iter__(self):
        return iter(self.inner)
    def close(self):
        CLOSED.append(self.path)

def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path.startswith("/env"):
        read = environ["wsgi.input"].read() if environ["REQUEST_METHOD"] == "POST" else b""
        env = {k: v for k, v in environ.items() if isinstance(v, (str, bool, int, tuple))}
        env["read"] = read.decode("latin-1")
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(env).encode()]
    if path == "/closed":
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(CLOSED).encode()]
    if path == "/exc-info":
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("late failure")
        except ValueError:
            start_response("503 Busy Right Now", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"replaced"]
    if path == "/twice":
        start_response("200 OK", [])
        start_response("200 OK", [])
        return [b"never"]
    if path == "/str-body":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["not bytes"]
    if path == "/bad-header":
        start_response("200 OK", [("X-Bad", "a\r\nInjected: 1")])
        return [b"x"]
    if path == "/no-start-response":
        return [b"oops"]
    if path == "/raise-in-iter":
        start_response("200 OK", [("Content-Type", "text/plain")])
        def gen():
            raise KeyError("in the generator")
            yield b""
        return Tracked(path, gen())
    if path == "/abort-mid-stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        def gen():
            yield b"first part\n" * 1000
            raise KeyError("mid-stream")
        return Tracked(path, gen())
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"abc")
        write(b"")
        return [b"def", b"ghi"]
    if path == "/file":
        f = open(os.path.join(os.path.dirname(__file__), "data.bin"), "rb")
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](f, 4096)
    if path == "/lazy-start":
        def gen():
            start_response("201 Created", [("Content-Type", "text/plain")])
            yield b""
            yield b"lazy"
        return gen()
    if path == "/custom-reason":
        start_response("299 All Good", [("Content-Length", "0")])
        return []
    if path == "/lines":
        n = 0
        size = 0
        for line in environ["wsgi.input"]:
            n += 1
            size += len(line)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%d lines, %d bytes" % (n, size)]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]
"#;

async fn start(module: &str, max_body: Option<u64>) -> (AppDir, std::net::SocketAddr) {
    init_logs();
    let dir = AppDir::new(&[(&format!("{module}.py"), APP)]);
    let data: Vec<u8> = (0..300 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(dir.code().join("data.bin"), data).unwrap();
    let mut cfg = dir.config(&format!("{module}:app"), &[]);
    if let Some(m) = max_body {
        cfg.max_body = m;
    }
    let app = PyApp::load(cfg).unwrap();
    assert_eq!(app.interface(), Interface::Wsgi);
    let addr = serve(app).await;
    (dir, addr)
}

fn json(r: &Reply) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environ_follows_pep_3333() {
    let (_dir, addr) = start("environ_app", None).await;
    let req = Request::get("/env/caf%C3%A9/a%20b?x=1&y=%20")
        .header("host", "example.test:8443")
        .header("cookie", "a=1")
        .header("cookie", "b=2")
        .header("x-multi", "1")
        .header("x-multi", "2")
        .header("x_under", "shadow")
        .header(
            "x-latin",
            http::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        )
        .body(Full::new(Bytes::new()))
        .unwrap();
    let env = json(&send(addr, req).await);
    assert_eq!(env["REQUEST_METHOD"], "GET");
    assert_eq!(env["SCRIPT_NAME"], "");
    // Percent-decoded, and the UTF-8 bytes of "é" as two latin-1 characters.
    assert_eq!(env["PATH_INFO"], "/env/caf\u{c3}\u{a9}/a b");
    assert_eq!(env["QUERY_STRING"], "x=1&y=%20");
    assert_eq!(env["SERVER_PROTOCOL"], "HTTP/1.1");
    assert_eq!(env["SERVER_NAME"], "127.0.0.1");
    assert_eq!(env["SERVER_PORT"], addr.port().to_string());
    assert_eq!(env["REMOTE_ADDR"], "127.0.0.1");
    assert!(env["REMOTE_PORT"].as_str().unwrap().parse::<u16>().is_ok());
    assert_eq!(env["HTTP_HOST"], "example.test:8443");
    assert_eq!(env["HTTP_COOKIE"], "a=1; b=2");
    assert_eq!(env["HTTP_X_MULTI"], "1, 2");
    assert_eq!(env["HTTP_X_LATIN"], "caf\u{e9}");
    assert!(
        env.get("HTTP_X_UNDER").is_none(),
        "header names with '_' are dropped"
    );
    assert_eq!(env["wsgi.url_scheme"], "http");
    assert_eq!(env["wsgi.version"], serde_json::json!([1, 0]));
    assert_eq!(env["wsgi.multithread"], true);
    assert_eq!(env["wsgi.multiprocess"], false);
    assert_eq!(env["wsgi.run_once"], false);
    assert!(env.get("CONTENT_LENGTH").is_none() && env.get("CONTENT_TYPE").is_none());

    let env = json(
        &send(
            addr,
            post("/env", "application/x-www-form-urlencoded", "a=1&b=2"),
        )
        .await,
    );
    assert_eq!(env["CONTENT_TYPE"], "application/x-www-form-urlencoded");
    assert_eq!(env["CONTENT_LENGTH"], "7");
    assert_eq!(env["read"], "a=1&b=2");
    assert!(env.get("HTTP_CONTENT_TYPE").is_none() && env.get("HTTP_CONTENT_LENGTH").is_none());
    assert!(env.get("wsgi.input_terminated").is_none());

    // A chunked body: no CONTENT_LENGTH, and the input says it ends by itself.
    let (tx, body) = channel_body();
    let req = Request::post("/env")
        .header("host", "t")
        .body(body)
        .unwrap();
    let pending = tokio::spawn(send(addr, req));
    tx.send(Bytes::from_static(b"chunk one,")).await.unwrap();
    tx.send(Bytes::from_static(b"chunk two")).await.unwrap();
    drop(tx);
    let env = json(&pending.await.unwrap());
    assert_eq!(env["read"], "chunk one,chunk two");
    assert!(env.get("CONTENT_LENGTH").is_none());
    assert_eq!(env["wsgi.input_terminated"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_response_exc_info_write_and_lazy_start() {
    let (_dir, addr) = start("start_response_app", None).await;

    let r = send(addr, get("/exc-info")).await;
    assert_eq!(
        (r.status.as_u16(), r.text().as_str()),
        (503, "replaced"),
        "exc_info replaces an unsent head"
    );

    let r = send(addr, get("/write")).await;
    assert_eq!(
        (r.status.as_u16(), r.text().as_str()),
        (200, "abcdefghi"),
        "write() data comes first"
    );

    let r = send(addr, get("/lazy-start")).await;
    assert_eq!(
        (r.status.as_u16(), r.text().as_str()),
        (201, "lazy"),
        "start_response inside the iteration"
    );

    let resp = open(addr, get("/custom-reason")).await;
    assert_eq!(resp.status(), 299);
    let reason = resp
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| r.as_bytes().to_vec());
    assert_eq!(reason.as_deref(), Some(&b"All Good"[..]));

    let r = send(addr, get("/file")).await;
    assert_eq!(r.status, 200);
    let expected = std::fs::read(_dir.code().join("data.bin")).unwrap();
    assert_eq!(r.body.len(), expected.len());
    assert!(
        r.body == expected,
        "wsgi.file_wrapper serves the file as it is"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_errors_are_500_and_the_server_keeps_serving() {
    let (_dir, addr) = start("errors_app", None).await;
    for path in [
        "/twice",
        "/str-body",
        "/bad-header",
        "/no-start-response",
        "/raise-in-iter",
    ] {
        let r = send(addr, get(path)).await;
        assert_eq!(r.status, 500, "{path}: {}", r.text());
        assert_eq!(r.text(), "Internal Server Error\n");
    }

    // Once the head is out, a failure aborts the body: the client must not see it as complete.
    // (Depending on timing the connection closes before or after the head went out.)
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    match sender.send_request(get("/abort-mid-stream")).await {
        Err(e) => assert!(e.is_incomplete_message(), "{e}"),
        Ok(resp) => {
            assert_eq!(resp.status(), 200);
            let body = resp.into_body().collect().await;
            assert!(
                body.is_err(),
                "a body cut by an app error ends in an error, not a clean end"
            );
        }
    }

    let r = send(addr, get("/closed")).await;
    let closed: Vec<String> = serde_json::from_slice(&r.body).unwrap();
    assert!(
        closed.contains(&"/raise-in-iter".to_string()),
        "close() after an error: {closed:?}"
    );
    assert!(
        closed.contains(&"/abort-mid-stream".to_string()),
        "close() after an abort: {closed:?}"
    );

    let r = send(addr, get("/nothing-here")).await;
    assert_eq!(r.status, 404, "the server still answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_get_413_and_too_many_headers_431() {
    let (_dir, addr) = start("limits_app", Some(1000)).await;

    let r = send(addr, post("/env", "text/plain", vec![b'x'; 1000])).await;
    assert_eq!(r.status, 200, "exactly at the limit is fine");

    let r = send(addr, post("/env", "text/plain", vec![b'x'; 1001])).await;
    assert_eq!(
        r.status, 413,
        "a declared length over the limit is refused up front"
    );

    // Chunked: the limit is found while the app reads.
    let (tx, body) = channel_body();
    let req = Request::post("/lines")
        .header("host", "t")
        .body(body)
        .unwrap();
    let pending = tokio::spawn(send(addr, req));
    for _ in 0..3 {
        if tx.send(Bytes::from(vec![b'y'; 600])).await.is_err() {
            break;
        }
    }
    drop(tx);
    assert_eq!(pending.await.unwrap().status, 413);

    let mut req = get("/env");
    for i in 0..mse_python::MAX_REQUEST_HEADERS {
        req.headers_mut().insert(
            http::HeaderName::try_from(format!("x-h{i}")).unwrap(),
            http::HeaderValue::from_static("1"),
        );
    }
    assert_eq!(send(addr, req).await.status, 431);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_input_iterates_over_lines_of_a_streamed_body() {
    let (_dir, addr) = start("lines_app", None).await;
    let (tx, body) = channel_body();
    let req = Request::post("/lines")
        .header("host", "t")
        .body(body)
        .unwrap();
    let pending = tokio::spawn(send(addr, req));
    // Lines split across chunks on purpose.
    for part in ["one\ntw", "o\nthr", "ee\n", "no newline at the end"] {
        tx.send(Bytes::from(part)).await.unwrap();
    }
    drop(tx);
    let r = pending.await.unwrap();
    assert_eq!(r.text(), "4 lines, 35 bytes");
}
