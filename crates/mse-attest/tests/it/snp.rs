//! SEV-SNP: chains to the pinned ARK, report signature, TCB against the VCEK, policy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use crate::common;
use common::*;

use mse_attest::Step;
use mse_attest::TeeKind;
use mse_attest::collateral::Collateral;
use mse_attest::policy::{MinSnpTcb, Policy};
use mse_attest::ratls::{RaTlsCertificate, RawEvidence};
use mse_attest::snp;
use mse_attest::verify::{Expected, verify_at, verify_certificate_at};

const MEASUREMENT: usize = 0x90;
const REPORT_DATA: usize = 0x50;
const SIGNATURE: usize = 0x2A0;

fn ev(bytes: Vec<u8>) -> RawEvidence {
    RawEvidence {
        kind: TeeKind::SevSnp,
        bytes,
    }
}

fn policy() -> Policy {
    Policy::default_strict()
}

// THREAT: T3 — SNP: flips in signature, measurement, report data, each certificate fail, naming the step.
#[test]
fn report_with_its_certificates_verifies_and_flips_fail() {
    let bytes = fixture("tee/snp/report-with-ark-ask-vcek.bin");
    let at = day(2026, 6, 1);
    let a = verify_at(
        &ev(bytes.clone()),
        &Collateral::none(),
        &policy(),
        &Expected::default(),
        at,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.tee, TeeKind::SevSnp);
    assert_eq!(a.measurement.len(), 48);
    assert!(
        a.tcb_status.contains("Milan SEV-VCEK matches REPORTED_TCB"),
        "{}",
        a.tcb_status
    );
    let run = |b: Vec<u8>| {
        verify_at(
            &ev(b),
            &Collateral::none(),
            &policy(),
            &Expected::default(),
            at,
        )
    };
    expect_step(run(flip(&bytes, SIGNATURE + 3)), Step::ReportSignature);
    expect_step(run(flip(&bytes, MEASUREMENT)), Step::ReportSignature);
    expect_step(run(flip(&bytes, REPORT_DATA + 63)), Step::ReportSignature);
    // A byte inside each certificate of the table (ARK, VCEK, ASK), past its header.
    let parsed = snp::Evidence::parse(&bytes).unwrap();
    for c in &parsed.certs {
        let at_cert = find(&bytes, &c.der) + 300;
        expect_step(run(flip(&bytes, at_cert)), Step::AmdChain);
    }
    // Before the VCEK existed, it is not valid.
    let e = expect_step(
        verify_at(
            &ev(bytes),
            &Collateral::none(),
            &policy(),
            &Expected::default(),
            day(2025, 1, 1),
        ),
        Step::AmdChain,
    );
    assert!(e.contains("not valid before"), "{e}");
}

// THREAT: T3 — only the pinned ARK is a root.
#[test]
fn an_ark_that_is_not_amds_is_refused() {
    let bytes = fixture("tee/snp/report-with-ark-ask-vcek.bin");
    let parsed = snp::Evidence::parse(&bytes).unwrap();
    // Replace the ARK by the ASK: the table still parses, but the ARK is not the pinned one.
    let mut certs = parsed.certs.clone();
    let ask = certs
        .iter()
        .find(|c| c.kind == snp::CertKind::Ask)
        .unwrap()
        .der
        .clone();
    certs
        .iter_mut()
        .find(|c| c.kind == snp::CertKind::Ark)
        .unwrap()
        .der = ask;
    let mut forged = parsed.report.as_bytes().to_vec();
    forged.extend(snp::encode_cert_table(&certs).unwrap());
    let e = expect_step(
        verify_at(
            &ev(forged),
            &Collateral::none(),
            &policy(),
            &Expected::default(),
            day(2026, 6, 1),
        ),
        Step::AmdChain,
    );
    assert!(e.contains("pinned ARK-Milan"), "{e}");
}

