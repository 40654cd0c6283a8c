//! The PCCS client (feature `pccs`) against a local PCCS: a small HTTP server on loopback that
//! serves Intel's v4 endpoints (hex root CA CRL, DER PCK CRL, signed JSON bodies, URL-encoded
//! PEM issuer chains) from real captured collateral: the evidence.json of `mse home` (May
//! 2023) and dcap-qvl's SGX and TDX samples. Collateral fetched this way verifies exactly as
//! the file's; a second call is served from the cache; a PCCS that is gone leaves a stale cached
//! copy that is reported stale; a PCCS that answers something else fails closed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use crate::common;
use common::*;

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use mse_attest::collateral::Collateral;
use mse_attest::evidence_file::EvidenceFile;
use mse_attest::pccs::{Origin, PccsClient};
use mse_attest::policy::{Policy, TcbStatus};
use mse_attest::ratls::RawEvidence;
use mse_attest::verify::{Expected, verify_at};
use mse_attest::{Error, Step, TeeKind, dcap, sgx, tdx};

/// What a PCCS serves for one platform, in the v4 wire formats.
#[derive(Clone)]
struct Served {
    /// `sgx` or `tdx`: the path prefix of the TCB info and QE identity endpoints.
    tee: &'static str,
    fmspc: String,
    ca: &'static str,
    root_ca_crl_hex: String,
    pck_crl_der: Vec<u8>,
    pck_crl_issuer_chain: String,
    tcb_body: String,
    tcb_issuer_chain: String,
    qe_body: String,
    qe_issuer_chain: String,
}

impl Served {
    /// The v4 answers that carry exactly this collateral, for the platform of `evidence`.
    fn new(evidence: &RawEvidence, c: &Collateral) -> Self {
        let (tee, chain) = match evidence.kind {
            TeeKind::Tdx => (
                "tdx",
                tdx::Quote::parse(&evidence.bytes)
                    .unwrap()
                    .pck_chain()
                    .unwrap(),
            ),
            _ => (
                "sgx",
                sgx::Quote::parse(&evidence.bytes)
                    .unwrap()
                    .pck_chain()
                    .unwrap(),
            ),
        };
        let info = dcap::pck_info(&chain[0]).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&c.to_json().unwrap()).unwrap();
        let d = &v["dcap"];
        let s = |k: &str| d[k].as_str().unwrap().to_owned();
        let pem = |der: &[u8]| {
            pem::encode_config(
                &pem::Pem::new("CERTIFICATE", der.to_vec()),
                pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
            )
        };
        Served {
            tee,
            fmspc: hex::encode_upper(info.fmspc),
            ca: info.ca.as_str(),
            root_ca_crl_hex: s("root_ca_crl"),
            pck_crl_der: hex::decode(s("pck_crl")).unwrap(),
            // What a PCCS sends: the PCK CA that signed the CRL, then the root.
            pck_crl_issuer_chain: format!("{}{}", pem(&chain[1]), pem(&chain[2])),
            tcb_body: format!(
                r#"{{"tcbInfo":{},"signature":"{}"}}"#,
                s("tcb_info"),
                s("tcb_info_signature")
            ),
            tcb_issuer_chain: s("tcb_info_issuer_chain"),
            qe_body: format!(
                r#"{{"enclaveIdentity":{},"signature":"{}"}}"#,
                s("qe_identity"),
                s("qe_identity_signature")
            ),
            qe_issuer_chain: s("qe_identity_issuer_chain"),
        }
    }
}

/// Ways a PCCS can answer wrongly.
#[derive(Clone)]
enum Fault {
    None,
    /// The TCB info answer lacks its issuer chain header.
    NoTcbChainHeader,
    /// The TCB info issuer chain header is not valid percent-encoding.
    BadTcbChainEncoding,
    /// The root CA CRL answer is 2 MiB.
    HugeRootCrl,
    /// The root CA CRL answer is not a CRL.
    RootCrlNotACrl,
    /// Genuine TCB info, but of another platform (another FMSPC).
    OtherTcbInfo(String),
    /// The TCB info signature has one flipped bit.
    TcbSignatureFlipped,
    /// The QE identity endpoint fails with HTTP 500.
    QeIdentity500,
}

