//! [`VerifyWebhookLayer`]: applies [`VerifyWebhook`] to a service.

use std::sync::Arc;

use sunusav_core::webhook::Verifier;
use tower::Layer;

use super::{Config, VerifyWebhook};
use crate::clock::{Clock, system_clock};

/// The default body limit: 256 KiB.
pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024;

/// A tower [`Layer`] that verifies signed webhooks before the inner service sees them.
///
/// ```
/// use std::sync::Arc;
/// use axum::{Router, routing::post};
/// use sunusav_axum::{VerifiedWebhook, VerifyWebhookLayer};
/// use sunusav_core::webhook::{Secret, Verifier};
///
/// let secret = Secret::from_text("a-long-enough-secret").unwrap();
/// let verifier = Arc::new(Verifier::hex_sha256([secret]).unwrap());
/// let app: Router = Router::new().route(
///     "/hook",
///     post(|hook: VerifiedWebhook| async move { hook.body().len().to_string() })
///         .layer(VerifyWebhookLayer::new(verifier).with_limit(64 * 1024)),
/// );
/// ```
#[derive(Clone)]
pub struct VerifyWebhookLayer {
    config: Arc<Config>,
}

impl VerifyWebhookLayer {
    /// Verifies with `verifier`, a body limit of [`DEFAULT_BODY_LIMIT`] and the system clock.
    pub fn new(verifier: Arc<Verifier>) -> Self {
        Self { config: Arc::new(Config { verifier, limit: DEFAULT_BODY_LIMIT, clock: system_clock() }) }
    }

    /// Refuses bodies over `limit` bytes with 413 `body_too_large`.
    #[must_use]
    pub fn with_limit(self, limit: usize) -> Self {
        let c = &self.config;
        Self { config: Arc::new(Config { verifier: c.verifier.clone(), limit, clock: c.clock.clone() }) }
    }

    /// Reads `now` from `clock` instead of the system time.
    #[must_use]
    pub fn with_clock(self, clock: Clock) -> Self {
        let c = &self.config;
        Self { config: Arc::new(Config { verifier: c.verifier.clone(), limit: c.limit, clock }) }
    }

    /// The body limit, in bytes.
    pub fn limit(&self) -> usize {
        self.config.limit
    }
}

impl std::fmt::Debug for VerifyWebhookLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyWebhookLayer")
            .field("verifier", &self.config.verifier)
            .field("limit", &self.config.limit)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for VerifyWebhookLayer {
    type Service = VerifyWebhook<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyWebhook { inner, config: self.config.clone() }
    }
}
