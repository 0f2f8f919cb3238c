//! The signed-webhook middleware, laid out like tower's `timeout`: the
//! [`VerifyWebhook`] service (here), its [`VerifyWebhookLayer`] and its
//! [`ResponseFuture`].
//!
//! For each request it:
//! 1. answers 413 `body_too_large` at once when `Content-Length` exceeds the limit
//!    (the body is not read);
//! 2. buffers the body, stopping with 413 as soon as a chunked body exceeds it;
//! 3. verifies the signature over those exact bytes with the core
//!    [`Verifier`] (401 with the verifier's code on failure);
//! 4. hands the bytes on as the request body, with a [`VerifiedWebhook`] in the
//!    request extensions.

mod future;
mod headers;
mod layer;
mod marker;

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, HttpBody};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use sunusav_core::webhook::Verifier;
use tower::Service;

pub use future::ResponseFuture;
pub use headers::HttpHeaders;
pub use layer::{DEFAULT_BODY_LIMIT, VerifyWebhookLayer};
pub use marker::VerifiedWebhook;

use crate::clock::Clock;
use crate::error::ApiError;

/// What the layer and its services share.
pub(crate) struct Config {
    pub(crate) verifier: Arc<Verifier>,
    pub(crate) limit: usize,
    pub(crate) clock: Clock,
}

/// A service that verifies signed webhooks before calling `S`. Build it with
/// [`VerifyWebhookLayer`].
#[derive(Clone)]
pub struct VerifyWebhook<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> std::fmt::Debug for VerifyWebhook<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyWebhook").field("limit", &self.config.limit).finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<B>> for VerifyWebhook<S>
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The service that was polled ready is the one to call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        ResponseFuture::new(async move {
            let (parts, body) = req.into_parts();
            match buffer_and_verify(&config, &parts, body).await {
                Ok((marker, bytes)) => {
                    let mut req = Request::from_parts(parts, Body::from(bytes));
                    req.extensions_mut().insert(marker);
                    inner.call(req).await
                }
                Err(e) => {
                    tracing::debug!(code = e.code(), "webhook rejected");
                    Ok(e.into_response())
                }
            }
        })
    }
}

async fn buffer_and_verify<B>(
    config: &Config,
    parts: &http::request::Parts,
    body: B,
) -> Result<(VerifiedWebhook, Bytes), ApiError>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| u64::try_from(config.limit).is_ok_and(|limit| len > limit)) {
        return Err(ApiError::body_too_large(config.limit));
    }
    let bytes = match Limited::new(body, config.limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(ApiError::body_too_large(config.limit));
        }
        Err(e) => {
            tracing::warn!(error = %e, "failed to read the webhook body");
            return Err(ApiError::bad_request("invalid_body", "the body could not be read"));
        }
    };
    let now = (config.clock)();
    let headers = HttpHeaders(&parts.headers);
    let verified = config.verifier.verify(&headers, &bytes, now)?;
    let marker = VerifiedWebhook::new(verified.webhook_id.map(str::to_owned), verified.timestamp, bytes.clone());
    Ok((marker, bytes))
}
