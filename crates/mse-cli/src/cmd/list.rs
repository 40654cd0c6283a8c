//! `mse list`: the deployments this client knows, with their live phase.

use std::process::ExitCode;

use crate::state::{Deployment, Home, NodeState, Phase};
use crate::ui::{self, Ui};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

/// One deployment as `list` and `status` report it.
#[derive(Debug, serde::Serialize)]
pub struct Summary {
    pub name: String,
    /// The recorded phase, corrected by whether the node still runs.
    pub phase: String,
    pub running: bool,
    /// What deploy recorded (its `phase` is the recorded one).
    pub state: Option<NodeState>,
}

/// The recorded state, checked against the processes.
pub fn summarize(dep: &Deployment) -> Summary {
    let state = dep.read_state().ok();
    let running = state
        .as_ref()
        .is_some_and(|s| super::stop::is_our_supervisor(s.supervisor_pid, dep));
    let phase = match &state {
        None => "unknown".to_owned(),
        Some(s) => match (s.phase, running) {
            (Phase::Starting | Phase::Configured, false) => "exited".to_owned(),
            (Phase::Configured, true) => "running".to_owned(),
            (p, _) => p.to_string(),
        },
    };
    Summary {
        name: dep.name.clone(),
        phase,
        running,
        state,
    }
}

impl Args {
    pub fn run(self, _ui: Ui) -> anyhow::Result<ExitCode> {
        let all: Vec<Summary> = Home::open()?.deployments()?.iter().map(summarize).collect();
        if self.json {
            ui::print_json(&all)?;
            return Ok(ExitCode::SUCCESS);
        }
        if all.is_empty() {
            ui::out("No deployments. Create one with `mse deploy`.")?;
            return Ok(ExitCode::SUCCESS);
        }
        ui::out(&format!(
            "{:<24} {:<10} {:<32} {}",
            "NAME", "PHASE", "URL", "EXPIRES"
        ))?;
        for s in &all {
            let (url, expires) = s
                .state
                .as_ref()
                .map(|st| (st.url.as_str(), st.expires_at.as_str()))
                .unwrap_or(("-", "-"));
            ui::out(&format!(
                "{:<24} {:<10} {:<32} {}",
                s.name, s.phase, url, expires
            ))?;
        }
        Ok(ExitCode::SUCCESS)
    }
}
