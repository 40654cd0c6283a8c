//! Simulation: a per-installation *simulation root* and quotes signed under it in the exact
//! SGX DCAP v3 layout, so the verifier runs the same steps on them as on real quotes
//! (PCK-like chain → QE report signature → QE report binding → quote signature).
//!
//! Nothing here is a TEE. The verifier accepts these quotes only when the policy says
//! `allow_simulation` with this root, and then every output says SIMULATED.
//!
//! Chain: root (self-signed P-256 CA, CN "mse SIMULATION root — not a TEE", persisted by the
//! node) → PCK-like leaf (fresh per [`QuoteSigner`], CN "mse SIMULATION PCK — not a TEE") →
//! QE report → attestation key (fresh per [`QuoteSigner`]) → quote. Values fixed by the
//! simulation (docs/attestation.md §Simulation):
//!
//! * MRSIGNER = SHA-256(root public key as uncompressed SEC1 point, 65 bytes);
//! * MRENCLAVE = the measurement given by the node (mse-measure manifest digest);
//! * ATTRIBUTES.flags = INIT | MODE64BIT, plus DEBUG when asked; xfrm = 0xe7;
//! * header user data = "mse SIMULATION quote", QE vendor id all zero (Intel's is refused by
//!   construction since the chain does not end at Intel's root).

use std::time::{Duration, SystemTime};

use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rand_core::OsRng;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::dcap::{
    self, Attributes, CertificationData, EnclaveReport, Header, QeReportCertification,
    SignatureData,
};
use crate::error::{Error, Result};
use crate::{pki, sgx};

/// Common name of every simulation root.
pub const ROOT_COMMON_NAME: &str = "mse SIMULATION root \u{2014} not a TEE";
/// Common name of the PCK-like leaf of a simulation chain.
pub const PCK_COMMON_NAME: &str = "mse SIMULATION PCK \u{2014} not a TEE";
/// Organisation of simulation certificates.
pub const ORGANIZATION: &str = "mse simulation (no TEE)";
/// Header user data of simulation quotes.
pub const QUOTE_USER_DATA: [u8; 20] = *b"mse SIMULATION quote";
/// QE authentication data (32 bytes, as Intel's QE uses).
const QE_AUTH_DATA: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31,
];
/// How long a new root is valid.
const ROOT_VALIDITY: Duration = Duration::from_secs(20 * 365 * 24 * 3600);
/// Tolerated clock skew between the node and a verifier on the same host.
const SKEW: Duration = Duration::from_secs(3600);

/// Public half of a simulation root; what a verifier trusts under `allow_simulation`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimRoot {
    der: Vec<u8>,
    public_key: [u8; 65],
}

impl SimRoot {
    /// Parse a root certificate (DER). It must be a self-signed P-256 CA certificate whose
    /// common name marks it as a simulation root.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        const WHAT: &str = "simulation root certificate";
        let cert = pki::parse_cert(der, WHAT)?;
        let public_key = pki::p256_point(cert.public_key())
            .ok_or_else(|| Error::malformed(WHAT, "the key is not ECDSA P-256"))?;
        if !is_sim_name(&pki::cert_name(&cert)) {
            return Err(Error::malformed(
                WHAT,
                format!("common name is not {ROOT_COMMON_NAME:?}"),
            ));
        }
        if !cert.is_ca() || cert.verify_signature(None).is_err() {
            return Err(Error::malformed(WHAT, "not a self-signed CA certificate"));
        }
        Ok(SimRoot {
            der: der.to_vec(),
            public_key,
        })
    }

    /// Parse the first `CERTIFICATE` block of a PEM text.
    pub fn from_pem(pem_text: &str) -> Result<Self> {
        let certs = dcap::pem_certificates(pem_text.as_bytes(), "simulation root certificate")?;
        let first = certs
            .first()
            .ok_or_else(|| Error::malformed("simulation root certificate", "empty"))?;
        Self::from_der(first)
    }

    /// The certificate DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// PEM text.
    pub fn to_pem(&self) -> String {
        crate::dcap::pem_encode("CERTIFICATE", &self.der)
    }

    /// The root public key (uncompressed SEC1).
    pub fn public_key(&self) -> &[u8; 65] {
        &self.public_key
    }

    /// The MRSIGNER of every quote under this root: SHA-256 of [`SimRoot::public_key`].
    pub fn mr_signer(&self) -> [u8; 32] {
        Sha256::digest(self.public_key).into()
    }

    /// SHA-256 of the certificate DER, to show and compare roots.
    pub fn fingerprint(&self) -> [u8; 32] {
        Sha256::digest(&self.der).into()
    }
}

