//! The store port: a transactional store whose transaction can take a group's
//! exclusive lock.
//!
//! A unit of work is a [`StoreTx`]: take the group's lock
//! ([`StoreTx::lock_group`]), load the group for update, apply a pure rule, save,
//! record payment attempts and outbox rows, and commit as one unit. Dropping a
//! transaction without committing rolls it back.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::group::{Group, Invoice};
use crate::ids::{GroupId, MemberId, PaymentHash};
use crate::keys::IdempotencyKey;
use crate::money::Msat;

/// A recorded contribution (one per payment hash, ever).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contribution {
    /// The payment hash.
    pub payment_hash: PaymentHash,
    /// The group.
    pub group: GroupId,
    /// The cycle it counted for.
    pub cycle: u32,
    /// The member who paid.
    pub member: MemberId,
    /// The amount paid.
    pub amount: Msat,
}

/// Status of a payment attempt: `pending → in_flight → succeeded`, or `failed`
/// (retryable) and `dead` (given up).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    /// Created with the cycle's completion; not sent.
    Pending,
    /// Committed as sent to the node: before paying again, ask the node.
    InFlight,
    /// Paid.
    Succeeded,
    /// The last try failed; will be retried.
    Failed,
    /// Given up; the cycle is `PayoutFailed`.
    Dead,
}

impl AttemptStatus {
    /// The stable name (the database value).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InFlight => "in_flight",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Dead => "dead",
        }
    }

    /// Parses the stable name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::InFlight, Self::Succeeded, Self::Failed, Self::Dead].into_iter().find(|a| a.as_str() == s)
    }
}

/// One payout's attempt record, unique by idempotency key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentAttempt {
    /// `payout:<group>:<cycle>`: UNIQUE.
    pub key: IdempotencyKey,
    /// The group.
    pub group: GroupId,
    /// The cycle.
    pub cycle: u32,
    /// The beneficiary.
    pub beneficiary: MemberId,
    /// The amount to deliver.
    pub amount: Msat,
    /// The fee kept by the platform.
    pub fee: Msat,
    /// Status.
    pub status: AttemptStatus,
    /// Tries sent to the node so far.
    pub attempts: u32,
    /// The last error.
    pub last_error: Option<String>,
    /// The payment hash, once known.
    pub payment_hash: Option<PaymentHash>,
    /// The preimage (hex), once paid.
    pub preimage: Option<String>,
    /// The routing fee, once paid.
    pub routing_fee: Option<Msat>,
}

impl PaymentAttempt {
    /// A pending attempt for a due payout.
    pub fn pending(due: &crate::group::PayoutDue) -> Self {
        Self {
            key: due.key.clone(),
            group: due.group,
            cycle: due.cycle,
            beneficiary: due.beneficiary,
            amount: due.amount,
            fee: due.fee,
            status: AttemptStatus::Pending,
            attempts: 0,
            last_error: None,
            payment_hash: None,
            preimage: None,
            routing_fee: None,
        }
    }
}

/// A message to publish to a queue, written in the same transaction as the
/// state change that requires it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMessage {
    /// Assigned by the store (ascending); 0 before insert.
    pub id: u64,
    /// The target queue's name.
    pub queue: String,
    /// The job id (dedup): the idempotency key.
    pub job_id: IdempotencyKey,
    /// The job payload.
    pub payload: Vec<u8>,
}

/// A verified webhook delivery, to record durably before acknowledging it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// `webhook:<event id or body digest>`: UNIQUE.
    pub key: IdempotencyKey,
    /// The raw body bytes, as verified.
    pub body: Vec<u8>,
}

/// A recorded webhook event and what became of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRecord {
    /// The key.
    pub key: IdempotencyKey,
    /// The raw body.
    pub body: Vec<u8>,
    /// The outcome once processed (`settled`, `replay`, `unknown_invoice`, `wrong_amount`, …).
    pub outcome: Option<String>,
}

/// Errors of the store port.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A unique key is taken (by constraint name: group id, payment hash, …).
    #[error("duplicate: {0}")]
    Duplicate(&'static str),
    /// A row breaks a CHECK rule.
    #[error("invalid data: {0}")]
    Invalid(String),
    /// The row to update does not exist.
    #[error("not found")]
    NotFound,
    /// Waiting for a lock took too long; retry.
    #[error("lock timeout")]
    LockTimeout,
    /// The connection or database failed (the transaction is rolled back); retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A stored row does not make a valid domain value.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether retrying the whole unit of work may succeed.
    pub const fn is_retryable(&self) -> bool {
        matches!(self, Self::LockTimeout | Self::Unavailable(_))
    }
}

