//! Confinement scenarios, each in a child process of this binary: a seccomp filter, a Landlock
//! domain or a mount namespace is irreversible and must never leak into the test harness, and
//! several steps need a single-threaded process, which libtest's runner is not.
//!
//! The parent runs every scenario (or those whose name contains the first argument) as
//! `$0` with `MSE_SANDBOX_SCENARIO=<name>`, checks its exit status and output, and prints the
//! `N passed, N failed` line. Linux only (as root for the privileged storage scenarios).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use mse_sandbox::landlock::{Enforcement, FsRules};
use mse_sandbox::storage::{self, Namespace, Protection, StoragePlan};
use mse_sandbox::{Error, limits, seccomp};
use nix::errno::Errno;

type Outcome = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!("{} (line {})", format!($($fmt)+), line!()));
        }
    };
}

fn errno_of(e: &std::io::Error) -> Option<Errno> {
    e.raw_os_error().map(Errno::from_raw)
}

fn require_all() -> bool {
    std::env::var("MSE_TEST_REQUIRE_ALL").as_deref() == Ok("1")
}

// ------------------------------------------------------------------------------------------------
// Children (run in their own process, single-threaded at start)
// ------------------------------------------------------------------------------------------------

fn spawn_true() -> std::io::Result<std::process::Child> {
    Command::new("/bin/true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

/// Runs a thread now and joins it: threads must keep working under the policy.
fn thread_works() -> Outcome {
    let h = std::thread::Builder::new()
        .name("after-filter".into())
        .spawn(|| 6 * 7);
    let h = h.map_err(|e| format!("thread creation failed under the policy: {e}"))?;
    let v = h.join().map_err(|_| "thread panicked".to_owned())?;
    ensure!(v == 42, "thread result {v}");
    Ok(())
}

fn child_seccomp_blocks_process_creation() -> Outcome {
    ensure!(spawn_true().is_ok(), "spawning works before the filter");
    // A thread that exists before the filter must be covered too (TSYNC).
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let early = std::thread::spawn(move || -> Option<Errno> {
        go_rx.recv().ok()?;
        spawn_true().err().as_ref().and_then(errno_of)
    });

    let report = seccomp::install().map_err(|e| e.to_string())?;
    println!("{report}");
    ensure!(report.all_threads, "not all threads");
    ensure!(
        report.denied.contains(&"execve"),
        "execve not in the report"
    );

    // posix_spawn path of std: clone3(CLONE_VM|CLONE_VFORK) -> ENOSYS, then clone -> EPERM.
    let spawned = spawn_true();
    ensure!(
        spawned.as_ref().err().and_then(errno_of) == Some(Errno::EPERM),
        "spawn after filter: {spawned:?}"
    );
    // Same through the fork+exec path std uses when a pre_exec-free but uid-changing spawn is asked.
    let with_groups = {
        use std::os::unix::process::CommandExt;
        Command::new("/bin/true")
            .process_group(0)
            .stdin(Stdio::null())
            .spawn()
    };
    ensure!(
        with_groups.as_ref().err().and_then(errno_of) == Some(Errno::EPERM),
        "spawn in process group: {with_groups:?}"
    );

    go_tx.send(()).map_err(|e| e.to_string())?;
    let early_errno = early
        .join()
        .map_err(|_| "early thread panicked".to_owned())?;
    ensure!(
        early_errno == Some(Errno::EPERM),
        "thread created before the filter could spawn: {early_errno:?}"
    );

    let exec = nix::unistd::execv(c"/bin/true", &[c"true"]);
    ensure!(exec == Err(Errno::EPERM), "execve: {exec:?}");
    let exe = std::fs::File::open("/bin/true").map_err(|e| e.to_string())?;
    {
        use std::os::fd::AsFd;
        let fexec = nix::unistd::fexecve(exe.as_fd(), &[c"true"], &[c"A=1"]);
        ensure!(
            fexec == Err(Errno::EPERM),
            "fexecve (execveat AT_EMPTY_PATH): {fexec:?}"
        );
    }
    let trace = nix::sys::ptrace::attach(nix::unistd::getppid());
    ensure!(trace == Err(Errno::EPERM), "ptrace attach: {trace:?}");
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mnt = nix::mount::mount(
        Some("x"),
        dir.path(),
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    );
    if mnt.is_ok() {
        let _ = nix::mount::umount2(dir.path(), nix::mount::MntFlags::MNT_DETACH);
    }
    ensure!(mnt == Err(Errno::EPERM), "mount: {mnt:?}");
    let uns = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS);
    ensure!(uns == Err(Errno::EPERM), "unshare: {uns:?}");
    let persona = nix::sys::personality::set(nix::sys::personality::Persona::ADDR_NO_RANDOMIZE);
    ensure!(
        persona == Err(Errno::EPERM),
        "personality(ADDR_NO_RANDOMIZE): {persona:?}"
    );
    ensure!(
        nix::sys::personality::get().is_ok(),
        "personality query must stay allowed"
    );
    let dev = nix::sys::stat::mknod(
        &dir.path().join("mem"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        nix::sys::stat::makedev(1, 1),
    );
    ensure!(dev == Err(Errno::EPERM), "mknod char device: {dev:?}");
    let fifo = nix::unistd::mkfifo(
        &dir.path().join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    );
    ensure!(fifo.is_ok(), "FIFOs must stay allowed: {fifo:?}");
    let raise = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, 64, 64);
    ensure!(raise == Err(Errno::EPERM), "setrlimit: {raise:?}");
    ensure!(
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).is_ok(),
        "getrlimit must stay allowed"
    );

    for _ in 0..4 {
        thread_works()?;
    }
    println!(
        "fork/spawn/exec/fexecve/ptrace/mount/unshare/personality/mknod/setrlimit denied; threads work"
    );
    Ok(())
}

