//! `POST /webhook/lightning`: a verified Lightning event, recorded durably and
//! queued before it is acknowledged.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use http::header::CONTENT_TYPE;
use http::{HeaderValue, StatusCode};
use sunusav_core::IdempotencyKey;
use sunusav_core::services::{Ingested, LightningEvent};

use crate::error::ApiError;
use crate::state::AppState;
use crate::verify::VerifiedWebhook;

/// Whether the content type is `application/json`, parameters (`charset`) allowed.
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// 202 `{"status":"accepted"}` for a new delivery (or the redelivery of one
/// whose job died: it runs again), 200 `{"status":"duplicate"}` for a replay
/// (no second effect), 409 `event_conflict` for a recorded event id with
/// another body (kept, not acted on), 503 when the store or the queue is down
/// (nothing is acknowledged, the sender retries).
pub async fn lightning(
    State(state): State<AppState>,
    headers: HeaderMap,
    webhook: VerifiedWebhook,
) -> Result<Response, ApiError> {
    if !is_json(&headers) {
        return Err(ApiError::unsupported_media_type());
    }
    let body = webhook.body();
    let event = LightningEvent::parse(body)?;
    let key = IdempotencyKey::webhook(webhook.event_id().or(event.event_id.as_deref()), body);
    let ingested = state.inner.tontine.ingest_webhook(key.clone(), body, event).await?;
    tracing::debug!(key = %key, ?ingested, "webhook ingested");
    // Constant bodies: no JSON value built and serialized per delivery.
    let json = [(CONTENT_TYPE, HeaderValue::from_static("application/json"))];
    Ok(match ingested {
        Ingested::Accepted | Ingested::Reopened(_) => {
            (StatusCode::ACCEPTED, json, r#"{"status":"accepted"}"#).into_response()
        }
        Ingested::Replay => (StatusCode::OK, json, r#"{"status":"duplicate"}"#).into_response(),
        Ingested::Conflict => ApiError::event_conflict().into_response(),
    })
}
