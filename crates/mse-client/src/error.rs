use std::time::Duration;

/// Result of every fallible operation in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong talking to a node.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The node URL cannot be used.
    #[error("invalid node URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// TCP connection failed.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// host:port.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// The node presented a certificate other than the pinned one.
    #[error(
        "{addr} presented a TLS certificate other than the verified one; \
         refusing to talk to it (the node was restarted or replaced: verify it again)"
    )]
    PinMismatch {
        /// host:port.
        addr: String,
    },

    /// The TLS handshake failed for another reason.
    #[error("TLS handshake with {addr} failed: {source}")]
    Tls {
        /// host:port.
        addr: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The node served no certificate.
    #[error("{addr} served no TLS certificate")]
    NoCertificate {
        /// host:port.
        addr: String,
    },

    /// HTTP exchange failed.
    #[error("HTTP exchange with {addr} failed: {source}")]
    Http {
        /// host:port.
        addr: String,
        /// The hyper error.
        #[source]
        source: hyper::Error,
    },

    /// The response body was larger than expected.
    #[error("response from {addr} is larger than {limit} bytes")]
    BodyTooLarge {
        /// host:port.
        addr: String,
        /// The limit.
        limit: usize,
    },

    /// An operation did not finish in time.
    #[error("{what} with {addr} timed out after {after:?}")]
    Timeout {
        /// Which operation.
        what: &'static str,
        /// host:port.
        addr: String,
        /// The deadline.
        after: Duration,
    },

    /// The node refused the configuration payload.
    #[error("the node refused the configuration (HTTP {status}{}): check the app id, the secrets and the code key", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Rejected {
        /// HTTP status code.
        status: u16,
        /// Response body, lossily decoded and truncated.
        body: String,
    },

    /// The node answered the evidence request with an unexpected status.
    #[error(
        "fresh evidence request failed with HTTP {status}: does this node support /.well-known/mse/evidence?"
    )]
    EvidenceStatus {
        /// HTTP status code.
        status: u16,
    },

    /// The evidence response is malformed.
    #[error("malformed fresh evidence: {reason}")]
    MalformedEvidence {
        /// What is wrong.
        reason: &'static str,
    },

    /// The nonce is unusable.
    #[error("invalid nonce: {reason}")]
    InvalidNonce {
        /// What is wrong.
        reason: &'static str,
    },
}
