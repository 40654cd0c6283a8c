//! Structures shared by Intel DCAP quotes (SGX v3, TDX v4/v5): header, the 384-byte enclave
//! report (the SGX ISV report and the QE report), and the ECDSA signature data with its
//! certification data. All integers are little-endian. Layout: docs/attestation.md §Quotes.

use crate::error::{Error, Result};
use crate::reader::Reader;

/// Quote header length.
pub const HEADER_LEN: usize = 48;
/// SGX enclave report (REPORTBODY) length.
pub const ENCLAVE_REPORT_LEN: usize = 384;
/// Attestation key type 2: ECDSA-256 with P-256.
pub const ATT_KEY_TYPE_ECDSA_P256: u16 = 2;
/// TEE type in the header for SGX.
pub const TEE_TYPE_SGX: u32 = 0x0000_0000;
/// TEE type in the header for TDX.
pub const TEE_TYPE_TDX: u32 = 0x0000_0081;
/// Certification data type 5: PEM chain PCK leaf ‖ PCK CA ‖ root.
pub const CERT_TYPE_PCK_CHAIN: u16 = 5;
/// Certification data type 6: QE report certification data (TDX, quote v4+).
pub const CERT_TYPE_QE_REPORT: u16 = 6;
/// Intel's QE vendor id.
pub const INTEL_QE_VENDOR_ID: [u8; 16] = [
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
];

/// SGX attributes flag: the enclave is initialised.
pub const SGX_FLAGS_INIT: u64 = 0x01;
/// SGX attributes flag: the enclave can be debugged (its memory is readable by the host).
pub const SGX_FLAGS_DEBUG: u64 = 0x02;
/// SGX attributes flag: 64-bit mode.
pub const SGX_FLAGS_MODE64BIT: u64 = 0x04;

/// Quote header (48 bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// 3 for SGX, 4 or 5 for TDX.
    pub version: u16,
    /// 2 = ECDSA P-256.
    pub attestation_key_type: u16,
    /// 0 = SGX, 0x81 = TDX (reserved, zero, in v3).
    pub tee_type: u32,
    /// QE security version.
    pub qe_svn: u16,
    /// PCE security version.
    pub pce_svn: u16,
    /// QE vendor id (Intel: 939a7233f79c4ca9940a0db3957f0607).
    pub qe_vendor_id: [u8; 16],
    /// Free-form data chosen by the QE (first 16 bytes: platform QE id).
    pub user_data: [u8; 20],
}

impl Header {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Header {
            version: r.u16("header.version")?,
            attestation_key_type: r.u16("header.attestation_key_type")?,
            tee_type: r.u32("header.tee_type")?,
            qe_svn: r.u16("header.qe_svn")?,
            pce_svn: r.u16("header.pce_svn")?,
            qe_vendor_id: r.array("header.qe_vendor_id")?,
            user_data: r.array("header.user_data")?,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.attestation_key_type.to_le_bytes());
        out.extend_from_slice(&self.tee_type.to_le_bytes());
        out.extend_from_slice(&self.qe_svn.to_le_bytes());
        out.extend_from_slice(&self.pce_svn.to_le_bytes());
        out.extend_from_slice(&self.qe_vendor_id);
        out.extend_from_slice(&self.user_data);
    }
}

/// SGX enclave attributes (SECS.ATTRIBUTES).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Attributes {
    /// Flags: INIT 0x1, DEBUG 0x2, MODE64BIT 0x4, …
    pub flags: u64,
    /// XSAVE feature request mask.
    pub xfrm: u64,
}

impl Attributes {
    /// True when the DEBUG flag is set: the host can read and change enclave memory.
    pub fn debug(&self) -> bool {
        self.flags & SGX_FLAGS_DEBUG != 0
    }
}

