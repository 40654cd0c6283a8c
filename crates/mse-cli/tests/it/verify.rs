//! `mse verify` on real evidence files (the testdata copies in mse-attest's fixtures) and on a
//! running sim node: the reason first on failure, exit 1 when it does not verify, `--json`.

// Test code: a failed setup step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{World, stdout};

fn fixture(rel: &str) -> PathBuf {
    common::workspace()
        .join("crates/mse-attest/tests/fixtures")
        .join(rel)
}

fn verify(w: &World, args: &[&str]) -> (Option<i32>, String) {
    let mut all = vec!["verify"];
    all.extend_from_slice(args);
    let out: Output = w.run(&all);
    (out.status.code(), stdout(&out))
}

/// A copy of `rel` with one byte flipped at `at`.
fn flipped(w: &World, rel: &str, at: usize) -> PathBuf {
    let mut b = std::fs::read(fixture(rel)).unwrap();
    b[at] ^= 1;
    let p = w.path(&rel.replace('/', "_"));
    std::fs::write(&p, b).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const MSE_MRENCLAVE: &str = "0e4ec55e690b06a574af59dfd51baa3866ac4c8d37896effc0f1fad17b31cf3b";

// THREAT: T3, T13 — the real evidence.json verifies at its capture time (mse-compatible), is
// refused by the strict policy with the reason first, and its staleness today is reported.
#[test]
fn t13_evidence_json_human_report_and_exit_codes() {
    let w = World::new();
    let ev = fixture("tee/mse/evidence-home-2023-05.json");
    let at = "2023-06-01T00:00:00Z";
    let (code, out) = verify(
        &w,
        &[
            "--evidence",
            s(&ev),
            "--at",
            at,
            "--policy",
            "mse-compatible",
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("VERIFIED"));
    for want in [
        "TEE:         sgx",
        &format!("Measurement: {MSE_MRENCLAVE}"),
        "Signer:      c1c161d0dd996e8a9847de67ea2c00226761f7715a2c422d3012ac10795a1ef5",
        "TCB status:  OutOfDate",
        "Freshness:   evidence file (no nonce)",
        "QE identity is not valid before 2023-06-20",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }

    // Strict: the reason first, exit 1.
    let (code, out) = verify(&w, &["--evidence", s(&ev), "--at", at]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("FAILED: collateral: "), "{out}");

    // Today: stale collateral and an expired certificate, said as such.
    let (code, out) = verify(&w, &["--evidence", s(&ev)]);
    assert_eq!(code, Some(1));
    assert!(
        out.starts_with("FAILED: RA-TLS certificate: the certificate is expired on 2024-04-26"),
        "{out}"
    );
    let (code, out) = verify(&w, &["--evidence", s(&ev), "--policy", "mse-compatible"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("collateral: TCB info expired on 2023-06-29T00:45:00Z"),
        "{out}"
    );

    // Another expected measurement: refused, both values shown.
    let wrong = "00".repeat(32);
    let (code, out) = verify(
        &w,
        &[
            "--evidence",
            s(&ev),
            "--at",
            at,
            "--policy",
            "mse-compatible",
            "--measurement",
            &wrong,
        ],
    );
    assert_eq!(code, Some(1));
    assert!(out.starts_with("FAILED: measurement: "), "{out}");
    assert!(out.contains(&wrong) && out.contains(MSE_MRENCLAVE), "{out}");
}

#[test]
fn t3_evidence_json_as_json() {
    let w = World::new();
    let ev = fixture("tee/mse/evidence-home-2023-05.json");
    let (code, out) = verify(
        &w,
        &[
            "--evidence",
            s(&ev),
            "--at",
            "2023-06-01T00:00:00Z",
            "--policy",
            "mse-compatible",
            "--json",
        ],
    );
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["tee"], "sgx");
    assert_eq!(v["simulated"], false);
    assert_eq!(v["measurement_found"], MSE_MRENCLAVE);
    assert_eq!(v["tcb_status"], "OutOfDate");
    assert_eq!(v["freshness"]["kind"], "file");
    let (code, out) = verify(&w, &["--evidence", s(&ev), "--json"]);
    assert_eq!(code, Some(1));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["failure"]["step"], "certificate");
}

// THREAT: T4 — the debug-enclave certificate is refused under the default policy.
#[test]
fn t4_debug_enclave_certificate_is_refused() {
    let w = World::new();
    let cert = fixture("tee/sgx/debug-enclave-ratls-cert.pem");
    let (code, out) = verify(
        &w,
        &["--evidence", s(&cert), "--at", "2024-01-01T00:00:00Z"],
    );
    assert_eq!(code, Some(1));
    assert!(out.starts_with("FAILED: policy: debug enclave: "), "{out}");
}

// THREAT: T3 — raw evidence files (TDX quote with collateral, SNP report with its chain)
// verify, and one flipped byte fails with the step first; garbage is a negative verdict.
#[test]
fn t3_raw_evidence_files() {
    let w = World::new();
    // The dcap-qvl TDX sample and its collateral, at a time inside the collateral's window.
    let coll = fixture("dcap-qvl/tdx_quote_collateral.json");
    let c =
        mse_attest::collateral::Collateral::from_dcap_qvl_json(&std::fs::read(&coll).unwrap(), "t")
            .unwrap();
    let t = c.window().unwrap().unwrap().latest_issue() + 60;
    let at = time::OffsetDateTime::from_unix_timestamp(t)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let quote = fixture("dcap-qvl/tdx_quote");
    let (code, out) = verify(
        &w,
        &[
            "--evidence",
            s(&quote),
            "--collateral",
            s(&coll),
            "--at",
            &at,
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.starts_with("VERIFIED\n") && out.contains("TEE:         tdx"),
        "{out}"
    );
    assert!(out.contains("TCB status:  UpToDate"), "{out}");
    assert!(out.contains("report data not checked"), "{out}");
    let bad = flipped(&w, "dcap-qvl/tdx_quote", 636);
    let (code, out) = verify(
        &w,
        &["--evidence", s(&bad), "--collateral", s(&coll), "--at", &at],
    );
    assert_eq!(code, Some(1));
    assert!(out.starts_with("FAILED: quote signature: "), "{out}");
    // Without collateral: said, not skipped.
    let (code, out) = verify(&w, &["--evidence", s(&quote), "--at", &at]);
    assert_eq!(code, Some(1));
    assert!(out.starts_with("FAILED: collateral: "), "{out}");

    let snp = fixture("tee/snp/report-with-ark-ask-vcek.bin");
    let at = "2026-06-01T00:00:00Z";
    let (code, out) = verify(&w, &["--evidence", s(&snp), "--at", at]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("TEE:         sev-snp"), "{out}");
    let bad = flipped(&w, "tee/snp/report-with-ark-ask-vcek.bin", 0x90);
    let (code, out) = verify(&w, &["--evidence", s(&bad), "--at", at]);
    assert_eq!(code, Some(1));
    assert!(out.starts_with("FAILED: report signature: "), "{out}");

    let junk = w.path("junk.bin");
    std::fs::write(&junk, [0u8; 100]).unwrap();
    let (code, out) = verify(&w, &["--evidence", s(&junk)]);
    assert_eq!(code, Some(1));
    assert!(out.starts_with("FAILED: evidence format: "), "{out}");
}

/// Stops the deployment even when an assertion fails.
struct Stop<'a>(&'a World);
impl Drop for Stop<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["stop", "helloworld", "--remove"]);
    }
}