pub(crate) fn is_sim_name(cn: &str) -> bool {
    cn.starts_with("mse SIMULATION")
}

/// Private half of a simulation root. Lives only on the node's machine (file mode 0600).
pub struct SimRootKey {
    key: SigningKey,
    root: SimRoot,
}

impl std::fmt::Debug for SimRootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimRootKey")
            .field("root", &self.root)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl SimRootKey {
    /// Create a new root, valid from `now` − 1 h for 20 years.
    pub fn generate(now: SystemTime) -> Result<Self> {
        let key = SigningKey::random(&mut OsRng);
        let kp = rcgen_key(&key)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = sim_name(ROOT_COMMON_NAME);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = to_offset(now.checked_sub(SKEW).unwrap_or(now))?;
        params.not_after = to_offset(now.checked_add(ROOT_VALIDITY).unwrap_or(now))?;
        params.serial_number = Some(random_serial());
        let cert = params
            .self_signed(&kp)
            .map_err(|e| Error::crypto("simulation root certificate", e))?;
        let root = SimRoot::from_der(cert.der())?;
        Ok(SimRootKey { key, root })
    }

    /// Load a root from its PKCS#8 key PEM and certificate PEM; the two must match.
    pub fn from_pem(key_pem: &str, cert_pem: &str) -> Result<Self> {
        let key = SigningKey::from_pkcs8_pem(key_pem).map_err(|e| {
            Error::malformed(
                "simulation root key",
                format!("not a PKCS#8 P-256 key: {e}"),
            )
        })?;
        let root = SimRoot::from_pem(cert_pem)?;
        let pk = VerifyingKey::from(&key).to_encoded_point(false);
        if pk.as_bytes() != root.public_key.as_slice() {
            return Err(Error::malformed(
                "simulation root",
                "the key does not match the certificate",
            ));
        }
        Ok(SimRootKey { key, root })
    }

    /// The private key as PKCS#8 PEM (secret).
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>> {
        self.key
            .to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
            .map(|s| Zeroizing::new(s.as_str().to_owned()))
            .map_err(|e| Error::crypto("simulation root key", e))
    }

    /// The public half.
    pub fn root(&self) -> &SimRoot {
        &self.root
    }
}

/// What the simulated enclave looks like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimQuoteConfig {
    /// MRENCLAVE: the measurement computed by the node (mse-measure).
    pub mr_enclave: [u8; 32],
    /// Set the DEBUG attribute (a default verifier policy then refuses the quote).
    pub debug: bool,
    /// ISVPRODID.
    pub isv_prod_id: u16,
    /// ISVSVN.
    pub isv_svn: u16,
}

/// Encoding side used by mse-tee's sim backend: builds DCAP v3 quotes signed by a sim chain.
pub struct QuoteSigner {
    attestation_key: SigningKey,
    signature_template: SignatureData,
    header: Header,
    body_template: EnclaveReport,
    root: SimRoot,
}

impl std::fmt::Debug for QuoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuoteSigner")
            .field("root", &self.root)
            .field("keys", &"[redacted]")
            .finish()
    }
}

impl QuoteSigner {
    /// A quoting chain under `root`: a fresh PCK-like leaf (valid from `now` − 1 h until the
    /// root expires) and a fresh attestation key certified by a QE report.
    pub fn new(root: &SimRootKey, config: &SimQuoteConfig, now: SystemTime) -> Result<Self> {
        let root_kp = rcgen_key(&root.key)?;
        let issuer = Issuer::from_ca_cert_der(&root.root.der.clone().into(), root_kp)
            .map_err(|e| Error::crypto("simulation PCK certificate", e))?;
        let root_cert = pki::parse_cert(&root.root.der, "simulation root certificate")?;
        let root_not_after = root_cert.validity().not_after.timestamp();

        let pck_key = SigningKey::random(&mut OsRng);
        let pck_kp = rcgen_key(&pck_key)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = sim_name(PCK_COMMON_NAME);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::ContentCommitment,
        ];
        params.not_before = to_offset(now.checked_sub(SKEW).unwrap_or(now))?;
        params.not_after = time::OffsetDateTime::from_unix_timestamp(root_not_after)
            .map_err(|e| Error::crypto("simulation PCK certificate", e))?;
        params.serial_number = Some(random_serial());
        params.use_authority_key_identifier_extension = true;
        let pck_cert = params
            .signed_by(&pck_kp, &issuer)
            .map_err(|e| Error::crypto("simulation PCK certificate", e))?;
        drop(pck_kp);

