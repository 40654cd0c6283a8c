//! AMD SEV-SNP attestation report (ABI spec 56860, `ATTESTATION_REPORT`, 1184 bytes) and the
//! certificate table that may follow it in evidence. Parse only, never panics.
//!
//! Evidence under OID 1.2.840.113741.1337.7 is `report (1184) ‖ [certificate table]`. Three
//! table layouts occur in the wild and are all accepted (docs/attestation.md §SEV-SNP):
//!
//! * [`CertTableLayout::LengthPrefixed`] (Cosmian tee-tools, what mse writes):
//!   `count u32 ‖ count × (len u32 ‖ guid 16 ‖ DER[len − 16])`;
//! * [`CertTableLayout::Serialized`] (a serialized list of `sev` crate entries):
//!   `count u64 ‖ count × (kind u32 ‖ 16u64 ‖ guid 16 ‖ der_len u64 ‖ DER)`;
//! * [`CertTableLayout::Ghcb`] (AMD GHCB / Linux extended report, configfs-tsm auxblob):
//!   `(guid 16 ‖ offset u32 ‖ length u32)* ‖ 24 zero bytes ‖ data`, offsets from the table start.

use crate::error::{Error, Result};
use crate::reader::Reader;

const WHAT: &str = "SEV-SNP report";
const TABLE: &str = "SEV-SNP certificate table";

/// Report length.
pub const REPORT_LEN: usize = 0x4A0;
/// The signature covers bytes 0x000..0x2A0.
pub const SIGNED_LEN: usize = 0x2A0;
/// Guest policy bit 19: debugging allowed.
pub const POLICY_DEBUG: u64 = 1 << 19;
/// Guest policy bit 18: association with a migration agent allowed.
pub const POLICY_MIGRATE_MA: u64 = 1 << 18;
/// Guest policy bit 16: SMT allowed.
pub const POLICY_SMT: u64 = 1 << 16;

/// A TCB_VERSION value (u64). Its byte layout depends on the processor generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TcbVersion(pub u64);

/// Security patch levels of a TCB_VERSION, decoded for one generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TcbParts {
    /// FMC SPL (Turin and later only).
    pub fmc: Option<u8>,
    /// Boot loader SPL.
    pub bootloader: u8,
    /// PSP OS (TEE) SPL.
    pub tee: u8,
    /// SNP firmware SPL.
    pub snp: u8,
    /// Microcode SPL.
    pub microcode: u8,
}

/// AMD EPYC generation, which fixes the ARK/ASK and the TCB_VERSION layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Generation {
    /// 3rd gen (Zen 3).
    Milan,
    /// 4th gen (Zen 4).
    Genoa,
    /// 5th gen (Zen 5).
    Turin,
}

impl Generation {
    /// Name as it appears in AMD certificate CNs ("ARK-Milan", "SEV-Milan").
    pub fn name(self) -> &'static str {
        match self {
            Generation::Milan => "Milan",
            Generation::Genoa => "Genoa",
            Generation::Turin => "Turin",
        }
    }

    /// From CPUID family/model, as found in v3+ reports.
    pub fn from_cpuid(family: u8, model: u8) -> Option<Self> {
        match (family, model) {
            (0x19, 0x00..=0x0F) => Some(Generation::Milan),
            (0x19, 0x10..=0x1F) | (0x19, 0xA0..=0xAF) => Some(Generation::Genoa),
            (0x1A, 0x00..=0x11) => Some(Generation::Turin),
            _ => None,
        }
    }
}

impl TcbVersion {
    /// Decode for a generation.
    pub fn parts(self, generation: Generation) -> TcbParts {
        let b = self.0.to_le_bytes();
        match generation {
            Generation::Milan | Generation::Genoa => TcbParts {
                fmc: None,
                bootloader: b[0],
                tee: b[1],
                snp: b[6],
                microcode: b[7],
            },
            Generation::Turin => TcbParts {
                fmc: Some(b[0]),
                bootloader: b[1],
                tee: b[2],
                snp: b[3],
                microcode: b[7],
            },
        }
    }
}

