//! The store port: the system of record, as small traits by concern.
//!
//! | trait | what it holds | used by |
//! | --- | --- | --- |
//! | [`Store`] | units of work ([`Store::begin`]) and health | every writing service |
//! | [`GroupReads`] | groups, invoices and payment attempts, read outside a transaction | the group API, settlement's invoice look-up, the payout sweep, an operator's payout retry |
//! | [`NodeCursors`] | where the node's settle stream stopped | the settle-stream task |
//! | [`AuditLog`] | every operator action, who took it and what came of it | the admin routes and the console |
//! | [`WebhookLog`] | recorded webhook deliveries, their outcomes and generations, conflicts, the delivery log, body retention | ingestion, settlement, the delivery sweep, the dead-letter hook, an operator's replay, retention |
//! | [`StoreTx`] | one unit of work: [`GroupTx`] (lock, groups, invoices, contributions), [`AttemptTx`] (payment attempts), [`LedgerTx`] (members' balances), [`OutboxTx`] (the outbox), [`WebhookTx`] (outcomes), [`DestinationTx`] (where payouts go) | settlement, payouts, the relay, destinations |
//!
//! A unit of work takes the group's lock ([`GroupTx::lock_group`]), loads the
//! group for update, applies a pure rule, saves, records payment attempts and
//! outbox rows, and commits as one unit. Dropping a transaction without
//! committing rolls it back. An adapter implements every trait here; the
//! conformance suite (`conformance::store`) checks each rule.

mod audit;
mod error;
mod records;

use std::time::Duration;

use async_trait::async_trait;

pub use audit::{
    AuditAction, AuditEntry, AuditLog, AuditOutcome, AuditPage, AuditRole, MAX_AUDIT_DETAIL, MAX_AUDIT_TARGET,
    NewAuditEntry, audit_page, check_audit_entry,
};
pub use error::{StoreError, Unique};
pub use records::{
    Contribution, Delivery, DeliveryFilter, DeliveryPage, LedgerPage, OutboxMessage, OutcomeFilter, Recorded,
    WebhookEvent, WebhookRecord,
};

use crate::domain::attempt::PaymentAttempt;
use crate::domain::group::{Group, Invoice, InvoiceState};
use crate::domain::ids::{GroupId, MemberId, PaymentHash};
use crate::domain::keys::IdempotencyKey;
use crate::domain::ledger::{Balance, LedgerEntry, LedgerReason};
use crate::domain::outcome::DeliveryOutcome;
use crate::domain::payout::{Bolt11, PayoutDestination};

/// The transactional store: units of work, reads, the webhook log and the
/// audit log.
#[async_trait]
pub trait Store: GroupReads + WebhookLog + NodeCursors + AuditLog {
    /// Begins a unit of work.
    ///
    /// # Errors
    /// MUST return `Unavailable` when no connection can be had.
    async fn begin(&self) -> Result<Box<dyn StoreTx>, StoreError>;

    /// Checks the store answers.
    ///
    /// # Errors
    /// MUST return `Unavailable` when it does not.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Reads outside any transaction (no lock).
#[async_trait]
pub trait GroupReads: Send + Sync + 'static {
    /// Reads a group.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached.
    async fn group(&self, id: GroupId) -> Result<Option<Group>, StoreError>;

    /// The ids of up to `limit` active groups with a schedule whose current
    /// cycle is collecting, in id order after `after` (the timers' sweep).
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached.
    async fn scheduled_groups(&self, after: Option<GroupId>, limit: u32) -> Result<Vec<GroupId>, StoreError>;

    /// The payment attempts of a group, by cycle.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached.
    async fn payment_attempts(&self, group: GroupId) -> Result<Vec<PaymentAttempt>, StoreError>;

    /// An invoice by payment hash. Its group, cycle, member and amount never
    /// change once inserted (its state does), so settlement reads it before
    /// its transaction.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached.
    async fn invoice(&self, hash: &PaymentHash) -> Result<Option<Invoice>, StoreError>;

