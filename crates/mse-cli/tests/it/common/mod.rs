//! Shared by the integration tests: run the real `mse` binary in an isolated configuration
//! folder, find the node and the Python test environment, skip or fail when they are missing.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A scratch world for one test: its own MSE_CONF_PATH, a shared runtime cache and simulation
/// root (building runtimes is slow; sharing them is what users get too).
pub struct World {
    pub dir: tempfile::TempDir,
}

impl World {
    pub fn new() -> Self {
        World {
            dir: tempfile::Builder::new()
                .prefix("mse-cli-test-")
                .tempdir()
                .unwrap(),
        }
    }

    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("conf")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `mse` with this world's environment.
    pub fn mse(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mse"));
        let shared = Path::new(env!("CARGO_TARGET_TMPDIR"));
        c.env("MSE_CONF_PATH", self.conf())
            .env("MSE_CACHE_DIR", shared.join("mse-cache"))
            .env("MSE_SIM_DIR", shared.join("mse-sim"))
            .env("MSE_COLOR", "never")
            .env_remove("MSE_NODE")
            .env_remove("MSE_PCCS_URL")
            .current_dir(self.dir.path());
        if let Some(node) = node_binary() {
            c.env("MSE_NODE", node);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let out = self.mse().args(args).output().unwrap();
        eprintln!(
            "$ mse {}\n--- exit {:?}\n--- stdout\n{}--- stderr\n{}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// A copy of examples/helloworld with a fresh self-signed certificate for its domain.
    pub fn helloworld(&self) -> PathBuf {
        let dst = self.path("helloworld");
        copy_dir(&workspace().join("examples/helloworld"), &dst);
        let out = self.run(&[
            "testcert",
            "example.com",
            "--dir",
            dst.to_str().unwrap(),
            "--force",
        ]);
        assert!(out.status.success());
        dst
    }
}

pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `mse-node`, built next to `mse` (`cargo build -p mse-node`, or any workspace test run).
pub fn node_binary() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_BIN_EXE_mse")).parent()?;
    let node = dir.join("mse-node");
    node.is_file().then_some(node)
}

/// The Python of the test environment (requests, cryptography…).
pub fn test_python() -> Option<PathBuf> {
    let p = std::env::var_os("MSE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv-test/bin/python"));
    p.is_file().then_some(p)
}

/// `true` if the prerequisite is there. Otherwise: fail under MSE_TEST_REQUIRE_ALL=1, else
/// print `SKIPPED:` and return `false` (the caller returns).
pub fn require(what: &str, available: bool) -> bool {
    if available {
        return true;
    }
    if std::env::var_os("MSE_TEST_REQUIRE_ALL").is_some_and(|v| v == "1") {
        panic!("{what} is required (MSE_TEST_REQUIRE_ALL=1)");
    }
    println!("SKIPPED: {what} is missing");
    false
}

/// The prerequisites of tests that deploy: the node binary and curl.
pub fn can_deploy() -> bool {
    require(
        "the mse-node binary (cargo build -p mse-node)",
        node_binary().is_some(),
    ) && require(
        "curl",
        Command::new("curl")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
    )
}
