//! `mse deploy` end to end with the real node on the sim backend: the seed's helloworld answers
//! over verified TLS, the client's files are private, `mse stop` removes the plaintext storage;
//! a node that does not verify is sent nothing; killing deploy half-way leaves no node.

// Test code: a failed setup step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{World, stderr, stdout};

fn state(w: &World, name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(w.conf().join("deployments").join(name).join("state.json"))
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn pid_alive(pid: i64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The node processes of a deployment: those whose command line names its folder.
fn processes_of(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(&needle) && (cmd.contains("mse-node") || cmd.contains("__supervise")) {
                found.push(cmd);
            }
        }
    }
    found
}

/// The `Try:` line deploy prints.
fn curl_line(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Try:"))
        .map(|l| l.trim().to_owned())
        .expect("deploy prints a curl line")
}

fn sh(cmd: &str) -> std::process::Output {
    Command::new("sh").arg("-c").arg(cmd).output().unwrap()
}

/// Every directory 0700 and every file 0600 under the client's folder.
fn assert_private(root: &Path) {
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry.unwrap();
        let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
        if entry.file_type().is_dir() {
            assert_eq!(mode, 0o700, "{} is {mode:o}", entry.path().display());
        } else if entry.file_type().is_file() {
            assert_eq!(mode, 0o600, "{} is {mode:o}", entry.path().display());
        }
    }
}

