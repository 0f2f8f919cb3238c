//! The queue port: durable jobs with leases, retries, backoff and dead letters.
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

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::keys::IdempotencyKey;

/// Exponential backoff: attempt `n` (1-based) that failed waits `base × 2^(n-1)`,
/// capped at `max`, with optional "equal jitter" (a random half of the delay).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    /// The first retry's delay.
    pub base: Duration,
    /// The largest delay.
    pub max: Duration,
    /// Randomise each delay within `[d/2, d]`.
    pub jitter: bool,
}

impl Default for Backoff {
    /// The original's `{ type: 'exponential', delay: 2000 }`, capped at one hour.
    fn default() -> Self {
        Self { base: Duration::from_secs(2), max: Duration::from_hours(1), jitter: false }
    }
}

impl Backoff {
    /// The delay after failed attempt `attempt` (1-based), before jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(32);
        let factor = 1u32.checked_shl(exp).unwrap_or(u32::MAX);
        self.base.checked_mul(factor).unwrap_or(self.max).min(self.max)
    }

    /// The delay after failed attempt `attempt`, with jitter drawn from `unit`
    /// (a number in `0..=u32::MAX` chosen by the caller) when enabled.
    pub fn delay_with_jitter(&self, attempt: u32, unit: u32) -> Duration {
        let d = self.delay(attempt);
        if !self.jitter {
            return d;
        }
        let half = d / 2;
        let extra_ns = u128::from(unit) * d.saturating_sub(half).as_nanos() / u128::from(u32::MAX);
        half + Duration::from_nanos(u64::try_from(extra_ns).unwrap_or(u64::MAX))
    }
}

/// Options of one job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOptions {
    /// Higher runs first; FIFO within one priority.
    pub priority: i32,
    /// Run no sooner than this after enqueue.
    pub delay: Duration,
    /// Attempts before the job is dead (at least 1).
    pub max_attempts: u32,
    /// Delay between attempts.
    pub backoff: Backoff,
}

impl Default for JobOptions {
    /// The original's options: 5 attempts, exponential backoff from 2 s.
    fn default() -> Self {
        Self { priority: 0, delay: Duration::ZERO, max_attempts: 5, backoff: Backoff::default() }
    }
}

/// A job to enqueue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewJob {
    /// The job id: the same id twice is one job.
    pub id: IdempotencyKey,
    /// Opaque payload (JSON by convention).
    pub payload: Vec<u8>,
    /// Options.
    pub options: JobOptions,
}

impl NewJob {
    /// A job with default options.
    pub fn new(id: IdempotencyKey, payload: impl Into<Vec<u8>>) -> Self {
        Self { id, payload: payload.into(), options: JobOptions::default() }
    }
}

/// The result of an enqueue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Enqueued {
    /// A new job.
    Added,
    /// The id was already claimed (a live job, or one within the dedup window).
    Duplicate,
}

/// A lease token: proof of holding a job.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LeaseToken(pub String);

impl std::fmt::Debug for LeaseToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LeaseToken({})", self.0)
    }
}

/// A job held by a worker under a lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservedJob {
    /// The job id.
    pub id: IdempotencyKey,
    /// The payload.
    pub payload: Vec<u8>,
    /// This attempt's number, from 1.
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// The lease token that ack, fail and heartbeat require.
    pub token: LeaseToken,
    /// When the job was enqueued (unix ms).
    pub enqueued_at_ms: u64,
    /// When the job became due (unix ms): wait time = reserve time − this.
    pub due_at_ms: u64,
}

/// What [`Queue::ack_many_and_reserve`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Per acknowledgement, in order: `true` when acked, `false` when the lease was lost.
    pub acked: Vec<bool>,
    /// The jobs reserved, highest priority first.
    pub jobs: Vec<ReservedJob>,
    /// A hint, when nothing was reserved nor acked: how long until the next
    /// delayed or failed job is due. `None` when there is none or the adapter
    /// does not say.
    pub next_due: Option<Duration>,
}

/// A job that stalled-lease recovery moved to the dead letters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StalledDead {
    /// The job as it was last held: its id, payload, the attempt that stalled
    /// and the token of the lease that expired (no longer valid).
    pub job: ReservedJob,
    /// The error kept with the dead job.
    pub error: String,
}

