//! Verification: parse → chain → signatures → collateral → binding → policy, with time as an
//! input. Only this module builds a [`Verified`], so holding one proves the steps ran.
//!
//! Steps, in order, for SGX / sim / TDX quotes (each failure names its [`Step`]):
//! 1. parse the quote; 2. PCK certificate chain to the pinned Intel SGX Root CA (or, for
//!    simulation, to the policy's simulation root); 3. QE report signature by the PCK key;
//! 4. QE report binding (its report data = SHA-256(attestation key ‖ QE auth data));
//! 5. quote signature by the attestation key; 6. policy: debug; 7. collateral with dcap-qvl
//!    (CRLs, TCB info, QE identity, TCB level) at `now`, or inside the collateral window when
//!    the policy accepts stale collateral (with a warning naming what expired); 8. policy: TCB
//!    status, SVNs; 9. report data binding; 10. signer and measurement.
//!
//! SEV-SNP: VCEK/VLEK → ASK → pinned ARK (sev crate), validity at `now`, report signature over
//! the received bytes, REPORTED_TCB and CHIP_ID against the VCEK, then policy and binding.

use std::time::SystemTime;

use p256::ecdsa::signature::Verifier as _;
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::collateral::Collateral;
use crate::error::{Error, Result, Step};
use crate::policy::{Policy, TcbStatus};
use crate::ratls::{RaTlsCertificate, RawEvidence};
use crate::{TeeKind, dcap, pki, report_data, sgx, sim, snp, tdx};

/// Intel SGX Root CA (DER), pinned. SHA-256 fingerprint
/// 44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3 (Intel's published root;
/// the same bytes dcap-qvl pins).
pub const INTEL_SGX_ROOT_CA_DER: &[u8] = include_bytes!("roots/intel-sgx-root-ca.der");

/// Proof that verification ran: only this module can build one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Verified<T>(T);

impl<T> Verified<T> {
    /// The verified value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Verified<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// What the caller expects, beyond the policy: per-verification facts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expected {
    /// The expected measurement (computed by the client); compared exactly. For TDX, 48
    /// bytes compare MRTD and 240 bytes compare MRTD ‖ RTMR0..3.
    pub measurement: Option<Vec<u8>>,
    /// The exact 64 bytes of report data expected (fresh mode: [`report_data::fresh`]).
    pub report_data: Option<[u8; 64]>,
    /// The expected signer (SGX MRSIGNER).
    pub signer: Option<Vec<u8>>,
    /// The expected enclave X25519 key (second half of RA-TLS report data).
    pub enclave_key: Option<[u8; 32]>,
}

/// How the report data was bound.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Binding {
    /// Report data = SHA-256(certificate key) ‖ enclave key (RA-TLS certificate).
    Certificate {
        /// The second half was all zero (mse-lib-sgx < 2.1), accepted by policy.
        legacy_zero_enclave_key: bool,
    },
    /// Report data equals the expected 64 bytes (e.g. fresh evidence over a nonce).
    Exact,
    /// Not checked: nothing ties this evidence to a key or a nonce.
    NotChecked,
}

/// The collateral that was used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CollateralUse {
    /// Where it came from.
    pub source: String,
    /// The time at which it was evaluated (RFC 3339): `now`, or inside its window if stale.
    pub evaluated_at: String,
    /// Earliest expiry among its items (RFC 3339).
    pub valid_until: Option<String>,
    /// True if it had expired at `now` and was accepted by policy.
    pub stale: bool,
}

