//! SGX collateral appraised item by item, for collateral whose parts were never valid at the
//! same instant (e.g. the repositories' MSE `evidence.json`: its PCK CRL expired on 2023-06-15,
//! its QE identity was issued on 2023-06-20). dcap-qvl needs one instant at which everything is
//! valid, so this path runs only when a policy accepts out-of-date collateral and no such
//! instant exists; every out-of-window item has already been turned into a warning.
//!
//! The checks are dcap-qvl's, on its public types: CRL signatures and revocation of the PCK
//! chain, TCB info and QE identity signatures by the TCB signing certificate (chained to the
//! pinned Intel root), FMSPC/PCE id match, the platform TCB level (`TcbLevel::shortfalls`),
//! the QE identity (MRSIGNER, ISVPRODID, masked MISCSELECT/ATTRIBUTES, QE TCB level) and
//! Intel's status convergence (`TcbStatusWithAdvisory::merge`).

use p256::ecdsa::signature::Verifier as _;
use x509_parser::prelude::FromDer as _;

use crate::collateral::Window;
use crate::dcap::{EnclaveReport, pck_info};
use crate::error::{Error, Result, Step};
use crate::{pki, verify::INTEL_SGX_ROOT_CA_DER};

fn coll(reason: impl Into<String>) -> Error {
    Error::verify(Step::Collateral, reason)
}

/// Returns the converged status and advisories.
pub(crate) fn appraise_sgx(
    qe_report: &EnclaveReport,
    pck_chain: &[Vec<u8>],
    c: &dcap_qvl::QuoteCollateralV3,
    now: i64,
) -> Result<dcap_qvl::TcbStatusWithAdvisory> {
    let [leaf_der, ca_der, ..] = pck_chain else {
        return Err(Error::verify(Step::PckChain, "the PCK chain has no PCK CA"));
    };
    let leaf = pki::parse_cert(leaf_der, "PCK certificate")?;
    let ca = pki::parse_cert(ca_der, "PCK CA certificate")?;
    let root = pki::parse_cert(INTEL_SGX_ROOT_CA_DER, "Intel root")?;

    // CRLs: signed by their issuers, and listing neither the PCK CA nor the PCK leaf.
    for (name, der, issuer, subject) in [
        ("root CA CRL", &c.root_ca_crl, &root, &ca),
        ("PCK CRL", &c.pck_crl, &ca, &leaf),
    ] {
        let crl = signed_crl(name, der, issuer)?;
        if crl
            .iter_revoked_certificates()
            .any(|r| r.raw_serial() == subject.raw_serial())
        {
            return Err(coll(format!(
                "{:?} is revoked by the {name}",
                pki::cert_name(subject)
            )));
        }
    }

    signed_json_item(
        "TCB info",
        &c.tcb_info_issuer_chain,
        &c.tcb_info,
        &c.tcb_info_signature,
        now,
    )?;
    signed_json_item(
        "QE identity",
        &c.qe_identity_issuer_chain,
        &c.qe_identity,
        &c.qe_identity_signature,
        now,
    )?;

    // Platform TCB level.
    let tcb: dcap_qvl::TcbInfo =
        serde_json::from_str(&c.tcb_info).map_err(|e| coll(format!("TCB info: {e}")))?;
    if tcb.id != "SGX" || tcb.version < 2 {
        return Err(coll(format!(
            "TCB info id {:?} version {} is not SGX TCB info",
            tcb.id, tcb.version
        )));
    }
    let info = pck_info(leaf_der)?;
    if !tcb.fmspc.eq_ignore_ascii_case(&hex::encode(info.fmspc)) {
        return Err(coll(format!(
            "TCB info is for FMSPC {}, the platform's is {}",
            tcb.fmspc,
            hex::encode(info.fmspc)
        )));
    }
    if !tcb.pce_id.eq_ignore_ascii_case(&hex::encode(&info.pce_id)) {
        return Err(coll(format!(
            "TCB info is for PCE id {}, the platform's is {}",
            tcb.pce_id,
            hex::encode(&info.pce_id)
        )));
    }
    let mut level = None;
    for l in &tcb.tcb_levels {
        if l.shortfalls(&info.cpu_svn, info.pce_svn, None)
            .map_err(|e| coll(format!("TCB info: {e:#}")))?
            .is_empty()
        {
            level = Some(l);
            break;
        }
    }
    let level = level.ok_or_else(|| {
        Error::verify(
            Step::Tcb,
            "the platform's CPU SVN / PCE SVN match no TCB level",
        )
    })?;

    // QE identity.
    let qe: dcap_qvl::QeIdentity =
        serde_json::from_str(&c.qe_identity).map_err(|e| coll(format!("QE identity: {e}")))?;
    if qe.id != "QE" {
        return Err(coll(format!("QE identity id {:?} is not \"QE\"", qe.id)));
    }
    let mut attrs = [0u8; 16];
    attrs[..8].copy_from_slice(&qe_report.attributes.flags.to_le_bytes());
    attrs[8..].copy_from_slice(&qe_report.attributes.xfrm.to_le_bytes());
    let misc_mask = u32::from_le_bytes(qe.miscselect_mask);
    let attrs_ok = attrs
        .iter()
        .zip(qe.attributes.iter())
        .zip(qe.attributes_mask.iter())
        .all(|((a, e), m)| a & m == e & m);
    if qe_report.mr_signer != qe.mrsigner
        || qe_report.isv_prod_id != qe.isvprodid
        || qe_report.misc_select & misc_mask != u32::from_le_bytes(qe.miscselect) & misc_mask
        || !attrs_ok
    {
        return Err(Error::verify(
            Step::QeReport,
            "the quoting enclave does not match Intel's QE identity",
        ));
    }
    let qe_level = qe
        .tcb_levels
        .iter()
        .find(|l| qe_report.isv_svn >= l.tcb.isvsvn)
        .ok_or_else(|| {
            Error::verify(
                Step::Tcb,
                format!(
                    "QE ISVSVN {} is below every QE identity TCB level",
                    qe_report.isv_svn
                ),
            )
        })?;

    let merged = dcap_qvl::TcbStatusWithAdvisory::new(level.tcb_status, level.advisory_ids.clone())
        .merge(&dcap_qvl::TcbStatusWithAdvisory::new(
            qe_level.tcb_status,
            qe_level.advisory_ids.clone(),
        ));
    if merged.status == dcap_qvl::TcbStatus::Revoked {
        return Err(Error::verify(Step::Tcb, "TCB status is Revoked"));
    }
    Ok(merged)
}