fn hex_measurement(
    node: &Path,
    runtime: &mse_measure::RuntimeDigest,
    app: &Path,
    args: &[String],
) -> String {
    hex::encode(
        mse_measure::Manifest::from_parts(node, runtime, app, args)
            .unwrap()
            .measurement(),
    )
}

// THREAT: T12, T2 — sim evidence from a real node verifies only with the dev policy (which
// allows this machine's simulation root), and says why otherwise; the client's measurement of
// examples/helloworld equals the node's, and differs after one byte of code, one launch
// argument or another runtime.
#[test]
fn t12_t2_sim_node_and_the_helloworld_measurement() {
    if !common::can_deploy() {
        return;
    }
    let w = World::new();
    let app = w.helloworld();
    let toml = app.join("mse.toml");
    // Without [ssl], the node keeps serving its RA-TLS certificate, so an address verifies.
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, text.split("[ssl]").next().unwrap()).unwrap();
    let out = w.run(&["deploy", "--path", s(&toml), "-y"]);
    assert!(out.status.success(), "deploy failed");
    let _stop = Stop(&w);
    let dep = mse_cli::state::Deployment {
        name: "helloworld".into(),
        dir: w.conf().join("deployments/helloworld"),
    };
    let ctx = dep.read_context().unwrap();
    let addr = format!("127.0.0.1:{}", ctx.local.port);

    // Strict (the default for an address): refused, and the reason says why.
    let (code, out) = verify(&w, &["--address", &addr]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("FAILED: policy: simulation: "), "{out}");
    assert!(out.contains("allow_simulation"), "{out}");
    assert!(out.contains("SIMULATED"), "{out}");

    // Dev: verified, and SIMULATED in plain words; the fresh report is pinned too.
    let (code, out) = verify(
        &w,
        &["--address", &addr, "--policy", "dev", "--fresh", "--json"],
    );
    assert_eq!(code, Some(0), "{out}");
    let reports: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(reports[0]["simulated"], true);
    assert_eq!(reports[1]["freshness"]["kind"], "fresh");
    let node_measurement = reports[0]["measurement_found"].as_str().unwrap().to_owned();
    let (_, human) = verify(&w, &["--address", &addr, "--policy", "dev"]);
    assert!(human.starts_with("VERIFIED, BUT SIMULATED"), "{human}");

    // The client recomputes (re-encrypting with the kept key and nonces, digesting the
    // runtime again): equal to what the node's quote carries.
    let (code, out) = verify(&w, &["helloworld", "--recompute", "--json"]);
    assert_eq!(code, Some(0), "{out}");
    let reports: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        reports[0]["measurement_expected"],
        node_measurement.as_str()
    );
    assert_eq!(reports[0]["measurement_found"], node_measurement.as_str());

    // The same computation here, then one input changed at a time.
    let conf = mse_cli::config::parse_file(&ctx.local.config_file).unwrap();
    let key = mse_crypto::CodeKey::from_hex(&ctx.config.code_secret_key).unwrap();
    let mut nonces = mse_crypto::code::NonceMap::new();
    for (p, n) in &ctx.instance.nonces {
        nonces.insert(p.clone(), hex::decode(n).unwrap().try_into().unwrap());
    }
    let encrypt = |code_dir: &Path, tag: &str| -> PathBuf {
        let out = w.path(&format!("shipped-{tag}"));
        mse_crypto::code::encrypt_tree(code_dir, &out, &key, Some(&nonces), &[]).unwrap();
        if let Some(chain) = &ctx.config.ssl_app_certificate {
            std::fs::write(out.join("fullchain.pem"), chain).unwrap();
        }
        out
    };
    let runtime = mse_measure::RuntimeDigest(
        hex::decode(&ctx.local.runtime_digest)
            .unwrap()
            .try_into()
            .unwrap(),
    );
    let node = &ctx.local.node_binary;
    let args = &ctx.local.node_args;
    let same = encrypt(&conf.code_dir, "same");
    assert_eq!(
        hex_measurement(node, &runtime, &same, args),
        node_measurement
    );

    let code_copy = w.path("code-copy");
    common::copy_dir(&conf.code_dir, &code_copy);
    let app_py = code_copy.join("app.py");
    let mut src = std::fs::read(&app_py).unwrap();
    src[0] ^= 0x20;
    std::fs::write(&app_py, src).unwrap();
    let one_byte = hex_measurement(node, &runtime, &encrypt(&code_copy, "byte"), args);

    let mut other_args = args.clone();
    let last = other_args.last_mut().unwrap();
    last.push('x');
    let one_arg = hex_measurement(node, &runtime, &same, &other_args);

    let rt_dir = w.path("other-runtime");
    std::fs::create_dir_all(&rt_dir).unwrap();
    std::fs::write(rt_dir.join("python3"), b"another runtime").unwrap();
    let other_rt = mse_measure::runtime_digest(&[rt_dir.as_path()]).unwrap();
    let other_runtime = hex_measurement(node, &other_rt, &same, args);

    for (what, m) in [
        ("one byte of code", one_byte),
        ("one launch argument", one_arg),
        ("another runtime", other_runtime),
    ] {
        assert_ne!(m, node_measurement, "{what}");
        let (code, out) = verify(
            &w,
            &["--address", &addr, "--policy", "dev", "--measurement", &m],
        );
        assert_eq!(code, Some(1), "{what}: {out}");
        assert!(out.starts_with("FAILED: measurement: "), "{what}: {out}");
    }
}