/// Verified facts about the evidence, and the warnings the policy let through.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Appraisal {
    /// The TEE (Sim for simulation quotes).
    pub tee: TeeKind,
    /// True for simulation evidence: no TEE protects this node.
    pub simulated: bool,
    /// MRENCLAVE (32), MRTD ‖ RTMR0..3 (240), or SNP MEASUREMENT (48).
    #[serde(serialize_with = "hex_ser")]
    pub measurement: Vec<u8>,
    /// SGX MRSIGNER (sim: SHA-256 of the simulation root key).
    #[serde(serialize_with = "hex_opt")]
    pub signer: Option<[u8; 32]>,
    /// TCB status (Intel spelling), "SIMULATED", or the SNP TCB summary.
    pub tcb_status: String,
    /// Intel security advisories that apply to the platform.
    pub advisory_ids: Vec<String>,
    /// Debug enclave / debuggable guest (only if the policy allowed it).
    pub debug: bool,
    /// Security versions: ISVPRODID/ISVSVN, TEE_TCB_SVN, SNP guest SVN and TCB.
    pub svn: Svn,
    /// The 64 bytes of report data.
    #[serde(serialize_with = "hex_ser")]
    pub report_data: Vec<u8>,
    /// How the report data was bound.
    pub binding: Binding,
    /// The enclave X25519 key carried by RA-TLS report data, if any.
    #[serde(serialize_with = "hex_opt")]
    pub enclave_key: Option<[u8; 32]>,
    /// The collateral used (SGX/TDX).
    pub collateral: Option<CollateralUse>,
    /// The verification time (RFC 3339).
    pub verified_at: String,
    /// The policy preset.
    pub policy: &'static str,
    /// What the policy accepted but a user should know.
    pub warnings: Vec<String>,
}

/// Security versions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Svn {
    /// SGX ISVPRODID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isv_prod_id: Option<u16>,
    /// SGX ISVSVN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isv_svn: Option<u16>,
    /// TDX TEE_TCB_SVN (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tee_tcb_svn: Option<String>,
    /// SNP guest SVN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_svn: Option<u32>,
    /// SNP REPORTED_TCB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snp_reported_tcb: Option<snp::TcbParts>,
}

/// The warning every simulated appraisal carries.
pub const SIMULATED_WARNING: &str = "SIMULATED: this evidence comes from an mse simulation, not a TEE. Nothing protects the code, keys or data from the machine's operator.";

fn hex_ser<S: Serializer>(v: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(v))
}

fn hex_opt<S: Serializer>(v: &Option<[u8; 32]>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match v {
        Some(b) => s.serialize_str(&hex::encode(b)),
        None => s.serialize_none(),
    }
}

/// Parse + chain + signatures + collateral + policy, then check report data against
/// `expected.report_data` (a warning says so when it is `None`). `now` is explicit.
pub fn verify_at(
    evidence: &RawEvidence,
    collateral: &Collateral,
    policy: &Policy,
    expected: &Expected,
    now: SystemTime,
) -> Result<Verified<Appraisal>> {
    let mut a = appraise(evidence, collateral, policy, now)?;
    match &expected.report_data {
        Some(rd) => {
            if !bool::from(a.report_data.as_slice().ct_eq(rd.as_slice())) {
                return Err(Error::verify(
                    Step::ReportDataBinding,
                    format!(
                        "report data {} is not the expected {}: this evidence was made for another key or nonce (replayed?)",
                        short(&a.report_data),
                        short(rd)
                    ),
                ));
            }
            a.binding = Binding::Exact;
        }
        None => {
            a.binding = Binding::NotChecked;
            a.warnings.push(
                "report data not checked: nothing ties this evidence to a TLS key or a nonce"
                    .into(),
            );
        }
    }
    identity(&a, policy, expected)?;
    Ok(Verified(a))
}

