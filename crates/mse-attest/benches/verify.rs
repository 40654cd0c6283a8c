//! Verify = parse + chain + signatures + collateral + policy, on real evidence, at a pinned time.
//! `cargo bench -p mse-attest --bench verify` (or bench/attest/run). Figures: bench/attest/RESULTS.md.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    reason = "benchmark code"
)]

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use mse_attest::collateral::Collateral;
use mse_attest::evidence_file::EvidenceFile;
use mse_attest::policy::{Policy, TcbStatus};
use mse_attest::ratls::RawEvidence;
use mse_attest::sim::{QuoteSigner, SimQuoteConfig, SimRootKey};
use mse_attest::verify::{Expected, verify_at, verify_certificate_at};
use mse_attest::{TeeKind, sgx, snp, tdx};

fn fixture(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn day(y: i32, m: u8, d: u8) -> SystemTime {
    let date = time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap();
    UNIX_EPOCH
        + Duration::from_secs(u64::try_from(date.midnight().assume_utc().unix_timestamp()).unwrap())
}

fn dcap_sample(name: &str) -> (Vec<u8>, Collateral, SystemTime) {
    let c = Collateral::from_dcap_qvl_json(
        &fixture(&format!("dcap-qvl/{name}_collateral.json")),
        "dcap-qvl sample",
    )
    .unwrap();
    let w = c.window().unwrap().unwrap();
    let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(w.latest_issue() + 60).unwrap());
    (fixture(&format!("dcap-qvl/{name}")), c, at)
}

fn bench_verify(c: &mut Criterion) {
    let mut g = c.benchmark_group("verify");

    // SGX, full DCAP path (chain, QE report, quote signature, CRLs, TCB info, QE identity via
    // dcap-qvl, TCB status policy): dcap-qvl's sample at its collateral time.
    let (quote, coll, at) = dcap_sample("sgx_quote");
    let policy =
        Policy::default_strict().accept_tcb_status(TcbStatus::ConfigurationAndSwHardeningNeeded);
    g.bench_function("sgx (dcap-qvl sample, full collateral)", |b| {
        b.iter(|| {
            let ev = RawEvidence {
                kind: TeeKind::Sgx,
                bytes: black_box(quote.clone()),
            };
            verify_at(&ev, &coll, &policy, &Expected::default(), at).unwrap()
        })
    });

    // SGX, the real `mse home` evidence file: JSON parse, certificate, collateral, then the
    // per-item collateral path of the mse-compatible policy, at 2023-06-01.
    let file = fixture("tee/mse/evidence-home-2023-05.json");
    g.bench_function("sgx (mse evidence.json, parse file + verify)", |b| {
        b.iter(|| {
            let ev = EvidenceFile::parse(black_box(&file)).unwrap();
            let cert = ev.certificate().unwrap();
            let coll = ev.collateral().unwrap();
            let expected = Expected {
                signer: Some(ev.signer_mr().unwrap().to_vec()),
                ..Expected::default()
            };
            verify_certificate_at(
                &cert,
                &coll,
                &Policy::mse_compatible(),
                &expected,
                day(2023, 6, 1),
            )
            .unwrap()
        })
    });

    let (tdx_quote, tdx_coll, tdx_at) = dcap_sample("tdx_quote");
    g.bench_function("tdx (dcap-qvl sample, full collateral)", |b| {
        b.iter(|| {
            let ev = RawEvidence {
                kind: TeeKind::Tdx,
                bytes: black_box(tdx_quote.clone()),
            };
            verify_at(
                &ev,
                &tdx_coll,
                &Policy::default_strict(),
                &Expected::default(),
                tdx_at,
            )
            .unwrap()
        })
    });

    // SEV-SNP: report ‖ certificate table (ARK, VCEK, ASK); ARK pinned, RSA-PSS chain, P-384
    // report signature, TCB vs the VCEK.
    let snp_ev = fixture("tee/snp/report-with-ark-ask-vcek.bin");
    g.bench_function("sev-snp (report + ARK/ASK/VCEK)", |b| {
        b.iter(|| {
            let ev = RawEvidence {
                kind: TeeKind::SevSnp,
                bytes: black_box(snp_ev.clone()),
            };
            verify_at(
                &ev,
                &Collateral::none(),
                &Policy::default_strict(),
                &Expected::default(),
                day(2026, 6, 1),
            )
            .unwrap()
        })
    });

    // Simulation: the same SGX code path against a simulation root, no collateral.
    let now = SystemTime::now();
    let root = SimRootKey::generate(now).unwrap();
    let cfg = SimQuoteConfig {
        mr_enclave: [0x42; 32],
        debug: false,
        isv_prod_id: 1,
        isv_svn: 1,
    };
    let sim_quote = QuoteSigner::new(&root, &cfg, now)
        .unwrap()
        .quote(&[7; 64])
        .unwrap();
    let sim_policy = Policy::default_strict().allow_simulation(root.root().clone());
    let sim_expected = Expected {
        measurement: Some(vec![0x42; 32]),
        report_data: Some([7; 64]),
        ..Expected::default()
    };
    g.bench_function("sim (allow_simulation)", |b| {
        b.iter(|| {
            let ev = RawEvidence {
                kind: TeeKind::Sgx,
                bytes: black_box(sim_quote.clone()),
            };
            verify_at(&ev, &Collateral::none(), &sim_policy, &sim_expected, now).unwrap()
        })
    });
    g.finish();

    let mut p = c.benchmark_group("parse");
    let sgx_q = fixture("tee/sgx/quote-intel-sgx-ra.dat");
    p.bench_function("sgx quote", |b| {
        b.iter(|| sgx::Quote::parse(black_box(&sgx_q)).unwrap().isv_svn())
    });
    p.bench_function("tdx quote", |b| {
        b.iter(|| tdx::Quote::parse(black_box(&tdx_quote)).unwrap().padding())
    });
    p.bench_function("sev-snp evidence", |b| {
        b.iter(|| {
            snp::Evidence::parse(black_box(&snp_ev))
                .unwrap()
                .certs
                .len()
        })
    });
    p.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = bench_verify
}
criterion_main!(benches);
