//! rustls server configurations: TLS 1.3 and 1.2 (ECDHE with AEAD suites only, rustls has no
//! others), ring provider, one certificate chain.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// What a TLS listener offers in ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    /// The configuration server: HTTP/1.1 only, one request per connection like the original's.
    Http11,
    /// The app: HTTP/2 preferred, HTTP/1.1 fallback.
    H2AndHttp11,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("the certificate chain has no PEM CERTIFICATE block")]
    NoCertificate,
    #[error("the certificate chain is not valid PEM: {0}")]
    BadChain(String),
    #[error("the private key is not a PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    BadKey,
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

/// A server configuration for this chain and key.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    alpn: Alpn,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        // Checks that the key belongs to the leaf certificate.
        .with_single_cert(chain, key)?;
    config.alpn_protocols = match alpn {
        Alpn::Http11 => vec![b"http/1.1".to_vec()],
        Alpn::H2AndHttp11 => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
    };
    Ok(Arc::new(config))
}

/// Reads a PEM certificate chain (leaf first). Never panics.
pub fn parse_chain(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadChain(e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    Ok(chain)
}

/// Reads the first PEM private key. Never panics.
pub fn parse_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|_| TlsError::BadKey)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};

    fn cert_and_key() -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn a_matching_key_is_accepted_and_alpn_set() {
        let (cert, key) = cert_and_key();
        let cfg = server_config(
            parse_chain(cert.as_bytes()).unwrap(),
            parse_key(key.as_bytes()).unwrap(),
            Alpn::H2AndHttp11,
        )
        .unwrap();
        assert_eq!(
            cfg.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let (cert, _) = cert_and_key();
        let (_, other_key) = cert_and_key();
        let err = server_config(
            parse_chain(cert.as_bytes()).unwrap(),
            parse_key(other_key.as_bytes()).unwrap(),
            Alpn::Http11,
        )
        .unwrap_err();
        assert!(err.to_string().to_lowercase().contains("key"), "{err}");
    }

    #[test]
    fn garbage_is_refused() {
        assert!(matches!(
            parse_chain(b"nothing here"),
            Err(TlsError::NoCertificate)
        ));
        assert!(
            parse_chain(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n").is_err()
        );
        assert!(matches!(
            parse_key(b"-----BEGIN PRIVATE\n"),
            Err(TlsError::BadKey)
        ));
    }
}
