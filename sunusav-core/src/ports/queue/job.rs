//! The types of the queue port: jobs, their options and states, leases,
//! what a step or a recovery did, and the adapters' shared settings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::keys::IdempotencyKey;

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

    /// This job, due at `due_at_ms` (Unix ms) by a clock that reads `now_ms`:
    /// a job at a time is a delayed job whose delay is `due_at_ms - now_ms`
    /// (none when that time has passed). The delay runs on the backend's
    /// clock from enqueue, so enqueue it soon after reading `now_ms`.
    #[must_use]
    pub fn due_at(mut self, due_at_ms: u64, now_ms: u64) -> Self {
        self.options.delay = Duration::from_millis(due_at_ms.saturating_sub(now_ms));
        self
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
///
/// Opaque: only a queue mints one, when it hands out a job
/// ([`LeaseToken::minted`] is for adapters), and a caller only hands it back.
/// An adapter refuses a token of a shape it never mints with
/// [`QueueError::MalformedToken`](super::QueueError::MalformedToken).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LeaseToken(String);

impl LeaseToken {
    /// Longest token any adapter may mint.
    pub const MAX_LEN: usize = 64;

    /// Wraps the token a queue backend minted. For queue adapters: a worker
    /// never makes one.
    ///
    /// # Errors
    /// `MalformedToken` when `raw` is empty, longer than [`Self::MAX_LEN`] or
    /// not printable ASCII.
    pub fn minted(raw: impl Into<String>) -> Result<Self, super::QueueError> {
        let raw = raw.into();
        if raw.is_empty() || raw.len() > Self::MAX_LEN || !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(super::QueueError::MalformedToken);
        }
        Ok(Self(raw))
    }

    /// The token as the backend minted it, for the adapter to send back.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

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

/// What [`Consumer::ack_many_and_reserve`](super::Consumer::ack_many_and_reserve) did.
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

/// What [`Consumer::recover_stalled`](super::Consumer::recover_stalled) did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StallRecovery {
    /// Jobs whose lease had expired: returned to waiting or dead-lettered.
    pub recovered: u64,
    /// Those of them that this call moved to the dead letters, each reported
    /// by this call only.
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
    /// The errors of its failed attempts (and its stalls), oldest first: at
    /// most the queue's [`QueueConfig::error_history`] most recent ones. Kept
    /// across retries (an operator's retry of a dead job too), gone with the job.
    pub errors: Vec<JobError>,
}

/// One failed attempt of a job, as kept in its error history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    /// The attempt that failed (1-based; counted again from 1 after an
    /// operator's retry of a dead job).
    pub attempt: u32,
    /// When it failed (unix ms): the fail call, or the recovery that found its lease expired.
    pub at_ms: u64,
    /// The error the worker gave, or [`JobError::LEASE_EXPIRED`] (with the
    /// stall count) for an attempt whose lease expired without an ack.
    pub error: String,
}

impl JobError {
    /// How every adapter's stall entries begin: the attempt's lease expired
    /// without an ack (its worker died or hung).
    pub const LEASE_EXPIRED: &'static str = "lease expired";
}

/// Where a page of one state's jobs ended: [`QueueAdmin::list_after`](super::QueueAdmin::list_after)
/// goes on after it.
///
/// Opaque: an adapter mints it for one state, a caller hands it back as is
/// (a URL can carry it; it holds no secret). [`JobCursor::parse`] takes one
/// back from text; the adapter refuses one it did not mint for that state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct JobCursor(String);

impl JobCursor {
    /// Longest cursor any adapter may mint (a job id and a little more).
    pub const MAX_LEN: usize = crate::domain::keys::MAX_KEY_LEN + 64;

    /// A cursor from its text, as [`JobCursor::as_str`] gave it.
    ///
    /// # Errors
    /// `Invalid` when `raw` is empty, longer than [`Self::MAX_LEN`] or holds a
    /// control character.
    pub fn parse(raw: impl Into<String>) -> Result<Self, super::QueueError> {
        let raw = raw.into();
        if raw.is_empty() || raw.len() > Self::MAX_LEN || raw.chars().any(char::is_control) {
            return Err(super::QueueError::Invalid("not a job cursor".into()));
        }
        Ok(Self(raw))
    }

    /// The cursor's text, to hand back later.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for JobCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One page of a state's jobs, from [`QueueAdmin::list_after`](super::QueueAdmin::list_after).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobPage {
    /// The jobs, in the state's order (oldest first).
    pub jobs: Vec<JobInfo>,
    /// Where the next page starts: `None` when this page holds the state's last job.
    pub next: Option<JobCursor>,
    /// The cursor's own job had left the state and the adapter went on from
    /// where it was (only adapters that keep a state by position do; the page
    /// may then repeat or miss a job around that place).
    pub resumed: bool,
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

/// Settings shared by every queue adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueConfig {
    /// Completed jobs retained (the original's `removeOnComplete: 10`).
    pub keep_completed: u64,
    /// Dead jobs retained (the original's `removeOnFail: 50`).
    pub keep_dead: u64,
    /// Lease expiries tolerated before a job is dead (BullMQ's `maxStalledCount: 1`).
    pub max_stalls: u32,
    /// How long a job id stays claimed after the job is gone.
    pub dedup_window: Duration,
    /// Errors kept per job ([`JobInfo::errors`]): the most recent ones, the
    /// oldest dropped first. 0 keeps none.
    pub error_history: u32,
}

impl QueueConfig {
    /// The default of [`error_history`](Self::error_history): the last 10 errors of a job.
    pub const DEFAULT_ERROR_HISTORY: u32 = 10;
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            keep_completed: 10,
            keep_dead: 50,
            max_stalls: 1,
            dedup_window: Duration::from_hours(24),
            error_history: Self::DEFAULT_ERROR_HISTORY,
        }
    }
}

/// Builders, for code outside this crate (the struct is `#[non_exhaustive]`):
/// start from [`Default`] and set what differs.
impl QueueConfig {
    /// This config with [`keep_completed`](Self::keep_completed) set to `keep_completed`.
    #[must_use]
    pub const fn with_keep_completed(mut self, keep_completed: u64) -> Self {
        self.keep_completed = keep_completed;
        self
    }

    /// This config with [`keep_dead`](Self::keep_dead) set to `keep_dead`.
    #[must_use]
    pub const fn with_keep_dead(mut self, keep_dead: u64) -> Self {
        self.keep_dead = keep_dead;
        self
    }

    /// This config with [`max_stalls`](Self::max_stalls) set to `max_stalls`.
    #[must_use]
    pub const fn with_max_stalls(mut self, max_stalls: u32) -> Self {
        self.max_stalls = max_stalls;
        self
    }

    /// This config with [`dedup_window`](Self::dedup_window) set to `dedup_window`.
    #[must_use]
    pub const fn with_dedup_window(mut self, dedup_window: Duration) -> Self {
        self.dedup_window = dedup_window;
        self
    }

    /// This config with [`error_history`](Self::error_history) set to `error_history`.
    #[must_use]
    pub const fn with_error_history(mut self, error_history: u32) -> Self {
        self.error_history = error_history;
        self
    }
}
