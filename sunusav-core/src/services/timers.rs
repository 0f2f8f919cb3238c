//! A scheduled group's deadlines and reminders, as durable timed jobs.
//!
//! When a cycle of a group with a schedule opens (the group starts, or the
//! previous cycle's payout is recorded), its timers are written to the
//! outbox in that transaction: the job `deadline:<group>:<cycle>` on the
//! timers queue, due at the cycle's grace end, and one
//! `reminder:<group>:<cycle>:<offset ms>` per reminder the group asks for
//! that is still ahead. The relay publishes them with the delay left; their
//! ids make a second publication (a crash, a sweep) a duplicate the queue
//! absorbs, so rescheduling is idempotent.
//!
//! A deadline, when it fires, under the group's lock: a cycle that completed
//! (or a group that moved on or ended) means nothing is late, and nothing
//! happens. Otherwise every member who has not paid is late, recorded on
//! the group with the fine they owe (the `fine` policy; zero under `wait`):
//! a `member_late` event each (and a `fine_issued` one for a fine), their
//! open invoices for less are cancelled, and the cycle waits for them. The
//! members told late are stored, so a deadline that fires again (a retry, a
//! sweep, a second process) tells and fines no one twice.
//!
//! A reminder tells each member who still owes the cycle (`reminder_due`).
//!
//! The store is the record: [`Tontine::sweep_timers`] publishes again the
//! timers of every collecting cycle of a scheduled group, so a queue that
//! lost them (a Redis restarted empty) loses no deadline.

use serde::{Deserialize, Serialize};

use crate::domain::group::{CycleStatus, Group, GroupStatus};
use crate::domain::ids::{GroupId, MemberId};
use crate::domain::keys::IdempotencyKey;
use crate::ports::{BackendError, JobOptions, NewJob, OutboxMessage, StoreTx};

use super::notify::{DomainEvent, emit};
use super::{ServiceError, Tontine};

/// Name of the timers queue.
pub const TIMERS_QUEUE: &str = "timers";

/// A timed job of a group's cycle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TimerJob {
    /// What the timer is for.
    pub kind: TimerKind,
    /// The group.
    pub group: GroupId,
    /// The cycle.
    pub cycle: u32,
    /// When it is due (unix ms).
    pub at_ms: u64,
    /// A reminder's offset before the due time (ms); 0 for a deadline.
    #[serde(default)]
    pub offset_ms: u64,
}

/// What a timer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TimerKind {
    /// The cycle's grace period ended.
    Deadline,
    /// A reminder before the cycle is due.
    Reminder,
    /// An auctioned cycle is due: its bidding closes and the winner is chosen.
    AuctionClose,
}

impl TimerJob {
    /// The deadline of `group`'s current cycle, when it has one.
    pub fn deadline(group: &Group) -> Option<Self> {
        let at_ms = group.cycle_grace_end_ms()?;
        Some(Self { kind: TimerKind::Deadline, group: group.id(), cycle: group.cycle(), at_ms, offset_ms: 0 })
    }

    /// The close of `group`'s current auction (at the cycle's due time),
    /// while it is open.
    pub fn auction_close(group: &Group) -> Option<Self> {
        if !group.auction_open() {
            return None;
        }
        let at_ms = group.cycle_due_ms()?;
        Some(Self { kind: TimerKind::AuctionClose, group: group.id(), cycle: group.cycle(), at_ms, offset_ms: 0 })
    }

    /// The reminders of `group`'s current cycle still ahead at `now_ms`
    /// (one already past is not sent late).
    pub fn reminders(group: &Group, now_ms: u64) -> Vec<Self> {
        let Some(due) = group.cycle_due_ms() else { return Vec::new() };
        group
            .policy()
            .reminders_ms
            .offsets()
            .iter()
            .filter_map(|offset| {
                let at_ms = due.checked_sub(*offset)?;
                (at_ms >= now_ms).then_some(Self {
                    kind: TimerKind::Reminder,
                    group: group.id(),
                    cycle: group.cycle(),
                    at_ms,
                    offset_ms: *offset,
                })
            })
            .collect()
    }

    /// The queue job id: `deadline:<group>:<cycle>` or
    /// `reminder:<group>:<cycle>:<offset ms>`.
    pub fn job_id(&self) -> IdempotencyKey {
        let text = match self.kind {
            TimerKind::Deadline => format!("deadline:{}:{}", self.group, self.cycle),
            TimerKind::Reminder => format!("reminder:{}:{}:{}", self.group, self.cycle, self.offset_ms),
            TimerKind::AuctionClose => format!("auction:{}:{}", self.group, self.cycle),
        };
        // A group id and numbers are printable and short: always a key.
        IdempotencyKey::parse(text).unwrap_or_else(|_| unreachable!("a timer key is printable and short"))
    }

