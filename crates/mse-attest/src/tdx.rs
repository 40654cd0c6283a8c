//! Intel TDX DCAP quote, version 4 (TD report 1.0) and version 5 (TD report 1.0, 1.5, 1.5ex):
//! parse only, never panics.
//!
//! ```text
//! v4: header (48) ‖ TD report (584)                               ‖ sig_len u32 ‖ signature data
//! v5: header (48) ‖ body_type u16 ‖ body_size u32 ‖ TD report (…) ‖ sig_len u32 ‖ signature data
//! signature data = quote sig (64) ‖ attestation key (64) ‖ cert_type u16 (6) ‖ len u32 ‖
//!                  [ QE report (384) ‖ QE report sig (64) ‖ qe_auth_len u16 ‖ qe_auth ‖
//!                    cert_type u16 (5) ‖ len u32 ‖ PEM chain ]
//! ```

use crate::dcap::{self, Header, SignatureData};
use crate::error::{Error, Result};
use crate::reader::Reader;

const WHAT: &str = "TDX quote";
/// TD report 1.0 length.
pub const TD_REPORT10_LEN: usize = 584;
/// TD report 1.5 length.
pub const TD_REPORT15_LEN: usize = 648;
/// TD report 1.5ex length.
pub const TD_REPORT15_EX_LEN: usize = 885;

/// TD attribute bit 0: the TD is debuggable (the host can read its state).
pub const TD_ATTRIBUTES_DEBUG: u64 = 0x1;

/// TD report fields common to TDX 1.0 and 1.5.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdReport {
    /// TEE TCB SVN (TDX module and platform).
    pub tee_tcb_svn: [u8; 16],
    /// MRSEAM: TDX module measurement.
    pub mr_seam: [u8; 48],
    /// MRSIGNERSEAM.
    pub mr_signer_seam: [u8; 48],
    /// SEAMATTRIBUTES.
    pub seam_attributes: u64,
    /// TDATTRIBUTES (bit 0 = DEBUG).
    pub td_attributes: u64,
    /// XFAM.
    pub xfam: u64,
    /// MRTD: initial TD measurement.
    pub mr_td: [u8; 48],
    /// MRCONFIGID.
    pub mr_config_id: [u8; 48],
    /// MROWNER.
    pub mr_owner: [u8; 48],
    /// MROWNERCONFIG.
    pub mr_owner_config: [u8; 48],
    /// RTMR0..3: runtime measurement registers.
    pub rtmr: [[u8; 48]; 4],
    /// REPORTDATA.
    pub report_data: [u8; 64],
    /// TDX 1.5: TEE_TCB_SVN2 (current TCB after a TD-preserving update).
    pub tee_tcb_svn2: Option<[u8; 16]>,
    /// TDX 1.5: MRSERVICETD.
    pub mr_service_td: Option<[u8; 48]>,
    /// TDX 1.5ex extension fields, kept raw.
    pub ex: Option<Vec<u8>>,
}

impl TdReport {
    fn read(r: &mut Reader<'_>, len: usize) -> Result<Self> {
        let mut rep = TdReport {
            tee_tcb_svn: r.array("tee_tcb_svn")?,
            mr_seam: r.array("mr_seam")?,
            mr_signer_seam: r.array("mr_signer_seam")?,
            seam_attributes: r.u64("seam_attributes")?,
            td_attributes: r.u64("td_attributes")?,
            xfam: r.u64("xfam")?,
            mr_td: r.array("mr_td")?,
            mr_config_id: r.array("mr_config_id")?,
            mr_owner: r.array("mr_owner")?,
            mr_owner_config: r.array("mr_owner_config")?,
            rtmr: [
                r.array("rtmr0")?,
                r.array("rtmr1")?,
                r.array("rtmr2")?,
                r.array("rtmr3")?,
            ],
            report_data: r.array("report_data")?,
            tee_tcb_svn2: None,
            mr_service_td: None,
            ex: None,
        };
        if len >= TD_REPORT15_LEN {
            rep.tee_tcb_svn2 = Some(r.array("tee_tcb_svn2")?);
            rep.mr_service_td = Some(r.array("mr_service_td")?);
        }
        if len == TD_REPORT15_EX_LEN {
            rep.ex = Some(
                r.take(TD_REPORT15_EX_LEN - TD_REPORT15_LEN, "td15ex fields")?
                    .to_vec(),
            );
        }
        Ok(rep)
    }

