//! An ASGI (FastAPI) app through the real node over pinned RA-TLS: path and query parameters, a
//! JSON body, a streamed response (not buffered), exceptions → 500 while the node keeps serving,
//! the lifespan (startup state read by a route, shutdown after the last request on SIGTERM), and
//! the sandbox as seen from the event loop and from the framework's worker threads.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::*;

fn app_dir() -> std::path::PathBuf {
    repo().join("crates/mse-node/tests/apps/asgi_fastapi")
}

/// Starts the node on the FastAPI app, pins its certificate, sends the configuration (clear code,
/// app secrets) and waits for the app. Returns the node and the certificate path.
fn start_configured(dirs: &Dirs, python: &std::path::Path) -> (Node, std::path::PathBuf) {
    copy_dir(&app_dir(), &dirs.app());
    let node = Node::start(dirs, python, &NodeSpec::default());
    let cert = dirs.path("ratls.pem");
    fetch_certificate(python, &node, &cert);
    let script = format!(
        r#"{CLIENT_PY}
url, verify = {url:?}, {cert:?}
r = post(url, verify, json={{"uuid": {id:?}, "app_secrets": {{"login": "alice"}}}})
assert r.status_code == 200, (r.status_code, r.text)
r = wait_ready(url, verify, "/state")
assert r.status_code == 200, (r.status_code, r.text)
print("ok")
"#,
        url = node.url(),
        cert = cert.to_str().unwrap(),
        id = APP_ID,
    );
    assert_eq!(
        run_python(python, &script, &[]).trim(),
        "ok",
        "{}",
        node.logs()
    );
    (node, cert)
}

#[test]
fn a_fastapi_app_serves_params_json_streams_errors_and_its_lifespan_over_ra_tls() {
    let Some(python) = python() else { return };
    let dirs = Dirs::new();
    let (mut node, cert) = start_configured(&dirs, &python);
    node.wait_log("asgi-test: lifespan startup", Duration::from_secs(5));
    node.wait_log("interface=asgi", Duration::from_secs(5));

    let script = format!(
        r#"{CLIENT_PY}
import os, signal, threading
url, verify = {url:?}, {cert:?}
s = requests.Session()
s.verify = verify; s.trust_env = False  # REQUESTS_CA_BUNDLE would override s.verify

# Lifespan startup: state set from the secrets file, read by a route.
r = s.get(url + "/state", timeout=10)
assert r.status_code == 200 and r.json() == {{"login": "alice"}}, (r.status_code, r.text)

# Path and query parameters (percent-encoded UTF-8, repeated requests on one connection).
r = s.get(url + "/items/42", params={{"q": "café & co", "limit": "3"}}, timeout=10)
assert r.status_code == 200, r.text
assert r.json() == {{"item_id": 42, "q": "café & co", "limit": 3}}, r.json()
r = s.get(url + "/items/7", timeout=10)
assert r.json() == {{"item_id": 7, "q": None, "limit": 10}}, r.json()
r = s.get(url + "/items/not-a-number", timeout=10)
assert r.status_code == 422, r.status_code
r = s.get(url + "/nowhere", timeout=10)
assert r.status_code == 404, r.status_code

# JSON body in, JSON out; invalid JSON is the framework's 422.
item = {{"name": "lamp", "price": 12.5, "tags": ["home", "ünïcode"]}}
r = s.post(url + "/echo", json=item, timeout=10)
assert r.status_code == 200 and r.headers["content-type"] == "application/json", (r.status_code, r.headers)
assert r.json() == {{"echo": item, "total": 25.0}}, r.json()
r = s.post(url + "/echo", data=b"{{not json", headers={{"Content-Type": "application/json"}}, timeout=10)
assert r.status_code == 422, r.status_code

# A 3 MiB body, with Content-Length and chunked.
body = bytes(range(256)) * (3 * 4096)
r = s.post(url + "/raw", data=body, timeout=30)
assert r.json() == {{"bytes": len(body), "first": "00", "last": "ff"}}, r.json()
r = s.post(url + "/raw", data=iter([body[:1000], body[1000:]]), timeout=30)
assert r.json() == {{"bytes": len(body), "first": "00", "last": "ff"}}, r.json()

# Streaming: the first chunk reaches the client while the app still waits for /release, so the
# node does not buffer the response.
r = s.get(url + "/stream", stream=True, timeout=10)
assert r.status_code == 200 and r.headers.get("transfer-encoding") == "chunked", r.headers
got = b""
it = r.iter_content(chunk_size=None)
while b"first chunk\n" not in got:
    got += next(it)
other = requests.Session(); other.verify = verify; other.trust_env = False
assert other.post(url + "/release", timeout=10).json() == {{"released": True}}
for chunk in it:
    got += chunk
want = b"first chunk\n" + b"".join(f"line {{i}}\n".encode() for i in range(100))
assert got == want, got[:200]

# Exceptions: a 500 without the traceback in the body, on the loop and in the thread pool; the
# same connection keeps serving.
for path in ["/boom", "/boom-sync"]:
    r = s.get(url + path, timeout=10)
    assert r.status_code == 500, (path, r.status_code)
    assert "deliberate" not in r.text and "Traceback" not in r.text, r.text
r = s.get(url + "/items/1", timeout=10)
assert r.status_code == 200, r.status_code

# SIGTERM with a request in flight: it completes, then the lifespan shutdown runs.
result = {{}}
def slow():
    c = requests.Session(); c.verify = verify; c.trust_env = False
    result["r"] = c.get(url + "/slow", params={{"seconds": "1.5"}}, timeout=30)
t = threading.Thread(target=slow); t.start()
time.sleep(0.5)
os.kill({pid}, signal.SIGTERM)
t.join()
assert result["r"].status_code == 200 and result["r"].json() == {{"slept": 1.5}}, result["r"].text
print("ok")
"#,
        url = node.url(),
        cert = cert.to_str().unwrap(),
        pid = node.pid(),
    );
    assert_eq!(
        run_python(&python, &script, &[]).trim(),
        "ok",
        "{}",
        node.logs()
    );
    let status = node.wait_exit(Duration::from_secs(40));
    assert!(status.success(), "{status}\n{}", node.logs());

    let logs = node.logs();
    // Both exceptions were logged with their traceback, on the node's side only.
    assert!(logs.contains("boom (deliberate)"), "{logs}");
    assert!(
        logs.contains("boom in the thread pool (deliberate)"),
        "{logs}"
    );
    // Access log lines, then the lifespan shutdown after the in-flight request was answered.
    let stdout = node.stdout.lock().unwrap().clone();
    let served = stdout
        .find("\"GET /slow HTTP/1.1\" 200")
        .unwrap_or_else(|| panic!("no access log line for /slow:\n{logs}"));
    let shutdown = stdout
        .find("asgi-test: lifespan shutdown complete")
        .unwrap_or_else(|| panic!("the lifespan shutdown did not run:\n{logs}"));
    assert!(
        served < shutdown,
        "the lifespan shutdown ran before the in-flight request was answered:\n{logs}"
    );
    assert!(
        stdout.contains("\"GET /items/42 HTTP/1.1\" 200"),
        "the query string must not be logged:\n{logs}"
    );
}

