//! Webhook ingestion and settlement of contributions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::domain::group::{ContributionOutcome, Invoice, InvoiceState, Settlement};
use crate::domain::ids::PaymentHash;
use crate::domain::keys::IdempotencyKey;
use crate::domain::ledger::{LedgerEntry, LedgerReason, settlement_key};
use crate::domain::outcome::DeliveryOutcome;
use crate::ports::{BackendError, Backoff, JobOptions, NodeInvoiceState, StoreError, StoreTx, WebhookEvent};

/// Options of a webhook job. A contribution is money: its job outlives a long
/// outage of the database (25 attempts, backoff from 0.5 s capped at 30 s with
/// jitter: about ten minutes) before it reaches the dead letters, where the
/// recorded event still waits for an operator's retry.
pub const WEBHOOK_JOB_OPTIONS: JobOptions = JobOptions {
    priority: 0,
    delay: Duration::ZERO,
    max_attempts: 25,
    backoff: Backoff { base: Duration::from_millis(500), max: Duration::from_secs(30), jitter: true },
};

use super::event::{LightningEvent, WebhookJob};
use super::{ServiceError, Tontine};

/// What ingestion did with a verified delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ingested {
    /// New: recorded and queued.
    Accepted,
    /// Seen before with the same body: nothing new was recorded (queued
    /// again if not yet processed).
    Replay,
    /// Seen before with the same body, and its job had died: reopened as
    /// this generation and queued again.
    Reopened(u32),
    /// Seen before with another body: one event id cannot mean two things.
    /// The body is kept as a conflict of the first delivery, for an
    /// operator, and not acted on.
    Conflict,
}

/// What settling an event did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettleOutcome {
    /// A contribution was recorded.
    Recorded,
    /// A contribution was recorded and completed its cycle: the payout is queued.
    CycleComplete(IdempotencyKey),
    /// The payment hash was recorded before: no effect.
    Replay,
    /// Not a `settled` event: recorded, no effect.
    IgnoredStatus,
    /// No invoice has this payment hash: recorded for an operator.
    UnknownInvoice,
    /// Not counted as a contribution: the whole amount is on the member's
    /// balance, for this reason.
    Credited(LedgerReason),
    /// An invoice of ours that fits no group (a corrupt store): recorded for an operator.
    Rejected(DeliveryOutcome),
}

impl SettleOutcome {
    /// The outcome recorded with the webhook delivery.
    pub const fn outcome(&self) -> DeliveryOutcome {
        match self {
            Self::Recorded => DeliveryOutcome::Recorded,
            Self::CycleComplete(_) => DeliveryOutcome::CycleComplete,
            Self::Replay => DeliveryOutcome::Replay,
            Self::IgnoredStatus => DeliveryOutcome::IgnoredStatus,
            Self::UnknownInvoice => DeliveryOutcome::UnknownInvoice,
            Self::Credited(reason) => DeliveryOutcome::credited(*reason),
            Self::Rejected(outcome) => *outcome,
        }
    }

    /// The outcome's stable name.
    pub const fn as_str(&self) -> &'static str {
        self.outcome().as_str()
    }
}

impl Tontine {
    /// Records a verified delivery durably, then queues it. A delivery is only
    /// acknowledged (`Ok`) once it is durable; a replay has no second effect;
    /// a redelivery of a dead delivery runs it again as a new generation; a
    /// delivery of a recorded key with another body is a conflict.
    pub async fn ingest_webhook(
        &self,
        key: IdempotencyKey,
        body: &[u8],
        event: LightningEvent,
    ) -> Result<Ingested, ServiceError> {
        let record = WebhookEvent::new(key.clone(), body).with_payment_hash(event.payment_hash);
        let job = WebhookJob::new(key, event);
        let payload =
            serde_json::to_vec(&job).map_err(|e| ServiceError::InvalidPayload(BackendError::from_source(e)))?;
        let options = self.webhook_options;
        if let Some(batcher) = &self.ingest {
            return batcher.ingest(&self.intake, &self.webhook_producer, options, (record, job, payload)).await;
        }
        let mut answers =
            super::ingest::ingest_all(&*self.intake, &*self.webhook_producer, options, vec![(record, job, payload)])
                .await;
        answers.pop().unwrap_or_else(|| unreachable!("one answer per delivery"))
    }

    /// Settles one queued webhook event. A settled payment of one of our
    /// invoices is recorded in one transaction under the group's lock; any
    /// other event only has its outcome recorded, in one statement (an
    /// invoice never changes once inserted, so it is read before the
    /// transaction).
    pub async fn settle(&self, job: &WebhookJob) -> Result<SettleOutcome, ServiceError> {
        let event = &job.event;
        let invoice = if event.is_settled() { self.store.invoice(&event.payment_hash).await? } else { None };
        let Some(invoice) = invoice else {
            let outcome = unmatched(event);
            self.store.mark_webhook_processed(&job.key, outcome.outcome()).await?;
            return Ok(outcome);
        };
        self.settle_invoice(job, invoice).await
    }

