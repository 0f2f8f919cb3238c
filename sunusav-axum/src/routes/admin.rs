//! Admin routes, mounted only when an admin token is configured, behind
//! `Authorization: Bearer <token>`: the queues (`payouts`, `webhooks`), the
//! money held for members, and dead work recovered by its store record (a
//! payout's retry, a delivery's replay, the delivery log). Every action
//! (retry, retry-dead, remove, promote, pause, resume, payout retry, replay,
//! release) is written to the store's audit log with the admin role.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use sunusav_core::ports::{AuditAction, AuditRole, DeliveryFilter, JobInfo, JobState, OutcomeFilter, QueueAdmin};
use sunusav_core::services::{PayoutRetry, ServiceError, WebhookReplay};
use sunusav_core::{DeliveryOutcome, GroupId, IdempotencyKey, LedgerReason, MemberId, PaymentHash};

use crate::audit::audited;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;

/// The most jobs (or deliveries) one list answers.
pub const MAX_LIST_LIMIT: u64 = 1_000;

/// The deliveries one page of the delivery log answers by default.
pub const DEFAULT_DELIVERIES_LIMIT: u32 = 100;

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
        .route("/admin/payouts/{key}/retry", post(retry_payout))
        .route("/admin/webhooks", get(deliveries))
        .route("/admin/webhooks/{key}/replay", post(replay_webhook))
        .route("/admin/members/{member}/token", post(member_token))
}

/// `POST /admin/members/{member}/token` → 201 `{"token", "member",
/// "expires_at"}`: a bearer token the member uses on the group API; 404
/// `not_found` when the state issues no member tokens.
pub async fn member_token(
    State(state): State<AppState>,
    ApiPath(member): ApiPath<MemberId>,
) -> Result<(StatusCode, Json<crate::identity::IssuedToken>), ApiError> {
    let tokens = state.inner.member_tokens.as_ref().ok_or_else(|| ApiError::not_found("member tokens"))?;
    let issued = tokens.issue(member);
    tracing::info!(member = %member, expires_at = issued.expires_at, "member token issued");
    Ok((StatusCode::CREATED, Json(issued)))
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
        "errors": job.errors,
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
    let target = format!("{name}/{id}");
    let act = async { Ok(queue(&state, &name)?.remove(&job_id(id)?).await?) };
    audited(&state, AuditRole::Admin, AuditAction::QueueRemove, &target, act, |()| None).await?;
    Ok(Json(json!({ "status": "removed" })))
}

async fn retry(
    State(state): State<AppState>,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let target = format!("{name}/{id}");
    let act = async { Ok(queue(&state, &name)?.retry_dead(&job_id(id)?).await?) };
    audited(&state, AuditRole::Admin, AuditAction::QueueRetry, &target, act, |()| None).await?;
    Ok(Json(json!({ "status": "retried" })))
}

async fn promote(
    State(state): State<AppState>,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let target = format!("{name}/{id}");
    let act = async { Ok(queue(&state, &name)?.promote(&job_id(id)?).await?) };
    audited(&state, AuditRole::Admin, AuditAction::QueuePromote, &target, act, |()| None).await?;
    Ok(Json(json!({ "status": "promoted" })))
}

async fn retry_dead(State(state): State<AppState>, ApiPath(name): ApiPath<String>) -> Result<Json<Value>, ApiError> {
    let act = async { Ok(queue(&state, &name)?.retry_all_dead().await?) };
    let retried =
        audited(&state, AuditRole::Admin, AuditAction::QueueRetryAllDead, &name, act, |n| Some(format!("{n} retried")))
            .await?;
    Ok(Json(json!({ "retried": retried })))
}

async fn pause(State(state): State<AppState>, ApiPath(name): ApiPath<String>) -> Result<Json<Value>, ApiError> {
    let act = async { Ok(queue(&state, &name)?.pause().await?) };
    audited(&state, AuditRole::Admin, AuditAction::QueuePause, &name, act, |()| None).await?;
    Ok(Json(json!({ "paused": true })))
}

async fn resume(State(state): State<AppState>, ApiPath(name): ApiPath<String>) -> Result<Json<Value>, ApiError> {
    let act = async { Ok(queue(&state, &name)?.resume().await?) };
    audited(&state, AuditRole::Admin, AuditAction::QueueResume, &name, act, |()| None).await?;
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
    let balances = store.unapplied_balances(None, limit).await.map_err(sunusav_core::services::ServiceError::from)?;
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
    let target = format!("{id}/{member}");
    let act = async { Ok(state.inner.tontine.release_balance(id, member).await?) };
    let entry =
        audited(&state, AuditRole::Admin, AuditAction::BalanceRelease, &target, act, |e| Some(e.amount.to_string()))
            .await?;
    Ok((StatusCode::CREATED, Json(json!(entry))))
}

