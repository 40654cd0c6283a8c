//! TLS client configurations: pinned to one exact certificate, or recording whatever is served.
//!
//! An RA-TLS certificate is self-signed with `CA:TRUE`; webpki refuses such a certificate as an
//! end entity, and its trust comes from the evidence inside anyway. So instead of path
//! validation, [`PinnedCertVerifier`] accepts exactly the certificate the client verified
//! (byte-for-byte DER, compared in constant time) and still checks the handshake signatures
//! against that certificate's key with the provider's algorithms: a peer that merely replays
//! the certificate without its private key fails the handshake.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{
    CryptoProvider, WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature,
};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use subtle::ConstantTimeEq;

/// A client configuration that talks only to the holder of the certificate `cert_der`.
///
/// Server name and validity dates are not checked: the pin *is* the identity, and an RA-TLS
/// certificate's lifetime is the app's, not a CA's promise. No ALPN is offered (the node and
/// the original both speak HTTP/1.1 without it).
pub fn pinned_client_config(cert_der: &[u8]) -> ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = PinnedCertVerifier {
        pinned: cert_der.to_vec(),
        algorithms: provider.signature_verification_algorithms,
    };
    build(provider, Arc::new(verifier))
}

/// A client configuration that accepts any certificate after checking the handshake signature
/// with it, for [`crate::fetch_certificate`]. The caller must verify the evidence inside the
/// certificate before trusting anything said over such a connection.
pub(crate) fn recording_client_config() -> ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = AnyCertVerifier {
        algorithms: provider.signature_verification_algorithms,
    };
    build(provider, Arc::new(verifier))
}

fn build(provider: Arc<CryptoProvider>, verifier: Arc<dyn ServerCertVerifier>) -> ClientConfig {
    let builder =
        ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions();
    #[allow(clippy::expect_used)]
    // invariant: ring's default provider supports the default protocol versions (TLS 1.2, 1.3).
    let builder = builder.expect("invariant: ring provider supports TLS 1.2 and 1.3");
    builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth()
}

/// Accepts exactly one certificate (see the module docs).
#[derive(Debug)]
pub struct PinnedCertVerifier {
    pinned: Vec<u8>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // ct_eq on slices of different lengths is false without looking at the content.
        if bool::from(end_entity.as_ref().ct_eq(&self.pinned)) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Accepts any certificate, but still requires the handshake to be signed by its key.
#[derive(Debug)]
struct AnyCertVerifier {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
