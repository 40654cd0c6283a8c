//! The seed's enclave environment, enforced, seen through the real node (issue #4, "What must be
//! shown"): a real `mse-node` with its sandbox on (private storage, Landlock, seccomp and the
//! Python guard) serves the test apps of `tests/apps/sandbox/` (Flask and FastAPI fronts of
//! `probes.py`), configured like any app, and the apps try what the seed forbids.
//!
//! - T10: every way of starting a process raises the clean exception, the node keeps serving and
//!   has no child process; threads work.
//! - T11: KEY_PATH and files outside the allowed roots are unreadable, writes outside HOME and
//!   TMP_PATH are refused (the test prints which enforcement the node reported: Landlock ABI).
//! - T7: a marker written to HOME and TMP_PATH is nowhere on the host's disk area of the node,
//!   and the storage is gone after SIGTERM; writing past the quota gives ENOSPC and the app
//!   keeps answering.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use serde_json::{Value, json};

const APPS: &str = "crates/mse-node/tests/apps/sandbox";
const CLEAN: &str = "subprocesses are not allowed inside an mse enclave";
const EPERM: i64 = 1;
const EACCES: i64 = 13;
const ENOSPC: i64 = 28;

/// Every way of starting a process that `probes.FORBIDDEN` knows.
const FORBIDDEN: &[&str] = &[
    "subprocess_run",
    "subprocess_shell",
    "subprocess_check_output",
    "os_system",
    "os_popen",
    "os_fork",
    "os_posix_spawn",
    "os_posix_spawnp",
    "os_execv",
    "multiprocessing_fork",
    "multiprocessing_spawn",
    "multiprocessing_forkserver",
    "multiprocessing_pool",
    "process_pool_executor",
    "asyncio_subprocess",
    // uvloop imported by the app after the guard (the WSGI app never imports it before).
    "uvloop_subprocess",
];

/// A configured node serving one of the sandbox test apps.
struct Sandboxed {
    python: PathBuf,
    dirs: Dirs,
    node: Node,
    cert: PathBuf,
}

