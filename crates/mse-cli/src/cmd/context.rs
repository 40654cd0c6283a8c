//! `mse context`: what the client keeps per deployment (code key, nonces, certificate), where,
//! and with which permissions; `--export` writes the original's context file layout.

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};

use crate::state::{Deployment, Home};
use crate::ui::{self, Ui};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A deployment to show in detail (default: list them all).
    pub name: Option<String>,
    /// Show the code key in clear (it decrypts the deployed code: keep it to yourself).
    #[arg(long, requires = "name")]
    pub show_key: bool,
    /// Write the context as `./<uuid>.toml` in the original mse-cli layout (version 2.0).
    #[arg(long, requires = "name", conflicts_with = "json")]
    pub export: bool,
    /// JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, serde::Serialize)]
struct FileInfo {
    path: PathBuf,
    /// Octal permission bits, e.g. "600".
    mode: String,
    bytes: u64,
}

#[derive(Debug, serde::Serialize)]
struct Shown {
    name: String,
    folder: FileInfo,
    files: Vec<FileInfo>,
    id: Option<uuid::Uuid>,
    /// The code key: `[redacted]` unless --show-key.
    code_secret_key: Option<String>,
    nonces: Option<std::collections::BTreeMap<String, String>>,
    measurement: Option<String>,
    node_args: Option<Vec<String>>,
}

fn info(path: PathBuf) -> Option<FileInfo> {
    let meta = std::fs::metadata(&path).ok()?;
    Some(FileInfo {
        mode: format!("{:o}", meta.permissions().mode() & 0o777),
        bytes: meta.len(),
        path,
    })
}

impl Args {
    pub fn run(self, _ui: Ui) -> anyhow::Result<ExitCode> {
        let home = Home::open()?;
        let Some(name) = &self.name else {
            let mut all = Vec::new();
            for dep in home.deployments()? {
                all.push(self.shown(&dep)?);
            }
            if self.json {
                ui::print_json(&serde_json::json!({ "root": home.root(), "contexts": all }))?;
            } else {
                ui::out(&format!("Contexts in {}", home.root().display()))?;
                for s in &all {
                    let has_key = if s.code_secret_key.is_some() {
                        "code key, "
                    } else {
                        ""
                    };
                    ui::out(&format!(
                        "  {:<24} {}{} nonces, {} files",
                        s.name,
                        has_key,
                        s.nonces.as_ref().map_or(0, |n| n.len()),
                        s.files.len()
                    ))?;
                }
            }
            return Ok(ExitCode::SUCCESS);
        };
        let dep = home.deployment(name)?;
        if !dep.exists() {
            bail!("no deployment named `{name}` (see `mse list`)");
        }
        if self.export {
            return export(&dep);
        }
        let shown = self.shown(&dep)?;
        if self.json {
            ui::print_json(&shown)?;
            return Ok(ExitCode::SUCCESS);
        }
        ui::out(&format!(
            "Context of {} ({}, mode {})",
            shown.name,
            shown.folder.path.display(),
            shown.folder.mode
        ))?;
        if let Some(id) = shown.id {
            ui::out(&format!("  id:           {id}"))?;
        }
        if let Some(k) = &shown.code_secret_key {
            ui::out(&format!("  code key:     {k}"))?;
        }
        if let Some(m) = &shown.measurement {
            ui::out(&format!("  measurement:  {m}"))?;
        }
        if let Some(n) = &shown.nonces {
            ui::out(&format!("  nonces:       {} files", n.len()))?;
            for (path, nonce) in n {
                ui::out(&format!("    {path}  {nonce}"))?;
            }
        }
        ui::out("  files:")?;
        for f in &shown.files {
            ui::out(&format!(
                "    {}  {:>8} B  {}",
                f.mode,
                f.bytes,
                f.path.display()
            ))?;
        }
        Ok(ExitCode::SUCCESS)
    }

    fn shown(&self, dep: &Deployment) -> anyhow::Result<Shown> {
        let ctx = dep.read_context().ok();
        let files = [
            dep.context_path(),
            dep.cert_path(),
            dep.ratls_path(),
            dep.state_path(),
            dep.log_path(),
        ]
        .into_iter()
        .filter_map(info)
        .collect();
        Ok(Shown {
            name: dep.name.clone(),
            folder: info(dep.dir.clone()).context("reading the deployment folder")?,
            files,
            id: ctx.as_ref().map(|c| c.instance.id),
            code_secret_key: ctx.as_ref().map(|c| {
                if self.show_key {
                    c.config.code_secret_key.to_string()
                } else {
                    "[redacted]".to_owned()
                }
            }),
            nonces: ctx.as_ref().map(|c| c.instance.nonces.clone()),
            measurement: ctx.as_ref().map(|c| c.local.measurement.clone()),
            node_args: ctx.as_ref().map(|c| c.local.node_args.clone()),
        })
    }
}

/// `./<uuid>.toml` with the original's keys only (`version`, `workspace`, `[config]`, `[instance]`).
fn export(dep: &Deployment) -> anyhow::Result<ExitCode> {
    #[derive(serde::Serialize)]
    struct Original<'a> {
        version: &'a str,
        workspace: &'a std::path::Path,
        config: &'a crate::state::ContextConfig,
        instance: &'a crate::state::ContextInstance,
    }
    let ctx = dep.read_context().with_context(|| {
        format!(
            "`{}` has no context (rejected or stopped with --remove?)",
            dep.name
        )
    })?;
    let text = zeroize::Zeroizing::new(toml::to_string(&Original {
        version: &ctx.version,
        workspace: &ctx.workspace,
        config: &ctx.config,
        instance: &ctx.instance,
    })?);
    let path = PathBuf::from(format!("{}.toml", ctx.instance.id));
    crate::state::write_private(&std::path::absolute(&path)?, text.as_bytes())?;
    ui::out(&format!("{}", path.display()))?;
    Ok(ExitCode::SUCCESS)
}
