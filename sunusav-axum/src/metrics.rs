//! [`HttpMetrics`]: the counters kept by the HTTP layer (webhook outcomes,
//! requests by route, method and status class, their durations), and the
//! middleware that feeds them.
//!
//! ## To the host's registry: the `metrics` facade
//!
//! With the feature `metrics-facade`, every series of `GET /metrics` also
//! goes through the [`metrics`](https://docs.rs/metrics) facade to whatever
//! recorder the host installed (its Prometheus exporter, say), under the same
//! names and labels ([`sunusav_core::runtime::series`], one list for both):
//! counters and histograms when they happen (HTTP requests and webhook
//! answers here; jobs, payouts, settlements and the settle stream in the
//! runtime), and the gauges read at scrape time (queue depths and ages,
//! pools, store, node and settle stream up, stale payouts, build info) when
//! the host calls [`publish`], or every interval from [`spawn_publisher`].
//! Histograms are in seconds. Without the feature, both only read.
//!
//! ```
//! # async fn run(state: sunusav_axum::AppState) {
//! use std::time::Duration;
//! let (stop, stopped) = tokio::sync::watch::channel(false);
//! let publisher = sunusav_axum::metrics::spawn_publisher(state, Duration::from_secs(15), stopped);
//! // ... on shutdown:
//! let _ = stop.send(true);
//! let _ = publisher.await;
//! # }
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::StatusCode;

use sunusav_core::ports::JobState;
use sunusav_core::runtime::series;
use sunusav_core::runtime::{Histogram, HistogramSnapshot};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::ErrorCode;
use crate::routes::metrics::read;
use crate::state::AppState;

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
        series::counter(series::WEBHOOKS_TOTAL, &[("outcome", WEBHOOK_OUTCOMES[i])], 1);
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
        let labels = [("route", route), ("method", METHODS[m]), ("status", STATUS_CLASSES[class])];
        series::counter(series::HTTP_REQUESTS_TOTAL, &labels, 1);
        series::histogram(series::HTTP_REQUEST_DURATION_SECONDS, &[("route", route)], took);
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

/// Publishes the gauges through the `metrics` facade (feature
/// `metrics-facade`; without it, this only reads): the values a scrape of
/// `GET /metrics` reads now (queue depths and the oldest waiting job's age,
/// the pools' concurrency and busy workers, store and node up, stale open
/// payouts, the settle stream's state, the build). Counters and histograms
/// need no call: they are recorded when they happen.
///
/// Each dependency is read within the health checks' timeout; a queue that
/// cannot be read publishes `sunusav_queue_up{queue} 0` and no counts.
pub async fn publish(state: &AppState) {
    let r = read(state).await;
    series::gauge(series::BUILD_INFO, &[("version", env!("CARGO_PKG_VERSION"))], 1);
    for q in &r.queues {
        let queue = [("queue", q.name.as_str())];
        series::gauge(series::QUEUE_UP, &queue, u64::from(q.stats.is_some()));
        if let Some(stats) = &q.stats {
            for state in JobState::ALL {
                let labels = [("queue", q.name.as_str()), ("state", state.as_str())];
                series::gauge(series::QUEUE_JOBS, &labels, stats.count(state));
            }
            series::gauge(series::QUEUE_PAUSED, &queue, u64::from(stats.paused));
        }
        if let Some(ms) = q.oldest_waiting_ms {
            series::gauge_seconds(series::QUEUE_OLDEST_WAITING_SECONDS, &queue, std::time::Duration::from_millis(ms));
        }
    }
    for p in &r.pools {
        let queue = [("queue", p.queue.as_str())];
        series::gauge(series::WORKERS_CONCURRENCY, &queue, p.concurrency);
        series::gauge(series::WORKERS_BUSY, &queue, p.busy);
    }
    series::gauge(series::NODE_UP, &[], u64::from(r.node_up));
    series::gauge(series::STORE_UP, &[], u64::from(r.store_up));
    for (status, n) in r.stale.iter().flatten() {
        series::gauge(series::PAYOUTS_OPEN_STALE, &[("status", status.as_str())], *n);
    }
    if let Some(connected) = r.settle_stream_connected {
        series::gauge(series::SETTLE_STREAM_CONNECTED, &[], u64::from(connected));
    }
}

/// Runs [`publish`] now and then every `every` until `shutdown` turns true
/// (or its sender is dropped), on the current tokio runtime.
pub fn spawn_publisher(
    state: AppState,
    every: std::time::Duration,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if *shutdown.borrow() {
                return;
            }
            tokio::select! {
                _ = ticks.tick() => publish(&state).await,
                changed = shutdown.changed() => if changed.is_err() { return },
            }
        }
    })
}