/// Verify an RA-TLS certificate: its evidence, and that the report data binds the
/// certificate's key (SHA-256 of the uncompressed point) and the enclave key
/// (`expected.enclave_key` when given; the old all-zero half only if the policy accepts it).
pub fn verify_certificate_at(
    cert: &RaTlsCertificate,
    collateral: &Collateral,
    policy: &Policy,
    expected: &Expected,
    now: SystemTime,
) -> Result<Verified<Appraisal>> {
    let mut cert_warnings = Vec::new();
    let t = pki::unix(now);
    let (nb, na) = (pki::unix(cert.not_before()), pki::unix(cert.not_after()));
    if t < nb || t > na {
        let msg = if t < nb {
            format!("not valid before {}", pki::fmt_unix(nb))
        } else {
            format!("expired on {}", pki::fmt_unix(na))
        };
        if policy.certificate_expiry_is_warning {
            cert_warnings.push(format!(
                "RA-TLS certificate {msg} (accepted by the {} policy)",
                policy.name
            ));
        } else {
            return Err(Error::verify(
                Step::Certificate,
                format!("the certificate is {msg}"),
            ));
        }
    }
    let mut a = appraise(cert.evidence(), collateral, policy, now)?;
    a.warnings.extend(cert_warnings);

    let key_hash = report_data::tls_key_hash(cert.tls_public_key());
    let (first, second) = a.report_data.split_at(32);
    if !bool::from(first.ct_eq(&key_hash)) {
        return Err(Error::verify(
            Step::ReportDataBinding,
            format!(
                "report data starts with {} but SHA-256 of the certificate's public key is {}: the evidence was not made for this certificate",
                hex::encode(first),
                hex::encode(key_hash)
            ),
        ));
    }
    let second: [u8; 32] = second
        .try_into()
        .map_err(|_| Error::verify(Step::ReportDataBinding, "short report data"))?;
    let legacy = bool::from(second.ct_eq(&report_data::LEGACY_ZERO_ENCLAVE_KEY));
    if let Some(k) = &expected.enclave_key {
        if !bool::from(second.ct_eq(k)) {
            return Err(Error::verify(
                Step::ReportDataBinding,
                format!(
                    "the enclave key in report data is {}, expected {}",
                    hex::encode(second),
                    hex::encode(k)
                ),
            ));
        }
    } else if legacy {
        if !policy.legacy_zero_enclave_key {
            return Err(Error::verify(
                Step::ReportDataBinding,
                "the second half of report data is all zero: a certificate from mse-lib-sgx < 2.1 with no enclave key; only the mse-compatible policy accepts it",
            ));
        }
        a.warnings.push("report data has no enclave key (all-zero second half, mse-lib-sgx < 2.1): sealing to this enclave is impossible".into());
    }
    a.enclave_key = (!legacy).then_some(second);
    a.binding = Binding::Certificate {
        legacy_zero_enclave_key: legacy,
    };
    if let Some(rd) = &expected.report_data
        && !bool::from(a.report_data.as_slice().ct_eq(rd.as_slice()))
    {
        return Err(Error::verify(
            Step::ReportDataBinding,
            "report data is not the expected value",
        ));
    }
    identity(&a, policy, expected)?;
    Ok(Verified(a))
}

fn short(b: &[u8]) -> String {
    let h = hex::encode(b);
    match h.get(..16) {
        Some(p) => format!("{p}…"),
        None => h,
    }
}

/// Measurement and signer against the policy lists and the expected values.
fn identity(a: &Appraisal, policy: &Policy, expected: &Expected) -> Result<()> {
    let measurement_matches = |want: &[u8]| -> bool {
        if a.tee == TeeKind::Tdx && want.len() == 48 {
            a.measurement.get(..48) == Some(want)
        } else {
            a.measurement.as_slice() == want
        }
    };
    if let Some(want) = &expected.measurement
        && !measurement_matches(want)
    {
        return Err(Error::verify(
            Step::Measurement,
            format!(
                "expected {}, found {}: the node does not run the code, runtime and arguments you expect",
                hex::encode(want),
                hex::encode(&a.measurement)
            ),
        ));
    }
    if !policy.measurements.is_empty()
        && !policy.measurements.iter().any(|m| measurement_matches(m))
    {
        return Err(Error::verify(
            Step::Measurement,
            format!(
                "found {}, which is not among the {} measurement(s) the policy accepts",
                hex::encode(&a.measurement),
                policy.measurements.len()
            ),
        ));
    }
    let signer = a.signer.as_ref().map(|s| s.as_slice());
    if let Some(want) = &expected.signer
        && signer != Some(want.as_slice())
    {
        return Err(Error::verify(
            Step::Signer,
            format!(
                "expected MRSIGNER {}, found {}",
                hex::encode(want),
                signer.map_or("none".into(), hex::encode)
            ),
        ));
    }
    if !policy.signers.is_empty() && !policy.signers.iter().any(|s| Some(s.as_slice()) == signer) {
        return Err(Error::verify(
            Step::Signer,
            format!(
                "signer {} is not among those the policy accepts",
                signer.map_or("none".into(), hex::encode)
            ),
        ));
    }
    Ok(())
}