/// A parsed, *unverified* SEV-SNP attestation report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Report format version (2, 3, 5…).
    pub version: u32,
    /// Guest SVN.
    pub guest_svn: u32,
    /// Guest policy (bit 19 = DEBUG).
    pub policy: u64,
    /// Family id from the ID block.
    pub family_id: [u8; 16],
    /// Image id from the ID block.
    pub image_id: [u8; 16],
    /// VMPL of the request.
    pub vmpl: u32,
    /// Signature algorithm (1 = ECDSA P-384 with SHA-384).
    pub signature_algo: u32,
    /// Current TCB.
    pub current_tcb: TcbVersion,
    /// Platform info flags.
    pub platform_info: u64,
    /// Bit 0 AUTHOR_KEY_EN, bit 1 MASK_CHIP_KEY, bits 2..4 SIGNING_KEY (0 VCEK, 1 VLEK, 7 none).
    pub key_info: u32,
    /// REPORT_DATA chosen by the guest.
    pub report_data: [u8; 64],
    /// MEASUREMENT: launch digest.
    pub measurement: [u8; 48],
    /// HOST_DATA supplied at launch.
    pub host_data: [u8; 32],
    /// ID key digest.
    pub id_key_digest: [u8; 48],
    /// Author key digest.
    pub author_key_digest: [u8; 48],
    /// Report id.
    pub report_id: [u8; 32],
    /// Report id of the migration agent.
    pub report_id_ma: [u8; 32],
    /// REPORTED_TCB: the TCB the VCEK is derived from.
    pub reported_tcb: TcbVersion,
    /// CPUID family (v3+).
    pub cpuid_fam_id: Option<u8>,
    /// CPUID model (v3+).
    pub cpuid_mod_id: Option<u8>,
    /// CPUID stepping (v3+).
    pub cpuid_step: Option<u8>,
    /// CHIP_ID (zero when masked).
    pub chip_id: [u8; 64],
    /// Committed TCB.
    pub committed_tcb: TcbVersion,
    /// Launch TCB.
    pub launch_tcb: TcbVersion,
    /// Signature r (little-endian, 72 bytes; P-384 uses the first 48).
    pub signature_r: [u8; 72],
    /// Signature s (little-endian, 72 bytes).
    pub signature_s: [u8; 72],
    raw: Vec<u8>,
}

/// Which key signed the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum SigningKey {
    /// Versioned Chip Endorsement Key.
    Vcek,
    /// Versioned Loaded Endorsement Key.
    Vlek,
    /// Not signed.
    None,
    /// A reserved value.
    Reserved(u32),
}

impl Report {
    /// Parse exactly [`REPORT_LEN`] bytes.
    pub fn parse(b: &[u8]) -> Result<Self> {
        let mut r = Reader::new(WHAT, b);
        let rep = Self::read(&mut r)?;
        r.finish()?;
        Ok(rep)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let raw = r.take(REPORT_LEN, "report")?;
        let mut r = Reader::new(WHAT, raw);
        let version = r.u32("version")?;
        if !(2..=5).contains(&version) {
            return Err(Error::malformed(
                WHAT,
                format!("version {version} is not a known report version (2..5)"),
            ));
        }
        let guest_svn = r.u32("guest_svn")?;
        let policy = r.u64("policy")?;
        let family_id = r.array("family_id")?;
        let image_id = r.array("image_id")?;
        let vmpl = r.u32("vmpl")?;
        let signature_algo = r.u32("signature_algo")?;
        let current_tcb = TcbVersion(r.u64("current_tcb")?);
        let platform_info = r.u64("platform_info")?;
        let key_info = r.u32("key_info")?;
        r.take(4, "reserved")?;
        let report_data = r.array("report_data")?;
        let measurement = r.array("measurement")?;
        let host_data = r.array("host_data")?;
        let id_key_digest = r.array("id_key_digest")?;
        let author_key_digest = r.array("author_key_digest")?;
        let report_id = r.array("report_id")?;
        let report_id_ma = r.array("report_id_ma")?;
        let reported_tcb = TcbVersion(r.u64("reported_tcb")?);
        let cpuid = r.array::<3>("cpuid")?;
        let (cpuid_fam_id, cpuid_mod_id, cpuid_step) = if version >= 3 {
            (Some(cpuid[0]), Some(cpuid[1]), Some(cpuid[2]))
        } else {
            (None, None, None)
        };
        r.take(21, "reserved")?;
        let chip_id = r.array("chip_id")?;
        let committed_tcb = TcbVersion(r.u64("committed_tcb")?);
        r.take(8, "current/committed version")?;
        let launch_tcb = TcbVersion(r.u64("launch_tcb")?);
        r.take(SIGNED_LEN - r.offset(), "reserved")?;
        let signature_r = r.array("signature.r")?;
        let signature_s = r.array("signature.s")?;
        Ok(Report {
            version,
            guest_svn,
            policy,
            family_id,
            image_id,
            vmpl,
            signature_algo,
            current_tcb,
            platform_info,
            key_info,
            report_data,
            measurement,
            host_data,
            id_key_digest,
            author_key_digest,
            report_id,
            report_id_ma,
            reported_tcb,
            cpuid_fam_id,
            cpuid_mod_id,
            cpuid_step,
            chip_id,
            committed_tcb,
            launch_tcb,
            signature_r,
            signature_s,
            raw: raw.to_vec(),
        })
    }