impl Sandboxed {
    /// Starts the node on the clear code of `tests/apps/sandbox`, configures it (secrets only) and
    /// waits for the app. `setup` runs on the directories before the node starts.
    fn start(application: &str, extra: &[&str], setup: impl FnOnce(&Dirs)) -> Option<Self> {
        let python = python()?;
        let dirs = Dirs::new();
        copy_dir(&repo().join(APPS), &dirs.app());
        setup(&dirs);
        let spec = NodeSpec {
            application: application.into(),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            ..NodeSpec::default()
        };
        let node = Node::start(&dirs, &python, &spec);
        let cert = dirs.path("ratls.pem");
        fetch_certificate(&python, &node, &cert);
        let script = format!(
            r#"{CLIENT_PY}
url, verify = {url:?}, {cert:?}
r = post(url, verify, json={{"uuid": {id:?}, "app_secrets": {{"login": "sandbox"}}}})
assert r.status_code == 200, (r.status_code, r.text)
r = wait_ready(url, verify, "/ping")
assert r.text == "pong", r.text
print("ok")
"#,
            url = node.url(),
            cert = cert.to_str().unwrap(),
            id = APP_ID,
        );
        let out = std::process::Command::new(&python)
            .arg("-c")
            .arg(&script)
            .env_remove("PYTHONPATH")
            .output()
            .unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
            "configuring the app failed:\n{}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            node.logs()
        );
        Some(Sandboxed {
            python,
            dirs,
            node,
            cert,
        })
    }

    /// POSTs each `(path, body)` in order over pinned TLS; returns the JSON answers.
    fn post_all(&self, requests: &[(&str, Value)]) -> Vec<Value> {
        let reqs = serde_json::to_string(
            &requests
                .iter()
                .map(|(p, b)| json!([p, b]))
                .collect::<Vec<_>>(),
        )
        .unwrap();
        let script = format!(
            r#"{CLIENT_PY}
url, verify = {url:?}, {cert:?}
out = []
for path, body in json.loads(sys.argv[1]):
    r = post(url + path, verify, json=body)
    try:
        out.append({{"status": r.status_code, "body": r.json()}})
    except ValueError:
        out.append({{"status": r.status_code, "body": r.text}})
print(json.dumps(out))
"#,
            url = self.node.url(),
            cert = self.cert.to_str().unwrap(),
        );
        let out = std::process::Command::new(&self.python)
            .arg("-c")
            .arg(&script)
            .arg(&reqs)
            .env_remove("PYTHONPATH")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the client failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.node.logs()
        );
        let answers: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(answers.len(), requests.len());
        answers
            .into_iter()
            .zip(requests)
            .map(|(a, (path, body))| {
                assert_eq!(
                    a["status"],
                    200,
                    "POST {path} {body}: {a}\n{}",
                    self.node.logs()
                );
                a["body"].clone()
            })
            .collect()
    }

    /// One probe of `probes.dispatch` through the sync route.
    fn probe(&self, op: &str, args: Value) -> Value {
        self.post_all(&[("/probe", json!({"op": op, "args": args}))])
            .remove(0)
    }

    /// The node is alive, answers `/ping`, and has no child process.
    fn assert_serving(&self) {
        let script = format!(
            "{CLIENT_PY}\nr = get({:?} + '/ping', {:?})\nprint(r.status_code, r.text)",
            self.node.url(),
            self.cert.to_str().unwrap()
        );
        let out = run_python(&self.python, &script, &[]);
        assert_eq!(out.trim(), "200 pong", "{}", self.node.logs());
        assert_eq!(
            children(self.node.pid()),
            Vec::<String>::new(),
            "the node has children"
        );
    }

    /// The Landlock line the node logged; `None` when the kernel enforces nothing.
    fn landlock_enforcement(&self) -> Option<String> {
        self.node.wait_log("Landlock", Duration::from_secs(5));
        let logs = self.node.logs();
        let line = logs
            .lines()
            .find(|l| l.contains("Landlock ABI") || l.contains("Landlock: NOT enforced"))
            .unwrap_or_else(|| panic!("no Landlock report in the node's log:\n{logs}"))
            .to_owned();
        let report = line
            .split_once("mse_sandbox: ")
            .map_or(line.as_str(), |(_, r)| r)
            .to_owned();
        if report.contains("NOT enforced") {
            assert_ne!(
                std::env::var("MSE_TEST_REQUIRE_ALL").as_deref(),
                Ok("1"),
                "the kernel has no Landlock: the file confinement cannot be checked\n{logs}"
            );
            println!("SKIPPED: T11 file checks: {report}");
            return None;
        }
        Some(report)
    }
}

/// Child processes of every thread of `pid`.
fn children(pid: u32) -> Vec<String> {
    let mut all = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let kids = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        all.extend(kids.split_whitespace().map(str::to_owned));
    }
    all
}

/// The exception a probe reported is the guard's clean one.
fn check_clean(name: &str, r: &Value, failures: &mut Vec<String>) {
    let ok = r["ok"] == false
        && r["type"] == "SubprocessNotAllowedError"
        && r["permission_error"] == true
        && r["errno"] == EPERM
        && r["message"].as_str().is_some_and(|m| m.contains(CLEAN));
    if !ok {
        failures.push(format!("{name}: {r}"));
    }
}

/// A probe was refused with `PermissionError` (EACCES).
fn check_denied(what: &str, r: &Value, failures: &mut Vec<String>) {
    if !(r["ok"] == false && r["permission_error"] == true && r["errno"] == EACCES) {
        failures.push(format!("{what}: expected PermissionError EACCES, got {r}"));
    }
}

fn check_ok(what: &str, r: &Value, failures: &mut Vec<String>) {
    if r["ok"] != true {
        failures.push(format!("{what}: expected success, got {r}"));
    }
}

fn check_threads(what: &str, r: &Value) {
    assert_eq!(r["ok"], true, "{what}: {r}");
    let v = &r["value"];
    assert_eq!(
        v["squares"],
        json!([0, 1, 4, 9, 16, 25, 36, 49]),
        "{what}: {r}"
    );
    assert_eq!(
        v["plus"],
        json!((1..=16).collect::<Vec<_>>()),
        "{what}: {r}"
    );
    assert_eq!(v["abs"], json!([1, 2]), "{what}: {r}");
    assert_eq!(v["to_thread"], 42, "{what}: {r}");
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}

