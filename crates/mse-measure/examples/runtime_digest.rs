//! Print the runtime digest of the given roots and how long computing it took.
//!
//! `cargo run --release -p mse-measure --example runtime_digest -- [--cache FILE] <root>...`
//!
//! With `--cache`, digests come from (and go to) that digest cache, as the node's and the CLI's
//! do: run it twice to see the cost of a start whose runtime did not change.

use std::path::{Path, PathBuf};
use std::time::Instant;

fn main() -> std::process::ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let cache_file = match args.iter().position(|a| a == "--cache") {
        Some(i) if i + 1 < args.len() => {
            let file = PathBuf::from(args.remove(i + 1));
            args.remove(i);
            Some(file)
        }
        Some(_) => {
            eprintln!("error: --cache needs a file");
            return std::process::ExitCode::FAILURE;
        }
        None => None,
    };
    let paths: Vec<&Path> = args.iter().map(Path::new).collect();
    let start = Instant::now();
    let mut cache = match &cache_file {
        Some(f) => mse_measure::DigestCache::open(f),
        None => mse_measure::DigestCache::in_memory(),
    };
    let opened = start.elapsed();
    let digest = match mse_measure::runtime_digest_cached(&paths, &mut cache) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let digested = start.elapsed();
    if let Err(e) = cache.save() {
        eprintln!("warning: cannot save the cache: {e}");
    }
    let elapsed = start.elapsed();
    println!(
        "{}  {} cached files; {:.1} ms (cache open {:.1}, digest {:.1}, save {:.1})",
        hex::encode(digest.0),
        cache.len(),
        elapsed.as_secs_f64() * 1000.0,
        opened.as_secs_f64() * 1000.0,
        (digested - opened).as_secs_f64() * 1000.0,
        (elapsed - digested).as_secs_f64() * 1000.0,
    );
    std::process::ExitCode::SUCCESS
}
