//! Decoding script replies into the port's types, and encoding arguments.
//!
//! Decoding is strict: a reply of the wrong shape (not an array, an array of
//! the wrong length, a missing or repeated field, a value of the wrong type,
//! a number out of range, an unknown state code) is [`QueueError::Corrupt`],
//! naming what was wrong: a bug or a corruption to look at, never a retry,
//! and never read as a zero or an absent value. The admin script's job info
//! and stats replies are flat name/value pairs (as `HGETALL`'s) and are
//! decoded by name; the hot path's replies (step, recover) stay positional,
//! with their lengths checked.

use std::fmt;
use std::time::Duration;

use fred::bytes::Bytes;
use fred::types::Value;
use sunusav_core::IdempotencyKey;
use sunusav_core::ports::queue::{
    Enqueued, FailOutcome, JobInfo, JobState, LeaseToken, QueueError, QueueStats, ReservedJob, StallRecovery,
    StalledDead, Step,
};

use crate::codes::{self, Field, INFO, INFO_ID, STATES, STATS_PAUSED, field};

/// Largest millisecond count handed to Lua (whose numbers are doubles): ~285 years.
const MAX_MS: u64 = 1 << 53;

/// Values per job in the step and recover scripts' flat job arrays:
/// id, payload, attempt, max attempts, token, created, due.
const RESERVED_JOB_LEN: usize = 7;

pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(MAX_MS).min(MAX_MS)
}

pub(crate) fn num(n: u64) -> Value {
    Value::String(n.to_string().into())
}

pub(crate) fn text(s: &str) -> Value {
    Value::String(s.to_string().into())
}

pub(crate) fn bytes(b: Vec<u8>) -> Value {
    Value::Bytes(Bytes::from(b))
}

pub(crate) fn corrupt(what: impl fmt::Display) -> QueueError {
    QueueError::Corrupt(format!("unexpected reply from Redis: {what}"))
}

/// Strict readers of one value; `what` names it in the error.
mod read {
    use std::fmt;

    use fred::types::Value;
    use sunusav_core::ports::queue::QueueError;

    use super::corrupt;