    /// The invoices of these payment hashes that exist, in one statement where
    /// the backend allows, in no particular order.
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

    /// The open invoice of a member for a cycle (expired or not).
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached.
    async fn open_invoice(&self, group: GroupId, cycle: u32, member: MemberId) -> Result<Option<Invoice>, StoreError>;

    /// Every contribution recorded for a group (of every cycle), oldest first.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached.
    async fn contributions(&self, group: GroupId) -> Result<Vec<Contribution>, StoreError>;

    /// A group's ledger entries, in the order they were recorded.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached.
    async fn ledger(&self, group: GroupId) -> Result<Vec<LedgerEntry>, StoreError>;

    /// The members' balances above zero, of every group, by group then
    /// member, after `after` (a (group, member) pair, the last of the
    /// previous page: a cursor), at most `limit`: money held for members, not
    /// yet applied to a contribution nor released.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached.
    async fn unapplied_balances(
        &self,
        after: Option<(GroupId, MemberId)>,
        limit: u32,
    ) -> Result<Vec<Balance>, StoreError>;

    /// Ledger entries of every group with one of `reasons`, in the order they
    /// were recorded, after the entry at `after` (a position returned as
    /// [`LedgerPage::next`]), at most `limit`.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached.
    async fn ledger_entries(&self, reasons: &[LedgerReason], after: u64, limit: u32) -> Result<LedgerPage, StoreError>;

    /// The payment attempt with this key (no lock).
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached, `Corrupt`
    /// when the row is not a valid attempt.
    async fn payment_attempt(&self, key: &IdempotencyKey) -> Result<Option<PaymentAttempt>, StoreError>;

    /// A member's standing payout destination.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached.
    async fn payout_destination(&self, member: MemberId) -> Result<Option<PayoutDestination>, StoreError>;

    /// The payment attempts paying `member` (payouts and refunds, of every
    /// group), newest first, at most `limit`: an operator's "what did we pay
    /// this member?", read through an index, never a scan.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached, `Corrupt`
    /// when a row is not a valid attempt.
    async fn member_attempts(&self, member: MemberId, limit: u32) -> Result<Vec<PaymentAttempt>, StoreError>;

    /// The invoices issued to `member` (of every group, in any state), newest
    /// first, at most `limit`, read through an index: with the delivery log's
    /// payment-hash index, the deliveries that paid the member.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached.
    async fn member_invoices(&self, member: MemberId, limit: u32) -> Result<Vec<Invoice>, StoreError>;

    /// Payment attempts neither paid nor dead (`pending`, `in_flight`,
    /// `failed`) and unchanged for at least `older_than`, oldest first, at most
    /// `limit`: payouts whose job a queue may have lost, or that were left in
    /// flight at the node when their retries ran out. The sweep queues their
    /// jobs again; a job still in the queue absorbs the copy.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached.
    async fn open_payment_attempts(&self, older_than: Duration, limit: u32) -> Result<Vec<PaymentAttempt>, StoreError>;
}

