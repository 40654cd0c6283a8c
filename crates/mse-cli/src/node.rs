//! Running a local `mse-node`: finding the binary and the runtime it measures, its environment,
//! and starting it under a supervisor (`mse __supervise`) so that no node outlives a deploy
//! that died before configuring it.
//!
//! Process tree: `mse deploy` → `mse __supervise` (own session, reads a pipe from deploy) →
//! `mse __supervise --exec` (sets its parent-death signal, limits, then `exec`s `mse-node`).
//! The pipe closing before deploy wrote `configured` means deploy died: the supervisor stops
//! the node and wipes its storage. Killing the supervisor kills the node (parent-death signal).

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// The line deploy writes to the supervisor once the node holds its configuration.
pub const CONFIGURED: &str = "configured";
/// Where the supervisor records how the node ended.
pub const EXIT_FILE: &str = "node.exit";

/// `--node`, else `$MSE_NODE`, else `mse-node` next to this `mse`, else on `PATH`.
pub fn find_node_binary(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    let candidate = if let Some(p) = explicit {
        Some(p.to_path_buf())
    } else if let Some(p) = std::env::var_os("MSE_NODE").filter(|p| !p.is_empty()) {
        Some(PathBuf::from(p))
    } else {
        let sibling = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(|d| d.join("mse-node")));
        sibling
            .filter(|p| p.is_file())
            .or_else(|| on_path("mse-node"))
    };
    let Some(path) = candidate else {
        bail!(
            "mse-node not found: build it (`cargo build -p mse-node`), put it next to mse or on PATH, or pass --node / set MSE_NODE"
        );
    };
    // Measured by path content; canonical so the measured file is the executed one.
    path.canonicalize()
        .with_context(|| format!("node binary {}: not found", path.display()))
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// The libpython a node binary links, read from its ELF dynamic section.
#[derive(Debug, Clone)]
pub struct LinkedPython {
    /// `3.11` from `libpython3.11.so.1.0`.
    pub version: String,
    /// Its RUNPATH/RPATH entries, in order.
    pub search_dirs: Vec<PathBuf>,
    /// The entry that holds the library: the interpreter's `lib` folder, which the node
    /// measures besides site-packages (its build bakes in the same folder).
    pub libdir: Option<PathBuf>,
}

/// `None` when the binary is not a 64-bit ELF or does not link libpython dynamically.
pub fn linked_python(node_binary: &Path) -> anyhow::Result<Option<LinkedPython>> {
    use object::read::elf::{Dyn as _, ElfFile64};
    // Read on demand: a debug node binary is hundreds of MB, the dynamic section a few KB.
    let file = std::fs::File::open(node_binary)
        .with_context(|| format!("reading {}", node_binary.display()))?;
    let data = object::read::ReadCache::new(file);
    let Ok(elf) = ElfFile64::<object::Endianness, _>::parse(&data) else {
        return Ok(None);
    };
    let endian = elf.endian();
    let sections = elf.elf_section_table();
    let Some((dyns, link)) = sections.dynamic(endian, &data)? else {
        return Ok(None);
    };
    let strings = sections.strings(endian, &data, link)?;
    let origin = node_binary
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut libpython = None;
    let mut dirs = Vec::new();
    for d in dyns {
        if !d.is_string(endian) {
            continue;
        }
        let Some(offset) = d.val32(endian) else {
            continue;
        };
        let value = String::from_utf8_lossy(
            strings
                .get(offset)
                .map_err(|()| anyhow::anyhow!("bad dynamic string"))?,
        )
        .into_owned();
        match d.tag32(endian) {
            Some(object::elf::DT_NEEDED) if value.starts_with("libpython") => {
                libpython = Some(value)
            }
            Some(object::elf::DT_RUNPATH | object::elf::DT_RPATH) => {
                let expanded = value.replace("$ORIGIN", &origin.to_string_lossy());
                dirs.extend(
                    expanded
                        .split(':')
                        .filter(|p| !p.is_empty())
                        .map(PathBuf::from),
                );
            }
            _ => {}
        }
    }
    let Some(lib) = libpython else {
        return Ok(None);
    };
    let Some(version) = lib
        .strip_prefix("libpython")
        .and_then(|r| r.split_once(".so"))
        .map(|(v, _)| v)
    else {
        return Ok(None);
    };
    let version = version.trim_end_matches(['d', 'm', 't']).to_owned();
    let libdir = dirs.iter().find(|d| d.join(&lib).exists()).cloned();
    Ok(Some(LinkedPython {
        version,
        search_dirs: dirs,
        libdir,
    }))
}

/// The runtime roots the node measures, in its order (`sys.path` order): the interpreter's
/// standard library (`<libdir>/python3.X`) entry by entry, then the runtime's site-packages;
/// the node lists them with the same function ([`mse_measure::python_runtime_roots`]).
pub fn runtime_roots(
    site_packages: &Path,
    linked: Option<&LinkedPython>,
) -> anyhow::Result<Vec<PathBuf>> {
    let stdlib = linked.and_then(|l| {
        l.libdir
            .as_ref()
            .map(|d| d.join(format!("python{}", l.version)))
    });
    Ok(mse_measure::python_runtime_roots(
        stdlib.as_deref(),
        &[site_packages.to_path_buf()],
    )?)
}

/// The app's folders (the seed's paths table), under one storage folder.
#[derive(Debug, Clone)]
pub struct Storage {
    pub root: PathBuf,
}

