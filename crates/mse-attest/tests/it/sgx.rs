//! SGX: real evidence verifies at its capture time, fails at the step that a flipped byte
//! breaks, and stale collateral at today's date is reported.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use crate::common;
use common::*;

use std::time::SystemTime;

use mse_attest::Step;
use mse_attest::TeeKind;
use mse_attest::collateral::Collateral;
use mse_attest::evidence_file::EvidenceFile;
use mse_attest::policy::{Policy, TcbStatus};
use mse_attest::ratls::{RaTlsCertificate, RawEvidence};
use mse_attest::sgx;
use mse_attest::verify::{Binding, Expected, verify_at, verify_certificate_at};

const MSE_MRENCLAVE: &str = "0e4ec55e690b06a574af59dfd51baa3866ac4c8d37896effc0f1fad17b31cf3b";
pub(crate) const MSE_MRSIGNER: &str =
    "c1c161d0dd996e8a9847de67ea2c00226761f7715a2c422d3012ac10795a1ef5";

// Offsets in an SGX v3 quote.
const MR_ENCLAVE: usize = 48 + 64;
const REPORT_DATA: usize = 48 + 320;
const QUOTE_SIG: usize = 436;
const ATT_KEY: usize = 500;
const QE_REPORT: usize = 564;
const QE_REPORT_SIG: usize = 948;

pub(crate) fn mse_evidence() -> (EvidenceFile, RaTlsCertificate, Collateral) {
    let ev = EvidenceFile::parse(&fixture("tee/mse/evidence-home-2023-05.json")).unwrap();
    let cert = ev.certificate().unwrap();
    let coll = ev.collateral().unwrap();
    (ev, cert, coll)
}

pub(crate) fn expected_mse(ev: &EvidenceFile) -> Expected {
    Expected {
        measurement: Some(hex::decode(MSE_MRENCLAVE).unwrap()),
        signer: Some(ev.signer_mr().unwrap().to_vec()),
        ..Expected::default()
    }
}

// THREAT: T3, T13 — real evidence with full collateral verifies at its capture time (2023-06-01).
#[test]
fn mse_evidence_file_verifies_at_capture_time_under_mse_compatible() {
    let (ev, cert, coll) = mse_evidence();
    let a = verify_certificate_at(
        &cert,
        &coll,
        &Policy::mse_compatible(),
        &expected_mse(&ev),
        day(2023, 6, 1),
    )
    .unwrap();
    assert_eq!(a.tee, TeeKind::Sgx);
    assert!(!a.simulated);
    assert_eq!(hex::encode(&a.measurement), MSE_MRENCLAVE);
    assert_eq!(hex::encode(a.signer.unwrap()), MSE_MRSIGNER);
    assert_eq!(
        a.binding,
        Binding::Certificate {
            legacy_zero_enclave_key: true
        }
    );
    assert_eq!(a.enclave_key, None);
    assert_eq!(
        a.tcb_status, "OutOfDate",
        "the original never looked at the TCB status"
    );
    // The QE identity in this file was issued after 2023-06-01: said, not hidden.
    assert!(
        a.warnings
            .iter()
            .any(|w| w.contains("QE identity is not valid before 2023-06-20")),
        "{:?}",
        a.warnings
    );
}

// THREAT: T13 — collateral never valid at one instant: refused by the strict policy, with the dates.
#[test]
fn mse_evidence_file_is_refused_by_the_strict_policy_with_the_reason() {
    let (ev, cert, coll) = mse_evidence();
    let e = expect_step(
        verify_certificate_at(
            &cert,
            &coll,
            &Policy::default_strict(),
            &expected_mse(&ev),
            day(2023, 6, 1),
        ),
        Step::Collateral,
    );
    assert!(
        e.contains("QE identity is not valid before 2023-06-20"),
        "{e}"
    );
}

