//! The backends against directories that mimic their kernel/LibOS interfaces.
//!
//! What is mimicked (and what is not):
//! * Gramine `/dev/attestation`: `attestation_type` holds "dcap"; a fake provider thread
//!   watches `user_report_data` and writes `quote` (a simulation quote over those bytes).
//!   Real Gramine answers synchronously; the thread makes the backend's retry path run too.
//! * configfs-tsm: the test creates the report entry the backend will use (`mse-<pid>`) with
//!   `provider` and `generation`, since only the kernel makes attribute files appear on mkdir.
//!   A fake provider thread answers each new `inblob` by writing `outblob` (a real TDX quote or
//!   SNP report from the fixtures with its report data replaced, so not validly signed: the
//!   backend checks structure and report data, verifiers check signatures) and `auxblob`
//!   (GHCB certificate table), then increments `generation`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use mse_attest::collateral::Collateral;
use mse_attest::policy::Policy;
use mse_attest::verify::{Expected, verify_at};
use mse_attest::{TeeKind, oids, snp, tdx};
use mse_tee::{Choice, Interfaces, SimConfig, load_or_create_sim_root, open_with};

fn fixture(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../mse-attest/tests/fixtures")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn sim_config(dir: &Path) -> SimConfig {
    SimConfig {
        root_dir: dir.join("sim"),
        measurement: [0x11; 32],
        debug: false,
    }
}

fn nowhere(dir: &Path) -> Interfaces {
    Interfaces {
        gramine: dir.join("no-gramine"),
        tsm: dir.join("no-tsm"),
    }
}

