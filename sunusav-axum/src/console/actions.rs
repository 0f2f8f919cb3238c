//! The console's actions: admin-only `POST`s, each written to the audit log
//! (a refusal of the operator role too), answering 303 to the page to look
//! at next, or an error page with the stable code.

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::response::Response;
use http::StatusCode;
use maud::html;
use serde::Deserialize;
use sunusav_core::ports::{AuditAction, AuditRole};
use sunusav_core::{GroupId, IdempotencyKey, MemberId};

use super::auth::{ActionForm, Viewer, csrf_field, see_other};
use super::layout::{api_error_page, enc, error_page, page};
use super::pages::queue;
use crate::audit::{audited, payout_retry_detail, replay_detail};
use crate::error::ApiError;
use crate::extract::ApiPath;
use crate::state::AppState;

type ActionBody = Result<Form<ActionForm>, FormRejection>;

fn key(s: String) -> Result<IdempotencyKey, ApiError> {
    IdempotencyKey::parse(s).map_err(|e| ApiError::bad_request("invalid_key", e.to_string()))
}

fn done(v: &Viewer, result: Result<(), ApiError>, then: &str) -> Response {
    match result {
        Ok(()) => see_other(&v.url(then)),
        Err(e) => api_error_page(v, &e),
    }
}

/// `POST /jobs/{queue}/{id}/retry|promote|remove`.
pub(crate) async fn job(
    State(state): State<AppState>,
    v: Viewer,
    ApiPath((name, id, verb)): ApiPath<(String, String, String)>,
    form: ActionBody,
) -> Response {
    let act = match verb.as_str() {
        "retry" => AuditAction::QueueRetry,
        "promote" => AuditAction::QueuePromote,
        "remove" => AuditAction::QueueRemove,
        _ => return error_page(Some(&v), StatusCode::NOT_FOUND, "not_found", "no such action"),
    };
    let target = format!("{name}/{id}");
    if let Err(refused) = v.authorize(&state, csrf_field(&form), act, &target).await {
        return refused;
    }
    let run = async {
        let q = queue(&state, &name).ok_or_else(|| ApiError::not_found("queue"))?;
        let id = key(id.clone())?;
        match act {
            AuditAction::QueueRetry => q.retry_dead(&id).await?,
            AuditAction::QueuePromote => q.promote(&id).await?,
            _ => q.remove(&id).await?,
        }
        Ok(())
    };
    let result = audited(&state, AuditRole::Admin, act, &target, run, |()| None).await;
    let then = if act == AuditAction::QueueRemove {
        format!("/jobs?queue={}", enc(&name))
    } else {
        format!("/jobs/{}/{}", enc(&name), enc(&id))
    };
    done(&v, result, &then)
}

/// `POST /queues/{queue}/pause|resume|retry-dead`.
pub(crate) async fn queue_action(
    State(state): State<AppState>,
    v: Viewer,
    ApiPath((name, verb)): ApiPath<(String, String)>,
    form: ActionBody,
) -> Response {
    let act = match verb.as_str() {
        "pause" => AuditAction::QueuePause,
        "resume" => AuditAction::QueueResume,
        "retry-dead" => AuditAction::QueueRetryAllDead,
        _ => return error_page(Some(&v), StatusCode::NOT_FOUND, "not_found", "no such action"),
    };
    if let Err(refused) = v.authorize(&state, csrf_field(&form), act, &name).await {
        return refused;
    }
    let run = async {
        let q = queue(&state, &name).ok_or_else(|| ApiError::not_found("queue"))?;
        Ok(match act {
            AuditAction::QueuePause => q.pause().await.map(|()| None)?,
            AuditAction::QueueResume => q.resume().await.map(|()| None)?,
            _ => Some(q.retry_all_dead().await?),
        })
    };
    let result = audited(&state, AuditRole::Admin, act, &name, run, |n| n.map(|n| format!("{n} retried"))).await;
    done(&v, result.map(|_| ()), "/")
}

/// `POST /deliveries/{key}/replay`.
pub(crate) async fn replay(
    State(state): State<AppState>,
    v: Viewer,
    ApiPath(raw): ApiPath<String>,
    form: ActionBody,
) -> Response {
    if let Err(refused) = v.authorize(&state, csrf_field(&form), AuditAction::WebhookReplay, &raw).await {
        return refused;
    }
    let run = async { Ok(state.inner.tontine.replay_webhook(&key(raw.clone())?).await?) };
    let result =
        audited(&state, AuditRole::Admin, AuditAction::WebhookReplay, &raw, run, |r| Some(replay_detail(*r))).await;
    done(&v, result.map(|_| ()), "/deliveries")
}

