//! One attempt of a job, or of a batch of jobs: the handler runs in a
//! `tracing` span, within the pool's job timeout, and a panic in it becomes a
//! failure to retry instead of ending the worker.

use std::time::Duration;

use tracing::{Instrument, Span};

use crate::ports::ReservedJob;
use crate::runtime::unwind::catch;

use super::pool::{JobFailure, JobHandler};

/// The span of one job: its queue, id and attempt.
pub(super) fn job_span(queue: &str, job: &ReservedJob) -> Span {
    tracing::info_span!("job", queue, job = %job.id, attempt = job.attempt)
}

/// The span of an attempt: the job's span for one job; for a batch, a span
/// with the queue and the count (each job's own span sits inside it while the
/// job is settled).
pub(super) fn span(queue: &str, jobs: &[ReservedJob]) -> Span {
    if let [job] = jobs { job_span(queue, job) } else { tracing::info_span!("batch", queue, jobs = jobs.len()) }
}

/// Runs the handler on `jobs` (one job: [`JobHandler::handle`]; more:
/// [`JobHandler::handle_batch`]); one result per job, in order. A handler
/// that panics, or that runs longer than `timeout`, fails every job of the
/// attempt with [`crate::ports::FailKind::Retry`] and says so; the handler's
/// future is dropped.
pub(super) async fn run(
    handler: &dyn JobHandler,
    jobs: &[ReservedJob],
    timeout: Option<Duration>,
) -> Vec<Result<(), JobFailure>> {
    let attempt = async {
        match jobs {
            [job] => catch(|| handler.handle(job)).await.map(|r| vec![r]),
            batch => catch(|| handler.handle_batch(batch)).await,
        }
    };
    let outcome = match timeout {
        None => attempt.await,
        Some(limit) => {
            let Ok(outcome) = tokio::time::timeout(limit, attempt).await else {
                let message = match jobs.len() {
                    1 => format!("job timed out after {limit:?}"),
                    n => format!("batch of {n} jobs timed out after {limit:?}"),
                };
                tracing::warn!(jobs = jobs.len(), "{message}");
                return fail_all(jobs, &message);
            };
            outcome
        }
    };
    outcome.unwrap_or_else(|panic| {
        let message = format!("handler panicked: {panic}");
        tracing::error!(jobs = jobs.len(), "{message}");
        fail_all(jobs, &message)
    })
}

fn fail_all(jobs: &[ReservedJob], message: &str) -> Vec<Result<(), JobFailure>> {
    jobs.iter().map(|_| Err(JobFailure::retry(message))).collect()
}

/// Calls the handler's `dead` hook; a panic in it is logged, not propagated.
pub(super) async fn dead(handler: &dyn JobHandler, job: &ReservedJob, error: &str) {
    if let Err(panic) = catch(|| handler.dead(job, error)).await {
        tracing::error!(job = %job.id, error = %panic, "the dead hook panicked");
    }
}

/// [`dead`] in the job's span, for a job dead-lettered outside an attempt
/// (stalled recovery).
pub(super) async fn dead_in_span(handler: &dyn JobHandler, queue: &str, job: &ReservedJob, error: &str) {
    dead(handler, job, error).instrument(job_span(queue, job)).await;
}
