//! The records the store keeps besides groups and attempts: contributions,
//! outbox messages, webhook deliveries and the delivery log.

use serde::{Deserialize, Serialize};

use crate::domain::delivery::BodyDigest;
use crate::domain::ids::{GroupId, MemberId, PaymentHash};
use crate::domain::keys::IdempotencyKey;
use crate::domain::ledger::LedgerEntry;
use crate::domain::money::Msat;
use crate::domain::outcome::DeliveryOutcome;

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
///
/// Built once with [`WebhookEvent::new`], which takes the body's digest (on
/// the request's own task, not in the batch that records it); its parts are
/// read-only so that the digest always is the body's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookEvent {
    key: IdempotencyKey,
    body: Vec<u8>,
    digest: BodyDigest,
    payment_hash: Option<PaymentHash>,
}

impl WebhookEvent {
    /// A delivery of `body` under `key`, naming no payment hash.
    pub fn new(key: IdempotencyKey, body: impl Into<Vec<u8>>) -> Self {
        let body = body.into();
        Self { key, digest: BodyDigest::of(&body), body, payment_hash: None }
    }

    /// The same delivery, naming the payment hash of its event (kept for the
    /// delivery log).
    #[must_use]
    pub const fn with_payment_hash(mut self, hash: PaymentHash) -> Self {
        self.payment_hash = Some(hash);
        self
    }

    /// `webhook:<event id or body digest>`: UNIQUE.
    pub const fn key(&self) -> &IdempotencyKey {
        &self.key
    }

    /// The raw body bytes, as verified.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The digest of its body, which tells a replay from a conflict.
    pub const fn digest(&self) -> &BodyDigest {
        &self.digest
    }

    /// The payment hash its event names.
    pub const fn payment_hash(&self) -> Option<PaymentHash> {
        self.payment_hash
    }
}

/// What recording a delivery found ([`WebhookLog::record_webhook`](super::WebhookLog::record_webhook)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "recorded")]
pub enum Recorded {
    /// A new key: recorded, without an outcome, generation 0.
    New,
    /// The key was recorded before with the same body: nothing was written.
    /// The record as it stands.
    Replay {
        /// Its outcome, if processed (`Dead`: its job died).
        outcome: Option<DeliveryOutcome>,
        /// Its generation.
        generation: u32,
    },
    /// The key was recorded before with another body: the first record is
    /// unchanged; the new body is kept as a conflict of it (counted once per
    /// distinct body) and is never acted on.
    Conflict,
}

/// A recorded webhook event and what became of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRecord {
    /// The key.
    pub key: IdempotencyKey,
    /// The raw body; `None` once retention dropped it (the record stays).
    pub body: Option<Vec<u8>>,
    /// The outcome once processed.
    pub outcome: Option<DeliveryOutcome>,
    /// 0, then one more at each reopening (a provider's redelivery of a dead
    /// delivery, an operator's replay): the generation of the job that runs it.
    pub generation: u32,
}

/// Which deliveries the delivery log lists, by outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeFilter {
    /// Those without an outcome yet.
    Pending,
    /// Those with this outcome.
    Is(DeliveryOutcome),
}

/// A query of the delivery log: every condition given must hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryFilter {
    /// By outcome.
    pub outcome: Option<OutcomeFilter>,
    /// Received at or after this time (unix ms).
    pub since_ms: Option<u64>,
    /// Naming this payment hash.
    pub payment_hash: Option<PaymentHash>,
    /// After this position (a page's [`DeliveryPage::next`]; 0: from the start).
    pub after: u64,
    /// At most this many.
    pub limit: u32,
}

impl DeliveryFilter {
    /// Every delivery, from the start, at most `limit`.
    pub const fn all(limit: u32) -> Self {
        Self { outcome: None, since_ms: None, payment_hash: None, after: 0, limit }
    }
}

/// One line of the delivery log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Its position in the log (ascending in the order recorded).
    pub position: u64,
    /// The key.
    pub key: IdempotencyKey,
    /// The outcome, once processed.
    pub outcome: Option<DeliveryOutcome>,
    /// Its generation (see [`WebhookRecord::generation`]).
    pub generation: u32,
    /// The payment hash its event names.
    pub payment_hash: Option<PaymentHash>,
    /// When it was first received (unix ms).
    pub received_at_ms: u64,
    /// Whether its raw body is still kept (retention drops it).
    pub body_kept: bool,
    /// Deliveries of its key with another body (each distinct body once).
    pub conflicts: u32,
}

/// A page of the delivery log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryPage {
    /// The deliveries, in the order recorded.
    pub deliveries: Vec<Delivery>,
    /// The position of the last one: pass it as `after` for the next page
    /// (unchanged when the page is empty).
    pub next: u64,
}

/// A page of ledger entries across groups.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerPage {
    /// The entries, in the order they were recorded.
    pub entries: Vec<LedgerEntry>,
    /// The position after the last entry: pass it as `after` for the next
    /// page (unchanged when the page is empty).
    pub next: u64,
}