    /// A value, shortly, for error messages (never a whole payload).
    struct Shown<'a>(&'a Value);

    impl fmt::Display for Shown<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            const MAX: usize = 40;
            match self.0 {
                Value::Null => f.write_str("nil"),
                Value::Integer(i) => write!(f, "the integer {i}"),
                Value::String(s) if s.len() <= MAX => write!(f, "the string {:?}", &**s),
                Value::String(s) => write!(f, "a string of {} bytes", s.len()),
                Value::Bytes(b) => write!(f, "{} bytes that are not UTF-8", b.len()),
                Value::Array(a) => write!(f, "an array of {}", a.len()),
                other => write!(f, "a {}", other.kind()),
            }
        }
    }

    fn wrong(what: impl fmt::Display, expected: &str, got: &Value) -> QueueError {
        corrupt(format_args!("{what}: expected {expected}, got {}", Shown(got)))
    }

    pub(super) fn array(v: Value, what: impl fmt::Display + Copy) -> Result<Vec<Value>, QueueError> {
        match v {
            Value::Array(a) => Ok(a),
            other => Err(wrong(what, "an array", &other)),
        }
    }

    /// An array of exactly `N` values.
    pub(super) fn tuple<const N: usize>(v: Value, what: impl fmt::Display + Copy) -> Result<[Value; N], QueueError> {
        let a = array(v, what)?;
        let len = a.len();
        <[Value; N]>::try_from(a).map_err(|_| corrupt(format_args!("{what}: expected {N} values, got {len}")))
    }

    /// An integer: a Lua number, or a string of decimal digits (a hash field).
    pub(super) fn int(v: &Value, what: impl fmt::Display + Copy) -> Result<i64, QueueError> {
        match v {
            Value::Integer(i) => Ok(*i),
            Value::String(s) => s.parse().map_err(|_| wrong(what, "an integer", v)),
            other => Err(wrong(what, "an integer", other)),
        }
    }

    /// A non-negative integer.
    pub(super) fn uint(v: &Value, what: impl fmt::Display + Copy) -> Result<u64, QueueError> {
        match v {
            Value::Integer(i) => u64::try_from(*i).map_err(|_| wrong(what, "a non-negative integer", v)),
            Value::String(s) => s.parse().map_err(|_| wrong(what, "a non-negative integer", v)),
            other => Err(wrong(what, "a non-negative integer", other)),
        }
    }

    pub(super) fn u32(v: &Value, what: impl fmt::Display + Copy) -> Result<u32, QueueError> {
        u32::try_from(uint(v, what)?).map_err(|_| wrong(what, "an integer up to 2^32-1", v))
    }

    pub(super) fn i32(v: &Value, what: impl fmt::Display + Copy) -> Result<i32, QueueError> {
        i32::try_from(int(v, what)?).map_err(|_| wrong(what, "a 32-bit integer", v))
    }

    /// A Lua `0` or `1`.
    pub(super) fn flag(v: &Value, what: impl fmt::Display + Copy) -> Result<bool, QueueError> {
        match v {
            Value::Integer(0) => Ok(false),
            Value::Integer(1) => Ok(true),
            other => Err(wrong(what, "0 or 1", other)),
        }
    }

    /// A UTF-8 string.
    pub(super) fn string(v: Value, what: impl fmt::Display + Copy) -> Result<String, QueueError> {
        match v {
            Value::String(s) => Ok(s.to_string()),
            other => Err(wrong(what, "a string", &other)),
        }
    }

    /// A Redis string, UTF-8 or not.
    pub(super) fn blob(v: Value, what: impl fmt::Display + Copy) -> Result<Vec<u8>, QueueError> {
        match v {
            Value::String(s) => Ok(s.into_inner().to_vec()),
            Value::Bytes(b) => Ok(b.to_vec()),
            other => Err(wrong(what, "a string", &other)),
        }
    }

    /// Flat name/value pairs (as `HGETALL`'s), each name one of `names` and
    /// given at most once; their values in the order of `names`.
    pub(super) fn named<const N: usize>(
        v: Value,
        what: impl fmt::Display + Copy,
        names: [&str; N],
    ) -> Result<[Option<Value>; N], QueueError> {
        let flat = array(v, what)?;
        if !flat.len().is_multiple_of(2) {
            return Err(corrupt(format_args!("{what}: {} values, not name/value pairs", flat.len())));
        }
        let mut out: [Option<Value>; N] = std::array::from_fn(|_| None);
        let mut it = flat.into_iter();
        while let (Some(name), Some(value)) = (it.next(), it.next()) {
            let name = string(name, format_args!("{what}: a field name"))?;
            let i = names
                .iter()
                .position(|n| *n == name)
                .ok_or_else(|| corrupt(format_args!("{what}: unknown field {name:?}")))?;
            if out[i].replace(value).is_some() {
                return Err(corrupt(format_args!("{what}: field {name:?} twice")));
            }
        }
        Ok(out)
    }
}

fn to_id(v: Value, what: impl fmt::Display + Copy) -> Result<IdempotencyKey, QueueError> {
    let s = read::string(v, what)?;
    IdempotencyKey::parse(&s).map_err(|e| corrupt(format_args!("{what}: invalid job id {s:?}: {e}")))
}

fn to_token(v: Value, what: impl fmt::Display + Copy) -> Result<LeaseToken, QueueError> {
    let s = read::string(v, what)?;
    LeaseToken::minted(s).map_err(|_| corrupt(format_args!("{what}: malformed lease token")))
}

/// The state of a code stored in a job hash.
fn to_state(v: Value, what: impl fmt::Display + Copy) -> Result<JobState, QueueError> {
    let code = read::string(v, what)?;
    codes::state_of_code(&code).ok_or_else(|| corrupt(format_args!("{what}: unknown job state code {code:?}")))
}

