//! Collateral: what a verifier needs besides the evidence. For SGX/TDX: the Intel DCAP
//! collateral (root CA CRL, PCK CRL, TCB info and QE identity with their signatures and issuer
//! chains). For SEV-SNP: AMD certificates not carried by the evidence (VCEK/VLEK, ASK).
//!
//! Sources: an MSE `evidence.json` ([`crate::evidence_file`]), a dcap-qvl collateral JSON, a
//! PCCS (feature `pccs`), or PEM files. All are turned into the same [`Collateral`].

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::{dcap, pki};

/// Verification inputs other than the evidence.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collateral {
    pub(crate) dcap: Option<dcap_qvl::QuoteCollateralV3>,
    #[serde(default)]
    pub(crate) amd_certs: Vec<Vec<u8>>,
    #[serde(default)]
    pub(crate) source: String,
}

/// Raw PCCS v4 answers (or their equivalent from an evidence file), before assembly.
#[derive(Clone, Debug, Default)]
pub struct DcapParts {
    /// Root CA CRL, DER.
    pub root_ca_crl_der: Vec<u8>,
    /// PCK CA CRL (Platform or Processor), DER.
    pub pck_crl_der: Vec<u8>,
    /// PEM chain that issued the PCK CRL (PCK CA ‖ root); informational.
    pub pck_crl_issuer_chain_pem: String,
    /// The `/tcb` body as returned: `{"tcbInfo":{…},"signature":"<hex>"}`.
    pub tcb_info_body: Vec<u8>,
    /// PEM chain of the TCB signing certificate (signing cert ‖ root).
    pub tcb_info_issuer_chain_pem: String,
    /// The `/qe/identity` body as returned: `{"enclaveIdentity":{…},"signature":"<hex>"}`.
    pub qe_identity_body: Vec<u8>,
    /// PEM chain of the QE identity signing certificate.
    pub qe_identity_issuer_chain_pem: String,
}

impl Collateral {
    /// No collateral (SNP evidence that carries its certificates, or simulation).
    pub fn none() -> Self {
        Collateral::default()
    }

    /// Assemble DCAP collateral from PCCS-shaped parts. The signed JSON objects are kept
    /// byte for byte, since their signatures cover the exact text.
    pub fn from_dcap_parts(parts: &DcapParts, source: impl Into<String>) -> Result<Self> {
        let (tcb_info, tcb_info_signature) =
            split_signed_json(&parts.tcb_info_body, "tcbInfo", "TCB info")?;
        let (qe_identity, qe_identity_signature) =
            split_signed_json(&parts.qe_identity_body, "enclaveIdentity", "QE identity")?;
        let c = dcap_qvl::QuoteCollateralV3 {
            pck_crl_issuer_chain: parts.pck_crl_issuer_chain_pem.clone(),
            root_ca_crl: parts.root_ca_crl_der.clone(),
            pck_crl: parts.pck_crl_der.clone(),
            tcb_info_issuer_chain: parts.tcb_info_issuer_chain_pem.clone(),
            tcb_info,
            tcb_info_signature,
            qe_identity_issuer_chain: parts.qe_identity_issuer_chain_pem.clone(),
            qe_identity,
            qe_identity_signature,
            pck_certificate_chain: None,
        };
        Ok(Collateral {
            dcap: Some(c),
            amd_certs: Vec::new(),
            source: source.into(),
        })
    }

    /// The collateral JSON format of dcap-qvl (`QuoteCollateralV3`, as its samples and its
    /// PCCS client produce).
    pub fn from_dcap_qvl_json(json: &[u8], source: impl Into<String>) -> Result<Self> {
        let c: dcap_qvl::QuoteCollateralV3 = serde_json::from_slice(json)
            .map_err(|e| Error::malformed("DCAP collateral JSON", e.to_string()))?;
        Ok(Collateral {
            dcap: Some(c),
            amd_certs: Vec::new(),
            source: source.into(),
        })
    }

    /// Add AMD certificates (VCEK or VLEK, and optionally ASK/ARK) from PEM text, for SNP
    /// evidence that does not carry them.
    pub fn with_amd_certs_pem(mut self, pem_text: &[u8]) -> Result<Self> {
        let certs = dcap::pem_certificates(pem_text, "AMD certificates")?;
        self.amd_certs.extend(certs);
        if self.source.is_empty() {
            self.source = "AMD certificates".into();
        }
        Ok(self)
    }

    /// Add an AMD certificate (DER).
    pub fn with_amd_cert_der(mut self, der: Vec<u8>) -> Self {
        self.amd_certs.push(der);
        self
    }

    /// Where this collateral came from, for reports.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True if DCAP collateral is present.
    pub fn has_dcap(&self) -> bool {
        self.dcap.is_some()
    }

