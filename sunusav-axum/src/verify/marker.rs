//! [`VerifiedWebhook`]: the proof, left in request extensions by the layer,
//! that a request's body was verified; and its extractor.

use axum::extract::FromRequestParts;
use bytes::Bytes;
use http::StatusCode;
use http::request::Parts;

use crate::error::ApiError;

/// A webhook whose signature was verified over exactly [`body`](Self::body).
///
/// Only [`VerifyWebhook`](super::VerifyWebhook) builds one, so a handler that
/// takes a `VerifiedWebhook` cannot run on an unverified request: the
/// extractor answers 401 when the marker is absent.
#[derive(Clone, Debug)]
pub struct VerifiedWebhook {
    event_id: Option<String>,
    timestamp: Option<i64>,
    body: Bytes,
}

impl VerifiedWebhook {
    pub(crate) fn new(event_id: Option<String>, timestamp: Option<i64>, body: Bytes) -> Self {
        Self { event_id, timestamp, body }
    }

    /// The Standard Webhooks `webhook-id`; `None` for the hex scheme.
    pub fn event_id(&self) -> Option<&str> {
        self.event_id.as_deref()
    }

    /// The Standard Webhooks `webhook-timestamp` (Unix seconds); `None` for the hex scheme.
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }

    /// The verified body bytes, exactly as received.
    pub fn body(&self) -> &Bytes {
        &self.body
    }
}

impl<S: Send + Sync> FromRequestParts<S> for VerifiedWebhook {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Self>().cloned().ok_or_else(|| {
            tracing::error!("a handler wants a verified webhook but no verification layer ran");
            ApiError::new(StatusCode::UNAUTHORIZED, "missing_signature", "the webhook was not verified")
        })
    }
}
