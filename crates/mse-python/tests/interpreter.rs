//! The interpreter as the app sees it: exactly the configured import path, no bytecode written,
//! the configured environment, SIGTERM left to the node; several apps per process.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod common;

use common::*;
use mse_python::PyApp;
use serde_json::Value;

const INTROSPECT: &str = r#"
import builtins, json, os, signal, sys

# At import time: which loaded modules come from outside the app, the stdlib and site-packages?
_roots = tuple(os.path.realpath(p) + os.sep for p in sys.path)
FOREIGN = sorted(
    f"{name} ({m.__file__})" for name, m in list(sys.modules.items())
    if getattr(m, "__file__", None) and name != "_mse_runtime"
    and not os.path.realpath(m.__file__).startswith(_roots)
)

def app(environ, start_response):
    try:
        import flask  # installed in the interpreter's own prefix? It must not be reachable.
        flask_found = flask.__file__
    except ImportError:
        flask_found = None
    body = json.dumps({
        "path": sys.path,
        "dont_write_bytecode": sys.dont_write_bytecode,
        "secret_path": os.environ.get("SECRETS_PATH"),
        # The node owns SIGTERM (graceful stop). CPython's `signal` import takes SIGINT when it is
        # SIG_DFL, which is harmless: the node handles SIGINT before the app runs.
        "sigterm_untouched": signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, signal.SIG_IGN),
        "flask": flask_found,
        "stdlib": os.path.dirname(os.__file__),
        "name": __name__,
        "no_site": sys.flags.no_site,
        "prefix": sys.prefix,
        "foreign": FOREIGN,
        "site_builtins": [n for n in ("exit", "quit", "help", "copyright") if hasattr(builtins, n)],
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
"#;

// THREAT: T2 — nothing the measurement leaves out runs: `site` (which executes the `.pth` files
// of the interpreter's own site-packages) is off, and no module comes from outside the measured
// paths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_sees_only_what_was_configured() {
    init_logs();
    let dir = AppDir::new(&[("app.py", INTROSPECT), ("helper.py", "X = 1\n")]);
    let site = dir.path("site");
    std::fs::create_dir_all(&site).unwrap();
    let mut cfg = dir.config("app:app", std::slice::from_ref(&site));
    cfg.env = vec![("SECRETS_PATH".into(), "/somewhere/secrets.json".into())];
    let app = PyApp::load(cfg).unwrap();
    let addr = serve(app).await;
    let env: Value = serde_json::from_slice(&send(addr, get("/")).await.body).unwrap();

    let stdlib = env["stdlib"].as_str().unwrap().to_string();
    let expected = serde_json::json!([
        dir.code().to_str().unwrap(),
        stdlib,
        format!("{stdlib}/lib-dynload"),
        site.to_str().unwrap(),
    ]);
    assert_eq!(
        env["path"], expected,
        "sys.path is exactly the app, the stdlib and the configured site-packages"
    );
    assert_eq!(
        env["flask"],
        Value::Null,
        "nothing outside the configured paths is importable"
    );
    assert_eq!(
        env["no_site"], 1,
        "`site` did not run at the interpreter's start"
    );
    assert_eq!(
        env["foreign"],
        serde_json::json!([]),
        "every loaded module comes from the app, the stdlib or the configured site-packages"
    );
    let prefix = env["prefix"].as_str().unwrap();
    assert!(
        stdlib.starts_with(&format!("{prefix}/lib/python3")),
        "sys.prefix {prefix} is the home the node was built against, whose stdlib is {stdlib}"
    );
    assert_eq!(
        env["site_builtins"],
        serde_json::json!(["exit", "quit", "help", "copyright"]),
        "the builtins `site` would have added are there"
    );
    assert_eq!(env["dont_write_bytecode"], true);
    assert!(
        !dir.code().join("__pycache__").exists(),
        "no bytecode written next to the code"
    );
    assert_eq!(env["secret_path"], "/somewhere/secrets.json");
    assert_eq!(
        env["sigterm_untouched"], true,
        "Python installed no SIGTERM handler"
    );

    // A second app with the same module name, from another directory, is that app, not the first.
    let other = AppDir::new(&[(
        "app.py",
        "def app(environ, start_response):\n    start_response('200 OK', [])\n    return [b'second app']\n",
    )]);
    let second = PyApp::load(other.config("app:app", &[])).unwrap();
    let addr2 = serve(second).await;
    assert_eq!(send(addr2, get("/")).await.text(), "second app");
    assert_eq!(
        send(addr, get("/")).await.status,
        200,
        "the first app keeps serving"
    );
}
