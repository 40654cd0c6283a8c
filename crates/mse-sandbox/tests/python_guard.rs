//! The sandbox as the node applies it, seen from Python: a child process of this binary embeds
//! CPython (the test venv's site-packages), in the node's order: private storage (with a private
//! /dev/shm), Landlock, import of a Flask app,
//! exercises what apps commonly do at run time (this is how `landlock::SYSTEM_READ` was found),
//! runs `PYTHON_GUARD`, installs the seccomp filter, and checks that every way of starting a
//! process raises the clean exception while threads keep working.
//!
//! The child is this same binary with `MSE_SANDBOX_PY_CHILD=1`, so the filter and the Landlock
//! domain never touch the test harness. Prints `N passed, N failed`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use mse_sandbox::landlock::{self, Enforcement, FsRules};
use mse_sandbox::storage::{self, StoragePlan};
use mse_sandbox::{PYTHON_GUARD, seccomp};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The test venv's site-packages (`$MSE_TEST_PYTHON`: a venv directory or its python; default
/// the repository's `.venv-test`).
fn site_packages() -> Option<PathBuf> {
    let venv = match std::env::var_os("MSE_TEST_PYTHON") {
        Some(p) => {
            let p = PathBuf::from(p);
            if p.is_file() {
                p.parent().and_then(Path::parent).map(Path::to_path_buf)
            } else {
                Some(p)
            }
        }
        None => Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv-test")),
    }?;
    let lib = std::fs::read_dir(venv.join("lib")).ok()?;
    lib.filter_map(Result::ok)
        .map(|e| e.path().join("site-packages"))
        .find(|p| p.join("flask").is_dir())
}

/// Run Python source in a fresh namespace; a failure carries the traceback.
fn run(py: Python<'_>, what: &str, code: &str) -> Result<(), String> {
    let code = CString::new(code).map_err(|e| e.to_string())?;
    let globals = PyDict::new(py);
    py.run(&code, Some(&globals), None).map_err(|e| {
        let tb = e
            .traceback(py)
            .and_then(|t| t.format().ok())
            .unwrap_or_default();
        format!("{what}: {tb}{e}")
    })
}

const APP: &str = r#"
from flask import Flask
app = Flask(__name__)

@app.get("/")
def index():
    return "hello"
"#;

/// What apps do at run time, under Landlock (before the guard and the filter).
const RUNTIME_CHECKS: &str = r#"
import os, sys, json, ssl, socket, time, zoneinfo, mimetypes, tempfile, sqlite3, uuid, hashlib
import logging, locale, getpass, random, decimal, platform, concurrent.futures
import app as user_app
import fastapi, pydantic
client = user_app.app.test_client()
assert client.get("/").data == b"hello"
assert len(os.urandom(16)) == 16 and random.SystemRandom().random() < 1
ctx = ssl.create_default_context()
assert ctx.cert_store_stats()["x509_ca"] > 0, "no CA certificates readable"
assert socket.getaddrinfo("localhost", 80)
time.localtime(); zoneinfo.ZoneInfo("Europe/Paris")
assert mimetypes.guess_type("x.json")[0] == "application/json"
assert os.cpu_count() >= 1
getpass.getuser()
home, tmp, key = os.environ["HOME"], os.environ["TMP_PATH"], os.environ["KEY_PATH"]
with tempfile.NamedTemporaryFile(dir=tmp) as f:
    f.write(b"scratch")
db = sqlite3.connect(os.path.join(home, "app.db"))
db.execute("create table t (x)"); db.execute("insert into t values (1)"); db.commit()
assert db.execute("select x from t").fetchone() == (1,)
db.close()
os.makedirs(os.path.join(home, ".cache", "lib"), exist_ok=True)
def denied(fn):
    try:
        fn()
    except PermissionError:
        return True
    return False
assert denied(lambda: open(os.path.join(key, "enclave.key"), "rb").read()), "KEY_PATH readable"
assert denied(lambda: os.listdir(key)), "KEY_PATH listable"
assert denied(lambda: open(os.path.join(os.environ["MODULE_PATH"], "x.py"), "w")), "MODULE_PATH writable"
assert denied(lambda: open("/etc/hostname").read()), "/etc/hostname readable"
assert denied(lambda: open("/var/tmp/mse-should-not-exist", "w")), "/var/tmp writable"
"#;

/// Every way of starting a process, after the guard and the filter.
const FORBIDDEN_CHECKS: &str = r#"
# The guard patches these when they are imported: here, after it ran (the node's sandbox probes
# import them before, so the other path is covered there).
assert NOT_YET_IMPORTED >= {"multiprocessing.pool", "concurrent.futures.process", "pty"}, NOT_YET_IMPORTED
import os, subprocess, multiprocessing, threading, errno, asyncio, pty, concurrent.futures
from mse_sandbox import SubprocessNotAllowedError

