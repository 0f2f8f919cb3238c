//! The scheduler capability: recurring schedules by id, whose runs a
//! queue enqueues once each, and the pure rules every adapter applies.
//!
//! A one-off job at a time is a producer's delayed job ([`NewJob::due_at`]).
//! A recurring schedule is a [`ScheduleSpec`]: an id, a [`JobTemplate`] and a
//! [`Repeat`] rule (a fixed interval from an anchor, or a cron expression in an
//! IANA time zone). The adapter stores it with its next run time;
//! [`Scheduler::fire_due`] enqueues every run that is due.
//!
//! # Semantics (the same in every adapter, from [`StoredSchedule`]'s rules)
//!
//! - **Clock.** Every call takes `now_ms` (Unix milliseconds) from the
//!   caller: a schedule runs on the callers' clock, not the backend's.
//! - **Once per run.** A run is (schedule id, run time). Its job id is
//!   [`ScheduleId::run_job_id`], `schedule:<id>:<run_ms>`. Firing checks and
//!   advances the stored next run time atomically (compare-and-set on the
//!   schedule's revision and its next run time), so two processes firing at
//!   once enqueue each run once; the job id's own dedup window is a second
//!   guard. State lives in the backend: a restart loses nothing.
//! - **Clock jumps forward** over several runs: the earliest missed run is
//!   fired once, and the next run is the first one after `now_ms` (the runs
//!   in between are skipped, as BullMQ and anacron do).
//! - **Clock jumps backward**: nothing is due until `now_ms` reaches the
//!   stored next run time again, and the next run time only moves forward: a
//!   fired run is never fired again.
//! - **Upsert** of an identical spec changes nothing. One whose repeat rule is
//!   the same but whose job template differs keeps the next run time (later
//!   runs use the new template). One whose rule changed starts over from the
//!   change: the next run is the new rule's first at or after `now_ms` (and
//!   after the last fired run); a run of the old rule that was due but not yet
//!   fired is dropped, and a run already fired is not fired again.
//! - **Remove** stops future runs; jobs already enqueued stay.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::{Backoff, Enqueued, JobOptions, NewJob, QueueError, QueueName};
use crate::domain::keys::IdempotencyKey;

/// Longest schedule id: its runs' job ids (`schedule:<id>:<run_ms>`) stay keys.
pub const MAX_SCHEDULE_ID_LEN: usize = 128;

/// Why a schedule cannot be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleSpecError {
    /// An id that is empty, longer than [`MAX_SCHEDULE_ID_LEN`], or with a
    /// character outside `A-Z a-z 0-9 . _ : -`.
    #[error("a schedule id is 1 to {MAX_SCHEDULE_ID_LEN} characters of A-Z a-z 0-9 . _ : -")]
    InvalidId,
    /// A cron expression that does not parse (the parser's reason).
    #[error("invalid cron expression: {0}")]
    InvalidCron(String),
    /// A time zone that is not an IANA name (`Europe/Paris`, `UTC`).
    #[error("unknown time zone")]
    UnknownTimeZone,
    /// An interval of zero.
    #[error("an interval must be at least one millisecond")]
    ZeroInterval,
    /// A job template with zero attempts.
    #[error("a job needs at least one attempt")]
    ZeroAttempts,
}

impl ScheduleSpecError {
    /// The stable code (an API's error code).
    pub const fn code(&self) -> &'static str {
        match self {
            Self::InvalidId => "invalid_schedule_id",
            Self::InvalidCron(_) => "invalid_cron",
            Self::UnknownTimeZone => "unknown_time_zone",
            Self::ZeroInterval => "zero_interval",
            Self::ZeroAttempts => "zero_attempts",
        }
    }
}

/// A schedule's id, checked.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ScheduleId(String);

impl ScheduleId {
    /// Parses an id.
    ///
    /// # Errors
    /// [`ScheduleSpecError::InvalidId`].
    pub fn parse(s: impl Into<String>) -> Result<Self, ScheduleSpecError> {
        let s = s.into();
        let ok = !s.is_empty()
            && s.len() <= MAX_SCHEDULE_ID_LEN
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        if ok { Ok(Self(s)) } else { Err(ScheduleSpecError::InvalidId) }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The job id of this schedule's run at `run_ms`: `schedule:<id>:<run_ms>`.
    pub fn run_job_id(&self, run_ms: u64) -> IdempotencyKey {
        IdempotencyKey::parse(format!("schedule:{}:{run_ms}", self.0))
            .expect("a schedule id of printable ASCII within 128 bytes makes a valid key")
    }
}

impl TryFrom<String> for ScheduleId {
    type Error = ScheduleSpecError;
    fn try_from(s: String) -> Result<Self, ScheduleSpecError> {
        Self::parse(s)
    }
}

impl From<ScheduleId> for String {
    fn from(id: ScheduleId) -> Self {
        id.0
    }
}

impl fmt::Display for ScheduleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ScheduleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScheduleId({})", self.0)
    }
}

