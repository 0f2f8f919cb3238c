//! Dead work, recovered from the store: the queue is a way to run work, not
//! its record.
//!
//! - [`Tontine::retry_payout`]: an operator retries a dead payout by its
//!   attempt. The attempt is reopened in a new generation and the new
//!   generation's job is written to the outbox in the same transaction, so
//!   it reaches the queue whatever the queue kept, trimmed or still holds in
//!   its dedup window (`r<n>:<key>` is a new job id).
//! - [`Tontine::replay_webhook`]: an operator replays a delivery by its
//!   record, as a new generation (a provider's redelivery of a dead delivery
//!   does the same, in ingestion).
//! - [`Tontine::webhook_dead`]: the webhook pool's dead-letter hook: the
//!   delivery's record says its job died.
//! - [`Tontine::drop_expired_webhook_bodies`]: retention of raw bodies.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::attempt::{AttemptKind, AttemptStatus};
use crate::domain::group::CycleStatus;
use crate::domain::keys::IdempotencyKey;
use crate::ports::{BackendError, NewJob, OutboxMessage};

use super::event::{LightningEvent, PayoutJob, WebhookJob};
use super::{PAYOUT_QUEUE, ServiceError, Tontine};

/// What an operator's retry of a payout did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum PayoutRetry {
    /// The dead payout was reopened as this generation; its job is queued
    /// (through the outbox).
    Retrying {
        /// The attempt's new generation.
        generation: u32,
    },
    /// Retried before and not dead since (the same retry asked again, or it
    /// is paid): nothing changed.
    AlreadyRetried {
        /// The attempt's generation.
        generation: u32,
        /// The attempt's status.
        attempt_status: AttemptStatus,
    },
}

/// What an operator's replay of a webhook delivery did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum WebhookReplay {
    /// The processed delivery (dead or not) was reopened as this generation;
    /// its job is queued.
    Replaying {
        /// The delivery's new generation.
        generation: u32,
    },
    /// It has no outcome yet (its job, or an earlier replay's, is on its
    /// way): that job was queued again in case the queue lost it (the queue
    /// absorbs the copy of one it holds); nothing else changed.
    Pending {
        /// The delivery's generation.
        generation: u32,
    },
}

impl Tontine {
    /// An operator retries a dead payout by its attempt's key, whatever the
    /// queue kept of its job.
    ///
    /// A dead attempt is reopened (`failed`, generation + 1: the next run
    /// asks the node how the last try ended before paying), its cycle goes
    /// from `PayoutFailed` back to `Completing`, and the new generation's
    /// job is written to the outbox, all in one transaction under the
    /// group's lock; the outbox relay queues it (at once, and again until
    /// it is sent, so a crash after the commit loses nothing).
    ///
    /// Idempotent: asked again before the payout dies again, it changes
    /// nothing and says so ([`PayoutRetry::AlreadyRetried`]).
    ///
    /// # Errors
    /// `NotFound` for an unknown key; `NotDead` for a payout that never died
    /// (its own job runs it, or it is paid).
    pub async fn retry_payout(&self, key: &IdempotencyKey) -> Result<PayoutRetry, ServiceError> {
        let found = self.store.payment_attempt(key).await?.ok_or(ServiceError::NotFound("payment attempt"))?;
        let mut tx = self.store.begin().await?;
        tx.lock_group(found.group).await?;
        let mut attempt = tx.payment_attempt(key).await?.ok_or(ServiceError::NotFound("payment attempt"))?;
        if attempt.status() != AttemptStatus::Dead {
            return if attempt.generation() > 0 {
                Ok(PayoutRetry::AlreadyRetried { generation: attempt.generation(), attempt_status: attempt.status() })
            } else {
                Err(ServiceError::NotDead(attempt.status()))
            };
        }
        let generation = attempt.reopen()?;
        tx.update_payment_attempt(&attempt).await?;
        let mut group = tx.load_group(attempt.group).await?.ok_or(ServiceError::NotFound("group"))?;
        if attempt.kind == AttemptKind::Payout
            && group.cycle() == attempt.cycle
            && group.cycle_status() == CycleStatus::PayoutFailed
        {
            group.retry_payout()?;
            tx.save_group(&group).await?;
        }
        let job = PayoutJob::of(&attempt);
        let payload =
            serde_json::to_vec(&job).map_err(|e| ServiceError::InvalidPayload(BackendError::from_source(e)))?;
        tx.insert_outbox(&OutboxMessage { id: 0, queue: PAYOUT_QUEUE.into(), job_id: job.job_id(), payload }).await?;
        tx.commit().await?;
        tracing::warn!(payout = %key, generation, "an operator retried a dead payout");
        // Publish now rather than at the relay's next tick; a failure here is
        // harmless, the relay publishes the committed row later.
        if let Err(e) = self.relay_outbox(64).await {
            tracing::warn!(error = %e, "outbox relay after a payout retry failed; the relay loop retries");
        }
        Ok(PayoutRetry::Retrying { generation })
    }