    /// True when the guest policy allows debugging.
    pub fn debug(&self) -> bool {
        self.policy & POLICY_DEBUG != 0
    }

    /// Which key signed the report.
    pub fn signing_key(&self) -> SigningKey {
        match (self.key_info >> 2) & 0x7 {
            0 => SigningKey::Vcek,
            1 => SigningKey::Vlek,
            7 => SigningKey::None,
            v => SigningKey::Reserved(v),
        }
    }

    /// Generation from CPUID fields (v3+ reports).
    pub fn generation_hint(&self) -> Option<Generation> {
        Generation::from_cpuid(self.cpuid_fam_id?, self.cpuid_mod_id?)
    }

    /// The bytes covered by the signature.
    pub fn signed_bytes(&self) -> &[u8] {
        self.raw.get(..SIGNED_LEN).unwrap_or_default()
    }

    /// The report bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }
}

/// The kind of a certificate in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum CertKind {
    /// AMD Root Key.
    Ark,
    /// AMD SEV Key (signs VCEKs) or ASVK (signs VLEKs).
    Ask,
    /// Versioned Chip Endorsement Key.
    Vcek,
    /// Versioned Loaded Endorsement Key.
    Vlek,
    /// Certificate revocation list.
    Crl,
    /// Any other GUID.
    Other([u8; 16]),
}

const GUID_ARK: [u8; 16] = hex16("c0b406a4a803495297433fb6014cd0ae");
const GUID_ASK: [u8; 16] = hex16("4ab7b379bbac4fe4a02f05aef327c782");
const GUID_VCEK: [u8; 16] = hex16("63da758de6644564adc5f4b93be8accd");
const GUID_VLEK: [u8; 16] = hex16("a8074bc2a25a483eaae639c045a0b8a1");
const GUID_CRL: [u8; 16] = hex16("92f81bc358114d3d97ffd19f88dc67ea");

const fn hex16(s: &str) -> [u8; 16] {
    const fn nib(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => 0,
        }
    }
    let b = s.as_bytes();
    let mut out = [0u8; 16];
    let mut i = 0;
    while i < 16 && 2 * i + 1 < b.len() {
        out[i] = nib(b[2 * i]) << 4 | nib(b[2 * i + 1]);
        i += 1;
    }
    out
}

impl CertKind {
    /// From the table GUID (in its textual byte order).
    pub fn from_guid(g: [u8; 16]) -> Self {
        match g {
            GUID_ARK => CertKind::Ark,
            GUID_ASK => CertKind::Ask,
            GUID_VCEK => CertKind::Vcek,
            GUID_VLEK => CertKind::Vlek,
            GUID_CRL => CertKind::Crl,
            other => CertKind::Other(other),
        }
    }

    /// The table GUID.
    pub fn guid(self) -> [u8; 16] {
        match self {
            CertKind::Ark => GUID_ARK,
            CertKind::Ask => GUID_ASK,
            CertKind::Vcek => GUID_VCEK,
            CertKind::Vlek => GUID_VLEK,
            CertKind::Crl => GUID_CRL,
            CertKind::Other(g) => g,
        }
    }
}

/// One certificate of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableCert {
    /// What it is.
    pub kind: CertKind,
    /// Its DER bytes.
    pub der: Vec<u8>,
}

/// Which layout the table used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum CertTableLayout {
    /// No table followed the report.
    Absent,
    /// `count u32 ‖ (len u32 ‖ guid ‖ DER)*` (Cosmian tee-tools; what mse writes).
    LengthPrefixed,
    /// `count u64 ‖ (kind u32 ‖ 16u64 ‖ guid ‖ len u64 ‖ DER)*`.
    Serialized,
    /// AMD GHCB table: `(guid ‖ offset u32 ‖ len u32)* ‖ zero entry ‖ data`.
    Ghcb,
}

/// SEV-SNP evidence: a report and the certificates that came with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    /// The report.
    pub report: Report,
    /// Certificates found after the report, in table order.
    pub certs: Vec<TableCert>,
    /// The layout of the table.
    pub layout: CertTableLayout,
}

impl Evidence {
    /// Parse `report ‖ [certificate table]`.
    pub fn parse(b: &[u8]) -> Result<Self> {
        let mut r = Reader::new(WHAT, b);
        let report = Report::read(&mut r)?;
        let rest = r.rest();
        let (certs, layout) = parse_cert_table(rest)?;
        Ok(Evidence {
            report,
            certs,
            layout,
        })
    }

