//! TLS to LND: rustls on the `ring` provider, trusting exactly the
//! configured `tls.cert` and nothing else (no system roots).
//!
//! LND's certificate is self-signed with the CA flag set, which WebPKI
//! refuses as a server's own certificate (`CaUsedAsEndEntity`); so, as
//! `lncli` does in effect, the server's certificate must be byte for byte
//! one of the configured ones, and the handshake's signature must verify
//! with its key. A wrong certificate fails the handshake, before a byte of
//! the request is sent.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};

/// A TLS configuration error (an unreadable certificate).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsSetupError(String);

/// The client's TLS configuration, trusting the PEM certificates of `pem` only.
pub fn client_config(pem: &[u8]) -> Result<ClientConfig, TlsSetupError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsSetupError(format!("LND's tls.cert is not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(TlsSetupError("LND's tls.cert holds no certificate".into()));
    }
    // The process's provider when the host installed one; else ring, the
    // workspace's, by name. rustls 0.23.48 deprecates ring's for lacking
    // post-quantum key exchange (as `sunusav-redis` notes too).
    let provider = CryptoProvider::get_default().cloned().unwrap_or_else(|| {
        #[allow(deprecated)]
        Arc::new(rustls::crypto::ring::default_provider())
    });
    let verifier = PinnedCert { certs, algorithms: provider.signature_verification_algorithms };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsSetupError(format!("TLS settings: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(config)
}

/// Accepts exactly the pinned certificates.
#[derive(Debug)]
struct PinnedCert {
    certs: Vec<CertificateDer<'static>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.certs.iter().any(|c| c.as_ref() == end_entity.as_ref()) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer))
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
