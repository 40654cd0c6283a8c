//! Intel SGX DCAP quote, version 3: parse (never panics) and encode (for the simulation
//! backend, so the layout lives in one place).
//!
//! ```text
//! header (48) ‖ report body (384) ‖ signature_data_len u32 ‖ signature data
//! signature data = quote sig (64) ‖ attestation key (64) ‖ QE report (384) ‖ QE report sig (64)
//!                ‖ qe_auth_len u16 ‖ qe_auth ‖ cert_type u16 (5) ‖ cert_len u32 ‖ PEM chain
//! ```
//! The quote signature covers header ‖ report body (the first 432 bytes).

use crate::dcap::{self, EnclaveReport, Header, SignatureData};
use crate::error::{Error, Result};
use crate::reader::Reader;

const WHAT: &str = "SGX quote";

/// Length of the signed part: header ‖ report body.
pub const SIGNED_LEN: usize = dcap::HEADER_LEN + dcap::ENCLAVE_REPORT_LEN;

/// A parsed, *unverified* SGX DCAP v3 quote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quote {
    header: Header,
    body: EnclaveReport,
    signature: SignatureData,
    /// The quote bytes without trailing padding.
    raw: Vec<u8>,
    padding: usize,
}

impl Quote {
    /// Parse a v3 quote with ECDSA P-256 attestation key. Trailing zero padding is accepted
    /// (and reported by [`Quote::padding`]); any other trailing byte is an error.
    pub fn parse(b: &[u8]) -> Result<Self> {
        let mut r = Reader::new(WHAT, b);
        let header = Header::read(&mut r)?;
        if header.version != 3 {
            return Err(Error::malformed(
                WHAT,
                format!("version {}, expected 3", header.version),
            ));
        }
        if header.tee_type != dcap::TEE_TYPE_SGX {
            return Err(Error::malformed(
                WHAT,
                format!("TEE type {:#x} is not SGX", header.tee_type),
            ));
        }
        if header.attestation_key_type != dcap::ATT_KEY_TYPE_ECDSA_P256 {
            return Err(Error::malformed(
                WHAT,
                format!(
                    "attestation key type {}, expected 2 (ECDSA P-256)",
                    header.attestation_key_type
                ),
            ));
        }
        let body = EnclaveReport::read(&mut r)?;
        let sig_len = r.u32("signature_data_len")? as usize;
        let mut s = r.sub(sig_len, "signature_data")?;
        let signature = SignatureData::read_v3(&mut s)?;
        s.finish()?;
        let end = r.offset();
        let padding = dcap::check_padding(WHAT, &mut r)?;
        let raw = b.get(..end).unwrap_or_default().to_vec();
        Ok(Quote {
            header,
            body,
            signature,
            raw,
            padding,
        })
    }

    /// Assemble a quote from its parts (used by the simulation signer). The caller signs
    /// [`Quote::signed_bytes`] and sets the signature before encoding.
    pub(crate) fn encode(
        header: &Header,
        body: &EnclaveReport,
        signature: &SignatureData,
    ) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(SIGNED_LEN + 4096);
        header.encode(&mut out);
        body.encode(&mut out);
        let mut sig = Vec::with_capacity(4096);
        signature.encode_v3(&mut sig)?;
        let len =
            u32::try_from(sig.len()).map_err(|_| Error::Usage("signature data too long".into()))?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&sig);
        Ok(out)
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }
    /// The ISV enclave report.
    pub fn body(&self) -> &EnclaveReport {
        &self.body
    }
    /// Signature data (attestation key, QE report, PCK certification).
    pub fn signature_data(&self) -> &SignatureData {
        &self.signature
    }
    /// The 64 bytes of report data chosen by the enclave.
    pub fn report_data(&self) -> &[u8; 64] {
        &self.body.report_data
    }
    /// MRENCLAVE.
    pub fn mr_enclave(&self) -> &[u8; 32] {
        &self.body.mr_enclave
    }
    /// MRSIGNER.
    pub fn mr_signer(&self) -> &[u8; 32] {
        &self.body.mr_signer
    }
    /// True if the enclave runs in DEBUG mode.
    pub fn debug(&self) -> bool {
        self.body.attributes.debug()
    }
    /// ISVPRODID.
    pub fn isv_prod_id(&self) -> u16 {
        self.body.isv_prod_id
    }
    /// ISVSVN.
    pub fn isv_svn(&self) -> u16 {
        self.body.isv_svn
    }
    /// The bytes covered by the quote signature (header ‖ body).
    pub fn signed_bytes(&self) -> &[u8] {
        self.raw.get(..SIGNED_LEN).unwrap_or_default()
    }
    /// The quote bytes without trailing padding.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }
    /// How many zero bytes followed the quote.
    pub fn padding(&self) -> usize {
        self.padding
    }
    /// The PCK chain (DER, leaf first) from the type-5 certification data.
    pub fn pck_chain(&self) -> Result<Vec<Vec<u8>>> {
        self.signature.qe.pck.pem_chain()
    }
}

/// MRSIGNER of an enclave signer's RSA public key (PEM SubjectPublicKeyInfo): SHA-256 of the
/// modulus written little-endian over the key size in bytes (reference §4.3).
pub fn mr_signer_from_rsa_pem(pem_text: &str) -> Result<[u8; 32]> {
    use sha2::{Digest, Sha256};
    use x509_parser::prelude::FromDer;
    use x509_parser::public_key::PublicKey;
    const WHAT: &str = "signer public key";
    let block =
        pem::parse(pem_text).map_err(|e| Error::malformed(WHAT, format!("bad PEM: {e}")))?;
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(block.contents())
        .map_err(|e| Error::malformed(WHAT, format!("not a SubjectPublicKeyInfo: {e}")))?;
    let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
        return Err(Error::malformed(WHAT, "not an RSA key"));
    };
    let modulus = rsa.modulus;
    let start = modulus
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(modulus.len());
    let mut le: Vec<u8> = modulus.get(start..).unwrap_or_default().to_vec();
    le.reverse();
    Ok(Sha256::digest(&le).into())
}
