//! A per-client rate limit (`tower_governor`, a token bucket per client IP),
//! for the routes anyone can call:
//! [`RouterLayers::with_rate_limit`](crate::layers::RouterLayers::with_rate_limit)
//! answers 429 `rate_limited` with `retry-after` once a client spends its
//! burst faster than its rate refills it.
//!
//! The client is the TCP peer (`axum::extract::ConnectInfo<SocketAddr>`,
//! which the server must provide); behind a reverse proxy,
//! [`RateLimit::behind_proxy`] reads `x-forwarded-for`, `x-real-ip` or
//! `forwarded` instead (only when the proxy sets them: any client could).
//! A request without a client address is refused with 500, never let
//! through unlimited. The limiter's memory holds one entry per client seen
//! recently: applying the limit spawns a task that forgets idle clients
//! every minute (it needs a Tokio runtime).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use http::header::RETRY_AFTER;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::{PeerIpKeyExtractor, SmartIpKeyExtractor};
use tower_governor::{GovernorError, GovernorLayer};

use crate::error::ApiError;

/// How often idle clients are forgotten.
const CLEANUP_EVERY: Duration = Duration::from_mins(1);

/// Why a rate limit cannot be built: a rate or burst of zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimitError;

impl std::fmt::Display for RateLimitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a rate limit needs a rate and a burst above zero")
    }
}

impl std::error::Error for RateLimitError {}

/// A per-client rate limit: one request per `period` on average (`per_second`
/// a second, or `per_minute` a minute), in bursts of up to `burst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    period: Duration,
    burst: u32,
    behind_proxy: bool,
}

impl RateLimit {
    /// `per_second` requests a second per client, bursts of `burst`.
    pub const fn new(per_second: u32, burst: u32) -> Result<Self, RateLimitError> {
        if per_second == 0 || burst == 0 {
            return Err(RateLimitError);
        }
        // One token every 1/per_second seconds.
        let nanos = 1_000_000_000 / per_second as u64;
        Ok(Self { period: Duration::from_nanos(if nanos == 0 { 1 } else { nanos }), burst, behind_proxy: false })
    }

    /// `per_minute` requests a minute per client, bursts of `burst`: for rare
    /// requests that must stay rare (the console's login form).
    pub const fn per_minute(per_minute: u32, burst: u32) -> Result<Self, RateLimitError> {
        if per_minute == 0 || burst == 0 {
            return Err(RateLimitError);
        }
        Ok(Self { period: Duration::from_millis(60_000 / per_minute as u64), burst, behind_proxy: false })
    }

    /// Takes the client from the proxy's headers (`x-forwarded-for`,
    /// `x-real-ip`, `forwarded`), falling back to the peer.
    #[must_use]
    pub const fn behind_proxy(mut self) -> Self {
        self.behind_proxy = true;
        self
    }

    /// The limit on `router`'s routes (a `route_layer`: requests that match
    /// no route are not counted), refused as JSON 429 `rate_limited`.
    pub(crate) fn apply<S: Clone + Send + Sync + 'static>(self, router: Router<S>) -> Router<S> {
        self.apply_with(router, refused)
    }

    /// As [`RateLimit::apply`], answering a refusal with `refused`.
    pub(crate) fn apply_with<S: Clone + Send + Sync + 'static>(
        self,
        router: Router<S>,
        refused: fn(GovernorError) -> Response<Body>,
    ) -> Router<S> {
        let mut builder = GovernorConfigBuilder::default();
        builder.period(self.period).burst_size(self.burst);
        if self.behind_proxy {
            let config =
                Arc::new(builder.key_extractor(SmartIpKeyExtractor).finish().expect("period and burst above 0"));
            let limiter = Arc::downgrade(config.limiter());
            spawn_cleanup(move || limiter.upgrade().map(|l| l.retain_recent()).is_some());
            router.route_layer(GovernorLayer::new(config).error_handler(refused))
        } else {
            let config =
                Arc::new(builder.key_extractor(PeerIpKeyExtractor).finish().expect("period and burst above 0"));
            let limiter = Arc::downgrade(config.limiter());
            spawn_cleanup(move || limiter.upgrade().map(|l| l.retain_recent()).is_some());
            router.route_layer(GovernorLayer::new(config).error_handler(refused))
        }
    }
}

/// Runs `forget_idle` (which forgets clients idle long enough to have a
/// full bucket again) every minute, until it says the limiter is gone.
fn spawn_cleanup(forget_idle: impl Fn() -> bool + Send + 'static) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
    handle.spawn(async move {
        loop {
            tokio::time::sleep(CLEANUP_EVERY).await;
            if !forget_idle() {
                return;
            }
        }
    });
}

/// Sets `retry-after` (whole seconds, at least 1).
pub(crate) fn with_retry_after(mut response: Response<Body>, wait_secs: u64) -> Response<Body> {
    if let Ok(value) = HeaderValue::from_str(&wait_secs.max(1).to_string()) {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    response
}

/// 429 `rate_limited` with `retry-after`; a request without a client address: 500.
#[allow(clippy::needless_pass_by_value)] // tower_governor hands the error over by value
fn refused(error: GovernorError) -> Response<Body> {
    match error {
        GovernorError::TooManyRequests { wait_time, .. } => {
            let response = ApiError::new(
                http::StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests from this client; retry in {wait_time} s"),
            )
            .into_response();
            with_retry_after(response, wait_time)
        }
        GovernorError::UnableToExtractKey | GovernorError::Other { .. } => {
            ApiError::internal(&"the client's address is unknown: the server must provide it").into_response()
        }
    }
}
