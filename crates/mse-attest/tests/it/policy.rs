//! Policy settings on real evidence (and simulation where the TEE kind is the point): each
//! accepts the evidence that meets it and refuses, naming the step and what was found, evidence
//! that does not.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use crate::common;
use crate::sgx::{MSE_MRSIGNER, expected_mse, mse_evidence};
use common::*;

use std::time::SystemTime;

use mse_attest::collateral::Collateral;
use mse_attest::policy::Policy;
use mse_attest::ratls::RawEvidence;
use mse_attest::sim::{QuoteSigner, SimQuoteConfig, SimRootKey};
use mse_attest::verify::{Appraisal, Expected, Verified, verify_at, verify_certificate_at};
use mse_attest::{Result, Step, TeeKind, sgx, snp};

/// Real SGX evidence with the policy base that accepts it untouched and its time: the evidence
/// file with its full collateral, and the quote files with collateral skipped (they have none).
fn sgx_cases() -> Vec<(&'static str, RawEvidence, Collateral, Policy, SystemTime)> {
    let (_, cert, coll) = mse_evidence();
    let mut out = vec![(
        "evidence file",
        cert.evidence().clone(),
        coll,
        Policy::mse_compatible(),
        day(2023, 6, 1),
    )];
    for f in [
        "tee/sgx/quote-intel-sgx-ra.dat",
        "tee/sgx/mse-quote-full-report-data.dat",
        "tee/sgx/azure-sgx-quote.dat",
    ] {
        out.push((
            f,
            RawEvidence {
                kind: TeeKind::Sgx,
                bytes: fixture(f),
            },
            Collateral::none(),
            Policy::default_strict().insecure_skip_collateral(),
            day(2024, 1, 1),
        ));
    }
    out
}

// THREAT: T13 — ISVPRODID must equal the policy's; ISVSVN must reach its minimum.
#[test]
fn isv_prod_id_and_min_isv_svn_accept_the_quotes_values_and_refuse_others() {
    for (name, ev, coll, base, at) in sgx_cases() {
        let q = sgx::Quote::parse(&ev.bytes).unwrap();
        let (id, svn) = (q.isv_prod_id(), q.isv_svn());
        // A minimum of 0 would pass any quote: the boundary is only meaningful above it.
        assert!(svn > 0, "{name}: ISVSVN 0");
        let run = |p: Policy| verify_at(&ev, &coll, &p, &Expected::default(), at);

        let a = run(base.clone().with_isv_prod_id(id).with_min_isv_svn(svn))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((a.svn.isv_prod_id, a.svn.isv_svn), (Some(id), Some(svn)));
        run(base.clone().with_min_isv_svn(svn - 1)).unwrap_or_else(|e| panic!("{name}: {e}"));

        let e = expect_step(
            run(base.clone().with_isv_prod_id(id.wrapping_add(1))),
            Step::PolicyMinimumSvn,
        );
        assert!(
            e.contains(&format!("ISVPRODID {id} is not {}", id.wrapping_add(1))),
            "{name}: {e}"
        );
        let e = expect_step(
            run(base.clone().with_min_isv_svn(svn + 1)),
            Step::PolicyMinimumSvn,
        );
        assert!(
            e.contains(&format!("ISVSVN {svn} is below the minimum {}", svn + 1)),
            "{name}: {e}"
        );
    }
}

// THREAT: T13 — the SNP guest SVN must reach the policy's minimum.
#[test]
fn min_snp_guest_svn_accepts_the_reports_value_and_refuses_a_higher_one() {
    for (f, at) in [
        ("tee/snp/report-with-ark-ask-vcek.bin", day(2026, 6, 1)),
        ("tee/snp/report-vlek.bin", day(2024, 1, 1)),
    ] {
        let bytes = fixture(f);
        let svn = snp::Report::parse(&bytes[..snp::REPORT_LEN])
            .unwrap()
            .guest_svn;
        let ev = RawEvidence {
            kind: TeeKind::SevSnp,
            bytes,
        };
        let run = |p: Policy| verify_at(&ev, &Collateral::none(), &p, &Expected::default(), at);
        // Every SNP report of testdata has guest SVN 0: equal to the minimum is the boundary.
        let a = run(Policy::default_strict().with_min_snp_guest_svn(svn))
            .unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(a.svn.guest_svn, Some(svn));
        let e = expect_step(
            run(Policy::default_strict().with_min_snp_guest_svn(svn + 1)),
            Step::PolicyMinimumSvn,
        );
        assert!(
            e.contains(&format!("guest SVN {svn} is below the minimum {}", svn + 1)),
            "{f}: {e}"
        );
    }
}