    /// Settles many queued webhook events, as [`Tontine::settle`] settles
    /// each; one result per job, in order. The invoices are read in one
    /// statement and the outcomes of the events that are not payments of ours
    /// are written in one more; each payment of ours still gets its own
    /// transaction, in turn. A failure of a shared statement fails the jobs
    /// that needed it, with its error.
    pub async fn settle_batch(&self, jobs: &[WebhookJob]) -> Vec<Result<SettleOutcome, ServiceError>> {
        if let [job] = jobs {
            return vec![self.settle(job).await];
        }
        let hashes: Vec<PaymentHash> =
            jobs.iter().filter(|j| j.event.is_settled()).map(|j| j.event.payment_hash).collect();
        let invoices: HashMap<PaymentHash, Invoice> = match self.store.invoices(&hashes).await {
            Ok(found) => found.into_iter().map(|i| (i.payment_hash, i)).collect(),
            Err(e) => return jobs.iter().map(|_| Err(ServiceError::Store(e.clone()))).collect(),
        };
        let mut results: Vec<Option<Result<SettleOutcome, ServiceError>>> = vec![None; jobs.len()];
        let mut unmatched_jobs = Vec::new();
        for (i, job) in jobs.iter().enumerate() {
            let invoice = if job.event.is_settled() { invoices.get(&job.event.payment_hash) } else { None };
            match invoice {
                Some(invoice) => results[i] = Some(self.settle_invoice(job, invoice.clone()).await),
                None => unmatched_jobs.push((i, unmatched(&job.event))),
            }
        }
        let marks: Vec<(IdempotencyKey, DeliveryOutcome)> =
            unmatched_jobs.iter().map(|(i, outcome)| (jobs[*i].key.clone(), outcome.outcome())).collect();
        match self.store.mark_webhooks_processed(&marks).await {
            Ok(found) => {
                for ((i, outcome), found) in unmatched_jobs.into_iter().zip(found) {
                    results[i] = Some(if found { Ok(outcome) } else { Err(StoreError::NotFound.into()) });
                }
            }
            Err(e) => {
                for (i, _) in unmatched_jobs {
                    results[i] = Some(Err(ServiceError::Store(e.clone())));
                }
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| Err(ServiceError::Store(StoreError::Unavailable("no outcome written".into()))))
            })
            .collect()
    }

    /// Records a settled payment of one of our invoices, in one transaction.
    /// With confirm-with-node, a webhook's word is checked with the node
    /// first, and the amount is the node's.
    async fn settle_invoice(&self, job: &WebhookJob, invoice: Invoice) -> Result<SettleOutcome, ServiceError> {
        let confirmed;
        let event = if self.confirm_with_node && !super::stream::is_from_node(&job.key) {
            match self.payments.invoice(&job.event.payment_hash).await? {
                Some(found) if found.state == NodeInvoiceState::Settled => {
                    confirmed = LightningEvent { amount_msat: found.amount_paid, ..job.event.clone() };
                    &confirmed
                }
                Some(found) if matches!(found.state, NodeInvoiceState::Open | NodeInvoiceState::Accepted) => {
                    return Err(ServiceError::RetryLater("the node does not report the invoice settled yet".into()));
                }
                _ => {
                    tracing::warn!(payment_hash = %job.event.payment_hash, "a webhook says settled, the node says the invoice is cancelled or unknown: not credited");
                    let outcome = SettleOutcome::IgnoredStatus;
                    self.store.mark_webhook_processed(&job.key, outcome.outcome()).await?;
                    return Ok(outcome);
                }
            }
        } else {
            &job.event
        };
        let mut tx = self.store.begin().await?;
        let outcome = settle_in(&mut *tx, event, invoice, self.events_on()).await?;
        tx.mark_webhook_processed(&job.key, outcome.outcome()).await?;
        tx.commit().await?;
        let told = self.events_on() && matches!(outcome, SettleOutcome::Recorded);
        if let SettleOutcome::CycleComplete(key) = &outcome {
            tracing::info!(payout = %key, "cycle complete, payout queued");
        }
        if told || matches!(outcome, SettleOutcome::CycleComplete(_)) {
            // Publish now rather than at the relay's next tick; a failure here is
            // harmless, the relay publishes the committed row later.
            if let Err(e) = self.relay_outbox(64).await {
                tracing::warn!(error = %e, "outbox relay after settlement failed; the relay loop retries");
            }
        }
        Ok(outcome)
    }
}

