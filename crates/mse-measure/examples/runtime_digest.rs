//! Print the runtime digest of the given roots and how long computing it took.
//!
//! `cargo run --release -p mse-measure --example runtime_digest -- <root>...`

use std::path::Path;
use std::time::Instant;

use sha2::{Digest as _, Sha256};

fn main() -> std::process::ExitCode {
    let roots: Vec<String> = std::env::args().skip(1).collect();
    let paths: Vec<&Path> = roots.iter().map(Path::new).collect();
    let start = Instant::now();
    let bytes = match mse_measure::runtime_canonical_bytes(&paths) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let digest = Sha256::digest(&bytes);
    let elapsed = start.elapsed();
    let files = bytes
        .split(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"file "))
        .count();
    println!(
        "{}  {} files, {:.1} ms",
        hex::encode(digest),
        files,
        elapsed.as_secs_f64() * 1000.0
    );
    std::process::ExitCode::SUCCESS
}