// THREAT: T10
#[test]
fn t10_wsgi_app_gets_the_clean_exception_for_every_process_and_keeps_serving() {
    let Some(app) = Sandboxed::start("wsgi_app:app", &[], |_| {}) else {
        return;
    };
    app.node
        .wait_log("Python guard installed", Duration::from_secs(5));
    app.node.wait_log(
        "no fork, vfork, exec or process-creating clone",
        Duration::from_secs(5),
    );

    let requests: Vec<(&str, Value)> = FORBIDDEN
        .iter()
        .map(|n| ("/probe", json!({"op": "forbidden", "args": {"name": n}})))
        .collect();
    let answers = app.post_all(&requests);
    let mut failures = Vec::new();
    for (name, r) in FORBIDDEN.iter().zip(&answers) {
        check_clean(name, r, &mut failures);
    }
    // A reference to os.fork the app took at import, before the guard: the kernel says no.
    let saved = app.probe("forbidden", json!({"name": "saved_fork"}));
    if !(saved["ok"] == false && saved["type"] == "PermissionError" && saved["errno"] == EPERM) {
        failures.push(format!(
            "saved os.fork: expected the kernel's EPERM, got {saved}"
        ));
    }
    assert!(
        failures.is_empty(),
        "not the clean exception:\n{}\n{}",
        failures.join("\n"),
        app.node.logs()
    );

    check_threads("threads", &app.probe("threads", json!({})));
    app.assert_serving();
    // Again after all that: the same answers, the node unharmed.
    let again = app.probe("forbidden", json!({"name": "os_fork"}));
    check_clean("os_fork again", &again, &mut failures);
    assert!(failures.is_empty(), "{failures:?}");
    app.assert_serving();
    println!(
        "T10 checked through the node (WSGI): {} ways of starting a process raised SubprocessNotAllowedError, a saved os.fork got EPERM from seccomp",
        FORBIDDEN.len()
    );
}

