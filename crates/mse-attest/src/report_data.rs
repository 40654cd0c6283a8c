//! The 64 bytes of report data that bind evidence to the node's keys.
//!
//! Two constructions, documented byte for byte in docs/attestation.md:
//!
//! * [`ratls`]: the original MSE layout, kept byte-compatible with mse-lib-sgx ≥ 2.1:
//!   `SHA-256(tls_pk_uncompressed_65B) ‖ enclave_x25519_pk_32B`. Certificates made before
//!   mse-lib-sgx 2.1 carry 32 zero bytes in the second half ([`LEGACY_ZERO_ENCLAVE_KEY`]).
//! * [`fresh`]: evidence produced on demand over a client nonce:
//!   `SHA-512(FRESH_DOMAIN ‖ tls_pk_uncompressed_65B ‖ enclave_x25519_pk_32B ‖ nonce)`.
//!   The tag makes it impossible to present a fresh quote as a certificate quote or the
//!   reverse: the two constructions use different hash functions over differently tagged
//!   input, so equality would need a SHA-256/SHA-512 collision.

use sha2::{Digest, Sha256, Sha512};

/// Domain tag hashed first by [`fresh`] (ASCII, NUL-terminated).
pub const FRESH_DOMAIN: &[u8] = b"mse/report-data/fresh/v1\0";

/// The second half of report data in certificates made before mse-lib-sgx 2.1.
pub const LEGACY_ZERO_ENCLAVE_KEY: [u8; 32] = [0; 32];

/// MSE binding: SHA-256(uncompressed SEC1 TLS public key, 65 B) ‖ enclave X25519 pk.
pub fn ratls(tls_public_key_uncompressed: &[u8; 65], enclave_pk: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(&Sha256::digest(tls_public_key_uncompressed));
    out[32..].copy_from_slice(enclave_pk);
    out
}

/// Fresh evidence over a client nonce, bound to the same TLS key and enclave key.
///
/// The nonce is the last input, after two fixed-length fields, so the encoding is
/// unambiguous for any nonce length.
pub fn fresh(
    tls_public_key_uncompressed: &[u8; 65],
    enclave_pk: &[u8; 32],
    nonce: &[u8],
) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update(FRESH_DOMAIN);
    h.update(tls_public_key_uncompressed);
    h.update(enclave_pk);
    h.update(nonce);
    h.finalize().into()
}

/// The first half of [`ratls`]: what the original verifiers checked.
pub fn tls_key_hash(tls_public_key_uncompressed: &[u8; 65]) -> [u8; 32] {
    Sha256::digest(tls_public_key_uncompressed).into()
}