    /// The options of its job: due after the delay left from `now_ms`, and
    /// retried through an outage of the store or the node as a webhook job
    /// is (25 attempts, backoff from 0.5 s capped at 30 s: about ten
    /// minutes); a timer that dies anyway is removed and swept again
    /// ([`crate::runtime::TimerHandler`]).
    pub fn options(&self, now_ms: u64) -> JobOptions {
        JobOptions {
            delay: std::time::Duration::from_millis(self.at_ms.saturating_sub(now_ms)),
            ..super::WEBHOOK_JOB_OPTIONS
        }
    }

    fn payload(&self) -> Result<Vec<u8>, ServiceError> {
        serde_json::to_vec(self).map_err(|e| ServiceError::InvalidPayload(BackendError::from_source(e)))
    }
}

/// What a timer did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeadlineOutcome {
    /// The cycle completed, or the group moved on or ended, or everyone
    /// late was told already: nothing to do.
    Nothing,
    /// These members were told late (each with the fine they owe); the
    /// cycle waits for them.
    Waiting(Vec<(MemberId, crate::domain::money::Msat)>),
    /// These members, who still owe the cycle, were reminded.
    Reminded(Vec<MemberId>),
    /// The cycle's auction closed: its winner, and whether the cycle
    /// completed with it (everyone had paid).
    AuctionClosed {
        /// Who receives the pot this cycle.
        winner: MemberId,
        /// Whether the cycle's payout is due now.
        completed: bool,
    },
    /// Fired before its time (a clock behind the writer's): run again later.
    Early,
}

/// What a pass of [`Tontine::sweep_timers`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TimerSweep {
    /// Collecting cycles of scheduled groups looked at.
    pub cycles: usize,
    /// Timer jobs published (a job the queue still holds is absorbed by its id).
    pub published: usize,
}

/// Writes the timers of `group`'s current cycle to the outbox when `on`
/// (the application has a timers queue), the group has a schedule and the
/// cycle is collecting; the caller holds the group's lock and commits.
pub(super) async fn schedule_cycle_timers(
    tx: &mut dyn StoreTx,
    on: bool,
    group: &Group,
    now_ms: u64,
) -> Result<(), ServiceError> {
    if !on || group.status() != GroupStatus::Active || group.cycle_status() != CycleStatus::Collecting {
        return Ok(());
    }
    let Some(deadline) = TimerJob::deadline(group) else { return Ok(()) };
    let close = TimerJob::auction_close(group);
    for job in std::iter::once(deadline).chain(close).chain(TimerJob::reminders(group, now_ms)) {
        let message =
            OutboxMessage { id: 0, queue: TIMERS_QUEUE.into(), job_id: job.job_id(), payload: job.payload()? };
        tx.insert_outbox(&message).await?;
    }
    Ok(())
}

impl Tontine {
    /// Runs a timer job. A deadline tells each unpaid member late once
    /// (fining them under the `fine` policy) and lets the cycle wait; one
    /// that fires after its cycle completed does nothing. A reminder tells
    /// each member who still owes the cycle.
    ///
    /// # Errors
    /// When the store fails (the job is retried).
    pub async fn run_timer(&self, job: &TimerJob, now_ms: u64) -> Result<DeadlineOutcome, ServiceError> {
        if now_ms < job.at_ms {
            return Ok(DeadlineOutcome::Early);
        }
        if job.kind == TimerKind::Deadline {
            self.settle_paid_invoices(job).await?;
        }
        let mut tx = self.store.begin().await?;
        tx.lock_group(job.group).await?;
        let Some(mut group) = tx.load_group(job.group).await? else { return Ok(DeadlineOutcome::Nothing) };
        let collecting = group.status() == GroupStatus::Active
            && group.cycle() == job.cycle
            && group.cycle_status() == CycleStatus::Collecting;
        if !collecting {
            return Ok(DeadlineOutcome::Nothing);
        }
        let outcome = match job.kind {
            TimerKind::Deadline => self.deadline_passed(&mut *tx, &mut group, job.at_ms).await?,
            TimerKind::AuctionClose => self.auction_closes(&mut *tx, &mut group).await?,
            TimerKind::Reminder => {
                let owing: Vec<_> = group
                    .members()
                    .iter()
                    .copied()
                    .filter(|m| group.owes(*m) && !group.late().contains_key(m))
                    .collect();
                for member in &owing {
                    let event = DomainEvent::reminder_due(&group, *member, job.offset_ms, job.at_ms);
                    emit(&mut *tx, self.events_on(), event).await?;
                }
                DeadlineOutcome::Reminded(owing)
            }
        };
        let told = match &outcome {
            DeadlineOutcome::Waiting(late) => !late.is_empty(),
            DeadlineOutcome::Reminded(owing) => !owing.is_empty(),
            DeadlineOutcome::AuctionClosed { .. } => true,
            _ => false,
        };
        if !told {
            return Ok(DeadlineOutcome::Nothing);
        }
        tx.commit().await?;
        if let Err(e) = self.relay_outbox(64).await {
            tracing::warn!(error = %e, "outbox relay after a timer failed; the relay loop retries");
        }
        Ok(outcome)
    }

