//! The records the store keeps besides groups and attempts: contributions,
//! outbox messages and webhook deliveries.

use serde::{Deserialize, Serialize};

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
    /// The outcome once processed.
    pub outcome: Option<DeliveryOutcome>,
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
