//! The job handlers of the two queues, over the services.

use std::sync::Arc;

use async_trait::async_trait;

use crate::ports::ReservedJob;
use crate::services::{PayoutJob, PayoutStep, ServiceError, Tontine, WebhookJob};

use super::metrics::SettlementCounts;
use super::pool::{JobFailure, JobHandler};

fn failure(e: &ServiceError) -> JobFailure {
    if e.is_retryable() { JobFailure::retry(e.to_string()) } else { JobFailure::permanent(e.to_string()) }
}

/// Settles webhook events, counting their outcomes.
#[derive(Debug, Clone)]
pub struct WebhookHandler {
    tontine: Tontine,
    counts: Arc<SettlementCounts>,
}

impl WebhookHandler {
    /// A handler over `tontine`.
    pub fn new(tontine: Tontine) -> Self {
        Self { tontine, counts: Arc::default() }
    }

    /// Counts the outcomes of its settlements in `counts`.
    #[must_use]
    pub fn with_counts(mut self, counts: Arc<SettlementCounts>) -> Self {
        self.counts = counts;
        self
    }

    /// The outcomes of its settlements so far.
    pub fn counts(&self) -> &Arc<SettlementCounts> {
        &self.counts
    }
}

#[async_trait]
impl JobHandler for WebhookHandler {
    async fn handle(&self, job: &ReservedJob) -> Result<(), JobFailure> {
        let payload = webhook_job(job)?;
        let settled = self.tontine.settle(&payload).await.map_err(|e| failure(&e))?;
        self.counts.record(settled.outcome());
        Ok(())
    }

    async fn handle_batch(&self, jobs: &[ReservedJob]) -> Vec<Result<(), JobFailure>> {
        // A payload that does not parse fails its job alone; the others settle together.
        let mut parsed = Vec::with_capacity(jobs.len());
        let mut valid = Vec::with_capacity(jobs.len());
        for job in jobs {
            parsed.push(webhook_job(job).map(|payload| valid.push(payload)));
        }
        let mut settled = self.tontine.settle_batch(&valid).await.into_iter();
        parsed
            .into_iter()
            .map(|p| {
                p.and_then(|()| match settled.next() {
                    Some(r) => r.map(|s| self.counts.record(s.outcome())).map_err(|e| failure(&e)),
                    None => Err(JobFailure::retry("no settlement result")),
                })
            })
            .collect()
    }

    /// The job died in the queue: its delivery's record says so (outcome
    /// `dead`), so that the log shows it and a redelivery or a replay runs
    /// it again. Should this write fail, the sweep marks it later (it finds
    /// the record without an outcome and its job dead or gone).
    async fn dead(&self, job: &ReservedJob, error: &str) {
        let Ok(payload) = webhook_job(job) else {
            return;
        };
        if let Err(e) = self.tontine.webhook_dead(&payload, error).await {
            tracing::error!(delivery = %payload.key, error = %e, "could not mark the webhook delivery dead; the sweep will");
        }
    }
}

fn webhook_job(job: &ReservedJob) -> Result<WebhookJob, JobFailure> {
    serde_json::from_slice(&job.payload).map_err(|e| JobFailure::permanent(format!("invalid webhook job payload: {e}")))
}

/// Pays payouts.
#[derive(Debug, Clone)]
pub struct PayoutHandler {
    tontine: Tontine,
}

impl PayoutHandler {
    /// A handler over `tontine`.
    pub fn new(tontine: Tontine) -> Self {
        Self { tontine }
    }
}

#[async_trait]
impl JobHandler for PayoutHandler {
    async fn handle(&self, job: &ReservedJob) -> Result<(), JobFailure> {
        let payload: PayoutJob = serde_json::from_slice(&job.payload)
            .map_err(|e| JobFailure::permanent(format!("invalid payout job payload: {e}")))?;
        match self.tontine.process_payout(&payload).await {
            // A stale job (an operator retried the payout since): the retry's job runs it.
            Ok(PayoutStep::Paid | PayoutStep::AlreadyPaid | PayoutStep::Stale | PayoutStep::AwaitingDestination) => {
                Ok(())
            }
            Ok(PayoutStep::Dead(msg)) => Err(JobFailure::permanent(msg)),
            Err(e) => Err(failure(&e)),
        }
    }

    async fn dead(&self, job: &ReservedJob, error: &str) {
        let Ok(payload) = serde_json::from_slice::<PayoutJob>(&job.payload) else {
            return;
        };
        if let Err(e) = self.tontine.payout_exhausted(&payload, error).await {
            tracing::error!(payout = %payload.key, error = %e, "could not mark the payout dead; it stays retryable by an operator");
        }
    }
}
