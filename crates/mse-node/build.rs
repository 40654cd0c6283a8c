fn main() {
    // Without an rpath to the libpython we built against, the loader may pick another one on the
    // system (Debian's) and `import flask` then fails: see docs/design/python-embedding.md.
    pyo3_build_config::add_libpython_rpath_link_args();
    // The standard library of the interpreter we link: the app imports from it, so the node
    // measures it and lets the app read it (src/runtime.rs).
    let config = pyo3_build_config::get();
    if let Some(lib_dir) = config.lib_dir() {
        let v = config.version();
        println!(
            "cargo:rustc-env=MSE_NODE_PYTHON_STDLIB={lib_dir}/python{}.{}",
            v.major, v.minor
        );
    }
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
}