    /// The validity window of every dated item of the DCAP collateral.
    pub fn window(&self) -> Result<Option<Window>> {
        let Some(c) = &self.dcap else { return Ok(None) };
        let mut items = Vec::new();
        for (name, json) in [("TCB info", &c.tcb_info), ("QE identity", &c.qe_identity)] {
            let d: Dated = serde_json::from_str(json).map_err(|e| {
                Error::verify(
                    crate::Step::Collateral,
                    format!("{name}: malformed JSON: {e}"),
                )
            })?;
            items.push(Item {
                name: name.into(),
                field: "nextUpdate",
                issued: rfc3339(&d.issue_date, name)?,
                expires: rfc3339(&d.next_update, name)?,
            });
        }
        for (name, der) in [("root CA CRL", &c.root_ca_crl), ("PCK CRL", &c.pck_crl)] {
            let (_, crl) = x509_parser::parse_x509_crl(der).map_err(|e| {
                Error::verify(
                    crate::Step::Collateral,
                    format!("{name}: not a DER CRL: {e}"),
                )
            })?;
            let next = crl.next_update().ok_or_else(|| {
                Error::verify(crate::Step::Collateral, format!("{name}: no nextUpdate"))
            })?;
            items.push(Item {
                name: name.into(),
                field: "nextUpdate",
                issued: crl.last_update().timestamp(),
                expires: next.timestamp(),
            });
        }
        let mut seen: Vec<Vec<u8>> = Vec::new();
        for chain in [&c.tcb_info_issuer_chain, &c.qe_identity_issuer_chain] {
            for der in dcap::pem_certificates(chain.as_bytes(), "collateral issuer chain")
                .map_err(|e| Error::verify(crate::Step::Collateral, e.to_string()))?
            {
                if seen.contains(&der) {
                    continue;
                }
                let cert = pki::parse_cert(&der, "collateral issuer certificate")
                    .map_err(|e| Error::verify(crate::Step::Collateral, e.to_string()))?;
                items.push(Item {
                    name: format!("certificate {:?}", pki::cert_name(&cert)),
                    field: "notAfter",
                    issued: cert.validity().not_before.timestamp(),
                    expires: cert.validity().not_after.timestamp(),
                });
                seen.push(der);
            }
        }
        Ok(Some(Window { items }))
    }

    pub(crate) fn dcap(&self) -> Option<&dcap_qvl::QuoteCollateralV3> {
        self.dcap.as_ref()
    }

    /// Serialise (for caches).
    pub fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| Error::Usage(format!("collateral: {e}")))
    }

    /// Read what [`Collateral::to_json`] wrote.
    pub fn from_json(b: &[u8]) -> Result<Self> {
        serde_json::from_slice(b).map_err(|e| Error::malformed("collateral JSON", e.to_string()))
    }
}

#[derive(Deserialize)]
struct Dated {
    #[serde(rename = "issueDate")]
    issue_date: String,
    #[serde(rename = "nextUpdate")]
    next_update: String,
}

fn rfc3339(s: &str, what: &str) -> Result<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|e| {
            Error::verify(
                crate::Step::Collateral,
                format!("{what}: bad date {s:?}: {e}"),
            )
        })
}

/// Split a PCCS signed body `{"<key>": {…}, "signature": "<hex>"}` into the exact text of the
/// inner object and the raw signature.
pub(crate) fn split_signed_json(
    body: &[u8],
    key: &str,
    what: &'static str,
) -> Result<(String, Vec<u8>)> {
    let map: std::collections::BTreeMap<String, &serde_json::value::RawValue> =
        serde_json::from_slice(body)
            .map_err(|e| Error::malformed(what, format!("not a JSON object: {e}")))?;
    let inner = map
        .get(key)
        .ok_or_else(|| Error::malformed(what, format!("no {key:?} object")))?;
    let sig_raw = map
        .get("signature")
        .ok_or_else(|| Error::malformed(what, "no \"signature\""))?;
    let sig_hex: String = serde_json::from_str(sig_raw.get())
        .map_err(|_| Error::malformed(what, "signature is not a string"))?;
    let sig = hex::decode(sig_hex)
        .map_err(|e| Error::malformed(what, format!("signature is not hex: {e}")))?;
    Ok((inner.get().to_owned(), sig))
}

/// One dated item of the collateral.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Item {
    /// What it is ("TCB info", "PCK CRL", "certificate \"Intel SGX TCB Signing\"").
    pub name: String,
    /// The field that gives its expiry ("nextUpdate", "notAfter").
    pub field: &'static str,
    /// Issue time (issueDate, thisUpdate, notBefore), Unix seconds.
    pub issued: i64,
    /// Expiry time (nextUpdate, notAfter), Unix seconds.
    pub expires: i64,
}

/// The dates of all collateral items.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Window {
    /// The items.
    pub items: Vec<Item>,
}

impl Window {
    /// The latest issue time: before it, some item is not yet valid.
    pub fn latest_issue(&self) -> i64 {
        self.items
            .iter()
            .map(|i| i.issued)
            .max()
            .unwrap_or(i64::MIN)
    }
    /// The earliest expiry: after it, some item is stale.
    pub fn earliest_expiry(&self) -> i64 {
        self.items
            .iter()
            .map(|i| i.expires)
            .min()
            .unwrap_or(i64::MAX)
    }
    /// Items expired at `t`.
    pub fn expired_at(&self, t: i64) -> Vec<&Item> {
        self.items.iter().filter(|i| i.expires < t).collect()
    }
    /// Items not yet valid at `t`.
    pub fn future_at(&self, t: i64) -> Vec<&Item> {
        self.items.iter().filter(|i| i.issued > t).collect()
    }
}