fn child_storage_refuses_multithreaded() -> Outcome {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || rx.recv().is_ok());
    let r = storage::setup(&StoragePlan {
        dirs: vec![dir.path().join("home")],
        quota_bytes: 1 << 20,
    });
    let _ = tx.send(());
    let _ = t.join();
    ensure!(
        matches!(r, Err(Error::NotSingleThreaded { threads: 2, .. })),
        "{r:?}"
    );
    Ok(())
}

fn child_storage_without_privilege_fails_closed() -> Outcome {
    // The seccomp policy denies unshare: the same as a node without CAP_SYS_ADMIN and without
    // user namespaces. Setup must fail loudly, not continue on the host's disk.
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    seccomp::install().map_err(|e| e.to_string())?;
    let r = storage::setup(&StoragePlan {
        dirs: vec![dir.path().join("home")],
        quota_bytes: 1 << 20,
    });
    ensure!(matches!(r, Err(Error::NoPrivateNamespace { .. })), "{r:?}");
    println!("{}", r.err().map(|e| e.to_string()).unwrap_or_default());
    Ok(())
}

fn plan_in(base: &Path, quota: u64) -> (StoragePlan, [PathBuf; 5]) {
    let home = base.join("root");
    let dirs = [
        home.clone(),
        base.join("tmp"),
        base.join("mse-app"),
        base.join("key"),
        home.join(".cache/mse"),
    ];
    (
        StoragePlan {
            dirs: dirs.to_vec(),
            quota_bytes: quota,
        },
        dirs,
    )
}

fn base_dir() -> Result<PathBuf, String> {
    std::env::var_os("MSE_SANDBOX_BASE")
        .map(PathBuf::from)
        .ok_or_else(|| "MSE_SANDBOX_BASE unset".to_owned())
}

