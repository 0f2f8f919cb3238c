//! Money that is not (or no longer) a contribution: the members' ledger.
//!
//! - A settlement lands in a contribution, a credit, or both
//!   ([`crate::domain::group::Group::settle`]); credits go to the ledger.
//! - A balance that covers a contribution is applied to it, as soon as the
//!   member owes one: when the credit lands during a cycle the member has not
//!   paid, and when a cycle opens.
//! - Cancelling an active group returns the collecting cycle's contributions
//!   to their payers' balances.
//! - An operator releases a balance for a refund (the refund is owed; paying
//!   it needs a payout destination).
//! - Open invoices that can no longer be paid for a reason of ours (replaced,
//!   expired, their cycle closed, their group cancelled) are cancelled at the
//!   node from the outbox, so that a crash cannot skip it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::domain::attempt::PaymentAttempt;
use crate::domain::group::{ContributionOutcome, Group, Invoice, InvoiceState, PayoutDue};
use crate::domain::ids::{GroupId, MemberId, PaymentHash};
use crate::domain::keys::IdempotencyKey;
use crate::domain::ledger::{Balance, LedgerEntry, LedgerReason, balance_payment_hash, balances};
use crate::domain::money::Msat;
use crate::ports::{BackendError, Contribution, OutboxMessage, StoreError, StoreTx};

use super::event::PayoutJob;
use super::{PAYOUT_QUEUE, ServiceError, Tontine};

/// The outbox's target for actions on the Lightning node (not a queue: the
/// relay carries them out itself).
pub const NODE_OUTBOX: &str = "node";

/// An action on the node, written to the outbox with the change that requires it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeAction {
    /// Cancel an open invoice.
    CancelInvoice(PaymentHash),
}

/// The default time an issued invoice stays payable.
pub const DEFAULT_INVOICE_EXPIRY: Duration = Duration::from_hours(24);

/// A group's ledger: every entry and the balances they leave.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupLedger {
    /// Each member's balance (members with entries only).
    pub balances: Vec<Balance>,
    /// Every entry, in the order recorded.
    pub entries: Vec<LedgerEntry>,
    /// Where the group's money is.
    pub accounting: Accounting,
}

/// Where a group's money is, from the store alone. For every group,
/// `received = contributions + balances + deposits + released` ([`Accounting::balanced`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accounting {
    /// What the node reported paid for the group's invoices: contributions
    /// paid by a payment and settlements credited to a balance.
    pub received: u128,
    /// Contributions in force: recorded, not returned by a cancellation
    /// nor shared back as an auctioned cycle's dividends (those paid from a
    /// balance included).
    pub contributions: u128,
    /// What the members hold in the group.
    pub balances: u128,
    /// What was released for refunds.
    pub released: u128,
    /// The members' deposits held by the group (the `cover` policy).
    #[serde(default)]
    pub deposits: u128,
}

