//! `mse stop NAME`: stop the node, wait for it, remove its plaintext storage (and, with
//! `--remove`, everything the client kept about it, code key included).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;

use crate::node;
use crate::state::{Deployment, Home, Phase};
use crate::ui::Ui;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The deployment (`name` in mse.toml).
    pub name: String,
    /// Also remove its context (code key, nonces, certificate) and log.
    #[arg(long)]
    pub remove: bool,
}

/// How long the node may drain open requests before it is killed.
const GRACE: Duration = Duration::from_secs(40);

impl Args {
    pub fn run(self, ui: Ui) -> anyhow::Result<ExitCode> {
        let dep = Home::open()?.deployment(&self.name)?;
        if !dep.exists() {
            bail!("no deployment named `{}` (see `mse list`)", self.name);
        }
        let step = ui.step(&format!("Stopping {}", self.name));
        stop(&dep, self.remove)?;
        step.done(if self.remove {
            "removed"
        } else {
            "storage removed"
        });
        Ok(ExitCode::SUCCESS)
    }
}

/// Stop `dep`'s node if it runs, remove its storage and shipped code; with `remove`, its folder.
pub fn stop(dep: &Deployment, remove: bool) -> anyhow::Result<()> {
    if let Ok(mut state) = dep.read_state() {
        if is_our_supervisor(state.supervisor_pid, dep)
            && !node::stop_group(state.supervisor_pid, GRACE)
        {
            bail!(
                "the node of `{}` (process group {}) does not stop",
                dep.name,
                state.supervisor_pid
            );
        }
        if state.phase != Phase::Rejected {
            state.phase = Phase::Stopped;
        }
        if !remove {
            dep.write_state(&state)?;
        }
    }
    dep.remove_storage()?;
    match std::fs::remove_dir_all(dep.app_dir()) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    if remove {
        dep.remove()?;
    }
    Ok(())
}

/// The pid still names this deployment's supervisor (not a process that reused the number).
pub fn is_our_supervisor(pid: i32, dep: &Deployment) -> bool {
    if pid <= 1 || !node::alive(pid) {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let dir = dep.dir.as_os_str().as_encoded_bytes();
    args.contains(&b"__supervise".as_slice()) && args.contains(&dir)
}