/// What [`Queue::recover_stalled_jobs`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StallRecovery {
    /// Jobs whose lease had expired: returned to waiting or dead-lettered.
    pub recovered: u64,
    /// Those of them that this call moved to the dead letters, each reported
    /// by this call only. Empty when the adapter does not report them (the
    /// default of [`Queue::recover_stalled_jobs`]).
    pub dead: Vec<StalledDead>,
}

/// How an attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailKind {
    /// Retry with the job's backoff while attempts remain.
    Retry,
    /// Retry after this delay while attempts remain (the error knows better).
    RetryAfter(Duration),
    /// Do not retry: dead letters now.
    Permanent,
}

/// What a fail did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOutcome {
    /// Scheduled for another attempt after this delay.
    Retrying {
        /// Delay before the next attempt.
        delay: Duration,
    },
    /// Moved to the dead letters.
    Dead,
}

/// A job's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Due, waiting for a worker.
    Waiting,
    /// Held by a worker.
    Active,
    /// Due later.
    Delayed,
    /// Waiting for a retry after a failed attempt.
    Failed,
    /// Acknowledged (retained).
    Completed,
    /// Dead letters.
    Dead,
}

impl JobState {
    /// All states, in display order.
    pub const ALL: [Self; 6] = [Self::Waiting, Self::Active, Self::Delayed, Self::Failed, Self::Completed, Self::Dead];

    /// The stable lower-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Active => "active",
            Self::Delayed => "delayed",
            Self::Failed => "failed",
            Self::Completed => "completed",
            Self::Dead => "dead",
        }
    }

    /// Parses the stable name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// Everything known of one job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobInfo {
    /// The id.
    pub id: IdempotencyKey,
    /// The state.
    pub state: JobState,
    /// The payload, as text when UTF-8 (lossy otherwise).
    pub payload: Vec<u8>,
    /// Attempts started so far.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Priority.
    pub priority: i32,
    /// Times its lease expired without an ack.
    pub stalls: u32,
    /// Enqueued at (unix ms).
    pub created_at_ms: u64,
    /// Due at (unix ms), for waiting, delayed and failed jobs.
    pub due_at_ms: u64,
    /// Finished at (unix ms), for completed and dead jobs.
    pub finished_at_ms: Option<u64>,
    /// The last error.
    pub last_error: Option<String>,
}

/// Counts per state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStats {
    /// Waiting.
    pub waiting: u64,
    /// Active.
    pub active: u64,
    /// Delayed.
    pub delayed: u64,
    /// Failed, waiting for a retry.
    pub failed: u64,
    /// Completed (retained).
    pub completed: u64,
    /// Dead letters (retained).
    pub dead: u64,
    /// Whether the queue is paused.
    pub paused: bool,
}

impl QueueStats {
    /// The count of one state.
    pub const fn count(&self, state: JobState) -> u64 {
        match state {
            JobState::Waiting => self.waiting,
            JobState::Active => self.active,
            JobState::Delayed => self.delayed,
            JobState::Failed => self.failed,
            JobState::Completed => self.completed,
            JobState::Dead => self.dead,
        }
    }
}

/// Errors of the queue port.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The lease is gone: expired and taken by another worker, or the token is wrong.
    #[error("lease lost")]
    LeaseLost,
    /// No such job.
    #[error("job not found")]
    NotFound,
    /// The job is not in a state that allows the operation.
    #[error("job is {0:?}")]
    WrongState(JobState),
    /// Invalid arguments (zero attempts, payload too large, …).
    #[error("invalid job: {0}")]
    Invalid(String),
    /// The backend is unreachable; retry later.
    #[error("queue unavailable: {0}")]
    Unavailable(String),
}

