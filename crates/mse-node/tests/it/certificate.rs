//! The RA-TLS certificate read by standard parsers (openssl, Python `cryptography`, x509-parser),
//! its report data binding the TLS key and the enclave key, the simulated quote round-tripping
//! through the quote parser with the documented measurement, and fresh evidence.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::process::Command;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use common::*;
use mse_node::cli::San;
use mse_node::identity::certificate::{CertSpec, EvidenceExt, build};
use mse_node::identity::keys::TlsKey;

const SUBJECT: &str = "CN=localhost,O=MyApp Company,C=FR,L=Paris,ST=Ile-de-France";

// THREAT: T5, T6
#[test]
fn the_certificate_parses_everywhere_and_binds_both_keys() {
    let Some(python) = python() else { return };
    let dirs = Dirs::new();
    std::fs::write(
        dirs.app().join("app.py"),
        "def app(e, s):\n    s('200 OK', [])\n    return [b'x']\n",
    )
    .unwrap();
    let spec = NodeSpec {
        subject: Some(SUBJECT.into()),
        ..NodeSpec::default()
    };
    let node = Node::start(&dirs, &python, &spec);
    let cert = dirs.path("ratls.pem");
    fetch_certificate(&python, &node, &cert);
    let pem = std::fs::read_to_string(&cert).unwrap();
    // What the node stored is what it serves.
    assert_eq!(
        std::fs::read_to_string(node.view(&dirs.key().join("cert.ratls.pem")))
            .unwrap()
            .trim(),
        pem.trim()
    );

    // openssl.
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in", cert.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "Subject: ST = Ile-de-France, L = Paris, C = FR, O = MyApp Company, CN = localhost",
        "X509v3 Basic Constraints: critical\n                CA:TRUE",
        "IP Address:127.0.0.1",
        "1.2.840.113741.1337.6: \n",
        "ecdsa-with-SHA256",
        "NIST CURVE: P-256",
    ] {
        assert!(
            text.contains(needle),
            "openssl output lacks {needle:?}:\n{text}"
        );
    }

    // Python cryptography: the subject DER is exactly `Name.from_rfc4514_string`'s.
    let enclave_pub = std::fs::read(node.view(&dirs.key().join("enclave.pub"))).unwrap();
    let script = r#"
import sys, hashlib
from pathlib import Path
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
cert = x509.load_pem_x509_certificate(Path(sys.argv[1]).read_bytes())
assert cert.subject.public_bytes() == x509.Name.from_rfc4514_string(sys.argv[2]).public_bytes()
assert cert.issuer == cert.subject
bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
assert bc.critical and bc.value.ca and bc.value.path_length is None
san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.2.840.113741.1337.6"))
assert not ext.critical
quote = ext.value.value
report_data = quote[368:432]
point = cert.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
assert report_data[:32] == hashlib.sha256(point).digest(), "report_data does not bind the TLS key"
assert report_data[32:].hex() == sys.argv[3], "report_data does not carry the enclave key"
print(quote.hex())
"#;
    let quote_hex = run_python(
        &python,
        script,
        &[cert.to_str().unwrap(), SUBJECT, &hex::encode(&enclave_pub)],
    );
    let quote = hex::decode(quote_hex.trim()).unwrap();

    // The quote parser reads it back byte for byte, with the documented measurement.
    let parsed = mse_attest::sgx::Quote::parse(&quote).unwrap();
    assert_eq!(parsed.as_bytes(), quote.as_slice());
    assert_eq!(&parsed.report_data()[32..], enclave_pub.as_slice());
    let site = site_packages(&python);
    let roots = mse_node::runtime::measured(&[site]).unwrap();
    let roots: Vec<&std::path::Path> = roots.iter().map(|p| p.as_path()).collect();
    let runtime = mse_measure::runtime_digest(&roots).unwrap();
    let manifest = mse_measure::Manifest::from_parts(
        std::path::Path::new(env!("CARGO_BIN_EXE_mse-node")),
        &runtime,
        &dirs.app(),
        &node.args,
    )
    .unwrap();
    assert_eq!(
        parsed.mr_enclave(),
        &manifest.measurement(),
        "the simulated MRENCLAVE is not the documented manifest's"
    );
    assert!(!parsed.debug());

    // x509-parser, through mse-attest's RA-TLS reader.
    let ratls = mse_attest::ratls::RaTlsCertificate::from_pem(&pem).unwrap();
    let want = mse_attest::report_data::ratls(
        ratls.tls_public_key(),
        &enclave_pub.clone().try_into().unwrap(),
    );
    assert_eq!(parsed.report_data(), &want);
    assert!(ratls.is_ca() && ratls.is_self_signed());

    // Fresh evidence over a nonce, in the waiting phase.
    let nonce = "00112233445566778899aabbccddeeff";
    let script = format!(
        "{CLIENT_PY}\nr = get({:?} + '/.well-known/mse/evidence?nonce={nonce}', {:?})\nassert r.status_code == 200, r.text\nprint(r.text)",
        node.url(),
        cert.to_str().unwrap()
    );
    let v: serde_json::Value =
        serde_json::from_str(run_python(&python, &script, &[]).trim()).unwrap();
    assert_eq!(v["tee"], "sim");
    assert_eq!(v["nonce"], nonce);
    let fresh = base64::engine::general_purpose::STANDARD
        .decode(v["quote"].as_str().unwrap())
        .unwrap();
    let fresh = mse_attest::sgx::Quote::parse(&fresh).unwrap();
    let want = mse_attest::report_data::fresh(
        ratls.tls_public_key(),
        &enclave_pub.try_into().unwrap(),
        &hex::decode(nonce).unwrap(),
    );
    assert_eq!(fresh.report_data(), &want);
    assert_eq!(fresh.mr_enclave(), parsed.mr_enclave());
    // A bad nonce is refused.
    let script = format!(
        "{CLIENT_PY}\nprint(get({:?} + '/.well-known/mse/evidence?nonce=xyz', {:?}).status_code)",
        node.url(),
        cert.to_str().unwrap()
    );
    assert_eq!(run_python(&python, &script, &[]).trim(), "400");
}

