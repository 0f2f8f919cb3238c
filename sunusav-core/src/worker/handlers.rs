//! The job handlers of the two queues, over the services.

use async_trait::async_trait;

use crate::ports::ReservedJob;
use crate::services::{PayoutJob, PayoutStep, ServiceError, Tontine, WebhookJob};

use super::pool::{JobFailure, JobHandler};

fn failure(e: &ServiceError) -> JobFailure {
    if e.is_retryable() { JobFailure::retry(e.to_string()) } else { JobFailure::permanent(e.to_string()) }
}

/// Settles webhook events.
#[derive(Debug, Clone)]
pub struct WebhookHandler {
    tontine: Tontine,
}

impl WebhookHandler {
    /// A handler over `tontine`.
    pub fn new(tontine: Tontine) -> Self {
        Self { tontine }
    }
}

#[async_trait]
impl JobHandler for WebhookHandler {
    async fn handle(&self, job: &ReservedJob) -> Result<(), JobFailure> {
        let payload: WebhookJob = serde_json::from_slice(&job.payload)
            .map_err(|e| JobFailure::permanent(format!("invalid webhook job payload: {e}")))?;
        self.tontine.settle(&payload).await.map(|_| ()).map_err(|e| failure(&e))
    }

    async fn handle_batch(&self, jobs: &[ReservedJob]) -> Vec<Result<(), JobFailure>> {
        let parsed: Vec<Result<WebhookJob, JobFailure>> = jobs
            .iter()
            .map(|job| {
                serde_json::from_slice(&job.payload)
                    .map_err(|e| JobFailure::permanent(format!("invalid webhook job payload: {e}")))
            })
            .collect();
        let valid: Vec<WebhookJob> = parsed.iter().filter_map(|p| p.as_ref().ok().cloned()).collect();
        let mut settled = self.tontine.settle_batch(&valid).await.into_iter();
        parsed
            .into_iter()
            .map(|p| {
                p.and_then(|_| match settled.next() {
                    Some(r) => r.map(|_| ()).map_err(|e| failure(&e)),
                    None => Err(JobFailure::retry("no settlement result")),
                })
            })
            .collect()
    }
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
            Ok(PayoutStep::Paid | PayoutStep::AlreadyPaid) => Ok(()),
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
