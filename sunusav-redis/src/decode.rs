//! Decoding script replies into the port's types, and encoding arguments.

use std::time::Duration;

use fred::bytes::Bytes;
use fred::types::Value;
use sunusav_core::IdempotencyKey;
use sunusav_core::ports::queue::{JobInfo, JobState, LeaseToken, QueueError, ReservedJob, StallRecovery, StalledDead};

/// Largest millisecond count handed to Lua (whose numbers are doubles): ~285 years.
const MAX_MS: u64 = 1 << 53;

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

pub(crate) fn to_u64(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

pub(crate) fn to_u32(v: &Value) -> u32 {
    u32::try_from(to_u64(v)).unwrap_or(u32::MAX)
}

fn to_i64(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn to_string(v: Value) -> Option<String> {
    v.into_owned_bytes().map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn corrupt(what: &str) -> QueueError {
    QueueError::Corrupt(format!("unexpected reply from Redis: {what}"))
}

fn to_id(v: Value) -> Result<IdempotencyKey, QueueError> {
    let s = to_string(v).ok_or_else(|| corrupt("missing job id"))?;
    IdempotencyKey::parse(s).map_err(|_| corrupt("invalid job id"))
}

/// The state stored in a job hash (`st`).
pub(crate) fn state_of_code(code: &str) -> Option<JobState> {
    Some(match code {
        "w" => JobState::Waiting,
        "a" => JobState::Active,
        "d" => JobState::Delayed,
        "f" => JobState::Failed,
        "c" => JobState::Completed,
        "x" => JobState::Dead,
        _ => return None,
    })
}

/// The code of a state (`st`) and the suffix of its key.
pub(crate) const fn code_of_state(state: JobState) -> &'static str {
    match state {
        JobState::Waiting => "w",
        JobState::Active => "a",
        JobState::Delayed => "d",
        JobState::Failed => "f",
        JobState::Completed => "c",
        JobState::Dead => "x",
    }
}

/// Reserved jobs from a flat array of 7 fields per job.
pub(crate) fn reserved_jobs(flat: Vec<Value>) -> Result<Vec<ReservedJob>, QueueError> {
    let mut out = Vec::with_capacity(flat.len() / 7);
    let mut it = flat.into_iter();
    while let Some(id) = it.next() {
        let mut f = || it.next().ok_or_else(|| corrupt("short reserved job"));
        let (payload, attempt, max, token, created, due) = (f()?, f()?, f()?, f()?, f()?, f()?);
        out.push(ReservedJob {
            id: to_id(id)?,
            payload: payload.into_owned_bytes().unwrap_or_default(),
            attempt: to_u32(&attempt),
            max_attempts: to_u32(&max),
            token: LeaseToken::minted(to_string(token).ok_or_else(|| corrupt("missing token"))?)
                .map_err(|_| corrupt("malformed token"))?,
            enqueued_at_ms: to_u64(&created),
            due_at_ms: to_u64(&due),
        });
    }
    Ok(out)
}

/// The recovery script's `{n, dead (flat, 7 per job), errors}`.
pub(crate) fn stall_recovery(v: Value) -> Result<StallRecovery, QueueError> {
    let mut reply = v.into_array().into_iter();
    let recovered = reply.next().as_ref().map_or(0, to_u64);
    let jobs = match reply.next() {
        Some(Value::Array(flat)) => reserved_jobs(flat)?,
        _ => Vec::new(),
    };
    let mut errors = reply.next().map(Value::into_array).unwrap_or_default().into_iter();
    let dead = jobs
        .into_iter()
        .map(|job| StalledDead { job, error: errors.next().and_then(to_string).unwrap_or_default() })
        .collect();
    Ok(StallRecovery { recovered, dead })
}

/// One job from the admin script's `info` array:
/// `{id, st, data, attempts, max, priority, stalls, created, due, finished, error}`.
pub(crate) fn job_info(v: Value) -> Result<JobInfo, QueueError> {
    let mut f = v.into_array().into_iter();
    let mut next = || f.next().unwrap_or(Value::Null);
    let id = to_id(next())?;
    let state = to_string(next()).and_then(|s| state_of_code(&s)).ok_or_else(|| corrupt("unknown job state"))?;
    let payload = next().into_owned_bytes().unwrap_or_default();
    let attempts = to_u32(&next());
    let max_attempts = to_u32(&next());
    let priority = i32::try_from(to_i64(&next())).unwrap_or(0);
    let stalls = to_u32(&next());
    let created_at_ms = to_u64(&next());
    let due_at_ms = to_u64(&next());
    let finished_at_ms = next().as_u64();
    let last_error = to_string(next());
    Ok(JobInfo {
        id,
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

/// Maps an admin script's `{'err', code, state}` reply.
pub(crate) fn admin_result(v: Value) -> Result<Vec<Value>, QueueError> {
    let arr = v.into_array();
    match arr.first().and_then(Value::as_str).as_deref() {
        Some("ok") => Ok(arr),
        Some("err") => {
            let code = arr.get(1).and_then(Value::as_str).map(std::borrow::Cow::into_owned).unwrap_or_default();
            match code.as_str() {
                "not_found" => Err(QueueError::NotFound),
                "wrong_state" => {
                    let st = arr.get(2).and_then(Value::as_str).and_then(|s| state_of_code(&s));
                    Err(st.map_or_else(|| corrupt("wrong state without a state"), QueueError::WrongState))
                }
                other => Err(corrupt(other)),
            }
        }
        _ => Err(corrupt("admin reply")),
    }
}