/// The DER subject equals Python's `x509.Name.from_rfc4514_string(s).public_bytes()` for the
/// shapes users write, and what Python refuses we refuse.
#[test]
fn subjects_are_encoded_like_python_cryptography() {
    let Some(python) = python() else { return };
    let subjects = [
        SUBJECT,
        "CN=cosmian.io,O=Cosmian Tech,C=FR,L=Paris,ST=Ile-de-France",
        "CN=a\\,b\\+c,OU=Unit,DC=example",
        "CN=#6869,STREET=1 Main St,UID=u1",
        "2.5.4.3=by oid,O=Zoë & Søn",
        "CN=\\ leading and trailing\\ ",
        "CN=",
    ];
    let key = {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let public = pair.public_key_raw().try_into().unwrap();
        TlsKey { pair, public }
    };
    let script = r#"
import sys
from cryptography import x509
for s in sys.argv[1:]:
    try:
        print(x509.Name.from_rfc4514_string(s).public_bytes().hex())
    except Exception:
        print("refused")
"#;
    let args: Vec<&str> = subjects.to_vec();
    let python_says: Vec<String> = run_python(&python, script, &args)
        .lines()
        .map(str::to_owned)
        .collect();
    for (s, want) in subjects.iter().zip(python_says) {
        match mse_node::identity::subject::parse_rfc4514(s) {
            Err(e) => assert_eq!(
                want, "refused",
                "{s:?}: we refuse ({e}) what Python accepts"
            ),
            Ok(subject) => {
                let spec = CertSpec {
                    subject,
                    san: San::Dns("localhost".into()),
                    not_after: SystemTime::now() + Duration::from_secs(60),
                };
                let der = build(
                    &key,
                    &spec,
                    &EvidenceExt {
                        oid: "1.2.840.113741.1337.6",
                        bytes: b"q",
                    },
                    SystemTime::now(),
                )
                .unwrap();
                let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
                assert_eq!(hex::encode(cert.subject().as_raw()), want, "{s:?}");
            }
        }
    }
    // Python refuses these too.
    let refused = ["cn=lower", "CN=a, O=space", "C=FRA", "CN=a;b"];
    let out = run_python(&python, script, &refused);
    assert!(out.lines().all(|l| l == "refused"), "{out}");
    for s in refused {
        assert!(
            mse_node::identity::subject::parse_rfc4514(s).is_err(),
            "{s}"
        );
    }
    // Python accepts these; rcgen writes one single-valued RDN per attribute type, so we refuse
    // them with a message rather than sign a different subject.
    let narrower = ["DC=example,DC=com", "CN=a+O=b"];
    let out = run_python(&python, script, &narrower);
    assert!(out.lines().all(|l| l != "refused"), "{out}");
    for s in narrower {
        let err = mse_node::identity::subject::parse_rfc4514(s)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("appears twice") || err.contains("multi-valued"),
            "{s}: {err}"
        );
    }
}
