//! `mse scaffold` makes a project that passes its own tests under `mse localtest`; a failing
//! test is a negative verdict (exit 1).

// Test code: a failed setup step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::os::unix::fs::PermissionsExt as _;

use common::{World, stderr, stdout};

#[test]
fn scaffold_writes_a_complete_project() {
    let w = World::new();
    let out = w.run(&["scaffold", "shop"]);
    assert!(out.status.success());
    let root = w.path("shop");
    for f in [
        "mse.toml",
        "secrets.json",
        "code/app.py",
        "code/requirements.txt",
        "code/.mseignore",
        "tests/conftest.py",
        "tests/test_app.py",
        ".gitignore",
    ] {
        assert!(root.join(f).is_file(), "{f} missing");
    }
    let toml = std::fs::read_to_string(root.join("mse.toml")).unwrap();
    assert!(toml.starts_with("name = \"shop\""), "{toml}");
    let mode = std::fs::metadata(root.join("secrets.json"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "secrets.json is private");
    // Its configuration passes every check as written.
    let check = w.run(&[
        "deploy",
        "--check",
        "--path",
        root.join("mse.toml").to_str().unwrap(),
    ]);
    assert!(check.status.success());
    // A second scaffold does not overwrite it.
    let again = w.run(&["scaffold", "shop"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("already exists"));
}

#[test]
fn scaffold_then_localtest_passes_and_a_failing_test_exits_1() {
    if !common::require(
        "the mse-node binary (cargo build -p mse-node)",
        common::node_binary().is_some(),
    ) {
        return;
    }
    let w = World::new();
    assert!(w.run(&["scaffold", "shop"]).status.success());
    let root = w.path("shop");
    let toml = root.join("mse.toml");
    let out = w.run(&["localtest", "--path", toml.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "localtest failed");
    assert!(
        stdout(&out).contains("3 passed"),
        "pytest ran the three tests"
    );

    std::fs::write(
        root.join("tests/test_more.py"),
        "import requests\n\ndef test_missing_route(url):\n    assert requests.get(f\"{url}/nope\", timeout=10).status_code == 200\n",
    )
    .unwrap();
    let out = w.run(&["localtest", "--path", toml.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "failing tests are a negative verdict"
    );
    assert!(stderr(&out).contains("the tests failed"));
    // Nothing is left running.
    let leftovers: Vec<_> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains("mse-localtest-") && c.contains("mse-node"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