/// Reserved jobs from a flat array of [`RESERVED_JOB_LEN`] values per job.
fn reserved_jobs(flat: Vec<Value>, what: impl fmt::Display + Copy) -> Result<Vec<ReservedJob>, QueueError> {
    if !flat.len().is_multiple_of(RESERVED_JOB_LEN) {
        return Err(corrupt(format_args!("{what}: {} values, not {RESERVED_JOB_LEN} per job", flat.len())));
    }
    let mut out = Vec::with_capacity(flat.len() / RESERVED_JOB_LEN);
    let mut it = flat.into_iter();
    for _ in 0..out.capacity() {
        // The length was checked: each job has its values.
        let [id, payload, attempt, max, token, created, due]: [Value; RESERVED_JOB_LEN] =
            std::array::from_fn(|_| it.next().unwrap_or(Value::Null));
        let id = to_id(id, what)?;
        out.push(ReservedJob {
            payload: read::blob(payload, format_args!("{what}: payload of {id}"))?,
            attempt: read::u32(&attempt, format_args!("{what}: attempt of {id}"))?,
            max_attempts: read::u32(&max, format_args!("{what}: max attempts of {id}"))?,
            token: to_token(token, format_args!("{what}: token of {id}"))?,
            enqueued_at_ms: read::uint(&created, format_args!("{what}: created of {id}"))?,
            due_at_ms: read::uint(&due, format_args!("{what}: due of {id}"))?,
            id,
        });
    }
    Ok(out)
}

/// The step script's `{acks (1 held / 0 lost, one per ack), jobs (flat, 7 per
/// job, at most count), next_due_in_ms (-1 none)}`.
pub(crate) fn step(v: Value, acks: usize, count: usize) -> Result<Step, QueueError> {
    let [acked, jobs, next_due] = read::tuple(v, "step reply")?;
    let acked = read::array(acked, "step reply: acks")?;
    if acked.len() != acks {
        return Err(corrupt(format_args!("step reply: {} ack results for {acks} acks", acked.len())));
    }
    let acked = acked.iter().map(|a| read::flag(a, "step reply: an ack result")).collect::<Result<_, _>>()?;
    let jobs = reserved_jobs(read::array(jobs, "step reply: jobs")?, "step reply: jobs")?;
    if jobs.len() > count {
        return Err(corrupt(format_args!("step reply: {} jobs reserved, {count} asked", jobs.len())));
    }
    let next_due = match read::int(&next_due, "step reply: next due")? {
        -1 => None,
        d => Some(Duration::from_millis(
            u64::try_from(d).map_err(|_| corrupt(format_args!("step reply: next due in {d} ms")))?,
        )),
    };
    Ok(Step { acked, jobs, next_due })
}

/// The enqueue script's reply: one `1` (added) or `0` (duplicate) per job.
pub(crate) fn enqueued(v: Value, jobs: usize) -> Result<Vec<Enqueued>, QueueError> {
    let reply = read::array(v, "enqueue reply")?;
    if reply.len() != jobs {
        return Err(corrupt(format_args!("enqueue reply: {} results for {jobs} jobs", reply.len())));
    }
    reply
        .iter()
        .map(|r| Ok(if read::flag(r, "enqueue reply: a result")? { Enqueued::Added } else { Enqueued::Duplicate }))
        .collect()
}

/// The heartbeat script's reply: `1` extended, `0` lease lost.
pub(crate) fn heartbeat(v: &Value) -> Result<(), QueueError> {
    if read::flag(v, "heartbeat reply")? { Ok(()) } else { Err(QueueError::LeaseLost) }
}

/// The fail script's `{-1}` lease lost, `{0}` dead, `{1, delay_ms}` retrying.
pub(crate) fn fail_outcome(v: Value) -> Result<FailOutcome, QueueError> {
    let reply = read::array(v, "fail reply")?;
    match reply.as_slice() {
        [Value::Integer(-1)] => Err(QueueError::LeaseLost),
        [Value::Integer(0)] => Ok(FailOutcome::Dead),
        [Value::Integer(1), delay] => {
            Ok(FailOutcome::Retrying { delay: Duration::from_millis(read::uint(delay, "fail reply: delay")?) })
        }
        other => Err(corrupt(format_args!("fail reply: expected {{-1}}, {{0}} or {{1, delay}}, got {other:?}"))),
    }
}

