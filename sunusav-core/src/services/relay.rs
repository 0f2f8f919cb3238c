//! The outbox relay: committed outbox rows reach their queue, at least once;
//! the job id (the idempotency key) makes that exactly one job.

use crate::ports::NewJob;

use super::{PAYOUT_QUEUE, ServiceError, Tontine, WEBHOOK_QUEUE};

impl Tontine {
    /// Publishes up to `limit` unsent outbox rows; returns how many were published.
    ///
    /// Rows are claimed with `SKIP LOCKED`, so several relays may run at once. If
    /// the process dies after publishing and before marking, the rows are
    /// published again and the queue's id dedup absorbs the copy.
    pub async fn relay_outbox(&self, limit: u32) -> Result<usize, ServiceError> {
        let mut tx = self.store.begin().await?;
        let messages = tx.claim_outbox(limit).await?;
        if messages.is_empty() {
            return Ok(0);
        }
        let mut payouts = Vec::new();
        let mut webhooks = Vec::new();
        let mut ids = Vec::with_capacity(messages.len());
        for m in messages {
            ids.push(m.id);
            let job = NewJob::new(m.job_id, m.payload);
            match m.queue.as_str() {
                PAYOUT_QUEUE => payouts.push(job),
                WEBHOOK_QUEUE => webhooks.push(job),
                other => {
                    tracing::error!(queue = other, "outbox row for an unknown queue; marking it sent");
                }
            }
        }
        if !payouts.is_empty() {
            self.payouts.enqueue_bulk(payouts).await?;
        }
        if !webhooks.is_empty() {
            self.webhooks.enqueue_bulk(webhooks).await?;
        }
        tx.mark_outbox_sent(&ids).await?;
        tx.commit().await?;
        Ok(ids.len())
    }
}