/// Intel's `encodeURIComponent`-style encoding of issuer chains.
fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A PCCS on 127.0.0.1: one thread, one request per connection, every request counted.
struct Pccs {
    port: u16,
    requests: Arc<AtomicUsize>,
    paths: Arc<Mutex<Vec<String>>>,
    fault: Arc<Mutex<Fault>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Pccs {
    fn start(served: Served, fault: Fault) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let fault = Arc::new(Mutex::new(fault));
        let (r, p, f, st) = (requests.clone(), paths.clone(), fault.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let fault = f.lock().unwrap().clone();
                if let Some(path) = serve_one(conn, &served, &fault) {
                    r.fetch_add(1, Ordering::SeqCst);
                    p.lock().unwrap().push(path);
                }
            }
        });
        Pccs {
            port,
            requests,
            paths,
            fault,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn set_fault(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Stop serving and close the port.
    fn stop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect(("127.0.0.1", self.port));
            t.join().unwrap();
        }
    }
}

impl Drop for Pccs {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Read one request, answer it, close. Returns the request target.
fn serve_one(mut conn: TcpStream, s: &Served, fault: &Fault) -> Option<String> {
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 || buf.len() > 16 * 1024 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let target = head.split_whitespace().nth(1)?.to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let chain = |name: &str, pem: &str| vec![(name.to_owned(), url_encode(pem))];
    let v4 = |tee: &str, rest: &str| format!("/{tee}/certification/v4/{rest}");
    let ok = |headers: Vec<(String, String)>, body: Vec<u8>| (200, headers, body);
    let (status, headers, body): (u16, Vec<(String, String)>, Vec<u8>) =
        if path == v4("sgx", "rootcacrl") {
            match fault {
                Fault::HugeRootCrl => ok(vec![], vec![b'a'; 2 << 20]),
                Fault::RootCrlNotACrl => ok(vec![], b"<html>not a CRL</html>".to_vec()),
                _ => ok(vec![], s.root_ca_crl_hex.clone().into_bytes()),
            }
        } else if path == v4("sgx", "pckcrl") {
            if query != format!("ca={}&encoding=der", s.ca) {
                (400, vec![], b"bad ca".to_vec())
            } else {
                ok(
                    chain("SGX-PCK-CRL-Issuer-Chain", &s.pck_crl_issuer_chain),
                    s.pck_crl_der.clone(),
                )
            }
        } else if path == v4(s.tee, "tcb") {
            let asked = query.strip_prefix("fmspc=").unwrap_or_default();
            if !asked.eq_ignore_ascii_case(&s.fmspc) {
                (404, vec![], b"no such FMSPC".to_vec())
            } else {
                let mut body = s.tcb_body.clone();
                let mut headers = chain("TCB-Info-Issuer-Chain", &s.tcb_issuer_chain);
                match fault {
                    Fault::NoTcbChainHeader => headers.clear(),
                    Fault::BadTcbChainEncoding => headers[0].1.insert_str(0, "%zz"),
                    Fault::OtherTcbInfo(other) => body = other.clone(),
                    Fault::TcbSignatureFlipped => {
                        let at = body.rfind("\"}").unwrap() - 1;
                        let c = if &body[at..=at] == "0" { "1" } else { "0" };
                        body.replace_range(at..=at, c);
                    }
                    _ => {}
                }
                ok(headers, body.into_bytes())
            }
        } else if path == v4(s.tee, "qe/identity") {
            match fault {
                Fault::QeIdentity500 => (500, vec![], b"internal error".to_vec()),
                _ => ok(
                    chain("SGX-Enclave-Identity-Issuer-Chain", &s.qe_issuer_chain),
                    s.qe_body.clone().into_bytes(),
                ),
            }
        } else {
            (404, vec![], b"not found".to_vec())
        };
    let mut out = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let _ = conn.write_all(out.as_bytes());
    let _ = conn.write_all(&body);
    Some(target)
}

fn cache() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("mse-pccs-test-")
        .tempdir()
        .unwrap()
}

fn client(p: &Pccs, dir: &tempfile::TempDir) -> PccsClient {
    PccsClient::new(&p.url())
        .unwrap()
        .with_cache(dir.path())
        .with_timeout(Duration::from_secs(10))
}

