//! Simulation quotes: the same checks as SGX against a simulation root; accepted only with
//! allow_simulation, and then SIMULATED everywhere.
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
use mse_attest::ratls::RawEvidence;
use mse_attest::report::{Freshness, VerifyReport};
use mse_attest::sim::{QuoteSigner, SimQuoteConfig, SimRoot, SimRootKey};
use mse_attest::verify::{Expected, verify_at};
use mse_attest::{TeeKind, report_data, sgx};

const MEASUREMENT: [u8; 32] = [0x42; 32];

fn signer(debug: bool) -> (SimRootKey, QuoteSigner) {
    let now = SystemTime::now();
    let root = SimRootKey::generate(now).unwrap();
    let cfg = SimQuoteConfig {
        mr_enclave: MEASUREMENT,
        debug,
        isv_prod_id: 3,
        isv_svn: 7,
    };
    let s = QuoteSigner::new(&root, &cfg, now).unwrap();
    (root, s)
}

fn ev(bytes: Vec<u8>) -> RawEvidence {
    RawEvidence {
        kind: TeeKind::Sgx,
        bytes,
    }
}

#[test]
fn sim_quote_round_trips_through_the_parser() {
    let (root, s) = signer(false);
    let q = sgx::Quote::parse(&s.quote(&[7; 64]).unwrap()).unwrap();
    assert_eq!(q.mr_enclave(), &MEASUREMENT);
    assert_eq!(q.mr_signer(), &root.root().mr_signer());
    assert_eq!(q.report_data(), &[7; 64]);
    assert_eq!((q.isv_prod_id(), q.isv_svn()), (3, 7));
    assert!(!q.debug());
    assert_eq!(q.body().attributes.flags, 0x5);
    assert_eq!(q.header().user_data, *b"mse SIMULATION quote");
    let chain = q.pck_chain().unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[1], root.root().der());
    assert_eq!(q.padding(), 0);
}

// THREAT: T12 — sim evidence verifies only with allow_simulation; the error says why; reports say SIMULATED.
#[test]
fn sim_verifies_only_with_allow_simulation() {
    let (root, s) = signer(false);
    let rd = [9u8; 64];
    let e = ev(s.quote(&rd).unwrap());
    let exp = Expected {
        measurement: Some(MEASUREMENT.to_vec()),
        report_data: Some(rd),
        ..Expected::default()
    };

    let msg = expect_step(
        verify_at(
            &e,
            &Collateral::none(),
            &Policy::default_strict(),
            &exp,
            SystemTime::now(),
        ),
        Step::PolicySimulation,
    );
    assert!(
        msg.contains("SIMULATION") && msg.contains("allow_simulation") && msg.contains("No TEE"),
        "{msg}"
    );
    expect_step(
        verify_at(
            &e,
            &Collateral::none(),
            &Policy::mse_compatible(),
            &exp,
            SystemTime::now(),
        ),
        Step::PolicySimulation,
    );

    let p = Policy::default_strict().allow_simulation(root.root().clone());
    let a = verify_at(&e, &Collateral::none(), &p, &exp, SystemTime::now()).unwrap();
    assert_eq!(a.tee, TeeKind::Sim);
    assert!(a.simulated);
    assert_eq!(a.tcb_status, "SIMULATED (no TCB)");
    assert!(a.warnings[0].starts_with("SIMULATED"));
    assert_eq!(a.signer, Some(root.root().mr_signer()));

    let report = VerifyReport::new(&e, &exp, Freshness::Fresh { nonce: "00".into() }, &Ok(a));
    let human = report.to_human();
    assert!(human.starts_with("VERIFIED, BUT SIMULATED"), "{human}");
    assert!(human.contains("sim (SIMULATED, not a TEE)"), "{human}");
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["simulated"], true);
    assert_eq!(json["ok"], true);
}

// THREAT: T12 — another installation's simulation root is refused.
#[test]
fn another_installations_root_is_refused() {
    let (_, s) = signer(false);
    let other = SimRootKey::generate(SystemTime::now()).unwrap();
    let p = Policy::default_strict().allow_simulation(other.root().clone());
    let msg = expect_step(
        verify_at(
            &ev(s.quote(&[0; 64]).unwrap()),
            &Collateral::none(),
            &p,
            &Expected::default(),
            SystemTime::now(),
        ),
        Step::PolicySimulation,
    );
    assert!(msg.contains("another installation"), "{msg}");
}

