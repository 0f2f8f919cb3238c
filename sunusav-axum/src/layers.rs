//! Opt-in layers for the part routers (see [`crate::routes`]), as methods of
//! [`RouterLayers`] on any `axum::Router`:
//!
//! - [`with_request_ids`](RouterLayers::with_request_ids): the
//!   [`request_id`](crate::request_id) middleware (an `x-request-id` on every
//!   request and response, and a `request` span);
//! - [`with_json_errors`](RouterLayers::with_json_errors): [`json_errors`], a
//!   JSON `{"error": {"code", "message"}}` body on every error response that
//!   lacks one (axum's own plain-text 405, for instance);
//! - [`with_request_timeout`](RouterLayers::with_request_timeout):
//!   [`request_timeout`], 408 `request_timeout` for a request (its body
//!   included) not answered in time.
//!
//! [`router`](crate::router) applies the first two. Like any
//! `Router::layer`, each applies to the routes (and fallback) the router has
//! when it is called: call them last.

use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn, from_fn_with_state, map_response};
use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use tracing::Instrument as _;

use crate::error::{ApiError, ErrorCode};
use crate::request_id::request_id;

/// The opt-in layers, as methods of `axum::Router`.
///
/// ```
/// use std::time::Duration;
/// use axum::Router;
/// use sunusav_axum::layers::RouterLayers as _;
///
/// let app: Router = Router::new()
///     .with_json_errors()
///     .with_request_timeout(Duration::from_secs(30))
///     .with_request_ids();
/// # let _ = app;
/// ```
pub trait RouterLayers: Sized {
    /// Gives each request an id (kept from a sane `x-request-id`, else a new
    /// UUID), echoed in the response, and runs it in a `request` span.
    #[must_use]
    fn with_request_ids(self) -> Self;

    /// Gives every error response that is not JSON a JSON error body with the
    /// status's default code (see [`json_errors`]).
    #[must_use]
    fn with_json_errors(self) -> Self;

    /// Answers 408 `request_timeout` when a request, reading its body
    /// included, is not answered within `timeout` (see [`request_timeout`]).
    #[must_use]
    fn with_request_timeout(self, timeout: Duration) -> Self;
}

impl<S: Clone + Send + Sync + 'static> RouterLayers for Router<S> {
    fn with_request_ids(self) -> Self {
        self.layer(from_fn(request_id))
    }

    fn with_json_errors(self) -> Self {
        self.layer(map_response(json_errors))
    }

    fn with_request_timeout(self, timeout: Duration) -> Self {
        self.layer(from_fn_with_state(timeout, request_timeout))
    }
}

/// Middleware: 408 `request_timeout` when the inner service has not answered
/// within the timeout in its state.
///
/// The handler is never cancelled halfway: it runs in a task of its own and,
/// after a timeout, to its end with its response dropped (a handler
/// cancelled inside a database transaction could leave it open). A client
/// that stalls its body makes the body read fail once the connection is
/// closed after the 408, so the task ends then.
pub async fn request_timeout(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    let mut handler = tokio::spawn(next.run(request).in_current_span());
    match tokio::time::timeout(timeout, &mut handler).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => ApiError::internal(&e).into_response(),
        Err(_) => {
            tracing::debug!(timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX), "request timed out");
            ApiError::request_timeout().into_response()
        }
    }
}

/// Gives every error response that is neither an [`ApiError`] nor already JSON
/// (axum's own plain-text 405, for instance) a JSON error body, keeping its
/// status and other headers.
pub async fn json_errors(response: Response) -> Response {
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
