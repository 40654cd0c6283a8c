fn main() {
    // Without an rpath to the libpython we built against, the loader may pick another one on the
    // system (Debian's) and `import flask` then fails: see docs/design/python-embedding.md.
    pyo3_build_config::add_libpython_rpath_link_args();

    // The user site-packages directory name depends on the interpreter version; the preflight
    // check (src/interpreter.rs) needs it before the interpreter exists.
    let version = pyo3_build_config::get().version();
    println!(
        "cargo:rustc-env=MSE_PYTHON_VERSION={}.{}",
        version.major, version.minor
    );
}
