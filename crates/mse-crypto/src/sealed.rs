//! libsodium sealed boxes (`crypto_box_seal`), compatible with PyNaCl `SealedBox` and
//! mse-lib-crypto's `seal_box`.
//!
//! `sealed = ephemeral_pk(32) ‖ tag(16) ‖ ciphertext`, where the box key is X25519(ephemeral sk,
//! recipient pk) and the nonce is BLAKE2b-192(ephemeral_pk ‖ recipient_pk): 48 bytes of overhead.
//! Anyone can seal to the enclave; only the holder of the enclave secret key can open, and the
//! sender stays anonymous (the box carries no sender authentication).

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use rand_core::{CryptoRngCore, OsRng};
use zeroize::Zeroizing;

use crate::keys::{EnclavePublicKey, EnclaveSecretKey};
use crate::{Error, Result};

/// Bytes a sealed box adds to the message.
pub const OVERHEAD: usize = 48;

/// Seal `msg` to the enclave's public key with a fresh ephemeral key.
pub fn seal(recipient: &EnclavePublicKey, msg: &[u8]) -> Vec<u8> {
    seal_with_rng(recipient, msg, &mut OsRng)
}

/// [`seal`] with the ephemeral key drawn from `rng` (a fixed one reproduces test vectors).
pub(crate) fn seal_with_rng(
    recipient: &EnclavePublicKey,
    msg: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Vec<u8> {
    let sealed = crypto_box::PublicKey::from(recipient.0).seal(rng, msg);
    #[allow(clippy::expect_used)]
    // invariant: sealing encrypts into a Vec without associated data, which cannot fail.
    sealed.expect("invariant: crypto_box_seal cannot fail")
}

/// Open a sealed box addressed to `sk`. Never panics, whatever `sealed` holds.
pub fn open(sk: &EnclaveSecretKey, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if sealed.len() < OVERHEAD {
        return Err(Error::Sealed {
            reason: "too short (a sealed box is at least 48 bytes)",
        });
    }
    sk.to_box_key()
        .unseal(sealed)
        .map(Zeroizing::new)
        .map_err(|_| Error::Sealed {
            reason: "cannot be opened with this enclave key (sealed to another enclave, or modified)",
        })
}

/// The wire form of sealed bytes in the configuration payload: URL-safe base64 without padding.
pub fn to_wire(sealed: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(sealed)
}

/// Decode [`to_wire`] output; padding is optional (the original server re-pads). Never panics.
pub fn from_wire(text: &str) -> Result<Vec<u8>> {
    let engine = if text.ends_with('=') {
        &URL_SAFE
    } else {
        &URL_SAFE_NO_PAD
    };
    engine.decode(text).map_err(|_| Error::Sealed {
        reason: "app_sealed_secrets is not URL-safe base64",
    })
}

#[cfg(test)]
mod tests {
    use rand_core::{CryptoRng, RngCore};

    use super::*;

    /// Hands out one fixed byte forever: reproduces the fixed ephemeral key of vector V3.
    struct Fixed(u8);
    impl RngCore for Fixed {
        fn next_u32(&mut self) -> u32 {
            u32::from_le_bytes([self.0; 4])
        }
        fn next_u64(&mut self) -> u64 {
            u64::from_le_bytes([self.0; 8])
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            dest.fill(self.0);
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            dest.fill(self.0);
            Ok(())
        }
    }
    impl CryptoRng for Fixed {}

    const V3_MSG: &[u8] =
        br#"{"code_secret_key": "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"}"#;
    const V3_SEALED: &str = "0faa684ed28867b97f4a6a2dee5df8ce974e76b7018e3f22a1c4cf2678570f2011af2aba7a4115e5fb91cdb63beab054a1f9dd1f7df8c87e308a3a5f754d25b7f4220be7d62a9d1e8be6295cbc8addc78ed2e36de71ac4d8bcbe96b22e04d366082d799ddff88d453bd2da96c02c8162b9334035c6725ee9f133c390dfd0fe2b108354492b905f";
    const V3_WIRE: &str = "D6poTtKIZ7l_Smot7l34zpdOdrcBjj8iocTPJnhXDyARryq6ekEV5fuRzbY76rBUofndH334yH4wijpfdU0lt_QiC-fWKp0ei-YpXLyK3ceO0uNt5xrE2Ly-lrIuBNNmCC15nd_4jUU70tqWwCyBYrkzQDXGcl7p8TPDkN_Q_isQg1RJK5Bf";

    /// Reference §3.2 V3, accepted by the original library's `unseal`.
    #[test]
    fn v3_sealed_box_vector() {
        let sk = EnclaveSecretKey::from_bytes([0x11; 32]);
        assert_eq!(
            sk.public_key().to_hex(),
            "7b4e909bbe7ffe44c465a220037d608ee35897d31ef972f07f74892cb0f73f13"
        );
        assert_eq!(V3_MSG.len(), 87);
        let sealed = seal_with_rng(&sk.public_key(), V3_MSG, &mut Fixed(0x22));
        assert_eq!(hex::encode(&sealed), V3_SEALED);
        assert_eq!(to_wire(&sealed), V3_WIRE);
        assert_eq!(from_wire(V3_WIRE).unwrap(), sealed);
        assert_eq!(&open(&sk, &sealed).unwrap()[..], V3_MSG);
    }

    #[test]
    fn open_rejects_other_key_tampering_and_truncation() {
        let sk = EnclaveSecretKey::generate();
        let sealed = seal(&sk.public_key(), b"secret");
        assert_eq!(sealed.len(), 6 + OVERHEAD);
        assert!(open(&EnclaveSecretKey::generate(), &sealed).is_err());
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x04;
            assert!(open(&sk, &bad).is_err(), "byte {i}");
        }
        for len in 0..sealed.len() {
            assert!(open(&sk, &sealed[..len]).is_err(), "len {len}");
        }
        assert_eq!(&open(&sk, &sealed).unwrap()[..], b"secret");
    }

    #[test]
    fn empty_message_round_trips() {
        let sk = EnclaveSecretKey::generate();
        let sealed = seal(&sk.public_key(), b"");
        assert_eq!(sealed.len(), OVERHEAD);
        assert!(open(&sk, &sealed).unwrap().is_empty());
    }

    #[test]
    fn wire_decoding_accepts_padding_and_rejects_other_alphabets() {
        let bytes = [0xfb, 0xff, 0x01, 0x02];
        let wire = to_wire(&bytes);
        assert!(!wire.contains('='));
        assert_eq!(from_wire(&wire).unwrap(), bytes);
        assert_eq!(from_wire(&format!("{wire}==")).unwrap(), bytes);
        assert!(from_wire("+/8BAg").is_err(), "standard alphabet refused");
        assert!(from_wire("a").is_err());
    }
}