impl Accounting {
    /// Whether every msat received is accounted for.
    pub const fn balanced(&self) -> bool {
        self.received == self.contributions + self.balances + self.deposits + self.released
    }
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Writes the outbox row that cancels `hash` at the node.
pub(super) async fn cancel_at_node(tx: &mut dyn StoreTx, hash: PaymentHash) -> Result<(), ServiceError> {
    let payload = serde_json::to_vec(&NodeAction::CancelInvoice(hash))
        .map_err(|e| ServiceError::InvalidPayload(BackendError::from_source(e)))?;
    let job_id = IdempotencyKey::parse(format!("cancel_invoice:{hash}"))
        .map_err(|e| ServiceError::InvalidPayload(BackendError::from_source(e)))?;
    tx.insert_outbox(&OutboxMessage { id: 0, queue: NODE_OUTBOX.into(), job_id, payload }).await?;
    Ok(())
}

/// Cancels every open invoice of the group's `cycle` (here and, from the
/// outbox, at the node).
pub(super) async fn cancel_open_invoices(tx: &mut dyn StoreTx, group: GroupId, cycle: u32) -> Result<(), ServiceError> {
    for invoice in tx.open_invoices(group, cycle).await? {
        // A member whose deposit covered the cycle holds an invoice for
        // their debt, not for the cycle: it stays payable.
        let covered = crate::domain::ledger::cover_payment_hash(group, cycle, invoice.member);
        if tx.contribution(&covered).await?.is_some() {
            continue;
        }
        tx.set_invoice_state(&invoice.payment_hash, InvoiceState::Cancelled).await?;
        cancel_at_node(tx, invoice.payment_hash).await?;
    }
    Ok(())
}

/// Cancels the open invoices of `members` in the group's `cycle` (here
/// and, from the outbox, at the node).
pub(super) async fn cancel_members_invoices(
    tx: &mut dyn StoreTx,
    group: GroupId,
    cycle: u32,
    members: &[MemberId],
) -> Result<(), ServiceError> {
    if members.is_empty() {
        return Ok(());
    }
    for invoice in tx.open_invoices(group, cycle).await? {
        if members.contains(&invoice.member) {
            tx.set_invoice_state(&invoice.payment_hash, InvoiceState::Cancelled).await?;
            cancel_at_node(tx, invoice.payment_hash).await?;
        }
    }
    Ok(())
}

/// The work a completed cycle owes, in the same unit of work: its payment
/// attempt, the outbox row that queues its payout, and the cancellation of
/// the cycle's invoices still open.
pub(super) async fn cycle_completed(tx: &mut dyn StoreTx, due: &PayoutDue, events: bool) -> Result<(), ServiceError> {
    tx.insert_payment_attempt(&PaymentAttempt::pending(due)).await?;
    // An auctioned cycle's dividends: the other members' shares of the discount.
    for (member, amount) in &due.dividends {
        tx.insert_ledger_entry(&LedgerEntry::dividend(due.group, *member, due.cycle, *amount)).await?;
    }
    super::notify::emit(tx, events, super::DomainEvent::cycle_completed(due)).await?;
    let job = PayoutJob { key: due.key.clone(), group: due.group, cycle: due.cycle, generation: 0 };
    let payload = serde_json::to_vec(&job).map_err(|e| ServiceError::InvalidPayload(BackendError::from_source(e)))?;
    tx.insert_outbox(&OutboxMessage { id: 0, queue: PAYOUT_QUEUE.into(), job_id: due.key.clone(), payload }).await?;
    cancel_open_invoices(tx, due.group, due.cycle).await
}

/// Applies the balances of `members` that cover a contribution to the
/// current cycle they owe. Returns the payout due when that completed the
/// cycle (its attempt and outbox row are written). Does nothing when the
/// group's policy keeps balances for an operator to release. The caller
/// holds the group's lock and saves the group.
pub(super) async fn apply_balances(
    tx: &mut dyn StoreTx,
    group: &mut Group,
    members: &[MemberId],
    events: bool,
) -> Result<Option<PayoutDue>, ServiceError> {
    repay_debts(tx, group, members).await?;
    if !group.policy().apply_balance || !members.iter().any(|m| group.owes(*m)) {
        return Ok(None);
    }
    let entries = tx.group_ledger(group.id()).await?;
    let held = balances(&entries).map_err(|e| StoreError::Corrupt(format!("ledger of group {}: {e}", group.id())))?;
    for member in members {
        // What the member owes now: the contribution, and their fine when late.
        let contribution = group.owed(*member);
        let covered = held.iter().any(|b| b.member == *member && b.amount >= contribution);
        if !covered || !group.owes(*member) {
            continue;
        }
        let cycle = group.cycle();
        if !tx.insert_ledger_entry(&LedgerEntry::applied(group.id(), *member, cycle, contribution)).await? {
            continue;
        }
        let hash = balance_payment_hash(group.id(), cycle, *member);
        let due = pay_from_held(tx, group, *member, hash, events).await?;
        tracing::info!(group = %group.id(), cycle, member = %member, "balance applied to a contribution");
        if due.is_some() {
            return Ok(due);
        }
    }
    Ok(None)
}

/// Records `member`'s contribution to the current cycle as paid from money
/// the group holds (a balance, a held deposit), under `hash` (derived, not a
/// Lightning payment), for what they owe: the contribution's row and event,
/// and when it completes the cycle, the payout's work. The caller has
/// recorded the ledger entry that moved the money, holds the lock and saves
/// the group.
pub(super) async fn pay_from_held(
    tx: &mut dyn StoreTx,
    group: &mut Group,
    member: MemberId,
    hash: PaymentHash,
    events: bool,
) -> Result<Option<PayoutDue>, ServiceError> {
    let owed = group.owed(member);
    let invoice = Invoice {
        payment_hash: hash,
        group: group.id(),
        cycle: group.cycle(),
        member,
        amount: owed,
        bolt11: String::new(),
        expires_at_ms: 0,
        state: InvoiceState::Settled,
    };
    let outcome = group.record_contribution(&invoice, owed)?;
    write_contribution(tx, group, member, hash, events).await?;
    if let ContributionOutcome::CycleComplete(due) = outcome {
        cycle_completed(tx, &due, events).await?;
        return Ok(Some(due));
    }
    Ok(None)
}

/// Writes the row and the event of `member`'s contribution to the current
/// cycle, just recorded on `group` under `hash`; the `cover` policy's
/// deposit, asked with the first contribution, is held apart on the
/// member's ledger. `false` (nothing written) when the row exists: a replay.
pub(super) async fn write_contribution(
    tx: &mut dyn StoreTx,
    group: &Group,
    member: MemberId,
    hash: PaymentHash,
    events: bool,
) -> Result<bool, ServiceError> {
    let deposit = group.deposit_due();
    let owed = group.owed(member);
    let cycle = group.cycle();
    // The contribution, and the member's fine when they were late.
    let amount = owed.checked_sub(deposit).unwrap_or(owed);
    let row = Contribution { payment_hash: hash, group: group.id(), cycle, member, amount };
    if !tx.insert_contribution(&row).await? {
        return Ok(false);
    }
    if !deposit.is_zero() {
        tx.insert_ledger_entry(&LedgerEntry::deposit(group.id(), member, hash, deposit)).await?;
    }
    super::notify::emit(tx, events, super::DomainEvent::contribution(group.id(), cycle, member, amount, hash)).await?;
    Ok(true)
}

/// A member's debt in a group (the `cover` policy): what their held
/// deposit covered, less what they repaid.
pub(super) fn debt_of(entries: &[LedgerEntry], member: MemberId) -> Msat {
    let signed: i128 = entries
        .iter()
        .filter(|e| e.member == member)
        .map(|e| match e.reason {
            LedgerReason::Covered => i128::from(e.amount.get()),
            LedgerReason::DepositRefilled => -i128::from(e.amount.get()),
            _ => 0,
        })
        .sum();
    Msat::new(u64::try_from(signed.max(0)).unwrap_or(0))
}

/// Repays the debts of `members` from their balances (the `cover` policy),
/// before anything else the balance could pay, while the group is active
/// (whatever the group's `apply_balance`: a debt is not a balance to keep).
pub(super) async fn repay_debts(tx: &mut dyn StoreTx, group: &Group, members: &[MemberId]) -> Result<(), ServiceError> {
    if !matches!(group.policy().late, crate::domain::rules::LatePolicy::Cover(_))
        || group.status() != crate::domain::group::GroupStatus::Active
    {
        return Ok(());
    }
    let entries = tx.group_ledger(group.id()).await?;
    let held = balances(&entries).map_err(|e| StoreError::Corrupt(format!("ledger of group {}: {e}", group.id())))?;
    for member in members {
        let debt = debt_of(&entries, *member);
        let balance = held.iter().find(|b| b.member == *member).map_or(Msat::ZERO, |b| b.amount);
        let repaid = debt.min(balance);
        if repaid.is_zero() {
            continue;
        }
        let n = entries.iter().filter(|e| e.member == *member && e.reason == LedgerReason::DepositRefilled).count();
        let entry = LedgerEntry::refilled(group.id(), *member, group.cycle(), n as u64 + 1, repaid);
        tx.insert_ledger_entry(&entry).await?;
        tracing::info!(group = %group.id(), member = %member, repaid = %repaid, "balance repaid a covered debt");
    }
    Ok(())
}

/// Returns every member's held deposit (the `cover` policy) to their
/// balance: the group ended (finished or cancelled).
pub(super) async fn return_deposits(tx: &mut dyn StoreTx, group: &Group) -> Result<(), ServiceError> {
    if !matches!(group.policy().late, crate::domain::rules::LatePolicy::Cover(_)) {
        return Ok(());
    }
    let entries = tx.group_ledger(group.id()).await?;
    for (member, held) in crate::domain::ledger::deposits(&entries) {
        tx.insert_ledger_entry(&LedgerEntry::deposit_returned(group.id(), member, group.cycle(), held)).await?;
    }
    Ok(())
}

/// Returns the collecting cycle's contributions of a group being cancelled
/// to their payers' balances, and cancels the cycle's open invoices. A cycle
/// already complete keeps its contributions: its pot is owed to (or on its
/// way to) its beneficiary.
pub(super) async fn refund_cancelled_cycle(tx: &mut dyn StoreTx, before: &Group) -> Result<(), ServiceError> {
    if before.cycle() == 0 {
        return Ok(());
    }
    if before.cycle_status() == crate::domain::group::CycleStatus::Collecting {
        for (member, hash) in before.paid() {
            let c = tx.contribution(hash).await?.ok_or(StoreError::Corrupt(format!("contribution {hash} missing")))?;
            let entry = LedgerEntry::cancelled(before.id(), *member, before.cycle(), *hash, c.amount);
            tx.insert_ledger_entry(&entry).await?;
        }
    }
    cancel_open_invoices(tx, before.id(), before.cycle()).await
}

impl Tontine {
    /// Sets how long issued invoices stay payable (default 24 h).
    #[must_use]
    pub fn with_invoice_expiry(mut self, expiry: Duration) -> Self {
        self.invoice_expiry = expiry;
        self
    }