/// A dcap-qvl sample: the quote, its collateral, and a time inside the collateral's window.
fn sample(name: &str, kind: TeeKind) -> (RawEvidence, Collateral, SystemTime) {
    let c = Collateral::from_dcap_qvl_json(
        &fixture(&format!("dcap-qvl/{name}_collateral.json")),
        "dcap-qvl sample",
    )
    .unwrap();
    let at = at_unix(c.window().unwrap().unwrap().latest_issue() + 60);
    let e = RawEvidence {
        kind,
        bytes: fixture(&format!("dcap-qvl/{name}")),
    };
    (e, c, at)
}

/// An appraisal as JSON, without where its collateral came from.
fn without_source(a: &mse_attest::verify::Appraisal) -> serde_json::Value {
    let mut v = serde_json::to_value(a).unwrap();
    v["collateral"]["source"] = serde_json::Value::Null;
    v
}

fn sgx_policy() -> Policy {
    Policy::default_strict().accept_tcb_status(TcbStatus::ConfigurationAndSwHardeningNeeded)
}

fn cache_files(dir: &tempfile::TempDir) -> usize {
    std::fs::read_dir(dir.path()).unwrap().count()
}

// THREAT: T3, T13 — collateral from a PCCS: the real May 2023 evidence verifies at its capture
// time exactly as with the collateral its evidence.json carries.
#[test]
fn evidence_json_quote_verifies_at_capture_time_with_pccs_collateral() {
    let ev = EvidenceFile::parse(&fixture("tee/mse/evidence-home-2023-05.json")).unwrap();
    let cert = ev.certificate().unwrap();
    let own = ev.collateral().unwrap();
    let server = Pccs::start(Served::new(cert.evidence(), &own), Fault::None);
    let dir = cache();
    let at = day(2023, 6, 1);
    let got = client(&server, &dir)
        .collateral_for(cert.evidence(), at)
        .unwrap();
    assert_eq!(got.origin, Origin::Pccs);
    assert_eq!(server.requests(), 4);
    assert_eq!(
        *server.paths.lock().unwrap(),
        [
            "/sgx/certification/v4/rootcacrl",
            "/sgx/certification/v4/pckcrl?ca=platform&encoding=der",
            "/sgx/certification/v4/tcb?fmspc=30606A000000",
            "/sgx/certification/v4/qe/identity",
        ]
    );
    assert_eq!(got.collateral.source(), format!("PCCS {}", server.url()));

    let expected = Expected {
        measurement: Some(
            hex::decode("0e4ec55e690b06a574af59dfd51baa3866ac4c8d37896effc0f1fad17b31cf3b")
                .unwrap(),
        ),
        signer: Some(ev.signer_mr().unwrap().to_vec()),
        ..Expected::default()
    };
    let p = Policy::mse_compatible();
    let verify = |c: &Collateral| {
        mse_attest::verify::verify_certificate_at(&cert, c, &p, &expected, at).unwrap()
    };
    let (a_pccs, a_file) = (verify(&got.collateral), verify(&own));
    assert_eq!(without_source(&a_pccs), without_source(&a_file));
    assert_eq!(a_pccs.tcb_status, "OutOfDate");
    assert!(
        a_pccs
            .warnings
            .iter()
            .any(|w| w.contains("QE identity is not valid before 2023-06-20")),
        "{:?}",
        a_pccs.warnings
    );
    // The strict policy refuses it for the same reason as with the file.
    let e = expect_step(
        mse_attest::verify::verify_certificate_at(
            &cert,
            &got.collateral,
            &Policy::default_strict(),
            &expected,
            at,
        ),
        Step::Collateral,
    );
    assert!(
        e.contains("QE identity is not valid before 2023-06-20"),
        "{e}"
    );
}