    /// True when the TD is debuggable.
    pub fn debug(&self) -> bool {
        self.td_attributes & TD_ATTRIBUTES_DEBUG != 0
    }
}

/// A parsed, *unverified* TDX quote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quote {
    header: Header,
    report: TdReport,
    signature: SignatureData,
    signed_len: usize,
    raw: Vec<u8>,
    padding: usize,
}

impl Quote {
    /// Parse a v4 or v5 TDX quote. Trailing zero padding is accepted.
    pub fn parse(b: &[u8]) -> Result<Self> {
        let mut r = Reader::new(WHAT, b);
        let header = Header::read(&mut r)?;
        if header.tee_type != dcap::TEE_TYPE_TDX {
            return Err(Error::malformed(
                WHAT,
                format!("TEE type {:#x} is not TDX", header.tee_type),
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
        let report = match header.version {
            4 => TdReport::read(&mut r, TD_REPORT10_LEN)?,
            5 => {
                let body_type = r.u16("body_type")?;
                let size = r.u32("body_size")? as usize;
                let expected = match body_type {
                    2 => TD_REPORT10_LEN,
                    3 => TD_REPORT15_LEN,
                    4 => TD_REPORT15_EX_LEN,
                    t => {
                        return Err(Error::malformed(
                            WHAT,
                            format!("v5 body type {t} is not a TD report"),
                        ));
                    }
                };
                if size != expected {
                    return Err(Error::malformed(
                        WHAT,
                        format!("v5 body type {body_type} with size {size}, expected {expected}"),
                    ));
                }
                let mut body = r.sub(size, "td_report")?;
                let rep = TdReport::read(&mut body, size)?;
                body.finish()?;
                rep
            }
            v => {
                return Err(Error::malformed(
                    WHAT,
                    format!("version {v}, expected 4 or 5"),
                ));
            }
        };
        let signed_len = r.offset();
        let sig_len = r.u32("signature_data_len")? as usize;
        let mut s = r.sub(sig_len, "signature_data")?;
        let signature = SignatureData::read_v4(&mut s)?;
        s.finish()?;
        let end = r.offset();
        let padding = dcap::check_padding(WHAT, &mut r)?;
        let raw = b.get(..end).unwrap_or_default().to_vec();
        Ok(Quote {
            header,
            report,
            signature,
            signed_len,
            raw,
            padding,
        })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }
    /// The TD report.
    pub fn report(&self) -> &TdReport {
        &self.report
    }
    /// Signature data.
    pub fn signature_data(&self) -> &SignatureData {
        &self.signature
    }
    /// REPORTDATA.
    pub fn report_data(&self) -> &[u8; 64] {
        &self.report.report_data
    }
    /// MRTD.
    pub fn mr_td(&self) -> &[u8; 48] {
        &self.report.mr_td
    }
    /// RTMR0..3.
    pub fn rtmrs(&self) -> &[[u8; 48]; 4] {
        &self.report.rtmr
    }
    /// True when the TD is debuggable.
    pub fn debug(&self) -> bool {
        self.report.debug()
    }
    /// Bytes covered by the quote signature (header, v5 body descriptor, TD report).
    pub fn signed_bytes(&self) -> &[u8] {
        self.raw.get(..self.signed_len).unwrap_or_default()
    }
    /// The quote bytes without padding.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }
    /// How many zero bytes followed the quote.
    pub fn padding(&self) -> usize {
        self.padding
    }
    /// The PCK chain (DER, leaf first).
    pub fn pck_chain(&self) -> Result<Vec<Vec<u8>>> {
        self.signature.qe.pck.pem_chain()
    }
    /// The measurement mse reports for a TD: MRTD ‖ RTMR0 ‖ RTMR1 ‖ RTMR2 ‖ RTMR3 (240 bytes).
    pub fn measurement(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(48 * 5);
        m.extend_from_slice(&self.report.mr_td);
        for r in &self.report.rtmr {
            m.extend_from_slice(r);
        }
        m
    }
}