/// The recovery script's `{n, dead (flat, 7 per job), errors (one per dead job)}`.
pub(crate) fn stall_recovery(v: Value) -> Result<StallRecovery, QueueError> {
    let [recovered, dead, errors] = read::tuple(v, "recover reply")?;
    let recovered = read::uint(&recovered, "recover reply: count")?;
    let jobs = reserved_jobs(read::array(dead, "recover reply: dead jobs")?, "recover reply: dead jobs")?;
    let errors = read::array(errors, "recover reply: errors")?;
    if errors.len() != jobs.len() {
        return Err(corrupt(format_args!("recover reply: {} errors for {} dead jobs", errors.len(), jobs.len())));
    }
    if (jobs.len() as u64) > recovered {
        return Err(corrupt(format_args!("recover reply: {} dead of {recovered} recovered", jobs.len())));
    }
    let dead = jobs
        .into_iter()
        .zip(errors)
        .map(|(job, error)| {
            let error = read::string(error, format_args!("recover reply: error of {}", job.id))?;
            Ok(StalledDead { job, error })
        })
        .collect::<Result<_, QueueError>>()?;
    Ok(StallRecovery { recovered, dead })
}

/// The fields of one job info reply, taken out by name.
struct InfoFields {
    id: IdempotencyKey,
    values: [Option<Value>; INFO.len()],
}

impl InfoFields {
    /// A field's value if given, and its description for errors.
    fn optional(&mut self, f: Field) -> (Option<Value>, String) {
        let what = format!("job info of {}: {} (hash field {:?})", self.id, f.name, f.code);
        (INFO.iter().position(|x| *x == f).and_then(|i| self.values[i].take()), what)
    }

    fn required(&mut self, f: Field) -> Result<(Value, String), QueueError> {
        match self.optional(f) {
            (Some(v), what) => Ok((v, what)),
            (None, what) => Err(corrupt(format_args!("{what} is missing"))),
        }
    }

    fn uint(&mut self, f: Field) -> Result<u64, QueueError> {
        let (v, what) = self.required(f)?;
        read::uint(&v, &what)
    }

    fn u32(&mut self, f: Field) -> Result<u32, QueueError> {
        let (v, what) = self.required(f)?;
        read::u32(&v, &what)
    }
}

/// One job of the admin script's `get` and `list` replies: the name/value
/// pairs `id` and [`INFO`] (`finished` and `error` only when set).
pub(crate) fn job_info(v: Value) -> Result<JobInfo, QueueError> {
    let mut names = [INFO_ID; INFO.len() + 1];
    for (name, f) in names[1..].iter_mut().zip(INFO) {
        *name = f.name;
    }
    let [id, values @ ..] = read::named(v, "job info", names)?;
    let id = to_id(id.ok_or_else(|| corrupt("job info: no id"))?, "job info: id")?;
    let mut f = InfoFields { id, values };
    let (state, what) = f.required(field::STATE)?;
    let state = to_state(state, &what)?;
    let (payload, what) = f.required(field::DATA)?;
    let payload = read::blob(payload, &what)?;
    let attempts = f.u32(field::ATTEMPTS)?;
    let max_attempts = f.u32(field::MAX_ATTEMPTS)?;
    let (priority, what) = f.required(field::PRIORITY)?;
    let priority = read::i32(&priority, &what)?;
    let stalls = f.u32(field::STALLS)?;
    let created_at_ms = f.uint(field::CREATED)?;
    let due_at_ms = f.uint(field::DUE)?;
    let finished_at_ms = match f.optional(field::FINISHED) {
        (Some(v), what) => Some(read::uint(&v, &what)?),
        (None, _) => None,
    };
    let last_error = match f.optional(field::ERROR) {
        (Some(v), what) => Some(read::string(v, &what)?),
        (None, _) => None,
    };
    Ok(JobInfo {
        id: f.id,
        state,
        payload,
        attempts,
        max_attempts,
        priority,
        stalls,
        created_at_ms,
        due_at_ms,
        finished_at_ms,
        last_error,
    })
}

