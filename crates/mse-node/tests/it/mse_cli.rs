//! The original client drives the node unchanged: mse-cli 1.3's bootstrap functions
//! (`wait_for_conf_server`, `configure_app` with its `ConfigurationPayload`, `wait_for_app_server`)
//! and mse-lib-crypto's sealed box, against code encrypted by mse-lib-crypto 1.4.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::*;

// THREAT: T1
#[test]
fn mse_cli_configures_the_node_with_the_key_inside_sealed_secrets() {
    let (Some(python), Some(cli)) = (python(), mse_cli_python()) else {
        return;
    };
    let dirs = Dirs::new();
    let key = encrypt_with_mse_lib_crypto(
        &python,
        &repo().join("examples/helloworld/code"),
        &dirs.app(),
    );
    let node = Node::start(&dirs, &python, &NodeSpec::default());
    let cert = dirs.path("ratls.pem");
    fetch_certificate(&python, &node, &cert);

    // The enclave key is read from the certificate's quote (report_data[32:64]) as `mse home
    // seal --receiver-enclave` does: with intel-sgx-ra when it is there, else by offset.
    let script = r#"
import sys, json, uuid
from pathlib import Path
from mse_cli.core.bootstrap import ConfigurationPayload, configure_app, wait_for_conf_server, wait_for_app_server
from mse_cli.core.clock_tick import ClockTick
from mse_lib_crypto.seal_box import seal
from cryptography import x509

url, cert_path, app_id, key_hex = sys.argv[1:5]
cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
quote = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.2.840.113741.1337.6")).value.value
enclave_pk = quote[368 + 32:368 + 64]

wait_for_conf_server(ClockTick(period=1, timeout=60, message="conf server"), url, verify=cert_path)
sealed = seal(json.dumps({"code_secret_key": key_hex, "api_token": "TOKEN-123"}).encode(), enclave_pk)
data = ConfigurationPayload(app_id=uuid.UUID(app_id), secrets={"login": "alice"}, sealed_secrets=sealed,
                            code_secret_key=None, ssl_private_key=None)
configure_app(url, data.payload(), verify=cert_path)
wait_for_app_server(ClockTick(period=1, timeout=60, message="app"), url, "/whoami", verify=cert_path)
import requests
r = requests.get(url + "/whoami", verify=cert_path, timeout=10)
assert r.status_code == 200 and r.text == "alice", (r.status_code, r.text)
print("ok")
"#;
    let out = run_python(
        &cli,
        script,
        &[&node.url(), cert.to_str().unwrap(), APP_ID, &key],
    );
    assert_eq!(out.trim().lines().last(), Some("ok"), "{}", node.logs());

    // SEALED_SECRETS_PATH holds the opened object, code key included, as the original wrote it.
    let sealed = std::fs::read_to_string(node.view(&dirs.sealed_secrets())).unwrap();
    let v: serde_json::Value = serde_json::from_str(&sealed).unwrap();
    assert_eq!(v["api_token"], "TOKEN-123");
    assert_eq!(v["code_secret_key"], key.as_str());
    // The decrypted code, without the clear files (the original decrypts *.enc only).
    let app_py = std::fs::read_to_string(node.view(&dirs.module().join("app.py"))).unwrap();
    assert!(app_py.contains("def whoami"));
    assert!(!node.view(&dirs.module().join("requirements.txt")).exists());
}

#[test]
fn mse_cli_reports_a_refused_configuration() {
    let (Some(python), Some(cli)) = (python(), mse_cli_python()) else {
        return;
    };
    let dirs = Dirs::new();
    encrypt_with_mse_lib_crypto(
        &python,
        &repo().join("examples/helloworld/code"),
        &dirs.app(),
    );
    let node = Node::start(&dirs, &python, &NodeSpec::default());
    let cert = dirs.path("ratls.pem");
    fetch_certificate(&python, &node, &cert);
    let script = r#"
import sys, uuid
from mse_cli.core.bootstrap import ConfigurationPayload, configure_app, is_waiting_for_secrets, is_ready
from mse_cli.error import UnexpectedResponse
url, cert_path = sys.argv[1:3]
assert is_waiting_for_secrets(url, verify=cert_path)
assert not is_ready(url, "/whoami", verify=cert_path)
data = ConfigurationPayload(app_id=uuid.uuid4(), secrets={"login": "x"}, sealed_secrets=None,
                            code_secret_key=bytes(32), ssl_private_key=None)
try:
    configure_app(url, data.payload(), verify=cert_path)
except UnexpectedResponse as e:
    print(e)
assert is_waiting_for_secrets(url, verify=cert_path)
"#;
    let out = run_python(&cli, script, &[&node.url(), cert.to_str().unwrap()]);
    assert!(
        out.contains("Response 401") && out.contains("uuid does not match"),
        "{out}\n{}",
        node.logs()
    );
}
