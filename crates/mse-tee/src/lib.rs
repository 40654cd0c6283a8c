//! Produce TEE evidence inside the node: simulation, Gramine SGX (`/dev/attestation`) and
//! Linux configfs-tsm (TDX, SEV-SNP).
//!
//! One trait, [`TeeBackend`]; [`open`] picks a backend. With [`Choice::Auto`] it probes
//! Gramine, then configfs-tsm, and falls back to simulation with a loud warning: a client with
//! a default policy refuses simulation evidence, so a node without a TEE fails closed.
//!
//! Contract: docs/design/contracts.md (mse-tee). Verification lives in mse-attest.

mod gramine;
mod sim;
mod tsm;

use std::path::{Path, PathBuf};

pub use gramine::Gramine;
pub use mse_attest::TeeKind;
pub use sim::{Sim, load_or_create_sim_root_key};
pub use tsm::{Tsm, TsmProvider};

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why evidence could not be produced.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file of a TEE interface could not be read or written.
    #[error("{backend}: {path}: {source}")]
    Io {
        /// Backend name.
        backend: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The interface exists but is not usable as asked.
    #[error("{backend}: {reason}")]
    Unavailable {
        /// Backend name.
        backend: &'static str,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The TEE returned something that is not evidence over our report data.
    #[error("{backend}: bad evidence: {reason}")]
    BadEvidence {
        /// Backend name.
        backend: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The simulation root could not be loaded or created.
    #[error("simulation root in {dir}: {reason}")]
    SimRoot {
        /// The directory.
        dir: PathBuf,
        /// What went wrong and what to do.
        reason: String,
    },
    /// An error from mse-attest (parsing our own evidence, signing sim quotes).
    #[error(transparent)]
    Attest(#[from] mse_attest::Error),
}

/// Evidence over 64 bytes of report data, with the X.509 extension OID it travels under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    /// The TEE that produced it (Sim for simulation; it travels under the SGX OID).
    pub kind: TeeKind,
    /// Extension OID in the RA-TLS certificate (mse_attest::oids).
    pub oid: &'static str,
    /// Quote, or SNP report followed by its certificate table.
    pub bytes: Vec<u8>,
}

impl Evidence {
    /// As mse-attest's carrier type (Sim travels as Sgx until verified).
    pub fn to_raw(&self) -> mse_attest::ratls::RawEvidence {
        let kind = if self.kind == TeeKind::Sim {
            TeeKind::Sgx
        } else {
            self.kind
        };
        mse_attest::ratls::RawEvidence {
            kind,
            bytes: self.bytes.clone(),
        }
    }
}

/// An evidence producer.
pub trait TeeBackend: Send + Sync {
    /// The TEE kind.
    fn kind(&self) -> TeeKind;
    /// Evidence over these 64 bytes of report data, and the X.509 extension OID it travels under.
    fn evidence(&self, report_data: &[u8; 64]) -> Result<Evidence>;
}

/// Which backend to use (`--tee auto|sim|gramine|tsm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Probe Gramine, then configfs-tsm, else simulation with a warning.
    Auto,
    /// Simulation (no TEE).
    Sim,
    /// Gramine SGX, `/dev/attestation`.
    Gramine,
    /// Linux configfs-tsm (TDX or SEV-SNP guest).
    Tsm,
}

impl std::str::FromStr for Choice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(Choice::Auto),
            "sim" => Ok(Choice::Sim),
            "gramine" => Ok(Choice::Gramine),
            "tsm" => Ok(Choice::Tsm),
            _ => Err(format!(
                "unknown TEE backend {s:?}: expected auto, sim, gramine or tsm"
            )),
        }
    }
}

/// Simulation settings (also needed by Auto, which may fall back to simulation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// Where the simulation root lives ([`sim_root_dir`] by default).
    pub root_dir: PathBuf,
    /// MRENCLAVE of simulated quotes: the measurement computed by the node (mse-measure).
    pub measurement: [u8; 32],
    /// Mark the simulated enclave DEBUG.
    pub debug: bool,
}

/// Where the real interfaces live; tests point these at temporary directories.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interfaces {
    /// Gramine's attestation pseudo-filesystem.
    pub gramine: PathBuf,
    /// configfs-tsm report directory.
    pub tsm: PathBuf,
}

impl Default for Interfaces {
    fn default() -> Self {
        Interfaces {
            gramine: PathBuf::from(gramine::DEFAULT_ROOT),
            tsm: PathBuf::from(tsm::DEFAULT_ROOT),
        }
    }
}

/// Open a backend. Auto: probe, else sim + loud warning.
pub fn open(choice: Choice, sim: SimConfig) -> Result<Box<dyn TeeBackend>> {
    open_with(choice, sim, &Interfaces::default())
}

/// [`open`] with explicit interface locations.
pub fn open_with(choice: Choice, sim: SimConfig, at: &Interfaces) -> Result<Box<dyn TeeBackend>> {
    match choice {
        Choice::Sim => Ok(Box::new(Sim::open(&sim)?)),
        Choice::Gramine => Ok(Box::new(Gramine::open(&at.gramine)?)),
        Choice::Tsm => Ok(Box::new(Tsm::open(&at.tsm)?)),
        Choice::Auto => {
            if at.gramine.exists() {
                match Gramine::open(&at.gramine) {
                    Ok(g) => {
                        tracing::info!("TEE: Gramine SGX (DCAP) at {}", at.gramine.display());
                        return Ok(Box::new(g));
                    }
                    Err(e) => tracing::warn!("TEE probe: {e}"),
                }
            }
            if at.tsm.exists() {
                match Tsm::open(&at.tsm) {
                    Ok(t) => {
                        tracing::info!("TEE: configfs-tsm ({}) at {}", t.kind(), at.tsm.display());
                        return Ok(Box::new(t));
                    }
                    Err(e) => tracing::warn!("TEE probe: {e}"),
                }
            }
            tracing::warn!(
                "NO TEE FOUND (no Gramine /dev/attestation with DCAP, no configfs-tsm): running in SIMULATION mode. \
                 Nothing protects this node's code, keys or data, and clients with a default policy will refuse it. \
                 Use --tee sim to say this on purpose, or run inside Gramine SGX or a TDX/SEV-SNP guest."
            );
            Ok(Box::new(Sim::open(&sim)?))
        }
    }
}

/// `$MSE_SIM_DIR`, else `$XDG_DATA_HOME/mse/sim`, else `~/.local/share/mse/sim`
/// (relative `.mse/sim` if no home is known).
pub fn sim_root_dir() -> PathBuf {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = var("MSE_SIM_DIR") {
        return d;
    }
    if let Some(d) = var("XDG_DATA_HOME") {
        return d.join("mse").join("sim");
    }
    match var("HOME") {
        Some(h) => h.join(".local").join("share").join("mse").join("sim"),
        None => PathBuf::from(".mse").join("sim"),
    }
}

/// The public half of the installation's simulation root, created on first use.
pub fn load_or_create_sim_root(dir: &Path) -> Result<mse_attest::sim::SimRoot> {
    Ok(load_or_create_sim_root_key(dir)?.root().clone())
}
