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
    Enqueued, FailOutcome, JobCursor, JobError, JobInfo, JobPage, JobState, LeaseToken, QueueError, QueueStats,
    ReservedJob, StallRecovery, StalledDead, Step,
};

use crate::codes::{self, Field, INFO, INFO_ERRORS, INFO_ID, STATES, STATS_PAUSED, field};

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

/// A job's error history: entries `attempt:at_ms:error`, oldest first.
fn job_errors(v: Value, id: &IdempotencyKey) -> Result<Vec<JobError>, QueueError> {
    let what = format!("job info of {id}: {INFO_ERRORS}");
    read::array(v, what.as_str())?
        .into_iter()
        .map(|entry| {
            let entry = read::string(entry, what.as_str())?;
            let mut parts = entry.splitn(3, ':');
            let (Some(attempt), Some(at), Some(error)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(corrupt(format_args!("{what}: an entry is not attempt:at_ms:error")));
            };
            let attempt = attempt.parse().map_err(|_| corrupt(format_args!("{what}: attempt {attempt:?}")))?;
            let at_ms = at.parse().map_err(|_| corrupt(format_args!("{what}: time {at:?}")))?;
            Ok(JobError { attempt, at_ms, error: error.to_owned() })
        })
        .collect()
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
/// pairs `id`, [`INFO`] (`finished` and `error` only when set) and
/// [`INFO_ERRORS`] (the error history, oldest first).
pub(crate) fn job_info(v: Value) -> Result<JobInfo, QueueError> {
    let mut names = [INFO_ID; INFO.len() + 2];
    for (name, f) in names[1..=INFO.len()].iter_mut().zip(INFO) {
        *name = f.name;
    }
    names[INFO.len() + 1] = INFO_ERRORS;
    let [id, rest @ ..] = read::named(v, "job info", names)?;
    let id = to_id(id.ok_or_else(|| corrupt("job info: no id"))?, "job info: id")?;
    let [values @ .., errors] = rest;
    let errors = job_errors(errors.ok_or_else(|| corrupt(format_args!("job info of {id}: no {INFO_ERRORS}")))?, &id)?;
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
        errors,
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

/// The admin script's `list_after` reply: `{infos (at most limit), next
/// cursor or nil, resumed (0/1)}`, or `{'err', 'invalid_cursor'}`.
pub(crate) fn job_page(v: Value, limit: u64) -> Result<JobPage, QueueError> {
    let reply = read::array(v, "list_after reply")?;
    if let [Value::String(e), Value::String(code)] = reply.as_slice()
        && &**e == "err"
        && &**code == "invalid_cursor"
    {
        return Err(QueueError::Invalid("not a cursor of this queue and state".into()));
    }
    let [jobs, next, resumed] = read::tuple(Value::Array(reply), "list_after reply")?;
    let jobs = job_infos(jobs, limit)?;
    let next = match next {
        Value::Null => None,
        v => {
            let text = read::string(v, "list_after reply: next cursor")?;
            Some(JobCursor::parse(text).map_err(|_| corrupt("list_after reply: a malformed cursor"))?)
        }
    };
    let resumed = read::flag(&resumed, "list_after reply: resumed")?;
    Ok(JobPage { jobs, next, resumed })
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

#[cfg(test)]
mod tests {
    use std::fmt::Debug;

    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef0001";

    fn s(x: &str) -> Value {
        Value::String(x.into())
    }

    fn i(n: i64) -> Value {
        Value::Integer(n)
    }

    fn arr<const N: usize>(values: [Value; N]) -> Value {
        Value::Array(values.into())
    }

    /// The error is `Corrupt`, and says `needle`.
    #[track_caller]
    fn corrupt_saying<T: Debug>(r: Result<T, QueueError>, needle: &str) {
        match r {
            Err(QueueError::Corrupt(msg)) => assert!(msg.contains(needle), "{msg:?} does not say {needle:?}"),
            other => panic!("expected Corrupt saying {needle:?}, got {other:?}"),
        }
    }

    fn job(id: &str) -> [Value; 7] {
        [s(id), s("payload"), i(1), i(3), s(TOKEN), i(1_000), i(2_000)]
    }

    fn flat(jobs: impl IntoIterator<Item = [Value; 7]>) -> Value {
        Value::Array(jobs.into_iter().flatten().collect())
    }

    fn step_reply(acks: Value, jobs: Value, next_due: Value) -> Value {
        arr([acks, jobs, next_due])
    }

    #[test]
    fn a_step_reply_decodes_acks_jobs_and_the_next_due_time() {
        let reply = step(step_reply(arr([i(1), i(0)]), flat([job("a"), job("b")]), i(-1)), 2, 2).unwrap();
        assert_eq!(reply.acked, [true, false]);
        assert_eq!(reply.jobs.len(), 2);
        let a = &reply.jobs[0];
        assert_eq!((a.id.as_str(), a.payload.as_slice(), a.attempt, a.max_attempts), ("a", &b"payload"[..], 1, 3));
        assert_eq!((a.token.as_str(), a.enqueued_at_ms, a.due_at_ms), (TOKEN, 1_000, 2_000));
        assert_eq!(reply.next_due, None);
        let idle = step_reply(arr([]), arr([]), i(250));
        assert_eq!(step(idle, 0, 1).unwrap().next_due, Some(Duration::from_millis(250)));
        // A payload that is not UTF-8 arrives as bytes.
        let mut binary = job("c");
        binary[1] = Value::Bytes(Bytes::from_static(&[0xff, 0x00]));
        assert_eq!(step(step_reply(arr([]), flat([binary]), i(-1)), 0, 1).unwrap().jobs[0].payload, [0xff, 0x00]);
    }

    #[test]
    fn a_malformed_step_reply_is_corrupt_never_a_default() {
        let ok_jobs = || flat([job("a")]);
        corrupt_saying(step(Value::Null, 0, 1), "step reply: expected an array, got nil");
        corrupt_saying(step(arr([arr([]), ok_jobs()]), 0, 1), "step reply: expected 3 values, got 2");
        corrupt_saying(step(step_reply(i(1), ok_jobs(), i(-1)), 1, 1), "acks: expected an array");
        corrupt_saying(step(step_reply(arr([i(1)]), ok_jobs(), i(-1)), 2, 1), "1 ack results for 2 acks");
        corrupt_saying(step(step_reply(arr([i(2)]), ok_jobs(), i(-1)), 1, 1), "expected 0 or 1, got the integer 2");
        corrupt_saying(step(step_reply(arr([s("1")]), ok_jobs(), i(-1)), 1, 1), "expected 0 or 1");
        corrupt_saying(step(step_reply(arr([]), flat([job("a"), job("b")]), i(-1)), 0, 1), "2 jobs reserved, 1 asked");
        corrupt_saying(step(step_reply(arr([]), ok_jobs(), i(-2)), 0, 1), "next due in -2 ms");
        corrupt_saying(step(step_reply(arr([]), ok_jobs(), Value::Null), 0, 1), "next due: expected an integer");
        corrupt_saying(step(step_reply(arr([]), ok_jobs(), s("soon")), 0, 1), "next due: expected an integer");
        let short: Vec<Value> = job("a").into_iter().take(6).collect();
        corrupt_saying(step(step_reply(arr([]), Value::Array(short), i(-1)), 0, 1), "6 values, not 7 per job");
    }

    /// `job("a")` with value `at` replaced.
    fn job_with(at: usize, v: Value) -> Value {
        let mut j = job("a");
        j[at] = v;
        step_reply(arr([]), flat([j]), i(-1))
    }

    #[test]
    fn a_reserved_job_with_a_bad_value_is_corrupt() {
        corrupt_saying(step(job_with(0, s("")), 0, 1), "invalid job id");
        corrupt_saying(step(job_with(0, i(7)), 0, 1), "expected a string, got the integer 7");
        corrupt_saying(step(job_with(1, Value::Null), 0, 1), "payload of a: expected a string, got nil");
        corrupt_saying(step(job_with(2, s("one")), 0, 1), "attempt of a: expected a non-negative integer");
        corrupt_saying(step(job_with(2, i(-1)), 0, 1), "attempt of a: expected a non-negative integer");
        corrupt_saying(step(job_with(3, i(1 << 40)), 0, 1), "max attempts of a: expected an integer up to 2^32-1");
        corrupt_saying(step(job_with(4, s("")), 0, 1), "token of a: malformed lease token");
        corrupt_saying(step(job_with(4, Value::Null), 0, 1), "token of a: expected a string");
        corrupt_saying(step(job_with(5, Value::Null), 0, 1), "created of a");
        corrupt_saying(step(job_with(6, arr([i(5)])), 0, 1), "due of a: expected a non-negative integer, got an array");
    }

    #[test]
    fn enqueue_heartbeat_and_fail_replies_are_read_strictly() {
        assert_eq!(enqueued(arr([i(1), i(0)]), 2).unwrap(), [Enqueued::Added, Enqueued::Duplicate]);
        corrupt_saying(enqueued(arr([i(1)]), 2), "1 results for 2 jobs");
        corrupt_saying(enqueued(arr([i(1), Value::Null]), 2), "expected 0 or 1, got nil");
        corrupt_saying(enqueued(i(1), 1), "enqueue reply: expected an array");

        assert_eq!(heartbeat(&i(1)), Ok(()));
        assert_eq!(heartbeat(&i(0)), Err(QueueError::LeaseLost));
        corrupt_saying(heartbeat(&Value::Null), "heartbeat reply: expected 0 or 1, got nil");
        corrupt_saying(heartbeat(&s("1")), "heartbeat reply");

        assert_eq!(fail_outcome(arr([i(-1)])), Err(QueueError::LeaseLost));
        assert_eq!(fail_outcome(arr([i(0)])), Ok(FailOutcome::Dead));
        assert_eq!(fail_outcome(arr([i(1), i(250)])), Ok(FailOutcome::Retrying { delay: Duration::from_millis(250) }));
        corrupt_saying(fail_outcome(arr([])), "fail reply: expected {-1}, {0} or {1, delay}");
        corrupt_saying(fail_outcome(arr([i(1)])), "fail reply: expected");
        corrupt_saying(fail_outcome(arr([i(0), i(1)])), "fail reply: expected");
        corrupt_saying(fail_outcome(arr([i(2)])), "fail reply: expected");
        corrupt_saying(fail_outcome(arr([i(1), i(-5)])), "fail reply: delay");
        corrupt_saying(fail_outcome(Value::Null), "fail reply: expected an array");
    }

    #[test]
    fn a_recovery_reply_pairs_each_dead_job_with_its_error_strictly() {
        let r = stall_recovery(arr([i(3), flat([job("a")]), arr([s("stalled")])])).unwrap();
        assert_eq!((r.recovered, r.dead.len(), r.dead[0].error.as_str()), (3, 1, "stalled"));
        assert_eq!(stall_recovery(arr([i(0), arr([]), arr([])])).unwrap().recovered, 0);
        corrupt_saying(stall_recovery(arr([i(1), flat([job("a")]), arr([])])), "0 errors for 1 dead jobs");
        corrupt_saying(stall_recovery(arr([i(1), flat([job("a")]), arr([Value::Null])])), "error of a");
        corrupt_saying(stall_recovery(arr([i(0), flat([job("a")]), arr([s("e")])])), "1 dead of 0 recovered");
        corrupt_saying(stall_recovery(arr([i(-1), arr([]), arr([])])), "recover reply: count");
        corrupt_saying(stall_recovery(arr([i(0), arr([])])), "recover reply: expected 3 values, got 2");
    }

    fn info_pairs(skip: &str, extra: &[(&str, Value)]) -> Value {
        let mut out = Vec::new();
        let fields = [
            ("id", s("job-1")),
            ("state", s("x")),
            ("data", s("{}")),
            ("attempts", s("3")),
            ("max_attempts", s("3")),
            ("priority", s("-2")),
            ("stalls", s("1")),
            ("created", s("1000")),
            ("due", s("9008911600419892")),
            ("errors", arr([s("1:1500:first"), s("2:2500:second: a:b")])),
        ];
        for (name, v) in fields.into_iter().filter(|(name, _)| *name != skip).chain(extra.iter().cloned()) {
            out.push(s(name));
            out.push(v);
        }
        Value::Array(out)
    }

    #[test]
    fn a_job_info_reply_is_decoded_by_name() {
        let info = job_info(info_pairs("", &[])).unwrap();
        assert_eq!((info.id.as_str(), info.state, info.payload.as_slice()), ("job-1", JobState::Dead, &b"{}"[..]));
        assert_eq!((info.attempts, info.max_attempts, info.priority, info.stalls), (3, 3, -2, 1));
        assert_eq!((info.created_at_ms, info.due_at_ms), (1_000, 9_008_911_600_419_892));
        assert_eq!((info.finished_at_ms, info.last_error.as_deref()), (None, None));
        let errors: Vec<(u32, u64, &str)> =
            info.errors.iter().map(|e| (e.attempt, e.at_ms, e.error.as_str())).collect();
        assert_eq!(errors, [(1, 1_500, "first"), (2, 2_500, "second: a:b")], "oldest first, colons kept");
        let done = job_info(info_pairs("", &[("error", s("boom")), ("finished", s("5000"))])).unwrap();
        assert_eq!((done.finished_at_ms, done.last_error.as_deref()), (Some(5_000), Some("boom")));
        // Order does not matter.
        let Value::Array(mut pairs) = info_pairs("", &[]) else { unreachable!() };
        pairs.rotate_left(4);
        assert_eq!(job_info(Value::Array(pairs)).unwrap(), info);

        assert_eq!(job_info_opt(Value::Null).unwrap(), None);
        assert_eq!(job_info_opt(info_pairs("", &[])).unwrap(), Some(info));
    }

    #[test]
    fn a_malformed_job_info_reply_is_corrupt_and_names_the_field() {
        corrupt_saying(job_info(info_pairs("state", &[])), "job info of job-1: state (hash field \"st\") is missing");
        corrupt_saying(job_info(info_pairs("due", &[])), "due (hash field \"u\") is missing");
        corrupt_saying(job_info(info_pairs("id", &[])), "job info: no id");
        corrupt_saying(job_info(info_pairs("", &[("colour", s("red"))])), "job info: unknown field \"colour\"");
        corrupt_saying(job_info(info_pairs("", &[("stalls", s("1"))])), "job info: field \"stalls\" twice");
        corrupt_saying(job_info(info_pairs("state", &[("state", s("q"))])), "unknown job state code \"q\"");
        corrupt_saying(job_info(info_pairs("attempts", &[("attempts", s("three"))])), "attempts (hash field \"a\")");
        corrupt_saying(job_info(info_pairs("attempts", &[("attempts", s(""))])), "expected a non-negative integer");
        corrupt_saying(job_info(info_pairs("priority", &[("priority", s("4294967296"))])), "a 32-bit integer");
        corrupt_saying(job_info(info_pairs("", &[("finished", s("1.5"))])), "finished (hash field \"f\")");
        corrupt_saying(job_info(info_pairs("", &[("error", Value::Null)])), "error (hash field \"e\")");
        corrupt_saying(job_info(info_pairs("errors", &[])), "job info of job-1: no errors");
        corrupt_saying(job_info(info_pairs("errors", &[("errors", s("1:2:x"))])), "errors: expected an array");
        corrupt_saying(job_info(info_pairs("errors", &[("errors", arr([s("1:2")]))])), "not attempt:at_ms:error");
        corrupt_saying(job_info(info_pairs("errors", &[("errors", arr([s("one:2:x")]))])), "errors: attempt \"one\"");
        corrupt_saying(job_info(info_pairs("errors", &[("errors", arr([s("1:-2:x")]))])), "errors: time \"-2\"");
        corrupt_saying(job_info(arr([s("id")])), "job info: 1 values, not name/value pairs");
        corrupt_saying(job_info(arr([i(1), s("job-1")])), "job info: a field name: expected a string");
        corrupt_saying(job_info(s("job-1")), "job info: expected an array");
        corrupt_saying(job_info_opt(i(0)), "job info: expected an array");
        corrupt_saying(job_infos(arr([info_pairs("", &[]), info_pairs("", &[])]), 1), "list reply: 2 jobs, 1 asked");
        corrupt_saying(job_infos(Value::Null, 1), "list reply: expected an array");
        corrupt_saying(job_infos(arr([info_pairs("data", &[])]), 1), "data (hash field \"d\") is missing");
    }

    fn stats_pairs(skip: &str, extra: &[(&str, Value)]) -> Value {
        let names = ["waiting", "active", "delayed", "failed", "completed", "dead"];
        let mut out = Vec::new();
        for (n, name) in (1..).zip(names) {
            if name != skip {
                out.extend([s(name), i(n)]);
            }
        }
        if skip != "paused" {
            out.extend([s("paused"), i(1)]);
        }
        for (name, v) in extra {
            out.extend([s(name), v.clone()]);
        }
        Value::Array(out)
    }

    #[test]
    fn a_stats_reply_is_decoded_by_name_and_strictly() {
        let expected = QueueStats { waiting: 1, active: 2, delayed: 3, failed: 4, completed: 5, dead: 6, paused: true };
        assert_eq!(stats(stats_pairs("", &[])).unwrap(), expected);
        corrupt_saying(stats(stats_pairs("dead", &[])), "stats reply: dead is missing");
        corrupt_saying(stats(stats_pairs("paused", &[])), "stats reply: paused is missing");
        corrupt_saying(stats(stats_pairs("", &[("stalled", i(0))])), "stats reply: unknown field \"stalled\"");
        corrupt_saying(stats(stats_pairs("failed", &[("failed", i(-4))])), "stats reply: failed");
        corrupt_saying(stats(stats_pairs("failed", &[("failed", Value::Null)])), "got nil");
        corrupt_saying(stats(stats_pairs("paused", &[("paused", i(2))])), "stats reply: paused: expected 0 or 1");
        // The old positional reply is no longer read as counts.
        corrupt_saying(stats(arr([i(1), i(2), i(3), i(4), i(5), i(6), i(0)])), "stats reply");
    }

    #[test]
    fn admin_replies_map_their_errors_and_reject_unknown_shapes() {
        assert_eq!(admin_done(arr([s("ok")])), Ok(()));
        assert_eq!(admin_count(arr([s("ok"), i(4)])), Ok(4));
        assert_eq!(admin_done(arr([s("err"), s("not_found")])), Err(QueueError::NotFound));
        assert_eq!(
            admin_done(arr([s("err"), s("wrong_state"), s("a")])),
            Err(QueueError::WrongState(JobState::Active))
        );
        corrupt_saying(admin_done(arr([s("err"), s("wrong_state"), s("q")])), "unknown job state code \"q\"");
        corrupt_saying(admin_done(arr([s("err"), s("wrong_state")])), "error \"wrong_state\" of an unknown shape");
        corrupt_saying(admin_done(arr([s("err"), s("not_found"), s("x")])), "error \"not_found\" of an unknown shape");
        corrupt_saying(admin_done(arr([s("err"), s("wrong_state"), s("x"), s("x")])), "with extra values");
        corrupt_saying(admin_done(arr([s("err"), s("on_fire")])), "error \"on_fire\"");
        corrupt_saying(admin_done(arr([s("err")])), "error code: expected a string, got nil");
        corrupt_saying(admin_done(arr([s("fine")])), "status \"fine\"");
        corrupt_saying(admin_done(arr([])), "admin reply: empty");
        corrupt_saying(admin_done(Value::Null), "admin reply: expected an array");
        corrupt_saying(admin_done(arr([s("ok"), i(1)])), "'ok' then 1 values, expected none");
        corrupt_saying(admin_count(arr([s("ok")])), "'ok' then 0 values, expected a count");
        corrupt_saying(admin_count(arr([s("ok"), s("many")])), "admin reply: count");
    }
}