/// The admin script's `get` reply: nil, or one job's info.
pub(crate) fn job_info_opt(v: Value) -> Result<Option<JobInfo>, QueueError> {
    match v {
        Value::Null => Ok(None),
        v => job_info(v).map(Some),
    }
}

/// The admin script's `list` reply: at most `limit` jobs' info.
pub(crate) fn job_infos(v: Value, limit: u64) -> Result<Vec<JobInfo>, QueueError> {
    let items = read::array(v, "list reply")?;
    if items.len() as u64 > limit {
        return Err(corrupt(format_args!("list reply: {} jobs, {limit} asked", items.len())));
    }
    items.into_iter().map(job_info).collect()
}

/// The admin script's `stats` reply: name/value pairs, one count per state
/// (named as in [`STATES`]) and `paused` (0 or 1).
pub(crate) fn stats(v: Value) -> Result<QueueStats, QueueError> {
    let mut names = [STATS_PAUSED; STATES.len() + 1];
    for (name, s) in names.iter_mut().zip(STATES) {
        *name = s.name;
    }
    let values = read::named(v, "stats reply", names)?;
    let mut counts = [0; STATES.len()];
    for ((count, value), s) in counts.iter_mut().zip(&values).zip(STATES) {
        let what = format!("stats reply: {}", s.name);
        *count = read::uint(value.as_ref().ok_or_else(|| corrupt(format_args!("{what} is missing")))?, &what)?;
    }
    let paused = values[STATES.len()].as_ref().ok_or_else(|| corrupt("stats reply: paused is missing"))?;
    let paused = read::flag(paused, "stats reply: paused")?;
    let count = |state: JobState| counts[STATES.iter().position(|s| s.state == state).unwrap_or(0)];
    Ok(QueueStats {
        waiting: count(JobState::Waiting),
        active: count(JobState::Active),
        delayed: count(JobState::Delayed),
        failed: count(JobState::Failed),
        completed: count(JobState::Completed),
        dead: count(JobState::Dead),
        paused,
    })
}

/// An admin script's `{'ok', ...}` (its values after `ok`) or `{'err', code, state?}`.
pub(crate) fn admin_result(v: Value) -> Result<Vec<Value>, QueueError> {
    let mut reply = read::array(v, "admin reply")?.into_iter();
    let head = reply.next().ok_or_else(|| corrupt("admin reply: empty"))?;
    match read::string(head, "admin reply: status")?.as_str() {
        "ok" => Ok(reply.collect()),
        "err" => {
            let rest: Vec<Value> = reply.collect();
            let mut rest = rest.into_iter();
            let code = read::string(rest.next().unwrap_or(Value::Null), "admin reply: error code")?;
            let err = match (code.as_str(), rest.next()) {
                ("not_found", None) => QueueError::NotFound,
                ("wrong_state", Some(st)) => QueueError::WrongState(to_state(st, "admin reply: wrong state")?),
                (code, _) => return Err(corrupt(format_args!("admin reply: error {code:?} of an unknown shape"))),
            };
            if rest.next().is_some() {
                return Err(corrupt(format_args!("admin reply: error {code:?} with extra values")));
            }
            Err(err)
        }
        other => Err(corrupt(format_args!("admin reply: status {other:?}"))),
    }
}

/// An admin script's `{'ok'}`.
pub(crate) fn admin_done(v: Value) -> Result<(), QueueError> {
    let rest = admin_result(v)?;
    if rest.is_empty() {
        Ok(())
    } else {
        Err(corrupt(format_args!("admin reply: 'ok' then {} values, expected none", rest.len())))
    }
}

/// An admin script's `{'ok', n}`.
pub(crate) fn admin_count(v: Value) -> Result<u64, QueueError> {
    let rest = admin_result(v)?;
    match rest.as_slice() {
        [n] => read::uint(n, "admin reply: count"),
        _ => Err(corrupt(format_args!("admin reply: 'ok' then {} values, expected a count", rest.len()))),
    }
}
