//! Errors. Every verification failure names the step that failed ([`Step`]), so a user reads
//! "quote signature: …" or "collateral: TCB info expired on …" rather than a bare "invalid".

use serde::Serialize;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The verification step that rejected the evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Step {
    /// The evidence bytes could not be parsed.
    EvidenceFormat,
    /// The RA-TLS certificate could not be read or lacks evidence.
    Certificate,
    /// Intel PCK chain (leaf → PCK CA → pinned Intel SGX Root CA), or the simulation chain.
    PckChain,
    /// The QE report signature by the PCK key.
    QeReportSignature,
    /// The QE report: its report data must bind the attestation key, its identity must match.
    QeReport,
    /// The quote signature by the attestation key.
    QuoteSignature,
    /// AMD chain VCEK/VLEK → ASK → pinned ARK.
    AmdChain,
    /// The SEV-SNP report signature by the VCEK/VLEK.
    ReportSignature,
    /// TCB values of the report vs its endorsement key certificate.
    Tcb,
    /// Collateral: missing, malformed, badly signed, revoked or expired.
    Collateral,
    /// Report data does not bind the expected TLS key / enclave key / nonce.
    ReportDataBinding,
    /// Measurement (MRENCLAVE, MRTD, SNP MEASUREMENT) differs from the expected one.
    Measurement,
    /// Signer (MRSIGNER) differs from the expected one.
    Signer,
    /// Policy: a debug enclave / debuggable guest.
    PolicyDebug,
    /// Policy: TCB status not accepted.
    PolicyTcbStatus,
    /// Policy: a security version below the minimum.
    PolicyMinimumSvn,
    /// Policy: simulation evidence without `allow_simulation`.
    PolicySimulation,
    /// Policy: this kind of TEE is not accepted.
    PolicyTee,
}

impl Step {
    /// The words used at the start of error messages and in reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Step::EvidenceFormat => "evidence format",
            Step::Certificate => "RA-TLS certificate",
            Step::PckChain => "PCK certificate chain",
            Step::QeReportSignature => "QE report signature",
            Step::QeReport => "QE report",
            Step::QuoteSignature => "quote signature",
            Step::AmdChain => "AMD certificate chain (VCEK/VLEK, ASK, ARK)",
            Step::ReportSignature => "report signature",
            Step::Tcb => "TCB",
            Step::Collateral => "collateral",
            Step::ReportDataBinding => "report data binding",
            Step::Measurement => "measurement",
            Step::Signer => "signer",
            Step::PolicyDebug => "policy: debug enclave",
            Step::PolicyTcbStatus => "policy: TCB status",
            Step::PolicyMinimumSvn => "policy: minimum SVN",
            Step::PolicySimulation => "policy: simulation",
            Step::PolicyTee => "policy: TEE kind",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Untrusted bytes that do not parse. `what` names the structure ("SGX quote", "SNP report").
    #[error("{what}: {reason}")]
    Malformed {
        /// The structure being parsed.
        what: &'static str,
        /// Why it does not parse, with the offset where relevant.
        reason: String,
    },
    /// A verification step rejected the evidence.
    #[error("{step}: {reason}")]
    Verification {
        /// The step that failed.
        step: Step,
        /// What was found, what was expected, and what to do about it.
        reason: String,
    },
    /// An API argument that makes no sense (programming or configuration error).
    #[error("{0}")]
    Usage(String),
    /// A file could not be read or written (sim root, PCCS cache).
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Generating keys or certificates failed (simulation root, quoting chain).
    #[error("{what}: {reason}")]
    Crypto {
        /// What was being generated.
        what: &'static str,
        /// The underlying error text.
        reason: String,
    },
    /// The PCCS could not be reached or answered something unusable.
    #[error("PCCS: {0}")]
    Pccs(String),
}

impl Error {
    /// The verification step this error names, if it is a verification failure.
    pub fn step(&self) -> Option<Step> {
        match self {
            Error::Verification { step, .. } => Some(*step),
            Error::Malformed { .. } => Some(Step::EvidenceFormat),
            _ => None,
        }
    }

    pub(crate) fn malformed(what: &'static str, reason: impl Into<String>) -> Self {
        Error::Malformed {
            what,
            reason: reason.into(),
        }
    }

    pub(crate) fn verify(step: Step, reason: impl Into<String>) -> Self {
        Error::Verification {
            step,
            reason: reason.into(),
        }
    }

    pub(crate) fn crypto(what: &'static str, reason: impl std::fmt::Display) -> Self {
        Error::Crypto {
            what,
            reason: reason.to_string(),
        }
    }
}
