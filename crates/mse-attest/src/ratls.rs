//! RA-TLS certificates: an X.509 certificate whose extension carries TEE evidence over the
//! certificate's own public key (see [`crate::report_data::ratls`]).
//!
//! Parsing checks the structure only: one evidence extension (OID 1337.6 SGX or sim, 1337.7
//! SNP, 1337.8 TDX), a P-256 public key. Whether the evidence is genuine and bound to the key
//! is [`crate::verify::verify_certificate_at`]'s job.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use x509_parser::extensions::{GeneralName, ParsedExtension};

use crate::error::{Error, Result};
use crate::{TeeKind, oids, pki};

const WHAT: &str = "RA-TLS certificate";

/// Evidence as it travels (in a certificate or an evidence endpoint), not yet verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEvidence {
    /// What the carrier says it is. `Sgx` also covers mse simulation quotes until a verifier
    /// has looked at the chain.
    pub kind: TeeKind,
    /// The evidence bytes (quote, or SNP report with its certificate table).
    pub bytes: Vec<u8>,
}

/// A subject alternative name.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum San {
    /// DNS name.
    Dns(String),
    /// IP address.
    Ip(IpAddr),
}

/// A parsed RA-TLS certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaTlsCertificate {
    der: Vec<u8>,
    tls_public_key: [u8; 65],
    evidence: RawEvidence,
    not_before: SystemTime,
    not_after: SystemTime,
    san: Vec<San>,
    is_ca: bool,
    subject: String,
    self_signed: bool,
}

impl RaTlsCertificate {
    /// Parse a DER certificate. Never panics.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let cert = pki::parse_cert(der, WHAT)?;
        let tls_public_key = pki::p256_point(cert.public_key()).ok_or_else(|| {
            Error::malformed(
                WHAT,
                "the public key is not an uncompressed ECDSA P-256 key",
            )
        })?;

        let mut evidence: Option<RawEvidence> = None;
        for ext in cert.extensions() {
            let oid = ext.oid.to_id_string();
            let kind = match oid.as_str() {
                oids::SGX_QUOTE => TeeKind::Sgx,
                oids::SNP_REPORT => TeeKind::SevSnp,
                oids::TDX_QUOTE => TeeKind::Tdx,
                _ => continue,
            };
            if evidence.is_some() {
                return Err(Error::malformed(WHAT, "more than one evidence extension"));
            }
            evidence = Some(RawEvidence {
                kind,
                bytes: ext.value.to_vec(),
            });
        }
        let evidence = evidence.ok_or_else(|| {
            Error::malformed(
                WHAT,
                format!(
                    "no evidence extension (expected OID {}, {} or {}): this is not an RA-TLS certificate",
                    oids::SGX_QUOTE,
                    oids::SNP_REPORT,
                    oids::TDX_QUOTE
                ),
            )
        })?;

        let mut san = Vec::new();
        for ext in cert.extensions() {
            if let ParsedExtension::SubjectAlternativeName(s) = ext.parsed_extension() {
                for name in &s.general_names {
                    match name {
                        GeneralName::DNSName(d) => san.push(San::Dns((*d).to_owned())),
                        GeneralName::IPAddress(b) => {
                            if let Ok(a) = <[u8; 4]>::try_from(*b) {
                                san.push(San::Ip(IpAddr::from(a)));
                            } else if let Ok(a) = <[u8; 16]>::try_from(*b) {
                                san.push(San::Ip(IpAddr::from(a)));
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        let v = cert.validity();
        let self_signed = cert.issuer().as_raw() == cert.subject().as_raw()
            && cert.verify_signature(None).is_ok();
        Ok(RaTlsCertificate {
            der: der.to_vec(),
            tls_public_key,
            evidence,
            not_before: to_system_time(v.not_before.timestamp()),
            not_after: to_system_time(v.not_after.timestamp()),
            san,
            is_ca: cert.is_ca(),
            subject: cert.subject().to_string(),
            self_signed,
        })
    }

    /// Parse the first `CERTIFICATE` block of a PEM text.
    pub fn from_pem(pem: &str) -> Result<Self> {
        let block = pem::parse_many(pem.as_bytes())
            .map_err(|e| Error::malformed(WHAT, format!("bad PEM: {e}")))?
            .into_iter()
            .find(|b| b.tag() == "CERTIFICATE")
            .ok_or_else(|| Error::malformed(WHAT, "no PEM CERTIFICATE block"))?;
        Self::from_der(block.contents())
    }

    /// The certificate's public key as an uncompressed SEC1 point (04 ‖ X ‖ Y).
    pub fn tls_public_key(&self) -> &[u8; 65] {
        &self.tls_public_key
    }
    /// The evidence carried by the certificate.
    pub fn evidence(&self) -> &RawEvidence {
        &self.evidence
    }
    /// The DER bytes, for exact pinning.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// PEM text of the certificate.
    pub fn to_pem(&self) -> String {
        crate::dcap::pem_encode("CERTIFICATE", &self.der)
    }
    /// notBefore.
    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }
    /// notAfter.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }
    /// Subject alternative names.
    pub fn san(&self) -> &[San] {
        &self.san
    }
    /// BasicConstraints CA flag (TRUE for mse-lib-sgx ≥ 2.2 certificates).
    pub fn is_ca(&self) -> bool {
        self.is_ca
    }
    /// Subject in RFC 4514-like text.
    pub fn subject(&self) -> &str {
        &self.subject
    }
    /// True when the certificate is self-issued and its signature verifies with its own key.
    pub fn is_self_signed(&self) -> bool {
        self.self_signed
    }
}

fn to_system_time(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))
            .unwrap_or(UNIX_EPOCH)
    }
}
