//! `mse status NAME`: phase, URL, health (one probe over the pinned certificate), lifetime.

use std::process::ExitCode;

use anyhow::{Context as _, bail};

use crate::state::Home;
use crate::ui::{self, Ui};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The deployment (`name` in mse.toml).
    pub name: String,
    /// JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, serde::Serialize)]
struct Status {
    #[serde(flatten)]
    summary: super::list::Summary,
    /// `running`, `waiting for configuration`, `initializing`, `not responding`, or `-`.
    health: String,
    /// How the node ended, if it did.
    exit: Option<String>,
    certificate: Option<std::path::PathBuf>,
    log: std::path::PathBuf,
}

impl Args {
    pub fn run(self, _ui: Ui) -> anyhow::Result<ExitCode> {
        let dep = Home::open()?.deployment(&self.name)?;
        if !dep.exists() {
            bail!("no deployment named `{}` (see `mse list`)", self.name);
        }
        let summary = super::list::summarize(&dep);
        let health = if summary.running {
            probe(&dep)?
        } else {
            "-".to_owned()
        };
        let exit = std::fs::read_to_string(dep.dir.join(crate::node::EXIT_FILE))
            .ok()
            .map(|s| s.trim().to_owned());
        let cert = dep.cert_path();
        let status = Status {
            summary,
            health,
            exit,
            certificate: cert.is_file().then_some(cert),
            log: dep.log_path(),
        };
        if self.json {
            ui::print_json(&status)?;
            return Ok(ExitCode::SUCCESS);
        }
        let s = &status.summary;
        ui::out(&format!("App name:     {}", s.name))?;
        ui::out(&format!("Phase:        {}", s.phase))?;
        ui::out(&format!("Health:       {}", status.health))?;
        if let Some(st) = &s.state {
            ui::out(&format!("URL:          {}", st.url))?;
            ui::out(&format!("Healthcheck:  {}", st.healthcheck_endpoint))?;
            ui::out(&format!("Profile:      {}", st.profile))?;
            ui::out(&format!("Started at:   {}", st.started_at))?;
            ui::out(&format!("Expires at:   {}", st.expires_at))?;
            if let Some(m) = &st.measurement {
                ui::out(&format!("Measurement:  {m}"))?;
            }
            if let Some(f) = &st.failure {
                ui::out(&format!("Rejected:     {f}"))?;
            }
        }
        if let Some(e) = &status.exit {
            ui::out(&format!("Node:         {e}"))?;
        }
        if let Some(c) = &status.certificate {
            ui::out(&format!("Certificate:  {}", c.display()))?;
        }
        ui::out(&format!("Log:          {}", status.log.display()))?;
        Ok(ExitCode::SUCCESS)
    }
}

/// One probe of the healthcheck, pinned to the certificate recorded at deploy time.
fn probe(dep: &crate::state::Deployment) -> anyhow::Result<String> {
    let state = dep.read_state()?;
    // The pin: the app's certificate once configured (cert.pem), else the RA-TLS one.
    let pem_path = if dep.cert_path().is_file() {
        dep.cert_path()
    } else {
        dep.ratls_path()
    };
    let Ok(pem) = std::fs::read(&pem_path) else {
        return Ok("unknown (no certificate recorded)".into());
    };
    let leaf = {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject as _;
        match CertificateDer::pem_slice_iter(&pem).next() {
            Some(Ok(c)) => c.as_ref().to_vec(),
            _ => return Ok("unknown (unreadable certificate)".into()),
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let client =
            mse_client::NodeClient::new(&format!("https://127.0.0.1:{}", state.port), &leaf)?;
        Ok(if client.is_waiting_for_secrets().await {
            "waiting for configuration".to_owned()
        } else if client.is_ready(&state.healthcheck_endpoint).await {
            "running".to_owned()
        } else {
            "initializing or not responding".to_owned()
        })
    })
}
