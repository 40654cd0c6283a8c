//! Bad configuration payloads: each gets a clear status and reason, leaves no secret and no
//! plaintext code on the node's disk (scanned through the node's own mount namespace), and the
//! node keeps waiting for a good one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::Path;

use common::*;

const SECRET: &str = "SECRET-MARKER-5d1e";
/// A line of the example app: its presence anywhere means plaintext code reached the disk.
const PLAINTEXT: &str = "def whoami";

/// Sends `body` (raw bytes, from a file) and prints `status<TAB>reason`.
const SEND_PY: &str = r#"
import sys, ssl, socket, requests
url, cert, body_path = sys.argv[1:4]
r = requests.post(url, data=open(body_path, "rb").read(), headers={"Content-Type": "application/json"}, verify=cert, timeout=30)
print(f"{r.status_code}\t{r.text.strip()}")
"#;

/// Declares a huge Content-Length and sends nothing: the node must answer at once.
const OVERSIZED_PY: &str = r#"
import sys, ssl, socket
host, port, cert = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=cert)
with socket.create_connection((host, port)) as raw, ctx.wrap_socket(raw, server_hostname=host) as s:
    s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 17000000\r\n\r\n{")
    head = s.recv(4096).decode()
print(head.split("\r\n")[0])
"#;

struct Waiting {
    python: std::path::PathBuf,
    dirs: Dirs,
    node: Node,
    cert: std::path::PathBuf,
}

impl Waiting {
    fn start(python: std::path::PathBuf, prepare: impl FnOnce(&Path)) -> (Self, String) {
        let dirs = Dirs::new();
        let key = encrypt_with_mse_lib_crypto(
            &python,
            &repo().join("examples/helloworld/code"),
            &dirs.app(),
        );
        prepare(&dirs.app());
        let node = Node::start(&dirs, &python, &NodeSpec::default());
        let cert = dirs.path("ratls.pem");
        fetch_certificate(&python, &node, &cert);
        (
            Waiting {
                python,
                dirs,
                node,
                cert,
            },
            key,
        )
    }

    fn send(&self, body: &[u8]) -> (u16, String) {
        let file = self.dirs.path("body.json");
        std::fs::write(&file, body).unwrap();
        let out = run_python(
            &self.python,
            SEND_PY,
            &[
                &self.node.url(),
                self.cert.to_str().unwrap(),
                file.to_str().unwrap(),
            ],
        );
        std::fs::remove_file(&file).unwrap();
        let (status, reason) = out.trim_end_matches('\n').split_once('\t').unwrap();
        (status.parse().unwrap(), reason.to_owned())
    }

    /// Nothing secret or decrypted anywhere in the node's directories, and still waiting.
    fn assert_clean(&self, case: &str) {
        let root = self.node.view(self.dirs.root.path());
        for needle in [SECRET, PLAINTEXT] {
            let hits = files_containing(&root, needle.as_bytes());
            assert!(
                hits.is_empty(),
                "{case}: {needle:?} found on disk in {hits:?}\n{}",
                self.node.logs()
            );
        }
        let module = self.node.view(&self.dirs.module());
        assert_eq!(
            std::fs::read_dir(&module).unwrap().count(),
            0,
            "{case}: MODULE_PATH is not empty"
        );
        let script = format!(
            "{CLIENT_PY}\nr = get({:?}, {:?})\nprint(r.status_code, r.headers.get('Mse-Status'))",
            self.node.url(),
            self.cert.to_str().unwrap()
        );
        assert_eq!(
            run_python(&self.python, &script, &[]).trim(),
            "200 Waiting",
            "{case}"
        );
    }
}

fn payload(uuid: &str, key: &str) -> Vec<u8> {
    format!(r#"{{"uuid": "{uuid}", "code_secret_key": "{key}", "app_secrets": {{"login": "{SECRET}"}}}}"#).into_bytes()
}

// THREAT: T8, T9, T7
#[test]
fn bad_payloads_are_refused_clearly_and_write_nothing() {
    let Some(python) = python() else { return };
    let (w, key) = Waiting::start(python.clone(), |_| {});
    w.assert_clean("at start");

    let wrong_key = "00".repeat(32);
    let sealed_for_another = run_python(
        &python,
        "import base64; from mse_lib_crypto.seal_box import seal; print(base64.urlsafe_b64encode(seal(b'{\"code_secret_key\": \"00\"}', bytes(range(32)))).decode().rstrip('='))",
        &[],
    );
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("wrong uuid", payload("00000000-0000-0000-0000-000000000000", &key), 401, "uuid does not match"),
        ("wrong key", payload(APP_ID, &wrong_key), 422, "app.py.enc: decryption failed"),
        ("malformed JSON", format!(r#"{{"uuid": "{APP_ID}", "app_secrets": {{"login": "{SECRET}""#).into_bytes(), 400, "truncated JSON"),
        ("not JSON", b"uuid=1&key=2".to_vec(), 400, "expected a JSON object"),
        ("invalid JSON", format!(r#"{{"uuid": "{APP_ID}", "app_secrets": {{"login": '{SECRET}'}}}}"#).into_bytes(), 400, "invalid JSON at line 1"),
        ("missing uuid", format!(r#"{{"code_secret_key": "{key}", "app_secrets": "{SECRET}"}}"#).into_bytes(), 400, "`uuid` is missing"),
        ("short key", payload(APP_ID, "abcd"), 400, "code_secret_key"),
        ("unknown field", format!(r#"{{"uuid": "{APP_ID}", "app_secret": "{SECRET}"}}"#).into_bytes(), 400, "unknown field `app_secret`"),
        ("no key", format!(r#"{{"uuid": "{APP_ID}", "app_secrets": "{SECRET}"}}"#).into_bytes(), 400, "no code_secret_key"),
        (
            "sealed for another enclave",
            format!(r#"{{"uuid": "{APP_ID}", "code_secret_key": "{key}", "app_secrets": "{SECRET}", "app_sealed_secrets": "{}"}}"#, sealed_for_another.trim()).into_bytes(),
            400,
            "cannot be opened with this node's enclave key",
        ),
    ];
    for (case, body, status, reason) in cases {
        let (got, text) = w.send(&body);
        assert_eq!(got, status, "{case}: {text}\n{}", w.node.logs());
        assert!(
            text.contains(reason),
            "{case}: {text:?} does not say {reason:?}"
        );
        assert!(
            !text.contains(SECRET) && !text.contains(&key),
            "{case}: the answer echoes a secret: {text}"
        );
        w.assert_clean(case);
    }

    let out = run_python(
        &python,
        OVERSIZED_PY,
        &[
            "127.0.0.1",
            &w.node.port.to_string(),
            w.cert.to_str().unwrap(),
        ],
    );
    assert_eq!(
        out.trim(),
        "HTTP/1.1 413 Payload Too Large",
        "{}",
        w.node.logs()
    );
    w.assert_clean("oversized body");

    // After all that, the right payload still works.
    let (got, text) = w.send(&payload(APP_ID, &key));
    assert_eq!(got, 200, "{text}\n{}", w.node.logs());
    let script = format!(
        "{CLIENT_PY}\nprint(wait_ready({:?}, {:?}, '/whoami').text)",
        w.node.url(),
        w.cert.to_str().unwrap()
    );
    assert_eq!(run_python(&python, &script, &[]).trim(), SECRET);
}

// THREAT: T14
#[test]
fn a_truncated_encrypted_file_is_named_and_nothing_is_served() {
    let Some(python) = python() else { return };
    let (w, key) = Waiting::start(python, |app| {
        let f = app.join("app.py.enc");
        let bytes = std::fs::read(&f).unwrap();
        std::fs::write(&f, &bytes[..30]).unwrap();
    });
    let (got, text) = w.send(&payload(APP_ID, &key));
    assert_eq!(got, 422, "{text}");
    assert!(
        text.contains("app.py.enc") && text.contains("too short"),
        "{text}"
    );
    w.assert_clean("truncated ciphertext");
}

// THREAT: T14
#[test]
fn a_tampered_encrypted_file_is_named_and_nothing_is_served() {
    let Some(python) = python() else { return };
    let (w, key) = Waiting::start(python, |app| {
        let f = app.join("app.py.enc");
        let mut bytes = std::fs::read(&f).unwrap();
        let i = bytes.len() / 2;
        bytes[i] ^= 0x01;
        std::fs::write(&f, &bytes).unwrap();
    });
    let (got, text) = w.send(&payload(APP_ID, &key));
    assert_eq!(got, 422, "{text}");
    assert!(
        text.contains("app.py.enc") && text.contains("modified"),
        "{text}"
    );
    w.assert_clean("tampered file");
}

// THREAT: T9
#[test]
fn a_silent_client_is_dropped_and_does_not_hold_the_configuration_server() {
    use std::io::Read as _;
    use std::time::{Duration, Instant};
    let Some(python) = python() else { return };
    let (w, _key) = Waiting::start(python, |_| {});
    // Connects and never starts the TLS handshake.
    let mut silent = std::net::TcpStream::connect(("127.0.0.1", w.node.port)).unwrap();
    let opened = Instant::now();
    // Meanwhile other clients are served (this GET goes through while the silent one is open).
    w.assert_clean("with a silent client connected");
    // The node closes it after its handshake timeout (10 s); without one, this read would block
    // for the whole 60 s and fail.
    silent
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut buf = [0u8; 64];
    match silent.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("the node sent {n} bytes to a client that never spoke"),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!(
            "the silent connection was not closed by the node after {:?}: {e}\n{}",
            opened.elapsed(),
            w.node.logs()
        ),
    }
    assert!(
        opened.elapsed() < Duration::from_secs(30),
        "closed only after {:?}",
        opened.elapsed()
    );
}
