//! Writing operator actions to the store's audit log, for the admin routes
//! and the console alike.
//!
//! [`audited`] runs an action and records who took it, on what, and what
//! came of it (its error's stable code when it failed). An entry that cannot
//! be written is logged at error level; the action's own answer stands (it
//! already happened).

use std::future::Future;

use sunusav_core::ports::{AuditAction, AuditOutcome, AuditRole, NewAuditEntry};

use crate::error::ApiError;
use crate::state::AppState;

/// The state's clock, in unix milliseconds.
pub(crate) fn now_ms(state: &AppState) -> u64 {
    u64::try_from((state.inner.clock)()).unwrap_or(0).saturating_mul(1_000)
}

/// Appends one entry; a failure to write it is logged, not returned.
pub(crate) async fn record(
    state: &AppState,
    role: AuditRole,
    action: AuditAction,
    target: &str,
    outcome: AuditOutcome,
    detail: Option<String>,
) {
    let entry = NewAuditEntry::new(now_ms(state), role, action, target, outcome, detail);
    if let Err(e) = state.inner.tontine.store().record_audit(&entry).await {
        tracing::error!(error = %e, action = action.as_str(), role = role.as_str(), "audit entry not written");
    }
}

/// Runs `act` for `role` and records it: `succeeded` with the detail
/// `detail` gives of its value, or `failed` with the error's code.
pub(crate) async fn audited<T, F>(
    state: &AppState,
    role: AuditRole,
    action: AuditAction,
    target: &str,
    act: F,
    detail: impl FnOnce(&T) -> Option<String>,
) -> Result<T, ApiError>
where
    F: Future<Output = Result<T, ApiError>>,
{
    let result = act.await;
    match &result {
        Ok(value) => record(state, role, action, target, AuditOutcome::Succeeded, detail(value)).await,
        Err(e) => record(state, role, action, target, AuditOutcome::Failed, Some(e.code().to_owned())).await,
    }
    result
}

/// The audit detail of a payout retry.
pub(crate) fn payout_retry_detail(r: sunusav_core::services::PayoutRetry) -> String {
    match r {
        sunusav_core::services::PayoutRetry::Retrying { generation } => format!("retrying, generation {generation}"),
        sunusav_core::services::PayoutRetry::AlreadyRetried { generation, .. } => {
            format!("already retried, generation {generation}")
        }
    }
}

/// The audit detail of a delivery replay.
pub(crate) fn replay_detail(r: sunusav_core::services::WebhookReplay) -> String {
    match r {
        sunusav_core::services::WebhookReplay::Replaying { generation } => {
            format!("replaying, generation {generation}")
        }
        sunusav_core::services::WebhookReplay::Pending { generation } => format!("pending, generation {generation}"),
    }
}
