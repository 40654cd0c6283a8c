//! Per-file code encryption, compatible with mse-lib-crypto's `xsalsa20_poly1305` module.
//!
//! Each file is sealed separately with NaCl `crypto_secretbox` (XSalsa20-Poly1305) under the
//! code key. The encrypted file is `nonce(24) ‖ tag(16) ‖ ciphertext`, 40 bytes longer than the
//! plaintext, and is named after the plaintext with [`SUFFIX`] appended (`app.py` → `app.py.enc`).
//! Re-encrypting with the same key and the same nonces gives identical bytes, which is what
//! makes the measurement of the shipped code reproducible.

use crypto_secretbox::aead::AeadInPlace;
use crypto_secretbox::{KeyInit, XSalsa20Poly1305};
use zeroize::Zeroizing;

use crate::keys::CodeKey;
use crate::{Error, Result};

mod tree;

pub use crate::ignore::read_mseignore;
pub use tree::{DecryptedTree, decrypt_tree, encrypt_tree};

/// A secretbox nonce.
pub type Nonce = [u8; 24];

/// POSIX relative path of a plaintext file (without [`SUFFIX`]) → the nonce it was encrypted with.
pub type NonceMap = std::collections::BTreeMap<String, Nonce>;

/// Appended to the name of every encrypted file.
pub const SUFFIX: &str = ".enc";

/// Basenames that are shipped in clear at any depth (pip needs them before decryption).
pub const CLEAR_FILES: &[&str] = &["requirements.txt"];

/// Bytes added to every file: nonce then Poly1305 tag.
pub const OVERHEAD: usize = NONCE_LEN + TAG_LEN;

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Encrypt one file's bytes: `nonce ‖ tag ‖ ciphertext`.
///
/// The caller must never use the same nonce twice with one key; [`encrypt_tree`] draws a fresh
/// random nonce per file unless it is replaying a stored [`NonceMap`].
pub fn encrypt(key: &CodeKey, nonce: &Nonce, plaintext: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
    out.extend_from_slice(nonce);
    out.extend_from_slice(&[0; TAG_LEN]);
    out.extend_from_slice(plaintext);
    let cipher = XSalsa20Poly1305::new(key.as_bytes().into());
    // Encrypt in place so the plaintext copy in `out` is overwritten by ciphertext.
    let tag = cipher.encrypt_in_place_detached(nonce.into(), b"", &mut out[OVERHEAD..]);
    #[allow(clippy::expect_used)]
    // invariant: secretbox encryption only fails when associated data is given, and we give none.
    let tag = tag.expect("invariant: secretbox without associated data cannot fail");
    out[NONCE_LEN..OVERHEAD].copy_from_slice(&tag);
    out
}

/// Decrypt one encrypted file (`nonce ‖ tag ‖ ciphertext`). `what` names the file in errors.
///
/// Never panics, whatever `file` holds.
pub fn decrypt(key: &CodeKey, file: &[u8], what: &str) -> Result<Zeroizing<Vec<u8>>> {
    let (Some(nonce), Some(tag), Some(ciphertext)) = (
        file.get(..NONCE_LEN),
        file.get(NONCE_LEN..OVERHEAD),
        file.get(OVERHEAD..),
    ) else {
        return Err(Error::Truncated {
            what: what.to_owned(),
            len: file.len(),
        });
    };
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let cipher = XSalsa20Poly1305::new(key.as_bytes().into());
    cipher
        .decrypt_in_place_detached(nonce.into(), b"", &mut buf, tag.into())
        .map_err(|_| Error::Decrypt {
            what: what.to_owned(),
        })?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1_key() -> CodeKey {
        CodeKey::from_bytes(core::array::from_fn(|i| i as u8))
    }
    fn v1_nonce() -> Nonce {
        core::array::from_fn(|i| 0x40 + i as u8)
    }

    /// Reference §3.1 V1, computed with PyNaCl.
    #[test]
    fn v1_secretbox_vector() {
        let out = encrypt(&v1_key(), &v1_nonce(), b"Hello MSE!\n");
        assert_eq!(
            hex::encode(&out),
            "404142434445464748494a4b4c4d4e4f5051525354555657\
             f07247019addb9d04fe816ceb9c97d73\
             027239155571f67983787b"
        );
        assert_eq!(
            &decrypt(&v1_key(), &out, "v1").unwrap()[..],
            b"Hello MSE!\n"
        );

        let empty = encrypt(&v1_key(), &v1_nonce(), b"");
        assert_eq!(
            hex::encode(&empty),
            "404142434445464748494a4b4c4d4e4f5051525354555657\
             25ad7f4489ddd636717f1a6bbc7daf99"
        );
        assert!(decrypt(&v1_key(), &empty, "v1 empty").unwrap().is_empty());
    }

    #[test]
    fn every_modified_byte_is_rejected() {
        let out = encrypt(&v1_key(), &v1_nonce(), b"Hello MSE!\n");
        // Nonce, tag and ciphertext regions alike.
        for i in 0..out.len() {
            let mut bad = out.clone();
            bad[i] ^= 0x01;
            match decrypt(&v1_key(), &bad, "app.py.enc") {
                Err(Error::Decrypt { what }) => assert_eq!(what, "app.py.enc"),
                other => panic!("byte {i}: {other:?}"),
            }
        }
    }

    #[test]
    fn truncation_and_extension_are_rejected() {
        let out = encrypt(&v1_key(), &v1_nonce(), b"Hello MSE!\n");
        for len in 0..OVERHEAD {
            assert!(matches!(
                decrypt(&v1_key(), &out[..len], "x"),
                Err(Error::Truncated { len: l, .. }) if l == len
            ));
        }
        for len in OVERHEAD..out.len() {
            assert!(matches!(
                decrypt(&v1_key(), &out[..len], "x"),
                Err(Error::Decrypt { .. })
            ));
        }
        let mut longer = out.clone();
        longer.push(0);
        assert!(decrypt(&v1_key(), &longer, "x").is_err());
    }

    #[test]
    fn wrong_key_is_rejected() {
        let out = encrypt(&v1_key(), &v1_nonce(), b"secret code");
        let mut other = *v1_key().as_bytes();
        other[31] ^= 0x80;
        let err = decrypt(&CodeKey::from_bytes(other), &out, "app.py.enc").unwrap_err();
        assert!(err.to_string().contains("app.py.enc"), "{err}");
        assert!(err.to_string().contains("wrong code key"), "{err}");
    }

    /// Reference §3.1 V2: a file encrypted by the original tooling (Cosmian/mse-lib-sgx tests/data).
    #[test]
    fn v2_real_repository_file() {
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata"));
        let (Ok(key), Ok(enc), Ok(plain)) = (
            std::fs::read(dir.join("code.key")),
            std::fs::read(dir.join("app.py.enc")),
            std::fs::read(dir.join("app.py")),
        ) else {
            panic!("test data missing under {}", dir.display());
        };
        let key = CodeKey::from_bytes(key.try_into().unwrap());
        assert_eq!(
            key.to_hex().as_str(),
            "27004157347e7000674c10a3db3aaa6816918e745959fdb686ec513c9643c597"
        );
        let out = decrypt(&key, &enc, "app.py.enc").unwrap();
        assert_eq!(&out[..], &plain[..]);
        assert_eq!(
            &out[..],
            b"import platform\n\nx, y, z = 1, 2, 3\n\nprint(platform.uname())\n"
        );
        // Re-encrypting with the embedded nonce gives back the original bytes.
        let nonce: Nonce = enc[..24].try_into().unwrap();
        assert_eq!(encrypt(&key, &nonce, &plain), enc);
    }
}
