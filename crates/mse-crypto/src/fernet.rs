//! Fernet tokens (`mse home encrypt` / `decrypt`), compatible with Python `cryptography`.
//!
//! key   = URL-safe base64 of 32 bytes: signing key (first 16) ‖ AES-128 key (last 16)
//! token = URL-safe base64 of `0x80 ‖ timestamp u64 BE ‖ iv(16) ‖ AES-128-CBC-PKCS7(pt) ‖
//!         HMAC-SHA256(signing key, everything before)`
//!
//! Decryption applies no TTL, as the original CLI.

use std::time::{SystemTime, UNIX_EPOCH};

use aes::Aes128;
use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::{Error, Result};

const VERSION: u8 = 0x80;
const HEADER_LEN: usize = 1 + 8 + 16;
const MAC_LEN: usize = 32;
const BLOCK: usize = 16;

/// Encrypt `pt` under the Fernet key `key_b64` (URL-safe base64 text, as in a key file).
pub fn encrypt(key_b64: &str, pt: &[u8]) -> Result<String> {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut iv = [0; BLOCK];
    OsRng.fill_bytes(&mut iv);
    encrypt_with(key_b64, pt, timestamp, iv)
}

/// [`encrypt`] with a given timestamp and IV (test vectors only: an IV must never repeat).
pub(crate) fn encrypt_with(
    key_b64: &str,
    pt: &[u8],
    timestamp: u64,
    iv: [u8; BLOCK],
) -> Result<String> {
    let key = FernetKey::parse(key_b64)?;
    let ciphertext = cbc::Encryptor::<Aes128>::new(key.encryption().into(), &iv.into())
        .encrypt_padded_vec_mut::<Pkcs7>(pt);
    let mut token = Vec::with_capacity(HEADER_LEN + ciphertext.len() + MAC_LEN);
    token.push(VERSION);
    token.extend_from_slice(&timestamp.to_be_bytes());
    token.extend_from_slice(&iv);
    token.extend_from_slice(&ciphertext);
    let tag = key.mac(&token)?.finalize().into_bytes();
    token.extend_from_slice(&tag);
    Ok(URL_SAFE.encode(token))
}

/// Decrypt a Fernet token. Never panics, whatever `token` holds.
pub fn decrypt(key_b64: &str, token: &str) -> Result<Zeroizing<Vec<u8>>> {
    let key = FernetKey::parse(key_b64)?;
    let data = decode_b64url(token).ok_or(Error::Fernet {
        reason: "the token is not URL-safe base64",
    })?;
    let body_len = data
        .len()
        .checked_sub(HEADER_LEN + MAC_LEN)
        .ok_or(Error::Fernet {
            reason: "the token is too short",
        })?;
    if data.first() != Some(&VERSION) || body_len == 0 || body_len % BLOCK != 0 {
        return Err(Error::Fernet {
            reason: "the token is malformed",
        });
    }
    let (signed, tag) = data.split_at(data.len() - MAC_LEN);
    key.mac(signed)?
        .verify_slice(tag)
        .map_err(|_| Error::Fernet {
            reason: "the token was not made with this key, or was modified",
        })?;
    let (iv, ciphertext) = (&signed[9..HEADER_LEN], &signed[HEADER_LEN..]);
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let iv: [u8; BLOCK] = iv.try_into().map_err(|_| Error::Fernet {
        reason: "the token is malformed",
    })?;
    let len = cbc::Decryptor::<Aes128>::new(key.encryption().into(), &iv.into())
        .decrypt_padded_mut::<Pkcs7>(&mut buf)
        .map_err(|_| Error::Fernet {
            reason: "bad padding in an authenticated token",
        })?
        .len();
    buf.truncate(len);
    Ok(buf)
}

struct FernetKey(Zeroizing<[u8; 32]>);

impl FernetKey {
    /// The key file's text: surrounding whitespace (a trailing newline) is ignored, padding optional.
    fn parse(key_b64: &str) -> Result<Self> {
        let bytes = Zeroizing::new(decode_b64url(key_b64).unwrap_or_default());
        let mut key = Zeroizing::new([0; 32]);
        if bytes.len() != key.len() {
            return Err(Error::InvalidKey {
                what: "Fernet key",
                reason: "must be URL-safe base64 of 32 bytes",
            });
        }
        key.copy_from_slice(&bytes);
        Ok(FernetKey(key))
    }

    fn encryption(&self) -> &[u8; 16] {
        self.0.last_chunk().unwrap_or(&[0; 16])
    }

    fn mac(&self, data: &[u8]) -> Result<Hmac<Sha256>> {
        let signing: &[u8; 16] = self.0.first_chunk().unwrap_or(&[0; 16]);
        // HMAC takes keys of any length: this cannot fail, but fail closed if it did.
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(signing).map_err(|_| Error::Fernet {
                reason: "cannot key HMAC-SHA256",
            })?;
        mac.update(data);
        Ok(mac)
    }
}

fn decode_b64url(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let engine = if text.ends_with('=') {
        &URL_SAFE
    } else {
        &URL_SAFE_NO_PAD
    };
    engine.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V5_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const V5_TOKEN: &str = "gAAAAABlU_EAoKGio6SlpqeoqaqrrK2ur9-Qneqca4SEMqRPdUcxhYTfW-WjbPNcYeJkOkkKrFTUjWehnWDTHTmlCgv-jfRw6g==";

    /// Reference §3.5 V5, made with Python `cryptography`.
    #[test]
    fn v5_fernet_vector() {
        let iv: [u8; 16] = core::array::from_fn(|i| 0xa0 + i as u8);
        assert_eq!(
            encrypt_with(V5_KEY, b"hello", 1_700_000_000, iv).unwrap(),
            V5_TOKEN
        );
        assert_eq!(&decrypt(V5_KEY, V5_TOKEN).unwrap()[..], b"hello");
        // A key file usually ends with a newline.
        assert_eq!(
            &decrypt(&format!("{V5_KEY}\n"), V5_TOKEN).unwrap()[..],
            b"hello"
        );
    }

    #[test]
    fn round_trip_with_random_iv() {
        for len in [0, 1, 15, 16, 17, 1000] {
            let pt = vec![0x5a; len];
            let token = encrypt(V5_KEY, &pt).unwrap();
            assert_eq!(&decrypt(V5_KEY, &token).unwrap()[..], &pt[..]);
        }
    }

    #[test]
    fn tampering_wrong_key_and_garbage_are_rejected() {
        let raw = URL_SAFE.decode(V5_TOKEN).unwrap();
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x01;
            assert!(decrypt(V5_KEY, &URL_SAFE.encode(&bad)).is_err(), "byte {i}");
        }
        for len in 0..raw.len() {
            assert!(
                decrypt(V5_KEY, &URL_SAFE.encode(&raw[..len])).is_err(),
                "len {len}"
            );
        }
        let other = URL_SAFE.encode([7u8; 32]);
        assert!(decrypt(&other, V5_TOKEN).is_err());
        assert!(decrypt(V5_KEY, "not base64!").is_err());
        assert!(encrypt("c2hvcnQ=", b"x").is_err(), "short key refused");
    }
}