/// SGX REPORTBODY (384 bytes): the ISV enclave report in an SGX quote, and the QE report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnclaveReport {
    /// CPU security version.
    pub cpu_svn: [u8; 16],
    /// MISCSELECT.
    pub misc_select: u32,
    /// ISV extended product id.
    pub isv_ext_prod_id: [u8; 16],
    /// ATTRIBUTES (flags, xfrm).
    pub attributes: Attributes,
    /// MRENCLAVE: the enclave measurement.
    pub mr_enclave: [u8; 32],
    /// MRSIGNER: SHA-256 of the enclave signer's RSA modulus (little-endian).
    pub mr_signer: [u8; 32],
    /// CONFIGID.
    pub config_id: [u8; 64],
    /// ISVPRODID.
    pub isv_prod_id: u16,
    /// ISVSVN.
    pub isv_svn: u16,
    /// CONFIGSVN.
    pub config_svn: u16,
    /// ISVFAMILYID.
    pub isv_family_id: [u8; 16],
    /// REPORTDATA: 64 bytes chosen by the enclave.
    pub report_data: [u8; 64],
}

impl EnclaveReport {
    /// Parse exactly [`ENCLAVE_REPORT_LEN`] bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new("SGX enclave report", bytes);
        let rep = Self::read(&mut r)?;
        r.finish()?;
        Ok(rep)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self> {
        let cpu_svn = r.array("cpu_svn")?;
        let misc_select = r.u32("misc_select")?;
        r.take(12, "reserved1")?;
        let isv_ext_prod_id = r.array("isv_ext_prod_id")?;
        let flags = r.u64("attributes.flags")?;
        let xfrm = r.u64("attributes.xfrm")?;
        let mr_enclave = r.array("mr_enclave")?;
        r.take(32, "reserved2")?;
        let mr_signer = r.array("mr_signer")?;
        r.take(32, "reserved3")?;
        let config_id = r.array("config_id")?;
        let isv_prod_id = r.u16("isv_prod_id")?;
        let isv_svn = r.u16("isv_svn")?;
        let config_svn = r.u16("config_svn")?;
        r.take(42, "reserved4")?;
        let isv_family_id = r.array("isv_family_id")?;
        let report_data = r.array("report_data")?;
        Ok(EnclaveReport {
            cpu_svn,
            misc_select,
            isv_ext_prod_id,
            attributes: Attributes { flags, xfrm },
            mr_enclave,
            mr_signer,
            config_id,
            isv_prod_id,
            isv_svn,
            config_svn,
            isv_family_id,
            report_data,
        })
    }

    /// The 384-byte encoding (reserved fields zero).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.cpu_svn);
        out.extend_from_slice(&self.misc_select.to_le_bytes());
        out.extend_from_slice(&[0u8; 12]);
        out.extend_from_slice(&self.isv_ext_prod_id);
        out.extend_from_slice(&self.attributes.flags.to_le_bytes());
        out.extend_from_slice(&self.attributes.xfrm.to_le_bytes());
        out.extend_from_slice(&self.mr_enclave);
        out.extend_from_slice(&[0u8; 32]);
        out.extend_from_slice(&self.mr_signer);
        out.extend_from_slice(&[0u8; 32]);
        out.extend_from_slice(&self.config_id);
        out.extend_from_slice(&self.isv_prod_id.to_le_bytes());
        out.extend_from_slice(&self.isv_svn.to_le_bytes());
        out.extend_from_slice(&self.config_svn.to_le_bytes());
        out.extend_from_slice(&[0u8; 42]);
        out.extend_from_slice(&self.isv_family_id);
        out.extend_from_slice(&self.report_data);
    }
}

/// Certification data: how the PCK key that signed the QE report is certified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificationData {
    /// 5 = PEM chain (the only type the verifier accepts), 6 = QE report (TDX outer level).
    pub cert_type: u16,
    /// The raw data.
    pub data: Vec<u8>,
}

