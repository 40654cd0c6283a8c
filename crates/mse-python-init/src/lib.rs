//! Starting the embedded CPython from an explicit `PyConfig`.
//!
//! PyO3's `Python::initialize` calls `Py_InitializeEx`, which runs `import site` with the
//! interpreter's default paths: `site` lists the interpreter's own `site-packages` and executes
//! the `import` lines of every `.pth` file there, then imports `sitecustomize` and
//! `usercustomize`. None of that is measured (the node measures the standard library without its
//! `site-packages`, then the runtime's own site-packages), and a typical Python installation has
//! such `.pth` files (setuptools' `distutils-precedence.pth`, for one). Its `sys.prefix` also
//! follows whichever `python3` `PATH` finds first. So the node starts the interpreter here
//! instead, with:
//!
//! - `site_import = 0` and `user_site_directory = 0`: no `.pth`, `sitecustomize` or user site;
//! - `home` = the prefix of the interpreter the node was built against, so `sys.prefix` and the
//!   standard library do not depend on `PATH`;
//! - `write_bytecode = 0`: bytecode is part of the measured runtime, never written at run time;
//! - `install_signal_handlers = 0`: the node owns SIGTERM and SIGINT;
//! - `parse_argv = 0`: there is no command line.
//!
//! The workspace forbids `unsafe`; `PyConfig` is only reachable through the C API, so this crate
//! allows it (as `mse-heap` does for one call), in [`start`]'s helpers, with each block justified.

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Why the interpreter could not be started.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Something else started the interpreter first, with a configuration we did not choose.
    #[error(
        "the Python interpreter was already started by someone else, so its configuration is unknown"
    )]
    AlreadyStarted,
    /// The home path cannot be passed to C.
    #[error("the Python home {0} contains a NUL byte")]
    Home(PathBuf),
    /// CPython refused the configuration or failed to start.
    #[error("{step}: {message}")]
    Python {
        /// The C API call that failed.
        step: &'static str,
        /// CPython's message.
        message: String,
    },
}

/// The prefix of the interpreter this crate was built against (`sys.prefix`), when the build
/// knew where its libpython lies.
pub fn built_home() -> Option<&'static Path> {
    option_env!("MSE_PYTHON_HOME").map(Path::new)
}

/// Start the interpreter (see the module documentation for the configuration) with `home` as
/// its prefix, then release the GIL as PyO3 does, so that `Python::attach` works from any
/// thread. Call once per process, before anything else touches Python.
pub fn start(home: &Path) -> Result<(), Error> {
    let home_c =
        CString::new(home.as_os_str().as_bytes()).map_err(|_| Error::Home(home.to_path_buf()))?;
    initialize(&home_c)?;
    // Marks PyO3's own start as done: it sees a running interpreter and leaves it as it is.
    pyo3::Python::initialize();
    Ok(())
}

#[allow(unsafe_code)] // an exception to the workspace rule: see the module documentation
fn initialize(home: &CStr) -> Result<(), Error> {
    use pyo3::ffi;
    use std::mem::MaybeUninit;

    // SAFETY: `Py_IsInitialized` may be called at any time, before or after initialization.
    if unsafe { ffi::Py_IsInitialized() } != 0 {
        return Err(Error::AlreadyStarted);
    }
    let mut storage = MaybeUninit::<ffi::PyConfig>::uninit();
    let config = storage.as_mut_ptr();
    // SAFETY: `config` points to writable memory of the right size and alignment;
    // `PyConfig_InitPythonConfig` initialises every field of the structure (CPython's
    // documented way to obtain a `PyConfig`).
    unsafe { ffi::PyConfig_InitPythonConfig(config) };
    // SAFETY: `config` was initialised just above; these are plain `int` fields.
    unsafe {
        (*config).site_import = 0;
        (*config).user_site_directory = 0;
        (*config).write_bytecode = 0;
        (*config).install_signal_handlers = 0;
        (*config).parse_argv = 0;
        (*config).pathconfig_warnings = 0;
    }
    // SAFETY: `config` is initialised; `&raw mut (*config).home` is the address of one of its
    // string fields, as `PyConfig_SetBytesString` expects; `home` is NUL-terminated and outlives
    // the call, which copies (decodes) it.
    let set_home =
        unsafe { ffi::PyConfig_SetBytesString(config, &raw mut (*config).home, home.as_ptr()) };
    let result = check(set_home, "PyConfig_SetBytesString(home)").and_then(|()| {
        // SAFETY: `config` is initialised and complete; the interpreter is not running (checked
        // above, and this function is only reached once per `start`).
        let started = unsafe { ffi::Py_InitializeFromConfig(config) };
        check(started, "Py_InitializeFromConfig")
    });
    // SAFETY: `config` is initialised; `PyConfig_Clear` frees the strings CPython allocated in
    // it (the running interpreter keeps its own copy) and is called exactly once.
    unsafe { ffi::PyConfig_Clear(config) };
    result?;
    // SAFETY: the interpreter was initialised by this thread, which therefore holds the GIL;
    // releasing it is what PyO3 does after `Py_InitializeEx`. The returned thread state is
    // CPython's to keep (PyO3 ignores it the same way).
    unsafe { ffi::PyEval_SaveThread() };
    Ok(())
}

#[allow(unsafe_code)] // reads CPython's status structure
fn check(status: pyo3::ffi::PyStatus, step: &'static str) -> Result<(), Error> {
    // SAFETY: `PyStatus_Exception` only reads the structure passed by value.
    if unsafe { pyo3::ffi::PyStatus_Exception(status) } == 0 {
        return Ok(());
    }
    let message = if status.err_msg.is_null() {
        format!("exit code {}", status.exitcode)
    } else {
        // SAFETY: a non-null `err_msg` points to a static NUL-terminated C string set by CPython.
        unsafe { CStr::from_ptr(status.err_msg) }
            .to_string_lossy()
            .into_owned()
    };
    Err(Error::Python { step, message })
}