/// A cron expression (5 fields, or 6 with seconds first, as the `croner`
/// crate reads them) evaluated in an IANA time zone: `0 9 * * *` in
/// `Europe/Paris` is 09:00 Paris time, 08:00 UTC in winter and 07:00 in
/// summer. A local time that a DST change skips or repeats is handled as
/// `croner` does.
#[derive(Clone)]
pub struct CronRule {
    expr: String,
    tz_name: String,
    cron: croner::Cron,
    tz: chrono_tz::Tz,
}

impl CronRule {
    /// Parses an expression and a time zone.
    ///
    /// # Errors
    /// [`ScheduleSpecError::InvalidCron`], [`ScheduleSpecError::UnknownTimeZone`].
    pub fn new(expr: &str, time_zone: &str) -> Result<Self, ScheduleSpecError> {
        let cron = croner::Cron::from_str(expr).map_err(|e| ScheduleSpecError::InvalidCron(e.to_string()))?;
        let tz = chrono_tz::Tz::from_str(time_zone).map_err(|_| ScheduleSpecError::UnknownTimeZone)?;
        Ok(Self { expr: expr.to_owned(), tz_name: time_zone.to_owned(), cron, tz })
    }

    /// The expression, as given.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The time zone's name, as given.
    pub fn time_zone(&self) -> &str {
        &self.tz_name
    }

    /// The first matching instant at or after `t_ms` (whole seconds); `None`
    /// when there is none within the parser's search limit.
    fn first_at_or_after(&self, t_ms: u64) -> Option<u64> {
        let secs = i64::try_from(t_ms.div_ceil(1000)).ok()?;
        let start = self.tz.from_utc_datetime(&DateTime::<Utc>::from_timestamp(secs, 0)?.naive_utc());
        let next = self.cron.find_next_occurrence(&start, true).ok()?;
        u64::try_from(next.timestamp()).ok()?.checked_mul(1000)
    }
}

impl PartialEq for CronRule {
    fn eq(&self, other: &Self) -> bool {
        self.expr == other.expr && self.tz_name == other.tz_name
    }
}

impl Eq for CronRule {}

impl fmt::Debug for CronRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CronRule").field("expr", &self.expr).field("time_zone", &self.tz_name).finish()
    }
}

/// How a schedule repeats.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawRepeat", into = "RawRepeat")]
pub enum Repeat {
    /// Runs at `anchor_ms + k × every` for every whole `k ≥ 0`.
    Every {
        /// The interval (at least one millisecond).
        every_ms: u64,
        /// A run time: runs are aligned on it.
        anchor_ms: u64,
    },
    /// Runs when a cron expression matches, in its time zone.
    Cron(CronRule),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum RawRepeat {
    Every { every_ms: u64, anchor_ms: u64 },
    Cron { expr: String, time_zone: String },
}

impl TryFrom<RawRepeat> for Repeat {
    type Error = ScheduleSpecError;
    fn try_from(raw: RawRepeat) -> Result<Self, ScheduleSpecError> {
        match raw {
            RawRepeat::Every { every_ms, anchor_ms } => Self::every(Duration::from_millis(every_ms), anchor_ms),
            RawRepeat::Cron { expr, time_zone } => Ok(Self::Cron(CronRule::new(&expr, &time_zone)?)),
        }
    }
}

impl From<Repeat> for RawRepeat {
    fn from(r: Repeat) -> Self {
        match r {
            Repeat::Every { every_ms, anchor_ms } => Self::Every { every_ms, anchor_ms },
            Repeat::Cron(c) => Self::Cron { expr: c.expr, time_zone: c.tz_name },
        }
    }
}

impl Repeat {
    /// Every `every`, aligned on `anchor_ms`.
    ///
    /// # Errors
    /// [`ScheduleSpecError::ZeroInterval`] for an interval under a millisecond.
    pub fn every(every: Duration, anchor_ms: u64) -> Result<Self, ScheduleSpecError> {
        let every_ms = u64::try_from(every.as_millis()).unwrap_or(u64::MAX);
        if every_ms == 0 {
            return Err(ScheduleSpecError::ZeroInterval);
        }
        Ok(Self::Every { every_ms, anchor_ms })
    }

