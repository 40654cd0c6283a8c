//! The issue's "what must be shown", file by file over `../shared/testdata/tee/`: every file
//! parses (and the test copy in `tests/fixtures/tee` is the same bytes), and the RA-TLS
//! certificates and SNP reports fail, naming the step, after one flipped byte in the
//! signature, the measurement, the report data or a certificate of the chain. The SGX and TDX
//! quote files have the same flips in sgx.rs and tdx.rs; the evidence file's full-collateral
//! verification at 2023-06-01 and its staleness today are in sgx.rs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use crate::common;
use common::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use mse_attest::collateral::Collateral;
use mse_attest::evidence_file::EvidenceFile;
use mse_attest::policy::Policy;
use mse_attest::ratls::{RaTlsCertificate, RawEvidence};
use mse_attest::verify::{Expected, verify_at, verify_certificate_at};
use mse_attest::{Step, TeeKind, dcap, sgx, snp, tdx};

fn fixtures_tee() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tee")
}

/// `../shared/testdata/tee` next to the workspace, when this checkout has it.
fn shared_tee() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/tee");
    p.is_dir().then_some(p)
}

/// Relative path → bytes of every file under `dir` (README.md excepted).
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if p.file_name().is_some_and(|n| n != "README.md") {
                let rel = p.strip_prefix(root).unwrap().to_str().unwrap().to_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Parse one testdata file by what it is; panics on a file this test does not know, so that a
/// new testdata file cannot go untested.
fn parse_testdata_file(rel: &str, bytes: &[u8], all: &BTreeMap<String, Vec<u8>>) -> String {
    let text = || std::str::from_utf8(bytes).unwrap();
    match rel {
        "mse/evidence-home-2023-05.json" => {
            let ev = EvidenceFile::parse(bytes).unwrap();
            let cert = ev.certificate().unwrap();
            let q = sgx::Quote::parse(&cert.evidence().bytes).unwrap();
            assert!(ev.collateral().unwrap().has_dcap());
            assert_eq!(q.mr_signer(), &ev.signer_mr().unwrap());
            format!("evidence file, SGX {}", hex::encode(q.mr_enclave()))
        }
        "mse/app.py" => format!("{} bytes of Python", text().len()),
        "mse/code.key" => {
            assert_eq!(bytes.len(), 32, "a raw secretbox key");
            "code key".into()
        }
        "mse/app.py.enc" => {
            let key: [u8; 32] = all["mse/code.key"].as_slice().try_into().unwrap();
            let clear = mse_crypto::code::decrypt(
                &mse_crypto::CodeKey::from_bytes(key),
                bytes,
                "app.py.enc",
            )
            .unwrap();
            assert_eq!(clear.as_slice(), all["mse/app.py"].as_slice());
            "secretbox file = nonce ‖ tag ‖ ciphertext of app.py".into()
        }
        "sgx/mse-signer-key.pem" => {
            let mr = sgx::mr_signer_from_rsa_pem(text()).unwrap();
            assert_eq!(
                hex::encode(mr),
                "c1c161d0dd996e8a9847de67ea2c00226761f7715a2c422d3012ac10795a1ef5"
            );
            "RSA-3072 signer key".into()
        }
        "sgx/pck-platform-ca.pem" | "sgx/pck-processor-ca.pem" => {
            let der = pem::parse(bytes).unwrap().into_contents();
            let info = dcap::pck_info(&der).unwrap();
            format!(
                "PCK leaf, {:?} CA, FMSPC {}",
                info.ca,
                hex::encode(info.fmspc)
            )
        }
        "snp/vcek.pem" => {
            let certs = pem::parse_many(bytes).unwrap();
            assert_eq!(certs.len(), 3, "VCEK, ASK, ARK");
            Collateral::none().with_amd_certs_pem(bytes).unwrap();
            "VCEK chain".into()
        }
        r if r.ends_with("-ratls-cert.pem") => {
            let c = RaTlsCertificate::from_pem(text()).unwrap();
            let kind = c.evidence().kind;
            parse_evidence(kind, &c.evidence().bytes);
            format!("RA-TLS certificate carrying {kind}")
        }
        r if r.starts_with("sgx/") && r.ends_with(".dat") => {
            parse_evidence(TeeKind::Sgx, bytes);
            "SGX quote v3".into()
        }
        r if r.starts_with("tdx/") && (r.ends_with(".dat") || r.ends_with(".bin")) => {
            parse_evidence(TeeKind::Tdx, bytes);
            "TDX quote".into()
        }
        r if r.starts_with("snp/report-") && r.ends_with(".bin") => {
            parse_evidence(TeeKind::SevSnp, bytes);
            "SNP report".into()
        }
        other => panic!("testdata file {other} is not covered by this test: add a parser for it"),
    }
}

fn parse_evidence(kind: TeeKind, bytes: &[u8]) {
    match kind {
        TeeKind::Sgx | TeeKind::Sim => {
            let q = sgx::Quote::parse(bytes).unwrap();
            assert!(!q.pck_chain().unwrap().is_empty());
        }
        TeeKind::Tdx => {
            let q = tdx::Quote::parse(bytes).unwrap();
            assert_eq!(q.measurement().len(), 240);
        }
        TeeKind::SevSnp => {
            let e = snp::Evidence::parse(bytes).unwrap();
            assert_eq!(e.report.measurement.len(), 48);
        }
    }
}

// THREAT: T3 — the parsers accept every real evidence file (and the verifier tests run on them).
#[test]
fn t3_every_testdata_file_parses_and_the_test_copy_is_identical() {
    let copy = files(&fixtures_tee());
    match shared_tee() {
        Some(shared) => {
            let shared = files(&shared);
            assert_eq!(
                shared.keys().collect::<Vec<_>>(),
                copy.keys().collect::<Vec<_>>(),
                "tests/fixtures/tee must hold every file of ../shared/testdata/tee"
            );
            for (k, v) in &shared {
                assert!(copy[k] == *v, "{k}: the test copy differs from testdata");
            }
        }
        None => println!("note: ../shared/testdata/tee absent; parsing the test copy only"),
    }
    assert!(copy.len() >= 20, "only {} files", copy.len());
    for (rel, bytes) in &copy {
        let what = parse_testdata_file(rel, bytes, &copy);
        println!("{rel}: {what}");
    }
}

// Offsets of the fields the flips hit.
const SGX_MR_ENCLAVE: usize = 48 + 64;
const SGX_REPORT_DATA: usize = 48 + 320;
const SGX_QUOTE_SIG: usize = 436;
const TDX_MR_TD: usize = 48 + 136;
const TDX_REPORT_DATA: usize = 48 + 520;
const TDX_QUOTE_SIG: usize = 636;
const SNP_REPORT_DATA: usize = 0x50;
const SNP_MEASUREMENT: usize = 0x90;
const SNP_SIGNATURE: usize = 0x2A0;

/// Flip one base64 character inside the `index`-th PEM certificate found in `b`, or `None`.
fn flip_pem_at(b: &[u8], index: usize) -> Option<Vec<u8>> {
    let marker = b"-----BEGIN CERTIFICATE-----\n";
    let mut pos = 0;
    for _ in 0..=index {
        let rel = b
            .get(pos..)?
            .windows(marker.len())
            .position(|w| w == marker)?;
        pos += rel + marker.len();
    }
    let at = pos + 200;
    let mut v = b.to_vec();
    v[at] = if v[at] == b'A' { b'B' } else { b'A' };
    Some(v)
}

/// (name, field offset or chain certificate, step that must fail) for one kind of evidence.
fn flips(kind: TeeKind, evidence: &[u8]) -> Vec<(String, Vec<u8>, Step)> {
    let mut out = Vec::new();
    let (sig, meas, rd, sig_step) = match kind {
        TeeKind::Sgx | TeeKind::Sim => (
            SGX_QUOTE_SIG,
            SGX_MR_ENCLAVE,
            SGX_REPORT_DATA,
            Step::QuoteSignature,
        ),
        TeeKind::Tdx => (
            TDX_QUOTE_SIG,
            TDX_MR_TD,
            TDX_REPORT_DATA,
            Step::QuoteSignature,
        ),
        TeeKind::SevSnp => (
            SNP_SIGNATURE + 1,
            SNP_MEASUREMENT + 5,
            SNP_REPORT_DATA + 10,
            Step::ReportSignature,
        ),
    };
    out.push(("signature".into(), flip(evidence, sig), sig_step));
    out.push(("measurement".into(), flip(evidence, meas), sig_step));
    out.push(("report data".into(), flip(evidence, rd), sig_step));
    match kind {
        TeeKind::SevSnp => {
            let parsed = snp::Evidence::parse(evidence).unwrap();
            assert!(!parsed.certs.is_empty(), "no certificate table");
            for c in &parsed.certs {
                let at = find(evidence, &c.der) + 300;
                out.push((
                    format!("{:?} certificate", c.kind),
                    flip(evidence, at),
                    Step::AmdChain,
                ));
            }
        }
        _ => {
            let mut i = 0;
            while let Some(v) = flip_pem_at(evidence, i) {
                out.push((format!("chain certificate {i}"), v, Step::PckChain));
                i += 1;
            }
            assert!(i >= 2, "a PCK chain has at least leaf and root, found {i}");
        }
    }
    out
}

/// A certificate re-read after `evidence` replaced its evidence bytes in the DER.
fn with_evidence(cert: &RaTlsCertificate, evidence: &[u8]) -> RaTlsCertificate {
    let old = &cert.evidence().bytes;
    assert_eq!(old.len(), evidence.len());
    let at = find(cert.der(), old);
    let mut der = cert.der().to_vec();
    der[at..at + old.len()].copy_from_slice(evidence);
    RaTlsCertificate::from_der(&der).unwrap()
}

fn at(y: i32, m: u8, d: u8, hour: u64) -> SystemTime {
    day(y, m, d) + Duration::from_secs(hour * 3600)
}

/// The RA-TLS certificates of testdata that are not debug: (file, time inside its validity,
/// policy that accepts it untouched). Offline, so collateral is skipped for Intel (the
/// collateral path is exercised on the evidence file in sgx.rs); SNP needs none.
fn ratls_cases() -> Vec<(&'static str, SystemTime, Policy)> {
    let intel = Policy::mse_compatible().insecure_skip_collateral();
    vec![
        (
            "sgx/mse-cloud-ratls-cert.pem",
            at(2023, 5, 15, 9),
            intel.clone(),
        ),
        ("tdx/tdx-ratls-cert.pem", day(2024, 1, 1), intel),
        (
            "snp/sev-ratls-cert.pem",
            day(2026, 6, 1),
            Policy::mse_compatible(),
        ),
    ]
}

// THREAT: T3 — one flipped byte of evidence carried in an RA-TLS certificate (signature,
// measurement, report data, each certificate of the chain) fails at the step it breaks.
#[test]
fn t3_ratls_certificates_fail_at_the_step_a_flipped_byte_breaks() {
    for (f, now, policy) in ratls_cases() {
        let cert = RaTlsCertificate::from_pem(&fixture_str(&format!("tee/{f}"))).unwrap();
        let a = verify_certificate_at(
            &cert,
            &Collateral::none(),
            &policy,
            &Expected::default(),
            now,
        )
        .unwrap_or_else(|e| panic!("{f} untouched: {e}"));
        assert_eq!(a.tee, cert.evidence().kind, "{f}");
        let cases = flips(cert.evidence().kind, &cert.evidence().bytes);
        assert!(cases.len() >= 5, "{f}: {} cases", cases.len());
        for (what, bytes, step) in cases {
            let bad = with_evidence(&cert, &bytes);
            let r = verify_certificate_at(
                &bad,
                &Collateral::none(),
                &policy,
                &Expected::default(),
                now,
            );
            let msg = match r {
                Ok(_) => panic!("{f}: a flipped byte in the {what} verified"),
                Err(e) => {
                    assert_eq!(e.step(), Some(step), "{f}, {what}: {e}");
                    e.to_string()
                }
            };
            assert!(msg.starts_with(step.as_str()), "{f}, {what}: {msg}");
        }
    }
}

// THREAT: T5 — evidence copied into a certificate with another key fails the binding.
#[test]
fn t5_ratls_evidence_under_another_key_fails_the_binding() {
    let keys: Vec<[u8; 65]> = ratls_cases()
        .iter()
        .map(|(f, _, _)| {
            *RaTlsCertificate::from_pem(&fixture_str(&format!("tee/{f}")))
                .unwrap()
                .tls_public_key()
        })
        .collect();
    for (f, now, policy) in ratls_cases() {
        let cert = RaTlsCertificate::from_pem(&fixture_str(&format!("tee/{f}"))).unwrap();
        let key = cert.tls_public_key();
        let other = keys.iter().find(|k| *k != key).unwrap();
        let at_key = find(cert.der(), key);
        let mut der = cert.der().to_vec();
        der[at_key..at_key + 65].copy_from_slice(other);
        let forged = RaTlsCertificate::from_der(&der).unwrap();
        assert_eq!(forged.tls_public_key(), other);
        let msg = expect_step(
            verify_certificate_at(
                &forged,
                &Collateral::none(),
                &policy,
                &Expected::default(),
                now,
            ),
            Step::ReportDataBinding,
        );
        assert!(msg.contains("not made for this certificate"), "{f}: {msg}");
    }
}

// THREAT: T3 — the VLEK report: flips in signature, measurement, report data, the VLEK.
#[test]
fn t3_vlek_report_flips_fail_at_the_step_they_break() {
    let bytes = fixture("tee/snp/report-vlek.bin");
    let now = day(2024, 1, 1);
    let run = |b: Vec<u8>| {
        verify_at(
            &RawEvidence {
                kind: TeeKind::SevSnp,
                bytes: b,
            },
            &Collateral::none(),
            &Policy::default_strict(),
            &Expected::default(),
            now,
        )
    };
    run(bytes.clone()).unwrap_or_else(|e| panic!("{e}"));
    for (what, b, step) in flips(TeeKind::SevSnp, &bytes) {
        let msg = expect_step(run(b), step);
        println!("{what}: {msg}");
    }
}

// THREAT: T13 — collateral current at its issue date is stale today: refused by the strict
// policy with the dates, accepted by a tolerant one only with a warning and `stale`.
#[test]
fn t13_tdx_collateral_is_reported_stale_today() {
    let c = Collateral::from_dcap_qvl_json(
        &fixture("dcap-qvl/tdx_quote_collateral.json"),
        "dcap-qvl sample",
    )
    .unwrap();
    let ev = RawEvidence {
        kind: TeeKind::Tdx,
        bytes: fixture("dcap-qvl/tdx_quote"),
    };
    let w = c.window().unwrap().unwrap();
    let fresh = at_unix(w.latest_issue() + 60);
    let a = verify_at(
        &ev,
        &c,
        &Policy::default_strict(),
        &Expected::default(),
        fresh,
    )
    .unwrap();
    assert!(!a.collateral.as_ref().unwrap().stale);

    let now = SystemTime::now();
    let e = expect_step(
        verify_at(
            &ev,
            &c,
            &Policy::default_strict(),
            &Expected::default(),
            now,
        ),
        Step::Collateral,
    );
    assert!(e.contains("expired on"), "{e}");
    let a = verify_at(
        &ev,
        &c,
        &Policy::default_strict().warn_on_stale_collateral(),
        &Expected::default(),
        now,
    )
    .unwrap();
    assert!(a.collateral.as_ref().unwrap().stale);
    assert!(
        a.warnings
            .iter()
            .any(|w| w.starts_with("collateral: ") && w.contains("expired on")),
        "{:?}",
        a.warnings
    );
}