// THREAT: T3, T13 — SGX and TDX samples: fetched once (the TDX items from the tdx/ endpoints),
// then served from the on-disk cache with no request at all, also by a new client.
#[test]
fn second_call_is_served_from_the_cache() {
    for (name, kind, policy) in [
        ("sgx_quote", TeeKind::Sgx, sgx_policy()),
        ("tdx_quote", TeeKind::Tdx, Policy::default_strict()),
    ] {
        let (e, file, at) = sample(name, kind);
        let server = Pccs::start(Served::new(&e, &file), Fault::None);
        let dir = cache();
        let c = client(&server, &dir);
        let first = c.collateral_for(&e, at).unwrap();
        assert_eq!(first.origin, Origin::Pccs, "{name}");
        assert_eq!(server.requests(), 4, "{name}");
        if kind == TeeKind::Tdx {
            let paths = server.paths.lock().unwrap();
            assert!(paths[2].starts_with("/tdx/certification/v4/tcb?fmspc=B0C06F000000"));
            assert_eq!(paths[3], "/tdx/certification/v4/qe/identity");
        }
        assert_eq!(cache_files(&dir), 1, "{name}");

        let a_pccs = verify_at(&e, &first.collateral, &policy, &Expected::default(), at)
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        let a_file = verify_at(&e, &file, &policy, &Expected::default(), at).unwrap();
        assert_eq!(without_source(&a_pccs), without_source(&a_file), "{name}");

        for c in [c.clone(), client(&server, &dir)] {
            let again = c.collateral_for(&e, at).unwrap();
            assert_eq!(again.origin, Origin::Cache, "{name}");
            assert_eq!(server.requests(), 4, "{name}: no new request");
            assert!(again.collateral.source().ends_with("(cached)"));
            let a = verify_at(&e, &again.collateral, &policy, &Expected::default(), at).unwrap();
            assert_eq!(without_source(&a), without_source(&a_file), "{name}");
        }
    }
}

// THREAT: T13 — the PCCS is gone: a cached copy that is no longer current is returned, said to
// be stale, and verification reports it as such; with no cached copy the error says what failed.
#[test]
fn pccs_gone_stale_cache_is_reported_and_no_cache_is_a_clear_error() {
    let (e, file, at) = sample("sgx_quote", TeeKind::Sgx);
    let mut server = Pccs::start(Served::new(&e, &file), Fault::None);
    let dir = cache();
    let c = client(&server, &dir);
    assert_eq!(c.collateral_for(&e, at).unwrap().origin, Origin::Pccs);
    server.stop();

    // Inside the window the cache answers without the server.
    assert_eq!(c.collateral_for(&e, at).unwrap().origin, Origin::Cache);

    // Today (after 2025-07-19) the cached copy is stale: the client asks, fails, and says so.
    let now = SystemTime::now();
    let got = c.collateral_for(&e, now).unwrap();
    match &got.origin {
        Origin::StaleCache { pccs_error } => {
            assert!(
                pccs_error.contains("cannot connect") && pccs_error.contains("rootcacrl"),
                "{pccs_error}"
            );
        }
        other => panic!("expected a stale cached copy, got {other:?}"),
    }
    assert!(
        got.collateral.source().contains("stale cached copy"),
        "{}",
        got.collateral.source()
    );
    let err = expect_step(
        verify_at(
            &e,
            &got.collateral,
            &sgx_policy(),
            &Expected::default(),
            now,
        ),
        Step::Collateral,
    );
    assert!(err.contains("TCB info expired on 2025-07-19"), "{err}");
    let a = verify_at(
        &e,
        &got.collateral,
        &sgx_policy().warn_on_stale_collateral(),
        &Expected::default(),
        now,
    )
    .unwrap();
    let used = a.collateral.as_ref().unwrap();
    assert!(used.stale);
    assert!(used.source.contains("stale cached copy"), "{}", used.source);

    // No cached copy, no server: an error naming the URL and the cause; no cache file made.
    for c in [
        PccsClient::new(&server.url()).unwrap(),
        PccsClient::new(&server.url())
            .unwrap()
            .with_cache(cache().path()),
    ] {
        let err = c.collateral_for(&e, now).unwrap_err();
        assert!(matches!(err, Error::Pccs(_)), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!(
                "PCCS: {}/sgx/certification/v4/rootcacrl: cannot connect",
                server.url()
            )),
            "{msg}"
        );
    }

    // A server that accepts and never answers: the timeout ends the wait.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let err = PccsClient::new(&url)
        .unwrap()
        .with_timeout(Duration::from_millis(300))
        .collateral_for(&e, at)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no answer within 0.3s"), "{err}");
}

