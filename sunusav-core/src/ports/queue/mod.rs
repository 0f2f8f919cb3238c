//! The queue port: durable jobs with leases, retries, backoff and dead letters,
//! as small traits by capability.
//!
//! | trait | who uses it | methods |
//! | --- | --- | --- |
//! | [`Producer`] | services that publish work (ingestion, the outbox relay, the sweeps) | `enqueue`, `enqueue_bulk` |
//! | [`Consumer`] | worker pools | `reserve_wait`, `ack_many_and_reserve`, `heartbeat`, `fail`, `recover_stalled` |
//! | [`QueueAdmin`] | operators (admin routes, health counts, the console) | `stats`, `list`, `list_after`, `get`, `retry_dead`, `retry_all_dead`, `remove`, `promote`, `pause`, `resume` |
//! | [`QueueHealth`] | health checks | `ping` |
//! | [`Scheduler`] | the scheduler task, services that keep recurring work | `upsert_schedule`, `remove_schedule`, `schedules`, `fire_due` |
//!
//! Each extends [`QueueName`]. [`Queue`] is all of them at once, implemented
//! for every type that implements each: an adapter implements the four
//! capability traits, and a service asks only for the one it uses
//! (`Arc<dyn Producer>`, `Arc<dyn Consumer>`, …; an `Arc<dyn Queue>` coerces
//! to any of them). [`ConsumerExt`] adds one-job helpers (`reserve`, `ack`,
//! `ack_and_reserve`) built on the consumer's batch call, for tests and
//! scripts: there is one way to do each thing.
//!
//! States of a job:
//! - `waiting`: due, not held by a worker;
//! - `active`: held under a lease by one worker;
//! - `delayed`: due later (a producer's delay);
//! - `failed`: an attempt failed and the job waits for its retry (backoff);
//! - `completed`: acknowledged; the last `keep_completed` are retained;
//! - `dead`: out of attempts, failed permanently or stalled too often; the last
//!   `keep_dead` are retained for an operator to retry or remove (the
//!   original's `removeOnFail: 50`).
//!
//! A job id stays claimed after the job is gone, for a dedup window: enqueueing
//! the same id again within it is [`Enqueued::Duplicate`].
//!
//! Scheduled jobs: a job at a time is a delayed job ([`NewJob::due_at`]); a
//! recurring schedule by id (a fixed interval, or a cron expression in a time
//! zone) is the [`Scheduler`] capability, which an adapter offers apart from
//! [`Queue`]: its runs are enqueued by [`Scheduler::fire_due`], each once even
//! with several processes, surviving restarts, on the caller's clock. The
//! semantics (missed runs, clock jumps, a schedule changed while a run is
//! due) are in the [`schedule`] module's docs.

mod error;
mod job;
pub mod schedule;

use std::time::Duration;

use async_trait::async_trait;

pub use error::QueueError;
pub use job::{
    Backoff, Enqueued, FailKind, FailOutcome, JobCursor, JobError, JobInfo, JobOptions, JobPage, JobState, LeaseToken,
    NewJob, QueueConfig, QueueStats, ReservedJob, StallRecovery, StalledDead, Step,
};
pub use schedule::{
    CronRule, FirePlan, FiredRun, FiredRuns, JobTemplate, Repeat, ScheduleId, ScheduleInfo, ScheduleSpec,
    ScheduleSpecError, Scheduler, StoredSchedule, UpsertPlan, Upserted,
};

use crate::domain::keys::IdempotencyKey;

/// The queue's name, common to every capability.
pub trait QueueName: Send + Sync + 'static {
    /// The queue's name (`payouts`, `webhooks`).
    fn name(&self) -> &str;
}

/// Publishing jobs.
#[async_trait]
pub trait Producer: QueueName {
    /// Enqueues a job.
    ///
    /// # Errors
    /// MUST return `Ok(Enqueued::Duplicate)` (not an error) for an id already
    /// claimed, `Invalid` for `max_attempts == 0`.
    async fn enqueue(&self, job: NewJob) -> Result<Enqueued, QueueError>;