/// `POST /payouts/{key}/retry`.
pub(crate) async fn payout_retry(
    State(state): State<AppState>,
    v: Viewer,
    ApiPath(raw): ApiPath<String>,
    form: ActionBody,
) -> Response {
    if let Err(refused) = v.authorize(&state, csrf_field(&form), AuditAction::PayoutRetry, &raw).await {
        return refused;
    }
    let mut group = None;
    let run = async {
        let key = key(raw.clone())?;
        group = state.inner.tontine.store().payment_attempt(&key).await.ok().flatten().map(|a| a.group);
        Ok(state.inner.tontine.retry_payout(&key).await?)
    };
    let result =
        audited(&state, AuditRole::Admin, AuditAction::PayoutRetry, &raw, run, |r| Some(payout_retry_detail(*r))).await;
    let then = group.map_or_else(|| "/".to_owned(), |g| format!("/groups/{g}"));
    done(&v, result.map(|_| ()), &then)
}

/// `POST /unapplied/{group}/{member}/release`.
pub(crate) async fn release(
    State(state): State<AppState>,
    v: Viewer,
    ApiPath((group, member)): ApiPath<(GroupId, MemberId)>,
    form: ActionBody,
) -> Response {
    let target = format!("{group}/{member}");
    if let Err(refused) = v.authorize(&state, csrf_field(&form), AuditAction::BalanceRelease, &target).await {
        return refused;
    }
    let run = async { Ok(state.inner.tontine.release_balance(group, member).await?) };
    let result =
        audited(&state, AuditRole::Admin, AuditAction::BalanceRelease, &target, run, |e| Some(e.amount.to_string()))
            .await;
    done(&v, result.map(|_| ()), "/unapplied")
}

/// The most jobs one bulk action takes.
pub(crate) const MAX_BULK: usize = 500;

/// The body of `POST /jobs/bulk`: the verb, and the jobs as lines of
/// `<queue>/<job id>` (a search result's).
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct BulkForm {
    #[serde(default)]
    csrf: Option<String>,
    verb: String,
    jobs: String,
}

/// `POST /jobs/bulk`: retries (`verb=retry`) or removes (`verb=remove`) up
/// to [`MAX_BULK`] jobs, each audited on its own; answers a page with what
/// came of each.
pub(crate) async fn bulk(
    State(state): State<AppState>,
    v: Viewer,
    form: Result<Form<BulkForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return error_page(Some(&v), StatusCode::BAD_REQUEST, "invalid_form", "the form was not understood");
    };
    let act = match form.verb.as_str() {
        "retry" => AuditAction::QueueRetry,
        "remove" => AuditAction::QueueRemove,
        _ => return error_page(Some(&v), StatusCode::BAD_REQUEST, "invalid_form", "verb is `retry` or `remove`"),
    };
    let jobs: Vec<(&str, &str)> = form.jobs.lines().filter_map(|l| l.trim().split_once('/')).take(MAX_BULK).collect();
    let summary = format!("{} jobs", jobs.len());
    if let Err(refused) = v.authorize(&state, form.csrf.as_deref(), act, &summary).await {
        return refused;
    }
    let mut results = Vec::with_capacity(jobs.len());
    for (name, id) in jobs {
        let target = format!("{name}/{id}");
        let run = async {
            let q = queue(&state, name).ok_or_else(|| ApiError::not_found("queue"))?;
            let id = key(id.to_owned())?;
            if act == AuditAction::QueueRetry {
                q.retry_dead(&id).await?;
            } else {
                q.remove(&id).await?;
            }
            Ok(())
        };
        let outcome = audited(&state, AuditRole::Admin, act, &target, run, |()| None).await;
        results.push((target, outcome.err().map(|e| e.code())));
    }
    let failed = results.iter().filter(|(_, e)| e.is_some()).count();
    let content = html! {
        p.notice class=[(failed > 0).then_some("bad")] data-failed=(failed) {
            (act.as_str()) ": " (results.len() - failed) " done, " (failed) " failed (each in the audit log)."
        }
        table {
            thead { tr { th { "job" } th { "outcome" } } }
            tbody { @for (target, error) in &results {
                tr { td.mono { (target) } td class=(if error.is_some() { "failed" } else { "succeeded" }) { (error.unwrap_or("done")) } }
            } }
        }
        p { a href=(v.url("/audit")) { "See the audit log" } }
    };
    page(&v, "Bulk action", None, &content)
}
