//! What a recurring schedule is: its id, its job template and its repeat
//! rule (an interval, or a cron expression in a time zone), each checked when
//! made or read (parse, don't validate).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::keys::IdempotencyKey;
use crate::ports::queue::{Backoff, JobOptions, NewJob};

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
/// summer. A local time that a DST change skips runs at the first instant
/// after the gap (02:30 on the spring day runs at 03:00), and one that it
/// repeats runs once, at its first occurrence.
#[derive(Clone)]
pub struct CronRule {
    expr: String,
    tz_name: String,
    /// Boxed: a parsed expression is a few hundred bytes.
    cron: Box<croner::Cron>,
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
        Ok(Self { expr: expr.to_owned(), tz_name: time_zone.to_owned(), cron: Box::new(cron), tz })
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
        f.debug_struct("CronRule").field("expr", &self.expr).field("time_zone", &self.tz_name).finish_non_exhaustive()
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