/// Sets up storage, writes markers everywhere, tells the parent, and waits for "exit" or "teardown".
fn child_storage_marker() -> Outcome {
    let base = base_dir()?;
    let marker = std::env::var("MSE_SANDBOX_MARKER").map_err(|e| e.to_string())?;
    let (plan, [home, tmp, app, key, secrets]) = plan_in(&base, 64 << 20);
    let report = storage::setup(&plan).map_err(|e| e.to_string())?;
    println!("{report}");
    ensure!(report.protection == Protection::TmpfsNoswap, "{report:?}");
    ensure!(report.namespace == Namespace::Privileged, "{report:?}");
    ensure!(
        report.created_on_host.len() == 4,
        "created {:?}",
        report.created_on_host
    );
    for d in [&home, &tmp, &app, &key, &secrets] {
        ensure!(storage::is_tmpfs(d), "{} is not on tmpfs", d.display());
    }
    // A megabyte of marker in each place, flushed: if it were on a disk, it would be there now.
    let blob = marker.repeat((1 << 20) / marker.len());
    for (d, name) in [
        (&home, "date.txt"),
        (&tmp, "scratch.bin"),
        (&app, "app.py"),
        (&key, "enclave.key"),
        (&secrets, "secrets.json"),
    ] {
        let path = d.join(name);
        let mut f = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        f.write_all(blob.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| e.to_string())?;
    }
    println!("READY");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    if line.trim() == "teardown" {
        storage::teardown(&report).map_err(|e| e.to_string())?;
        ensure!(
            !home.join("date.txt").exists(),
            "the marker is still reachable after teardown"
        );
        ensure!(
            !base.join("root").exists(),
            "teardown left the mount point it created"
        );
        println!("TORN DOWN");
    }
    Ok(())
}

fn child_storage_quota() -> Outcome {
    let base = base_dir()?;
    let (plan, [home, tmp, ..]) = plan_in(&base, 1 << 20);
    let report = storage::setup(&plan).map_err(|e| e.to_string())?;
    println!("{report}");
    ensure!(
        report.quota_bytes == 1 << 20,
        "quota {}",
        report.quota_bytes
    );
    let big = home.join("big.bin");
    let mut f = std::fs::File::create(&big).map_err(|e| e.to_string())?;
    let chunk = vec![0x5a_u8; 64 << 10];
    let mut written = 0_u64;
    let err = loop {
        match f.write_all(&chunk) {
            Ok(()) => written += chunk.len() as u64,
            Err(e) => break e,
        }
        ensure!(
            written <= 4 << 20,
            "wrote {written} bytes past a 1 MiB quota"
        );
    };
    ensure!(
        errno_of(&err) == Some(Errno::ENOSPC),
        "expected ENOSPC, got {err}"
    );
    println!("ENOSPC after {written} bytes");
    // The quota is shared: TMP is full as well ...
    let other = std::fs::write(tmp.join("more.bin"), &chunk);
    ensure!(
        other.as_ref().err().and_then(errno_of) == Some(Errno::ENOSPC),
        "TMP shares the quota: {other:?}"
    );
    // ... and the process goes on: free space and write again.
    drop(f);
    std::fs::remove_file(&big).map_err(|e| e.to_string())?;
    std::fs::write(tmp.join("after.txt"), b"still alive")
        .map_err(|e| format!("write after freeing: {e}"))?;
    thread_works()
}