/// A durable job queue.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// The queue's name (`payouts`, `webhooks`).
    fn name(&self) -> &str;

    /// Enqueues a job.
    ///
    /// # Errors
    /// MUST return `Ok(Enqueued::Duplicate)` (not an error) for an id already
    /// claimed, `Invalid` for `max_attempts == 0`.
    async fn enqueue(&self, job: NewJob) -> Result<Enqueued, QueueError>;

    /// Enqueues many jobs in one round trip where the backend allows; one result per job, in order.
    ///
    /// # Errors
    /// As [`Queue::enqueue`]; an error means no job of the batch is known to be added.
    async fn enqueue_bulk(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, QueueError>;

    /// Reserves the next due job under a lease of `lease`, without waiting.
    /// Due delayed and failed jobs are promoted first. `None` when nothing is
    /// due or the queue is paused.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the backend cannot be reached.
    async fn reserve(&self, lease: Duration) -> Result<Option<ReservedJob>, QueueError>;

    /// As [`Queue::reserve`], but waits up to `wait` for a job to become due,
    /// waking promptly when one is enqueued.
    ///
    /// # Errors
    /// As [`Queue::reserve`].
    async fn reserve_wait(&self, lease: Duration, wait: Duration) -> Result<Option<ReservedJob>, QueueError>;

    /// Extends a lease to `lease` from now.
    ///
    /// # Errors
    /// MUST return `LeaseLost` when `token` does not hold the job.
    async fn heartbeat(&self, id: &IdempotencyKey, token: &LeaseToken, lease: Duration) -> Result<(), QueueError>;

    /// Acknowledges a job: completed.
    ///
    /// # Errors
    /// MUST return `LeaseLost` when `token` does not hold the job (a stale
    /// worker can never ack a job another worker holds).
    async fn ack(&self, id: &IdempotencyKey, token: &LeaseToken) -> Result<(), QueueError>;

    /// Acknowledges a job and reserves the next one in one round trip where the
    /// backend allows (the hot path of a busy worker).
    ///
    /// # Errors
    /// As [`Queue::ack`] then [`Queue::reserve`].
    async fn ack_and_reserve(
        &self,
        id: &IdempotencyKey,
        token: &LeaseToken,
        lease: Duration,
    ) -> Result<Option<ReservedJob>, QueueError> {
        self.ack(id, token).await?;
        self.reserve(lease).await
    }

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
    /// that limit.
    async fn ack_many_and_reserve(
        &self,
        acks: &[(IdempotencyKey, LeaseToken)],
        count: usize,
        lease: Duration,
    ) -> Result<Step, QueueError> {
        let mut step = Step::default();
        for (id, token) in acks {
            match self.ack(id, token).await {
                Ok(()) => step.acked.push(true),
                Err(QueueError::LeaseLost | QueueError::NotFound | QueueError::WrongState(_)) => step.acked.push(false),
                Err(e) => return Err(e),
            }
        }
        for _ in 0..count {
            match self.reserve(lease).await? {
                Some(job) => step.jobs.push(job),
                None => break,
            }
        }
        Ok(step)
    }

    /// Records a failed attempt: retry with backoff while attempts remain,
    /// otherwise dead letters, keeping `error`.
    ///
    /// # Errors
    /// MUST return `LeaseLost` when `token` does not hold the job.
    async fn fail(
        &self,
        id: &IdempotencyKey,
        token: &LeaseToken,
        error: &str,
        kind: FailKind,
    ) -> Result<FailOutcome, QueueError>;

    /// Returns jobs whose lease expired to waiting, counting a stall; a job that
    /// stalls more than the queue's limit, or whose attempts are used up, goes
    /// to the dead letters. Returns how many jobs were recovered or
    /// dead-lettered.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the backend cannot be reached.
    async fn recover_stalled(&self) -> Result<u64, QueueError>;

    /// As [`Queue::recover_stalled`], and reports the jobs this call moved to
    /// the dead letters, so that their owner can react (a worker pool's
    /// [`dead`](crate::worker::JobHandler::dead) hook). Each dead-lettering is
    /// reported at most once: by the call that made it, and not at all when
    /// that call's reply is lost (the job is dead all the same). The default
    /// reports no dead job; adapters override it.
    ///
    /// # Errors
    /// As [`Queue::recover_stalled`]. An adapter that recovers in several
    /// steps returns what the steps that succeeded did rather than an error
    /// from a later one, so that no dead job goes unreported.
    async fn recover_stalled_jobs(&self) -> Result<StallRecovery, QueueError> {
        Ok(StallRecovery { recovered: self.recover_stalled().await?, dead: Vec::new() })
    }

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

    /// Checks the backend answers.
    ///
    /// # Errors
    /// MUST return `Unavailable` when it does not.
    async fn ping(&self) -> Result<(), QueueError>;
}

/// Settings shared by every queue adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    /// Completed jobs retained (the original's `removeOnComplete: 10`).
    pub keep_completed: u64,
    /// Dead jobs retained (the original's `removeOnFail: 50`).
    pub keep_dead: u64,
    /// Lease expiries tolerated before a job is dead (BullMQ's `maxStalledCount: 1`).
    pub max_stalls: u32,
    /// How long a job id stays claimed after the job is gone.
    pub dedup_window: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self { keep_completed: 10, keep_dead: 50, max_stalls: 1, dedup_window: Duration::from_hours(24) }
    }
}