/// `mse` with this world's environment, plus `env`; prints what it did, as `World::run`.
fn run_env(w: &World, env: &[(&str, &Path)], args: &[&str]) -> Output {
    let mut c = w.mse();
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.args(args).output().unwrap();
    eprintln!(
        "$ {env:?} mse {}\n--- exit {:?}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        out.status.code(),
        stdout(&out),
        common::stderr(&out)
    );
    out
}

/// One endpoint: path, issuer chain header (name, URL-encoded PEM), body.
type Route = (String, Option<(&'static str, String)>, Vec<u8>);

/// A PCCS on 127.0.0.1 serving one dcap-qvl collateral JSON in Intel's v4 formats (hex root CA
/// CRL, DER PCK CRL, signed JSON bodies, URL-encoded PEM issuer chains), counting requests.
/// mse-attest's tests/it/pccs.rs has the full one (queries checked, faults).
struct Pccs {
    port: u16,
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Pccs {
    fn start(collateral_json: &Path, tee: &'static str) -> Self {
        use std::sync::atomic::Ordering;
        let c: serde_json::Value =
            serde_json::from_slice(&std::fs::read(collateral_json).unwrap()).unwrap();
        let s = |k: &str| c[k].as_str().unwrap().to_owned();
        let enc = |pem: String| {
            pem.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect::<String>()
        };
        let routes: Vec<Route> = vec![
            (
                "/sgx/certification/v4/rootcacrl".into(),
                None,
                s("root_ca_crl").into_bytes(),
            ),
            (
                "/sgx/certification/v4/pckcrl".into(),
                Some(("SGX-PCK-CRL-Issuer-Chain", enc(s("pck_crl_issuer_chain")))),
                hex::decode(s("pck_crl")).unwrap(),
            ),
            (
                format!("/{tee}/certification/v4/tcb"),
                Some(("TCB-Info-Issuer-Chain", enc(s("tcb_info_issuer_chain")))),
                format!(
                    r#"{{"tcbInfo":{},"signature":"{}"}}"#,
                    s("tcb_info"),
                    s("tcb_info_signature")
                )
                .into_bytes(),
            ),
            (
                format!("/{tee}/certification/v4/qe/identity"),
                Some((
                    "SGX-Enclave-Identity-Issuer-Chain",
                    enc(s("qe_identity_issuer_chain")),
                )),
                format!(
                    r#"{{"enclaveIdentity":{},"signature":"{}"}}"#,
                    s("qe_identity"),
                    s("qe_identity_signature")
                )
                .into_bytes(),
            ),
        ];
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (r, st) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let Some(target) = read_request(&mut conn) else {
                    continue;
                };
                let path = target.split('?').next().unwrap_or_default();
                let resp = match routes.iter().find(|(p, _, _)| p == path) {
                    Some((_, header, body)) => {
                        r.fetch_add(1, Ordering::SeqCst);
                        let h = header
                            .as_ref()
                            .map(|(k, v)| format!("{k}: {v}\r\n"))
                            .unwrap_or_default();
                        let mut out = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n{h}\r\n",
                            body.len()
                        )
                        .into_bytes();
                        out.extend_from_slice(body);
                        out
                    }
                    None => {
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_vec()
                    }
                };
                let _ = std::io::Write::write_all(&mut conn, &resp);
            }
        });
        Pccs {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn stop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
            let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
            t.join().unwrap();
        }
    }
}

