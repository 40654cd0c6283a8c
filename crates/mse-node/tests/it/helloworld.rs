//! The seed's example app, end to end: code encrypted by the original mse-lib-crypto 1.4, the
//! RA-TLS certificate pinned, configured with Python requests, then used from requests and curl.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::*;

// THREAT: T1, T6
#[test]
fn the_seed_app_over_pinned_ra_tls_from_requests_and_curl() {
    let Some(python) = python() else { return };
    let dirs = Dirs::new();
    let key = encrypt_with_mse_lib_crypto(
        &python,
        &repo().join("examples/helloworld/code"),
        &dirs.app(),
    );
    assert!(
        dirs.app().join("app.py.enc").is_file() && dirs.app().join("requirements.txt").is_file()
    );

    let mut node = Node::start(&dirs, &python, &NodeSpec::default());
    let cert = dirs.path("ratls.pem");
    fetch_certificate(&python, &node, &cert);

    let secrets = std::fs::read_to_string(repo().join("examples/helloworld/secrets.json")).unwrap();
    let script = format!(
        r#"{CLIENT_PY}
url, verify = {url:?}, {cert:?}
r = get(url, verify)
assert r.status_code == 200 and r.headers["Mse-Status"] == "Waiting", (r.status_code, r.headers)
assert r.text == "Waiting for code secret key and/or ssl private key...", r.text
payload = {{"uuid": {id:?}, "app_secrets": json.loads({secrets:?}), "code_secret_key": {key:?}}}
r = post(url, verify, json=payload, headers={{"Content-Type": "application/json"}})
assert r.status_code == 200, (r.status_code, r.text)
r = wait_ready(url, verify, "/whoami")
assert r.status_code == 200 and r.text == "jane@example.com", (r.status_code, r.text)
assert get(url + "/", verify).status_code == 404
assert post(url + "/", verify).status_code == 200
r = get(url + "/", verify)
assert r.status_code == 200 and r.text.startswith("20"), r.text
assert get(url + "/", verify).status_code == 404
print("ok")
"#,
        url = node.url(),
        cert = cert.to_str().unwrap(),
        id = APP_ID,
    );
    assert_eq!(
        run_python(&python, &script, &[]).trim(),
        "ok",
        "{}",
        node.logs()
    );

    // curl, pinned to the same certificate, HTTP/2 and HTTP/1.1.
    for proto in ["--http2", "--http1.1"] {
        let out = Command::new("curl")
            .args([
                "-sS",
                "--fail",
                proto,
                "--cacert",
                cert.to_str().unwrap(),
                "-w",
                "\n%{http_version}",
            ])
            .arg(format!("{}/whoami", node.url()))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "curl {proto}: {}{}",
            String::from_utf8_lossy(&out.stderr),
            node.logs()
        );
        let want = if proto == "--http2" {
            "jane@example.com\n2"
        } else {
            "jane@example.com\n1.1"
        };
        assert_eq!(text, want);
    }
    // An unpinned curl refuses the self-signed certificate.
    let out = Command::new("curl")
        .args(["-sS", &format!("{}/whoami", node.url())])
        .output()
        .unwrap();
    assert!(!out.status.success());

    // The secrets file holds what was sent, where the app reads it, owner-only.
    let on_node = node.view(&dirs.secrets());
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&on_node).unwrap()).unwrap();
    assert_eq!(
        written,
        serde_json::from_str::<serde_json::Value>(&secrets).unwrap()
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&on_node).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Access log on stdout.
    node.wait_log("\"GET /whoami HTTP/2.0\" 200 16", Duration::from_secs(5));
    node.wait_log("\"POST / HTTP/1.1\" 200 0", Duration::from_secs(5));

    // SIGTERM: drain and exit 0.
    node.signal("TERM");
    let status = node.wait_exit(Duration::from_secs(40));
    assert!(status.success(), "{status}\n{}", node.logs());
}

#[test]
fn a_dns_san_is_served_and_matches_the_host_used() {
    let Some(python) = python() else { return };
    let dirs = Dirs::new();
    common::copy_dir(&repo().join("examples/helloworld/code"), &dirs.app());
    let spec = NodeSpec {
        san: "localhost".into(),
        ..NodeSpec::default()
    };
    let node = Node::start(&dirs, &python, &spec);
    let cert = dirs.path("ratls.pem");
    fetch_certificate(&python, &node, &cert);
    // Clear code: no key needed.
    let script = format!(
        r#"{CLIENT_PY}
r = post("https://localhost:{port}", {cert:?}, json={{"uuid": {id:?}, "app_secrets": {{"login": "bob"}}}})
assert r.status_code == 200, (r.status_code, r.text)
print("ok")
"#,
        port = node.port,
        cert = cert.to_str().unwrap(),
        id = APP_ID
    );
    // requests resolves localhost; the node listens on 127.0.0.1 only, so pin the address for it.
    let script = script.replace(
        "import requests",
        "import requests, socket\n_orig = socket.getaddrinfo\nsocket.getaddrinfo = lambda h, *a, **k: _orig('127.0.0.1' if h == 'localhost' else h, *a, **k)",
    );
    assert_eq!(
        run_python(&python, &script, &[]).trim(),
        "ok",
        "{}",
        node.logs()
    );
    let wait = format!(
        "{CLIENT_PY}\nwait_ready('https://127.0.0.1:{}', False, '/whoami')",
        node.port
    );
    run_python(&python, &wait, &[]);
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--cacert", cert.to_str().unwrap()])
        .args(["--resolve", &format!("localhost:{}:127.0.0.1", node.port)])
        .arg(format!("https://localhost:{}/whoami", node.port))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        node.logs()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "bob");
    // The IP is not in the certificate: a pinned client refuses it.
    let out = Command::new("curl")
        .args(["-sS", "--cacert", cert.to_str().unwrap()])
        .arg(format!("https://127.0.0.1:{}/whoami", node.port))
        .output()
        .unwrap();
    assert!(!out.status.success());
}
