//! What the client keeps: `$MSE_CONF_PATH` (default `~/.config/mse`), one folder per deployment.
//!
//! ```text
//! <conf>/                          0700
//!   deployments/<name>/            0700
//!     context.mse                  0600  code key, nonces, ids (the original's context v2.0 layout + [local])
//!     cert.pem                     0600  the certificate clients pin (RA-TLS, or the owner's chain)
//!     ratls.pem                    0600  the verified RA-TLS certificate
//!     state.json                   0600  process ids, port, phase
//!     node.log                     0600  the node's stdout and stderr
//!     app/                               the encrypted code as shipped (measured)
//!     storage/                     0700  the node's HOME, TMP_PATH, MODULE_PATH, KEY_PATH (plaintext; removed by stop)
//! ```
//!
//! Every directory is created 0700 and every file 0600, whatever the umask, because the context
//! holds the code key.

use std::collections::BTreeMap;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The client's configuration folder.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// `$MSE_CONF_PATH`, else `$HOME/.config/mse`; created 0700 (and tightened if it exists).
    pub fn open() -> anyhow::Result<Self> {
        let root = match std::env::var_os("MSE_CONF_PATH") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => {
                let home = std::env::var_os("HOME")
                    .filter(|h| !h.is_empty())
                    .context("neither MSE_CONF_PATH nor HOME is set: set MSE_CONF_PATH to a folder for mse's state")?;
                PathBuf::from(home).join(".config").join("mse")
            }
        };
        private_dir(&root)?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn deployments_dir(&self) -> PathBuf {
        self.root.join("deployments")
    }

    /// The folder of deployment `name` (not created).
    pub fn deployment(&self, name: &str) -> anyhow::Result<Deployment> {
        if name.is_empty()
            || name.starts_with('.')
            || name.contains(['/', '\0'])
            || name.len() > 255
        {
            bail!("`{name}` is not a deployment name (letters, digits, `_`, `.` and `-`)");
        }
        Ok(Deployment {
            name: name.to_owned(),
            dir: self.deployments_dir().join(name),
        })
    }

    /// Every deployment folder, sorted by name.
    pub fn deployments(&self) -> anyhow::Result<Vec<Deployment>> {
        let dir = self.deployments_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.starts_with('.') || !entry.path().is_dir() {
                continue;
            }
            out.push(Deployment {
                name,
                dir: entry.path(),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// One deployment's folder.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub name: String,
    pub dir: PathBuf,
}

impl Deployment {
    pub fn create(&self) -> anyhow::Result<()> {
        if let Some(parent) = self.dir.parent() {
            private_dir(parent)?;
        }
        private_dir(&self.dir)
    }

    pub fn exists(&self) -> bool {
        self.dir.is_dir()
    }

    pub fn context_path(&self) -> PathBuf {
        self.dir.join("context.mse")
    }
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }
    pub fn ratls_path(&self) -> PathBuf {
        self.dir.join("ratls.pem")
    }
    pub fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("node.log")
    }
    pub fn app_dir(&self) -> PathBuf {
        self.dir.join("app")
    }
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.join("storage")
    }

    pub fn read_state(&self) -> anyhow::Result<NodeState> {
        let path = self.state_path();
        let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is corrupt; `mse stop {}` cleans it up",
                path.display(),
                self.name
            )
        })
    }

    pub fn write_state(&self, state: &NodeState) -> anyhow::Result<()> {
        write_private(&self.state_path(), &serde_json::to_vec_pretty(state)?)
    }

    pub fn read_context(&self) -> anyhow::Result<Context> {
        let path = self.context_path();
        let text = Zeroizing::new(
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
        );
        toml::from_str(&text)
            .with_context(|| format!("{} is not a valid context file", path.display()))
    }

    pub fn write_context(&self, ctx: &Context) -> anyhow::Result<()> {
        let text = Zeroizing::new(toml::to_string(ctx).context("encoding the context")?);
        write_private(&self.context_path(), text.as_bytes())
    }

    /// Remove the node's plaintext storage (HOME, MODULE_PATH, KEY_PATH, …).
    pub fn remove_storage(&self) -> anyhow::Result<()> {
        remove_dir_if_exists(&self.storage_dir())
    }

    /// Remove everything of this deployment, context included.
    pub fn remove(&self) -> anyhow::Result<()> {
        remove_dir_if_exists(&self.dir)
    }
}

