use std::process::Command;

fn main() {
    // Only the test binaries embed Python (tests/python_guard.rs, through the pyo3
    // dev-dependency). Without an rpath to the libpython of the interpreter pyo3 is configured
    // for, the loader may pick another one on the system and the venv's packages fail to import.
    // The library itself never links libpython; failing to find it only loses the rpath.
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    let python = std::env::var("PYO3_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let out = Command::new(python)
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_config_var('LIBDIR') or '')",
        ])
        .output();
    if let Ok(out) = out {
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() && !dir.is_empty() {
            println!("cargo:rustc-link-arg-tests=-Wl,-rpath,{dir}");
        }
    }
}