impl CertificationData {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let cert_type = r.u16("certification_data.type")?;
        let len = r.u32("certification_data.size")? as usize;
        let data = r.take(len, "certification_data")?.to_vec();
        Ok(CertificationData { cert_type, data })
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        let len = u32::try_from(self.data.len())
            .map_err(|_| Error::Usage("certification data longer than 4 GiB".into()))?;
        out.extend_from_slice(&self.cert_type.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&self.data);
        Ok(())
    }

    /// The DER certificates of a type-5 PEM chain, leaf first.
    pub fn pem_chain(&self) -> Result<Vec<Vec<u8>>> {
        if self.cert_type != CERT_TYPE_PCK_CHAIN {
            return Err(Error::malformed(
                "quote certification data",
                format!("type {} is not a PEM PCK chain (type 5)", self.cert_type),
            ));
        }
        pem_certificates(&self.data, "quote certification data")
    }
}

/// All `CERTIFICATE` blocks of a PEM text, as DER, in order. Other block types are refused.
pub(crate) fn pem_certificates(text: &[u8], what: &'static str) -> Result<Vec<Vec<u8>>> {
    // Intel terminates the chain with a NUL byte; it is not part of the PEM text.
    let end = text.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let trimmed = text.get(..end).unwrap_or_default();
    let blocks =
        pem::parse_many(trimmed).map_err(|e| Error::malformed(what, format!("bad PEM: {e}")))?;
    if blocks.is_empty() {
        return Err(Error::malformed(what, "no PEM certificate found"));
    }
    blocks
        .into_iter()
        .map(|b| {
            if b.tag() == "CERTIFICATE" {
                Ok(b.into_contents())
            } else {
                Err(Error::malformed(
                    what,
                    format!("unexpected PEM block {:?}", b.tag()),
                ))
            }
        })
        .collect()
}

/// The QE report and what certifies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QeReportCertification {
    /// The QE's own enclave report; its report data binds the attestation key.
    pub qe_report: EnclaveReport,
    /// The exact bytes of the QE report (what the PCK key signed).
    pub qe_report_raw: Vec<u8>,
    /// ECDSA P-256 signature (r ‖ s, big-endian) of the QE report by the PCK key.
    pub qe_report_signature: [u8; 64],
    /// QE authentication data (Intel: 32 bytes).
    pub qe_auth_data: Vec<u8>,
    /// Certification of the PCK key (type 5 PEM chain).
    pub pck: CertificationData,
}

impl QeReportCertification {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let qe_report_raw = r.take(ENCLAVE_REPORT_LEN, "qe_report")?.to_vec();
        let qe_report = EnclaveReport::parse(&qe_report_raw)?;
        let qe_report_signature = r.array("qe_report_signature")?;
        let auth_len = r.u16("qe_auth_data.size")? as usize;
        let qe_auth_data = r.take(auth_len, "qe_auth_data")?.to_vec();
        let pck = CertificationData::read(r)?;
        Ok(QeReportCertification {
            qe_report,
            qe_report_raw,
            qe_report_signature,
            qe_auth_data,
            pck,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        let auth_len = u16::try_from(self.qe_auth_data.len())
            .map_err(|_| Error::Usage("QE auth data longer than 64 KiB".into()))?;
        out.extend_from_slice(&self.qe_report_raw);
        out.extend_from_slice(&self.qe_report_signature);
        out.extend_from_slice(&auth_len.to_le_bytes());
        out.extend_from_slice(&self.qe_auth_data);
        self.pck.encode(out)
    }
}

/// ECDSA quote signature data (the part after the signed header and body).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureData {
    /// ECDSA P-256 signature (r ‖ s) of header ‖ body by the attestation key.
    pub quote_signature: [u8; 64],
    /// The attestation public key (X ‖ Y, big-endian).
    pub attestation_key: [u8; 64],
    /// The QE report that certifies the attestation key.
    pub qe: QeReportCertification,
}

impl SignatureData {
    /// Read the v3 layout (SGX): QE report inline, then a type-5 certification data.
    pub(crate) fn read_v3(r: &mut Reader<'_>) -> Result<Self> {
        let quote_signature = r.array("quote_signature")?;
        let attestation_key = r.array("attestation_key")?;
        let qe = QeReportCertification::read(r)?;
        Ok(SignatureData {
            quote_signature,
            attestation_key,
            qe,
        })
    }

