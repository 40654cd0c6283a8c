//! Starting the interpreter once per process, isolating it, and importing an app.
//!
//! Isolation happens in three steps: before the start we refuse environment variables that would
//! make Python load code we did not choose (fail closed, with the variable named); the start
//! itself (`mse-python-init`, which may use `unsafe`) uses an explicit `PyConfig` without
//! `site`; after it, `sys.path` is replaced by exactly
//! `[module_path, stdlib, lib-dynload, site_packages...]`.

use std::ffi::CString;
use std::path::Path;
use std::sync::OnceLock;

use pyo3::exceptions::{PyAttributeError, PyModuleNotFoundError};
use pyo3::prelude::*;
use pyo3::types::{PyModule, PyString};

use crate::config::{AppRef, Interface, PythonConfig};
use crate::error::{Error, Result};

/// Variables the interpreter reads at start that change which code it loads or runs.
const REFUSED_ENV: &[(&str, &str)] = &[
    ("PYTHONHOME", "it replaces the standard library"),
    (
        "PYTHONPATH",
        "it adds import paths ahead of the standard library",
    ),
    ("PYTHONUSERBASE", "it adds a user site-packages"),
    ("PYTHONPLATLIBDIR", "it moves the standard library"),
    ("PYTHONEXECUTABLE", "it changes how Python finds its prefix"),
    ("PYTHONSTARTUP", "it names a script to run"),
    (
        "PYTHONPYCACHEPREFIX",
        "it makes Python load bytecode from another directory",
    ),
    ("PYTHONBREAKPOINT", "it names code to import"),
    (
        "PYTHONWARNINGS",
        "its warning categories are imported at start",
    ),
];

/// The interpreter as this crate prepared it: the helper module from `runtime.py`.
pub(crate) struct Runtime {
    helpers: Py<PyModule>,
}

static RUNTIME: OnceLock<std::result::Result<Runtime, StartFailure>> = OnceLock::new();

/// Why the interpreter did not start, kept for every later caller.
#[derive(Clone)]
enum StartFailure {
    Refused(String),
    Failed(String),
}

impl From<StartFailure> for Error {
    fn from(f: StartFailure) -> Self {
        match f {
            StartFailure::Refused(what) => Error::UnsafeEnvironment { what },
            StartFailure::Failed(why) => Error::Start(why),
        }
    }
}

/// Start the interpreter (once) and return the helpers.
pub(crate) fn runtime() -> Result<&'static Runtime> {
    RUNTIME
        .get_or_init(|| {
            preflight(|name| std::env::var_os(name)).map_err(StartFailure::Refused)?;
            // Not PyO3's Py_InitializeEx: no `site` (whose `.pth` files are code nobody
            // measured), a fixed home, no signal handlers (the node owns SIGTERM).
            let home = mse_python_init::built_home().ok_or_else(|| {
                StartFailure::Failed(
                    "this build does not know where its Python lives (no shared libpython at \
                     build time): rebuild with PYO3_PYTHON naming a shared-library CPython"
                        .into(),
                )
            })?;
            mse_python_init::start(home).map_err(|e| StartFailure::Failed(e.to_string()))?;
            Python::attach(|py| {
                let code = CString::new(include_str!("runtime.py"))
                    .map_err(|e| StartFailure::Failed(e.to_string()))?;
                let helpers =
                    PyModule::from_code(py, &code, c"<mse-python runtime>", c"_mse_runtime")
                        .map_err(|e| StartFailure::Failed(e.to_string()))?;
                let wrong: Option<String> = helpers
                    .getattr("check_start")
                    .and_then(|f| f.call0())
                    .and_then(|r| r.extract())
                    .map_err(|e| StartFailure::Failed(e.to_string()))?;
                if let Some(what) = wrong {
                    return Err(StartFailure::Refused(what));
                }
                Ok(Runtime {
                    helpers: helpers.unbind(),
                })
            })
        })
        .as_ref()
        .map_err(|f| f.clone().into())
}

/// Refuse an environment that would make the interpreter load unmeasured code at start.
fn preflight(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> std::result::Result<(), String> {
    for (name, why) in REFUSED_ENV {
        if var(name).is_some_and(|v| !v.is_empty()) {
            return Err(format!("{name} is set ({why})"));
        }
    }
    // No user site-packages check: mse-python-init starts Python with `user_site_directory = 0`.
    Ok(())
}

impl Runtime {
    pub(crate) fn helper<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        self.helpers.bind(py).getattr(name)
    }

    /// The formatted traceback of an exception, for logs and load errors.
    pub(crate) fn traceback(&self, py: Python<'_>, err: &PyErr) -> String {
        let formatted = self
            .helper(py, "format_exception")
            .and_then(|f| f.call1((err.value(py),)))
            .and_then(|s| s.extract::<String>());
        formatted.unwrap_or_else(|_| err.to_string())
    }
}