fn remove_dir_if_exists(dir: &Path) -> anyhow::Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", dir.display())),
    }
}

/// Create `dir` (and parents) with mode 0700, and force 0700 on it if it already existed.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restricting {} to its owner", dir.display()))
}

/// Write a file readable by its owner only, atomically (temp file + rename in the same folder).
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("a file path has a parent")?;
    let name = path
        .file_name()
        .context("a file path has a name")?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        // The mode of `open` only applies to new files; a stale temp file keeps its own.
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.sync_all().ok();
        fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The context file (`context.mse`): the original's v2.0 layout, so its fields keep their names,
/// plus a `[local]` table for what a local deployment adds.
#[derive(Debug, Serialize, Deserialize)]
pub struct Context {
    pub version: String,
    pub workspace: PathBuf,
    pub config: ContextConfig,
    pub instance: ContextInstance,
    pub local: LocalInfo,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ContextConfig {
    pub name: String,
    pub project: String,
    /// 64 lowercase hex characters.
    pub code_secret_key: Zeroizing<String>,
    pub docker: String,
    pub python_application: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_app_certificate: Option<String>,
    pub tests: PathBuf,
    pub tests_cmd: String,
    pub tests_requirements: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ContextInstance {
    pub id: uuid::Uuid,
    pub config_domain_name: String,
    /// Memory of the resource profile, MB (the original's enclave size).
    pub enclave_size: u64,
    pub expires_at: String,
    /// `self` (RA-TLS certificate) or `owner` (`[ssl]`).
    pub ssl_certificate_origin: String,
    /// POSIX relative path (without `.enc`) → 24-byte nonce, hex.
    pub nonces: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LocalInfo {
    /// The configuration file deployed.
    pub config_file: PathBuf,
    pub node_binary: PathBuf,
    /// Digest of the Python runtime (hex) and where it lives.
    pub runtime_digest: String,
    pub runtime_dir: PathBuf,
    /// Launch arguments of the node (argv[1..]), part of the measurement.
    pub node_args: Vec<String>,
    /// The measurement computed by the client and found in the evidence (hex).
    pub measurement: String,
    pub healthcheck_endpoint: String,
    pub domain_name: String,
    pub port: u16,
}

/// Runtime facts of a deployment (`state.json`): not secret, rewritten as it progresses.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeState {
    pub name: String,
    pub id: uuid::Uuid,
    pub phase: Phase,
    /// The supervisor (`mse __supervise`): leader of the node's process group.
    pub supervisor_pid: i32,
    pub port: u16,
    pub url: String,
    pub domain_name: String,
    pub healthcheck_endpoint: String,
    pub started_at: String,
    pub expires_at: String,
    pub profile: String,
    #[serde(default)]
    pub measurement: Option<String>,
    /// Why verification rejected the node (phase `rejected`).
    #[serde(default)]
    pub failure: Option<String>,
}

/// Where a deployment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The node runs and waits for its configuration; nothing secret was sent.
    Starting,
    /// Evidence verified, configuration sent, app starting or running.
    Configured,
    /// Verification failed: the node was stopped and nothing was sent.
    Rejected,
    /// Stopped by `mse stop` or by the end of its lifetime.
    Stopped,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Starting => "starting",
            Phase::Configured => "configured",
            Phase::Rejected => "rejected",
            Phase::Stopped => "stopped",
        })
    }
}
