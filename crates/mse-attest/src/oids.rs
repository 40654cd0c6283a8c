//! X.509 extension OIDs under which RA-TLS certificates carry evidence.
//!
//! These are the OIDs of the original MSE / Cosmian tee-tools certificates (Intel's arc
//! 1.2.840.113741 with the legacy Gramine "1337" branch), kept for byte compatibility.

/// SGX DCAP quote (also used for mse simulation quotes, which share the SGX layout).
pub const SGX_QUOTE: &str = "1.2.840.113741.1337.6";
/// AMD SEV-SNP attestation report, optionally followed by its certificate table.
pub const SNP_REPORT: &str = "1.2.840.113741.1337.7";
/// Intel TDX DCAP quote (v4).
pub const TDX_QUOTE: &str = "1.2.840.113741.1337.8";

/// The same OIDs as integer arcs, for certificate builders such as rcgen.
pub const SGX_QUOTE_ARCS: &[u64] = &[1, 2, 840, 113741, 1337, 6];
/// See [`SNP_REPORT`].
pub const SNP_REPORT_ARCS: &[u64] = &[1, 2, 840, 113741, 1337, 7];
/// See [`TDX_QUOTE`].
pub const TDX_QUOTE_ARCS: &[u64] = &[1, 2, 840, 113741, 1337, 8];

/// Intel SGX PCK certificate extension (FMSPC, TCB, PCE id).
pub const INTEL_SGX_PCK_EXTENSION: &str = "1.2.840.113741.1.13.1";