    /// An operator replays a webhook delivery by its record, whatever the
    /// queue kept of its job.
    ///
    /// A processed delivery (dead or not) is reopened as a new generation
    /// (its outcome cleared) and the new generation's job is queued;
    /// settlement is idempotent, so replaying a delivery that did settle has
    /// no second effect on money. A delivery without an outcome is not
    /// reopened: its current job is queued again ([`WebhookReplay::Pending`]),
    /// so asking twice in a row reopens once. Should the enqueue fail after a
    /// reopening, the delivery has no outcome: asking again, or the sweep,
    /// queues its job.
    ///
    /// # Errors
    /// `NotFound` for an unknown key, `BodyExpired` when retention dropped
    /// its body.
    pub async fn replay_webhook(&self, key: &IdempotencyKey) -> Result<WebhookReplay, ServiceError> {
        for _ in 0..3 {
            let record = self.store.webhook(key).await?.ok_or(ServiceError::NotFound("webhook delivery"))?;
            let body = record.body.as_deref().ok_or(ServiceError::BodyExpired)?;
            // Verified and parsed once already, at ingestion.
            let event =
                LightningEvent::parse(body).map_err(|e| ServiceError::InvalidPayload(BackendError::from_source(e)))?;
            let answer = if record.outcome.is_none() {
                WebhookReplay::Pending { generation: record.generation }
            } else {
                match self.store.reopen_webhook(key, record.generation).await? {
                    Some(generation) => WebhookReplay::Replaying { generation },
                    // Reopened by someone else meanwhile, or its body was
                    // just dropped: look again.
                    None => continue,
                }
            };
            let generation = match answer {
                WebhookReplay::Replaying { generation } | WebhookReplay::Pending { generation } => generation,
            };
            let job = WebhookJob { key: key.clone(), event, generation };
            self.webhooks.enqueue(self.webhook_job(&job)?).await?;
            if let WebhookReplay::Replaying { generation } = answer {
                tracing::warn!(delivery = %key, generation, "an operator replayed a webhook delivery");
            }
            return Ok(answer);
        }
        Err(ServiceError::RetryLater("the delivery keeps changing under the replay".into()))
    }

    /// The webhook pool's dead-letter hook: the delivery's job (of
    /// `job.generation`) died, so its record gets the outcome `dead`, unless
    /// it settled meanwhile or was reopened since. A provider's redelivery or
    /// an operator's replay runs it again.
    pub async fn webhook_dead(&self, job: &WebhookJob, error: &str) -> Result<(), ServiceError> {
        if self.store.mark_webhook_dead(&job.key, job.generation).await? {
            tracing::error!(
                delivery = %job.key,
                generation = job.generation,
                error,
                "webhook delivery dead: its job ran out of attempts; a redelivery or an operator's replay runs it again"
            );
        }
        Ok(())
    }

    /// Retention: drops the raw bodies of deliveries processed at least
    /// `older_than` ago, in batches of `batch`, at most `max_batches` of
    /// them; returns how many. The records and their outcomes stay; dead and
    /// unprocessed deliveries keep their bodies.
    pub async fn drop_expired_webhook_bodies(
        &self,
        older_than: Duration,
        batch: u32,
        max_batches: u32,
    ) -> Result<u64, ServiceError> {
        let mut dropped = 0;
        for _ in 0..max_batches {
            let n = self.store.drop_webhook_bodies(older_than, batch).await?;
            dropped += n;
            if n < u64::from(batch) {
                break;
            }
        }
        if dropped > 0 {
            tracing::info!(dropped, "dropped the raw bodies of webhook deliveries past retention");
        }
        Ok(dropped)
    }

    /// A webhook job as the queue takes it: its generation's id, the
    /// webhook options.
    pub(super) fn webhook_job(&self, job: &WebhookJob) -> Result<NewJob, ServiceError> {
        let payload =
            serde_json::to_vec(job).map_err(|e| ServiceError::InvalidPayload(BackendError::from_source(e)))?;
        Ok(NewJob { id: job.job_id(), payload, options: self.webhook_options })
    }

    /// A payout job as the queue takes it: its generation's id, the payout
    /// options.
    pub(super) fn payout_job(&self, job: &PayoutJob) -> Result<NewJob, ServiceError> {
        let payload =
            serde_json::to_vec(job).map_err(|e| ServiceError::InvalidPayload(BackendError::from_source(e)))?;
        Ok(NewJob { id: job.job_id(), payload, options: self.payout_options })
    }
}