/// A loaded app object and its interface.
pub(crate) struct Loaded {
    pub app: Py<PyAny>,
    pub interface: Interface,
}

/// Isolate `sys.path`, set the environment, import `module:variable` and detect its interface.
pub(crate) fn load(
    rt: &Runtime,
    py: Python<'_>,
    cfg: &PythonConfig,
    app_ref: &AppRef,
) -> Result<Loaded> {
    let interp = |err: PyErr| Error::Interpreter {
        message: err.to_string(),
        traceback: rt.traceback(py, &err),
    };
    let module_path = path_str(&cfg.module_path)?;
    let site: Vec<String> = cfg
        .site_packages
        .iter()
        .map(|p| path_str(p))
        .collect::<Result<_>>()?;
    let dropped: Vec<String> = rt
        .helper(py, "isolate")
        .and_then(|f| f.call1((module_path.clone(), site, cfg.env.clone())))
        .and_then(|r| r.extract())
        .map_err(interp)?;
    if !dropped.is_empty() {
        tracing::warn!(
            target: "mse_python",
            paths = ?dropped,
            "import paths added by .pth files outside the measured runtime were left out"
        );
    }
    rt.helper(py, "forget_other_apps")
        .and_then(|f| f.call1((app_ref.module.as_str(), module_path)))
        .map_err(interp)?;

    let module = PyModule::import(py, app_ref.module.as_str()).map_err(|err| {
        if is_missing(py, &err, &app_ref.module) {
            Error::ModuleNotFound {
                module: app_ref.module.clone(),
                module_path: cfg.module_path.clone(),
            }
        } else {
            Error::Import {
                module: app_ref.module.clone(),
                message: err.to_string(),
                traceback: rt.traceback(py, &err),
            }
        }
    })?;

    let mut obj = module.into_any();
    for attr in &app_ref.attrs {
        obj = obj.getattr(attr.as_str()).map_err(|err| {
            if err.is_instance_of::<PyAttributeError>(py) {
                Error::NoAttribute {
                    module: app_ref.module.clone(),
                    attribute: app_ref.attr_path(),
                }
            } else {
                Error::Import {
                    module: app_ref.module.clone(),
                    message: err.to_string(),
                    traceback: rt.traceback(py, &err),
                }
            }
        })?;
    }
    if !obj.is_callable() {
        let type_name = obj
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into());
        return Err(Error::NotCallable {
            app: app_ref.to_string(),
            type_name,
        });
    }
    let kind: String = rt
        .helper(py, "interface_of")
        .and_then(|f| f.call1((&obj,)))
        .and_then(|k| k.extract())
        .map_err(interp)?;
    let interface = if kind == "asgi" {
        Interface::Asgi
    } else {
        Interface::Wsgi
    };
    Ok(Loaded {
        app: obj.unbind(),
        interface,
    })
}

/// Whether an import error means the app module itself (or one of its parent packages) is missing,
/// as opposed to a module the app imports.
fn is_missing(py: Python<'_>, err: &PyErr, module: &str) -> bool {
    if !err.is_instance_of::<PyModuleNotFoundError>(py) {
        return false;
    }
    let name = err.value(py).getattr("name").ok();
    let name = name
        .as_ref()
        .and_then(|n| n.cast::<PyString>().ok())
        .and_then(|n| n.to_str().ok());
    match name {
        Some(missing) => module == missing || module.starts_with(&format!("{missing}.")),
        None => false,
    }
}

fn path_str(p: &Path) -> Result<String> {
    p.to_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::Config(format!("path {} is not valid UTF-8", p.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::ffi::OsString;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let m: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn preflight_refuses_variables_that_redirect_imports() {
        for var in ["PYTHONHOME", "PYTHONPATH", "PYTHONPYCACHEPREFIX"] {
            let err = preflight(env(&[(var, "/somewhere")])).unwrap_err();
            assert!(err.starts_with(var), "{err}");
        }
        // Harmless ones, and empty values, pass.
        preflight(env(&[
            ("PYTHONUNBUFFERED", "1"),
            ("PYTHONDONTWRITEBYTECODE", "1"),
            ("PYTHONPATH", ""),
        ]))
        .unwrap();
    }
}
