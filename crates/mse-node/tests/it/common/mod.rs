//! Test harness: a real `mse-node` process on a free loopback port, every path in a temporary
//! directory, driven by real clients (Python requests, curl, the original mse-cli).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const APP_ID: &str = "63322f85-1ff8-4483-91ae-f18d7398d157";

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A Python interpreter from the environment, or `None` after saying SKIPPED (or a panic when
/// CI requires everything).
fn interpreter(var: &str, default: &str, what: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(default));
    if path.exists() {
        return Some(path);
    }
    if std::env::var("MSE_TEST_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!(
            "{what} is required (MSE_TEST_REQUIRE_ALL=1) but {} does not exist; run scripts/setup-test-env",
            path.display()
        );
    }
    println!(
        "SKIPPED: {what} not found at {} (set {var} or run scripts/setup-test-env)",
        path.display()
    );
    None
}

/// `.venv-test`'s Python (flask, requests, cryptography, mse-lib-crypto).
pub fn python() -> Option<PathBuf> {
    interpreter(
        "MSE_TEST_PYTHON",
        ".venv-test/bin/python",
        "the test Python environment",
    )
}

/// `.venv-mse-cli`'s Python (the original mse-cli 1.3).
pub fn mse_cli_python() -> Option<PathBuf> {
    interpreter(
        "MSE_TEST_MSE_CLI_PYTHON",
        ".venv-mse-cli/bin/python",
        "the original mse-cli 1.3 environment",
    )
}

