//! `GET /.well-known/mse/evidence?nonce=<hex>`: fresh evidence over a client nonce, in every
//! phase, so a client can check that the node is live now and not a replay of a certificate.
//! The report data is [`mse_attest::report_data::fresh`] over the TLS key, the enclave key and
//! the nonce.

use std::sync::Arc;

use base64::Engine as _;
use http::{Response, StatusCode, header};
use mse_tee::TeeBackend;
use tokio::sync::Semaphore;

use super::body::NodeBody;
use super::response;

/// The reserved path.
pub const PATH: &str = "/.well-known/mse/evidence";
/// Nonces are 1 to 64 bytes.
pub const MAX_NONCE: usize = 64;
/// Quote generation is slow on real hardware: a few at a time, the rest are told to retry.
const CONCURRENT_QUOTES: usize = 2;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NonceError {
    #[error("the query must carry nonce=<hex>, 1 to 64 bytes")]
    Missing,
    #[error("nonce must appear once")]
    Repeated,
    #[error("nonce must be an even number of hex digits, 1 to 64 bytes")]
    Malformed,
}

/// Extracts the nonce from a query string. Never panics.
pub fn parse_nonce_query(query: &[u8]) -> Result<Vec<u8>, NonceError> {
    let mut found = None;
    for pair in query.split(|b| *b == b'&') {
        let Some(value) = pair.strip_prefix(b"nonce=") else {
            continue;
        };
        if found.replace(value).is_some() {
            return Err(NonceError::Repeated);
        }
    }
    let value = found.ok_or(NonceError::Missing)?;
    let nonce = hex::decode(value).map_err(|_| NonceError::Malformed)?;
    if nonce.is_empty() || nonce.len() > MAX_NONCE {
        return Err(NonceError::Malformed);
    }
    Ok(nonce)
}

/// Produces fresh evidence.
pub struct EvidenceService {
    tee: Arc<dyn TeeBackend>,
    tls_public: [u8; 65],
    enclave_public: [u8; 32],
    permits: Arc<Semaphore>,
}

impl EvidenceService {
    pub fn new(tee: Arc<dyn TeeBackend>, tls_public: [u8; 65], enclave_public: [u8; 32]) -> Self {
        EvidenceService {
            tee,
            tls_public,
            enclave_public,
            permits: Arc::new(Semaphore::new(CONCURRENT_QUOTES)),
        }
    }

    pub async fn respond(&self, query: Option<&str>) -> Response<NodeBody> {
        let nonce = match parse_nonce_query(query.unwrap_or_default().as_bytes()) {
            Ok(n) => n,
            Err(e) => return response::text(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            return response::busy();
        };
        let report_data =
            mse_attest::report_data::fresh(&self.tls_public, &self.enclave_public, &nonce);
        let tee = self.tee.clone();
        let produced = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            tee.evidence(&report_data)
        })
        .await;
        let evidence = match produced {
            Ok(Ok(e)) => e,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot produce fresh evidence");
                return response::text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the TEE could not produce evidence",
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "evidence task failed");
                return response::text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the TEE could not produce evidence",
                );
            }
        };
        let body = serde_json::json!({
            "tee": evidence.kind.to_string(),
            "quote": base64::engine::general_purpose::STANDARD.encode(&evidence.bytes),
            "nonce": hex::encode(&nonce),
        });
        let mut resp = Response::new(NodeBody::full(body.to_string()));
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        headers.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces() {
        assert_eq!(parse_nonce_query(b"nonce=00ff"), Ok(vec![0, 0xff]));
        assert_eq!(parse_nonce_query(b"a=1&nonce=AB&b"), Ok(vec![0xab]));
        assert_eq!(parse_nonce_query(b""), Err(NonceError::Missing));
        assert_eq!(parse_nonce_query(b"nonces=00"), Err(NonceError::Missing));
        assert_eq!(
            parse_nonce_query(b"nonce=00&nonce=01"),
            Err(NonceError::Repeated)
        );
        for bad in [&b"nonce="[..], b"nonce=0", b"nonce=zz", b"nonce=%30%30"] {
            assert_eq!(
                parse_nonce_query(bad),
                Err(NonceError::Malformed),
                "{bad:?}"
            );
        }
        let long = format!("nonce={}", "00".repeat(65));
        assert_eq!(
            parse_nonce_query(long.as_bytes()),
            Err(NonceError::Malformed)
        );
        assert!(parse_nonce_query(format!("nonce={}", "00".repeat(64)).as_bytes()).is_ok());
    }
}
