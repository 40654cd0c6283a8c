//! `mse __supervise` (internal): keeps one node on a leash. See [`crate::node`] for the tree.
//!
//! Supervisor mode: new session; starts itself in `--exec` mode as the node; then waits for
//! the first of: the node exits; stdin says `configured` (deploy handed over: from now on only
//! the node's exit or its lifetime ends it); stdin closes before that (deploy died or gave up:
//! stop the node, wipe its storage); the lifetime ends (stop the node, wipe its storage).
//!
//! Exec mode: parent-death signal SIGKILL (the node dies with its supervisor), CPU affinity,
//! then `exec` of the node binary.

use std::io::BufRead as _;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::node::{CONFIGURED, EXIT_FILE};
use crate::ui::Ui;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Deployment folder (for node.exit).
    #[arg(long)]
    state_dir: PathBuf,
    /// The node's storage folder, wiped whenever the node ends (the seed: data is removed when the app stops).
    #[arg(long)]
    storage: PathBuf,
    /// Seconds after which the node is stopped.
    #[arg(long)]
    lifetime: Option<u64>,
    /// CPUs the node may use (the first N).
    #[arg(long)]
    cpus: Option<usize>,
    /// Become the node (internal second stage).
    #[arg(long)]
    exec: bool,
    /// The node binary and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// How long the node has to exit after SIGTERM before SIGKILL (it drains requests up to 30 s).
const GRACE: Duration = Duration::from_secs(35);

enum Event {
    Configured,
    Closed,
}

impl Args {
    pub fn run(self, _ui: Ui) -> anyhow::Result<ExitCode> {
        if self.exec {
            self.exec_node()
        } else {
            self.supervise()
        }
    }

    fn exec_node(self) -> anyhow::Result<ExitCode> {
        nix::sys::prctl::set_pdeathsig(Some(Signal::SIGKILL))
            .context("setting the parent-death signal")?;
        // The supervisor may have died between fork and prctl: then nobody would kill us.
        if nix::unistd::getppid() == Pid::from_raw(1) {
            bail!("the supervisor is gone");
        }
        if let Some(n) = self.cpus {
            let mut set = nix::sched::CpuSet::new();
            let available = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            for cpu in 0..n.min(available).max(1) {
                set.set(cpu).context("building the CPU set")?;
            }
            nix::sched::sched_setaffinity(Pid::from_raw(0), &set)
                .context("limiting the node's CPUs")?;
        }
        let (bin, args) = self.command.split_first().context("no node command")?;
        let err = Command::new(bin).args(args).exec();
        Err(err).with_context(|| format!("executing {bin}"))
    }

    fn supervise(self) -> anyhow::Result<ExitCode> {
        // Own session: a terminal's Ctrl-C reaches deploy, not the node; deploy's death is
        // what the pipe reports.
        let _ = nix::unistd::setsid();
        let me = std::env::current_exe().context("locating the mse executable")?;
        let mut cmd = Command::new(me);
        cmd.arg("__supervise")
            .arg("--exec")
            .arg("--state-dir")
            .arg(&self.state_dir)
            .arg("--storage")
            .arg(&self.storage);
        if let Some(n) = self.cpus {
            cmd.arg("--cpus").arg(n.to_string());
        }
        cmd.arg("--").args(&self.command);
        cmd.stdin(std::process::Stdio::null());
        let mut node = cmd.spawn().context("starting the node")?;
        let node_pid = Pid::from_raw(i32::try_from(node.id()).unwrap_or(i32::MAX));

        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let stdin = std::io::stdin();
            let mut line = String::new();
            loop {
                line.clear();
                match stdin.lock().read_line(&mut line) {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(Event::Closed);
                        return;
                    }
                    Ok(_) if line.trim() == CONFIGURED => {
                        let _ = tx.send(Event::Configured);
                        return;
                    }
                    Ok(_) => {}
                }
            }
        });

        let deadline = self
            .lifetime
            .map(|s| Instant::now() + Duration::from_secs(s));
        let mut handed_over = false;
        let reason = loop {
            if let Ok(Some(status)) = node.try_wait() {
                record(&self.state_dir, &format!("node exited: {status}"));
                // The seed's promise: the app's data is removed when it stops.
                wipe(&self.storage);
                return Ok(ExitCode::SUCCESS);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break "lifetime of the resource profile reached";
            }
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(Event::Configured) => handed_over = true,
                Ok(Event::Closed) if !handed_over => {
                    break "deploy ended before configuring the node";
                }
                Ok(Event::Closed) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // The reader is done (hand-over happened); keep polling at the same pace.
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        };
        let _ = kill(node_pid, Signal::SIGTERM);
        let stop_by = Instant::now() + GRACE;
        let status = loop {
            if let Ok(Some(status)) = node.try_wait() {
                break Some(status);
            }
            if Instant::now() >= stop_by {
                let _ = node.kill();
                break node.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let status = status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "unknown".into());
        record(
            &self.state_dir,
            &format!("node stopped ({reason}): {status}"),
        );
        wipe(&self.storage);
        Ok(ExitCode::SUCCESS)
    }
}

fn record(state_dir: &std::path::Path, what: &str) {
    let _ = crate::state::write_private(&state_dir.join(EXIT_FILE), format!("{what}\n").as_bytes());
    eprintln!("mse supervisor: {what}");
}

fn wipe(storage: &std::path::Path) {
    if let Err(e) = std::fs::remove_dir_all(storage)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        eprintln!("mse supervisor: cannot remove {}: {e}", storage.display());
    }
}