// THREAT: T3, T12 — the simulation path runs the same signature and chain checks.
#[test]
fn flipped_bytes_fail_at_the_right_step() {
    let (root, s) = signer(false);
    let q = s.quote(&[1; 64]).unwrap();
    let p = Policy::default_strict().allow_simulation(root.root().clone());
    let run = |b: Vec<u8>| {
        verify_at(
            &ev(b),
            &Collateral::none(),
            &p,
            &Expected::default(),
            SystemTime::now(),
        )
    };
    run(q.clone()).unwrap();
    expect_step(run(flip(&q, 436)), Step::QuoteSignature);
    expect_step(run(flip(&q, 48 + 64)), Step::QuoteSignature);
    expect_step(run(flip(&q, 48 + 320)), Step::QuoteSignature);
    expect_step(run(flip(&q, 564 + 10)), Step::QeReportSignature);
    expect_step(run(flip(&q, 500)), Step::QeReport);
    // A byte of the PCK-like leaf certificate (base64 inside the PEM chain).
    let at = find(&q, b"-----BEGIN CERTIFICATE-----\n") + 28 + 150;
    let mut bad = q.clone();
    bad[at] = if bad[at] == b'A' { b'B' } else { b'A' };
    expect_step(run(bad), Step::PckChain);
}

// THREAT: T4 — debug is refused in simulation too.
#[test]
fn debug_sim_is_refused_unless_allowed() {
    let (root, s) = signer(true);
    let e = ev(s.quote(&[0; 64]).unwrap());
    let p = Policy::default_strict().allow_simulation(root.root().clone());
    expect_step(
        verify_at(
            &e,
            &Collateral::none(),
            &p,
            &Expected::default(),
            SystemTime::now(),
        ),
        Step::PolicyDebug,
    );
    let a = verify_at(
        &e,
        &Collateral::none(),
        &p.insecure_allow_debug(),
        &Expected::default(),
        SystemTime::now(),
    )
    .unwrap();
    assert!(a.debug && a.simulated);
}

// THREAT: T5 — fresh evidence binds the nonce; a replay fails.
#[test]
fn fresh_evidence_binds_the_nonce() {
    let (root, s) = signer(false);
    let tls = [4u8; 65];
    let enclave = [5u8; 32];
    let q = s
        .quote(&report_data::fresh(&tls, &enclave, b"nonce-1"))
        .unwrap();
    let p = Policy::default_strict().allow_simulation(root.root().clone());
    let ok = Expected {
        report_data: Some(report_data::fresh(&tls, &enclave, b"nonce-1")),
        ..Expected::default()
    };
    verify_at(
        &ev(q.clone()),
        &Collateral::none(),
        &p,
        &ok,
        SystemTime::now(),
    )
    .unwrap();
    let replay = Expected {
        report_data: Some(report_data::fresh(&tls, &enclave, b"nonce-2")),
        ..Expected::default()
    };
    let msg = expect_step(
        verify_at(&ev(q), &Collateral::none(), &p, &replay, SystemTime::now()),
        Step::ReportDataBinding,
    );
    assert!(msg.contains("replayed"), "{msg}");
}

// THREAT: T5 — certificate and fresh report data cannot pass for each other.
#[test]
fn report_data_constructions_are_distinct_and_fixed() {
    let tls = [4u8; 65];
    let enclave = [5u8; 32];
    let r = report_data::ratls(&tls, &enclave);
    assert_eq!(&r[32..], &enclave);
    assert_eq!(&r[..32], &report_data::tls_key_hash(&tls));
    assert_ne!(report_data::fresh(&tls, &enclave, b""), r);
    assert_ne!(
        report_data::fresh(&tls, &enclave, b"a"),
        report_data::fresh(&tls, &enclave, b"b")
    );
    // Pinned value (docs/attestation.md): SHA-512("mse/report-data/fresh/v1\0" ‖ tls ‖ enclave ‖ "n").
    use sha2::Digest;
    let mut h = sha2::Sha512::new();
    h.update(b"mse/report-data/fresh/v1\0");
    h.update(tls);
    h.update(enclave);
    h.update(b"n");
    assert_eq!(
        report_data::fresh(&tls, &enclave, b"n").as_slice(),
        h.finalize().as_slice()
    );
}

// THREAT: T12 — an Intel certificate is not a simulation root.
#[test]
fn sim_root_pem_round_trip_and_checks() {
    let root = SimRootKey::generate(SystemTime::now()).unwrap();
    let pem = root.root().to_pem();
    assert_eq!(&SimRoot::from_pem(&pem).unwrap(), root.root());
    let key_pem = root.to_pkcs8_pem().unwrap();
    let again = SimRootKey::from_pem(&key_pem, &pem).unwrap();
    assert_eq!(again.root(), root.root());
    let other = SimRootKey::generate(SystemTime::now()).unwrap();
    assert!(
        SimRootKey::from_pem(&key_pem, &other.root().to_pem()).is_err(),
        "key and certificate must match"
    );
    // An Intel certificate is not a simulation root.
    assert!(SimRoot::from_der(mse_attest::verify::INTEL_SGX_ROOT_CA_DER).is_err());
    assert!(format!("{root:?}").contains("redacted"));
}