fn appraise(
    ev: &RawEvidence,
    collateral: &Collateral,
    policy: &Policy,
    now: SystemTime,
) -> Result<Appraisal> {
    match ev.kind {
        TeeKind::Sgx | TeeKind::Sim => appraise_sgx(&ev.bytes, collateral, policy, now),
        TeeKind::Tdx => appraise_tdx(&ev.bytes, collateral, policy, now),
        TeeKind::SevSnp => appraise_snp(&ev.bytes, collateral, policy, now),
    }
}

fn base(tee: TeeKind, policy: &Policy, now: SystemTime) -> Appraisal {
    Appraisal {
        tee,
        simulated: tee == TeeKind::Sim,
        measurement: Vec::new(),
        signer: None,
        tcb_status: String::new(),
        advisory_ids: Vec::new(),
        debug: false,
        svn: Svn::default(),
        report_data: Vec::new(),
        binding: Binding::NotChecked,
        enclave_key: None,
        collateral: None,
        verified_at: pki::fmt_unix(pki::unix(now)),
        policy: policy.name,
        warnings: Vec::new(),
    }
}

fn require_tee(policy: &Policy, tee: TeeKind) -> Result<()> {
    if policy.tees.contains(&tee) {
        Ok(())
    } else {
        Err(Error::verify(
            Step::PolicyTee,
            format!("{tee} evidence is not accepted by this policy"),
        ))
    }
}

/// Decide whether a DCAP chain is Intel's or a trusted simulation root; the error says why not.
fn classify_root(chain: &[Vec<u8>], policy: &Policy) -> Result<bool> {
    let root = chain
        .last()
        .ok_or_else(|| Error::verify(Step::PckChain, "empty PCK certificate chain"))?;
    if root.as_slice() == INTEL_SGX_ROOT_CA_DER {
        return Ok(false);
    }
    if let Some(sim_root) = &policy.sim_root
        && root.as_slice() == sim_root.der()
    {
        return Ok(true);
    }
    let name = pki::parse_cert(root, "root certificate")
        .map(|c| pki::cert_name(&c))
        .unwrap_or_default();
    if sim::is_sim_name(&name) {
        return Err(Error::verify(
            Step::PolicySimulation,
            match &policy.sim_root {
                None => "this is mse SIMULATION evidence: its chain ends at an mse simulation root, not at Intel's. No TEE protects this node. Accept it only for local development, with allow_simulation (`mse verify --policy dev`, which trusts this machine's simulation root)".to_owned(),
                Some(_) => "this is mse SIMULATION evidence from another installation: its simulation root is not the one the policy trusts".to_owned(),
            },
        ));
    }
    Err(Error::verify(
        Step::PckChain,
        format!("the chain ends at {name:?}, not at the pinned Intel SGX Root CA"),
    ))
}