// THREAT: T11
#[test]
fn t11_wsgi_app_reads_and_writes_only_its_roots() {
    let Some(app) = Sandboxed::start("wsgi_app:app", &[], |dirs| {
        std::fs::create_dir_all(dirs.path("outside")).unwrap();
        std::fs::write(dirs.path("outside/host-secret.txt"), "host secret").unwrap();
    }) else {
        return;
    };
    let Some(enforcement) = app.landlock_enforcement() else {
        return;
    };
    let d = &app.dirs;
    // What the app is told.
    let env = app.probe("env", json!({}));
    assert_eq!(env["HOME"], s(&d.home()), "{env}");
    assert_eq!(env["TMP_PATH"], s(&d.tmp()), "{env}");
    assert_eq!(env["TMPDIR"], s(&d.tmp()), "{env}");
    assert_eq!(env["KEY_PATH"], s(&d.key()), "{env}");
    assert_eq!(env["MODULE_PATH"], s(&d.module()), "{env}");

    // The targets exist (a refusal is not a missing file).
    let enclave_key = d.key().join("enclave.key");
    let ratls_key = d.key().join("key.ratls.pem");
    assert!(app.node.view(&enclave_key).is_file());
    assert!(app.node.view(&ratls_key).is_file());
    let sim_files: Vec<PathBuf> = std::fs::read_dir(d.path("sim"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    assert!(
        !sim_files.is_empty(),
        "the sim backend left no file in MSE_SIM_DIR"
    );

    let mut reads = vec![
        ("read", json!({"path": s(&enclave_key)})),
        ("read", json!({"path": s(&ratls_key)})),
        ("listdir", json!({"path": s(&d.key())})),
        (
            "read",
            json!({"path": s(&d.path("outside/host-secret.txt"))}),
        ),
        ("listdir", json!({"path": s(d.root.path())})),
        ("listdir", json!({"path": s(&d.app())})),
        ("read", json!({"path": s(&repo().join("Cargo.toml"))})),
        ("read", json!({"path": "/etc/shadow"})),
    ];
    reads.extend(sim_files.iter().map(|p| ("read", json!({"path": s(p)}))));
    if Path::new("/etc/hostname").is_file() {
        reads.push(("read", json!({"path": "/etc/hostname"})));
    }
    let writes = [
        d.module().join("evil.py"),
        d.key().join("evil"),
        d.app().join("evil.py"),
        d.path("outside/new.txt"),
        d.root.path().join("new.txt"),
        PathBuf::from(format!("/var/tmp/{}", unique("mse-sandbox-test"))),
    ];
    let mut requests: Vec<(&str, Value)> = reads
        .iter()
        .map(|(op, args)| ("/probe", json!({"op": op, "args": args})))
        .collect();
    requests.extend(writes.iter().map(|p| {
        (
            "/probe",
            json!({"op": "write", "args": {"path": s(p), "data": "escape"}}),
        )
    }));
    // Positive controls: what the app may do.
    let allowed = [
        json!({"op": "read", "args": {"path": s(&d.module().join("wsgi_app.py"))}}),
        json!({"op": "read", "args": {"path": s(&d.secrets())}}),
        json!({"op": "write", "args": {"path": s(&d.home().join("a.txt")), "data": "home"}}),
        json!({"op": "write", "args": {"path": s(&d.tmp().join("b.txt")), "data": "tmp"}}),
        json!({"op": "threads", "args": {}}),
    ];
    requests.extend(allowed.iter().map(|b| ("/probe", b.clone())));
    let answers = app.post_all(&requests);

    let mut failures = Vec::new();
    for ((_, body), r) in requests
        .iter()
        .zip(&answers)
        .take(reads.len() + writes.len())
    {
        check_denied(&body.to_string(), r, &mut failures);
    }
    for ((_, body), r) in requests
        .iter()
        .zip(&answers)
        .skip(reads.len() + writes.len())
    {
        check_ok(&body.to_string(), r, &mut failures);
    }
    assert!(
        failures.is_empty(),
        "file confinement ({enforcement}):\n{}\n{}",
        failures.join("\n"),
        app.node.logs()
    );
    for p in &writes {
        assert!(
            !p.exists() && !app.node.view(p).exists(),
            "{} was written",
            p.display()
        );
    }
    assert_eq!(
        std::fs::read_to_string(app.node.view(&d.home().join("a.txt"))).unwrap(),
        "home"
    );
    app.assert_serving();
    println!("T11 checked through the node under: {enforcement}");
}

/// Every mount point under `root` listed by any process (through /proc/*/mountinfo).
fn mounts_under(root: &Path) -> Vec<String> {
    let root = s(root);
    let mut found = Vec::new();
    for proc_dir in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(info) = std::fs::read_to_string(proc_dir.path().join("mountinfo")) else {
            continue;
        };
        for line in info.lines() {
            if let Some(mount_point) = line.split(' ').nth(4)
                && mount_point.starts_with(&root)
            {
                found.push(format!("{}: {line}", proc_dir.path().display()));
            }
        }
    }
    found
}

/// Regular files directly in `dir` that contain `needle`.
fn files_here_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return vec![];
    };
    rd.flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| {
            std::fs::read(e.path()).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
        })
        .map(|e| e.path())
        .collect()
}