fn child_storage_user_namespace() -> Outcome {
    let base = base_dir()?;
    // Become an ordinary user: no CAP_SYS_ADMIN, so setup must go through a user namespace.
    let nobody = nix::unistd::Uid::from_raw(65534);
    nix::unistd::setgroups(&[]).map_err(|e| e.to_string())?;
    nix::unistd::setgid(nix::unistd::Gid::from_raw(65534)).map_err(|e| e.to_string())?;
    nix::unistd::setuid(nobody).map_err(|e| e.to_string())?;
    let (plan, [home, ..]) = plan_in(&base, 8 << 20);
    match storage::setup(&plan) {
        Ok(report) => {
            println!("{report}");
            ensure!(report.namespace == Namespace::UserNamespace, "{report:?}");
            // Unprivileged tmpfs mounts may not use noswap; this is only acceptable without swap.
            ensure!(
                report.protection == Protection::TmpfsHostWithoutSwap,
                "{report:?}"
            );
            ensure!(storage::is_tmpfs(&home), "home not on tmpfs");
            std::fs::write(home.join("x"), b"x").map_err(|e| e.to_string())?;
            println!("SWAP=none");
            Ok(())
        }
        Err(Error::Swappable { detail }) => {
            println!("SWAP=active: refused as expected: {detail}");
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

fn child_landlock() -> Outcome {
    let base = base_dir()?;
    let (app, home, tmp, key, outside) = (
        base.join("mse-app"),
        base.join("root"),
        base.join("tmp"),
        base.join("key"),
        base.join("outside"),
    );
    let rules = FsRules::for_app(&app, &[], &[], &home, &tmp);
    ensure!(!rules.reaches(&key), "KEY_PATH reachable by the rules");
    // A thread born before confinement: not covered without TSYNC (Landlock ABI < 8).
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let key_file = key.join("enclave.key");
    let early_key = key_file.clone();
    let early =
        std::thread::spawn(move || go_rx.recv().is_ok() && std::fs::read(&early_key).is_ok());

    let report = mse_sandbox::landlock::confine(&rules).map_err(|e| e.to_string())?;
    println!("{report}");
    match report.enforcement {
        Enforcement::None if require_all() => {
            return Err(format!("Landlock is required but not enforced: {report}"));
        }
        Enforcement::None => {
            println!("SKIPPED: Landlock not available on this kernel");
            let _ = go_tx.send(());
            let _ = early.join();
            return Ok(());
        }
        Enforcement::Full | Enforcement::Partial => {}
    }
    println!("CHECKED-ABI {}", report.abi.unwrap_or(0));

    let denied =
        |r: std::io::Result<()>| r.as_ref().err().and_then(errno_of) == Some(Errno::EACCES);
    ensure!(
        std::fs::read(app.join("app.py")).is_ok(),
        "module path unreadable"
    );
    ensure!(
        denied(std::fs::write(app.join("new.py"), b"x")),
        "module path writable"
    );
    ensure!(
        denied(
            std::fs::OpenOptions::new()
                .append(true)
                .open(app.join("app.py"))
                .map(drop)
        ),
        "code file writable"
    );
    ensure!(
        std::fs::write(home.join("date.txt"), b"now").is_ok(),
        "HOME not writable"
    );
    ensure!(
        std::fs::create_dir_all(home.join(".cache/lib")).is_ok(),
        "HOME subdirs"
    );
    ensure!(
        std::fs::rename(home.join("date.txt"), tmp.join("moved.txt")).is_ok(),
        "rename HOME -> TMP"
    );
    ensure!(
        denied(std::fs::read(&key_file).map(drop)),
        "KEY_PATH readable"
    );
    ensure!(
        denied(std::fs::read_dir(&key).map(drop)),
        "KEY_PATH listable"
    );
    ensure!(
        denied(std::fs::read(outside.join("data")).map(drop)),
        "file outside the roots readable"
    );
    ensure!(
        denied(std::fs::write(outside.join("new"), b"x")),
        "write outside the roots"
    );
    ensure!(
        denied(std::fs::write(base.join("new"), b"x")),
        "write in the parent of the roots"
    );
    ensure!(
        denied(std::fs::read("/etc/hostname").map(drop)),
        "/etc/hostname is not in the system set"
    );
    ensure!(
        std::fs::read("/etc/hosts").is_ok(),
        "/etc/hosts is in the system set"
    );
    let mut rnd = [0_u8; 16];
    let urandom = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut rnd));
    ensure!(
        urandom.is_ok(),
        "/dev/urandom is in the system set: {urandom:?}"
    );
    // Threads born after confinement inherit it.
    let child_sees_key = std::thread::spawn(move || std::fs::read(&key_file).is_ok()).join();
    ensure!(
        child_sees_key.ok() == Some(false),
        "a thread created after confine reads KEY_PATH"
    );
    go_tx.send(()).map_err(|e| e.to_string())?;
    let early_read = early
        .join()
        .map_err(|_| "early thread panicked".to_owned())?;
    ensure!(
        early_read != report.all_threads,
        "pre-existing thread read KEY_PATH={early_read} with all_threads={}",
        report.all_threads
    );
    println!(
        "TSYNC {}",
        if report.all_threads {
            "yes"
        } else {
            "no: threads created before confine are not covered"
        }
    );
    Ok(())
}

fn child_limits() -> Outcome {
    use nix::sys::resource::{Resource, getrlimit};
    let report = limits::apply(&limits::Limits {
        memory_bytes: Some(256 << 20),
        cpu_seconds: Some(3600),
    })
    .map_err(|e| e.to_string())?;
    println!("{report}");
    ensure!(report.core_dumps_disabled, "core dumps");
    ensure!(
        getrlimit(Resource::RLIMIT_CORE) == Ok((0, 0)),
        "RLIMIT_CORE"
    );
    ensure!(nix::sys::prctl::get_dumpable() == Ok(false), "dumpable");
    ensure!(
        getrlimit(Resource::RLIMIT_CPU) == Ok((3600, 3605)),
        "RLIMIT_CPU {:?}",
        getrlimit(Resource::RLIMIT_CPU)
    );
    match &report.memory {
        limits::MemoryLimit::RlimitData { .. } => {
            ensure!(
                getrlimit(Resource::RLIMIT_DATA) == Ok((256 << 20, 256 << 20)),
                "RLIMIT_DATA"
            );
            // The app gets an allocation failure, not the machine's memory.
            let mut v: Vec<u8> = Vec::new();
            ensure!(
                v.try_reserve_exact(512 << 20).is_err(),
                "512 MiB allocated under a 256 MiB limit"
            );
            ensure!(
                v.try_reserve_exact(16 << 20).is_ok(),
                "16 MiB refused under a 256 MiB limit"
            );
        }
        limits::MemoryLimit::CgroupV2 { cgroup, .. } => {
            let max =
                std::fs::read_to_string(cgroup.join("memory.max")).map_err(|e| e.to_string())?;
            ensure!(
                max.trim() == (256_u64 << 20).to_string(),
                "memory.max {max}"
            );
        }
        other => return Err(format!("unexpected {other:?}")),
    }
    thread_works()
}

fn run_child(name: &str) -> Outcome {
    match name {
        "t10_seccomp_blocks_process_creation" => child_seccomp_blocks_process_creation(),
        "t7_storage_refuses_multithreaded" => child_storage_refuses_multithreaded(),
        "t7_storage_without_privilege_fails_closed" => {
            child_storage_without_privilege_fails_closed()
        }
        "t7_storage_marker_teardown" | "t7_storage_marker_killed" => child_storage_marker(),
        "t7_storage_quota_enospc" => child_storage_quota(),
        "t7_storage_user_namespace" => child_storage_user_namespace(),
        "t11_landlock_confines_files" => child_landlock(),
        "limits_apply" => child_limits(),
        other => Err(format!("unknown scenario {other}")),
    }
}

// ------------------------------------------------------------------------------------------------
// Parent
// ------------------------------------------------------------------------------------------------

fn child(name: &str) -> Command {
    let mut c =
        Command::new(std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe")));
    c.env("MSE_SANDBOX_SCENARIO", name).stdin(Stdio::null());
    c
}

fn run_simple(name: &str, base: Option<&Path>) -> Result<String, String> {
    let mut c = child(name);
    if let Some(b) = base {
        c.env("MSE_SANDBOX_BASE", b);
    }
    let out = c.output().map_err(|e| format!("spawn: {e}"))?;
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
}

/// Every file under `dir` (not following symlinks), for the plaintext scan.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => files_under(&p, out),
                Ok(t) if t.is_file() => out.push(p),
                _ => {}
            }
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn mnt_ns(pid: u32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok()
}

fn processes_in_ns(ns: &Path) -> Vec<String> {
    let mut pids = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.chars().all(|c| c.is_ascii_digit())
                && mnt_ns(name.parse().unwrap_or(0)).as_deref() == Some(ns)
            {
                pids.push(name);
            }
        }
    }
    pids
}