/// The outcome of an event that is not a settled payment of one of our
/// invoices (warned about, at most once per period, when it is settled).
fn unmatched(event: &LightningEvent) -> SettleOutcome {
    if !event.is_settled() {
        return SettleOutcome::IgnoredStatus;
    }
    if let Some(held_back) = UNKNOWN_INVOICE_WARNING.allow() {
        tracing::warn!(payment_hash = %event.payment_hash, held_back, "settled event for an unknown invoice (at most one such warning per 10 s; held_back counts the others)");
    } else {
        tracing::debug!(payment_hash = %event.payment_hash, "settled event for an unknown invoice");
    }
    SettleOutcome::UnknownInvoice
}

async fn settle_in(
    tx: &mut dyn StoreTx,
    event: &LightningEvent,
    invoice: Invoice,
    events: bool,
) -> Result<SettleOutcome, ServiceError> {
    let hash = event.payment_hash;
    tx.lock_group(invoice.group).await?;
    if tx.contribution(&hash).await?.is_some() || tx.ledger_entry(&settlement_key(&hash)).await?.is_some() {
        return Ok(SettleOutcome::Replay);
    }
    let mut group = tx.load_group(invoice.group).await?.ok_or(ServiceError::NotFound("group"))?;
    let settlement = match group.settle(&invoice, event.amount_msat) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(payment_hash = %hash, code = e.code(), "an invoice of ours that fits no group: its payment is left unsettled");
            return Ok(SettleOutcome::Rejected(DeliveryOutcome::from(&e)));
        }
    };
    tx.set_invoice_state(&hash, InvoiceState::Settled).await?;
    match settlement {
        Settlement::Credit { reason, amount } => {
            let entry = LedgerEntry::settlement(invoice.group, invoice.member, group.cycle(), hash, reason, amount);
            tx.insert_ledger_entry(&entry).await?;
            tracing::warn!(payment_hash = %hash, reason = reason.as_str(), amount = %amount, "payment credited to the member's balance");
            // A late payment may cover the cycle the member owes now.
            let due = super::money::apply_balances(tx, &mut group, &[invoice.member], events).await?;
            tx.save_group(&group).await?;
            Ok(match due {
                Some(due) => SettleOutcome::CycleComplete(due.key),
                None => SettleOutcome::Credited(reason),
            })
        }
        Settlement::Contribution { outcome, overpaid } => {
            if !super::money::write_contribution(tx, &group, invoice.member, hash, events).await? {
                return Ok(SettleOutcome::Replay);
            }
            if !overpaid.is_zero() {
                let entry = LedgerEntry::settlement(
                    invoice.group,
                    invoice.member,
                    group.cycle(),
                    hash,
                    LedgerReason::Overpaid,
                    overpaid,
                );
                tx.insert_ledger_entry(&entry).await?;
            }
            tx.save_group(&group).await?;
            match outcome {
                ContributionOutcome::CycleComplete(due) => {
                    super::money::cycle_completed(tx, &due, events).await?;
                    Ok(SettleOutcome::CycleComplete(due.key))
                }
                ContributionOutcome::Recorded => Ok(SettleOutcome::Recorded),
                ContributionOutcome::Replay => Ok(SettleOutcome::Replay),
            }
        }
    }
}

/// Unknown-invoice warnings: a node shared with other applications sends
/// genuine events for invoices that are not ours, possibly many. One warning
/// per 10 s says how many were held back; each event's outcome stays in its
/// webhook record.
static UNKNOWN_INVOICE_WARNING: Throttle = Throttle::new(10_000);

/// At most one message per period, counting the ones held back.
struct Throttle {
    every_ms: u64,
    next_at_ms: AtomicU64,
    held_back: AtomicU64,
}

impl Throttle {
    const fn new(every_ms: u64) -> Self {
        Self { every_ms, next_at_ms: AtomicU64::new(0), held_back: AtomicU64::new(0) }
    }

    /// `Some(messages held back since the last one)` when one may be written now.
    fn allow(&self) -> Option<u64> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
        let next = self.next_at_ms.load(Ordering::Relaxed);
        if now >= next
            && self.next_at_ms.compare_exchange(next, now + self.every_ms, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            return Some(self.held_back.swap(0, Ordering::Relaxed));
        }
        self.held_back.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_throttle_lets_one_message_through_per_period_and_counts_the_rest() {
        let t = Throttle::new(3_600_000);
        assert_eq!(t.allow(), Some(0));
        assert_eq!((t.allow(), t.allow(), t.allow()), (None, None, None));
        // The period is over.
        t.next_at_ms.store(0, Ordering::Relaxed);
        assert_eq!(t.allow(), Some(3));
        assert_eq!(t.allow(), None);
    }
}
