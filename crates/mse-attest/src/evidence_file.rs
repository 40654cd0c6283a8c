//! The MSE `evidence.json` file (`mse home evidence`/`spawn`), byte-compatible with mse-cli 1.3:
//! the RA-TLS certificate, the DCAP collateral the operator fetched, the signer public key and
//! the arguments the enclave was started with. Layout: docs/attestation.md §evidence.json.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::collateral::{Collateral, DcapParts};
use crate::error::{Error, Result};
use crate::ratls::RaTlsCertificate;
use crate::sgx;

const WHAT: &str = "evidence.json";

/// Enclave launch arguments recorded in the evidence file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputArgs {
    /// Certificate subject (RFC 4514), verbatim as passed to the enclave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// SAN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_alternative_name: Option<String>,
    /// Certificate expiration, Unix seconds (null with an owner certificate).
    pub expiration_date: Option<i64>,
    /// Enclave size in MB.
    pub size: u64,
    /// App UUID.
    pub app_id: String,
    /// `module:variable`.
    pub application: String,
    /// Older mse-home-cli files: the host instead of subject/SAN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// An `evidence.json`. Unknown keys are ignored, as the original did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceFile {
    /// Launch arguments.
    pub input_args: InputArgs,
    /// RA-TLS certificate, PEM.
    pub ratls_certificate: String,
    /// Intel SGX root CA CRL, PEM.
    pub root_ca_crl: String,
    /// PCK CA CRL (Platform or Processor despite the name), PEM.
    pub pck_platform_crl: String,
    /// Standard base64 of the raw TCB info body (tolerated: base64 of its hex text).
    pub tcb_info: String,
    /// Standard base64 of the raw QE identity body.
    pub qe_identity: String,
    /// Intel SGX TCB signing certificate, PEM.
    pub tcb_cert: String,
    /// Enclave signer RSA public key, PEM SubjectPublicKeyInfo.
    pub signer_pk: String,
}

impl EvidenceFile {
    /// Parse the JSON text.
    pub fn parse(b: &[u8]) -> Result<Self> {
        serde_json::from_slice(b).map_err(|e| Error::malformed(WHAT, e.to_string()))
    }

    /// JSON as mse-cli writes it (`json.dump(indent=4)`, keys in this order).
    pub fn to_json_pretty(&self) -> Result<String> {
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        self.serialize(&mut ser)
            .map_err(|e| Error::Usage(format!("{WHAT}: {e}")))?;
        String::from_utf8(out).map_err(|e| Error::Usage(format!("{WHAT}: {e}")))
    }

    /// The RA-TLS certificate.
    pub fn certificate(&self) -> Result<RaTlsCertificate> {
        RaTlsCertificate::from_pem(&self.ratls_certificate)
    }

    /// MRSIGNER of `signer_pk`.
    pub fn signer_mr(&self) -> Result<[u8; 32]> {
        sgx::mr_signer_from_rsa_pem(&self.signer_pk)
    }

    /// The DCAP collateral, ready for verification. The Intel root completes the issuer
    /// chains (the file stores only the TCB signing certificate).
    pub fn collateral(&self) -> Result<Collateral> {
        let root_pem = crate::dcap::pem_encode("CERTIFICATE", crate::verify::INTEL_SGX_ROOT_CA_DER);
        let tcb_chain = format!("{}\n{root_pem}", self.tcb_cert.trim_end());
        let parts = DcapParts {
            root_ca_crl_der: pem_crl(&self.root_ca_crl, "root_ca_crl")?,
            pck_crl_der: pem_crl(&self.pck_platform_crl, "pck_platform_crl")?,
            pck_crl_issuer_chain_pem: root_pem.clone(),
            tcb_info_body: decode_body(&self.tcb_info, "tcb_info")?,
            tcb_info_issuer_chain_pem: tcb_chain.clone(),
            qe_identity_body: decode_body(&self.qe_identity, "qe_identity")?,
            qe_identity_issuer_chain_pem: tcb_chain,
        };
        Collateral::from_dcap_parts(&parts, "evidence file")
    }
}

fn pem_crl(text: &str, field: &'static str) -> Result<Vec<u8>> {
    let block =
        pem::parse(text).map_err(|e| Error::malformed(WHAT, format!("{field}: bad PEM: {e}")))?;
    if block.tag() != "X509 CRL" {
        return Err(Error::malformed(
            WHAT,
            format!("{field}: PEM block {:?} is not an X509 CRL", block.tag()),
        ));
    }
    Ok(block.into_contents())
}

/// Base64 of the raw JSON; the repositories' test files hold base64 of the JSON's hex text.
fn decode_body(b64: &str, field: &'static str) -> Result<Vec<u8>> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| Error::malformed(WHAT, format!("{field}: not base64: {e}")))?;
    if raw.first() == Some(&b'{') {
        return Ok(raw);
    }
    let unhex = hex::decode(raw.trim_ascii()).map_err(|_| {
        Error::malformed(WHAT, format!("{field}: neither JSON nor hex-encoded JSON"))
    })?;
    if unhex.first() == Some(&b'{') {
        Ok(unhex)
    } else {
        Err(Error::malformed(
            WHAT,
            format!("{field}: neither JSON nor hex-encoded JSON"),
        ))
    }
}
