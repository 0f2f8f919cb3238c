//! A scheduled group's deadlines, as durable timed jobs.
//!
//! When a cycle of a group with a schedule opens (the group starts, or the
//! previous cycle's payout is recorded), its deadline is written to the
//! outbox in that transaction: the job `deadline:<group>:<cycle>` on the
//! timers queue, due at the cycle's grace end. The relay publishes it with
//! the delay left; its id makes a second publication (a crash, a sweep) a
//! duplicate the queue absorbs, so rescheduling is idempotent.
//!
//! When it fires, under the group's lock: a cycle that completed (or a
//! group that moved on or ended) means nothing is late, and nothing
//! happens. Otherwise every member who has not paid is late: a
//! `member_late` event each (`member_late:<group>:<cycle>:<member>`), and the
//! cycle waits for them (the `wait` policy: the pot is paid once everyone
//! paid). Other policies (a fine, a reserve covering the missing
//! contribution) are not built yet.

use serde::{Deserialize, Serialize};

use crate::domain::group::{CycleStatus, Group, GroupStatus};
use crate::domain::ids::GroupId;
use crate::domain::keys::IdempotencyKey;
use crate::ports::{BackendError, JobOptions, OutboxMessage, StoreTx};

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
}

/// What a timer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TimerKind {
    /// The cycle's grace period ended.
    Deadline,
}

impl TimerJob {
    /// The queue job id: `deadline:<group>:<cycle>`.
    pub fn job_id(&self) -> IdempotencyKey {
        let TimerKind::Deadline = self.kind;
        // A group id and a cycle are printable and short: always a key.
        IdempotencyKey::parse(format!("deadline:{}:{}", self.group, self.cycle))
            .unwrap_or_else(|_| unreachable!("a deadline key is printable and short"))
    }

    /// The options of its job: due after the delay left from `now_ms`, and
    /// retried (a store outage) like any job.
    pub fn options(&self, now_ms: u64) -> JobOptions {
        JobOptions {
            delay: std::time::Duration::from_millis(self.at_ms.saturating_sub(now_ms)),
            ..JobOptions::default()
        }
    }
}

/// What a deadline did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeadlineOutcome {
    /// The cycle completed, or the group moved on or ended: nothing is late.
    Nothing,
    /// The cycle waits for these members, each told late.
    Waiting(Vec<crate::domain::ids::MemberId>),
    /// Fired before its time (a clock behind the writer's): run again later.
    Early,
}

/// Writes the deadline of `group`'s current cycle to the outbox when `on`
/// (the application has a timers queue), the group has a schedule and the cycle is collecting; the caller holds the
/// group's lock and commits.
pub(super) async fn schedule_deadline(tx: &mut dyn StoreTx, on: bool, group: &Group) -> Result<(), ServiceError> {
    if !on {
        return Ok(());
    }
    let Some(at_ms) = group.cycle_grace_end_ms() else { return Ok(()) };
    if group.status() != GroupStatus::Active || group.cycle_status() != CycleStatus::Collecting {
        return Ok(());
    }
    let job = TimerJob { kind: TimerKind::Deadline, group: group.id(), cycle: group.cycle(), at_ms };
    let payload = serde_json::to_vec(&job).map_err(|e| ServiceError::InvalidPayload(BackendError::from_source(e)))?;
    tx.insert_outbox(&OutboxMessage { id: 0, queue: TIMERS_QUEUE.into(), job_id: job.job_id(), payload }).await?;
    Ok(())
}

impl Tontine {
    /// Runs a timer job: a deadline tells each unpaid member late once and
    /// lets the cycle wait; one that fires after its cycle completed does
    /// nothing.
    ///
    /// # Errors
    /// When the store fails (the job is retried).
    pub async fn run_timer(&self, job: &TimerJob, now_ms: u64) -> Result<DeadlineOutcome, ServiceError> {
        if now_ms < job.at_ms {
            return Ok(DeadlineOutcome::Early);
        }
        let mut tx = self.store.begin().await?;
        tx.lock_group(job.group).await?;
        let Some(group) = tx.load_group(job.group).await? else { return Ok(DeadlineOutcome::Nothing) };
        let collecting = group.status() == GroupStatus::Active
            && group.cycle() == job.cycle
            && group.cycle_status() == CycleStatus::Collecting;
        if !collecting {
            return Ok(DeadlineOutcome::Nothing);
        }
        let late: Vec<_> = group.members().iter().copied().filter(|m| group.owes(*m)).collect();
        for member in &late {
            emit(&mut *tx, self.events_on(), DomainEvent::member_late(&group, *member, job.at_ms)).await?;
        }
        tx.commit().await?;
        tracing::info!(group = %job.group, cycle = job.cycle, late = late.len(), "deadline passed; the cycle waits");
        if self.events_on()
            && !late.is_empty()
            && let Err(e) = self.relay_outbox(64).await
        {
            tracing::warn!(error = %e, "outbox relay after a deadline failed; the relay loop retries");
        }
        Ok(DeadlineOutcome::Waiting(late))
    }
}