    /// A group's ledger: its entries and the balances they leave.
    pub async fn group_ledger(&self, id: GroupId) -> Result<GroupLedger, ServiceError> {
        self.store.group(id).await?.ok_or(ServiceError::NotFound("group"))?;
        let (contributions, entries) = self.money_snapshot(id).await?;
        let balances = balances(&entries).map_err(|e| StoreError::Corrupt(format!("ledger of group {id}: {e}")))?;
        let accounting = accounting_of(id, &contributions, &entries)?;
        Ok(GroupLedger { balances, entries, accounting })
    }

    /// Where a group's money is: received, contributions in force, balances,
    /// released refunds (see [`Accounting`]).
    pub async fn accounting(&self, id: GroupId) -> Result<Accounting, ServiceError> {
        let (contributions, entries) = self.money_snapshot(id).await?;
        accounting_of(id, &contributions, &entries)
    }

    /// A group's contributions and ledger entries as of one moment: both are
    /// append-only, so when the entries read before and after the
    /// contributions are the same, the pair is the state at the moment the
    /// contributions were read (a settlement writes both in one commit).
    async fn money_snapshot(&self, id: GroupId) -> Result<(Vec<Contribution>, Vec<LedgerEntry>), ServiceError> {
        for _ in 0..8 {
            let before = self.store.ledger(id).await?;
            let contributions = self.store.contributions(id).await?;
            let after = self.store.ledger(id).await?;
            if before.len() == after.len() {
                return Ok((contributions, after));
            }
        }
        Err(ServiceError::RetryLater("the group's ledger kept changing while it was read".into()))
    }
}

/// The accounting of a group from its contributions and ledger entries.
fn accounting_of(
    id: GroupId,
    contributions: &[Contribution],
    entries: &[LedgerEntry],
) -> Result<Accounting, ServiceError> {
    let mut a = Accounting::default();
    for c in contributions {
        a.contributions += u128::from(c.amount.get());
        let paid_by_us = c.payment_hash == balance_payment_hash(c.group, c.cycle, c.member)
            || c.payment_hash == crate::domain::ledger::cover_payment_hash(c.group, c.cycle, c.member);
        if !paid_by_us {
            a.received += u128::from(c.amount.get());
        }
    }
    let mut balance: i128 = 0;
    let mut deposits: i128 = 0;
    for e in entries {
        let amount = u128::from(e.amount.get());
        if e.is_settlement() || e.is_paid_deposit() {
            a.received += amount;
        }
        deposits += e.deposit_signed();
        if e.returns_contribution() || e.reason == LedgerReason::Dividend {
            a.contributions = a.contributions.checked_sub(amount).ok_or_else(|| {
                StoreError::Corrupt(format!("ledger of group {id}: returns more than was contributed"))
            })?;
        }
        if e.reason == LedgerReason::RefundReleased {
            a.released += amount;
        }
        balance += e.signed();
    }
    a.balances =
        u128::try_from(balance).map_err(|_| StoreError::Corrupt(format!("ledger of group {id}: below zero")))?;
    a.deposits = u128::try_from(deposits)
        .map_err(|_| StoreError::Corrupt(format!("ledger of group {id}: deposits below zero")))?;
    Ok(a)
}

impl Tontine {
    /// Releases a member's whole balance in a group for a refund: a debit
    /// entry records the obligation, and a refund attempt keyed by the entry
    /// pays it through the payout engine (to the member's keysend
    /// destination; it waits as `awaiting_destination` without one), its job
    /// written to the outbox in the same transaction.
    pub async fn release_balance(&self, id: GroupId, member: MemberId) -> Result<LedgerEntry, ServiceError> {
        let mut tx = self.store.begin().await?;
        tx.lock_group(id).await?;
        let group = tx.load_group(id).await?.ok_or(ServiceError::NotFound("group"))?;
        if !group.is_member(member) {
            return Err(ServiceError::NotFound("member"));
        }
        let entries = tx.group_ledger(id).await?;
        let held = balances(&entries).map_err(|e| StoreError::Corrupt(format!("ledger of group {id}: {e}")))?;
        let balance = held.iter().find(|b| b.member == member).map_or(Msat::ZERO, |b| b.amount);
        // A debt (the `cover` policy) is repaid before anything is released.
        let debt = if group.status() == crate::domain::group::GroupStatus::Active {
            debt_of(&entries, member)
        } else {
            Msat::ZERO
        };
        let amount = balance.checked_sub(debt).unwrap_or(Msat::ZERO);
        if amount.is_zero() {
            return Err(ServiceError::NothingToRelease);
        }
        let n =
            entries.iter().filter(|e| e.member == member && e.reason == LedgerReason::RefundReleased).count() as u64;
        let entry = LedgerEntry::released(id, member, group.cycle(), n + 1, amount);
        tx.insert_ledger_entry(&entry).await?;
        let refund = PaymentAttempt::refund(entry.key.clone(), id, group.cycle().max(1), member, amount);
        tx.insert_payment_attempt(&refund).await?;
        let job = PayoutJob::of(&refund);
        let payload =
            serde_json::to_vec(&job).map_err(|e| ServiceError::InvalidPayload(BackendError::from_source(e)))?;
        tx.insert_outbox(&OutboxMessage { id: 0, queue: PAYOUT_QUEUE.into(), job_id: job.job_id(), payload }).await?;
        tx.commit().await?;
        tracing::info!(group = %id, member = %member, amount = %amount, refund = %entry.key, "balance released for a refund");
        if let Err(e) = self.relay_outbox(64).await {
            tracing::warn!(error = %e, "outbox relay after a release failed; the relay loop retries");
        }
        Ok(entry)
    }
}