impl Storage {
    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }
    pub fn secrets(&self) -> PathBuf {
        self.home().join(".cache").join("mse").join("secrets.json")
    }
    pub fn sealed_secrets(&self) -> PathBuf {
        self.home()
            .join(".cache")
            .join("mse")
            .join("sealed_secrets.json")
    }
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }
    pub fn module(&self) -> PathBuf {
        self.root.join("mse-app")
    }
    pub fn key(&self) -> PathBuf {
        self.root.join("key")
    }

    /// The environment variables the node reads them from.
    pub fn env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("HOME", self.home()),
            ("SECRETS_PATH", self.secrets()),
            ("SEALED_SECRETS_PATH", self.sealed_secrets()),
            ("TMP_PATH", self.tmp()),
            ("MODULE_PATH", self.module()),
            ("KEY_PATH", self.key()),
        ]
    }
}

/// `$MSE_SIM_DIR`, else `$XDG_DATA_HOME/mse/sim`, else `~/.local/share/mse/sim`: where the local
/// simulation root lives (the node creates it on first use). Passed to the node explicitly so
/// both sides use the same one.
pub fn sim_dir() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("MSE_SIM_DIR").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("XDG_DATA_HOME").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p).join("mse").join("sim"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("HOME is not set: set MSE_SIM_DIR")?;
    Ok(PathBuf::from(home)
        .join(".local")
        .join("share")
        .join("mse")
        .join("sim"))
}

/// Everything needed to start one supervised node.
pub struct Launch<'a> {
    pub node_binary: &'a Path,
    pub args: &'a [String],
    pub storage: &'a Storage,
    pub sim_dir: &'a Path,
    /// Folder for `node.log` and `node.exit`.
    pub state_dir: &'a Path,
    pub log_file: &'a Path,
    pub lifetime: Option<Duration>,
    pub cpus: Option<usize>,
}

/// A started supervisor: the pipe that keeps the node alive until [`Supervised::release`].
pub struct Supervised {
    pub child: Child,
    pipe: Option<ChildStdin>,
}

impl Supervised {
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap_or(i32::MAX)
    }

    /// The node is configured: from now on it outlives this process.
    pub fn release(&mut self) -> anyhow::Result<()> {
        if let Some(mut pipe) = self.pipe.take() {
            writeln!(pipe, "{CONFIGURED}")
                .context("telling the supervisor the node is configured")?;
            pipe.flush()?;
        }
        Ok(())
    }

    /// Whether the supervisor (and so the node) has ended.
    pub fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Stop the supervisor's process group (SIGTERM, SIGKILL after `grace`) and reap it.
    pub fn stop(mut self, grace: Duration) {
        let pgid = Pid::from_raw(self.pid());
        let _ = killpg(pgid, Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.has_exited() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = killpg(pgid, Signal::SIGKILL);
        let _ = self.child.wait();
    }

    /// Stop the node now and wait for the supervisor (used when deploy gives up).
    pub fn abort(mut self, grace: Duration) {
        self.pipe.take(); // EOF: the supervisor stops the node and wipes its storage
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.has_exited() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = killpg(Pid::from_raw(self.pid()), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Start `mse __supervise` for this launch.
pub fn spawn_supervised(l: &Launch<'_>) -> anyhow::Result<Supervised> {
    let me = std::env::current_exe().context("locating the mse executable")?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(l.log_file)
        .with_context(|| format!("opening {}", l.log_file.display()))?;
    let log2 = log.try_clone()?;
    let mut cmd = Command::new(me);
    cmd.arg("__supervise")
        .arg("--state-dir")
        .arg(l.state_dir)
        .arg("--storage")
        .arg(&l.storage.root);
    if let Some(t) = l.lifetime {
        cmd.arg("--lifetime").arg(t.as_secs().to_string());
    }
    if let Some(n) = l.cpus {
        cmd.arg("--cpus").arg(n.to_string());
    }
    cmd.arg("--").arg(l.node_binary).args(l.args);
    // The app sees only this environment: the user's own variables (tokens, cloud credentials)
    // stay on the client's side.
    cmd.env_clear();
    for var in ["PATH", "LANG", "LC_ALL", "TZ", "RUST_LOG", "RUST_BACKTRACE"] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    for (var, path) in l.storage.env() {
        cmd.env(var, path);
    }
    cmd.env("MSE_SIM_DIR", l.sim_dir);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2));
    let mut child = cmd.spawn().context("starting the node supervisor")?;
    let pipe = child.stdin.take();
    Ok(Supervised { child, pipe })
}

/// Whether a process exists (a zombie counts: its parent has not reaped it yet).
pub fn alive(pid: i32) -> bool {
    pid > 0
        && !matches!(
            kill(Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        )
}

/// Stop a supervised node by its supervisor's process group: SIGTERM, then SIGKILL after
/// `grace`. Returns once the supervisor is gone.
pub fn stop_group(supervisor_pid: i32, grace: Duration) -> bool {
    if supervisor_pid <= 1 || !alive(supervisor_pid) {
        return true;
    }
    let pgid = Pid::from_raw(supervisor_pid);
    let _ = killpg(pgid, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !alive(supervisor_pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = killpg(pgid, Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !alive(supervisor_pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The last `n` lines of a log, for error messages.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..]
        .iter()
        .map(|l| format!("  | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A free TCP port on 127.0.0.1 (the node binds it right after; a race only makes the node
/// fail to start, with a clear message).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}
