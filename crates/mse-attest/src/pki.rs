//! X.509 helpers over x509-parser: chain checks against a pinned anchor, times, key extraction.

use std::time::{SystemTime, UNIX_EPOCH};

use x509_parser::prelude::{FromDer, SubjectPublicKeyInfo, X509Certificate};

use crate::error::{Error, Result, Step};

/// Seconds since the Unix epoch (negative before 1970).
pub(crate) fn unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// The SystemTime of a Unix time.
pub(crate) fn at_unix(secs: i64) -> SystemTime {
    let d = std::time::Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH.checked_sub(d).unwrap_or(UNIX_EPOCH)
    }
}

/// RFC 3339 UTC text for a Unix time, for messages.
pub(crate) fn fmt_unix(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("@{secs}"))
}

pub(crate) fn parse_cert<'a>(der: &'a [u8], what: &'static str) -> Result<X509Certificate<'a>> {
    let (rest, cert) = X509Certificate::from_der(der)
        .map_err(|e| Error::malformed(what, format!("not a DER X.509 certificate: {e}")))?;
    if !rest.is_empty() {
        return Err(Error::malformed(
            what,
            format!("{} trailing bytes after the certificate", rest.len()),
        ));
    }
    Ok(cert)
}

/// Subject CN (or the whole subject) for messages.
pub(crate) fn cert_name(cert: &X509Certificate<'_>) -> String {
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok().map(str::to_owned))
        .unwrap_or_else(|| cert.subject().to_string())
}

/// The uncompressed SEC1 point of a P-256 SubjectPublicKeyInfo.
pub(crate) fn p256_point(spki: &SubjectPublicKeyInfo<'_>) -> Option<[u8; 65]> {
    let is_ec = spki.algorithm.algorithm == x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY;
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok());
    if !is_ec || curve != Some(x509_parser::oid_registry::OID_EC_P256) {
        return None;
    }
    let raw: &[u8] = &spki.subject_public_key.data;
    let arr: [u8; 65] = raw.try_into().ok()?;
    (arr[0] == 0x04).then_some(arr)
}

/// Check a chain given leaf first and ending with a certificate byte-identical to `anchor`:
/// every signature by the next certificate, issuer/subject names, CA constraints on issuers,
/// and every validity period at `at`.
pub(crate) fn verify_chain(
    chain: &[Vec<u8>],
    anchor: &[u8],
    at: SystemTime,
    step: Step,
    what: &str,
) -> Result<()> {
    let [.., last] = chain else {
        return Err(Error::verify(
            step,
            format!("{what}: empty certificate chain"),
        ));
    };
    if last.as_slice() != anchor {
        return Err(Error::verify(
            step,
            format!("{what}: the chain does not end at the pinned root certificate"),
        ));
    }
    let certs = chain
        .iter()
        .map(|d| {
            parse_cert(d, "certificate chain")
                .map_err(|e| Error::verify(step, format!("{what}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let now = unix(at);
    for (i, cert) in certs.iter().enumerate() {
        let issuer = certs.get(i + 1).unwrap_or(cert);
        let name = cert_name(cert);
        if cert.issuer().as_raw() != issuer.subject().as_raw() {
            return Err(Error::verify(
                step,
                format!("{what}: {name:?} is not issued by {:?}", cert_name(issuer)),
            ));
        }
        cert.verify_signature(Some(issuer.public_key()))
            .map_err(|e| {
                Error::verify(
                    step,
                    format!(
                        "{what}: signature of {name:?} by {:?} does not verify ({e})",
                        cert_name(issuer)
                    ),
                )
            })?;
        if i > 0 && !cert.is_ca() {
            return Err(Error::verify(
                step,
                format!("{what}: issuer {name:?} is not a CA certificate"),
            ));
        }
        let v = cert.validity();
        let (nb, na) = (v.not_before.timestamp(), v.not_after.timestamp());
        if now < nb {
            return Err(Error::verify(
                step,
                format!("{what}: {name:?} is not valid before {}", fmt_unix(nb)),
            ));
        }
        if now > na {
            return Err(Error::verify(
                step,
                format!("{what}: {name:?} expired on {}", fmt_unix(na)),
            ));
        }
    }
    Ok(())
}

/// Validity periods only (signatures checked elsewhere, e.g. RSA-PSS by the sev crate).
pub(crate) fn check_validity(
    chain: &[&[u8]],
    at: SystemTime,
    step: Step,
    what: &str,
) -> Result<()> {
    let now = unix(at);
    for der in chain {
        let cert = parse_cert(der, "certificate")
            .map_err(|e| Error::verify(step, format!("{what}: {e}")))?;
        let v = cert.validity();
        let name = cert_name(&cert);
        if now < v.not_before.timestamp() {
            return Err(Error::verify(
                step,
                format!(
                    "{what}: {name:?} is not valid before {}",
                    fmt_unix(v.not_before.timestamp())
                ),
            ));
        }
        if now > v.not_after.timestamp() {
            return Err(Error::verify(
                step,
                format!(
                    "{what}: {name:?} expired on {}",
                    fmt_unix(v.not_after.timestamp())
                ),
            ));
        }
    }
    Ok(())
}
