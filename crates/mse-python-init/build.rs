fn main() {
    // The interpreter's home (sys.prefix) is the parent of the directory holding libpython
    // (`<prefix>/lib`): naming it keeps `sys.prefix` from depending on which `python3` PATH finds.
    let config = pyo3_build_config::get();
    if let Some(lib_dir) = config.lib_dir()
        && let Some(home) = std::path::Path::new(lib_dir).parent()
    {
        println!("cargo:rustc-env=MSE_PYTHON_HOME={}", home.display());
    }
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
}