/// A signed JSON item (TCB info, QE identity): the chain of its signing certificate ends at the
/// pinned Intel root and the first certificate's key signed the exact text. Validity is judged
/// elsewhere: the chain is checked at `now` clamped into its own validity window, so that only
/// signatures and names are judged here.
pub(crate) fn signed_json_item(
    what: &str,
    chain_pem: &str,
    json: &str,
    sig: &[u8],
    now: i64,
) -> Result<()> {
    let chain = crate::dcap::pem_certificates(chain_pem.as_bytes(), "collateral issuer chain")
        .map_err(|e| coll(format!("{what}: {e}")))?;
    let mut window = Window { items: Vec::new() };
    for d in &chain {
        let cert = pki::parse_cert(d, "collateral issuer certificate")?;
        window.items.push(crate::collateral::Item {
            name: String::new(),
            field: "notAfter",
            issued: cert.validity().not_before.timestamp(),
            expires: cert.validity().not_after.timestamp(),
        });
    }
    let t = now.clamp(
        window.latest_issue(),
        window.earliest_expiry().max(window.latest_issue()),
    );
    pki::verify_chain(
        &chain,
        INTEL_SGX_ROOT_CA_DER,
        pki::at_unix(t),
        Step::Collateral,
        what,
    )?;
    let first = chain
        .first()
        .ok_or_else(|| coll(format!("{what}: empty issuer chain")))?;
    let signer = pki::parse_cert(first, "collateral signing certificate")?;
    let point = pki::p256_point(signer.public_key())
        .ok_or_else(|| coll(format!("{what}: signing key is not P-256")))?;
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point)
        .map_err(|e| coll(format!("{what}: {e}")))?;
    let sig = p256::ecdsa::Signature::from_slice(sig)
        .map_err(|e| coll(format!("{what}: malformed signature: {e}")))?;
    key.verify(json.as_bytes(), &sig)
        .map_err(|_| coll(format!("{what}: signature does not verify")))
}

/// A DER CRL issued and signed by `issuer` (revocations are the caller's business).
pub(crate) fn signed_crl<'a>(
    name: &str,
    der: &'a [u8],
    issuer: &x509_parser::certificate::X509Certificate<'_>,
) -> Result<x509_parser::revocation_list::CertificateRevocationList<'a>> {
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(der)
        .map_err(|e| coll(format!("{name}: not a DER CRL: {e}")))?;
    if crl.issuer().as_raw() != issuer.subject().as_raw() {
        return Err(coll(format!(
            "{name} is not issued by {:?}",
            pki::cert_name(issuer)
        )));
    }
    crl.verify_signature(issuer.public_key()).map_err(|_| {
        coll(format!(
            "{name}: signature does not verify with {:?}",
            pki::cert_name(issuer)
        ))
    })?;
    Ok(crl)
}