/// The storage scenario seen from the host: while the child runs, nothing on the host's disk
/// holds the marker (the mount points stay empty), yet the child's namespace does; after it stops
/// (cleanly or killed), no process is left in that namespace, so its tmpfs is gone.
fn parent_storage_marker(name: &str, kill: bool) -> Result<String, String> {
    let base = tempfile::Builder::new()
        .prefix("mse-storage-test")
        .tempdir_in("/var/tmp")
        .map_err(|e| e.to_string())?;
    let marker = format!(
        "MSE-PLAINTEXT-MARKER-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    );
    let mut c = child(name);
    c.env("MSE_SANDBOX_BASE", base.path())
        .env("MSE_SANDBOX_MARKER", &marker)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut proc = c.spawn().map_err(|e| e.to_string())?;
    let pid = proc.id();
    let stdout = proc.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut log = String::new();
    let ready = loop {
        match lines.next() {
            Some(Ok(l)) => {
                log.push_str(&l);
                log.push('\n');
                if l == "READY" {
                    break true;
                }
            }
            _ => break false,
        }
    };
    let result = (|| -> Result<(), String> {
        ensure!(ready, "child did not get ready:\n{log}");
        let ns = mnt_ns(pid).ok_or("no namespace")?;
        ensure!(
            mnt_ns(std::process::id()).as_ref() != Some(&ns),
            "child shares our mount namespace"
        );
        // 1. The host's view: the directories exist, empty; no file anywhere under base, nor in
        //    the staging directory, holds the marker.
        let mut files = Vec::new();
        files_under(base.path(), &mut files);
        files_under(Path::new("/mnt"), &mut files);
        for f in &files {
            let bytes = std::fs::read(f).unwrap_or_default();
            ensure!(
                !contains(&bytes, marker.as_bytes()),
                "plaintext marker found on the host in {}",
                f.display()
            );
        }
        ensure!(
            files.iter().all(|f| !f.starts_with(base.path())),
            "files appeared on the host: {files:?}"
        );
        ensure!(
            base.path().join("root").is_dir(),
            "mount point missing on the host"
        );
        // 2. The child's view (through its namespace): the data is there, on a tmpfs with noswap.
        let inside = std::fs::read(format!(
            "/proc/{pid}/root{}/root/date.txt",
            base.path().display()
        ))
        .map_err(|e| e.to_string())?;
        ensure!(
            contains(&inside, marker.as_bytes()),
            "marker missing inside the namespace"
        );
        let mountinfo =
            std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).map_err(|e| e.to_string())?;
        let line = mountinfo
            .lines()
            .find(|l| l.contains(&format!("{}/root ", base.path().display())))
            .unwrap_or("");
        ensure!(
            line.contains(" - tmpfs ") && line.contains("noswap"),
            "mount: {line}"
        );
        // 3. Stop it.
        let mut stdin = proc.stdin.take().ok_or("no stdin")?;
        if kill {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            )
            .map_err(|e| e.to_string())?;
        } else {
            writeln!(stdin, "teardown").map_err(|e| e.to_string())?;
        }
        drop(stdin);
        let status = proc.wait().map_err(|e| e.to_string())?;
        for l in lines.map_while(Result::ok) {
            log.push_str(&l);
            log.push('\n');
        }
        if kill {
            ensure!(!status.success(), "child was killed");
        } else {
            ensure!(
                status.success() && log.contains("TORN DOWN"),
                "teardown failed ({status}):\n{log}"
            );
            ensure!(
                !base.path().join("root").exists(),
                "mount point left on the host"
            );
        }
        // 4. Nobody is left in the namespace: the kernel has freed it and its tmpfs.
        let left = processes_in_ns(&ns);
        ensure!(
            left.is_empty(),
            "processes still in the storage namespace: {left:?}"
        );
        let mut after = Vec::new();
        files_under(base.path(), &mut after);
        ensure!(
            after.is_empty(),
            "files left on the host after stop: {after:?}"
        );
        Ok(())
    })();
    let _ = proc.kill();
    let _ = proc.wait();
    result
        .map(|()| {
            format!(
                "{log}scanned the host side: no plaintext marker; namespace gone after {}",
                if kill { "SIGKILL" } else { "teardown" }
            )
        })
        .map_err(|e| format!("{e}\n{log}"))
}

