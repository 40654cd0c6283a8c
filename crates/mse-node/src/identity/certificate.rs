//! The RA-TLS certificate (protocol §4.1): self-signed, ECDSA P-256, the TEE evidence in a
//! non-critical extension, one SAN, the RFC 4514 subject, BasicConstraints critical CA:TRUE (so
//! that curl `--cacert` and requests `verify=` accept it as its own trust anchor).

use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use mse_attest::ratls::RaTlsCertificate;
use rand_core::{OsRng, RngCore};
use rcgen::{BasicConstraints, CertificateParams, CustomExtension, IsCa, SanType, SerialNumber};

use super::keys::TlsKey;
use super::subject::Subject;
use crate::cli::San;

/// Start of validity, backdated so a client whose clock is slightly behind still accepts it.
const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// What the certificate says, besides the key and the evidence.
#[derive(Debug, Clone)]
pub struct CertSpec {
    pub subject: Subject,
    pub san: San,
    pub not_after: SystemTime,
}

/// Evidence to embed: its OID (dotted) and bytes.
pub struct EvidenceExt<'a> {
    pub oid: &'a str,
    pub bytes: &'a [u8],
}

/// Builds and signs the certificate; returns its DER.
pub fn build(
    key: &TlsKey,
    spec: &CertSpec,
    evidence: &EvidenceExt<'_>,
    now: SystemTime,
) -> Result<Vec<u8>> {
    let mut params = CertificateParams::default();
    params.distinguished_name = spec.subject.to_distinguished_name()?;
    params.subject_alt_names = vec![match &spec.san {
        San::Ip(ip) => SanType::IpAddress(*ip),
        San::Dns(name) => SanType::DnsName(
            name.as_str()
                .try_into()
                .context("--san is not a valid DNS name")?,
        ),
    }];
    params.not_before = (now - CLOCK_SKEW).into();
    params.not_after = spec.not_after.into();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.serial_number = Some(random_serial());
    let mut ext =
        CustomExtension::from_oid_content(&oid_arcs(evidence.oid)?, evidence.bytes.to_vec());
    ext.set_criticality(false);
    params.custom_extensions = vec![ext];
    let cert = params
        .self_signed(&key.pair)
        .context("cannot sign the RA-TLS certificate")?;
    Ok(cert.der().to_vec())
}

/// Parses our own certificate back with the verifier's parser and checks that it carries the
/// TLS key and the report data we meant. Fail closed: a certificate that a client would read
/// differently must never be served.
pub fn self_check(
    der: &[u8],
    tls_public: &[u8; 65],
    report_data: &[u8; 64],
    evidence: &[u8],
) -> Result<RaTlsCertificate> {
    let cert = RaTlsCertificate::from_der(der)
        .context("self-check: our RA-TLS certificate does not parse")?;
    if cert.tls_public_key() != tls_public {
        bail!("self-check: the certificate's public key is not the RA-TLS key");
    }
    if cert.evidence().bytes != evidence {
        bail!("self-check: the certificate's evidence is not the one produced");
    }
    let found = super::evidence::report_data(&cert.evidence().bytes, cert.evidence().kind)
        .context("self-check: the certificate's evidence does not parse")?;
    if &found != report_data {
        bail!(
            "self-check: the evidence's report data does not bind the TLS key and the enclave key"
        );
    }
    if !cert.is_ca() || !cert.is_self_signed() {
        bail!("self-check: the certificate is not a self-signed CA certificate");
    }
    Ok(cert)
}

fn random_serial() -> SerialNumber {
    // Positive and at most 159 bits, as Python's x509.random_serial_number().
    let mut bytes = [0u8; 20];
    OsRng.fill_bytes(&mut bytes);
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01; // keep the full length: no leading zero byte to strip
    SerialNumber::from_slice(&bytes)
}

/// Dotted OID → arcs. Never panics.
fn oid_arcs(dotted: &str) -> Result<Vec<u64>> {
    let arcs = dotted
        .split('.')
        .map(str::parse::<u64>)
        .collect::<Result<Vec<_>, _>>();
    match arcs {
        Ok(a) if a.len() >= 2 => Ok(a),
        _ => bail!("evidence OID `{dotted}` is not a dotted OID"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::subject::parse_rfc4514;
    use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256};
    use x509_parser::prelude::*;

    fn key() -> TlsKey {
        let pair = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let public = pair.public_key_raw().try_into().unwrap();
        TlsKey { pair, public }
    }

    #[test]
    fn the_certificate_has_the_original_shape() {
        let k = key();
        let now = SystemTime::now();
        let spec = CertSpec {
            subject: parse_rfc4514("CN=localhost,O=MyApp Company,C=FR").unwrap(),
            san: San::Ip("127.0.0.1".parse().unwrap()),
            not_after: now + Duration::from_secs(3600),
        };
        let quote = vec![0xAB; 4734];
        let der = build(
            &k,
            &spec,
            &EvidenceExt {
                oid: "1.2.840.113741.1337.6",
                bytes: &quote,
            },
            now,
        )
        .unwrap();
        let (rest, cert) = X509Certificate::from_der(&der).unwrap();
        assert!(rest.is_empty());
        assert_eq!(cert.subject(), cert.issuer());
        assert_eq!(
            cert.subject().to_string(),
            "C=FR, O=MyApp Company, CN=localhost"
        );
        let bc = cert.basic_constraints().unwrap().unwrap();
        assert!(bc.critical && bc.value.ca && bc.value.path_len_constraint.is_none());
        let ext = cert
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.2.840.113741.1337.6")
            .unwrap();
        assert!(!ext.critical);
        assert_eq!(ext.value, quote.as_slice());
        let san = cert.subject_alternative_name().unwrap().unwrap();
        assert_eq!(
            san.value.general_names,
            vec![GeneralName::IPAddress(&[127, 0, 0, 1])]
        );
        assert_eq!(
            cert.public_key().subject_public_key.data.as_ref(),
            k.public.as_slice()
        );
        assert!(cert.verify_signature(None).is_ok());
        let serial = cert.raw_serial();
        assert!(serial.len() == 20 && serial[0] & 0x80 == 0);
        let not_after = cert.validity().not_after.timestamp();
        let want = i64::try_from(
            (now + Duration::from_secs(3600))
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap();
        assert_eq!(not_after, want);
    }

    #[test]
    fn dns_san() {
        let k = key();
        let now = SystemTime::now();
        let spec = CertSpec {
            subject: Subject::default_subject(),
            san: San::Dns("app.example.com".into()),
            not_after: now + Duration::from_secs(60),
        };
        let der = build(
            &k,
            &spec,
            &EvidenceExt {
                oid: "1.2.840.113741.1337.8",
                bytes: b"q",
            },
            now,
        )
        .unwrap();
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        let san = cert.subject_alternative_name().unwrap().unwrap();
        assert_eq!(
            san.value.general_names,
            vec![GeneralName::DNSName("app.example.com")]
        );
    }

    #[test]
    fn oids() {
        assert_eq!(
            oid_arcs("1.2.840.113741.1337.6").unwrap(),
            vec![1, 2, 840, 113741, 1337, 6]
        );
        for bad in ["", "1", "1..2", "a.b", "1.2.-3"] {
            assert!(oid_arcs(bad).is_err(), "{bad}");
        }
    }
}