fn record_key(key: String) -> Result<IdempotencyKey, ApiError> {
    IdempotencyKey::parse(key).map_err(|e| ApiError::bad_request("invalid_key", e.to_string()))
}

/// `POST /admin/payouts/{key}/retry`: retries a dead payout by its attempt,
/// whatever the queue kept of its job. 202 `retrying` with the new
/// generation; 200 `already_retried` when it was retried before and has not
/// died since (the same request again: nothing changes); 404 `not_found`;
/// 409 `not_dead` for a payout that never died.
async fn retry_payout(
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let key = record_key(key)?;
    let act = async { Ok(state.inner.tontine.retry_payout(&key).await?) };
    let retried = audited(&state, AuditRole::Admin, AuditAction::PayoutRetry, key.as_str(), act, |r| {
        Some(crate::audit::payout_retry_detail(*r))
    })
    .await?;
    Ok(match retried {
        PayoutRetry::Retrying { generation } => {
            (StatusCode::ACCEPTED, Json(json!({ "status": "retrying", "key": key, "generation": generation })))
        }
        PayoutRetry::AlreadyRetried { generation, attempt_status } => (
            StatusCode::OK,
            Json(json!({
                "status": "already_retried",
                "key": key,
                "generation": generation,
                "attempt_status": attempt_status,
            })),
        ),
    })
}

/// `POST /admin/webhooks/{key}/replay`: replays a delivery by its record,
/// whatever the queue kept of its job. 202 `replaying` with the new
/// generation for a processed (dead or not) delivery; 200 `pending` for one
/// not processed yet (its job is queued again; asking twice reopens once);
/// 404 `not_found`; 409 `body_expired` when retention dropped its body.
async fn replay_webhook(
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let key = record_key(key)?;
    let act = async { Ok(state.inner.tontine.replay_webhook(&key).await?) };
    let replayed = audited(&state, AuditRole::Admin, AuditAction::WebhookReplay, key.as_str(), act, |r| {
        Some(crate::audit::replay_detail(*r))
    })
    .await?;
    Ok(match replayed {
        WebhookReplay::Replaying { generation } => {
            (StatusCode::ACCEPTED, Json(json!({ "status": "replaying", "key": key, "generation": generation })))
        }
        WebhookReplay::Pending { generation } => {
            (StatusCode::OK, Json(json!({ "status": "pending", "key": key, "generation": generation })))
        }
    })
}

/// The query of `GET /admin/webhooks`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// An outcome's name, or `pending` (no outcome yet).
    pub outcome: Option<String>,
    /// Received at or after this time (unix ms).
    pub since: Option<u64>,
    /// Naming this payment hash (64 hex digits).
    pub payment_hash: Option<String>,
    /// At most this many (1 to 1,000; default 100).
    pub limit: Option<u32>,
    /// The cursor: the `next` of the previous page.
    pub after: Option<u64>,
}

impl DeliveriesQuery {
    fn filter(&self) -> Result<DeliveryFilter, ApiError> {
        let outcome = match self.outcome.as_deref() {
            None => None,
            Some("pending") => Some(OutcomeFilter::Pending),
            Some(name) => Some(OutcomeFilter::Is(DeliveryOutcome::parse(name).ok_or_else(|| {
                ApiError::bad_request("invalid_query", "outcome must be `pending` or an outcome's name")
            })?)),
        };
        let payment_hash = self
            .payment_hash
            .as_deref()
            .map(str::parse::<PaymentHash>)
            .transpose()
            .map_err(|_| ApiError::bad_request("invalid_query", "payment_hash must be 64 hex digits"))?;
        let limit = self.limit.unwrap_or(DEFAULT_DELIVERIES_LIMIT);
        if limit == 0 || u64::from(limit) > MAX_LIST_LIMIT {
            return Err(ApiError::bad_request("invalid_query", format!("limit must be 1 to {MAX_LIST_LIMIT}")));
        }
        Ok(DeliveryFilter { outcome, since_ms: self.since, payment_hash, after: self.after.unwrap_or(0), limit })
    }
}

/// `GET /admin/webhooks?outcome=&since=&payment_hash=&limit=&after=`: the
/// delivery log, in the order recorded, a page at a time (`next` is the
/// cursor of the next page). Each delivery with its outcome (`dead`: its job
/// died), generation, payment hash, time received, whether its body is still
/// kept, and how many conflicting bodies its key received.
async fn deliveries(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<DeliveriesQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = query.filter()?;
    let page = state.inner.tontine.store().webhook_deliveries(&filter).await.map_err(ServiceError::from)?;
    Ok(Json(json!({ "deliveries": page.deliveries, "next": page.next })))
}