fn parent_landlock() -> Result<String, String> {
    let base = tempfile::tempdir().map_err(|e| e.to_string())?;
    for d in ["mse-app", "root", "tmp", "key", "outside"] {
        std::fs::create_dir(base.path().join(d)).map_err(|e| e.to_string())?;
    }
    std::fs::write(base.path().join("mse-app/app.py"), b"app = None").map_err(|e| e.to_string())?;
    std::fs::write(base.path().join("key/enclave.key"), [7_u8; 32]).map_err(|e| e.to_string())?;
    std::fs::write(base.path().join("outside/data"), b"other").map_err(|e| e.to_string())?;
    run_simple("t11_landlock_confines_files", Some(base.path()))
}

fn parent_user_namespace() -> Result<String, String> {
    let base = tempfile::tempdir().map_err(|e| e.to_string())?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o777))
            .map_err(|e| e.to_string())?;
    }
    let out = run_simple("t7_storage_user_namespace", Some(base.path()))?;
    let swap = std::fs::read_to_string("/proc/swaps")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .any(|l| !l.trim().is_empty());
    ensure!(
        out.contains(if swap { "SWAP=active" } else { "SWAP=none" }),
        "swap state mismatch: {out}"
    );
    Ok(out)
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn main() -> ExitCode {
    if let Ok(name) = std::env::var("MSE_SANDBOX_SCENARIO") {
        return match run_child(&name) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("scenario {name} failed: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_default();
    type Scenario = (&'static str, bool, fn() -> Result<String, String>);
    let scenarios: &[Scenario] = &[
        ("t10_seccomp_blocks_process_creation", false, || {
            run_simple("t10_seccomp_blocks_process_creation", None)
        }),
        ("t11_landlock_confines_files", false, parent_landlock),
        ("limits_apply", false, || run_simple("limits_apply", None)),
        ("t7_storage_refuses_multithreaded", false, || {
            run_simple("t7_storage_refuses_multithreaded", None)
        }),
        ("t7_storage_without_privilege_fails_closed", false, || {
            run_simple("t7_storage_without_privilege_fails_closed", None)
        }),
        ("t7_storage_marker_teardown", true, || {
            parent_storage_marker("t7_storage_marker_teardown", false)
        }),
        ("t7_storage_marker_killed", true, || {
            parent_storage_marker("t7_storage_marker_killed", true)
        }),
        ("t7_storage_quota_enospc", true, || {
            let base = tempfile::tempdir().map_err(|e| e.to_string())?;
            run_simple("t7_storage_quota_enospc", Some(base.path()))
        }),
        ("t7_storage_user_namespace", true, parent_user_namespace),
    ];
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for (name, needs_root, run) in scenarios {
        if !name.contains(&filter) {
            continue;
        }
        if *needs_root && !is_root() {
            if require_all() {
                println!("test {name} ... FAILED: needs root (MSE_TEST_REQUIRE_ALL=1)");
                failed += 1;
            } else {
                println!("SKIPPED: {name}: needs root");
                skipped += 1;
            }
            continue;
        }
        match run() {
            Ok(out) => {
                println!("test {name} ... ok");
                for l in out.lines().filter(|l| !l.is_empty()) {
                    println!("    {l}");
                }
                passed += 1;
            }
            Err(e) => {
                println!("test {name} ... FAILED\n{e}");
                failed += 1;
            }
        }
    }
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