def blocked(what, fn):
    try:
        fn()
    except SubprocessNotAllowedError as e:
        assert isinstance(e, PermissionError) and e.errno == errno.EPERM, (what, e)
        assert "subprocesses are not allowed inside an mse enclave" in str(e), (what, str(e))
        return
    except BaseException as e:
        raise AssertionError(f"{what}: raised {type(e).__name__}: {e}, not the clean exception")
    raise AssertionError(f"{what}: was not blocked")

blocked("subprocess.run", lambda: subprocess.run(["/bin/true"]))
blocked("subprocess.run shell", lambda: subprocess.run("true", shell=True))
blocked("subprocess.check_output", lambda: subprocess.check_output(["echo", "hi"]))
blocked("subprocess.Popen close_fds=False", lambda: subprocess.Popen(["/bin/true"], close_fds=False))
blocked("subprocess.getoutput", lambda: subprocess.getoutput("true"))
blocked("os.system", lambda: os.system("true"))
blocked("os.popen", lambda: os.popen("true"))
blocked("os.fork", lambda: os.fork())
blocked("os.forkpty", lambda: os.forkpty())
blocked("pty.fork", lambda: pty.fork())
blocked("os.posix_spawn", lambda: os.posix_spawn("/bin/true", ["true"], {}))
blocked("os.posix_spawnp", lambda: os.posix_spawnp("true", ["true"], {}))
blocked("os.execv", lambda: os.execv("/bin/true", ["true"]))
blocked("os.execvpe", lambda: os.execvpe("true", ["true"], {}))
blocked("os.spawnv", lambda: os.spawnv(os.P_WAIT, "/bin/true", ["true"]))
for method in ("fork", "spawn", "forkserver"):
    ctx = multiprocessing.get_context(method)
    blocked(f"multiprocessing {method}", lambda: ctx.Process(target=print).start())
blocked("multiprocessing.Pool", lambda: multiprocessing.Pool(2))
blocked("ProcessPoolExecutor", lambda: concurrent.futures.ProcessPoolExecutor(2))
async def spawn():
    await asyncio.create_subprocess_exec("/bin/true")
blocked("asyncio.create_subprocess_exec", lambda: asyncio.run(spawn()))

# A module executed again is patched again (else Pool would create its semaphores first and
# only fail at Process.start, with another message).
import importlib, multiprocessing.pool
importlib.reload(multiprocessing.pool)
try:
    multiprocessing.pool.Pool(2)
except SubprocessNotAllowedError as e:
    assert "multiprocessing.Pool()" in str(e), str(e)
else:
    raise AssertionError("multiprocessing.Pool after a reload was not blocked")

# The guard is UX: a reference taken before it ran reaches the kernel, and the filter says no.
try:
    SAVED_FORK()
except PermissionError as e:
    assert e.errno == errno.EPERM and not isinstance(e, SubprocessNotAllowedError), e
else:
    raise AssertionError("the saved os.fork ran")
try:
    import _posixsubprocess
    SAVED_SPAWN("/bin/true", ["true"], {})
except PermissionError as e:
    assert e.errno == errno.EPERM, e
else:
    raise AssertionError("the saved posix_spawn ran")

# Threads keep working.
results = []
threads = [threading.Thread(target=lambda i=i: results.append(i * i)) for i in range(8)]
for t in threads: t.start()
for t in threads: t.join()
assert sorted(results) == [i * i for i in range(8)], results
import multiprocessing.pool
with multiprocessing.pool.ThreadPool(2) as tp:
    assert tp.map(abs, [-1, -2]) == [1, 2]
with concurrent.futures.ThreadPoolExecutor(4) as pool:
    assert list(pool.map(lambda x: x + 1, range(16))) == list(range(1, 17))
async def main():
    return await asyncio.to_thread(lambda: 42)
assert asyncio.run(main()) == 42
"#;