// THREAT: T13 — stale collateral at today's date is reported as such.
#[test]
fn stale_collateral_at_today_is_reported() {
    let (ev, cert, coll) = mse_evidence();
    let now = SystemTime::now();
    let e = expect_step(
        verify_certificate_at(
            &cert,
            &coll,
            &Policy::default_strict(),
            &expected_mse(&ev),
            now,
        ),
        Step::Certificate,
    );
    assert!(e.contains("expired on 2024-04-26"), "{e}");
    let e = expect_step(
        verify_at(
            cert.evidence(),
            &coll,
            &Policy::default_strict(),
            &expected_mse(&ev),
            now,
        ),
        Step::Collateral,
    );
    assert!(
        e.contains("TCB info expired on 2023-06-29T00:45:00Z"),
        "{e}"
    );
    assert!(e.contains("PCK CRL expired on 2023-06-15"), "{e}");
    assert!(
        e.contains("\"Intel SGX TCB Signing\" expired on 2025-05-21"),
        "{e}"
    );

    let a = verify_certificate_at(
        &cert,
        &coll,
        &Policy::mse_compatible(),
        &expected_mse(&ev),
        now,
    )
    .unwrap();
    let w = a.warnings.join("\n");
    assert!(
        w.contains("collateral: TCB info expired on 2023-06-29T00:45:00Z"),
        "{w}"
    );
    assert!(
        w.contains("RA-TLS certificate expired on 2024-04-26"),
        "{w}"
    );
    assert!(a.collateral.as_ref().unwrap().stale);
}

// THREAT: T3 — one flipped byte (signature, measurement, report data, QE report, each chain certificate) fails, naming the step.
#[test]
fn flipped_bytes_in_the_mse_quote_fail_at_the_right_step() {
    let (ev, cert, coll) = mse_evidence();
    let quote = cert.evidence().bytes.clone();
    let policy = Policy::mse_compatible();
    let at = day(2023, 6, 1);
    let run = |q: Vec<u8>| {
        verify_at(
            &RawEvidence {
                kind: TeeKind::Sgx,
                bytes: q,
            },
            &coll,
            &policy,
            &expected_mse(&ev),
            at,
        )
    };
    run(quote.clone()).unwrap();
    expect_step(run(flip(&quote, QUOTE_SIG + 5)), Step::QuoteSignature);
    expect_step(run(flip(&quote, MR_ENCLAVE)), Step::QuoteSignature);
    expect_step(run(flip(&quote, REPORT_DATA + 40)), Step::QuoteSignature);
    expect_step(run(flip(&quote, QE_REPORT + 100)), Step::QeReportSignature);
    expect_step(
        run(flip(&quote, QE_REPORT_SIG + 3)),
        Step::QeReportSignature,
    );
    expect_step(run(flip(&quote, ATT_KEY + 10)), Step::QeReport);
    for cert_index in 0..3 {
        let e = expect_step(run(flip_pem(&quote, cert_index)), Step::PckChain);
        if cert_index == 2 {
            assert!(e.contains("pinned Intel SGX Root CA"), "{e}");
        }
    }
}

// THREAT: T2 — the measurement and signer must be the expected ones.
#[test]
fn the_measurement_and_signer_must_be_the_expected_ones() {
    let (ev, cert, coll) = mse_evidence();
    let mut exp = expected_mse(&ev);
    exp.measurement = Some(flip(&hex::decode(MSE_MRENCLAVE).unwrap(), 31));
    let e = expect_step(
        verify_certificate_at(
            &cert,
            &coll,
            &Policy::mse_compatible(),
            &exp,
            day(2023, 6, 1),
        ),
        Step::Measurement,
    );
    assert!(
        e.contains(MSE_MRENCLAVE),
        "the error shows what was found: {e}"
    );
    let mut exp = expected_mse(&ev);
    exp.signer = Some(vec![0; 32]);
    expect_step(
        verify_certificate_at(
            &cert,
            &coll,
            &Policy::mse_compatible(),
            &exp,
            day(2023, 6, 1),
        ),
        Step::Signer,
    );
    let p = Policy::mse_compatible().with_measurement(vec![1u8; 32]);
    expect_step(
        verify_certificate_at(&cert, &coll, &p, &Expected::default(), day(2023, 6, 1)),
        Step::Measurement,
    );
}