/// Steps 2–5, common to real and simulated DCAP quotes.
fn dcap_signatures(
    sig: &dcap::SignatureData,
    signed: &[u8],
    chain: &[Vec<u8>],
    anchor: &[u8],
    now: SystemTime,
) -> Result<()> {
    pki::verify_chain(chain, anchor, now, Step::PckChain, "PCK certificate chain")?;
    let leaf_der = chain
        .first()
        .ok_or_else(|| Error::verify(Step::PckChain, "empty chain"))?;
    let leaf = pki::parse_cert(leaf_der, "PCK certificate")
        .map_err(|e| Error::verify(Step::PckChain, e.to_string()))?;
    let pck_point = pki::p256_point(leaf.public_key())
        .ok_or_else(|| Error::verify(Step::PckChain, "the PCK key is not ECDSA P-256"))?;
    let pck = p256::ecdsa::VerifyingKey::from_sec1_bytes(&pck_point)
        .map_err(|e| Error::verify(Step::PckChain, format!("bad PCK key: {e}")))?;
    let qe_sig = p256::ecdsa::Signature::from_slice(&sig.qe.qe_report_signature)
        .map_err(|e| Error::verify(Step::QeReportSignature, format!("malformed signature: {e}")))?;
    pck.verify(&sig.qe.qe_report_raw, &qe_sig).map_err(|_| {
        Error::verify(
            Step::QeReportSignature,
            "the QE report is not signed by the PCK certificate's key",
        )
    })?;

    let mut h = Sha256::new();
    h.update(sig.attestation_key);
    h.update(&sig.qe.qe_auth_data);
    let want = h.finalize();
    if sig.qe.qe_report.report_data.get(..32) != Some(want.as_slice()) {
        return Err(Error::verify(
            Step::QeReport,
            "the QE report does not bind the attestation key (report data ≠ SHA-256(attestation key ‖ QE auth data))",
        ));
    }

    let ak =
        p256::ecdsa::VerifyingKey::from_sec1_bytes(&sig.attestation_key_sec1()).map_err(|e| {
            Error::verify(
                Step::QuoteSignature,
                format!("the attestation key is not a P-256 point: {e}"),
            )
        })?;
    let qsig = p256::ecdsa::Signature::from_slice(&sig.quote_signature)
        .map_err(|e| Error::verify(Step::QuoteSignature, format!("malformed signature: {e}")))?;
    ak.verify(signed, &qsig).map_err(|_| {
        Error::verify(
            Step::QuoteSignature,
            "the quote (header and report body) is not signed by the attestation key",
        )
    })
}

fn appraise_sgx(
    bytes: &[u8],
    collateral: &Collateral,
    policy: &Policy,
    now: SystemTime,
) -> Result<Appraisal> {
    let q = sgx::Quote::parse(bytes)?;
    let chain = q
        .pck_chain()
        .map_err(|e| Error::verify(Step::PckChain, e.to_string()))?;
    let simulated = classify_root(&chain, policy)?;
    let tee = if simulated {
        TeeKind::Sim
    } else {
        TeeKind::Sgx
    };
    require_tee(policy, tee)?;
    let anchor = match (&policy.sim_root, simulated) {
        (Some(r), true) => r.der(),
        _ => INTEL_SGX_ROOT_CA_DER,
    };
    dcap_signatures(q.signature_data(), q.signed_bytes(), &chain, anchor, now)?;
    if q.debug() && !policy.allow_debug {
        return Err(Error::verify(
            Step::PolicyDebug,
            "the enclave runs in DEBUG mode (ATTRIBUTES.flags has DEBUG 0x2): the host can read and change its memory. Refused unless the policy allows debug enclaves (never for production)",
        ));
    }
    let mut a = base(tee, policy, now);
    a.measurement = q.mr_enclave().to_vec();
    a.signer = Some(*q.mr_signer());
    a.debug = q.debug();
    a.report_data = q.report_data().to_vec();
    a.svn.isv_prod_id = Some(q.isv_prod_id());
    a.svn.isv_svn = Some(q.isv_svn());
    if a.debug {
        a.warnings
            .push("DEBUG enclave accepted by policy: the host can read its memory".into());
    }
    if simulated {
        a.tcb_status = "SIMULATED (no TCB)".into();
        a.warnings.insert(0, SIMULATED_WARNING.into());
    } else {
        dcap_collateral(
            q.as_bytes(),
            Some((&q.signature_data().qe.qe_report, &chain)),
            collateral,
            policy,
            now,
            &mut a,
        )?;
    }
    if let Some(id) = policy.isv_prod_id
        && q.isv_prod_id() != id
    {
        return Err(Error::verify(
            Step::PolicyMinimumSvn,
            format!("ISVPRODID {} is not {id}", q.isv_prod_id()),
        ));
    }
    if let Some(min) = policy.min_isv_svn
        && q.isv_svn() < min
    {
        return Err(Error::verify(
            Step::PolicyMinimumSvn,
            format!("ISVSVN {} is below the minimum {min}", q.isv_svn()),
        ));
    }
    Ok(a)
}