impl Drop for Pccs {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The request target of one HTTP/1.1 request head.
fn read_request(conn: &mut impl std::io::Read) -> Option<String> {
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
    head.split_whitespace().nth(1).map(str::to_owned)
}

/// RFC 3339 time one minute after every item of a collateral JSON was issued.
fn inside_window(collateral_json: &Path) -> String {
    let c = mse_attest::collateral::Collateral::from_dcap_qvl_json(
        &std::fs::read(collateral_json).unwrap(),
        "t",
    )
    .unwrap();
    let t = c.window().unwrap().unwrap().latest_issue() + 60;
    time::OffsetDateTime::from_unix_timestamp(t)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

// THREAT: T3, T13 — a raw TDX quote with no collateral verifies with `--pccs` (or
// MSE_PCCS_URL): collateral fetched once from the PCCS, then from the cache under the cache
// folder with no request; without a PCCS the reason says what to do; a PCCS that is gone is an
// error that says which and why.
#[test]
fn t3_t13_quote_with_collateral_from_a_pccs() {
    let w = World::new();
    let coll = fixture("dcap-qvl/tdx_quote_collateral.json");
    let quote = fixture("dcap-qvl/tdx_quote");
    let at = inside_window(&coll);
    let mut server = Pccs::start(&coll, "tdx");
    let cache = w.path("cache");
    let env = [("MSE_CACHE_DIR", cache.as_path())];
    let url = server.url();
    let args = ["verify", "--evidence", s(&quote), "--at", &at];

    let mut with_flag = args.to_vec();
    with_flag.extend(["--pccs", &url]);
    let out = run_env(&w, &env, &with_flag);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.starts_with("VERIFIED\n"), "{text}");
    assert!(
        text.contains("TEE:         tdx") && text.contains("TCB status:  UpToDate"),
        "{text}"
    );
    assert_eq!(server.requests(), 4);
    assert!(cache.join("pccs").read_dir().unwrap().count() == 1);

    // Again, through MSE_PCCS_URL: from the cache, no request.
    let env_url = PathBuf::from(&url);
    let out = run_env(
        &w,
        &[("MSE_CACHE_DIR", &cache), ("MSE_PCCS_URL", &env_url)],
        &args,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(server.requests(), 4, "served from the cache");

    // Without a PCCS: the reason first, and what to do.
    let out = run_env(&w, &env, &args);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.starts_with("FAILED: collateral: none for this TDX quote")
            && text.contains("--pccs URL")
            && text.contains("MSE_PCCS_URL"),
        "{text}"
    );

    // The PCCS gone and nothing cached: could not check (exit 2), saying which and why.
    server.stop();
    let empty = w.path("empty-cache");
    let out = run_env(&w, &[("MSE_CACHE_DIR", &empty)], &with_flag);
    assert_eq!(out.status.code(), Some(2));
    let err = common::stderr(&out);
    assert!(
        err.contains(&format!("fetching collateral from the PCCS {url}"))
            && err.contains("rootcacrl: cannot connect"),
        "{err}"
    );
}

/// How the replaying node answers `/.well-known/mse/evidence?nonce=N`.
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// Evidence over N, by the certificate's enclave key: what a real node does.
    Honest,
    /// N echoed, but the evidence is over another nonce (recorded earlier).
    OtherNonce,
    /// N echoed, evidence over N, but bound to another enclave key.
    OtherEnclaveKey,
    /// A reply recorded for another nonce, replayed byte for byte.
    Replay,
}