// THREAT: T2 — the policy's signer list: one of them must have signed the enclave.
#[test]
fn policy_signers_accept_a_listed_mrsigner_and_refuse_others() {
    let (ev, cert, coll) = mse_evidence();
    let signer = hex::decode(MSE_MRSIGNER).unwrap();
    let other = flip(&signer, 0);
    let run =
        |p: Policy| verify_certificate_at(&cert, &coll, &p, &expected_mse(&ev), day(2023, 6, 1));
    let base = Policy::mse_compatible;

    let a = run(base().with_signer(signer.clone())).unwrap();
    assert_eq!(a.signer.map(|s| s.to_vec()), Some(signer.clone()));
    // A list: any listed signer is enough.
    run(base()
        .with_signer(other.clone())
        .with_signer(signer.clone()))
    .unwrap();
    let e = expect_step(run(base().with_signer(other)), Step::Signer);
    assert!(
        e.contains(&format!(
            "signer {MSE_MRSIGNER} is not among those the policy accepts"
        )),
        "{e}"
    );

    // TDX has no MRSIGNER: a policy that names signers refuses it rather than skip the check.
    let tdx = RawEvidence {
        kind: TeeKind::Tdx,
        bytes: fixture("tee/tdx/tdx-quote.dat"),
    };
    let e = expect_step(
        verify_at(
            &tdx,
            &Collateral::none(),
            &Policy::default_strict()
                .insecure_skip_collateral()
                .with_signer(signer),
            &Expected::default(),
            day(2024, 1, 1),
        ),
        Step::Signer,
    );
    assert!(e.contains("signer none is not among"), "{e}");
}

// THREAT: T12 — only_tees: evidence of a kind the policy does not list is refused, simulation included.
#[test]
fn only_tees_accepts_listed_kinds_and_refuses_the_others() {
    let (_, cert, sgx_coll) = mse_evidence();
    let intel = Policy::mse_compatible().insecure_skip_collateral();
    let now = SystemTime::now();
    let sim_root = SimRootKey::generate(now).unwrap();
    let sim_quote = QuoteSigner::new(
        &sim_root,
        &SimQuoteConfig {
            mr_enclave: [0x42; 32],
            debug: false,
            isv_prod_id: 1,
            isv_svn: 1,
        },
        now,
    )
    .unwrap()
    .quote(&[0; 64])
    .unwrap();
    let sim = || Policy::default_strict().allow_simulation(sim_root.root().clone());
    let raw = |kind, f: &str| RawEvidence {
        kind,
        bytes: fixture(f),
    };
    // (evidence, collateral, policy base that accepts it, time, the other kinds)
    let cases: Vec<(RawEvidence, Collateral, Policy, SystemTime, Vec<TeeKind>)> = vec![
        (
            cert.evidence().clone(),
            sgx_coll,
            Policy::mse_compatible(),
            day(2023, 6, 1),
            vec![TeeKind::Tdx, TeeKind::SevSnp],
        ),
        (
            raw(TeeKind::Tdx, "tee/tdx/tdx-quote.dat"),
            Collateral::none(),
            intel,
            day(2024, 1, 1),
            vec![TeeKind::Sgx, TeeKind::SevSnp],
        ),
        (
            raw(TeeKind::SevSnp, "tee/snp/report-with-ark-ask-vcek.bin"),
            Collateral::none(),
            Policy::default_strict(),
            day(2026, 6, 1),
            vec![TeeKind::Sgx, TeeKind::Tdx],
        ),
        (
            RawEvidence {
                kind: TeeKind::Sgx,
                bytes: sim_quote,
            },
            Collateral::none(),
            sim(),
            now,
            vec![TeeKind::Sgx, TeeKind::Tdx, TeeKind::SevSnp],
        ),
    ];
    for (ev, coll, base, at, others) in cases {
        let run = |tees: &[TeeKind]| -> Result<Verified<Appraisal>> {
            verify_at(
                &ev,
                &coll,
                &base.clone().only_tees(tees),
                &Expected::default(),
                at,
            )
        };
        let kind = run(&[TeeKind::Sgx, TeeKind::Tdx, TeeKind::SevSnp, TeeKind::Sim])
            .unwrap_or_else(|e| panic!("{:?}: {e}", ev.kind))
            .tee;
        run(&[kind]).unwrap_or_else(|e| panic!("{kind} alone: {e}"));
        let e = expect_step(run(&others), Step::PolicyTee);
        assert!(
            e.contains(&format!("{kind} evidence is not accepted by this policy")),
            "{e}"
        );
    }
}