    /// The first certificate of a kind.
    pub fn cert(&self, kind: CertKind) -> Option<&[u8]> {
        self.certs
            .iter()
            .find(|c| c.kind == kind)
            .map(|c| c.der.as_slice())
    }
}

/// Parse a certificate table in any of the three layouts (empty input → no certificates).
/// Each layout is tried strictly (every length consistent, everything consumed), so at most
/// one can match.
pub fn parse_cert_table(b: &[u8]) -> Result<(Vec<TableCert>, CertTableLayout)> {
    if b.is_empty() {
        return Ok((Vec::new(), CertTableLayout::Absent));
    }
    if let Ok(c) = parse_length_prefixed(b) {
        return Ok((c, CertTableLayout::LengthPrefixed));
    }
    if let Ok(c) = parse_serialized(b) {
        return Ok((c, CertTableLayout::Serialized));
    }
    if let Ok(c) = parse_ghcb(b) {
        return Ok((c, CertTableLayout::Ghcb));
    }
    Err(Error::malformed(
        TABLE,
        format!(
            "{} bytes after the report are not a certificate table in a known layout",
            b.len()
        ),
    ))
}

// A table never holds more than a handful of certificates; bounding the count keeps a hostile
// count from driving a large allocation.
const MAX_CERTS: usize = 16;

fn parse_length_prefixed(b: &[u8]) -> Result<Vec<TableCert>> {
    let mut r = Reader::new(TABLE, b);
    let count = r.u32("count")? as usize;
    if count == 0 || count > MAX_CERTS {
        return Err(Error::malformed(TABLE, "bad count"));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let len = r.u32("entry length")? as usize;
        let der_len = len
            .checked_sub(16)
            .ok_or_else(|| Error::malformed(TABLE, "entry shorter than its GUID"))?;
        let kind = CertKind::from_guid(r.array("guid")?);
        out.push(TableCert {
            kind,
            der: r.take(der_len, "certificate")?.to_vec(),
        });
    }
    r.finish()?;
    Ok(out)
}

fn parse_serialized(b: &[u8]) -> Result<Vec<TableCert>> {
    let mut r = Reader::new(TABLE, b);
    let count =
        usize::try_from(r.u64("count")?).map_err(|_| Error::malformed(TABLE, "bad count"))?;
    if count == 0 || count > MAX_CERTS {
        return Err(Error::malformed(TABLE, "bad count"));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let _kind_tag = r.u32("kind")?;
        if r.u64("guid length")? != 16 {
            return Err(Error::malformed(TABLE, "GUID length is not 16"));
        }
        let kind = CertKind::from_guid(r.array("guid")?);
        let len = usize::try_from(r.u64("certificate length")?)
            .map_err(|_| Error::malformed(TABLE, "bad length"))?;
        out.push(TableCert {
            kind,
            der: r.take(len, "certificate")?.to_vec(),
        });
    }
    r.finish()?;
    Ok(out)
}

fn parse_ghcb(b: &[u8]) -> Result<Vec<TableCert>> {
    let mut r = Reader::new(TABLE, b);
    let mut out = Vec::new();
    loop {
        let guid: [u8; 16] = r.array("guid")?;
        let offset = r.u32("offset")? as usize;
        let len = r.u32("length")? as usize;
        if guid == [0; 16] {
            if offset != 0 || len != 0 {
                return Err(Error::malformed(TABLE, "terminator entry is not all zero"));
            }
            break;
        }
        if out.len() == MAX_CERTS {
            return Err(Error::malformed(TABLE, "too many entries"));
        }
        let end = offset
            .checked_add(len)
            .ok_or_else(|| Error::malformed(TABLE, "entry out of range"))?;
        let der = b
            .get(offset..end)
            .ok_or_else(|| Error::malformed(TABLE, "entry out of range"))?;
        if offset < r.offset() {
            return Err(Error::malformed(TABLE, "entry overlaps the table"));
        }
        out.push(TableCert {
            kind: CertKind::from_guid(guid),
            der: der.to_vec(),
        });
    }
    if out.is_empty() {
        return Err(Error::malformed(TABLE, "empty table"));
    }
    Ok(out)
}

/// Encode certificates in the [`CertTableLayout::LengthPrefixed`] layout.
pub fn encode_cert_table(certs: &[TableCert]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let count =
        u32::try_from(certs.len()).map_err(|_| Error::Usage("too many certificates".into()))?;
    out.extend_from_slice(&count.to_le_bytes());
    for c in certs {
        let len = c
            .der
            .len()
            .checked_add(16)
            .and_then(|l| u32::try_from(l).ok())
            .ok_or_else(|| Error::Usage("certificate too large".into()))?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&c.kind.guid());
        out.extend_from_slice(&c.der);
    }
    Ok(out)
}
