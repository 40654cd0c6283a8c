//! Talk to an mse node: fetch and pin its RA-TLS certificate, send the configuration payload,
//! probe readiness, fetch fresh evidence.
//!
//! The flow a client follows:
//! 1. [`fetch_certificate`]: an unverified handshake that returns the node's certificate.
//! 2. Verify the evidence inside it (mse-attest); only then
//! 3. build a [`NodeClient`] pinned to exactly that certificate, wait for
//!    [`NodeClient::is_waiting_for_secrets`], send the [`ConfigurationPayload`] with
//!    [`NodeClient::configure`], and poll [`NodeClient::is_ready`].
//!
//! Wire behaviour matches the original mse-cli 1.3 (see `docs/formats.md`), so this client
//! works against the original enclave bootstrap as well as against `mse-node`.

mod error;
mod evidence;
mod node;
mod payload;
mod pyjson;
mod tls;

pub use error::{Error, Result};
pub use evidence::FreshEvidence;
pub use node::{
    EVIDENCE_PATH, MAX_NONCE_LEN, MSE_STATUS, NodeClient, Timeouts, fetch_certificate,
    fetch_certificate_within,
};
pub use payload::ConfigurationPayload;
pub use tls::{PinnedCertVerifier, pinned_client_config};
