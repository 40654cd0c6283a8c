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
