//! The node's life: the owner's certificate mode, `--timeout`, a restart that finds its code
//! installed, and stopping on a signal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const HELLO: &str = "def app(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'hello']\n";

fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl").arg("-sS").args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn the_owners_certificate_serves_the_app_with_the_key_sent_in_the_payload() {
    let Some(python) = python() else { return };
    let dirs = Dirs::new();
    std::fs::write(dirs.app().join("app.py"), HELLO).unwrap();
    // The owner's certificate for 127.0.0.1 ships with the app; its key does not.
    let make_certs = r#"
import sys, datetime
from pathlib import Path
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
import ipaddress
out = Path(sys.argv[1])
for name in ("owner", "other"):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "owner.example")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    (out / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (out / f"{name}.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
"#;
    run_python(&python, make_certs, &[dirs.root.path().to_str().unwrap()]);
    std::fs::copy(dirs.path("owner.pem"), dirs.app().join("fullchain.pem")).unwrap();
    let chain = dirs.app().join("fullchain.pem");
    let spec = NodeSpec {
        ssl: vec!["--certificate".into(), chain.to_str().unwrap().into()],
        ..NodeSpec::default()
    };
    let node = Node::start(&dirs, &python, &spec);
    let ratls = dirs.path("ratls.pem");
    fetch_certificate(&python, &node, &ratls);

    let send = |key_file: &str| {
        let script = format!(
            "{CLIENT_PY}\nr = post({:?}, {:?}, json={{'uuid': {APP_ID:?}, 'ssl_private_key': open({:?}).read()}})\nprint(r.status_code, r.text.strip())",
            node.url(),
            ratls.to_str().unwrap(),
            dirs.path(key_file).to_str().unwrap()
        );
        run_python(&python, &script, &[])
    };
    let missing = format!(
        "{CLIENT_PY}\nprint(post({:?}, {:?}, json={{'uuid': {APP_ID:?}}}).status_code)",
        node.url(),
        ratls.to_str().unwrap()
    );
    assert_eq!(run_python(&python, &missing, &[]).trim(), "400");
    let wrong = send("other.key");
    assert!(
        wrong.starts_with("400 ssl_private_key cannot be used"),
        "{wrong}"
    );
    assert!(!node.view(&dirs.key().join("key.pem")).exists());
    assert_eq!(send("owner.key").trim(), "200");

    // The app now answers with the owner's certificate: trusted through owner.pem, not RA-TLS.
    let url = format!("{}/", node.url());
    let owner = dirs.path("owner.pem");
    let mut ok = false;
    for _ in 0..100 {
        let (good, body) = curl(&["--cacert", owner.to_str().unwrap(), &url]);
        if good && body == "hello" {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(ok, "{}", node.logs());
    let (good, _) = curl(&["--cacert", ratls.to_str().unwrap(), &url]);
    assert!(
        !good,
        "the app must not be served with the RA-TLS certificate in --certificate mode"
    );
    let stored = std::fs::read(node.view(&dirs.key().join("key.pem"))).unwrap();
    assert_eq!(stored, std::fs::read(dirs.path("owner.key")).unwrap());
}

#[test]
fn timeout_starts_clear_code_without_secrets() {
    let Some(python) = python() else { return };
    let dirs = Dirs::new();
    std::fs::write(dirs.app().join("app.py"), HELLO).unwrap();
    let spec = NodeSpec {
        ssl: vec!["--no-ssl".into()],
        extra: vec!["--timeout".into(), "1".into()],
        ..NodeSpec::default()
    };
    let node = Node::start(&dirs, &python, &spec);
    node.wait_log("serving the app", Duration::from_secs(30));
    let (good, body) = curl(&[&format!("http://127.0.0.1:{}/", node.port)]);
    assert!(good && body == "hello", "{body}\n{}", node.logs());
    assert!(!node.view(&dirs.secrets()).exists());
}

// THREAT: T1, T14
#[test]
fn timeout_with_encrypted_code_fails_instead_of_serving_ciphertext() {
    let Some(python) = python() else { return };
    let dirs = Dirs::new();
    encrypt_with_mse_lib_crypto(
        &python,
        &repo().join("examples/helloworld/code"),
        &dirs.app(),
    );
    let spec = NodeSpec {
        extra: vec!["--timeout".into(), "1".into()],
        ..NodeSpec::default()
    };
    let mut node = Node::start(&dirs, &python, &spec);
    let status = node.wait_exit(Duration::from_secs(30));
    assert!(!status.success());
    assert!(
        node.logs().contains("no code_secret_key"),
        "{}",
        node.logs()
    );
}

#[test]
fn a_restart_reuses_the_identity_and_the_installed_code() {
    let Some(python) = python() else { return };
    let dirs = Dirs::new();
    let key = encrypt_with_mse_lib_crypto(
        &python,
        &repo().join("examples/helloworld/code"),
        &dirs.app(),
    );
    // Persistence needs the host's disk: the private storage is gone when the node stops.
    let spec = NodeSpec {
        sandbox: false,
        ..NodeSpec::default()
    };
    let mut first = Node::start(&dirs, &python, &spec);
    let port = first.port;
    let cert1 = dirs.path("first.pem");
    fetch_certificate(&python, &first, &cert1);
    let script = format!(
        "{CLIENT_PY}\nr = post({url:?}, {cert:?}, json={{'uuid': {APP_ID:?}, 'code_secret_key': {key:?}, 'app_secrets': {{'login': 'carol'}}}})\nassert r.status_code == 200, r.text\nprint(wait_ready({url:?}, {cert:?}, '/whoami').text)",
        url = first.url(),
        cert = cert1.to_str().unwrap()
    );
    assert_eq!(run_python(&python, &script, &[]).trim(), "carol");
    first.signal("TERM");
    assert!(
        first.wait_exit(Duration::from_secs(40)).success(),
        "{}",
        first.logs()
    );
    let first_logs = first.logs();
    drop(first);

    let second = Node::start_on(port, &dirs, &python, &spec);
    second.wait_log("code already installed", Duration::from_secs(10));
    let cert2 = dirs.path("second.pem");
    fetch_certificate(&python, &second, &cert2);
    assert_eq!(
        std::fs::read(&cert1).unwrap(),
        std::fs::read(&cert2).unwrap(),
        "the certificate changed across the restart"
    );
    let script = format!(
        "{CLIENT_PY}\nprint(wait_ready({:?}, {:?}, '/whoami').text)",
        second.url(),
        cert1.to_str().unwrap()
    );
    assert_eq!(
        run_python(&python, &script, &[]).trim(),
        "carol",
        "{}\n{first_logs}",
        second.logs()
    );
    assert!(second.logs().contains("reusing the enclave key"));
}

#[test]
fn sigint_while_waiting_exits_cleanly() {
    let Some(python) = python() else { return };
    let dirs = Dirs::new();
    std::fs::write(dirs.app().join("app.py"), HELLO).unwrap();
    let mut node = Node::start(&dirs, &python, &NodeSpec::default());
    node.signal("INT");
    let status = node.wait_exit(Duration::from_secs(40));
    assert!(status.success(), "{status}\n{}", node.logs());
}

/// A TLS record carrying a Finished message where the server expects a ClientHello: the record
/// header (handshake, version 3.1 as ClientHellos say, 16 bytes), the message header (Finished,
/// 12 bytes), then 12 bytes of verify data.
const FINISHED_FIRST: [u8; 21] = [
    0x16, 0x03, 0x01, 0x00, 0x10, 0x14, 0x00, 0x00, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

// THREAT: T9
#[test]
fn clients_that_make_rustls_warn_do_not_write_to_the_nodes_log() {
    let Some(python) = python() else { return };
    let dirs = Dirs::new();
    std::fs::write(dirs.app().join("app.py"), HELLO).unwrap();
    let spec = NodeSpec {
        extra: vec!["--timeout".into(), "1".into()],
        ..NodeSpec::default()
    };
    let node = Node::start(&dirs, &python, &spec);
    node.wait_log("serving the app", Duration::from_secs(30));
    // The whole of that line, in case the pipe delivered it in two reads.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !node.stderr.lock().unwrap().ends_with('\n') && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let logged_before = node.stderr.lock().unwrap().len();
    // `-servername 127.0.0.1` puts the IP address in the SNI extension, as wrk does (RFC 6066
    // forbids it); rustls ignores it and warns, once per connection, if let through.
    for _ in 0..3 {
        let mut s_client = Command::new("openssl")
            .args(["s_client", "-quiet", "-ign_eof", "-connect"])
            .arg(format!("127.0.0.1:{}", node.port))
            .args(["-servername", "127.0.0.1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        s_client
            .stdin
            .take()
            .unwrap()
            .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let out = s_client.wait_with_output().unwrap();
        let response = String::from_utf8_lossy(&out.stdout);
        assert!(
            response.starts_with("HTTP/1.1 200") && response.ends_with("hello"),
            "{response}\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            node.logs()
        );
    }
    // A message out of order: rustls warns, then refuses the connection.
    for _ in 0..3 {
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", node.port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        tcp.write_all(&FINISHED_FIRST).unwrap();
        let mut alert = Vec::new();
        let _ = tcp.read_to_end(&mut alert); // the node's alert, then the close
        assert_eq!(
            alert.first(),
            Some(&0x15),
            "expected a TLS alert: {alert:?}"
        );
    }
    // The access log (stdout) has the three requests; stderr has nothing new.
    node.wait_log("\"GET / HTTP/1.1\" 200", Duration::from_secs(5));
    let logged_since = node.stderr.lock().unwrap()[logged_before..].to_owned();
    assert_eq!(logged_since, "", "{}", node.logs());
}