// THREAT: T3, T13 — tampered collateral fails at the collateral step.
#[test]
fn a_flipped_byte_in_the_collateral_fails_collateral() {
    let (ev, cert, _) = mse_evidence();
    let mut bad = ev.clone();
    // tcb_info is base64 of hex text of the JSON: flip one hex digit of the JSON ("2023" → "3023").
    let raw =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &ev.tcb_info).unwrap();
    let mut text = String::from_utf8(raw).unwrap();
    let at = text.find("323032332d30352d3330").unwrap(); // "2023-05-30"
    text.replace_range(at..at + 2, "33");
    bad.tcb_info =
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, text.as_bytes());
    let coll = bad.collateral().unwrap();
    let e = expect_step(
        verify_certificate_at(
            &cert,
            &coll,
            &Policy::mse_compatible(),
            &expected_mse(&ev),
            day(2023, 6, 1),
        ),
        Step::Collateral,
    );
    assert!(e.contains("TCB info"), "{e}");
}

// THREAT: T3, T13 — one flipped byte in each other collateral item of the evidence file fails at
// the collateral step, naming the item. The file's items were never valid together, so this
// runs the per-item appraisal (dcap_items), not dcap-qvl.
#[test]
fn a_flipped_byte_in_each_collateral_item_fails_collateral_naming_it() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let (ev, cert, _) = mse_evidence();
    let run = |file: &EvidenceFile| {
        verify_certificate_at(
            &cert,
            &file.collateral().unwrap(),
            &Policy::mse_compatible(),
            &expected_mse(&ev),
            day(2023, 6, 1),
        )
    };
    let root_crl = pem::parse(&ev.root_ca_crl).unwrap().into_contents();
    let pck_crl = pem::parse(&ev.pck_platform_crl).unwrap().into_contents();
    let tcb_cert = pem::parse(&ev.tcb_cert).unwrap().into_contents();
    // Re-encoding the PEM fields changes nothing: the flipped files differ by their flip only.
    let mut reencoded = ev.clone();
    reencoded.root_ca_crl = pem_lf("X509 CRL", &root_crl);
    reencoded.pck_platform_crl = pem_lf("X509 CRL", &pck_crl);
    reencoded.tcb_cert = pem_lf("CERTIFICATE", &tcb_cert);
    let a = run(&reencoded).unwrap();
    assert_eq!(a.collateral.as_ref().unwrap().evaluated_at, "per item");

    // (item, tampered file, text the error must contain)
    let mut cases: Vec<(String, EvidenceFile, String)> = Vec::new();

    // QE identity: base64 of the raw body {"enclaveIdentity":{…},"signature":"<hex>"}. One hex
    // digit of MRSIGNER (inside the signed object, dates untouched) and the last of the signature.
    let qe = String::from_utf8(b64.decode(&ev.qe_identity).unwrap()).unwrap();
    assert!(
        qe.starts_with("{\"enclaveIdentity\""),
        "raw JSON body: {qe}"
    );
    let body_at = qe.find("\"mrsigner\":\"").unwrap() + "\"mrsigner\":\"".len();
    for (what, at) in [
        ("QE identity body (MRSIGNER)", body_at),
        ("QE identity signature", last_hex_digit_of(&qe, "signature")),
    ] {
        let mut bad = ev.clone();
        bad.qe_identity = b64.encode(flip_hex_digit(&qe, at));
        cases.push((
            what.into(),
            bad,
            "QE identity: signature does not verify".into(),
        ));
    }

    // TCB info signature (its body is flipped in a_flipped_byte_in_the_collateral_fails_collateral):
    // the field is base64 of the hex text of the JSON body.
    let tcb_hex = b64.decode(&ev.tcb_info).unwrap();
    let tcb = String::from_utf8(hex::decode(tcb_hex.trim_ascii()).unwrap()).unwrap();
    let mut bad = ev.clone();
    bad.tcb_info = b64.encode(hex::encode(flip_hex_digit(
        &tcb,
        last_hex_digit_of(&tcb, "signature"),
    )));
    cases.push((
        "TCB info signature".into(),
        bad,
        "TCB info: signature does not verify".into(),
    ));

    let pck_ca = cert_cn(
        &sgx::Quote::parse(&cert.evidence().bytes)
            .unwrap()
            .pck_chain()
            .unwrap()[1],
    );
    for (part, at) in [
        ("TBS (authority key id)", crl_flip_at(&root_crl).tbs),
        ("signature", crl_flip_at(&root_crl).signature),
    ] {
        let mut bad = ev.clone();
        bad.root_ca_crl = pem_lf("X509 CRL", &flip(&root_crl, at));
        cases.push((
            format!("root CA CRL {part}"),
            bad,
            "root CA CRL: signature does not verify with \"Intel SGX Root CA\"".into(),
        ));
    }
    for (part, at) in [
        ("TBS (authority key id)", crl_flip_at(&pck_crl).tbs),
        ("signature", crl_flip_at(&pck_crl).signature),
    ] {
        let mut bad = ev.clone();
        bad.pck_platform_crl = pem_lf("X509 CRL", &flip(&pck_crl, at));
        cases.push((
            format!("PCK CRL {part}"),
            bad,
            format!("PCK CRL: signature does not verify with {pck_ca:?}"),
        ));
    }
    for (part, at) in [
        ("TBS (serial number)", cert_flip_at(&tcb_cert).tbs),
        ("signature", cert_flip_at(&tcb_cert).signature),
    ] {
        let mut bad = ev.clone();
        bad.tcb_cert = pem_lf("CERTIFICATE", &flip(&tcb_cert, at));
        cases.push((
            format!("TCB signing certificate {part}"),
            bad,
            "signature of \"Intel SGX TCB Signing\" by \"Intel SGX Root CA\" does not verify"
                .into(),
        ));
    }

    assert_eq!(cases.len(), 9);
    for (what, bad, want) in cases {
        let e = expect_step(run(&bad), Step::Collateral);
        assert!(e.contains(&want), "{what}: {e}");
    }
}

