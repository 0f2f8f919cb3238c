//! [`HttpMetrics`]: the counters kept by the HTTP layer (webhook outcomes,
//! requests by route, method and status class, their durations), and the
//! middleware that feeds them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::StatusCode;

use sunusav_core::runtime::{Histogram, HistogramSnapshot};

use crate::error::ErrorCode;

/// Every `method` label of `sunusav_http_requests_total` (a closed set).
pub const METHODS: [&str; 8] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "other"];
/// Every `status` label of `sunusav_http_requests_total`: the status class.
pub const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// One route's figures.
#[derive(Debug, Default)]
struct RouteFigures {
    /// Per method, per status class.
    requests: [[AtomicU64; STATUS_CLASSES.len()]; METHODS.len()],
    duration: Histogram,
}

/// One route's figures at one instant.
#[derive(Clone, Debug)]
pub struct RouteSnapshot {
    /// The route template (`/groups/{id}`), or `unmatched`.
    pub route: String,
    /// `(method, status class, count)` for each pair seen.
    pub requests: Vec<(&'static str, &'static str, u64)>,
    /// Durations of its requests.
    pub duration: HistogramSnapshot,
}

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

/// Counters of webhook deliveries by outcome (lock-free), and of requests by
/// route template (bounded: the routes of the routers; a read lock per
/// request, a write lock the first time a route is seen).
#[derive(Debug, Default)]
pub struct HttpMetrics {
    webhooks: [AtomicU64; WEBHOOK_OUTCOMES.len()],
    routes: RwLock<HashMap<String, Arc<RouteFigures>>>,
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

    /// Counts one request of `route` (a route template) answered with `status` after `took`.
    pub fn record_request(&self, route: &str, method: &http::Method, status: StatusCode, took: std::time::Duration) {
        let figures = self.route(route);
        let m = METHODS.iter().position(|m| *m == method.as_str()).unwrap_or(METHODS.len() - 1);
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        figures.requests[m][class].fetch_add(1, Ordering::Relaxed);
        figures.duration.observe(took);
    }

    fn route(&self, route: &str) -> Arc<RouteFigures> {
        let found = self.routes.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(route).cloned();
        if let Some(figures) = found {
            return figures;
        }
        let mut routes = self.routes.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(routes.entry(route.to_owned()).or_default())
    }

    /// Every route's figures, by route.
    pub fn requests(&self) -> Vec<RouteSnapshot> {
        let routes = self.routes.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out: Vec<RouteSnapshot> = routes
            .iter()
            .map(|(route, f)| RouteSnapshot {
                route: route.clone(),
                requests: METHODS
                    .iter()
                    .zip(&f.requests)
                    .flat_map(|(m, classes)| {
                        STATUS_CLASSES.iter().zip(classes).filter_map(|(c, n)| {
                            let n = n.load(Ordering::Relaxed);
                            (n > 0).then_some((*m, *c, n))
                        })
                    })
                    .collect(),
                duration: f.duration.snapshot(),
            })
            .collect();
        out.sort_by(|a, b| a.route.cmp(&b.route));
        out
    }
}

/// Middleware (a `route_layer`, so that the route template is known):
/// counts each request by route, method and status class, and times it.
pub async fn count_requests(State(metrics): State<Arc<HttpMetrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    metrics.record_request(route, &method, response.status(), started.elapsed());
    response
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
