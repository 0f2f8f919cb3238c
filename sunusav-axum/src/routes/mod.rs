//! The routers: one per part (webhooks, the group API, ops, admin), each with
//! its state and no fallback, so that a host merges or nests them; and
//! [`router`], all of them with a fallback and the layers.

pub mod admin;
pub mod destinations;
pub mod groups;
pub mod health;
pub mod metrics;
pub mod webhook;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};

use crate::auth::require_admin;
use crate::error::ApiError;
use crate::layers::RouterLayers as _;
use crate::metrics::{count_requests, count_webhooks};
use crate::state::AppState;
use crate::verify::VerifyWebhookLayer;

/// The all-in-one router: every part merged ([`webhook_router`],
/// [`group_router`], [`ops_router`], [`admin_router`]), a JSON 404 fallback,
/// JSON error bodies and request ids (see the crate docs for the routes and
/// codes). A host that has routes, a fallback or a `/health` of its own uses
/// the parts instead.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(webhook_router(state.clone()))
        .merge(group_router(state.clone()))
        .merge(ops_router(state.clone()))
        .merge(admin_router(state))
        .fallback(not_found)
        .with_json_errors()
        .with_request_ids()
}

/// `POST /webhook/lightning`, behind the signature verification layer (the
/// state's verifier, body limit and clock) and counted in the metrics.
pub fn webhook_router(state: AppState) -> Router {
    let verify = VerifyWebhookLayer::new(state.inner.verifier.clone())
        .with_limit(state.inner.body_limit)
        .with_clock(state.inner.clock.clone());
    let webhook = post(webhook::lightning)
        .route_layer(verify)
        .route_layer(from_fn_with_state(state.inner.metrics.clone(), count_webhooks));
    Router::new()
        .route("/webhook/lightning", webhook)
        .route_layer(from_fn_with_state(state.inner.metrics.clone(), count_requests))
        .with_state(state)
}

/// The group API: `POST /groups`, `GET /groups/{id}`, `POST
/// /groups/{id}/start`, `/cancel`, `/invoices`, `GET /groups/{id}/ledger`,
/// `POST /groups/{id}/payout-invoice`, and `GET`, `PUT`, `DELETE
/// /members/{member}/payout-destination`.
/// Each handler takes the caller ([`Identity`](crate::identity::Identity):
/// the state's [`Authenticate`](crate::identity::Authenticate), or a
/// [`Caller`](sunusav_core::Caller) the host's middleware put in the
/// request's extensions) and runs the use case through
/// [`Tontine::acting_as`](sunusav_core::services::Tontine::acting_as): 401
/// without an identity, 403 with the rule's code for the wrong caller.
pub fn group_router(state: AppState) -> Router {
    Router::new()
        .route("/groups", post(groups::create))
        .route("/groups/{id}", get(groups::show))
        .route("/groups/{id}/start", post(groups::start))
        .route("/groups/{id}/cancel", post(groups::cancel))
        .route("/groups/{id}/invoices", post(groups::invoice))
        .route("/groups/{id}/ledger", get(groups::ledger))
        .route("/groups/{id}/order", get(groups::order))
        .route("/groups/{id}/bids", post(groups::bid))
        .route("/groups/{id}/payout-invoice", post(destinations::submit_invoice))
        .route(
            "/members/{member}/payout-destination",
            get(destinations::show).put(destinations::set).delete(destinations::clear),
        )
        .route_layer(from_fn_with_state(state.inner.metrics.clone(), count_requests))
        .with_state(state)
}

/// Ops: `GET /health`, `/health/detailed`, `/health/workers` and `/metrics`,
/// e.g. to serve on an internal port, or nested under a prefix of the host's.
pub fn ops_router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health::live))
        .route("/health/detailed", get(health::detailed))
        .route("/health/workers", get(health::workers))
        .route("/metrics", get(metrics::render))
        .route_layer(from_fn_with_state(state.inner.metrics.clone(), count_requests))
        .with_state(state)
}

/// The admin routes (`/admin/...`) behind the state's bearer token; an empty
/// router when the state has no admin token (admin off).
pub fn admin_router(state: AppState) -> Router {
    match state.inner.admin_token.clone() {
        Some(token) => admin::routes()
            .route_layer(from_fn_with_state(token, require_admin))
            .route_layer(from_fn_with_state(state.inner.metrics.clone(), count_requests))
            .with_state(state),
        None => Router::new(),
    }
}

/// The all-in-one's fallback: 404 `not_found`, as JSON; for a router of
/// parts that should answer like it.
pub async fn not_found() -> ApiError {
    ApiError::not_found("route")
}