fn appraise_tdx(
    bytes: &[u8],
    collateral: &Collateral,
    policy: &Policy,
    now: SystemTime,
) -> Result<Appraisal> {
    let q = tdx::Quote::parse(bytes)?;
    require_tee(policy, TeeKind::Tdx)?;
    let chain = q
        .pck_chain()
        .map_err(|e| Error::verify(Step::PckChain, e.to_string()))?;
    if classify_root(
        &chain,
        &Policy {
            sim_root: None,
            ..policy.clone()
        },
    )? {
        return Err(Error::verify(
            Step::PckChain,
            "a TDX quote must chain to Intel",
        ));
    }
    dcap_signatures(
        q.signature_data(),
        q.signed_bytes(),
        &chain,
        INTEL_SGX_ROOT_CA_DER,
        now,
    )?;
    if q.debug() && !policy.allow_debug {
        return Err(Error::verify(
            Step::PolicyDebug,
            "the TD is debuggable (TDATTRIBUTES.DEBUG): the host can read and change its state. Refused unless the policy allows debug",
        ));
    }
    let mut a = base(TeeKind::Tdx, policy, now);
    a.measurement = q.measurement();
    a.debug = q.debug();
    a.report_data = q.report_data().to_vec();
    a.svn.tee_tcb_svn = Some(hex::encode(q.report().tee_tcb_svn));
    if a.debug {
        a.warnings
            .push("debuggable TD accepted by policy: the host can read its memory".into());
    }
    dcap_collateral(q.as_bytes(), None, collateral, policy, now, &mut a)?;
    Ok(a)
}

fn map_status(s: dcap_qvl::TcbStatus) -> TcbStatus {
    use dcap_qvl::TcbStatus as D;
    match s {
        D::UpToDate => TcbStatus::UpToDate,
        D::SWHardeningNeeded => TcbStatus::SwHardeningNeeded,
        D::ConfigurationNeeded => TcbStatus::ConfigurationNeeded,
        D::ConfigurationAndSWHardeningNeeded => TcbStatus::ConfigurationAndSwHardeningNeeded,
        D::OutOfDate => TcbStatus::OutOfDate,
        D::OutOfDateConfigurationNeeded => TcbStatus::OutOfDateConfigurationNeeded,
        D::TDRelaunchAdvised => TcbStatus::TdRelaunchAdvised,
        D::TDRelaunchAdvisedConfigurationNeeded => TcbStatus::TdRelaunchAdvisedConfigurationNeeded,
        D::Revoked => TcbStatus::Revoked,
    }
}

