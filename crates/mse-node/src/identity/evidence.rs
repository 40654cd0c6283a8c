//! Reading back the two fields the node cares about in its own evidence, whatever the TEE.

use anyhow::Result;
use mse_attest::TeeKind;

/// The report data carried by evidence of this kind.
pub fn report_data(bytes: &[u8], kind: TeeKind) -> Result<[u8; 64]> {
    Ok(match kind {
        TeeKind::Sgx | TeeKind::Sim => *mse_attest::sgx::Quote::parse(bytes)?.report_data(),
        TeeKind::Tdx => *mse_attest::tdx::Quote::parse(bytes)?.report_data(),
        TeeKind::SevSnp => mse_attest::snp::Evidence::parse(bytes)?.report.report_data,
    })
}

/// The launch measurement (MRENCLAVE, MRTD+RTMRs digest, SNP MEASUREMENT).
pub fn measurement(bytes: &[u8], kind: TeeKind) -> Result<Vec<u8>> {
    Ok(match kind {
        TeeKind::Sgx | TeeKind::Sim => mse_attest::sgx::Quote::parse(bytes)?.mr_enclave().to_vec(),
        TeeKind::Tdx => mse_attest::tdx::Quote::parse(bytes)?.measurement(),
        TeeKind::SevSnp => mse_attest::snp::Evidence::parse(bytes)?
            .report
            .measurement
            .to_vec(),
    })
}