// THREAT: T7
#[test]
fn t7_a_marker_written_to_home_and_tmp_never_reaches_the_host_disk_and_is_gone_after_stop() {
    let Some(mut app) = Sandboxed::start("wsgi_app:app", &[], |_| {}) else {
        return;
    };
    let marker = unique("mse-t7-marker");
    let r = app.probe("marker", json!({"value": marker}));
    assert_eq!(r["ok"], true, "{r}");
    let d = &app.dirs;

    // Positive control: the node does hold the marker, in its private tmpfs.
    for p in [d.home().join("marker.txt"), d.tmp().join("marker.txt")] {
        let seen = std::fs::read_to_string(app.node.view(&p)).unwrap();
        assert!(seen.contains(&marker), "{}", p.display());
    }
    let node_mounts =
        std::fs::read_to_string(format!("/proc/{}/mountinfo", app.node.pid())).unwrap();
    for dir in [d.home(), d.tmp(), d.module(), d.key()] {
        let line = node_mounts
            .lines()
            .find(|l| l.split(' ').nth(4) == Some(&s(&dir)))
            .unwrap_or_else(|| {
                panic!(
                    "{} is not a mount point of the node:\n{node_mounts}",
                    dir.display()
                )
            });
        assert!(line.contains(" - tmpfs mse-storage "), "{line}");
    }
    let storage_line = app
        .node
        .logs()
        .lines()
        .find(|l| l.contains("storage: RAM-only tmpfs"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no storage report:\n{}", app.node.logs()));

    // The host's side: the whole test directory (app, sim, home, tmp, key, module...), the
    // host's /dev/shm, the files in the system temp directory and in the node's working directory.
    let cwd = std::fs::read_link(format!("/proc/{}/cwd", app.node.pid())).unwrap();
    let scan = |when: &str| {
        let mut hits = files_containing(d.root.path(), marker.as_bytes());
        hits.extend(files_containing(Path::new("/dev/shm"), marker.as_bytes()));
        hits.extend(files_here_containing(
            &std::env::temp_dir(),
            marker.as_bytes(),
        ));
        hits.extend(files_here_containing(&cwd, marker.as_bytes()));
        assert!(
            hits.is_empty(),
            "plaintext marker on the host {when}: {hits:?}"
        );
    };
    scan("while the node runs");
    for dir in [d.home(), d.tmp(), d.module(), d.key()] {
        let entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(
            entries.is_empty(),
            "host {} is not empty: {entries:?}",
            dir.display()
        );
    }
    assert!(
        mounts_under(d.root.path())
            .iter()
            .any(|m| m.contains("mse-storage"))
    );

    app.node.signal("TERM");
    let status = app.node.wait_exit(Duration::from_secs(40));
    assert!(status.success(), "{status}\n{}", app.node.logs());
    scan("after stop");
    let left = mounts_under(app.dirs.root.path());
    assert!(left.is_empty(), "the storage outlived the node: {left:?}");
    for dir in [
        app.dirs.home(),
        app.dirs.tmp(),
        app.dirs.module(),
        app.dirs.key(),
    ] {
        let entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(
            entries.is_empty(),
            "{} after stop: {entries:?}",
            dir.display()
        );
    }
    println!(
        "T7 checked through the node: no plaintext marker on the host, storage gone after SIGTERM ({storage_line})"
    );
}

// THREAT: T7
#[test]
fn t7_writing_past_the_quota_gives_enospc_and_the_app_keeps_answering() {
    let Some(app) = Sandboxed::start("wsgi_app:app", &["--storage-quota", "16M"], |_| {}) else {
        return;
    };
    app.node
        .wait_log(&format!("quota {} bytes", 16 << 20), Duration::from_secs(5));
    let d = &app.dirs;
    let big = d.home().join("big.bin");
    let r = app.probe("fill", json!({"path": s(&big), "limit_mb": 64}));
    assert_eq!(r["ok"], false, "64 MiB fit in a 16 MiB quota: {r}");
    assert_eq!(r["errno"], ENOSPC, "{r}");
    assert_eq!(r["type"], "OSError", "{r}");
    let written = r["written"].as_u64().unwrap();
    assert!(
        (4 << 20..=16 << 20).contains(&written),
        "wrote {written} bytes before ENOSPC"
    );
    app.assert_serving();
    // One quota for HOME and TMP_PATH together.
    let tmp_file = d.tmp().join("small.txt");
    let r = app.probe(
        "write",
        json!({"path": s(&tmp_file), "data": "x".repeat(8192)}),
    );
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["errno"], ENOSPC, "{r}");
    // Freeing space gives it back.
    let answers = app.post_all(&[
        ("/probe", json!({"op": "remove", "args": {"path": s(&big)}})),
        (
            "/probe",
            json!({"op": "write", "args": {"path": s(&tmp_file), "data": "x".repeat(8192)}}),
        ),
        ("/probe", json!({"op": "threads", "args": {}})),
    ]);
    assert_eq!(answers[0]["ok"], true, "{}", answers[0]);
    assert_eq!(answers[1]["ok"], true, "{}", answers[1]);
    check_threads("threads after ENOSPC", &answers[2]);
    app.assert_serving();
    assert!(!app.node.logs().contains("panicked"), "{}", app.node.logs());
    println!(
        "T7 quota checked through the node: ENOSPC after {written} bytes of a 16 MiB quota, app still answering"
    );
}

// THREAT: T10
// THREAT: T11
#[test]
fn t10_t11_asgi_app_is_confined_the_same_way() {
    let Some(app) = Sandboxed::start("asgi_app:app", &[], |dirs| {
        std::fs::create_dir_all(dirs.path("outside")).unwrap();
        std::fs::write(dirs.path("outside/host-secret.txt"), "host secret").unwrap();
    }) else {
        return;
    };
    let d = &app.dirs;
    let forbidden = |route: &'static str, name: &str| {
        (route, json!({"op": "forbidden", "args": {"name": name}}))
    };
    // Sync routes run in FastAPI's thread pool, `/aprobe` on the event loop's thread.
    let mut requests = vec![
        forbidden("/probe", "subprocess_run"),
        forbidden("/probe", "os_system"),
        forbidden("/probe", "os_fork"),
        forbidden("/probe", "os_posix_spawn"),
        forbidden("/probe", "multiprocessing_spawn"),
        forbidden("/probe", "process_pool_executor"),
        forbidden("/aprobe", "asyncio_subprocess"),
        forbidden("/aprobe", "subprocess_run"),
        forbidden("/aprobe", "os_fork"),
    ];
    let processes = requests.len();
    requests.extend([
        (
            "/probe",
            json!({"op": "forbidden", "args": {"name": "saved_fork"}}),
        ),
        ("/probe", json!({"op": "threads", "args": {}})),
        ("/aprobe", json!({"op": "threads", "args": {}})),
        (
            "/probe",
            json!({"op": "read", "args": {"path": s(&d.key().join("enclave.key"))}}),
        ),
        (
            "/probe",
            json!({"op": "listdir", "args": {"path": s(&d.key())}}),
        ),
        (
            "/probe",
            json!({"op": "read", "args": {"path": s(&d.path("outside/host-secret.txt"))}}),
        ),
        (
            "/probe",
            json!({"op": "write", "args": {"path": s(&d.module().join("evil.py"))}}),
        ),
        (
            "/probe",
            json!({"op": "write", "args": {"path": s(&d.path("outside/new.txt"))}}),
        ),
        (
            "/probe",
            json!({"op": "write", "args": {"path": s(&d.home().join("ok.txt"))}}),
        ),
        (
            "/probe",
            json!({"op": "write", "args": {"path": s(&d.tmp().join("ok.txt"))}}),
        ),
    ]);
    let answers = app.post_all(&requests);
    let mut failures = Vec::new();
    for ((route, body), r) in requests.iter().zip(&answers).take(processes) {
        check_clean(
            &format!("{route} {}", body["args"]["name"]),
            r,
            &mut failures,
        );
    }
    let rest = &answers[processes..];
    if !(rest[0]["ok"] == false
        && rest[0]["type"] == "PermissionError"
        && rest[0]["errno"] == EPERM)
    {
        failures.push(format!("saved os.fork: {}", rest[0]));
    }
    check_threads("threads (thread pool)", &rest[1]);
    check_threads("threads (event loop)", &rest[2]);
    let enforcement = app.landlock_enforcement();
    if enforcement.is_some() {
        for (i, what) in [
            "read KEY_PATH",
            "list KEY_PATH",
            "read outside",
            "write MODULE_PATH",
            "write outside",
        ]
        .iter()
        .enumerate()
        {
            check_denied(what, &rest[3 + i], &mut failures);
        }
    }
    check_ok("write HOME", &rest[8], &mut failures);
    check_ok("write TMP_PATH", &rest[9], &mut failures);
    assert!(
        failures.is_empty(),
        "ASGI:\n{}\n{}",
        failures.join("\n"),
        app.node.logs()
    );
    // The test venv has uvloop, so `--loop auto` ran the app on it: the guard covers its own
    // way of starting processes (libuv), checked above through `asyncio_subprocess`.
    assert!(
        app.node.logs().contains("event_loop=uvloop"),
        "expected the ASGI app on uvloop:\n{}",
        app.node.logs()
    );
    app.assert_serving();
    println!(
        "T10/T11 checked through the node (ASGI): {processes} process creations refused cleanly; files under {}",
        enforcement
            .as_deref()
            .unwrap_or("NO Landlock (file checks skipped)")
    );
}