// THREAT: T3 — a PCCS answering something else (a bad header, a huge body, not a CRL, another
// platform's TCB info, a forged signature, an HTTP error) fails closed: an error naming the
// endpoint and the fault, nothing cached; a stale cached copy is then returned as stale.
#[test]
fn malformed_answers_fail_closed() {
    let (e, file, at) = sample("sgx_quote", TeeKind::Sgx);
    let served = Served::new(&e, &file);
    let ev = EvidenceFile::parse(&fixture("tee/mse/evidence-home-2023-05.json")).unwrap();
    let other = Served::new(
        ev.certificate().unwrap().evidence(),
        &ev.collateral().unwrap(),
    );
    let cases = [
        (
            Fault::NoTcbChainHeader,
            "/sgx/certification/v4/tcb?fmspc=00A067110000: the answer has no TCB-Info-Issuer-Chain or SGX-TCB-Info-Issuer-Chain header",
        ),
        (
            Fault::BadTcbChainEncoding,
            "TCB-Info-Issuer-Chain/SGX-TCB-Info-Issuer-Chain: bad percent-encoding",
        ),
        (
            Fault::HugeRootCrl,
            "/sgx/certification/v4/rootcacrl: the answer is larger than 1024 KiB",
        ),
        (
            Fault::RootCrlNotACrl,
            "/sgx/certification/v4/rootcacrl: the answer is not a CRL",
        ),
        (
            Fault::OtherTcbInfo(other.tcb_body.clone()),
            "TCB info: it is for FMSPC \"30606A000000\", asked for 00A067110000",
        ),
        (
            Fault::TcbSignatureFlipped,
            "signed collateral: collateral: TCB info: signature does not verify",
        ),
        (
            Fault::QeIdentity500,
            "/sgx/certification/v4/qe/identity: HTTP 500",
        ),
    ];
    for (fault, want) in cases {
        let server = Pccs::start(served.clone(), fault);
        let dir = cache();
        let err = client(&server, &dir).collateral_for(&e, at).unwrap_err();
        assert!(matches!(err, Error::Pccs(_)), "{err:?}");
        let msg = err.to_string();
        assert!(msg.starts_with("PCCS: "), "{msg}");
        assert!(msg.contains(want), "want {want:?} in: {msg}");
        assert_eq!(cache_files(&dir), 0, "nothing cached after: {msg}");
    }

    // With a cached copy that is stale today, a wrong answer leaves that copy in place, and it
    // is returned as stale with the PCCS's fault.
    let dir = cache();
    let server = Pccs::start(served, Fault::None);
    let c = client(&server, &dir);
    c.collateral_for(&e, at).unwrap();
    let entry = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let before = std::fs::read(&entry).unwrap();
    server.set_fault(Fault::TcbSignatureFlipped);
    let got = c.collateral_for(&e, SystemTime::now()).unwrap();
    match &got.origin {
        Origin::StaleCache { pccs_error } => {
            assert!(
                pccs_error.contains("signature does not verify"),
                "{pccs_error}"
            );
        }
        other => panic!("expected the stale cached copy, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(&entry).unwrap(),
        before,
        "the cache entry is unchanged"
    );
    expect_step(
        verify_at(
            &e,
            &got.collateral,
            &sgx_policy(),
            &Expected::default(),
            SystemTime::now(),
        ),
        Step::Collateral,
    );
}

#[test]
fn snp_and_simulation_evidence_need_no_pccs() {
    // No server at all: nothing is asked.
    let c = PccsClient::new("http://127.0.0.1:1").unwrap();
    let snp = RawEvidence {
        kind: TeeKind::SevSnp,
        bytes: fixture("tee/snp/report-with-ark-ask-vcek.bin"),
    };
    let got = c.collateral_for(&snp, SystemTime::now()).unwrap();
    assert_eq!(got.origin, Origin::NotNeeded);
    assert!(!got.collateral.has_dcap());

    let root = mse_attest::sim::SimRootKey::generate(SystemTime::now()).unwrap();
    let signer = mse_attest::sim::QuoteSigner::new(
        &root,
        &mse_attest::sim::SimQuoteConfig {
            mr_enclave: [7; 32],
            debug: false,
            isv_prod_id: 0,
            isv_svn: 0,
        },
        SystemTime::now(),
    )
    .unwrap();
    for kind in [TeeKind::Sgx, TeeKind::Sim] {
        let sim = RawEvidence {
            kind,
            bytes: signer.quote(&[0; 64]).unwrap(),
        };
        let got = c.collateral_for(&sim, SystemTime::now()).unwrap();
        assert_eq!(got.origin, Origin::NotNeeded);
    }

    // Evidence that does not parse is the parser's error, not a PCCS one.
    let junk = RawEvidence {
        kind: TeeKind::Sgx,
        bytes: vec![0; 100],
    };
    let err = c.collateral_for(&junk, SystemTime::now()).unwrap_err();
    assert_eq!(err.step(), Some(Step::EvidenceFormat), "{err}");
}