/// A sim "node" on 127.0.0.1: an RA-TLS certificate under its own simulation root (written to
/// `sim_dir/root-cert.pem`, where `--policy dev` looks for it) and a fresh-evidence endpoint
/// answering as `answer` says.
struct FakeNode {
    port: u16,
}

impl FakeNode {
    fn start(sim_dir: &Path, answer: Answer) -> Self {
        use mse_attest::report_data;
        use mse_attest::sim::{QuoteSigner, SimQuoteConfig, SimRootKey};
        use std::sync::Arc;
        use std::time::{Duration, SystemTime};

        let now = SystemTime::now();
        let root = SimRootKey::generate(now).unwrap();
        std::fs::create_dir_all(sim_dir).unwrap();
        std::fs::write(sim_dir.join("root-cert.pem"), root.root().to_pem()).unwrap();
        let signer = QuoteSigner::new(
            &root,
            &SimQuoteConfig {
                mr_enclave: [9; 32],
                debug: false,
                isv_prod_id: 0,
                isv_svn: 0,
            },
            now,
        )
        .unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let tls: [u8; 65] = key.public_key_raw().try_into().unwrap();
        let enclave = [0x42u8; 32];
        let quote = signer.quote(&report_data::ratls(&tls, &enclave)).unwrap();
        let mut params = rcgen::CertificateParams::default();
        params.subject_alt_names = vec![rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap())];
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.not_before = (now - Duration::from_secs(60)).into();
        params.not_after = (now + Duration::from_secs(3600)).into();
        params.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
            mse_attest::oids::SGX_QUOTE_ARCS,
            quote,
        )];
        let cert = params.self_signed(&key).unwrap().der().to_vec();
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![rustls_pki_types::CertificateDer::from(cert)],
                rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap(),
        );
        let signer = Arc::new(signer);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // Lives as long as the test process: every connection has its own thread.
        std::thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let (config, signer) = (config.clone(), signer.clone());
                std::thread::spawn(move || {
                    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
                    let Ok(conn) = rustls::ServerConnection::new(config) else {
                        return;
                    };
                    let mut tls_stream = rustls::StreamOwned::new(conn, tcp);
                    let Some(target) = read_request(&mut tls_stream) else {
                        return;
                    };
                    let nonce_hex = target
                        .split_once("?nonce=")
                        .map(|(_, n)| n.to_owned())
                        .unwrap_or_default();
                    let nonce = hex::decode(&nonce_hex).unwrap_or_default();
                    let old = b"a nonce sent to the real node yesterday".to_vec();
                    let (over_nonce, over_key, echoed) = match answer {
                        Answer::Honest => (nonce, enclave, nonce_hex),
                        Answer::OtherNonce => (old, enclave, nonce_hex),
                        Answer::OtherEnclaveKey => (nonce, [0x43; 32], nonce_hex),
                        Answer::Replay => (old.clone(), enclave, hex::encode(&old)),
                    };
                    let q = signer
                        .quote(&report_data::fresh(&tls, &over_key, &over_nonce))
                        .unwrap();
                    use base64::Engine as _;
                    let body = serde_json::json!({
                        "tee": "sim",
                        "quote": base64::engine::general_purpose::STANDARD.encode(q),
                        "nonce": echoed,
                    })
                    .to_string();
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = std::io::Write::write_all(&mut tls_stream, resp.as_bytes());
                    tls_stream.conn.send_close_notify();
                    let _ = std::io::Write::flush(&mut tls_stream);
                });
            }
        });
        FakeNode { port }
    }
}