    /// A cron expression in a time zone ([`CronRule::new`]).
    ///
    /// # Errors
    /// As [`CronRule::new`].
    pub fn cron(expr: &str, time_zone: &str) -> Result<Self, ScheduleSpecError> {
        Ok(Self::Cron(CronRule::new(expr, time_zone)?))
    }

    /// The first run at or after `t_ms`; `None` when there is none.
    pub fn first_at_or_after(&self, t_ms: u64) -> Option<u64> {
        match self {
            Self::Every { every_ms, anchor_ms } => {
                let every = (*every_ms).max(1);
                if t_ms <= *anchor_ms {
                    return Some(*anchor_ms);
                }
                let k = (t_ms - anchor_ms).div_ceil(every);
                anchor_ms.checked_add(k.checked_mul(every)?)
            }
            Self::Cron(c) => c.first_at_or_after(t_ms),
        }
    }
}

/// What each run enqueues: a job with this payload and these options (no
/// delay: a run is due when fired).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobTemplate {
    /// Opaque payload (JSON by convention).
    pub payload: Vec<u8>,
    /// Higher runs first.
    pub priority: i32,
    /// Attempts before the job is dead (at least 1).
    pub max_attempts: u32,
    /// Delay between attempts.
    pub backoff: Backoff,
}

impl JobTemplate {
    /// A template with the default options of [`JobOptions`].
    pub fn new(payload: impl Into<Vec<u8>>) -> Self {
        let o = JobOptions::default();
        Self { payload: payload.into(), priority: o.priority, max_attempts: o.max_attempts, backoff: o.backoff }
    }

    /// The job of one run.
    pub fn job(&self, id: IdempotencyKey) -> NewJob {
        NewJob {
            id,
            payload: self.payload.clone(),
            options: JobOptions {
                priority: self.priority,
                delay: Duration::ZERO,
                max_attempts: self.max_attempts,
                backoff: self.backoff,
            },
        }
    }
}

/// A recurring schedule: an id, what each run enqueues, and when runs are.
/// Deserializing checks it as [`ScheduleSpec::new`] does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawSpec", into = "RawSpec")]
pub struct ScheduleSpec {
    id: ScheduleId,
    job: JobTemplate,
    repeat: Repeat,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    id: ScheduleId,
    job: JobTemplate,
    repeat: Repeat,
}

impl TryFrom<RawSpec> for ScheduleSpec {
    type Error = ScheduleSpecError;
    fn try_from(raw: RawSpec) -> Result<Self, ScheduleSpecError> {
        Self::new(raw.id, raw.job, raw.repeat)
    }
}

impl From<ScheduleSpec> for RawSpec {
    fn from(s: ScheduleSpec) -> Self {
        Self { id: s.id, job: s.job, repeat: s.repeat }
    }
}

impl ScheduleSpec {
    /// A schedule, checked.
    ///
    /// # Errors
    /// [`ScheduleSpecError::ZeroAttempts`] for a template of zero attempts.
    pub fn new(id: ScheduleId, job: JobTemplate, repeat: Repeat) -> Result<Self, ScheduleSpecError> {
        if job.max_attempts == 0 {
            return Err(ScheduleSpecError::ZeroAttempts);
        }
        Ok(Self { id, job, repeat })
    }

    /// The id.
    pub fn id(&self) -> &ScheduleId {
        &self.id
    }
    /// What each run enqueues.
    pub fn job(&self) -> &JobTemplate {
        &self.job
    }
    /// When runs are.
    pub fn repeat(&self) -> &Repeat {
        &self.repeat
    }
}

/// A schedule as an adapter stores it: the rules of upsert and fire, said
/// once here, that every adapter applies (the backend only stores the result,
/// atomically, under `revision`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSchedule {
    /// The spec.
    pub spec: ScheduleSpec,
    /// Changes with every write; never the same twice over the queue's life.
    pub revision: u64,
    /// The next run not fired yet (`None`: no run is left).
    pub next_run_ms: Option<u64>,
    /// The last run fired.
    pub last_run_ms: Option<u64>,
}