/// Index of the last hex digit of the string value of `"key"` in a JSON text.
fn last_hex_digit_of(json: &str, key: &str) -> usize {
    let open = format!("\"{key}\":\"");
    let start = json.find(&open).unwrap() + open.len();
    let len = json[start..].find('"').unwrap();
    assert!(
        len > 0
            && json[start..start + len]
                .bytes()
                .all(|c| c.is_ascii_hexdigit())
    );
    start + len - 1
}

/// `s` with the hex digit at `at` replaced by another hex digit.
fn flip_hex_digit(s: &str, at: usize) -> String {
    let mut b = s.as_bytes().to_vec();
    assert!(
        b[at].is_ascii_hexdigit(),
        "{:?} is not a hex digit",
        b[at] as char
    );
    b[at] = if b[at] == b'0' { b'1' } else { b'0' };
    String::from_utf8(b).unwrap()
}

// THREAT: T5 — report data without an enclave key is accepted only by mse-compatible.
#[test]
fn legacy_zero_enclave_key_is_only_mse_compatible() {
    let (ev, cert, coll) = mse_evidence();
    let strict = Policy::default_strict()
        .warn_on_stale_collateral()
        .accept_tcb_status(TcbStatus::OutOfDate);
    let e = expect_step(
        verify_certificate_at(&cert, &coll, &strict, &expected_mse(&ev), day(2023, 6, 1)),
        Step::ReportDataBinding,
    );
    assert!(e.contains("all zero"), "{e}");
}

