//! Parse and verify TEE evidence (SGX, TDX, SEV-SNP, simulation) and RA-TLS certificates, with
//! time and policy as inputs.
//!
//! The crate is pure and offline (except the `pccs` feature): the caller supplies the evidence,
//! the collateral, the policy and the time. Parsing ([`sgx::Quote::parse`], [`tdx::Quote::parse`],
//! [`snp::Report::parse`], [`ratls::RaTlsCertificate::from_der`]) never panics on any input and
//! gives typed, *unverified* facts; only [`verify::verify_at`] builds a [`verify::Verified`].
//!
//! Contract: docs/design/contracts.md (mse-attest). Design and exact byte formats:
//! docs/attestation.md.

mod dcap_items;
mod error;
mod pki;
mod reader;
mod snp_verify;

pub mod collateral;
pub mod dcap;
pub mod evidence_file;
pub mod oids;
pub mod policy;
pub mod ratls;
pub mod report;
pub mod report_data;
pub mod sgx;
pub mod sim;
pub mod snp;
pub mod tdx;
pub mod verify;

#[cfg(feature = "pccs")]
pub mod pccs;

pub use error::{Error, Result, Step};

use serde::{Deserialize, Serialize};

/// The kind of trusted execution environment that produced a piece of evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TeeKind {
    /// Intel SGX enclave, DCAP quote v3.
    Sgx,
    /// Intel TDX trust domain, DCAP quote v4.
    Tdx,
    /// AMD SEV-SNP guest, attestation report.
    SevSnp,
    /// mse simulation: an SGX-layout quote signed under a per-installation simulation root.
    /// Not a TEE.
    Sim,
}

impl TeeKind {
    /// The lowercase name used on the command line and in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            TeeKind::Sgx => "sgx",
            TeeKind::Tdx => "tdx",
            TeeKind::SevSnp => "sev-snp",
            TeeKind::Sim => "sim",
        }
    }
}

impl std::fmt::Display for TeeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TeeKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "sgx" => Ok(TeeKind::Sgx),
            "tdx" => Ok(TeeKind::Tdx),
            "sev-snp" | "snp" => Ok(TeeKind::SevSnp),
            "sim" => Ok(TeeKind::Sim),
            other => Err(Error::Usage(format!(
                "unknown TEE kind {other:?}: expected sgx, tdx, sev-snp or sim"
            ))),
        }
    }
}
