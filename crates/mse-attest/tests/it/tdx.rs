//! TDX: dcap-qvl samples verify at their collateral time; testdata quotes fail at the step a
//! flipped byte breaks.
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
use mse_attest::collateral::Collateral;
use mse_attest::policy::Policy;
use mse_attest::ratls::{RaTlsCertificate, RawEvidence};
use mse_attest::verify::{Expected, verify_at, verify_certificate_at};
use mse_attest::{TeeKind, tdx};

// TDX v4 offsets.
const MR_TD: usize = 48 + 136;
const REPORT_DATA: usize = 48 + 520;
const QUOTE_SIG: usize = 636;
const QE_REPORT: usize = 770;

fn ev(bytes: Vec<u8>) -> RawEvidence {
    RawEvidence {
        kind: TeeKind::Tdx,
        bytes,
    }
}

fn sample(name: &str) -> (RawEvidence, Collateral, SystemTime) {
    let c = Collateral::from_dcap_qvl_json(
        &fixture(&format!("dcap-qvl/{name}_collateral.json")),
        "dcap-qvl sample",
    )
    .unwrap();
    let w = c.window().unwrap().unwrap();
    (
        ev(fixture(&format!("dcap-qvl/{name}"))),
        c,
        at_unix(w.latest_issue() + 60),
    )
}

// THREAT: T3, T2 — TDX with full collateral verifies; flips fail at the step they break.
#[test]
fn dcap_qvl_tdx_sample_verifies_and_flips_fail() {
    let (e, c, at) = sample("tdx_quote");
    let q = tdx::Quote::parse(&e.bytes).unwrap();
    let exp = Expected {
        measurement: Some(q.mr_td().to_vec()),
        ..Expected::default()
    };
    let a = verify_at(&e, &c, &Policy::default_strict(), &exp, at).unwrap();
    assert_eq!(a.tcb_status, "UpToDate");
    assert_eq!(a.measurement, q.measurement());
    let full = Expected {
        measurement: Some(q.measurement()),
        ..Expected::default()
    };
    verify_at(&e, &c, &Policy::default_strict(), &full, at).unwrap();
    let wrong = Expected {
        measurement: Some(flip(q.mr_td(), 0)),
        ..Expected::default()
    };
    expect_step(
        verify_at(&e, &c, &Policy::default_strict(), &wrong, at),
        Step::Measurement,
    );

    let run = |b: Vec<u8>| {
        verify_at(
            &ev(b),
            &c,
            &Policy::default_strict(),
            &Expected::default(),
            at,
        )
    };
    expect_step(run(flip(&e.bytes, QUOTE_SIG)), Step::QuoteSignature);
    expect_step(run(flip(&e.bytes, MR_TD)), Step::QuoteSignature);
    expect_step(run(flip(&e.bytes, REPORT_DATA)), Step::QuoteSignature);
    expect_step(run(flip(&e.bytes, QE_REPORT + 20)), Step::QeReportSignature);
}

/// dcap-qvl's "outdated" TDX sample carries a TDX module version that no TCB level of its collateral
/// appraises. An unappraisable TCB is not "OutOfDate": it must fail closed at the TCB step under every
/// policy, including the lenient `mse-compatible` one.
// THREAT: T13 — an unappraisable TCB fails closed.
#[test]
fn unappraisable_tdx_tcb_fails_closed_under_every_policy() {
    let (e, c, at) = sample("tdx_quote_outdated");
    for p in [Policy::default_strict(), Policy::mse_compatible()] {
        let msg = expect_step(verify_at(&e, &c, &p, &Expected::default(), at), Step::Tcb);
        assert!(msg.contains("No matching TCB level"), "{msg}");
    }
}

#[test]
fn td15ex_sample_verifies() {
    let (e, c, at) = sample("tdx_quote_td15ex");
    verify_at(&e, &c, &Policy::mse_compatible(), &Expected::default(), at)
        .unwrap_or_else(|e| panic!("{e}"));
}

// THREAT: T3 — flips in the testdata TDX quotes fail at the step they break.
#[test]
fn testdata_tdx_quotes_check_signatures_without_collateral() {
    let p = Policy::default_strict().insecure_skip_collateral();
    for f in ["tee/tdx/tdx-quote.dat", "tee/tdx/azure-tdx-quote.bin"] {
        let b = fixture(f);
        let at = day(2024, 1, 1);
        verify_at(
            &ev(b.clone()),
            &Collateral::none(),
            &p,
            &Expected::default(),
            at,
        )
        .unwrap_or_else(|e| panic!("{f}: {e}"));
        let run = |x: Vec<u8>| verify_at(&ev(x), &Collateral::none(), &p, &Expected::default(), at);
        expect_step(run(flip(&b, QUOTE_SIG + 1)), Step::QuoteSignature);
        expect_step(run(flip(&b, MR_TD + 2)), Step::QuoteSignature);
        expect_step(run(flip(&b, REPORT_DATA + 3)), Step::QuoteSignature);
        let pem_at = find(&b, b"-----BEGIN CERTIFICATE-----\n") + 28 + 200;
        let mut bad = b.clone();
        bad[pem_at] = if bad[pem_at] == b'A' { b'B' } else { b'A' };
        expect_step(run(bad), Step::PckChain);
    }
}

// THREAT: T3 — one flipped byte in the TBS or the signature of each certificate of the testdata
// quotes' PCK chain fails: leaf and PCK CA at their signature, the root as not the pinned one.
#[test]
fn testdata_tdx_quote_chain_flips_fail_at_the_chain_or_the_pinned_root() {
    let p = Policy::default_strict().insecure_skip_collateral();
    let at = day(2024, 1, 1);
    for f in ["tee/tdx/tdx-quote.dat", "tee/tdx/azure-tdx-quote.bin"] {
        let b = fixture(f);
        let chain = tdx::Quote::parse(&b).unwrap().pck_chain().unwrap();
        assert_eq!(chain.len(), 3, "{f}: PCK leaf, PCK CA, root");
        let run = |x: Vec<u8>| verify_at(&ev(x), &Collateral::none(), &p, &Expected::default(), at);
        for i in 0..3 {
            for (what, bad) in pem_chain_flips(&b, &chain, i) {
                let e = expect_step(run(bad), Step::PckChain);
                let want = if i == 2 {
                    "not at the pinned Intel SGX Root CA".to_owned()
                } else {
                    format!(
                        "signature of {:?} by {:?} does not verify",
                        cert_cn(&chain[i]),
                        cert_cn(&chain[i + 1])
                    )
                };
                assert!(e.contains(&want), "{f}, {what}: {e}");
            }
        }
    }
}

#[test]
fn tdx_ratls_certificate() {
    let cert = RaTlsCertificate::from_pem(&fixture_str("tee/tdx/tdx-ratls-cert.pem")).unwrap();
    let p = Policy::mse_compatible().insecure_skip_collateral();
    let a = verify_certificate_at(
        &cert,
        &Collateral::none(),
        &p,
        &Expected::default(),
        day(2024, 1, 1),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.tee, TeeKind::Tdx);
}
