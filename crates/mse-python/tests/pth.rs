//! `.pth` files of the runtime's site-packages are processed as a normal interpreter would (they
//! are measured), but import paths they add outside the measured runtime are left out.
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

const APP: &str = r#"
import json, os, sys

def app(environ, start_response):
    found = {}
    for name in ("vendored_mod", "outside_mod", "interp_site_mod"):
        try:
            found[name] = __import__(name).WHERE
        except ImportError:
            found[name] = None
    body = json.dumps({
        "found": found,
        "pth_import_ran": os.environ.get("MSE_TEST_PTH_RAN"),
        "path": sys.path,
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
"#;

/// The app's `sys.path`, as it reported it.
fn sys_path(env: &Value) -> Vec<&str> {
    env["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect()
}

// THREAT: T2 — a measured `.pth` may extend the import path only inside the measured runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pth_files_of_the_runtime_work_within_the_measured_roots() {
    init_logs();
    let dir = AppDir::new(&[("app.py", APP)]);
    let site = dir.path("site");
    let vendored = site.join("vendored");
    std::fs::create_dir_all(&vendored).unwrap();
    std::fs::write(vendored.join("vendored_mod.py"), "WHERE = 'vendored'\n").unwrap();
    let outside = dir.path("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("outside_mod.py"), "WHERE = 'outside'\n").unwrap();
    std::fs::write(
        site.join("extra.pth"),
        format!(
            "# a comment\nvendored\n{}\nimport os; os.environ['MSE_TEST_PTH_RAN'] = 'yes'\n",
            outside.display()
        ),
    )
    .unwrap();

    let app = PyApp::load(dir.config("app:app", std::slice::from_ref(&site))).unwrap();
    let addr = serve(app).await;
    let env: Value = serde_json::from_slice(&send(addr, get("/")).await.body).unwrap();

    assert_eq!(
        env["found"]["vendored_mod"], "vendored",
        "a path line inside the site-packages is honoured: {env}"
    );
    assert_eq!(env["pth_import_ran"], "yes", "import lines run: {env}");
    assert_eq!(
        env["found"]["outside_mod"],
        Value::Null,
        "a path line outside the measured runtime is left out: {env}"
    );
    let path = sys_path(&env);
    assert!(!path.iter().any(|p| p.contains("outside")), "{path:?}");

    // The interpreter's own site-packages lies inside the standard library directory but is not
    // measured: a `.pth` line naming it is left out too.
    let stdlib = path[1].to_string();
    let interp_site = format!("{stdlib}/site-packages");
    let second = AppDir::new(&[("app.py", APP)]);
    let site2 = second.path("site");
    std::fs::create_dir_all(&site2).unwrap();
    std::fs::write(site2.join("interp.pth"), format!("{interp_site}\n")).unwrap();
    let app = PyApp::load(second.config("app:app", std::slice::from_ref(&site2))).unwrap();
    let addr = serve(app).await;
    let env: Value = serde_json::from_slice(&send(addr, get("/")).await.body).unwrap();
    let path = sys_path(&env);
    assert!(
        std::path::Path::new(&interp_site).is_dir(),
        "the interpreter has its own site-packages at {interp_site}"
    );
    assert!(!path.contains(&interp_site.as_str()), "{path:?}");
}