// THREAT: T5 — report data binds the certificate's TLS key.
#[test]
fn report_data_must_bind_the_certificate_key() {
    let (ev, cert, coll) = mse_evidence();
    // Another certificate (the MSE cloud one) cannot carry this quote: verify the quote of
    // one against the key of the other through the exact-report-data check.
    let other =
        RaTlsCertificate::from_pem(&fixture_str("tee/sgx/mse-cloud-ratls-cert.pem")).unwrap();
    let exp = Expected {
        report_data: Some(mse_attest::report_data::ratls(
            other.tls_public_key(),
            &[0; 32],
        )),
        ..expected_mse(&ev)
    };
    expect_step(
        verify_at(
            cert.evidence(),
            &coll,
            &Policy::mse_compatible(),
            &exp,
            day(2023, 6, 1),
        ),
        Step::ReportDataBinding,
    );
    let exp = Expected {
        report_data: Some(mse_attest::report_data::ratls(
            cert.tls_public_key(),
            &[0; 32],
        )),
        ..expected_mse(&ev)
    };
    let a = verify_at(
        cert.evidence(),
        &coll,
        &Policy::mse_compatible(),
        &exp,
        day(2023, 6, 1),
    )
    .unwrap();
    assert_eq!(a.binding, Binding::Exact);
}

// THREAT: T4 — the debug-enclave certificate is rejected under the default policy.
#[test]
fn debug_enclave_certificate_is_rejected_by_default() {
    let cert =
        RaTlsCertificate::from_pem(&fixture_str("tee/sgx/debug-enclave-ratls-cert.pem")).unwrap();
    let at = day(2024, 1, 1);
    let e = expect_step(
        verify_certificate_at(
            &cert,
            &Collateral::none(),
            &Policy::default_strict(),
            &Expected::default(),
            at,
        ),
        Step::PolicyDebug,
    );
    assert!(e.contains("DEBUG"), "{e}");
    expect_step(
        verify_certificate_at(
            &cert,
            &Collateral::none(),
            &Policy::mse_compatible(),
            &Expected::default(),
            at,
        ),
        Step::PolicyDebug,
    );
    // Allowed explicitly (and without collateral), it verifies and says DEBUG.
    let p = Policy::mse_compatible()
        .insecure_allow_debug()
        .insecure_skip_collateral();
    let a = verify_certificate_at(&cert, &Collateral::none(), &p, &Expected::default(), at)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(a.debug);
    assert!(a.warnings.iter().any(|w| w.contains("DEBUG")));
}

// THREAT: T13 — TCB status is policy; stale collateral today is an error or a warning.
#[test]
fn dcap_qvl_sample_verifies_and_its_tcb_status_is_policy() {
    let c = Collateral::from_dcap_qvl_json(
        &fixture("dcap-qvl/sgx_quote_collateral.json"),
        "dcap-qvl sample",
    )
    .unwrap();
    let w = c.window().unwrap().unwrap();
    let at = at_unix(w.latest_issue() + 60);
    let ev = RawEvidence {
        kind: TeeKind::Sgx,
        bytes: fixture("dcap-qvl/sgx_quote"),
    };
    let e = expect_step(
        verify_at(&ev, &c, &Policy::default_strict(), &Expected::default(), at),
        Step::PolicyTcbStatus,
    );
    assert!(
        e.contains("ConfigurationAndSWHardeningNeeded") && e.contains("INTEL-SA-00615"),
        "{e}"
    );
    let p =
        Policy::default_strict().accept_tcb_status(TcbStatus::ConfigurationAndSwHardeningNeeded);
    let a = verify_at(&ev, &c, &p, &Expected::default(), at).unwrap();
    assert_eq!(a.tcb_status, "ConfigurationAndSWHardeningNeeded");
    assert_eq!(a.advisory_ids, ["INTEL-SA-00289", "INTEL-SA-00615"]);
    assert!(!a.collateral.as_ref().unwrap().stale);
    // Today the same collateral is stale: reported, and accepted only as a warning.
    let e = expect_step(
        verify_at(&ev, &c, &p, &Expected::default(), SystemTime::now()),
        Step::Collateral,
    );
    assert!(e.contains("expired on 2025-07"), "{e}");
    let a = verify_at(
        &ev,
        &c,
        &p.clone().warn_on_stale_collateral(),
        &Expected::default(),
        SystemTime::now(),
    )
    .unwrap();
    assert!(
        a.warnings
            .iter()
            .any(|w| w.starts_with("collateral: ") && w.contains("expired on 2025-07")),
        "{:?}",
        a.warnings
    );
}