/// The log of verified webhook deliveries: recorded before they are
/// acknowledged, then given an outcome.
///
/// The outcome rule, the same in every method that writes one: the first
/// *final* outcome recorded is kept; [`DeliveryOutcome::Dead`] (the job died)
/// is not final, and a real outcome recorded later replaces it.
#[async_trait]
pub trait WebhookLog: Send + Sync + 'static {
    /// Records a verified webhook delivery: [`Recorded::New`] for a new key;
    /// for a key recorded before, [`Recorded::Replay`] with the record's
    /// outcome and generation when the body's digest is the first one's, and
    /// [`Recorded::Conflict`] when it is not (the new body is kept as a
    /// conflict of the record, once per distinct body, and the record's
    /// conflict count grows; the record itself is unchanged). The digest is
    /// kept when retention drops the body, so the comparison still holds.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached; the delivery
    /// must then not be acknowledged.
    async fn record_webhook(&self, event: &WebhookEvent) -> Result<Recorded, StoreError>;

    /// Records many deliveries, in one statement where the backend allows
    /// (one more for those recorded before, one per conflict); per event, in
    /// order, as [`WebhookLog::record_webhook`]. A key twice in one batch is
    /// new the first time, then a replay or a conflict of the first.
    ///
    /// # Errors
    /// As [`WebhookLog::record_webhook`]; after an error, any of them may be recorded.
    async fn record_webhooks(&self, events: &[WebhookEvent]) -> Result<Vec<Recorded>, StoreError> {
        let mut recorded = Vec::with_capacity(events.len());
        for event in events {
            recorded.push(self.record_webhook(event).await?);
        }
        Ok(recorded)
    }

    /// A recorded webhook delivery.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached, `Corrupt`
    /// when its stored outcome is not one of [`DeliveryOutcome`].
    async fn webhook(&self, key: &IdempotencyKey) -> Result<Option<WebhookRecord>, StoreError>;

    /// As [`WebhookTx::mark_webhook_processed`], on its own: the first final
    /// outcome is kept.
    ///
    /// # Errors
    /// MUST return `NotFound` for a key never recorded, `Unavailable` when the
    /// store cannot be reached.
    async fn mark_webhook_processed(&self, key: &IdempotencyKey, outcome: DeliveryOutcome) -> Result<(), StoreError>;

    /// As [`WebhookLog::mark_webhook_processed`] for many deliveries, in one
    /// statement where the backend allows; per delivery, in order, `false`
    /// when its key was never recorded (nothing is written for it).
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached; after an
    /// error, any of them may be marked.
    async fn mark_webhooks_processed(
        &self,
        outcomes: &[(IdempotencyKey, DeliveryOutcome)],
    ) -> Result<Vec<bool>, StoreError> {
        let mut found = Vec::with_capacity(outcomes.len());
        for (key, outcome) in outcomes {
            found.push(match self.mark_webhook_processed(key, *outcome).await {
                Ok(()) => true,
                Err(StoreError::NotFound) => false,
                Err(e) => return Err(e),
            });
        }
        Ok(found)
    }

    /// Records that the job of `generation` of a delivery died in the queue:
    /// outcome [`DeliveryOutcome::Dead`], only while the record has no outcome
    /// and is at that generation (a job of an older generation, or one that
    /// died after its delivery settled, changes nothing). `true` when marked.
    ///
    /// # Errors
    /// MUST return `NotFound` for a key never recorded, `Unavailable` when the
    /// store cannot be reached.
    async fn mark_webhook_dead(&self, key: &IdempotencyKey, generation: u32) -> Result<bool, StoreError>;

    /// Reopens a processed delivery (dead or not) that is at `generation` and
    /// still has its body: the outcome is cleared and the generation becomes
    /// `generation + 1`, which is returned. `None` (and no change) when it has
    /// no outcome, is at another generation (someone reopened it first), or
    /// its body was dropped.
    ///
    /// # Errors
    /// MUST return `NotFound` for a key never recorded, `Unavailable` when the
    /// store cannot be reached.
    async fn reopen_webhook(&self, key: &IdempotencyKey, generation: u32) -> Result<Option<u32>, StoreError>;

    /// Recorded deliveries that have no outcome yet and were recorded at
    /// least `older_than` ago, oldest first, at most `limit`: those whose job a
    /// queue may have lost (a Redis that restarted without its data). The
    /// sweep queues them again; a job still in the queue absorbs the copy.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached.
    async fn unprocessed_webhooks(&self, older_than: Duration, limit: u32) -> Result<Vec<WebhookRecord>, StoreError>;

    /// The delivery log: deliveries matching `filter`, in the order recorded,
    /// after `filter.after`, at most `filter.limit`.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached, `Corrupt`
    /// for a row that is not a valid delivery.
    async fn webhook_deliveries(&self, filter: &DeliveryFilter) -> Result<DeliveryPage, StoreError>;

    /// Retention: drops the raw bodies (and those of their conflicts) of at
    /// most `limit` deliveries processed at least `older_than` ago, oldest
    /// first; returns how many. Deliveries without an outcome or with the
    /// outcome `dead` keep their bodies (work is left to do with them). The
    /// records, digests and outcomes stay.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the store cannot be reached.
    async fn drop_webhook_bodies(&self, older_than: Duration, limit: u32) -> Result<u64, StoreError>;
}

