//! Errors of loading an app. Serving never fails as a Rust error: a failing request becomes an
//! HTTP error response and a log line (see `wsgi` and `asgi`).

use std::path::PathBuf;

/// Why an app could not be loaded. Every message says what to change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration itself is unusable.
    #[error("invalid app server configuration: {0}")]
    Config(String),

    /// The process environment would make Python load code that is not measured.
    #[error(
        "refusing to start Python: {what}. The enclave must import only measured code; \
         start the node without it"
    )]
    UnsafeEnvironment { what: String },

    /// The interpreter did not start (a build without a known home, or CPython refused).
    #[error("cannot start the Python interpreter: {0}")]
    Start(String),

    /// The interpreter could not be prepared (sys.path, os.environ, helper code).
    #[error("cannot prepare the Python interpreter: {message}\n{traceback}")]
    Interpreter { message: String, traceback: String },

    /// The app module does not exist under the module path.
    #[error(
        "cannot import the app module `{module}`: no such module in {} (check python_application \
         in the app configuration)",
        module_path.display()
    )]
    ModuleNotFound {
        module: String,
        module_path: PathBuf,
    },

    /// The app module exists but failed while being imported (this includes a missing dependency).
    #[error("importing the app module `{module}` failed: {message}\n{traceback}")]
    Import {
        module: String,
        message: String,
        traceback: String,
    },

    /// The module has no attribute of that name.
    #[error("the app module `{module}` has no attribute `{attribute}` (check python_application)")]
    NoAttribute { module: String, attribute: String },

    /// The attribute exists but cannot be called as an app.
    #[error("`{app}` is a {type_name}, not a WSGI or ASGI application (it is not callable)")]
    NotCallable { app: String, type_name: String },

    /// ASGI lifespan startup failed (`lifespan.startup.failed` or an exception after startup began).
    #[error("the ASGI app failed its lifespan startup: {message}")]
    Startup { message: String },

    /// A thread of the app server could not be started.
    #[error("cannot start the app server thread `{name}`: {source}")]
    Thread {
        name: String,
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