/// Runs a Python script; panics with its output if it fails. Returns stdout.
pub fn run_python(python: &Path, script: &str, args: &[&str]) -> String {
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .env_remove("PYTHONPATH")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed:\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The runtime's site-packages.
pub fn site_packages(python: &Path) -> PathBuf {
    PathBuf::from(
        run_python(
            python,
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            &[],
        )
        .trim(),
    )
}

/// Encrypts `src` into `dst` with the original mse-lib-crypto 1.4; returns the key (hex).
pub fn encrypt_with_mse_lib_crypto(python: &Path, src: &Path, dst: &Path) -> String {
    let script = r#"
import sys
from pathlib import Path
from mse_lib_crypto.xsalsa20_poly1305 import encrypt_directory, random_key
key = random_key()
encrypt_directory(Path(sys.argv[1]), "*", key, None, ["requirements.txt"], [], Path(sys.argv[2]))
print(key.hex())
"#;
    run_python(
        python,
        script,
        &[src.to_str().unwrap(), dst.to_str().unwrap()],
    )
    .trim()
    .to_owned()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Directories of one node.
pub struct Dirs {
    pub root: tempfile::TempDir,
}

impl Dirs {
    pub fn new() -> Self {
        let root = tempfile::Builder::new()
            .prefix("mse-node-test-")
            .tempdir()
            .unwrap();
        for d in ["app", "sim"] {
            std::fs::create_dir_all(root.path().join(d)).unwrap();
        }
        Dirs { root }
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }
    pub fn app(&self) -> PathBuf {
        self.path("app")
    }
    pub fn home(&self) -> PathBuf {
        self.path("home")
    }
    pub fn key(&self) -> PathBuf {
        self.path("key")
    }
    pub fn module(&self) -> PathBuf {
        self.path("module")
    }
    pub fn tmp(&self) -> PathBuf {
        self.path("tmp")
    }
    pub fn secrets(&self) -> PathBuf {
        self.home().join(".cache/mse/secrets.json")
    }
    pub fn sealed_secrets(&self) -> PathBuf {
        self.home().join(".cache/mse/sealed_secrets.json")
    }
}

/// How to start a node.
pub struct NodeSpec {
    pub ssl: Vec<String>,
    pub san: String,
    pub subject: Option<String>,
    pub extra: Vec<String>,
    pub application: String,
    pub sandbox: bool,
}

impl Default for NodeSpec {
    fn default() -> Self {
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600;
        NodeSpec {
            ssl: vec!["--ratls".into(), exp.to_string()],
            san: "127.0.0.1".into(),
            subject: None,
            extra: vec![],
            application: "app:app".into(),
            sandbox: true,
        }
    }
}

/// A running node; killed on drop.
pub struct Node {
    pub child: Option<Child>,
    pub port: u16,
    pub stdout: Arc<Mutex<String>>,
    pub stderr: Arc<Mutex<String>>,
    pub args: Vec<String>,
}

fn collect(mut r: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let buf = Arc::new(Mutex::new(String::new()));
    let b = buf.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = r.read(&mut chunk) {
            if n == 0 {
                break;
            }
            b.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    });
    buf
}

impl Node {
    /// Starts `mse-node` on a free port and waits until it listens.
    pub fn start(dirs: &Dirs, python: &Path, spec: &NodeSpec) -> Node {
        Self::start_on(free_port(), dirs, python, spec)
    }

    /// Starts on a given port (a restart with the very same arguments).
    pub fn start_on(port: u16, dirs: &Dirs, python: &Path, spec: &NodeSpec) -> Node {
        let mut args: Vec<String> = spec.ssl.clone();
        args.extend([
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
        ]);
        args.extend(["--san".into(), spec.san.clone()]);
        if let Some(s) = &spec.subject {
            args.extend(["--subject".into(), s.clone()]);
        }
        args.extend([
            "--app-dir".into(),
            dirs.app().to_str().unwrap().into(),
            "--id".into(),
            APP_ID.into(),
        ]);
        args.extend(["--tee".into(), "sim".into()]);
        args.extend([
            "--site-packages".into(),
            site_packages(python).to_str().unwrap().into(),
        ]);
        if !spec.sandbox {
            args.push("--insecure-no-sandbox".into());
        }
        args.extend(spec.extra.iter().cloned());
        args.push(spec.application.clone());
        let mut child = Command::new(env!("CARGO_BIN_EXE_mse-node"))
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dirs.home())
            .env("KEY_PATH", dirs.key())
            .env("MODULE_PATH", dirs.module())
            .env("TMP_PATH", dirs.tmp())
            .env("MSE_SIM_DIR", dirs.path("sim"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        let mut node = Node {
            child: Some(child),
            port,
            stdout,
            stderr,
            args,
        };
        node.wait_listening();
        node
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "mse-node exited with {status} before listening:\n{}",
                    self.logs()
                );
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("mse-node did not listen within 60 s:\n{}", self.logs());
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn logs(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            self.stdout.lock().unwrap(),
            self.stderr.lock().unwrap()
        )
    }

    /// A path as the node sees it (its private mount namespace, through /proc).
    pub fn view(&self, path: &Path) -> PathBuf {
        Path::new("/proc")
            .join(self.pid().to_string())
            .join("root")
            .join(path.strip_prefix("/").unwrap())
    }

    /// Sends a signal with kill(1).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits for the process to exit; returns its status.
    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "mse-node did not exit within {within:?}:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until a log line contains `needle`.
    pub fn wait_log(&self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.stderr.lock().unwrap().contains(needle)
                || self.stdout.lock().unwrap().contains(needle)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "no log line with {needle:?} within {within:?}:\n{}",
            self.logs()
        );
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Python helpers (requests with the certificate pinned through `verify=`).
pub const CLIENT_PY: &str = r#"
import json, ssl, sys, time
import requests

def cert(host, port, out):
    pem = ssl.get_server_certificate((host, port))
    open(out, "w").write(pem)

def get(url, verify, **kw):
    return requests.get(url, verify=verify, timeout=30, **kw)

def post(url, verify, **kw):
    return requests.post(url, verify=verify, timeout=60, **kw)

def wait_ready(url, verify, path, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        try:
            r = requests.get(url + path, verify=verify, timeout=5)
            if r.status_code != 503 and "Mse-Status" not in r.headers:
                return r
        except requests.exceptions.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit("app not ready in time")
"#;

/// Fetches the node's certificate over TLS (unverified, as a client does first) into `out`.
pub fn fetch_certificate(python: &Path, node: &Node, out: &Path) {
    let script = format!(
        "{CLIENT_PY}\ncert('127.0.0.1', {}, {:?})",
        node.port,
        out.to_str().unwrap()
    );
    run_python(python, &script, &[]);
}

/// Every regular file under `root` (as the node sees it) whose content contains `needle`.
pub fn files_containing(root: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(ty) = e.file_type() else { continue };
            if ty.is_dir() {
                stack.push(e.path());
            } else if ty.is_file()
                && let Ok(bytes) = std::fs::read(e.path())
                && bytes.windows(needle.len()).any(|w| w == needle)
            {
                hits.push(e.path());
            }
        }
    }
    hits
}

/// Copies a directory tree.
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        let target = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}
