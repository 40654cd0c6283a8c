//! The client's expected-measurement computation for the example app (examples/helloworld):
//! re-encrypt the code with the kept key and nonces, hash what ships, build the canonical
//! manifest with the node binary's digest, the runtime digest and the launch arguments.
//! `cargo bench -p mse-measure --bench measure` (or bench/attest/run).
//!
//! The node binary is `target/release/mse-node` when it exists, else this benchmark's own
//! executable (a few MB), printed at start. The runtime digest is given (the client takes the
//! published one); `MSE_BENCH_RUNTIME=<dir>` also benchmarks `runtime_digest` over a tree.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    reason = "benchmark code"
)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mse_measure::{Manifest, RuntimeDigest, runtime_digest};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn node_binary() -> PathBuf {
    let release = workspace().join("target/release/mse-node");
    if release.is_file() {
        release
    } else {
        std::env::current_exe().unwrap()
    }
}

fn args() -> Vec<String> {
    [
        "--application",
        "app:app",
        "--port",
        "8443",
        "--subject",
        "CN=example.com",
        "--san",
        "example.com",
    ]
    .map(String::from)
    .to_vec()
}

fn bench_measure(c: &mut Criterion) {
    let code = workspace().join("examples/helloworld/code");
    let key = mse_crypto::CodeKey::from_bytes([0x11; 32]);
    let scratch = tempfile::tempdir().unwrap();
    // The nonces kept from the deploy: one encryption with random nonces, as deploy does.
    let nonces =
        mse_crypto::code::encrypt_tree(&code, &scratch.path().join("first"), &key, None, &[])
            .unwrap();
    let node = node_binary();
    let node_len = std::fs::metadata(&node).unwrap().len();
    eprintln!(
        "node binary: {} ({:.1} MB)",
        node.display(),
        node_len as f64 / 1e6
    );
    let runtime = RuntimeDigest([0x22; 32]);
    let args = args();
    let mut n = 0u64;
    let mut fresh_dir = || {
        n += 1;
        scratch.path().join(format!("app-{n}"))
    };

    let mut g = c.benchmark_group("measurement (examples/helloworld)");
    g.bench_function("client: re-encrypt code + manifest + node digest", |b| {
        b.iter_batched(
            &mut fresh_dir,
            |app| {
                mse_crypto::code::encrypt_tree(&code, &app, &key, Some(&nonces), &[]).unwrap();
                let m = Manifest::from_parts(&node, &runtime, &app, &args).unwrap();
                let d = m.measurement();
                std::fs::remove_dir_all(&app).unwrap();
                d
            },
            BatchSize::PerIteration,
        )
    });
    let app = scratch.path().join("first");
    let node_digest = mse_measure::file_digest(&node).unwrap();
    g.bench_function(
        "manifest only (code digests + canonical bytes + SHA-256)",
        |b| {
            b.iter(|| {
                let m = Manifest {
                    node: node_digest,
                    runtime: runtime.0,
                    code: mse_measure::code_digests(black_box(&app)).unwrap(),
                    args: args.clone(),
                };
                m.measurement()
            })
        },
    );
    g.bench_function("node binary digest", |b| {
        b.iter(|| mse_measure::file_digest(black_box(&node)).unwrap())
    });
    g.finish();

    if let Some(dir) = std::env::var_os("MSE_BENCH_RUNTIME") {
        let dir = PathBuf::from(dir);
        let mut g = c.benchmark_group("runtime digest");
        g.sample_size(10);
        g.bench_function(dir.display().to_string(), |b| {
            b.iter(|| runtime_digest(&[Path::new(&dir)]).unwrap())
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = bench_measure
}
criterion_main!(benches);
