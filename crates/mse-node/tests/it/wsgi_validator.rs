//! PEP 3333 conformance as the standard library checks it: the app wrapped in
//! `wsgiref.validate.validator` (its warnings turned into errors) runs a request mix through the
//! node with no assertion. Also covers `--no-ssl`: RA-TLS for the configuration, plain HTTP for
//! the app.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::time::Duration;

use common::*;

const APP: &str = r#"
import warnings
from wsgiref.validate import validator, WSGIWarning

warnings.simplefilter("error", WSGIWarning)

def raw(environ, start_response):
    path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
    if path == "/echo" and method == "POST":
        if environ.get("CONTENT_LENGTH"):
            body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        else:  # chunked: read to the end
            body = b"".join(iter(lambda: environ["wsgi.input"].read(65536), b""))
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/lines" and method == "POST":
        lines = list(environ["wsgi.input"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%d" % len(lines)]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        def chunks():
            for i in range(2000):
                yield b"chunk %d\n" % i
        return chunks()
    if path == "/file":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](open(__file__, "rb"), 4096)
    if path == "/boom":
        raise RuntimeError("boom from the app")
    if path == "/errors":
        environ["wsgi.errors"].write("a line for wsgi.errors\n")
        environ["wsgi.errors"].flush()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]

app = validator(raw)
"#;

#[test]
fn a_validated_wsgi_app_runs_a_request_mix_without_assertion() {
    let Some(python) = python() else { return };
    let dirs = Dirs::new();
    std::fs::write(dirs.app().join("app.py"), APP).unwrap();
    let spec = NodeSpec {
        ssl: vec!["--no-ssl".into()],
        ..NodeSpec::default()
    };
    let node = Node::start(&dirs, &python, &spec);
    let cert = dirs.path("ratls.pem");
    fetch_certificate(&python, &node, &cert);

    let script = format!(
        r#"{CLIENT_PY}
import os, hashlib
conf, app = "https://127.0.0.1:{port}", "http://127.0.0.1:{port}"
r = post(conf, {cert:?}, json={{"uuid": {id:?}}})
assert r.status_code == 200, (r.status_code, r.text)
wait_ready(app, False, "/")
s = requests.Session()
for _ in range(3):
    r = s.get(app + "/", timeout=10); assert r.status_code == 200 and r.text == "hello", r
    r = s.head(app + "/", timeout=10); assert r.status_code == 200 and r.content == b"" and r.headers["Content-Length"] == "5", r.headers
    body = os.urandom(3 << 20)
    r = s.post(app + "/echo", data=body, timeout=30); assert r.status_code == 200 and r.content == body, r.status_code
    r = s.post(app + "/lines", data=b"a\nb\nc", timeout=10); assert r.text == "3", r.text
    r = s.post(app + "/echo", data=iter([b"chunked ", b"body"]), timeout=10); assert r.content == b"chunked body", r.content
    r = s.get(app + "/stream", timeout=10)
    assert r.status_code == 200 and r.text == "".join("chunk %d\n" % i for i in range(2000)), len(r.text)
    r = s.get(app + "/file", timeout=10); assert r.status_code == 200 and "wsgiref.validate" in r.text
    r = s.get(app + "/errors", timeout=10); assert r.status_code == 200
    r = s.get(app + "/boom", timeout=10); assert r.status_code == 500, r.status_code
    r = s.get(app + "/", timeout=10); assert r.status_code == 200
print("ok")
"#,
        port = node.port,
        cert = cert.to_str().unwrap(),
        id = APP_ID,
    );
    assert_eq!(
        run_python(&python, &script, &[]).trim(),
        "ok",
        "{}",
        node.logs()
    );
    // And from curl, plain HTTP.
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--fail",
            &format!("http://127.0.0.1:{}/stream", node.port),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        out.stdout.len(),
        (0..2000)
            .map(|i: usize| format!("chunk {i}\n").len())
            .sum::<usize>()
    );

    node.wait_log("boom from the app", Duration::from_secs(5));
    node.wait_log("a line for wsgi.errors", Duration::from_secs(5));
    let logs = node.logs();
    assert!(
        !logs.contains("AssertionError"),
        "the validator complained:\n{logs}"
    );
    assert!(
        !logs.contains("WSGIWarning"),
        "the validator warned:\n{logs}"
    );
}