// THREAT: an ASGI app (or a dependency it imports) starts a process or reaches files outside its
// storage (the enclave key, the host, its own measured code): the seccomp filter and Landlock
// must hold on the event loop thread and on the framework's worker threads, as for WSGI.
#[test]
fn the_sandbox_holds_for_an_asgi_app_on_the_loop_and_in_worker_threads() {
    let Some(python) = python() else { return };
    let dirs = Dirs::new();
    let host_file = dirs.path("host-only.txt");
    std::fs::write(&host_file, "not for the app").unwrap();
    let (node, cert) = start_configured(&dirs, &python);
    let script = format!(
        r#"{CLIENT_PY}
url, verify = {url:?}, {cert:?}
want = {{
    "subprocess": "PermissionError", "fork": "PermissionError", "popen": "PermissionError",
    "read_key": "PermissionError", "write_code": "PermissionError", "write_etc": "PermissionError",
    "read_host_file": "PermissionError", "write_home": "allowed", "write_tmp": "allowed",
}}
for path in ["/sandbox", "/sandbox-sync"]:
    r = get(url + path, verify, params={{"host_file": {host:?}}})
    assert r.status_code == 200, (path, r.status_code, r.text)
    assert r.json() == want, (path, r.json())
print("ok")
"#,
        url = node.url(),
        cert = cert.to_str().unwrap(),
        host = host_file.to_str().unwrap(),
    );
    assert_eq!(
        run_python(&python, &script, &[]).trim(),
        "ok",
        "{}",
        node.logs()
    );
    // Over HTTP/2 as well (curl, pinned): one stream per request, same app.
    let out = Command::new("curl")
        .args([
            "-sS",
            "--fail",
            "--http2",
            "--cacert",
            cert.to_str().unwrap(),
        ])
        .arg(format!("{}/items/5?q=h2", node.url()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        node.logs()
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        r#"{"item_id":5,"q":"h2","limit":10}"#
    );
}
