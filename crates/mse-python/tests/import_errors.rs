//! A bad `module:variable` or a broken app gives an error that names what to fix.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod common;

use common::*;
use mse_python::{Error, EventLoop, PyApp, PythonConfig};

fn load(dir: &AppDir, app: &str) -> Error {
    init_logs();
    match PyApp::load(dir.config(app, &[])) {
        Ok(_) => panic!("{app} loaded"),
        Err(e) => e,
    }
}

#[test]
fn a_missing_module_is_named() {
    let dir = AppDir::new(&[]);
    let err = load(&dir, "no_such_app:app");
    assert!(
        matches!(&err, Error::ModuleNotFound { module, .. } if module == "no_such_app"),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("`no_such_app`") && text.contains(dir.code().to_str().unwrap()),
        "{text}"
    );
}

#[test]
fn a_missing_dependency_is_an_import_error_with_its_traceback() {
    let dir = AppDir::new(&[(
        "needs_dep.py",
        "import not_installed_anywhere\napp = None\n",
    )]);
    let err = load(&dir, "needs_dep:app");
    let Error::Import {
        module,
        message,
        traceback,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(module, "needs_dep");
    assert!(message.contains("not_installed_anywhere"), "{message}");
    assert!(
        traceback.contains("needs_dep.py") && traceback.contains("line 1"),
        "{traceback}"
    );
}

#[test]
fn an_exception_during_import_carries_the_traceback() {
    let code = "def helper():\n    raise ValueError('config missing')\n\nhelper()\napp = None\n";
    let dir = AppDir::new(&[("raises_on_import.py", code)]);
    let err = load(&dir, "raises_on_import:app");
    let text = err.to_string();
    assert!(
        text.contains("raises_on_import") && text.contains("ValueError: config missing"),
        "{text}"
    );
    assert!(
        text.contains("line 2, in helper"),
        "the traceback points at the line: {text}"
    );
}

#[test]
fn a_syntax_error_is_reported_with_its_location() {
    let dir = AppDir::new(&[("bad_syntax.py", "def app(:\n")]);
    let text = load(&dir, "bad_syntax:app").to_string();
    assert!(
        text.contains("SyntaxError") && text.contains("bad_syntax.py"),
        "{text}"
    );
}

#[test]
fn a_missing_or_uncallable_attribute_is_named() {
    let dir = AppDir::new(&[("wrong_attr.py", "application = 42\n")]);
    let err = load(&dir, "wrong_attr:app");
    assert!(
        matches!(&err, Error::NoAttribute { attribute, .. } if attribute == "app"),
        "{err:?}"
    );
    let err = load(&dir, "wrong_attr:application");
    assert!(
        matches!(&err, Error::NotCallable { type_name, .. } if type_name == "int"),
        "{err:?}"
    );
    assert!(err.to_string().contains("wrong_attr:application"), "{err}");
}

#[test]
fn a_malformed_app_reference_is_refused_before_python_runs() {
    let err = PyApp::load(PythonConfig::new("/nonexistent", "app")).unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    let mut cfg = PythonConfig::new("/nonexistent", "app:app");
    cfg.threads = 0;
    assert!(matches!(PyApp::load(cfg), Err(Error::Config(_))));
}

#[test]
fn loop_uvloop_without_uvloop_fails_the_load_and_says_what_to_do() {
    init_logs();
    let code = "async def app(scope, receive, send):\n    pass\n";
    let dir = AppDir::new(&[("no_uvloop.py", code)]);
    // No site-packages: the runtime has no uvloop. (In this test binary no test puts the test
    // venv on `sys.path`; the interpreter is shared by the tests of one binary.)
    let mut config = dir.config("no_uvloop:app", &[]);
    config.event_loop = EventLoop::Uvloop;
    match PyApp::load(config) {
        Err(Error::Startup { message }) => assert!(
            message.contains("--loop uvloop: uvloop cannot be imported")
                && message.contains("add it to the app's requirements"),
            "{message}"
        ),
        other => panic!("expected a startup error, got {other:?}"),
    }
}
