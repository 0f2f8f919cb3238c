//! TLS to Redis (feature `tls`): fred's rustls connector, on the `ring`
//! provider, trusting the system's roots or a given CA.

use std::sync::Arc;

use fred::rustls::crypto::CryptoProvider;
use fred::rustls::pki_types::CertificateDer;
use fred::rustls::pki_types::pem::PemObject;
use fred::rustls::{ClientConfig, RootCertStore};
use fred::types::config::{TlsConfig, TlsConnector};

use crate::config::RedisTls;
use crate::error::ConnectError;

/// fred's TLS settings for `tls`.
pub(crate) fn config(tls: &RedisTls) -> Result<TlsConfig, ConnectError> {
    let roots = match tls {
        RedisTls::SystemRoots => {
            let mut roots = RootCertStore::empty();
            // Unreadable system certificates are skipped; none at all fails below.
            let found = fred::rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            roots
        }
        RedisTls::CaPem(pem) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| invalid(&format!("the Redis CA is not PEM certificates: {e}")))?;
                roots.add(cert).map_err(|e| invalid(&format!("a Redis CA certificate is invalid: {e}")))?;
            }
            roots
        }
    };
    if roots.is_empty() {
        return Err(invalid("no CA certificate to verify Redis's certificate with"));
    }
    // The process's provider when the host installed one; else ring, the one
    // this feature compiles in, by name (a process with several providers
    // compiled in has no implicit default). rustls 0.23.48 deprecates ring's
    // for lacking post-quantum key exchange, which aws-lc-rs would bring at
    // the cost of a C toolchain; a host wanting it installs that default.
    let provider = CryptoProvider::get_default().cloned().unwrap_or_else(|| {
        #[allow(deprecated)]
        Arc::new(fred::rustls::crypto::ring::default_provider())
    });
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(&format!("TLS settings: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(client).into())
}

fn invalid(message: &str) -> ConnectError {
    ConnectError::InvalidConfig(message.to_owned())
}
