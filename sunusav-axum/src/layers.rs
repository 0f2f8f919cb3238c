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

use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn, from_fn_with_state, map_response};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::HeaderValue;
use http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use http_body::{Frame, SizeHint};
use tokio::time::{Sleep, sleep_until};
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

    /// Limits each client to `limit` on these routes (see
    /// [`crate::rate_limit`]): 429 `rate_limited` with `retry-after` past
    /// it. A `route_layer`: apply it to a router of parts before merging.
    #[must_use]
    fn with_rate_limit(self, limit: crate::rate_limit::RateLimit) -> Self;
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

    fn with_rate_limit(self, limit: crate::rate_limit::RateLimit) -> Self {
        limit.apply(self)
    }
}

/// Middleware: 408 `request_timeout` when the inner service has not answered
/// within the timeout in its state.
///
/// The 408 carries `connection: close`, so the server closes the connection
/// instead of waiting for the rest of a stalled body. The handler is never
/// cancelled halfway: it runs inline (no task per request) and, when the
/// deadline passes first, moves to a task of its own and runs to its end
/// there with its response dropped (a handler cancelled inside a database
/// transaction could leave it open). Reading the body fails from the same
/// deadline on, so a handler stuck on a stalled body ends then and releases
/// the connection.
pub async fn request_timeout(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    let deadline = tokio::time::Instant::now() + timeout;
    let cut = Arc::new(AtomicBool::new(false));
    let request = request.map(|body| {
        Body::new(BodyDeadline { inner: body, deadline: Box::pin(sleep_until(deadline)), cut: cut.clone() })
    });
    // Run inline (no task per request); only a handler still running at the
    // deadline is handed to a task of its own, to finish there.
    let mut handler = Box::pin(next.run(request).in_current_span());
    let answered = tokio::time::timeout_at(deadline, handler.as_mut()).await;
    match answered {
        // Not the answer to a body cut off at the deadline.
        Ok(response) if !cut.load(Ordering::Acquire) => response,
        answered => {
            if answered.is_err() {
                tokio::spawn(handler);
            }
            tracing::debug!(timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX), "request timed out");
            // As RFC 9110 asks of a 408: the connection is closed, rather than
            // kept waiting for the rest of a stalled body.
            let mut response = ApiError::request_timeout().into_response();
            response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

/// A request body that fails to read once its deadline has passed.
struct BodyDeadline {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
    /// Set when a read failed for the deadline.
    cut: Arc<AtomicBool>,
}

/// The error of a body read after the request's deadline.
#[derive(Debug)]
struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body was not read before the request timeout")
    }
}

impl std::error::Error for BodyTimedOut {}

impl HttpBody for BodyDeadline {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.cut.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
        }
        Pin::new(&mut this.inner).poll_frame(cx).map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
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
