//! Health: a liveness ping, a per-dependency report in the shape of the IETF
//! health-check draft (`application/health+json`), and the workers' figures.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use serde_json::{Map, Value, json};
use sunusav_core::ports::QueueAdmin;

use crate::state::AppState;

/// The media type of health responses.
pub const HEALTH_JSON: &str = "application/health+json";

fn health_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(HEALTH_JSON));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /health`: liveness; touches no dependency.
pub async fn live() -> Response {
    health_response(StatusCode::OK, &json!({ "status": "pass" }))
}

/// One check's result: `(passed, entry)`.
async fn check<E: Display>(
    component_type: &str,
    timeout: Duration,
    ping: impl Future<Output = Result<(), E>>,
) -> (bool, Value) {
    let started = Instant::now();
    let outcome = tokio::time::timeout(timeout, ping).await;
    let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (ok, output) = match outcome {
        Ok(Ok(())) => (true, None),
        Ok(Err(e)) => {
            tracing::warn!(component = component_type, error = %e, "health check failed");
            (false, Some("unavailable"))
        }
        Err(_) => {
            tracing::warn!(component = component_type, "health check timed out");
            (false, Some("timeout"))
        }
    };
    let mut entry = json!({
        "componentType": component_type,
        "status": if ok { "pass" } else { "fail" },
        "observedValue": millis,
        "observedUnit": "ms",
    });
    if let (Some(output), Some(map)) = (output, entry.as_object_mut()) {
        map.insert("output".into(), output.into());
    }
    (ok, entry)
}

/// `GET /health/detailed`: store, queues (critical) and the Lightning node
/// (not critical: `warn`). 503 with `fail` when a critical one fails.
pub async fn detailed(State(state): State<AppState>) -> Response {
    let t = &state.inner.tontine;
    let timeout = state.inner.check_timeout;
    let (store, payouts, webhooks, payments) = tokio::join!(
        check("datastore", timeout, t.store().ping()),
        check("queue", timeout, t.payout_queue().ping()),
        check("queue", timeout, t.webhook_queue().ping()),
        check("component", timeout, t.payments().ping()),
    );
    let critical_ok = store.0 && payouts.0 && webhooks.0;
    let status = match (critical_ok, payments.0) {
        (false, _) => "fail",
        (true, false) => "warn",
        (true, true) => "pass",
    };
    let mut checks = Map::new();
    checks.insert("store:ping".into(), json!([store.1]));
    checks.insert(format!("queue:{}:ping", t.payout_queue().name()), json!([payouts.1]));
    checks.insert(format!("queue:{}:ping", t.webhook_queue().name()), json!([webhooks.1]));
    checks.insert("payments:ping".into(), json!([payments.1]));
    let code = if critical_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    health_response(code, &json!({ "status": status, "checks": checks }))
}

async fn queue_entry(queue: &dyn QueueAdmin, timeout: Duration) -> (bool, Value) {
    match tokio::time::timeout(timeout, queue.stats()).await {
        Ok(Ok(stats)) => (true, json!(stats)),
        Ok(Err(e)) => {
            tracing::warn!(queue = queue.name(), error = %e, "queue stats failed");
            (false, json!({ "status": "fail", "output": "unavailable" }))
        }
        Err(_) => (false, json!({ "status": "fail", "output": "timeout" })),
    }
}

/// `GET /health/workers`: each queue's counts per state and each worker pool's
/// figures (concurrency, busy, processed, failed, retried, per-minute rates,
/// duration and wait histograms). 503 when a queue cannot be read.
pub async fn workers(State(state): State<AppState>) -> Response {
    let t = &state.inner.tontine;
    let (payouts, webhooks) = tokio::join!(
        queue_entry(t.payout_queue().as_ref(), state.inner.check_timeout),
        queue_entry(t.webhook_queue().as_ref(), state.inner.check_timeout),
    );
    let ok = payouts.0 && webhooks.0;
    let mut queues = Map::new();
    queues.insert(t.payout_queue().name().to_owned(), payouts.1);
    queues.insert(t.webhook_queue().name().to_owned(), webhooks.1);
    let body = json!({
        "status": if ok { "pass" } else { "fail" },
        "queues": queues,
        "workers": state.inner.workers.snapshots(),
    });
    health_response(if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, &body)
}