// THREAT: T5 — `mse verify --fresh` refuses a node whose answer to its nonce is evidence over
// another nonce, bound to another enclave key, or a reply replayed from another request: exit 1,
// the failed fresh report first; the same node answering honestly passes.
#[test]
fn t5_fresh_refuses_evidence_over_another_nonce_or_enclave_key() {
    let w = World::new();
    for answer in [
        Answer::Honest,
        Answer::OtherNonce,
        Answer::OtherEnclaveKey,
        Answer::Replay,
    ] {
        let sim = w.path(&format!("sim-{answer:?}"));
        let node = FakeNode::start(&sim, answer);
        let addr = format!("127.0.0.1:{}", node.port);
        let env = [("MSE_SIM_DIR", sim.as_path())];
        let args = ["verify", "--address", &addr, "--policy", "dev", "--fresh"];
        let out = run_env(&w, &env, &args);
        let text = stdout(&out);
        if let Answer::Honest = answer {
            assert_eq!(out.status.code(), Some(0), "{text}");
            assert!(text.starts_with("VERIFIED, BUT SIMULATED"), "{text}");
            assert!(text.contains("Freshness:   fresh: evidence made for nonce "));
            continue;
        }
        assert_eq!(out.status.code(), Some(1), "{answer:?}: {text}");
        assert!(
            text.starts_with("FAILED: report data binding: "),
            "{answer:?}: the reason first: {text}"
        );
        let first = text.lines().next().unwrap();
        match answer {
            Answer::Replay => assert!(first.contains("echoed another nonce"), "{first}"),
            _ => assert!(first.contains("replayed?"), "{first}"),
        }
        let mut json_args = args.to_vec();
        json_args.push("--json");
        let out = run_env(&w, &env, &json_args);
        assert_eq!(out.status.code(), Some(1));
        let reports: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(reports[0]["ok"], true, "the certificate itself verifies");
        assert_eq!(reports[1]["ok"], false);
        assert_eq!(reports[1]["freshness"]["kind"], "fresh");
        assert_eq!(reports[1]["failure"]["step"], "report-data-binding");
    }
}
