//! The simulated enclave measurement ("sim MRENCLAVE").
//!
//! On real SGX the CPU measures the enclave and Gramine's manifest pins every file the enclave
//! may read. In simulation there is no CPU measurement, so the node and the client both compute
//! the same value from a canonical, versioned [`Manifest`] of what the node runs:
//!
//! * the node binary's SHA-256,
//! * a canonical digest of the Python runtime trees ([`runtime_digest`]),
//! * every shipped application file, by relative path and SHA-256 of its bytes as shipped
//!   (the ciphertext: it already depends on the code key and nonces),
//! * the node's launch arguments, in order.
//!
//! The measurement is SHA-256 of [`Manifest::to_canonical_bytes`]. The exact byte format is
//! specified in `docs/measurement.md` so a third party can recompute it without this crate.
//!
//! Computing it is pure and needs no Docker: files are hashed in parallel, and a [`DigestCache`]
//! keyed by `stat` lets a node start or a deploy skip the files that did not change.

mod cache;
mod error;
mod hashing;
mod manifest;
mod runtime;

pub use cache::{CACHE_HEADER, DigestCache, SETTLE};
pub use error::{Error, Result};
pub use hashing::{file_digest, file_digest_cached};
pub use manifest::{MANIFEST_HEADER, Manifest, code_digests};
pub use runtime::{
    RUNTIME_HEADER, RuntimeDigest, python_runtime_roots, runtime_canonical_bytes, runtime_digest,
    runtime_digest_cached,
};

/// A SHA-256 digest.
pub type Digest = [u8; 32];