fn child() -> Result<(), String> {
    let base = PathBuf::from(std::env::var_os("MSE_SANDBOX_BASE").ok_or("MSE_SANDBOX_BASE unset")?);
    let site = PathBuf::from(std::env::var_os("MSE_SANDBOX_SITE").ok_or("MSE_SANDBOX_SITE unset")?);
    let (module, home, tmp, key) = (
        base.join("mse-app"),
        base.join("root"),
        base.join("tmp"),
        base.join("key"),
    );
    let shm = PathBuf::from(storage::SHM_DIR);

    // The node's order: private storage first (single-threaded), then the code and keys go in.
    let plan = StoragePlan {
        dirs: vec![
            home.clone(),
            tmp.clone(),
            module.clone(),
            key.clone(),
            shm.clone(),
        ],
        quota_bytes: 256 << 20,
    };
    let report = storage::setup(&plan).map_err(|e| e.to_string())?;
    println!("{report}");
    std::fs::write(module.join("app.py"), APP).map_err(|e| e.to_string())?;
    std::fs::write(key.join("enclave.key"), [1_u8; 32]).map_err(|e| e.to_string())?;

    Python::initialize();
    // The runtime roots come from the interpreter itself, before confinement.
    let roots: Vec<PathBuf> = Python::attach(|py| -> PyResult<Vec<PathBuf>> {
        let sys = py.import("sys")?;
        let mut roots = Vec::new();
        for attr in ["prefix", "base_prefix", "exec_prefix", "base_exec_prefix"] {
            roots.push(PathBuf::from(sys.getattr(attr)?.extract::<String>()?));
        }
        Ok(roots)
    })
    .map_err(|e| e.to_string())?;
    let mut runtime = roots;
    runtime.push(site.clone());
    runtime.sort();
    runtime.dedup();

    let mut rules = FsRules::for_app(&module, &runtime, &[], &home, &tmp);
    rules.read_write.push(shm);
    if rules.reaches(&key) {
        return Err(format!(
            "KEY_PATH {} is reachable by the rules",
            key.display()
        ));
    }
    let report = landlock::confine(&rules).map_err(|e| e.to_string())?;
    println!("{report}");
    if report.enforcement == Enforcement::None {
        return Err("Landlock not enforced: this test checks files under Landlock".into());
    }

    Python::attach(|py| -> Result<(), String> {
        let setup = format!(
            "import os, sys\nsys.path[:0] = [{module:?}, {site:?}]\nos.environ.update(HOME={home:?}, TMP_PATH={tmp:?}, KEY_PATH={key:?}, MODULE_PATH={module:?})",
            module = module.display().to_string(),
            site = site.display().to_string(),
            home = home.display().to_string(),
            tmp = tmp.display().to_string(),
            key = key.display().to_string(),
        );
        run(py, "setup", &setup)?;
        run(py, "runtime under Landlock", RUNTIME_CHECKS)?;
        // References an app could have taken at import time, before the guard.
        run(
            py,
            "save",
            "import os, sys, builtins\nbuiltins.SAVED_FORK = os.fork\nbuiltins.SAVED_SPAWN = os.posix_spawn\n\
             lazy = ('multiprocessing.process', 'multiprocessing.pool', 'concurrent.futures.process', 'pty')\n\
             builtins.NOT_YET_IMPORTED = {m for m in lazy if m not in sys.modules}",
        )?;
        run(py, "guard", PYTHON_GUARD)?;
        run(py, "guard twice", PYTHON_GUARD)?;
        Ok(())
    })?;
    let report = seccomp::install().map_err(|e| e.to_string())?;
    println!("{report}");
    Python::attach(|py| run(py, "forbidden calls", FORBIDDEN_CHECKS))?;
    println!("all forbidden calls raised SubprocessNotAllowedError; threads work");
    Ok(())
}

fn main() -> ExitCode {
    if std::env::var_os("MSE_SANDBOX_PY_CHILD").is_some() {
        return match child() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    let name = "t10_t11_t7_python_app_sandboxed";
    let Some(site) = site_packages() else {
        if std::env::var("MSE_TEST_REQUIRE_ALL").as_deref() == Ok("1") {
            println!(
                "test {name} ... FAILED: the Python test environment is missing (run scripts/setup-test-env or set MSE_TEST_PYTHON)"
            );
            println!("0 passed, 1 failed");
            return ExitCode::FAILURE;
        }
        println!(
            "SKIPPED: {name}: no Python test environment (run scripts/setup-test-env or set MSE_TEST_PYTHON)"
        );
        println!("0 passed, 0 failed, 1 skipped");
        return ExitCode::SUCCESS;
    };
    let outcome = (|| -> Result<String, String> {
        let base = tempfile::tempdir().map_err(|e| e.to_string())?;
        // A world-traversable base, so the storage step also works for a non-root runner
        // (through a user namespace).
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755))
                .map_err(|e| e.to_string())?;
        }
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let out = Command::new(exe)
            .env("MSE_SANDBOX_PY_CHILD", "1")
            .env("MSE_SANDBOX_BASE", base.path())
            .env("MSE_SANDBOX_SITE", &site)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env_remove("PYTHONPATH")
            .env_remove("PYTHONHOME")
            .output()
            .map_err(|e| e.to_string())?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            Ok(text)
        } else {
            Err(format!("child failed ({}):\n{text}", out.status))
        }
    })();
    match outcome {
        Ok(out) => {
            println!("test {name} ... ok");
            for l in out.lines() {
                println!("    {l}");
            }
            println!("1 passed, 0 failed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("test {name} ... FAILED\n{e}");
            println!("0 passed, 1 failed");
            ExitCode::FAILURE
        }
    }
}