    /// Read the v4 layout (TDX): a type-6 certification data wrapping the QE report.
    pub(crate) fn read_v4(r: &mut Reader<'_>) -> Result<Self> {
        let quote_signature = r.array("quote_signature")?;
        let attestation_key = r.array("attestation_key")?;
        let outer_type = r.u16("certification_data.type")?;
        if outer_type != CERT_TYPE_QE_REPORT {
            return Err(Error::malformed(
                "TDX quote",
                format!("outer certification data type {outer_type}, expected 6 (QE report)"),
            ));
        }
        let len = r.u32("certification_data.size")? as usize;
        let mut inner = r.sub(len, "certification_data")?;
        let qe = QeReportCertification::read(&mut inner)?;
        inner.finish()?;
        Ok(SignatureData {
            quote_signature,
            attestation_key,
            qe,
        })
    }

    pub(crate) fn encode_v3(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&self.quote_signature);
        out.extend_from_slice(&self.attestation_key);
        self.qe.encode(out)
    }

    /// The attestation key as an uncompressed SEC1 point.
    pub fn attestation_key_sec1(&self) -> [u8; 65] {
        let mut k = [0x04u8; 65];
        k[1..].copy_from_slice(&self.attestation_key);
        k
    }
}

/// Split `bytes` into the quote proper and zero padding after it. Some producers return a
/// fixed-size zero-padded buffer (e.g. 8 KiB); anything non-zero after the quote is refused.
pub(crate) fn check_padding(what: &'static str, r: &mut Reader<'_>) -> Result<usize> {
    let at = r.offset();
    let rest = r.rest();
    if rest.iter().any(|&b| b != 0) {
        return Err(Error::malformed(
            what,
            format!("{} unexpected trailing bytes at offset {at}", rest.len()),
        ));
    }
    Ok(rest.len())
}

/// Which Intel CA issued a PCK certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PckCa {
    /// "Intel SGX PCK Platform CA".
    Platform,
    /// "Intel SGX PCK Processor CA".
    Processor,
}

impl PckCa {
    /// The PCCS `ca=` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            PckCa::Platform => "platform",
            PckCa::Processor => "processor",
        }
    }
}

/// Platform facts from a PCK certificate's SGX extension (OID 1.2.840.113741.1.13.1).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PckInfo {
    /// FMSPC: family-model-stepping-platform-custom SKU (selects the TCB info).
    pub fmspc: [u8; 6],
    /// PCE id.
    pub pce_id: Vec<u8>,
    /// CPU SVN of the platform's TCB.
    pub cpu_svn: [u8; 16],
    /// PCE SVN of the platform's TCB.
    pub pce_svn: u16,
    /// Issuing CA.
    pub ca: PckCa,
}

/// Read the SGX extension and issuer of a PCK leaf certificate (DER). Never panics.
pub fn pck_info(leaf_der: &[u8]) -> Result<PckInfo> {
    const WHAT: &str = "PCK certificate";
    let cert = crate::pki::parse_cert(leaf_der, WHAT)?;
    let issuer = cert
        .issuer()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())
        .unwrap_or_default()
        .to_owned();
    let ca = match issuer.as_str() {
        "Intel SGX PCK Platform CA" => PckCa::Platform,
        "Intel SGX PCK Processor CA" => PckCa::Processor,
        other => {
            return Err(Error::malformed(
                WHAT,
                format!("issuer {other:?} is not an Intel PCK CA"),
            ));
        }
    };
    let ext = dcap_qvl::intel::parse_pck_extension(leaf_der)
        .map_err(|e| Error::malformed(WHAT, format!("SGX extension: {e:#}")))?;
    Ok(PckInfo {
        fmspc: ext.fmspc,
        pce_id: ext.pce_id,
        cpu_svn: ext.cpu_svn,
        pce_svn: ext.pce_svn,
        ca,
    })
}

/// PEM text with LF line endings (as Intel's chains and most tools write it).
pub(crate) fn pem_encode(tag: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(tag, der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}
