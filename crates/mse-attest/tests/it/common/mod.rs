//! Shared test helpers: fixtures, pinned times, byte flips.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mse_attest::Step;
use x509_parser::prelude::FromDer as _;

pub fn fixture(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub fn fixture_str(rel: &str) -> String {
    String::from_utf8(fixture(rel)).unwrap()
}

/// Midnight UTC of a date.
pub fn day(y: i32, m: u8, d: u8) -> SystemTime {
    let date = time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap();
    let secs = date.midnight().assume_utc().unix_timestamp();
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap())
}

pub fn at_unix(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap())
}

pub fn flip(b: &[u8], at: usize) -> Vec<u8> {
    let mut v = b.to_vec();
    v[at] ^= 0x01;
    v
}

/// Assert an error names `step`, and return its text.
pub fn expect_step<T: std::fmt::Debug>(r: mse_attest::Result<T>, step: Step) -> String {
    match r {
        Ok(v) => panic!("expected a failure at {step}, got success: {v:?}"),
        Err(e) => {
            assert_eq!(e.step(), Some(step), "wrong step for error: {e}");
            let s = e.to_string();
            assert!(
                s.starts_with(step.as_str()),
                "message should start with the step: {s}"
            );
            s
        }
    }
}

/// Position of the first occurrence of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("needle not found")
}

/// Offset of `part`, a slice a parser borrowed from `whole`, inside `whole`.
fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    let off = (part.as_ptr() as usize)
        .checked_sub(whole.as_ptr() as usize)
        .expect("not a sub-slice");
    assert!(off + part.len() <= whole.len(), "not a sub-slice");
    off
}

/// Where one flipped byte changes a signed DER object without breaking its parsing, found by
/// parsing it: `tbs` is inside the signed part, `signature` inside the signature value.
#[derive(Clone, Copy, Debug)]
pub struct FlipAt {
    pub tbs: usize,
    pub signature: usize,
}

/// For a certificate: the last byte of the serial number (TBS content, protected only by the
/// signature) and the last byte of the signature value (the last byte of ECDSA `s`, never a DER
/// header, so the certificate still parses).
pub fn cert_flip_at(der: &[u8]) -> FlipAt {
    let (_, c) = x509_parser::certificate::X509Certificate::from_der(der).unwrap();
    let serial = c.tbs_certificate.raw_serial();
    let sig: &[u8] = &c.signature_value.data;
    FlipAt {
        tbs: offset_in(der, serial) + serial.len() - 1,
        signature: offset_in(der, sig) + sig.len() - 1,
    }
}

/// For a CRL: the last byte of the authority key identifier extension (the key id; TBS content
/// that no check but the signature reads) and the last byte of the signature value.
pub fn crl_flip_at(der: &[u8]) -> FlipAt {
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(der).unwrap();
    let aki = crl
        .extensions()
        .iter()
        .find(|e| e.oid == x509_parser::oid_registry::OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER)
        .expect("CRL without an authority key identifier")
        .value;
    let sig: &[u8] = &crl.signature_value.data;
    FlipAt {
        tbs: offset_in(der, aki) + aki.len() - 1,
        signature: offset_in(der, sig) + sig.len() - 1,
    }
}

/// The subject common name of a DER certificate.
pub fn cert_cn(der: &[u8]) -> String {
    let (_, c) = x509_parser::certificate::X509Certificate::from_der(der).unwrap();
    c.subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

/// PEM with LF line ends and 64 columns, as Intel writes the chains in its quotes.
pub fn pem_lf(tag: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(tag, der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// `text` with the PEM block of certificate `der` replaced by the PEM of `der` with the byte at
/// `at` flipped. The length is unchanged, so a quote's size fields stay right; the untouched
/// block must be found verbatim, which proves the re-encoding changes nothing else.
pub fn flip_in_pem(text: &[u8], der: &[u8], at: usize) -> Vec<u8> {
    let old = pem_lf("CERTIFICATE", der);
    let pos = find(text, old.as_bytes());
    let new = pem_lf("CERTIFICATE", &flip(der, at));
    assert_eq!(new.len(), old.len());
    let mut v = text.to_vec();
    v[pos..pos + old.len()].copy_from_slice(new.as_bytes());
    v
}

/// A quote with one byte flipped in the TBS, then in the signature, of the `index`-th
/// certificate of its PEM chain `chain` (leaf first): `[(what, bytes); 2]`.
pub fn pem_chain_flips(quote: &[u8], chain: &[Vec<u8>], index: usize) -> [(String, Vec<u8>); 2] {
    let der = &chain[index];
    let at = cert_flip_at(der);
    let name = cert_cn(der);
    [
        (
            format!("{name:?} TBS (serial number)"),
            flip_in_pem(quote, der, at.tbs),
        ),
        (
            format!("{name:?} signature"),
            flip_in_pem(quote, der, at.signature),
        ),
    ]
}
