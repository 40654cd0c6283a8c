//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::{Path, PathBuf};
use std::process::Command;

/// The Python of a test venv: `$var`, else `<repo>/<default_venv>/bin/python` if it exists.
/// Missing: FAIL under `MSE_TEST_REQUIRE_ALL=1`, else print `SKIPPED:` and return None.
pub fn python(var: &str, default_venv: &str) -> Option<PathBuf> {
    let fallback = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(default_venv)
        .join("bin/python");
    let candidate = std::env::var_os(var).map(PathBuf::from).unwrap_or(fallback);
    if candidate.exists() {
        return Some(candidate);
    }
    if std::env::var("MSE_TEST_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!(
            "{var}: no Python at {} (run scripts/setup-test-env)",
            candidate.display()
        );
    }
    println!("SKIPPED: {var} not set and {} missing", candidate.display());
    None
}

/// The test venv with mse-lib-crypto, PyNaCl and cryptography.
pub fn test_python() -> Option<PathBuf> {
    python("MSE_TEST_PYTHON", ".venv-test")
}

/// Run `script` with `args`; return stdout, panic with stderr on failure.
pub fn run(python: &Path, script: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Write `files` (relative path → content) under `root`.
pub fn write_tree(root: &Path, files: &[(&str, &[u8])]) {
    for (rel, content) in files {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}

/// Every regular file under `root`: sorted (POSIX relative path, content).
pub fn read_tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let rel = entry.path().strip_prefix(root).unwrap();
            let rel = rel
                .iter()
                .map(|p| p.to_str().unwrap())
                .collect::<Vec<_>>()
                .join("/");
            out.push((rel, std::fs::read(entry.path()).unwrap()));
        }
    }
    out
}
