//! Key types. Secret keys are zeroized on drop and print as `[redacted]`.

use std::fmt;

use rand_core::{OsRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::{Error, Result};

/// Length of every key in this module.
pub const KEY_LEN: usize = 32;

/// The 32-byte NaCl secretbox key that encrypts the application code.
///
/// On the wire (configuration payload, sealed secrets, cloud context) it travels as 64 lowercase
/// hex digits; `mse home package --encrypt` stores it as 32 raw bytes.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct CodeKey([u8; KEY_LEN]);

impl CodeKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut key = CodeKey([0; KEY_LEN]);
        OsRng.fill_bytes(&mut key.0);
        key
    }

    /// Wrap raw key bytes (e.g. a `.key` file). The caller's copy is not zeroized.
    pub fn from_bytes(b: [u8; KEY_LEN]) -> Self {
        CodeKey(b)
    }

    /// Parse 64 hex digits (either case; surrounding ASCII whitespace is ignored).
    pub fn from_hex(s: &str) -> Result<Self> {
        let mut key = CodeKey([0; KEY_LEN]);
        decode_hex_key(s, &mut key.0, "code key")?;
        Ok(key)
    }

    /// 64 lowercase hex digits, as the original clients send it.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0))
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeKey([redacted])")
    }
}

/// The enclave's static X25519 secret key, the recipient of sealed secrets.
///
/// Stored as the raw 32 bytes the original writes to `KEY_PATH/enclave.key` (not clamped;
/// X25519 clamps when the key is used).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct EnclaveSecretKey([u8; KEY_LEN]);

impl EnclaveSecretKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut key = EnclaveSecretKey([0; KEY_LEN]);
        OsRng.fill_bytes(&mut key.0);
        key
    }

    /// Wrap raw key bytes (e.g. the content of `enclave.key`).
    pub fn from_bytes(b: [u8; KEY_LEN]) -> Self {
        EnclaveSecretKey(b)
    }

    /// The raw key bytes, in a buffer zeroized on drop.
    pub fn to_bytes(&self) -> Zeroizing<[u8; KEY_LEN]> {
        Zeroizing::new(self.0)
    }

    /// X25519(sk, basepoint).
    pub fn public_key(&self) -> EnclavePublicKey {
        EnclavePublicKey(*self.to_box_key().public_key().as_bytes())
    }

    /// The crypto_box form of this key; it zeroizes itself on drop.
    pub(crate) fn to_box_key(&self) -> crypto_box::SecretKey {
        crypto_box::SecretKey::from(self.0)
    }
}

impl fmt::Debug for EnclaveSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnclaveSecretKey([redacted])")
    }
}

/// The enclave's X25519 public key: the second half of RA-TLS `report_data`, and the
/// recipient of sealed secrets.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EnclavePublicKey(pub [u8; KEY_LEN]);

impl EnclavePublicKey {
    /// From exactly 32 bytes (e.g. `report_data[32..64]` or an `enclave.pub` file).
    pub fn from_slice(b: &[u8]) -> Result<Self> {
        let key: [u8; KEY_LEN] = b.try_into().map_err(|_| Error::InvalidKey {
            what: "enclave public key",
            reason: "must be exactly 32 bytes",
        })?;
        Ok(EnclavePublicKey(key))
    }

    /// From 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self> {
        let mut key = [0; KEY_LEN];
        decode_hex_key(s, &mut key, "enclave public key")?;
        Ok(EnclavePublicKey(key))
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

fn decode_hex_key(s: &str, out: &mut [u8; KEY_LEN], what: &'static str) -> Result<()> {
    let s = s.trim_matches(|c: char| c.is_ascii_whitespace());
    if s.len() != 2 * KEY_LEN {
        return Err(Error::InvalidKey {
            what,
            reason: "must be 64 hex digits (32 bytes)",
        });
    }
    hex::decode_to_slice(s, out).map_err(|_| Error::InvalidKey {
        what,
        reason: "contains a character that is not a hex digit",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // THREAT: T16
    #[test]
    fn code_key_hex_round_trip_and_redacted_debug() {
        let key = CodeKey::from_bytes(core::array::from_fn(|i| i as u8));
        let hex = key.to_hex();
        assert_eq!(
            hex.as_str(),
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        );
        assert_eq!(CodeKey::from_hex(&hex).unwrap().as_bytes(), key.as_bytes());
        assert_eq!(
            CodeKey::from_hex(&format!(" {}\n", hex.to_uppercase()))
                .unwrap()
                .as_bytes(),
            key.as_bytes()
        );
        assert_eq!(format!("{key:?}"), "CodeKey([redacted])");
        assert!(!format!("{:?}", EnclaveSecretKey::from_bytes([7; 32])).contains('7'));
    }

    #[test]
    fn code_key_from_hex_rejects_bad_input() {
        for bad in ["", "00", &"0".repeat(63), &"0".repeat(66), &"g".repeat(64)] {
            assert!(CodeKey::from_hex(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(
            CodeKey::generate().as_bytes(),
            CodeKey::generate().as_bytes()
        );
        assert_ne!(
            EnclaveSecretKey::generate().public_key(),
            EnclaveSecretKey::generate().public_key()
        );
    }

    #[test]
    fn enclave_public_key_from_slice_checks_length() {
        assert!(EnclavePublicKey::from_slice(&[0; 31]).is_err());
        assert!(EnclavePublicKey::from_slice(&[0; 33]).is_err());
        assert_eq!(EnclavePublicKey::from_slice(&[9; 32]).unwrap().0, [9; 32]);
    }
}