// THREAT: T3, T13 — VLEK chain; an expired VLEK is reported.
#[test]
fn vlek_report_verifies_through_the_asvk() {
    let bytes = fixture("tee/snp/report-vlek.bin");
    let a = verify_at(
        &ev(bytes.clone()),
        &Collateral::none(),
        &policy(),
        &Expected::default(),
        day(2024, 1, 1),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(a.tcb_status.contains("SEV-VLEK"), "{}", a.tcb_status);
    expect_step(
        verify_at(
            &ev(flip(&bytes, MEASUREMENT + 1)),
            &Collateral::none(),
            &policy(),
            &Expected::default(),
            day(2024, 1, 1),
        ),
        Step::ReportSignature,
    );
    let e = expect_step(
        verify_at(
            &ev(bytes),
            &Collateral::none(),
            &policy(),
            &Expected::default(),
            day(2025, 1, 1),
        ),
        Step::AmdChain,
    );
    assert!(e.contains("expired"), "{e}");
}

// THREAT: T3, T13 — a VCEK for another chip is refused.
#[test]
fn bare_report_needs_its_vcek_as_collateral() {
    let bytes = fixture("tee/snp/report-no-cert.bin");
    let at = day(2024, 1, 1);
    let e = expect_step(
        verify_at(
            &ev(bytes.clone()),
            &Collateral::none(),
            &policy(),
            &Expected::default(),
            at,
        ),
        Step::AmdChain,
    );
    assert!(e.contains("no SEV-VCEK certificate"), "{e}");
    // vcek.pem (VCEK, ASK, ARK) is a valid chain, but for another chip than this report's.
    let c = Collateral::none()
        .with_amd_certs_pem(&fixture("tee/snp/vcek.pem"))
        .unwrap();
    let e = expect_step(
        verify_at(&ev(bytes), &c, &policy(), &Expected::default(), at),
        Step::Tcb,
    );
    assert!(e.contains("another chip"), "{e}");
}

#[test]
fn sev_crate_sample_verifies_with_its_vcek() {
    let bytes = hex::decode(fixture_str("sev/report_milan.hex").trim()).unwrap();
    let c = Collateral::none().with_amd_cert_der(fixture("sev/vcek_milan.der"));
    let a = verify_at(
        &ev(bytes.clone()),
        &c,
        &policy(),
        &Expected::default(),
        day(2024, 6, 1),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        a.svn.guest_svn,
        Some(snp::Report::parse(&bytes).unwrap().guest_svn)
    );
    expect_step(
        verify_at(
            &ev(flip(&bytes, REPORT_DATA)),
            &c,
            &policy(),
            &Expected::default(),
            day(2024, 6, 1),
        ),
        Step::ReportSignature,
    );
}

// THREAT: T13 — minimum SNP TCB is policy.
#[test]
fn minimum_tcb_is_policy() {
    let bytes = fixture("tee/snp/report-with-ark-ask-vcek.bin");
    let tcb = snp::Report::parse(&bytes[..snp::REPORT_LEN])
        .unwrap()
        .reported_tcb
        .parts(snp::Generation::Milan);
    let want = MinSnpTcb {
        bootloader: 0,
        tee: 0,
        snp: tcb.snp.saturating_add(1),
        microcode: 0,
    };
    let e = expect_step(
        verify_at(
            &ev(bytes),
            &Collateral::none(),
            &policy().with_min_snp_tcb(want),
            &Expected::default(),
            day(2026, 6, 1),
        ),
        Step::PolicyMinimumSvn,
    );
    assert!(e.contains("SNP SPL"), "{e}");
}

// THREAT: T5 — the SNP RA-TLS certificate binds its key.
#[test]
fn snp_ratls_certificate_binds_its_key() {
    let cert = RaTlsCertificate::from_pem(&fixture_str("tee/snp/sev-ratls-cert.pem")).unwrap();
    let at = day(2026, 6, 1);
    let a = verify_certificate_at(
        &cert,
        &Collateral::none(),
        &Policy::mse_compatible(),
        &Expected::default(),
        at,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.tee, TeeKind::SevSnp);
    assert!(matches!(
        a.binding,
        mse_attest::verify::Binding::Certificate { .. }
    ));
}