    /// Before a deadline judges anyone late: the open invoices of the members
    /// who have not paid are checked at the node, and one the node reports
    /// settled is recorded and settled now (under the key the node's stream
    /// uses, so its later report is a replay). A payment made before the
    /// deadline ran counts, however late its webhook or the stream is.
    async fn settle_paid_invoices(&self, job: &TimerJob) -> Result<(), ServiceError> {
        let Some(group) = self.store.group(job.group).await? else { return Ok(()) };
        if group.cycle() != job.cycle || group.cycle_status() != CycleStatus::Collecting {
            return Ok(());
        }
        for member in group.members().iter().copied().filter(|m| group.owes(*m)) {
            let Some(open) = self.store.open_invoice(job.group, job.cycle, member).await? else { continue };
            let Some(found) = self.payments.invoice(&open.payment_hash).await? else { continue };
            if found.state != crate::ports::NodeInvoiceState::Settled {
                continue;
            }
            let (_, delivery) = self.record_node_settlement(found.payment_hash, found.amount_paid).await?;
            let outcome = self.settle(&delivery).await?;
            tracing::info!(group = %job.group, cycle = job.cycle, member = %member, outcome = outcome.as_str(), "paid before the deadline: settled first");
        }
        Ok(())
    }

    /// A deadline passed: the unpaid members are told late (and fined), their
    /// open invoices for less cancelled, a balance that covers what they now
    /// owe applied. The caller holds the lock and commits.
    async fn deadline_passed(
        &self,
        tx: &mut dyn StoreTx,
        group: &mut Group,
        at_ms: u64,
    ) -> Result<DeadlineOutcome, ServiceError> {
        let late = group.mark_late();
        if late.is_empty() {
            return Ok(DeadlineOutcome::Waiting(late));
        }
        let fined: Vec<MemberId> = late.iter().filter(|(_, fine)| !fine.is_zero()).map(|(m, _)| *m).collect();
        for (member, fine) in &late {
            emit(tx, self.events_on(), DomainEvent::member_late(group, *member, at_ms)).await?;
            if !fine.is_zero() {
                emit(tx, self.events_on(), DomainEvent::fine_issued(group, *member, *fine, at_ms)).await?;
            }
        }
        // Their invoices ask the contribution alone: no longer enough.
        super::money::cancel_members_invoices(tx, group.id(), group.cycle(), &fined).await?;
        let mut due = super::money::apply_balances(tx, group, &fined, self.events_on()).await?;
        if due.is_none() && matches!(group.policy().late, crate::domain::rules::LatePolicy::Cover(_)) {
            let late_members: Vec<MemberId> = late.iter().map(|(m, _)| *m).collect();
            due = self.cover_late(tx, group, &late_members).await?;
        }
        tx.save_group(group).await?;
        tracing::info!(group = %group.id(), cycle = group.cycle(), late = late.len(), fined = fined.len(), completed = due.is_some(), "deadline passed");
        Ok(DeadlineOutcome::Waiting(late))
    }

    /// An auctioned cycle is due: its bidding closes, the winner becomes its
    /// beneficiary, and when everyone paid already the cycle completes (its
    /// payout, dividends and event written now). The caller holds the lock
    /// and commits.
    async fn auction_closes(&self, tx: &mut dyn StoreTx, group: &mut Group) -> Result<DeadlineOutcome, ServiceError> {
        if !group.auction_open() {
            return Ok(DeadlineOutcome::Nothing);
        }
        let due = group.close_auction()?;
        let result =
            group.auction_result().ok_or(ServiceError::Invariant("an auction closed without a result".into()))?;
        emit(tx, self.events_on(), DomainEvent::auction_closed(group, &result)).await?;
        if let Some(due) = &due {
            super::money::cycle_completed(tx, due, self.events_on()).await?;
        }
        tx.save_group(group).await?;
        tracing::info!(group = %group.id(), cycle = group.cycle(), winner = %result.winner, payout = %result.payout, completed = due.is_some(), "auction closed");
        Ok(DeadlineOutcome::AuctionClosed { winner: result.winner, completed: due.is_some() })
    }

