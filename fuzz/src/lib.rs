//! One entry function per fuzz target, so that a target's body is also callable from a replay
//! test or a debugger. Each must never panic on any input; where a cheap invariant exists it is
//! asserted (a parse that succeeds must reparse to the same value).

use mse_crypto::{CodeKey, EnclaveSecretKey};

/// Node: the configuration payload POSTed by the client (JSON).
#[cfg(feature = "node")]
pub fn configuration_payload(data: &[u8]) {
    let _ = mse_node::parse_configuration(data);
}

/// Node: the sealed secrets, once opened (JSON).
#[cfg(feature = "node")]
pub fn sealed_secrets(data: &[u8]) {
    let _ = mse_node::parse_sealed_secrets(data);
}

/// Node: `app_sealed_secrets`, a libsodium sealed box to the enclave key.
pub fn sealed_open(data: &[u8]) {
    let sk = EnclaveSecretKey::from_bytes([7; 32]);
    let _ = mse_crypto::sealed::open(&sk, data);
    // Round trip: anything sealed to our key opens to the same bytes.
    let sealed = mse_crypto::sealed::seal(&sk.public_key(), data);
    let opened = mse_crypto::sealed::open(&sk, &sealed).ok();
    assert_eq!(opened.as_deref().map(|v| v.as_slice()), Some(data));
}

/// Node: an encrypted code file (`nonce ‖ tag ‖ ciphertext`).
pub fn code_decrypt(data: &[u8]) {
    // The key of the shared test vector (testdata/tee/mse/code.key), so seeds decrypt.
    let key = CodeKey::from_bytes(CODE_KEY);
    let _ = mse_crypto::code::decrypt(&key, data, "fuzz.py.enc");
    let nonce = [9_u8; 24];
    let file = mse_crypto::code::encrypt(&key, &nonce, data);
    let back = mse_crypto::code::decrypt(&key, &file, "fuzz.py.enc").ok();
    assert_eq!(back.as_deref().map(|v| v.as_slice()), Some(data));
}

/// The key of /work/shared/testdata/tee/mse/code.key (the original's public test vector).
pub const CODE_KEY: [u8; 32] = *include_bytes!("../seeds/code.key");

/// CLI: a Fernet token produced by an app (`mse home decrypt`).
pub fn fernet_decrypt(data: &[u8]) {
    if let Ok(token) = std::str::from_utf8(data) {
        let _ = mse_crypto::fernet::decrypt(FERNET_KEY, token);
    }
    let token = mse_crypto::fernet::encrypt(FERNET_KEY, data).ok();
    let back = token.and_then(|t| mse_crypto::fernet::decrypt(FERNET_KEY, &t).ok());
    assert_eq!(back.as_deref().map(|v| v.as_slice()), Some(data));
}

/// A Fernet key made for the seeds (32 bytes of 0x42, url-safe base64).
pub const FERNET_KEY: &str = "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=";

/// Verifier: an SGX DCAP v3 quote.
pub fn sgx_quote(data: &[u8]) {
    if let Ok(q) = mse_attest::sgx::Quote::parse(data) {
        assert!(
            mse_attest::sgx::Quote::parse(q.as_bytes()).is_ok(),
            "a parsed quote's own bytes must parse"
        );
        let _ = q.pck_chain();
    }
}

/// Verifier: a TDX v4/v5 quote.
pub fn tdx_quote(data: &[u8]) {
    if let Ok(q) = mse_attest::tdx::Quote::parse(data) {
        assert!(
            mse_attest::tdx::Quote::parse(q.as_bytes()).is_ok(),
            "a parsed quote's own bytes must parse"
        );
        let _ = q.pck_chain();
        let _ = q.measurement();
    }
}

/// Verifier: an SEV-SNP report, alone or followed by a certificate table.
pub fn snp_report(data: &[u8]) {
    if let Ok(r) = mse_attest::snp::Report::parse(data) {
        assert!(
            mse_attest::snp::Report::parse(r.as_bytes()).is_ok(),
            "a parsed report's own bytes must parse"
        );
    }
    let _ = mse_attest::snp::Evidence::parse(data);
    let _ = mse_attest::snp::parse_cert_table(data);
}

/// Client: the node's RA-TLS certificate (DER, or PEM text).
pub fn ratls_cert(data: &[u8]) {
    if let Ok(c) = mse_attest::ratls::RaTlsCertificate::from_der(data) {
        let again = mse_attest::ratls::RaTlsCertificate::from_der(c.der());
        assert!(again.is_ok(), "a parsed certificate's DER must parse");
        let _ = mse_attest::ratls::RaTlsCertificate::from_pem(&c.to_pem());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = mse_attest::ratls::RaTlsCertificate::from_pem(text);
    }
}

/// CLI: an operator's evidence.json.
pub fn evidence_file(data: &[u8]) {
    let _ = mse_attest::evidence_file::EvidenceFile::parse(data);
}

/// CLI: the app owner's mse.toml.
#[cfg(feature = "cli")]
pub fn mse_toml(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = mse_cli::config::parse(text, std::path::Path::new("/fuzz/mse.toml"));
    }
}

/// The file-digest cache a node reads from the host at start (sim backend): any bytes parse
/// or are refused whole, never a panic.
pub fn digest_cache(data: &[u8]) {
    if let Some(cache) = mse_measure::DigestCache::from_bytes(data) {
        let _ = cache.len();
    }
}
