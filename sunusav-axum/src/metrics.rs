//! [`HttpMetrics`]: the counters kept by the HTTP layer (webhook outcomes),
//! and the middleware that feeds them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::StatusCode;

use crate::error::ErrorCode;

/// Every `outcome` label of `sunusav_webhooks_total`: a closed set, so the
/// series' cardinality is bounded.
pub const WEBHOOK_OUTCOMES: [&str; 16] = [
    "accepted",
    "duplicate",
    "event_conflict",
    "missing_signature",
    "malformed_signature",
    "invalid_signature",
    "timestamp_out_of_tolerance",
    "invalid_timestamp",
    "body_too_large",
    "invalid_body",
    "invalid_json",
    "invalid_event",
    "unsupported_media_type",
    "unavailable",
    "internal",
    "other",
];

/// Counters of webhook deliveries by outcome. Lock-free.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    webhooks: [AtomicU64; WEBHOOK_OUTCOMES.len()],
}

impl HttpMetrics {
    /// Counts one delivery; an outcome outside [`WEBHOOK_OUTCOMES`] counts as `other`.
    pub fn record_webhook(&self, outcome: &str) {
        let i = WEBHOOK_OUTCOMES.iter().position(|o| *o == outcome).unwrap_or(WEBHOOK_OUTCOMES.len() - 1);
        self.webhooks[i].fetch_add(1, Ordering::Relaxed);
    }

    /// `(outcome, count)` for every outcome, in [`WEBHOOK_OUTCOMES`] order.
    pub fn webhooks(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        WEBHOOK_OUTCOMES.iter().zip(&self.webhooks).map(|(o, n)| (*o, n.load(Ordering::Relaxed)))
    }

    /// The count of one outcome.
    pub fn webhook_count(&self, outcome: &str) -> u64 {
        self.webhooks().find(|(o, _)| *o == outcome).map_or(0, |(_, n)| n)
    }
}

/// Middleware around the webhook route: counts each response by outcome
/// (202 `accepted`, 200 `duplicate`, otherwise the error's code).
pub async fn count_webhooks(State(metrics): State<Arc<HttpMetrics>>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let outcome = match (response.status(), response.extensions().get::<ErrorCode>()) {
        (_, Some(ErrorCode(code))) => code,
        (StatusCode::ACCEPTED, None) => "accepted",
        (StatusCode::OK, None) => "duplicate",
        _ => "other",
    };
    metrics.record_webhook(outcome);
    response
}
