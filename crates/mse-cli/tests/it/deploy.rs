//! `mse deploy` end to end with the real node on the sim backend: the seed's helloworld answers
//! over verified TLS, the client's files are private, `mse stop` removes the plaintext storage;
//! a node that does not verify is sent nothing; killing deploy half-way leaves no node and no key
//! outside the client's folder; the README's `scripts/quickstart` does what it says.

// Test code: a failed setup step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

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

/// The code key deploy wrote to the context (hex), read while deploy runs.
fn code_key_hex(w: &World, name: &str) -> String {
    let path = w.conf().join("deployments").join(name).join("context.mse");
    let text = std::fs::read_to_string(&path).unwrap();
    let ctx: toml::Value = toml::from_str(&text).unwrap();
    let key = ctx["config"]["code_secret_key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(key.len(), 64, "a 32-byte key in hex");
    key
}

/// Files that hold the code key (hex or raw bytes) anywhere a deploy could have written: the
/// test's world except the client's folder, the shared runtime cache and simulation root, and
/// what appeared in the temporary folder since `since`.
fn key_copies_outside_conf(w: &World, key_hex: &str, since: SystemTime) -> Vec<PathBuf> {
    let raw = hex::decode(key_hex).unwrap();
    let hex_lower = key_hex.as_bytes().to_vec();
    let hex_upper = key_hex.to_uppercase().into_bytes();
    let shared = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let roots = [
        w.dir.path().to_path_buf(),
        shared.join("mse-cache"),
        shared.join("mse-sim"),
        std::env::temp_dir(),
    ];
    let conf = w.conf();
    let mut found = Vec::new();
    for root in roots {
        let walk = walkdir::WalkDir::new(&root)
            .follow_links(false)
            .into_iter()
            .filter_entry(|e| e.path() != conf);
        // Other tests come and go in the same folders: unreadable or vanished entries are skipped.
        for entry in walk.flatten() {
            if !entry.file_type().is_file() {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            let recent = meta.modified().is_ok_and(|m| m >= since);
            let under_world = entry.path().starts_with(w.dir.path());
            if (!recent && !under_world) || meta.len() > 64 << 20 {
                continue;
            }
            let Ok(bytes) = std::fs::read(entry.path()) else {
                continue;
            };
            let holds = |needle: &[u8]| bytes.windows(needle.len()).any(|win| win == needle);
            if holds(&raw) || holds(&hex_lower) || holds(&hex_upper) {
                found.push(entry.path().to_path_buf());
            }
        }
    }
    found
}

/// Waits until neither the supervisor nor any node process of `dep` runs.
fn assert_no_orphans(supervisor: i64, dep: &Path, within: Duration) {
    let deadline = Instant::now() + within;
    while pid_alive(supervisor) || !processes_of(dep).is_empty() {
        assert!(
            Instant::now() < deadline,
            "orphans: supervisor {supervisor} alive: {}, processes: {:?}",
            pid_alive(supervisor),
            processes_of(dep)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts `mse deploy` in the background and returns once its node is being started (the
/// context, with the code key, is written just before; the node then needs seconds to measure
/// itself before it could be configured).
fn deploy_until_node_starts(w: &World, toml: &Path) -> (std::process::Child, String) {
    let dep = w.conf().join("deployments/helloworld");
    let mut deploy = w
        .mse()
        .args(["deploy", "--path", toml.to_str().unwrap(), "-y"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !dep.join("state.json").exists() {
        assert!(Instant::now() < deadline, "deploy never started a node");
        assert!(deploy.try_wait().unwrap().is_none(), "deploy ended early");
        std::thread::sleep(Duration::from_millis(5));
    }
    let key = code_key_hex(w, "helloworld");
    (deploy, key)
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
    // THREAT: T6
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
    let logs = w.run(&["logs", "helloworld"]);
    assert!(logs.status.success());
    assert!(
        stdout(&logs).contains("configuration server waiting"),
        "{}",
        stdout(&logs)
    );

    // THREAT: T17
    // The client's files: owner-only, whatever the umask, and `mse context` says so.
    assert_eq!(ctx["folder"]["mode"], "700", "{ctx}");
    let files = ctx["files"].as_array().unwrap();
    assert!(
        files
            .iter()
            .any(|f| f["path"].as_str().unwrap().ends_with("context.mse")),
        "{ctx}"
    );
    for f in files {
        assert_eq!(f["mode"], "600", "{f}");
    }
    let human = stdout(&w.run(&["context", "helloworld"]));
    assert!(
        human.contains("mode 700") && human.contains("600"),
        "{human}"
    );
    assert!(
        !human.contains(&code_key_hex(&w, "helloworld")),
        "the key is shown only with --show-key"
    );
    let shown = w.run(&["context", "helloworld", "--show-key", "--json"]);
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["code_secret_key"], code_key_hex(&w, "helloworld"));
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

// THREAT: T2
// THREAT: T12
#[test]
fn t2_t12_a_node_that_does_not_verify_is_sent_nothing() {
    if !common::can_deploy() {
        return;
    }
    let w = World::new();
    let app = w.helloworld();
    let toml = app.join("mse.toml");
    let toml = toml.to_str().unwrap();
    let dep = w.conf().join("deployments/helloworld");

    // 1. (T2) Wrong measurement. Without the sandbox the node's storage is on disk, so a watcher can
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

    // 2. (T12) Simulated evidence under the strict policy (no simulation root trusted).
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

// THREAT: T17
#[test]
fn t17_sigkill_of_deploy_leaves_no_node_and_no_key_outside_the_context() {
    if !common::can_deploy() {
        return;
    }
    let since = SystemTime::now();
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
    // The node dies with its supervisor (parent-death signal), even after hand-over; stop then
    // removes the plaintext storage the supervisor could not wipe.
    let supervisor = state(&w, "helloworld")["supervisor_pid"].as_i64().unwrap();
    assert!(!processes_of(&dep).is_empty());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(supervisor).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert_no_orphans(supervisor, &dep, Duration::from_secs(10));
    let st: serde_json::Value =
        serde_json::from_slice(&w.run(&["status", "helloworld", "--json"]).stdout).unwrap();
    assert_eq!(st["phase"], "exited", "{st}");
    assert!(dep.join("storage").exists(), "nobody wiped it yet");
    assert!(w.run(&["stop", "helloworld", "--remove"]).status.success());
    assert!(!dep.exists());

    let (mut deploy, key) = deploy_until_node_starts(&w, &toml);
    deploy.kill().unwrap();
    deploy.wait().unwrap();
    let supervisor = state(&w, "helloworld")["supervisor_pid"].as_i64().unwrap();
    assert_no_orphans(supervisor, &dep, Duration::from_secs(60));
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
    // Keys: only inside the client's folder, owner-only; `mse stop --remove` takes them away.
    assert_private(&w.conf());
    let copies = key_copies_outside_conf(&w, &key, since);
    assert!(copies.is_empty(), "the code key is also in {copies:?}");
    assert_eq!(code_key_hex(&w, "helloworld"), key);
    assert!(w.run(&["stop", "helloworld", "--remove"]).status.success());
    assert!(!dep.exists());
}

// THREAT: T17
#[test]
fn t17_ctrl_c_during_deploy_stops_the_node_and_forgets_the_key() {
    if !common::can_deploy() {
        return;
    }
    let since = SystemTime::now();
    let w = World::new();
    let app = w.helloworld();
    let toml = app.join("mse.toml");
    let dep = w.conf().join("deployments/helloworld");
    // Build the runtime first, so the signal lands while the node starts.
    assert!(
        w.run(&["deploy", "--path", toml.to_str().unwrap(), "-y"])
            .status
            .success()
    );
    assert!(w.run(&["stop", "helloworld", "--remove"]).status.success());

    let (deploy, key) = deploy_until_node_starts(&w, &toml);
    let supervisor = state(&w, "helloworld")["supervisor_pid"].as_i64().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(deploy.id()).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let started = Instant::now();
    let out = deploy.wait_with_output().unwrap();
    let err = stderr(&out);
    eprintln!(
        "--- deploy after SIGINT, exit {:?}\n{err}",
        out.status.code()
    );
    assert_eq!(out.status.code(), Some(2), "an interrupted deploy fails");
    assert!(err.contains("interrupted"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(45),
        "deploy took {:?} to clean up",
        started.elapsed()
    );
    // deploy waited for its node to stop: nothing runs once it has exited.
    assert_no_orphans(supervisor, &dep, Duration::from_secs(1));
    assert!(
        !dep.exists(),
        "an interrupted deploy leaves no deployment (and so no key) behind"
    );
    let copies = key_copies_outside_conf(&w, &key, since);
    assert!(copies.is_empty(), "the code key is also in {copies:?}");
    let list: serde_json::Value =
        serde_json::from_slice(&w.run(&["list", "--json"]).stdout).unwrap();
    assert_eq!(list, serde_json::json!([]));
}

#[test]
fn the_quickstart_script_deploys_helloworld_and_curl_gets_the_login() {
    if !common::can_deploy() {
        return;
    }
    let w = World::new();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_mse")).parent().unwrap();
    // The script with this build's binaries (MSE_BIN_DIR: no cargo inside cargo) and the
    // world's folders.
    let template = w.mse();
    let mut quickstart = Command::new(common::workspace().join("scripts/quickstart"));
    for (k, v) in template.get_envs() {
        match v {
            Some(v) => quickstart.env(k, v),
            None => quickstart.env_remove(k),
        };
    }
    let out = quickstart
        .env("MSE_BIN_DIR", bin_dir)
        .env("MSE_QUICKSTART_DIR", w.path("quickstart"))
        .output()
        .unwrap();
    let text = stdout(&out);
    eprintln!(
        "--- quickstart, exit {:?}\n{text}\n{}",
        out.status.code(),
        stderr(&out)
    );
    assert!(out.status.success(), "quickstart failed");
    let curl = curl_line(&text);
    assert!(curl.starts_with("curl --cacert "), "{curl}");
    assert!(
        text.contains("The app answered \"jane@example.com\" over TLS"),
        "{text}"
    );
    // Its example folder was copied, not modified: no generated key in the repository.
    assert!(
        !common::workspace()
            .join("examples/helloworld/key.secret.pem")
            .exists()
    );
    // `mse stop` ends it and removes its plaintext storage.
    let dep = w.conf().join("deployments/helloworld");
    let supervisor = state(&w, "helloworld")["supervisor_pid"].as_i64().unwrap();
    assert!(dep.join("storage").exists());
    assert!(w.run(&["stop", "helloworld"]).status.success());
    assert_no_orphans(supervisor, &dep, Duration::from_secs(1));
    assert!(!dep.join("storage").exists());
    assert!(
        !sh(&format!("{curl} -sS --fail --max-time 5"))
            .status
            .success(),
        "the app still answers"
    );
}