/// One unit of work: every concern's writes, committed as one. Dropped
/// without [`StoreTx::commit`], it rolls back.
#[async_trait]
pub trait StoreTx: GroupTx + AttemptTx + LedgerTx + OutboxTx + WebhookTx + DestinationTx {
    /// Commits the unit of work.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the commit fails; then nothing of it is visible.
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// Groups, their invoices and contributions, under the group's lock.
#[async_trait]
pub trait GroupTx: Send {
    /// Takes the exclusive lock of a group until the end of the transaction,
    /// waiting for it (never try-and-skip).
    ///
    /// # Errors
    /// MUST return `LockTimeout` when waiting exceeds the store's lock timeout.
    async fn lock_group(&mut self, id: GroupId) -> Result<(), StoreError>;

    /// Inserts a new group (and its members).
    ///
    /// # Errors
    /// MUST return `Duplicate(Unique::Group)` when the id exists.
    async fn insert_group(&mut self, group: &Group) -> Result<(), StoreError>;

    /// Loads a group for update (with its current cycle's contributions).
    /// Callers take [`GroupTx::lock_group`] first.
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
    /// MUST return `Duplicate(Unique::Invoice)` when its payment hash exists,
    /// and `Duplicate(Unique::OpenInvoice)` when it is open and an open
    /// invoice of the same group, cycle and member exists (expired or not:
    /// the caller cancels an expired one first). The rule holds across
    /// concurrent transactions, not only under the group's lock.
    async fn insert_invoice(&mut self, invoice: &Invoice) -> Result<(), StoreError>;

    /// The open invoice of a member for a cycle (expired or not).
    ///
    /// # Errors
    /// MUST return `Unavailable` on a connection failure.
    async fn open_invoice(
        &mut self,
        group: GroupId,
        cycle: u32,
        member: MemberId,
    ) -> Result<Option<Invoice>, StoreError>;

    /// Every open invoice of a cycle, oldest first.
    ///
    /// # Errors
    /// MUST return `Unavailable` on a connection failure.
    async fn open_invoices(&mut self, group: GroupId, cycle: u32) -> Result<Vec<Invoice>, StoreError>;

    /// Moves an invoice to `state`.
    ///
    /// # Errors
    /// MUST return `NotFound` when no invoice has this payment hash.
    async fn set_invoice_state(&mut self, hash: &PaymentHash, state: InvoiceState) -> Result<(), StoreError>;

    /// The invoice with this payment hash.
    ///
    /// # Errors
    /// MUST return `Unavailable` on a connection failure.
    async fn invoice(&mut self, hash: &PaymentHash) -> Result<Option<Invoice>, StoreError>;

    /// Records a contribution atomically; `false` (and no change) when its
    /// payment hash was already recorded. Never check-then-insert.
    ///
    /// # Errors
    /// MUST return `Duplicate(Unique::ContributionMemberCycle)` when the
    /// member already contributed to that cycle with another payment hash.
    async fn insert_contribution(&mut self, contribution: &Contribution) -> Result<bool, StoreError>;

    /// The contribution with this payment hash.
    ///
    /// # Errors
    /// MUST return `Unavailable` on a connection failure.
    async fn contribution(&mut self, hash: &PaymentHash) -> Result<Option<Contribution>, StoreError>;
}

/// Members' balances: the ledger entries of money that is not a contribution.
#[async_trait]
pub trait LedgerTx: Send {
    /// Appends an entry; `false` (and no change) when its key exists.
    ///
    /// # Errors
    /// MUST return `Invalid` for a zero amount.
    async fn insert_ledger_entry(&mut self, entry: &LedgerEntry) -> Result<bool, StoreError>;