// THREAT: T3, T13 — no collateral is an error; flips fail at the step they break.
#[test]
fn quotes_without_collateral_need_it_unless_skipped() {
    for f in [
        "tee/sgx/quote-intel-sgx-ra.dat",
        "tee/sgx/mse-quote-full-report-data.dat",
        "tee/sgx/azure-sgx-quote.dat",
    ] {
        let bytes = fixture(f);
        let ev = RawEvidence {
            kind: TeeKind::Sgx,
            bytes: bytes.clone(),
        };
        let at = day(2024, 1, 1);
        let e = expect_step(
            verify_at(
                &ev,
                &Collateral::none(),
                &Policy::default_strict(),
                &Expected::default(),
                at,
            ),
            Step::Collateral,
        );
        assert!(
            e.contains("PCCS"),
            "the error says where to get collateral: {e}"
        );
        let p = Policy::default_strict().insecure_skip_collateral();
        let a = verify_at(&ev, &Collateral::none(), &p, &Expected::default(), at)
            .unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(
            a.warnings
                .iter()
                .any(|w| w.contains("collateral not checked"))
        );
        let run = |b: Vec<u8>| {
            verify_at(
                &RawEvidence {
                    kind: TeeKind::Sgx,
                    bytes: b,
                },
                &Collateral::none(),
                &p,
                &Expected::default(),
                at,
            )
        };
        expect_step(run(flip(&bytes, QUOTE_SIG)), Step::QuoteSignature);
        expect_step(run(flip(&bytes, MR_ENCLAVE + 7)), Step::QuoteSignature);
        expect_step(run(flip(&bytes, REPORT_DATA)), Step::QuoteSignature);
        expect_step(run(flip_pem(&bytes, 0)), Step::PckChain);
        expect_step(run(flip_pem(&bytes, 1)), Step::PckChain);
        let chain = sgx::Quote::parse(&bytes).unwrap().pck_chain().unwrap();
        assert_eq!(chain.len(), 3, "{f}: PCK leaf, PCK CA, root");
        for (what, bad) in pem_chain_flips(&bytes, &chain, 2) {
            let e = expect_step(run(bad), Step::PckChain);
            assert!(
                e.contains("not at the pinned Intel SGX Root CA"),
                "{f}, root {what}: {e}"
            );
        }
    }
}

#[test]
fn pccs_shaped_parts_build_the_same_collateral_as_the_evidence_file() {
    let (ev, _, coll) = mse_evidence();
    let json = coll.to_json().unwrap();
    assert_eq!(Collateral::from_json(&json).unwrap(), coll);
    assert_eq!(coll.source(), "evidence file");
    let _ = ev;
}

/// Flip one base64 character inside the `index`-th PEM certificate of a quote's chain.
fn flip_pem(quote: &[u8], index: usize) -> Vec<u8> {
    let marker = b"-----BEGIN CERTIFICATE-----\n";
    let mut pos = 0;
    for _ in 0..=index {
        pos += find(&quote[pos..], marker) + marker.len();
    }
    let at = pos + 200; // inside the TBS of every Intel certificate
    let mut v = quote.to_vec();
    v[at] = if v[at] == b'A' { b'B' } else { b'A' };
    v
}