    /// Enqueues many jobs in one round trip where the backend allows; one result per job, in order.
    ///
    /// # Errors
    /// As [`Producer::enqueue`]; an error means no job of the batch is known to be added.
    async fn enqueue_bulk(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, QueueError>;
}

/// Running jobs: reserve under a lease, heartbeat, acknowledge or fail, and
/// recover the leases of workers that died.
#[async_trait]
pub trait Consumer: QueueName {
    /// Reserves the next due job under a lease of `lease`, waiting up to
    /// `wait` for one to become due and waking promptly when one is enqueued.
    /// Due delayed and failed jobs are promoted first. `None` when nothing
    /// became due in time or the queue is paused. A zero `wait` does not wait.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the backend cannot be reached.
    async fn reserve_wait(&self, lease: Duration, wait: Duration) -> Result<Option<ReservedJob>, QueueError>;

    /// Acknowledges any number of held jobs and reserves up to `count` more, in
    /// one round trip where the backend allows: a busy pool's hot path. A lost
    /// lease fails only its own acknowledgement (`false` in [`Step::acked`]).
    ///
    /// # Errors
    /// `Unavailable` when the backend cannot be reached. After an error,
    /// acknowledgements may or may not have been applied (an unapplied one
    /// expires and the job is redelivered), and jobs may have been reserved
    /// (a timeout or a connection lost after the backend ran the call): their
    /// leases expire and they are recovered as stalls. A count
    /// above the adapter's batch limit is not an error: it reserves up to
    /// that limit. MUST return `MalformedToken` for a token of a shape the
    /// queue never mints.
    async fn ack_many_and_reserve(
        &self,
        acks: &[(IdempotencyKey, LeaseToken)],
        count: usize,
        lease: Duration,
    ) -> Result<Step, QueueError>;

    /// Extends a lease to `lease` from now.
    ///
    /// # Errors
    /// MUST return `LeaseLost` when `token` does not hold the job,
    /// `MalformedToken` for a token of a shape the queue never mints.
    async fn heartbeat(&self, id: &IdempotencyKey, token: &LeaseToken, lease: Duration) -> Result<(), QueueError>;

    /// Records a failed attempt: retry with backoff while attempts remain,
    /// otherwise dead letters, keeping `error`.
    ///
    /// # Errors
    /// MUST return `LeaseLost` when `token` does not hold the job,
    /// `MalformedToken` for a token of a shape the queue never mints.
    async fn fail(
        &self,
        id: &IdempotencyKey,
        token: &LeaseToken,
        error: &str,
        kind: FailKind,
    ) -> Result<FailOutcome, QueueError>;

    /// Returns jobs whose lease expired to waiting, counting a stall; a job that
    /// stalls more than the queue's limit, or whose attempts are used up, goes
    /// to the dead letters. Reports how many jobs were recovered or
    /// dead-lettered, and the jobs this call moved to the dead letters, so
    /// that their owner can react (a worker pool's
    /// [`dead`](crate::runtime::JobHandler::dead) hook). Each dead-lettering is
    /// reported at most once: by the call that made it, and not at all when
    /// that call's reply is lost (the job is dead all the same).
    ///
    /// # Errors
    /// MUST return `Unavailable` when the backend cannot be reached. An
    /// adapter that recovers in several steps returns what the steps that
    /// succeeded did rather than an error from a later one, so that no dead
    /// job goes unreported.
    async fn recover_stalled(&self) -> Result<StallRecovery, QueueError>;
}

/// One-job helpers over [`Consumer::ack_many_and_reserve`], for every consumer.
#[async_trait]
pub trait ConsumerExt: Consumer {
    /// Reserves the next due job without waiting (one step reserving one job).
    ///
    /// # Errors
    /// As [`Consumer::ack_many_and_reserve`].
    async fn reserve(&self, lease: Duration) -> Result<Option<ReservedJob>, QueueError> {
        Ok(self.ack_many_and_reserve(&[], 1, lease).await?.jobs.pop())
    }

    /// Acknowledges one job: completed.
    ///
    /// # Errors
    /// `LeaseLost` when `token` does not hold the job (a stale worker can
    /// never ack a job another worker holds); otherwise as
    /// [`Consumer::ack_many_and_reserve`].
    async fn ack(&self, id: &IdempotencyKey, token: &LeaseToken) -> Result<(), QueueError> {
        let step = self.ack_many_and_reserve(&[(id.clone(), token.clone())], 0, Duration::from_secs(1)).await?;
        if step.acked.first().copied().unwrap_or(false) { Ok(()) } else { Err(QueueError::LeaseLost) }
    }