    /// The entry with this key.
    ///
    /// # Errors
    /// MUST return `Unavailable` on a connection failure.
    async fn ledger_entry(&mut self, key: &IdempotencyKey) -> Result<Option<LedgerEntry>, StoreError>;

    /// A group's entries, in the order they were recorded (its members'
    /// balances follow from them: [`crate::domain::ledger::balances`]).
    ///
    /// # Errors
    /// MUST return `Unavailable` on a connection failure.
    async fn group_ledger(&mut self, group: GroupId) -> Result<Vec<LedgerEntry>, StoreError>;
}

/// Payment attempts: one per payout, unique by key.
#[async_trait]
pub trait AttemptTx: Send {
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
}

/// The transactional outbox: messages written with the change that requires
/// them, relayed to their queue afterwards.
#[async_trait]
pub trait OutboxTx: Send {
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
}

/// A delivery's outcome, written with the change it caused.
#[async_trait]
pub trait WebhookTx: Send {
    /// Records what became of a webhook delivery; the first final outcome
    /// recorded is kept (a second settlement of one delivery is a replay),
    /// and replaces [`DeliveryOutcome::Dead`].
    ///
    /// # Errors
    /// MUST return `NotFound` when the key was never recorded.
    async fn mark_webhook_processed(
        &mut self,
        key: &IdempotencyKey,
        outcome: DeliveryOutcome,
    ) -> Result<(), StoreError>;
}

/// Where payouts go: members' standing destinations and the invoices
/// beneficiaries submit for one pot.
#[async_trait]
pub trait DestinationTx: Send {
    /// Sets (or, with `None`, clears) a member's standing payout destination.
    ///
    /// # Errors
    /// MUST return `Unavailable` on a connection failure.
    async fn set_payout_destination(
        &mut self,
        member: MemberId,
        destination: Option<PayoutDestination>,
    ) -> Result<(), StoreError>;

    /// A member's standing payout destination.
    ///
    /// # Errors
    /// MUST return `Unavailable` on a connection failure.
    async fn payout_destination(&mut self, member: MemberId) -> Result<Option<PayoutDestination>, StoreError>;

    /// Whether the member belongs to any group (a destination is kept only
    /// for members, so that anyone calling cannot fill the store).
    ///
    /// # Errors
    /// MUST return `Unavailable` on a connection failure.
    async fn is_group_member(&mut self, member: MemberId) -> Result<bool, StoreError>;

    /// Records an invoice a beneficiary submitted for a cycle's payout.
    ///
    /// # Errors
    /// MUST return `Duplicate(Unique::PayoutInvoice)` when an invoice with
    /// its payment hash was submitted before (for any payout: one payment
    /// must never count as two payouts).
    async fn insert_payout_invoice(&mut self, group: GroupId, cycle: u32, invoice: &Bolt11) -> Result<(), StoreError>;

    /// The invoice submitted last for a cycle's payout (BOLT 11 text).
    ///
    /// # Errors
    /// MUST return `Unavailable` on a connection failure.
    async fn payout_invoice(&mut self, group: GroupId, cycle: u32) -> Result<Option<String>, StoreError>;

    /// A member's payment attempts that await a destination, oldest first.
    ///
    /// # Errors
    /// MUST return `Unavailable` on a connection failure.
    async fn attempts_awaiting_destination(&mut self, member: MemberId) -> Result<Vec<PaymentAttempt>, StoreError>;
}

/// Where the node's event streams stopped: the settle index of the last
/// settled invoice whose settlement is durable, by source.
#[async_trait]
pub trait NodeCursors: Send + Sync + 'static {
    /// The stored settle index of `source` (0 when none).
    ///
    /// # Errors
    /// MUST return `Unavailable` on a connection failure.
    async fn settle_index(&self, source: &str) -> Result<u64, StoreError>;

    /// Moves the settle index of `source` forward to `index`; an index not
    /// past the stored one changes nothing (never backwards).
    ///
    /// # Errors
    /// MUST return `Unavailable` on a connection failure.
    async fn advance_settle_index(&self, source: &str, index: u64) -> Result<(), StoreError>;
}
