//! The cryptography of mse, and the only crate that calls primitives directly.
//!
//! Every format here is byte-compatible with the original Cosmian MSE (mse-lib-crypto 1.4,
//! mse-cli 1.3): see `docs/formats.md` for the layouts and the test vectors they are checked
//! against.
//!
//! * [`keys`] - the code key (secretbox) and the enclave X25519 key pair.
//! * [`code`] - per-file code encryption, `nonce(24) ‖ tag(16) ‖ ciphertext`, and the tree
//!   walkers that encrypt a code directory for shipping and decrypt it inside the node.
//! * [`ignore`] - `.mseignore`, with Python `fnmatch` semantics.
//! * [`sealed`] - libsodium sealed boxes to the enclave key (secrets provisioning).
//! * [`fernet`] - Fernet tokens (`mse home encrypt/decrypt`).
//! * [`kdf`] - HKDF-SHA256.
//!
//! Secrets are zeroized on drop and never printed by `Debug`.

pub mod code;
mod error;
pub mod fernet;
pub mod ignore;
pub mod kdf;
pub mod keys;
pub mod sealed;

pub use error::{Error, Result};
pub use keys::{CodeKey, EnclavePublicKey, EnclaveSecretKey};
