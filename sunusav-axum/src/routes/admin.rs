//! Admin routes over the queues (`payouts`, `webhooks`), mounted only when an
//! admin token is configured, behind `Authorization: Bearer <token>`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use sunusav_core::ports::{JobInfo, JobState, QueueAdmin};
use sunusav_core::{GroupId, IdempotencyKey, LedgerReason, MemberId};

use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;

/// The most jobs one list answers.
pub const MAX_LIST_LIMIT: u64 = 1_000;

/// The admin routes (without authentication: the caller adds it).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/queues/{queue}/counts", get(counts))
        .route("/admin/queues/{queue}/jobs", get(list))
        .route("/admin/queues/{queue}/jobs/{id}", get(show).delete(remove))
        .route("/admin/queues/{queue}/jobs/{id}/retry", post(retry))
        .route("/admin/queues/{queue}/jobs/{id}/promote", post(promote))
        .route("/admin/queues/{queue}/retry-dead", post(retry_dead))
        .route("/admin/unapplied", get(unapplied))
        .route("/admin/groups/{id}/members/{member}/release", post(release))
        .route("/admin/queues/{queue}/pause", post(pause))
        .route("/admin/queues/{queue}/resume", post(resume))
}

/// The admin side of the queue named `name`.
fn queue(state: &AppState, name: &str) -> Result<Arc<dyn QueueAdmin>, ApiError> {
    let queue = [state.inner.tontine.payout_queue(), state.inner.tontine.webhook_queue()]
        .into_iter()
        .find(|q| q.name() == name)
        .ok_or_else(|| ApiError::not_found("queue"))?;
    Ok(queue.clone())
}

fn job_id(id: String) -> Result<IdempotencyKey, ApiError> {
    IdempotencyKey::parse(id).map_err(|e| ApiError::bad_request("invalid_job_id", e.to_string()))
}

fn job_json(job: &JobInfo) -> Value {
    let payload = serde_json::from_slice::<Value>(&job.payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&job.payload).into_owned()));
    json!({
        "id": job.id,
        "state": job.state.as_str(),
        "payload": payload,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "priority": job.priority,
        "stalls": job.stalls,
        "created_at_ms": job.created_at_ms,
        "due_at_ms": job.due_at_ms,
        "finished_at_ms": job.finished_at_ms,
        "last_error": job.last_error,
    })
}

/// `?state=dead&offset=0&limit=50`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    state: Option<String>,
    offset: Option<u64>,
    limit: Option<u64>,
}

async fn counts(State(state): State<AppState>, ApiPath(name): ApiPath<String>) -> Result<Json<Value>, ApiError> {
    let counts = queue(&state, &name)?.stats().await?;
    Ok(Json(json!(counts)))
}

async fn list(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let q = queue(&state, &name)?;
    let job_state = match query.state.as_deref() {
        None => JobState::Dead,
        Some(s) => JobState::parse(s).ok_or_else(|| ApiError::bad_request("invalid_query", "unknown job state"))?,
    };
    let (offset, limit) = (query.offset.unwrap_or(0), query.limit.unwrap_or(50));
    if limit == 0 || limit > MAX_LIST_LIMIT {
        return Err(ApiError::bad_request("invalid_query", format!("limit must be 1 to {MAX_LIST_LIMIT}")));
    }
    let jobs = q.list(job_state, offset, limit).await?;
    Ok(Json(json!({
        "queue": q.name(),
        "state": job_state.as_str(),
        "offset": offset,
        "limit": limit,
        "jobs": jobs.iter().map(job_json).collect::<Vec<_>>(),
    })))
}

async fn show(
    State(state): State<AppState>,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let job = queue(&state, &name)?.get(&job_id(id)?).await?.ok_or_else(|| ApiError::not_found("job"))?;
    Ok(Json(job_json(&job)))
}

async fn remove(
    State(state): State<AppState>,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    queue(&state, &name)?.remove(&job_id(id)?).await?;
    Ok(Json(json!({ "status": "removed" })))
}

async fn retry(
    State(state): State<AppState>,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    queue(&state, &name)?.retry_dead(&job_id(id)?).await?;
    Ok(Json(json!({ "status": "retried" })))
}

async fn promote(
    State(state): State<AppState>,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    queue(&state, &name)?.promote(&job_id(id)?).await?;
    Ok(Json(json!({ "status": "promoted" })))
}

async fn retry_dead(State(state): State<AppState>, ApiPath(name): ApiPath<String>) -> Result<Json<Value>, ApiError> {
    let retried = queue(&state, &name)?.retry_all_dead().await?;
    Ok(Json(json!({ "retried": retried })))
}

async fn pause(State(state): State<AppState>, ApiPath(name): ApiPath<String>) -> Result<Json<Value>, ApiError> {
    queue(&state, &name)?.pause().await?;
    Ok(Json(json!({ "paused": true })))
}

async fn resume(State(state): State<AppState>, ApiPath(name): ApiPath<String>) -> Result<Json<Value>, ApiError> {
    queue(&state, &name)?.resume().await?;
    Ok(Json(json!({ "paused": false })))
}

/// The query of `GET /admin/unapplied`.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnappliedQuery {
    /// The most balances and refunds to answer (default and cap 1,000).
    pub limit: Option<u32>,
    /// The refunds' cursor: the `next_refunds` of the previous page.
    pub refunds_after: Option<u64>,
}

/// `GET /admin/unapplied` → money held for members: balances above zero,
/// and refunds released and owed (cursor-paged).
async fn unapplied(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<UnappliedQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(1_000).clamp(1, 1_000);
    let store = state.inner.tontine.store();
    let balances = store.unapplied_balances(limit).await.map_err(sunusav_core::services::ServiceError::from)?;
    let refunds = store
        .ledger_entries(&[LedgerReason::RefundReleased], q.refunds_after.unwrap_or(0), limit)
        .await
        .map_err(sunusav_core::services::ServiceError::from)?;
    Ok(Json(json!({ "balances": balances, "refunds": refunds.entries, "next_refunds": refunds.next })))
}

/// `POST /admin/groups/{id}/members/{member}/release` → 201 with the entry
/// that releases the member's whole balance for a refund; 409
/// `nothing_to_release` when it is zero.
async fn release(
    State(state): State<AppState>,
    ApiPath((id, member)): ApiPath<(GroupId, MemberId)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let entry = state.inner.tontine.release_balance(id, member).await?;
    Ok((StatusCode::CREATED, Json(json!(entry))))
}
