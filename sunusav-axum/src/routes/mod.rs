//! The router: every route, the fallbacks, and the middleware around them.

pub mod admin;
pub mod groups;
pub mod health;
pub mod metrics;
pub mod webhook;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state, map_response};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};

use crate::auth::require_admin;
use crate::error::{ApiError, ErrorCode};
use crate::metrics::count_webhooks;
use crate::request_id::request_id;
use crate::state::AppState;
use crate::verify::VerifyWebhookLayer;

/// The application's router (see the crate docs for the routes and codes).
pub fn router(state: AppState) -> Router {
    let verify = VerifyWebhookLayer::new(state.inner.verifier.clone())
        .with_limit(state.inner.body_limit)
        .with_clock(state.inner.clock.clone());
    let webhook = post(webhook::lightning)
        .route_layer(verify)
        .route_layer(from_fn_with_state(state.inner.metrics.clone(), count_webhooks));
    let mut app = Router::new()
        .route("/webhook/lightning", webhook)
        .route("/groups", post(groups::create))
        .route("/groups/{id}", get(groups::show))
        .route("/groups/{id}/start", post(groups::start))
        .route("/groups/{id}/cancel", post(groups::cancel))
        .route("/groups/{id}/invoices", post(groups::invoice))
        .route("/groups/{id}/ledger", get(groups::ledger))
        .route("/health", get(health::live))
        .route("/health/detailed", get(health::detailed))
        .route("/health/workers", get(health::workers))
        .route("/metrics", get(metrics::render));
    if let Some(token) = state.inner.admin_token.clone() {
        app = app.merge(admin::routes().route_layer(from_fn_with_state(token, require_admin)));
    }
    app.fallback(not_found).layer(map_response(json_errors)).layer(from_fn(request_id)).with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("route")
}

/// Gives every error response that is neither an [`ApiError`] nor already JSON
/// (axum's own plain-text 405, for instance) a JSON error body, keeping its
/// status and other headers.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim() == "application/json" || essence.trim().ends_with("+json"));
    if !(status.is_client_error() || status.is_server_error())
        || is_json
        || response.extensions().get::<ErrorCode>().is_some()
    {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(CONTENT_TYPE);
    parts.headers.remove(CONTENT_LENGTH);
    let mut json = ApiError::from_status(status).into_response();
    for (name, value) in &parts.headers {
        json.headers_mut().entry(name).or_insert_with(|| value.clone());
    }
    json
}