/// What an upsert must write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpsertPlan {
    /// What it does.
    pub outcome: Upserted,
    /// The next run to store.
    pub next_run_ms: Option<u64>,
}

/// What a fire must write, with the run's job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirePlan {
    /// The run fired: the stored next run time.
    pub run_ms: u64,
    /// The next run to store: the first after `now_ms`.
    pub next_run_ms: Option<u64>,
    /// The run's job.
    pub job: NewJob,
}

impl StoredSchedule {
    /// What upserting `spec` at `now_ms` over `existing` writes.
    pub fn plan_upsert(existing: Option<&Self>, spec: &ScheduleSpec, now_ms: u64) -> UpsertPlan {
        match existing {
            Some(old) if old.spec == *spec => UpsertPlan { outcome: Upserted::Unchanged, next_run_ms: old.next_run_ms },
            Some(old) if old.spec.repeat == spec.repeat => {
                UpsertPlan { outcome: Upserted::Updated, next_run_ms: old.next_run_ms }
            }
            Some(old) => {
                let from = old.last_run_ms.map_or(now_ms, |last| now_ms.max(last.saturating_add(1)));
                UpsertPlan { outcome: Upserted::Updated, next_run_ms: spec.repeat.first_at_or_after(from) }
            }
            None => UpsertPlan { outcome: Upserted::Created, next_run_ms: spec.repeat.first_at_or_after(now_ms) },
        }
    }

    /// The run to fire at `now_ms`, if one is due.
    pub fn plan_fire(&self, now_ms: u64) -> Option<FirePlan> {
        let run_ms = self.next_run_ms.filter(|next| *next <= now_ms)?;
        let next_run_ms = self.spec.repeat.first_at_or_after(now_ms.saturating_add(1));
        Some(FirePlan { run_ms, next_run_ms, job: self.spec.job.job(self.spec.id.run_job_id(run_ms)) })
    }

    /// What [`Scheduler::schedules`] reports of it.
    pub fn info(&self) -> ScheduleInfo {
        ScheduleInfo { spec: self.spec.clone(), next_run_ms: self.next_run_ms, last_run_ms: self.last_run_ms }
    }
}

/// What an upsert did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Upserted {
    /// A new schedule.
    Created,
    /// An existing schedule changed.
    Updated,
    /// The same spec was stored already: nothing changed.
    Unchanged,
}

/// A schedule as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleInfo {
    /// The spec.
    pub spec: ScheduleSpec,
    /// The next run not fired yet (`None`: no run is left).
    pub next_run_ms: Option<u64>,
    /// The last run fired.
    pub last_run_ms: Option<u64>,
}

/// One run that [`Scheduler::fire_due`] fired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FiredRun {
    /// Its schedule.
    pub schedule: ScheduleId,
    /// Its run time.
    pub run_ms: u64,
    /// Its job's id ([`ScheduleId::run_job_id`]).
    pub job: IdempotencyKey,
    /// `Duplicate` when the job id was still claimed (the run had been
    /// enqueued already, e.g. before the schedule was removed and made again).
    pub enqueued: Enqueued,
    /// The schedule's next run after this one.
    pub next_run_ms: Option<u64>,
}

/// What [`Scheduler::fire_due`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FiredRuns {
    /// The runs this call fired (none that another call fired).
    pub runs: Vec<FiredRun>,
}

/// Recurring schedules whose runs the queue enqueues once each. See the
/// module docs for the semantics.
#[async_trait]
pub trait Scheduler: QueueName {
    /// Creates or replaces the schedule `spec.id()`, at `now_ms`.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the backend cannot be reached.
    async fn upsert_schedule(&self, spec: ScheduleSpec, now_ms: u64) -> Result<Upserted, QueueError>;

    /// Removes a schedule; `false` when there was none.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the backend cannot be reached.
    async fn remove_schedule(&self, id: &ScheduleId) -> Result<bool, QueueError>;

    /// Every schedule, by id.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the backend cannot be reached, `Corrupt`
    /// for a stored schedule it cannot read.
    async fn schedules(&self) -> Result<Vec<ScheduleInfo>, QueueError>;

    /// Enqueues every run due at `now_ms` (at most one per schedule per
    /// call), each once whoever else calls it at the same time.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the backend cannot be reached. After an
    /// error some runs may have been fired; none is fired twice.
    async fn fire_due(&self, now_ms: u64) -> Result<FiredRuns, QueueError>;
}