/// Watches a path while a deploy runs: did it ever exist?
struct Watch {
    seen: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watch {
    fn start(paths: Vec<PathBuf>) -> Self {
        let seen = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, t) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !t.load(Ordering::Relaxed) {
                if paths.iter().any(|p| p.exists()) {
                    s.store(true, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Watch {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> bool {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.seen.load(Ordering::Relaxed)
    }
}

/// What would hold what the node received: the app secrets and the decrypted code.
fn received_paths(w: &World, name: &str) -> Vec<PathBuf> {
    let storage = w.conf().join("deployments").join(name).join("storage");
    vec![
        storage.join("home/.cache/mse/secrets.json"),
        storage.join("mse-app/app.py"),
    ]
}

/// The node's own record: it served its certificate (when `waited`) and received no POST.
fn no_configuration_in_log(w: &World, name: &str, waited: bool) {
    let log =
        std::fs::read_to_string(w.conf().join("deployments").join(name).join("node.log")).unwrap();
    if waited {
        assert!(
            log.contains("configuration server waiting"),
            "the node did start and wait: {log}"
        );
    }
    assert!(!log.contains("\"POST "), "the node received a POST: {log}");
    assert!(
        !log.contains("configuration installed") && !log.contains("configuration refused"),
        "{log}"
    );
}

#[test]
fn helloworld_deploys_answers_over_verified_tls_and_stops_clean() {
    if !common::can_deploy() {
        return;
    }
    let w = World::new();
    let app = w.helloworld();
    let toml = app.join("mse.toml");
    let out = w.run(&["deploy", "--path", toml.to_str().unwrap(), "-y"]);
    assert!(out.status.success(), "deploy failed");
    let dep = w.conf().join("deployments/helloworld");

    // The ready-to-paste curl line works as printed: verified TLS, the secret login.
    let curl = curl_line(&stdout(&out));
    assert!(
        curl.contains("--cacert") && curl.contains("--resolve example.com:"),
        "{curl}"
    );
    let got = sh(&format!("{curl} -sS --fail"));
    assert_eq!(
        String::from_utf8_lossy(&got.stdout),
        "jane@example.com",
        "{}",
        stderr(&got)
    );
    // Without being told to trust the certificate, curl refuses: the check is real.
    let untrusted = sh(&format!(
        "{} -sS --fail",
        curl.replace(&format!("--cacert {}", dep.join("cert.pem").display()), "")
    ));
    assert!(
        !untrusted.status.success(),
        "curl trusted an unknown certificate"
    );

    // Python requests, verifying against the deployed certificate.
    let port = state(&w, "helloworld")["port"].as_u64().unwrap();
    if common::require(
        "the Python test environment (.venv-test)",
        common::test_python().is_some(),
    ) {
        let script = r#"
import sys, requests
from requests.adapters import HTTPAdapter
class Pin(HTTPAdapter):
    def init_poolmanager(self, *a, **kw):
        kw["server_hostname"] = "example.com"
        kw["assert_hostname"] = "example.com"
        super().init_poolmanager(*a, **kw)
s = requests.Session()
s.mount("https://", Pin())
r = s.get(f"https://127.0.0.1:{sys.argv[1]}/whoami", verify=sys.argv[2], timeout=10)
r.raise_for_status()
print(r.text, end="")
"#;
        let py = Command::new(common::test_python().unwrap())
            .args([
                "-c",
                script,
                &port.to_string(),
                dep.join("cert.pem").to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&py.stdout),
            "jane@example.com",
            "{}",
            stderr(&py)
        );
    }

    // Read commands, human and JSON.
    let st = w.run(&["status", "helloworld", "--json"]);
    let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(st["phase"], "running");
    assert_eq!(st["health"], "running");
    let list: serde_json::Value =
        serde_json::from_slice(&w.run(&["list", "--json"]).stdout).unwrap();
    assert_eq!(list[0]["name"], "helloworld");
    let v = w.run(&["verify", "helloworld", "--json"]);
    assert_eq!(v.status.code(), Some(0));
    let reports: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(reports[0]["ok"], true);
    assert_eq!(reports[0]["simulated"], true);
    assert_eq!(reports[1]["freshness"]["kind"], "fresh");
    let ctx: serde_json::Value =
        serde_json::from_slice(&w.run(&["context", "helloworld", "--json"]).stdout).unwrap();
    assert_eq!(ctx["code_secret_key"], "[redacted]");
    assert_eq!(ctx["nonces"].as_object().unwrap().len(), 1);

    // The client's files: owner-only, whatever the umask.
    assert_private(&w.conf());

    // Deploying the same name again: refused without -y and without a terminal to ask.
    let again = w.run(&["deploy", "--path", toml.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("pass -y to replace it"));

    // Stop: the node ends, its plaintext storage is gone.
    let supervisor = state(&w, "helloworld")["supervisor_pid"].as_i64().unwrap();
    let stop = w.run(&["stop", "helloworld"]);
    assert!(stop.status.success());
    assert!(!pid_alive(supervisor), "the supervisor survived stop");
    assert!(
        processes_of(&dep).is_empty(),
        "node processes survived stop: {:?}",
        processes_of(&dep)
    );
    assert!(
        !dep.join("storage").exists(),
        "plaintext storage left behind"
    );
    assert!(!dep.join("app").exists(), "shipped code left behind");
    assert!(
        !sh(&format!("{curl} -sS --fail --max-time 5"))
            .status
            .success(),
        "the app still answers"
    );
    let st: serde_json::Value =
        serde_json::from_slice(&w.run(&["status", "helloworld", "--json"]).stdout).unwrap();
    assert_eq!(st["phase"], "stopped");
}

#[test]
fn the_attested_certificate_serves_the_app_without_ssl_section() {
    if !common::can_deploy() {
        return;
    }
    let w = World::new();
    let app = w.helloworld();
    let toml = app.join("mse.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    let without_ssl = text.split("[ssl]").next().unwrap().to_owned();
    std::fs::write(&toml, without_ssl).unwrap();
    let out = w.run(&["deploy", "--path", toml.to_str().unwrap(), "-y"]);
    assert!(out.status.success());
    let curl = curl_line(&stdout(&out));
    assert!(
        curl.contains("https://localhost:") && !curl.contains("--resolve"),
        "{curl}"
    );
    let got = sh(&format!("{curl} -sS --fail"));
    assert_eq!(
        String::from_utf8_lossy(&got.stdout),
        "jane@example.com",
        "{}",
        stderr(&got)
    );
    assert!(w.run(&["stop", "helloworld", "--remove"]).status.success());
    assert!(!w.conf().join("deployments/helloworld").exists());
}

#[test]
fn a_node_that_does_not_verify_is_sent_nothing() {
    if !common::can_deploy() {
        return;
    }
    let w = World::new();
    let app = w.helloworld();
    let toml = app.join("mse.toml");
    let toml = toml.to_str().unwrap();
    let dep = w.conf().join("deployments/helloworld");

    // 1. Wrong measurement. Without the sandbox the node's storage is on disk, so a watcher can
    //    see whether the secrets or the decrypted code ever appear.
    let watch = Watch::start(received_paths(&w, "helloworld"));
    let wrong = "00".repeat(32);
    let out = w.run(&[
        "deploy",
        "--path",
        toml,
        "-y",
        "--insecure-no-sandbox",
        "--expected-measurement",
        &wrong,
    ]);
    let seen = watch.finish();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a rejected node is a negative verdict"
    );
    assert!(stderr(&out).contains("nothing was sent"));
    assert!(
        stdout(&out).contains("FAILED: measurement")
            || stderr(&out).contains("FAILED: measurement")
    );
    assert!(!seen, "secrets or code reached the node's storage");
    no_configuration_in_log(&w, "helloworld", true);
    assert_eq!(state(&w, "helloworld")["phase"], "rejected");
    assert!(
        !dep.join("context.mse").exists(),
        "a rejected deployment keeps no code key"
    );
    assert!(
        processes_of(&dep).is_empty(),
        "the rejected node still runs"
    );

    // 2. Simulated evidence under the strict policy (no simulation root trusted).
    let watch = Watch::start(received_paths(&w, "helloworld"));
    let out = w.run(&[
        "deploy",
        "--path",
        toml,
        "-y",
        "--insecure-no-sandbox",
        "--policy",
        "strict",
    ]);
    let seen = watch.finish();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        format!("{}{}", stdout(&out), stderr(&out))
            .to_lowercase()
            .contains("simulation")
    );
    assert!(!seen, "secrets or code reached the node's storage");
    no_configuration_in_log(&w, "helloworld", true);
    assert!(
        processes_of(&dep).is_empty(),
        "the rejected node still runs"
    );

    // 3. Control: the same watcher does see what a verified node receives.
    let watch = Watch::start(received_paths(&w, "helloworld"));
    let out = w.run(&["deploy", "--path", toml, "-y", "--insecure-no-sandbox"]);
    let seen = watch.finish();
    assert!(out.status.success());
    assert!(
        seen,
        "the watcher cannot see the node's storage: steps 1 and 2 prove nothing"
    );
    assert!(w.run(&["stop", "helloworld"]).status.success());
    assert!(!dep.join("storage").exists());
}

#[test]
fn killing_deploy_before_configuration_leaves_no_node() {
    if !common::can_deploy() {
        return;
    }
    let w = World::new();
    let app = w.helloworld();
    let toml = app.join("mse.toml");
    let dep = w.conf().join("deployments/helloworld");
    // Build the runtime first, so the kill below lands while the node starts.
    assert!(
        w.run(&["deploy", "--path", toml.to_str().unwrap(), "-y"])
            .status
            .success()
    );
    assert!(w.run(&["stop", "helloworld", "--remove"]).status.success());

    let mut deploy = w
        .mse()
        .args(["deploy", "--path", toml.to_str().unwrap(), "-y"])
        .spawn()
        .unwrap();
    // The state file appears right after the supervisor starts; the node then needs seconds
    // to measure itself before it can be configured.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !dep.join("state.json").exists() {
        assert!(Instant::now() < deadline, "deploy never started a node");
        assert!(deploy.try_wait().unwrap().is_none(), "deploy ended early");
        std::thread::sleep(Duration::from_millis(5));
    }
    deploy.kill().unwrap();
    deploy.wait().unwrap();
    let supervisor = state(&w, "helloworld")["supervisor_pid"].as_i64().unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    while pid_alive(supervisor) || !processes_of(&dep).is_empty() {
        assert!(
            Instant::now() < deadline,
            "orphans: {:?}",
            processes_of(&dep)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        state(&w, "helloworld")["phase"],
        "starting",
        "killed before configuration"
    );
    assert!(
        !dep.join("storage").exists(),
        "the node's storage was left behind"
    );
    no_configuration_in_log(&w, "helloworld", false);
    let why = std::fs::read_to_string(dep.join("node.exit")).unwrap();
    assert!(
        why.contains("deploy ended before configuring the node"),
        "{why}"
    );
    // Keys: only inside the client's folder, owner-only.
    assert_private(&w.conf());
}
