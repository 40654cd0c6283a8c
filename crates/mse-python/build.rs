fn main() {
    // Without an rpath to the libpython we built against, the loader may pick another one on the
    // system (Debian's) and `import flask` then fails: see docs/design/python-embedding.md.
    pyo3_build_config::add_libpython_rpath_link_args();
}