/// A thread that calls `f` until stopped.
struct Fake {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Fake {
    fn spawn(mut f: impl FnMut() + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                f();
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        Fake {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[test]
fn sim_evidence_verifies_with_the_installation_root_only() {
    let tmp = tempfile::tempdir().unwrap();
    let backend = open_with(Choice::Sim, sim_config(tmp.path()), &nowhere(tmp.path())).unwrap();
    assert_eq!(backend.kind(), TeeKind::Sim);
    let rd = [3u8; 64];
    let ev = backend.evidence(&rd).unwrap();
    assert_eq!(ev.oid, oids::SGX_QUOTE);
    let raw = ev.to_raw();
    assert_eq!(raw.kind, TeeKind::Sgx, "sim travels as SGX until verified");

    let root = load_or_create_sim_root(&tmp.path().join("sim")).unwrap();
    let exp = Expected {
        measurement: Some(vec![0x11; 32]),
        report_data: Some(rd),
        ..Expected::default()
    };
    let a = verify_at(
        &raw,
        &Collateral::none(),
        &Policy::default_strict().allow_simulation(root),
        &exp,
        SystemTime::now(),
    )
    .unwrap();
    assert!(a.simulated);
    let e = verify_at(
        &raw,
        &Collateral::none(),
        &Policy::default_strict(),
        &exp,
        SystemTime::now(),
    )
    .unwrap_err();
    assert_eq!(e.step(), Some(mse_attest::Step::PolicySimulation));
}

#[cfg(unix)]
#[test]
fn sim_root_is_created_once_private_and_reused() {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/b/sim");
    let first = load_or_create_sim_root(&dir).unwrap();
    let key_mode = std::fs::metadata(dir.join("root.pem"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(key_mode, 0o600);
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let cert = std::fs::read_to_string(dir.join("root-cert.pem")).unwrap();
    assert_eq!(mse_attest::sim::SimRoot::from_pem(&cert).unwrap(), first);
    assert!(!cert.contains("PRIVATE"));
    assert_eq!(
        load_or_create_sim_root(&dir).unwrap(),
        first,
        "the root persists"
    );

    // Racing creators all end with the same root.
    let race = tmp.path().join("race");
    let roots: Vec<_> = (0..4)
        .map(|_| {
            let d = race.clone();
            std::thread::spawn(move || load_or_create_sim_root(&d).unwrap())
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert!(roots.windows(2).all(|w| w[0] == w[1]));

    // A key file others can read is refused.
    std::fs::set_permissions(dir.join("root.pem"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = load_or_create_sim_root(&dir).unwrap_err().to_string();
    assert!(e.contains("chmod 600"), "{e}");
}

#[test]
fn sim_root_dir_follows_the_environment() {
    // Only read here: other tests pass explicit directories.
    let d = mse_tee::sim_root_dir();
    assert!(
        d.ends_with("mse/sim")
            || d.ends_with(".mse/sim")
            || std::env::var_os("MSE_SIM_DIR").is_some()
    );
}

fn fake_gramine(dir: &Path, kind: &str) -> (PathBuf, mse_attest::sim::SimRoot) {
    let g = dir.join("attestation");
    std::fs::create_dir_all(&g).unwrap();
    std::fs::write(g.join("attestation_type"), kind).unwrap();
    std::fs::write(g.join("user_report_data"), [0u8; 64]).unwrap();
    std::fs::write(g.join("quote"), b"").unwrap();
    let root = load_or_create_sim_root(&dir.join("gramine-root")).unwrap();
    (g, root)
}

#[test]
fn gramine_backend_writes_report_data_and_reads_the_quote() {
    let tmp = tempfile::tempdir().unwrap();
    let (g, root) = fake_gramine(tmp.path(), "dcap\n");
    let key = mse_tee::load_or_create_sim_root_key(&tmp.path().join("gramine-root")).unwrap();
    let signer = mse_attest::sim::QuoteSigner::new(
        &key,
        &mse_attest::sim::SimQuoteConfig {
            mr_enclave: [0x22; 32],
            debug: false,
            isv_prod_id: 1,
            isv_svn: 10,
        },
        SystemTime::now(),
    )
    .unwrap();
    let gp = g.clone();
    let mut last = Vec::new();
    let _fake = Fake::spawn(move || {
        let rd = std::fs::read(gp.join("user_report_data")).unwrap_or_default();
        if rd != last {
            if let Ok(arr) = <[u8; 64]>::try_from(rd.as_slice()) {
                std::fs::write(gp.join("quote.tmp"), signer.quote(&arr).unwrap()).unwrap();
                std::fs::rename(gp.join("quote.tmp"), gp.join("quote")).unwrap();
            }
            last = rd;
        }
    });
    let at = Interfaces {
        gramine: g.clone(),
        tsm: tmp.path().join("no-tsm"),
    };
    let b = open_with(Choice::Gramine, sim_config(tmp.path()), &at).unwrap();
    assert_eq!(b.kind(), TeeKind::Sgx);
    for i in 1..=3u8 {
        let rd = [i; 64];
        let ev = b.evidence(&rd).unwrap();
        assert_eq!(ev.oid, oids::SGX_QUOTE);
        assert_eq!(
            std::fs::read(g.join("user_report_data")).unwrap(),
            rd,
            "exactly 64 bytes written"
        );
        let exp = Expected {
            report_data: Some(rd),
            ..Expected::default()
        };
        verify_at(
            &ev.to_raw(),
            &Collateral::none(),
            &Policy::default_strict().allow_simulation(root.clone()),
            &exp,
            SystemTime::now(),
        )
        .unwrap();
    }
    // Auto finds Gramine first.
    let auto = open_with(Choice::Auto, sim_config(tmp.path()), &at).unwrap();
    assert_eq!(auto.kind(), TeeKind::Sgx);
}

#[test]
fn gramine_without_dcap_is_refused_with_the_reason_and_auto_falls_back_to_sim() {
    let tmp = tempfile::tempdir().unwrap();
    let (g, _) = fake_gramine(tmp.path(), "none");
    let at = Interfaces {
        gramine: g,
        tsm: tmp.path().join("no-tsm"),
    };
    let e = open_with(Choice::Gramine, sim_config(tmp.path()), &at)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("\"none\"") && e.contains("remote_attestation"),
        "{e}"
    );
    let auto = open_with(Choice::Auto, sim_config(tmp.path()), &at).unwrap();
    assert_eq!(auto.kind(), TeeKind::Sim);
}

#[test]
fn auto_with_nothing_is_sim() {
    let tmp = tempfile::tempdir().unwrap();
    let b = open_with(Choice::Auto, sim_config(tmp.path()), &nowhere(tmp.path())).unwrap();
    assert_eq!(b.kind(), TeeKind::Sim);
    let e = open_with(Choice::Tsm, sim_config(tmp.path()), &nowhere(tmp.path()))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("configfs-tsm"), "{e}");
}

/// Prepare `root/mse-<pid>` as the kernel would, and a fake provider answering inblob writes.
fn fake_tsm(
    root: &Path,
    provider: &str,
    make: impl Fn(&[u8; 64]) -> (Vec<u8>, Vec<u8>) + Send + 'static,
) -> Fake {
    let entry = root.join(format!("mse-{}", std::process::id()));
    std::fs::create_dir_all(&entry).unwrap();
    std::fs::write(entry.join("provider"), format!("{provider}\n")).unwrap();
    std::fs::write(entry.join("generation"), "0\n").unwrap();
    // The kernel creates outblob with the entry; reading it before any inblob gives no bytes.
    std::fs::write(entry.join("outblob"), b"").unwrap();
    let mut last = Vec::new();
    let mut generation = 0u64;
    // The kernel's attributes change atomically; a plain write (truncate, then write) would let
    // the backend read an empty `generation` now and then.
    let put = |entry: &Path, name: &str, bytes: &[u8]| {
        let tmp = entry.join(format!(".{name}.new"));
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, entry.join(name)).unwrap();
    };
    Fake::spawn(move || {
        let inblob = std::fs::read(entry.join("inblob")).unwrap_or_default();
        if inblob != last {
            if let Ok(rd) = <[u8; 64]>::try_from(inblob.as_slice()) {
                let (out, aux) = make(&rd);
                put(&entry, "outblob", &out);
                put(&entry, "auxblob", &aux);
                generation += 1;
                put(&entry, "generation", format!("{generation}\n").as_bytes());
            }
            last = inblob;
        }
    })
}

#[test]
fn tsm_tdx_provider_gives_a_tdx_quote_over_our_report_data() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tsm");
    let base = fixture("dcap-qvl/tdx_quote");
    let _fake = fake_tsm(&root, "tdx_guest", move |rd| {
        let mut q = base.clone();
        q[48 + 520..48 + 584].copy_from_slice(rd);
        (q, Vec::new())
    });
    let at = Interfaces {
        gramine: tmp.path().join("no-gramine"),
        tsm: root,
    };
    let b = open_with(Choice::Auto, sim_config(tmp.path()), &at).unwrap();
    assert_eq!(b.kind(), TeeKind::Tdx);
    for i in 1..=2u8 {
        let ev = b.evidence(&[i; 64]).unwrap();
        assert_eq!(ev.oid, oids::TDX_QUOTE);
        assert_eq!(
            tdx::Quote::parse(&ev.bytes).unwrap().report_data(),
            &[i; 64]
        );
    }
}

#[test]
fn tsm_snp_provider_appends_the_certificates_in_the_mse_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tsm");
    let full = fixture("tee/snp/report-with-ark-ask-vcek.bin");
    let parsed = snp::Evidence::parse(&full).unwrap();
    let certs = parsed.certs.clone();
    let report = parsed.report.as_bytes().to_vec();
    let _fake = fake_tsm(&root, "sev_guest", move |rd| {
        let mut r = report.clone();
        r[0x50..0x90].copy_from_slice(rd);
        // auxblob in the GHCB layout.
        let mut table = Vec::new();
        let mut data = Vec::new();
        let header = (certs.len() + 1) * 24;
        for c in &certs {
            table.extend_from_slice(&c.kind.guid());
            table.extend_from_slice(&u32::try_from(header + data.len()).unwrap().to_le_bytes());
            table.extend_from_slice(&u32::try_from(c.der.len()).unwrap().to_le_bytes());
            data.extend_from_slice(&c.der);
        }
        table.extend_from_slice(&[0; 24]);
        table.extend_from_slice(&data);
        (r, table)
    });
    let at = Interfaces {
        gramine: tmp.path().join("no-gramine"),
        tsm: root,
    };
    let b = open_with(Choice::Tsm, sim_config(tmp.path()), &at).unwrap();
    assert_eq!(b.kind(), TeeKind::SevSnp);
    let ev = b.evidence(&[9; 64]).unwrap();
    assert_eq!(ev.oid, oids::SNP_REPORT);
    let back = snp::Evidence::parse(&ev.bytes).unwrap();
    assert_eq!(back.report.report_data, [9; 64]);
    assert_eq!(back.layout, snp::CertTableLayout::LengthPrefixed);
    assert_eq!(back.certs, parsed.certs);
}

#[test]
fn tsm_unknown_provider_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tsm");
    let _fake = fake_tsm(&root, "arm_cca_guest", |_| (Vec::new(), Vec::new()));
    let at = Interfaces {
        gramine: tmp.path().join("no-gramine"),
        tsm: root,
    };
    let e = open_with(Choice::Tsm, sim_config(tmp.path()), &at)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("arm_cca_guest"), "{e}");
}