/// The transactional store.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Begins a unit of work.
    ///
    /// # Errors
    /// MUST return `Unavailable` when no connection can be had.
    async fn begin(&self) -> Result<Box<dyn StoreTx>, StoreError>;

    /// Reads a group outside any transaction (no lock).
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached.
    async fn group(&self, id: GroupId) -> Result<Option<Group>, StoreError>;

    /// The payment attempts of a group, by cycle.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached.
    async fn payment_attempts(&self, group: GroupId) -> Result<Vec<PaymentAttempt>, StoreError>;

    /// Records a verified webhook delivery; `true` when new, `false` when the key
    /// was already recorded (a replay; the first body is kept).
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached; the delivery
    /// must then not be acknowledged.
    async fn record_webhook(&self, event: &WebhookEvent) -> Result<bool, StoreError>;

    /// Records many deliveries, in one statement where the backend allows;
    /// per event, in order, `true` when new. A key twice in one batch is new
    /// the first time only.
    ///
    /// # Errors
    /// As [`Store::record_webhook`]; after an error, any of them may be recorded.
    async fn record_webhooks(&self, events: &[WebhookEvent]) -> Result<Vec<bool>, StoreError> {
        let mut new = Vec::with_capacity(events.len());
        for event in events {
            new.push(self.record_webhook(event).await?);
        }
        Ok(new)
    }

    /// A recorded webhook delivery.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached.
    async fn webhook(&self, key: &IdempotencyKey) -> Result<Option<WebhookRecord>, StoreError>;

    /// An invoice by payment hash, read outside any transaction: an invoice
    /// never changes once inserted.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached.
    async fn invoice(&self, hash: &PaymentHash) -> Result<Option<Invoice>, StoreError>;

    /// As [`StoreTx::mark_webhook_processed`], on its own: the first outcome
    /// is kept.
    ///
    /// # Errors
    /// MUST return `NotFound` for a key never recorded, `Unavailable` when the
    /// store cannot be reached.
    async fn mark_webhook_processed(&self, key: &IdempotencyKey, outcome: &str) -> Result<(), StoreError>;

    /// The invoices of these payment hashes that exist, in one statement where
    /// the backend allows, in no particular order. Like [`Store::invoice`],
    /// outside any transaction.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached.
    async fn invoices(&self, hashes: &[PaymentHash]) -> Result<Vec<Invoice>, StoreError> {
        let mut found = Vec::with_capacity(hashes.len());
        for hash in hashes {
            found.extend(self.invoice(hash).await?);
        }
        Ok(found)
    }

    /// As [`Store::mark_webhook_processed`] for many deliveries, in one
    /// statement where the backend allows; per delivery, in order, `false`
    /// when its key was never recorded (nothing is written for it).
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached; after an
    /// error, any of them may be marked.
    async fn mark_webhooks_processed(&self, outcomes: &[(IdempotencyKey, &str)]) -> Result<Vec<bool>, StoreError> {
        let mut found = Vec::with_capacity(outcomes.len());
        for (key, outcome) in outcomes {
            found.push(match self.mark_webhook_processed(key, outcome).await {
                Ok(()) => true,
                Err(StoreError::NotFound) => false,
                Err(e) => return Err(e),
            });
        }
        Ok(found)
    }

    /// Recorded deliveries that have no outcome yet and were recorded at
    /// least `older_than` ago, oldest first, at most `limit`: those whose job a
    /// queue may have lost (a Redis that restarted without its data). The
    /// sweep queues them again; a job still in the queue absorbs the copy.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached.
    async fn unprocessed_webhooks(&self, older_than: Duration, limit: u32) -> Result<Vec<WebhookRecord>, StoreError>;

    /// Payment attempts neither paid nor dead (`pending`, `in_flight`,
    /// `failed`) and unchanged for at least `older_than`, oldest first, at most
    /// `limit`: payouts whose job a queue may have lost, or that were left in
    /// flight at the node when their retries ran out. The sweep queues their
    /// jobs again; a job still in the queue absorbs the copy.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached.
    async fn open_payment_attempts(&self, older_than: Duration, limit: u32) -> Result<Vec<PaymentAttempt>, StoreError>;

    /// Checks the store answers.
    ///
    /// # Errors
    /// MUST return `Unavailable` when it does not.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// One unit of work. Dropped without [`StoreTx::commit`], it rolls back.