    /// The `cover` policy: each late member's held deposit pays their
    /// contribution when it can (their debt is the `covered` entry on their
    /// ledger), and their open invoices are cancelled. Returns the payout
    /// due when that completed the cycle. The caller holds the lock.
    async fn cover_late(
        &self,
        tx: &mut dyn StoreTx,
        group: &mut Group,
        late: &[MemberId],
    ) -> Result<Option<crate::domain::group::PayoutDue>, ServiceError> {
        use crate::domain::ledger::{LedgerEntry, cover_payment_hash, deposits};
        let entries = tx.group_ledger(group.id()).await?;
        let held = deposits(&entries);
        let contribution = group.contribution();
        let mut covered = Vec::new();
        for member in late {
            let enough = held.get(member).is_some_and(|d| *d >= contribution);
            if !enough || !group.owes(*member) || group.owed(*member) != contribution {
                continue;
            }
            let cycle = group.cycle();
            if !tx.insert_ledger_entry(&LedgerEntry::covered(group.id(), *member, cycle, contribution)).await? {
                continue;
            }
            let hash = cover_payment_hash(group.id(), cycle, *member);
            covered.push(*member);
            if let Some(due) = super::money::pay_from_held(tx, group, *member, hash, self.events_on()).await? {
                super::money::repay_debts(tx, group, &covered).await?;
                tracing::info!(group = %group.id(), cycle, covered = covered.len(), "deposits covered the late members; the cycle completed");
                return Ok(Some(due));
            }
        }
        // A balance they hold repays the debt at once.
        super::money::repay_debts(tx, group, &covered).await?;
        // Their invoices for the contribution are no longer needed.
        super::money::cancel_members_invoices(tx, group.id(), group.cycle(), &covered).await?;
        Ok(None)
    }

    /// Publishes again the timers of up to `limit` collecting cycles of
    /// scheduled groups (after the group `after`, for paging): the deadline
    /// of each (due now when its grace end passed and nobody was told late
    /// yet, absorbed by its id when the queue still holds it) and its
    /// reminders still ahead. The store is the record of what timers are
    /// owed; this rebuilds what a queue lost. Does nothing without a timers
    /// queue.
    ///
    /// # Errors
    /// When the store or the queue fails.
    pub async fn sweep_timers(
        &self,
        after: Option<GroupId>,
        limit: u32,
    ) -> Result<(TimerSweep, Option<GroupId>), ServiceError> {
        let Some(queue) = &self.timers else { return Ok((TimerSweep::default(), None)) };
        let ids = self.store.scheduled_groups(after, limit).await?;
        let next = if ids.len() == limit as usize { ids.last().copied() } else { None };
        let mut groups = Vec::with_capacity(ids.len());
        for id in ids {
            // Each in its own read; one that moved on meanwhile is skipped,
            // and so is one whose stored state is corrupt (told), rather
            // than stopping the sweep of every group after it.
            match self.store.group(id).await {
                Ok(Some(group)) => groups.push(group),
                Ok(None) => {}
                Err(crate::ports::StoreError::Corrupt(e)) => {
                    tracing::error!(group = %id, error = %e, "a scheduled group's stored state is corrupt: its timers are not swept");
                }
                Err(e) => return Err(e.into()),
            }
        }
        let now = self.now_ms();
        let mut sweep = TimerSweep::default();
        let mut jobs = Vec::new();
        for group in &groups {
            if group.status() != GroupStatus::Active || group.cycle_status() != CycleStatus::Collecting {
                continue;
            }
            sweep.cycles += 1;
            let Some(deadline) = TimerJob::deadline(group) else { continue };
            // A deadline that ran told someone late: done; an auction that
            // closed has its winner.
            let timers =
                (group.late().is_empty()).then_some(deadline).into_iter().chain(TimerJob::auction_close(group));
            // A reminder due now may have run already: only those ahead.
            let ahead = TimerJob::reminders(group, now).into_iter().filter(|r| r.at_ms > now);
            for job in timers.chain(ahead) {
                jobs.push(NewJob { id: job.job_id(), payload: job.payload()?, options: job.options(now) });
            }
        }
        sweep.published = jobs.len();
        if !jobs.is_empty() {
            queue.enqueue_bulk(jobs).await?;
        }
        Ok((sweep, next))
    }
}
