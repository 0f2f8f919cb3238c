//! The outbox relay: committed outbox rows reach their queue, at least once;
//! the job id (the idempotency key) makes that exactly one job. And the
//! sweeps of the work whose job a queue lost: recorded webhook deliveries
//! without an outcome, payouts neither paid nor dead.

use std::time::Duration;

use crate::domain::keys::IdempotencyKey;
use crate::ports::{BackendError, Enqueued, JobOptions, JobState, NewJob, Queue};

use super::event::{LightningEvent, PayoutJob, WebhookJob};
use super::money::{NODE_OUTBOX, NodeAction};
use super::{
    EVENT_JOB_OPTIONS, EVENTS_QUEUE, PAYOUT_QUEUE, ServiceError, TIMERS_QUEUE, TimerJob, Tontine, WEBHOOK_QUEUE,
};

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
        let mut events = Vec::new();
        let mut timers = Vec::new();
        let now = self.now_ms();
        let mut node = Vec::new();
        let mut ids = Vec::with_capacity(messages.len());
        for m in messages {
            let options = match m.queue.as_str() {
                PAYOUT_QUEUE => self.payout_options,
                WEBHOOK_QUEUE => self.webhook_options,
                EVENTS_QUEUE => EVENT_JOB_OPTIONS,
                TIMERS_QUEUE => serde_json::from_slice::<TimerJob>(&m.payload)
                    .map_or_else(|_| JobOptions::default(), |t| t.options(now)),
                _ => JobOptions::default(),
            };
            let job = NewJob { id: m.job_id, payload: m.payload, options };
            match m.queue.as_str() {
                PAYOUT_QUEUE => payouts.push(job),
                WEBHOOK_QUEUE => webhooks.push(job),
                EVENTS_QUEUE if self.events.is_some() => events.push(job),
                TIMERS_QUEUE if self.timers.is_some() => timers.push(job),
                TIMERS_QUEUE => {
                    tracing::warn!(timer = %job.id, "a timer row, and timers are off now: dropped");
                }
                EVENTS_QUEUE => {
                    tracing::warn!(event = %job.id, "an event row, and events are off now: dropped");
                }
                NODE_OUTBOX => {
                    node.push((m.id, job));
                    continue;
                }
                other => {
                    tracing::error!(queue = other, "outbox row for an unknown queue; marking it sent");
                }
            }
            ids.push(m.id);
        }
        // Actions on the node are carried out here; one that fails stays
        // unsent and is tried again by a later pass.
        for (id, job) in node {
            match self.node_action(&job.payload).await {
                Ok(()) => ids.push(id),
                Err(e) => {
                    tracing::warn!(action = %job.id, error = %e, "node action failed; retried by the next relay pass");
                }
            }
        }
        if !payouts.is_empty() {
            self.payouts.enqueue_bulk(payouts).await?;
        }
        if !webhooks.is_empty() {
            self.webhooks.enqueue_bulk(webhooks).await?;
        }
        if let Some(queue) = self.events.as_ref().filter(|_| !events.is_empty()) {
            queue.enqueue_bulk(events).await?;
        }
        if let Some(queue) = self.timers.as_ref().filter(|_| !timers.is_empty()) {
            queue.enqueue_bulk(timers).await?;
        }
        tx.mark_outbox_sent(&ids).await?;
        tx.commit().await?;
        Ok(ids.len())
    }

    async fn node_action(&self, payload: &[u8]) -> Result<(), ServiceError> {
        let action: NodeAction =
            serde_json::from_slice(payload).map_err(|e| ServiceError::InvalidPayload(BackendError::from_source(e)))?;
        match action {
            NodeAction::CancelInvoice(hash) => {
                self.payments.cancel_invoice(&hash).await?;
                tracing::info!(payment_hash = %hash, "invoice cancelled at the node");
            }
        }
        Ok(())
    }

    /// Queues again, at most `limit`, the recorded deliveries that still have
    /// no outcome `older_than` after they were recorded (or reopened), oldest
    /// first; returns how many the queue took as new jobs.
    ///
    /// A delivery is answered once recorded and queued, so only a queue that
    /// lost its data (a Redis restarted without persistence) leaves one like
    /// this, and nothing else would bring it back unless the node delivered it
    /// again. Each is queued as its current generation's job: one still in
    /// the queue (waiting, delayed, running, or dead for an operator) has the
    /// same id, so the queue absorbs the copy. One whose id the queue still
    /// holds but whose job is dead or gone (trimmed from the dead letters,
    /// removed) will not run: its record is marked dead, as the dead-letter
    /// hook would have (a redelivery or an operator's replay runs it again).
    /// Choose `older_than` well above the time a delivery takes from its
    /// record to its queue.
    pub async fn requeue_unprocessed_webhooks(&self, older_than: Duration, limit: u32) -> Result<usize, ServiceError> {
        let records = self.store.unprocessed_webhooks(older_than, limit).await?;
        let mut payloads = Vec::with_capacity(records.len());
        let mut jobs = Vec::with_capacity(records.len());
        for record in records {
            let Some(body) = record.body.as_deref() else {
                tracing::error!(delivery = %record.key, "a delivery without an outcome has no body; left for an operator");
                continue;
            };
            // Verified and parsed once already, at ingestion.
            let event = match LightningEvent::parse(body) {
                Ok(event) => event,
                Err(e) => {
                    self.store.mark_webhook_processed(&record.key, e.outcome()).await?;
                    continue;
                }
            };
            let job = WebhookJob { key: record.key.clone(), event, generation: record.generation };
            jobs.push(self.webhook_job(&job)?);
            payloads.push(job);
        }
        if jobs.is_empty() {
            return Ok(0);
        }
        let queued = self.webhooks.enqueue_bulk(jobs).await?;
        let added = queued.iter().filter(|e| matches!(e, Enqueued::Added)).count();
        if added > 0 {
            tracing::warn!(
                added,
                "queued again webhook deliveries recorded without an outcome (a queue lost their jobs)"
            );
        }
        for (job, queued) in payloads.iter().zip(queued) {
            if queued == Enqueued::Duplicate && job_is_lost(&*self.webhooks, &job.job_id()).await? {
                self.webhook_dead(job, "its job left the queue without finishing (dead, trimmed or removed)").await?;
            }
        }
        Ok(added)
    }

    /// Queues again, at most `limit`, the jobs of payouts neither paid nor
    /// dead whose attempt has not changed for `older_than`, oldest first;
    /// returns how many the queue took as new jobs.
    ///
    /// A payout's job is published from the outbox once; a queue that lost it
    /// afterwards would leave its cycle `Completing` for good. Each is queued
    /// as its attempt's current generation's job: one still in the queue
    /// (waiting, delayed, running) has the same id, so the queue absorbs the
    /// copy. One whose id the queue still holds but whose job is dead or gone
    /// (trimmed from the dead letters, removed) will not run: it is settled
    /// as retries exhausted are ([`Tontine::payout_exhausted`]): the node is
    /// asked, a payment it completed is recorded, one still in flight there
    /// is left for the next pass, and the rest is marked dead for an
    /// operator. Choose `older_than` well above the relay's interval.
    pub async fn requeue_open_payouts(&self, older_than: Duration, limit: u32) -> Result<usize, ServiceError> {
        let attempts = self.store.open_payment_attempts(older_than, limit).await?;
        let payloads: Vec<PayoutJob> = attempts.iter().map(PayoutJob::of).collect();
        let jobs = payloads.iter().map(|job| self.payout_job(job)).collect::<Result<Vec<_>, _>>()?;
        if jobs.is_empty() {
            return Ok(0);
        }
        let queued = self.payouts.enqueue_bulk(jobs).await?;
        let added = queued.iter().filter(|e| matches!(e, Enqueued::Added)).count();
        if added > 0 {
            tracing::warn!(added, "queued again payouts neither paid nor dead whose job was not in the queue");
        }
        for (job, queued) in payloads.iter().zip(queued) {
            if queued == Enqueued::Duplicate && job_is_lost(&*self.payouts, &job.job_id()).await? {
                tracing::warn!(payout = %job.key, "an open payout's job is dead or gone from the queue; asking the node");
                self.payout_exhausted(job, "its job left the queue without finishing (dead, trimmed or removed)")
                    .await?;
            }
        }
        Ok(added)
    }
}

/// Whether the job `id`, whose id the queue holds, will never run: dead, or
/// gone (trimmed, removed) while its id is still claimed.
async fn job_is_lost(queue: &dyn Queue, id: &IdempotencyKey) -> Result<bool, ServiceError> {
    Ok(queue.get(id).await?.is_none_or(|job| job.state == JobState::Dead))
}