        let attestation_key = SigningKey::random(&mut OsRng);
        let ak_point = VerifyingKey::from(&attestation_key).to_encoded_point(false);
        let ak: [u8; 64] = ak_point
            .as_bytes()
            .get(1..)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| Error::crypto("attestation key", "unexpected point encoding"))?;

        // The QE report binds the attestation key: report_data = SHA-256(ak ‖ qe_auth) ‖ 0³².
        let mut qe_rd = [0u8; 64];
        let mut h = Sha256::new();
        h.update(ak);
        h.update(QE_AUTH_DATA);
        qe_rd[..32].copy_from_slice(&h.finalize());
        let qe_report = EnclaveReport {
            cpu_svn: [0; 16],
            misc_select: 0,
            isv_ext_prod_id: [0; 16],
            attributes: Attributes {
                flags: dcap::SGX_FLAGS_INIT | dcap::SGX_FLAGS_MODE64BIT,
                xfrm: 0xe7,
            },
            mr_enclave: Sha256::digest(b"mse simulated quoting enclave").into(),
            mr_signer: root.root.mr_signer(),
            config_id: [0; 64],
            isv_prod_id: 1,
            isv_svn: 0,
            config_svn: 0,
            isv_family_id: [0; 16],
            report_data: qe_rd,
        };
        let mut qe_report_raw = Vec::with_capacity(dcap::ENCLAVE_REPORT_LEN);
        qe_report.encode(&mut qe_report_raw);
        let qe_sig: Signature = pck_key.sign(&qe_report_raw);

        let mut chain_pem = dcap::pem_encode("CERTIFICATE", pck_cert.der());
        chain_pem.push_str(&root.root.to_pem());

        let mut flags = dcap::SGX_FLAGS_INIT | dcap::SGX_FLAGS_MODE64BIT;
        if config.debug {
            flags |= dcap::SGX_FLAGS_DEBUG;
        }
        Ok(QuoteSigner {
            attestation_key,
            signature_template: SignatureData {
                quote_signature: [0; 64],
                attestation_key: ak,
                qe: QeReportCertification {
                    qe_report,
                    qe_report_raw,
                    qe_report_signature: qe_sig.to_bytes().into(),
                    qe_auth_data: QE_AUTH_DATA.to_vec(),
                    pck: CertificationData {
                        cert_type: dcap::CERT_TYPE_PCK_CHAIN,
                        data: chain_pem.into_bytes(),
                    },
                },
            },
            header: Header {
                version: 3,
                attestation_key_type: dcap::ATT_KEY_TYPE_ECDSA_P256,
                tee_type: dcap::TEE_TYPE_SGX,
                qe_svn: 0,
                pce_svn: 0,
                qe_vendor_id: [0; 16],
                user_data: QUOTE_USER_DATA,
            },
            body_template: EnclaveReport {
                cpu_svn: [0; 16],
                misc_select: 0,
                isv_ext_prod_id: [0; 16],
                attributes: Attributes { flags, xfrm: 0xe7 },
                mr_enclave: config.mr_enclave,
                mr_signer: root.root.mr_signer(),
                config_id: [0; 64],
                isv_prod_id: config.isv_prod_id,
                isv_svn: config.isv_svn,
                config_svn: 0,
                isv_family_id: [0; 16],
                report_data: [0; 64],
            },
            root: root.root.clone(),
        })
    }

    /// A quote over these 64 bytes of report data.
    pub fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>> {
        let mut body = self.body_template.clone();
        body.report_data = *report_data;
        let mut signed = Vec::with_capacity(sgx::SIGNED_LEN);
        self.header.encode(&mut signed);
        body.encode(&mut signed);
        let sig: Signature = self.attestation_key.sign(&signed);
        let mut data = self.signature_template.clone();
        data.quote_signature = sig.to_bytes().into();
        sgx::Quote::encode(&self.header, &body, &data)
    }

    /// The root this signer's chain ends at.
    pub fn root(&self) -> &SimRoot {
        &self.root
    }
}

fn sim_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, ORGANIZATION);
    dn.push(DnType::CommonName, cn);
    dn
}

fn rcgen_key(key: &SigningKey) -> Result<KeyPair> {
    let der = key
        .to_pkcs8_der()
        .map_err(|e| Error::crypto("simulation key", e))?;
    KeyPair::try_from(der.as_bytes()).map_err(|e| Error::crypto("simulation key", e))
}

fn random_serial() -> SerialNumber {
    let mut b = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut OsRng, &mut b);
    b[0] &= 0x7f; // positive INTEGER
    b[0] |= 0x01; // no leading zero byte to strip
    SerialNumber::from(b.to_vec())
}

fn to_offset(t: SystemTime) -> Result<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(pki::unix(t))
        .map_err(|e| Error::crypto("certificate validity", e))
}