    /// Acknowledges one job, then reserves the next (nothing is reserved when
    /// the acknowledgement is refused).
    ///
    /// # Errors
    /// As [`ConsumerExt::ack`], then [`ConsumerExt::reserve`].
    async fn ack_and_reserve(
        &self,
        id: &IdempotencyKey,
        token: &LeaseToken,
        lease: Duration,
    ) -> Result<Option<ReservedJob>, QueueError> {
        self.ack(id, token).await?;
        self.reserve(lease).await
    }
}

impl<T: Consumer + ?Sized> ConsumerExt for T {}

/// Operating a queue: counts, listing, and the operator's moves.
#[async_trait]
pub trait QueueAdmin: QueueName {
    /// Counts per state.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the backend cannot be reached.
    async fn stats(&self) -> Result<QueueStats, QueueError>;

    /// Jobs in one state, oldest first, from `offset`, at most `limit`.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the backend cannot be reached.
    async fn list(&self, state: JobState, offset: u64, limit: u64) -> Result<Vec<JobInfo>, QueueError>;

    /// Jobs in one state after `after` (from the first when `None`), in
    /// [`QueueAdmin::list`]'s order, at most `limit`, with the cursor of the
    /// last one: a page that jobs entering or leaving the state ahead of the
    /// cursor never make skip a job that stays. An adapter keeps the cursor
    /// exact where its structure allows, also when the cursor's own job has
    /// left the state; where it keeps a state by position it goes on from
    /// that job's old place and says so ([`JobPage::resumed`]).
    ///
    /// # Errors
    /// MUST return `Invalid` for a cursor it did not mint for this state,
    /// `Unavailable` when the backend cannot be reached.
    async fn list_after(&self, state: JobState, after: Option<&JobCursor>, limit: u64) -> Result<JobPage, QueueError>;

    /// One job, in any state; `None` when unknown or no longer retained.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the backend cannot be reached.
    async fn get(&self, id: &IdempotencyKey) -> Result<Option<JobInfo>, QueueError>;

    /// Moves a dead job back to waiting with fresh attempts.
    ///
    /// # Errors
    /// MUST return `NotFound` for an unknown job and `WrongState` for a job that is not dead.
    async fn retry_dead(&self, id: &IdempotencyKey) -> Result<(), QueueError>;

    /// Moves every dead job back to waiting; returns how many.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the backend cannot be reached.
    async fn retry_all_dead(&self) -> Result<u64, QueueError>;

    /// Removes a job that is not active. The id stays claimed for the dedup window.
    ///
    /// # Errors
    /// MUST return `NotFound` for an unknown job and `WrongState` for an active one.
    async fn remove(&self, id: &IdempotencyKey) -> Result<(), QueueError>;

    /// Makes a delayed or failed job due now.
    ///
    /// # Errors
    /// MUST return `NotFound` for an unknown job and `WrongState` for one neither delayed nor failed.
    async fn promote(&self, id: &IdempotencyKey) -> Result<(), QueueError>;

    /// Stops handing out jobs (enqueue still works).
    ///
    /// # Errors
    /// MUST return `Unavailable` when the backend cannot be reached.
    async fn pause(&self) -> Result<(), QueueError>;

    /// Resumes handing out jobs.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the backend cannot be reached.
    async fn resume(&self) -> Result<(), QueueError>;
}

/// Whether the backend answers.
#[async_trait]
pub trait QueueHealth: QueueName {
    /// Checks the backend answers.
    ///
    /// # Errors
    /// MUST return `Unavailable` when it does not.
    async fn ping(&self) -> Result<(), QueueError>;
}

/// Every capability of a queue: what an adapter offers and what the example
/// server wires. Implemented for every type that has all four.
pub trait Queue: Producer + Consumer + QueueAdmin + QueueHealth {}

impl<T: Producer + Consumer + QueueAdmin + QueueHealth + ?Sized> Queue for T {}