/// Step 7–8: dcap-qvl over the collateral, at `now` or inside the collateral window.
fn dcap_collateral(
    raw: &[u8],
    per_item: Option<(&dcap::EnclaveReport, &[Vec<u8>])>,
    collateral: &Collateral,
    policy: &Policy,
    now: SystemTime,
    a: &mut Appraisal,
) -> Result<()> {
    if policy.skip_collateral {
        a.tcb_status = "not checked (no collateral)".into();
        a.warnings.push(
            "collateral not checked (policy): revocation, TCB status and QE identity are unknown"
                .into(),
        );
        return Ok(());
    }
    let Some(c) = collateral.dcap() else {
        return Err(Error::verify(
            Step::Collateral,
            "none given for this quote: use an evidence file (evidence.json) or a PCCS to fetch the CRLs, TCB info and QE identity",
        ));
    };
    let window = collateral
        .window()?
        .ok_or_else(|| Error::verify(Step::Collateral, "no dated items"))?;
    let t_now = pki::unix(now);
    let outside: Vec<String> = window
        .expired_at(t_now)
        .iter()
        .map(|i| {
            format!(
                "{} expired on {} ({})",
                i.name,
                pki::fmt_unix(i.expires),
                i.field
            )
        })
        .chain(
            window
                .future_at(t_now)
                .iter()
                .map(|i| format!("{} is not valid before {}", i.name, pki::fmt_unix(i.issued))),
        )
        .collect();
    let t_eval = if outside.is_empty() {
        t_now
    } else {
        if !policy.stale_collateral_is_warning {
            return Err(Error::verify(
                Step::Collateral,
                format!(
                    "{} (verification time {}). Fetch collateral current at that time from a PCCS, or accept out-of-date collateral with the mse-compatible policy",
                    outside.join("; "),
                    pki::fmt_unix(t_now)
                ),
            ));
        }
        let t = window.latest_issue();
        if t > window.earliest_expiry() {
            // The items were never valid together: appraise each inside its own window.
            let Some((qe_report, chain)) = per_item else {
                return Err(Error::verify(
                    Step::Collateral,
                    format!(
                        "{}; and there is no time at which all items were valid together",
                        outside.join("; ")
                    ),
                ));
            };
            for o in &outside {
                a.warnings.push(format!(
                    "collateral: {o}; each item was checked inside its own validity period because they were never valid together (accepted by the {} policy)",
                    policy.name
                ));
            }
            let merged = crate::dcap_items::appraise_sgx(qe_report, chain, c, t_now)?;
            a.collateral = Some(CollateralUse {
                source: collateral.source().to_owned(),
                evaluated_at: "per item".into(),
                valid_until: Some(pki::fmt_unix(window.earliest_expiry())),
                stale: true,
            });
            return finish_status(map_status(merged.status), merged.advisory_ids, policy, a);
        }
        for o in &outside {
            a.warnings.push(format!(
                "collateral: {o}; verified as of {} instead of {} (accepted by the {} policy)",
                pki::fmt_unix(t),
                pki::fmt_unix(t_now),
                policy.name
            ));
        }
        t
    };
    let t_u =
        u64::try_from(t_eval).map_err(|_| Error::verify(Step::Collateral, "time before 1970"))?;
    let claims = dcap_qvl::verify::QuoteVerifier::new(INTEL_SGX_ROOT_CA_DER.to_vec())
        .allow_debug(true)
        .verify_with_policy(
            raw,
            c.clone(),
            t_u,
            &dcap_qvl::QuotePolicy::claims_only(t_u),
        )
        .map_err(|e| {
            let msg = format!("{e:#}");
            let step =
                if msg.contains("TCB status is invalid") || msg.contains("No matching TCB level") {
                    Step::Tcb
                } else {
                    Step::Collateral
                };
            Error::verify(step, format!("DCAP verification (dcap-qvl): {msg}"))
        })?;
    a.collateral = Some(CollateralUse {
        source: collateral.source().to_owned(),
        evaluated_at: pki::fmt_unix(t_eval),
        valid_until: Some(pki::fmt_unix(window.earliest_expiry())),
        stale: !outside.is_empty(),
    });
    finish_status(
        map_status(claims.tcb.status),
        claims.tcb.advisory_ids,
        policy,
        a,
    )
}

/// Step 8: the TCB status against the policy.
fn finish_status(
    status: TcbStatus,
    advisory_ids: Vec<String>,
    policy: &Policy,
    a: &mut Appraisal,
) -> Result<()> {
    a.tcb_status = status.as_str().into();
    a.advisory_ids = advisory_ids;
    if !policy.accepts_tcb_status(status) {
        return Err(Error::verify(
            Step::PolicyTcbStatus,
            format!(
                "the platform's TCB status is {status}{} and the {} policy accepts only {}",
                advisories(&a.advisory_ids),
                policy.name,
                policy
                    .tcb_statuses
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    if status != TcbStatus::UpToDate {
        a.warnings.push(format!(
            "TCB status {status}{} (accepted by the {} policy)",
            advisories(&a.advisory_ids),
            policy.name
        ));
    }
    Ok(())
}

fn advisories(ids: &[String]) -> String {
    if ids.is_empty() {
        String::new()
    } else {
        format!(" (advisories {})", ids.join(", "))
    }
}

fn appraise_snp(
    bytes: &[u8],
    collateral: &Collateral,
    policy: &Policy,
    now: SystemTime,
) -> Result<Appraisal> {
    crate::snp_verify::appraise(
        bytes,
        collateral,
        policy,
        now,
        base(TeeKind::SevSnp, policy, now),
    )
}

pub(crate) fn require_tee_pub(policy: &Policy, tee: TeeKind) -> Result<()> {
    require_tee(policy, tee)
}
