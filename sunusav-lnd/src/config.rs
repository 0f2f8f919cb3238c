//! [`LndConfig`]: where the node's REST API is, its credentials, and the
//! time limits; and [`Macaroon`], which never prints.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How to reach LND's REST API.
///
/// ```
/// use std::time::Duration;
/// use sunusav_lnd::LndConfig;
///
/// let config = LndConfig::new("https://127.0.0.1:8080", "admin.macaroon", "tls.cert")
///     .with_request_timeout(Duration::from_secs(10));
/// assert_eq!(config.rest_url(), "https://127.0.0.1:8080");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LndConfig {
    rest_url: String,
    macaroon_path: PathBuf,
    tls_cert_path: PathBuf,
    connect_timeout: Duration,
    request_timeout: Duration,
    pay_grace: Duration,
    max_connections: usize,
}

impl LndConfig {
    /// The REST URL (`https://host:8080`), the macaroon file (binary, as LND
    /// writes `admin.macaroon`) and LND's `tls.cert` (PEM), the only
    /// certificate trusted.
    pub fn new(
        rest_url: impl Into<String>,
        macaroon_path: impl Into<PathBuf>,
        tls_cert_path: impl Into<PathBuf>,
    ) -> Self {
        Self {
            rest_url: rest_url.into(),
            macaroon_path: macaroon_path.into(),
            tls_cert_path: tls_cert_path.into(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            pay_grace: Duration::from_secs(30),
            max_connections: 32,
        }
    }

    /// The time to open a connection, TLS handshake included (default 5 s).
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The time a call other than a payment may take, until its reply is
    /// read (default 30 s); a subscription's first byte too.
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long a payment may take beyond its policy's timeout before the
    /// call gives up with `PayError::Timeout` (default 30 s). LND does not
    /// abort a payment whose HTLCs are in flight: the payout engine looks
    /// it up instead.
    #[must_use]
    pub fn with_pay_grace(mut self, grace: Duration) -> Self {
        self.pay_grace = grace;
        self
    }

    /// How many calls may be in progress at once, each on its connection
    /// (default 32); more wait their turn, within their own time limit.
    /// A payment holds its turn until its final update. Invoice
    /// subscriptions have connections of their own, outside this count.
    #[must_use]
    pub fn with_max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// The most calls at once.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// The REST URL.
    pub fn rest_url(&self) -> &str {
        &self.rest_url
    }

    /// The macaroon file.
    pub fn macaroon_path(&self) -> &Path {
        &self.macaroon_path
    }

    /// The TLS certificate file.
    pub fn tls_cert_path(&self) -> &Path {
        &self.tls_cert_path
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The request timeout.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The payment grace.
    pub fn pay_grace(&self) -> Duration {
        self.pay_grace
    }
}

/// A macaroon: sent hex-encoded in `Grpc-Metadata-macaroon`; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Macaroon(Vec<u8>);

impl Macaroon {
    /// The macaroon's bytes (a file's contents).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The header value: hex.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Macaroon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Macaroon(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_macaroon_never_prints() {
        let m = Macaroon::from_bytes(vec![0x02, 0x01, 0xab, 0xcd]);
        let shown = format!("{m:?} {:?}", Some(&m));
        assert!(!shown.contains(&m.to_hex()) && !shown.contains("abcd"), "{shown}");
    }
}
