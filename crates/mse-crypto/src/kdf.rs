//! Key derivation.

use hkdf::Hkdf;
use sha2::Sha256;

use crate::{Error, Result};

/// HKDF-SHA256 (RFC 5869) of `ikm` with `salt` and `info`, filling `out` (at most 8160 bytes).
///
/// The original derives the enclave key this way from the 16-byte `_sgx_mrenclave` sealing key
/// with `info = b"mse-sgx-enclave-sealing-key"` and a random salt.
pub fn hkdf_sha256(ikm: &[u8], salt: &[u8], info: &[u8], out: &mut [u8]) -> Result<()> {
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, out)
        .map_err(|_| Error::KdfLength { len: out.len() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::EnclaveSecretKey;

    /// Reference §3.4: the enclave key derivation of mse-lib-sgx, with a fixed salt.
    #[test]
    fn enclave_key_vector() {
        let ikm: Vec<u8> = (0u8..16).collect();
        let mut sk = [0; 32];
        hkdf_sha256(&ikm, &[0xaa; 16], b"mse-sgx-enclave-sealing-key", &mut sk).unwrap();
        assert_eq!(
            hex::encode(sk),
            "74c97a25a6cf857d9b7667f43a27e510bc3505fe0f456de28ceb37cb3f810ea3"
        );
        assert_eq!(
            EnclaveSecretKey::from_bytes(sk).public_key().to_hex(),
            "ea7a0fd94f8a94947e4c58fbe7314b4239842a854bfb291c330615967b0f1d17"
        );
    }

    /// RFC 5869 test case 1.
    #[test]
    fn rfc5869_case_1() {
        let mut okm = [0; 42];
        hkdf_sha256(
            &[0x0b; 22],
            &hex::decode("000102030405060708090a0b0c").unwrap(),
            &hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap(),
            &mut okm,
        )
        .unwrap();
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }

    #[test]
    fn too_long_output_is_an_error() {
        let mut out = vec![0; 255 * 32 + 1];
        assert!(matches!(
            hkdf_sha256(b"k", b"s", b"i", &mut out),
            Err(Error::KdfLength { len: 8161 })
        ));
        let mut max = vec![0; 255 * 32];
        assert!(hkdf_sha256(b"k", b"s", b"i", &mut max).is_ok());
    }
}