#[async_trait]
pub trait StoreTx: Send {
    /// Takes the exclusive lock of a group until the end of the transaction,
    /// waiting for it (never try-and-skip).
    ///
    /// # Errors
    /// MUST return `LockTimeout` when waiting exceeds the store's lock timeout.
    async fn lock_group(&mut self, id: GroupId) -> Result<(), StoreError>;

    /// Inserts a new group (and its members).
    ///
    /// # Errors
    /// MUST return `Duplicate("group")` when the id exists.
    async fn insert_group(&mut self, group: &Group) -> Result<(), StoreError>;

    /// Loads a group for update (with its current cycle's contributions).
    /// Callers take [`StoreTx::lock_group`] first.
    ///
    /// # Errors
    /// MUST return `Corrupt` when stored rows do not make a valid group.
    async fn load_group(&mut self, id: GroupId) -> Result<Option<Group>, StoreError>;

    /// Saves a group's status, cycle and cycle status.
    ///
    /// # Errors
    /// MUST return `NotFound` when the group does not exist.
    async fn save_group(&mut self, group: &Group) -> Result<(), StoreError>;

    /// Records an issued invoice.
    ///
    /// # Errors
    /// MUST return `Duplicate("invoice")` when its payment hash exists.
    async fn insert_invoice(&mut self, invoice: &Invoice) -> Result<(), StoreError>;

    /// The invoice with this payment hash.
    ///
    /// # Errors
    /// MUST return `Unavailable` on a connection failure.
    async fn invoice(&mut self, hash: &PaymentHash) -> Result<Option<Invoice>, StoreError>;

    /// Records a contribution atomically; `false` (and no change) when its
    /// payment hash was already recorded. Never check-then-insert.
    ///
    /// # Errors
    /// MUST return `Duplicate("contribution_member_cycle")` when the member already
    /// contributed to that cycle with another payment hash.
    async fn insert_contribution(&mut self, contribution: &Contribution) -> Result<bool, StoreError>;

    /// The contribution with this payment hash.
    ///
    /// # Errors
    /// MUST return `Unavailable` on a connection failure.
    async fn contribution(&mut self, hash: &PaymentHash) -> Result<Option<Contribution>, StoreError>;

    /// Inserts a payment attempt; `false` (and no change) when its key exists.
    ///
    /// # Errors
    /// MUST return `Invalid` when a field breaks a rule (zero amount).
    async fn insert_payment_attempt(&mut self, attempt: &PaymentAttempt) -> Result<bool, StoreError>;

    /// The payment attempt with this key, locked for update.
    ///
    /// # Errors
    /// MUST return `Corrupt` when the row is not a valid attempt.
    async fn payment_attempt(&mut self, key: &IdempotencyKey) -> Result<Option<PaymentAttempt>, StoreError>;

    /// Saves a payment attempt's status, attempts, error and result.
    ///
    /// # Errors
    /// MUST return `NotFound` when the key does not exist.
    async fn update_payment_attempt(&mut self, attempt: &PaymentAttempt) -> Result<(), StoreError>;

    /// Appends an outbox message.
    ///
    /// # Errors
    /// MUST return `Unavailable` on a connection failure.
    async fn insert_outbox(&mut self, message: &OutboxMessage) -> Result<(), StoreError>;

    /// Claims up to `limit` unsent outbox messages, oldest first, skipping those
    /// another transaction holds (`FOR UPDATE SKIP LOCKED`).
    ///
    /// # Errors
    /// MUST return `Unavailable` on a connection failure.
    async fn claim_outbox(&mut self, limit: u32) -> Result<Vec<OutboxMessage>, StoreError>;

    /// Marks claimed outbox messages as sent.
    ///
    /// # Errors
    /// MUST return `Unavailable` on a connection failure.
    async fn mark_outbox_sent(&mut self, ids: &[u64]) -> Result<(), StoreError>;

    /// Records what became of a webhook delivery; the first outcome recorded
    /// is kept (a second settlement of one delivery is a replay).
    ///
    /// # Errors
    /// MUST return `NotFound` when the key was never recorded.
    async fn mark_webhook_processed(&mut self, key: &IdempotencyKey, outcome: &str) -> Result<(), StoreError>;

    /// Commits the unit of work.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the commit fails; then nothing of it is visible.
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}
