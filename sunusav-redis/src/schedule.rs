//! The [`Scheduler`] capability of [`RedisQueue`]: the core's rules
//! ([`StoredSchedule::plan_upsert`], [`StoredSchedule::plan_fire`]) computed
//! here, stored by `schedule.lua` under a compare-and-set on the schedule's
//! revision and next run time. A fire enqueues the run's job and advances
//! the schedule in one script, so that of several processes firing the same
//! run, one enqueues it and the others are refused.
//!
//! Keys, under the queue's base `{prefix:name}`: `:sched:<id>` (hash: spec as
//! JSON, revision, next and last run), `:schedules:next` (zset by next run),
//! `:schedules:ids` (zset of ids), `:schedules:rev` (the revision counter).

use async_trait::async_trait;
use fred::types::Value;
use sunusav_core::ports::BackendError;
use sunusav_core::ports::queue::{
    Enqueued, FiredRun, FiredRuns, QueueError, QueueName, ScheduleId, ScheduleInfo, ScheduleSpec, Scheduler,
    StoredSchedule, Upserted,
};

use crate::decode::{bytes, corrupt, ms, num, text};
use crate::queue::{MAX_PAYLOAD_BYTES, RedisQueue};
use crate::scripts::Op;

/// Schedules read (and fired) per script call.
const BATCH: u64 = 200;

/// Rounds of read-then-write one call makes when its writes are refused
/// (another process wrote first) before giving up.
const MAX_ROUNDS: usize = 8;

/// Values per schedule row: id, spec, revision, next, last.
const ROW_LEN: usize = 5;

fn opt_text(n: Option<u64>) -> Value {
    n.map_or_else(|| text(""), num)
}

fn as_str<'a>(v: &'a Value, what: &str) -> Result<&'a str, QueueError> {
    match v {
        Value::String(s) => Ok(s),
        Value::Bytes(b) => std::str::from_utf8(b).map_err(|_| corrupt(format_args!("{what}: not UTF-8"))),
        other => Err(corrupt(format_args!("{what}: expected a string, got a {}", other.kind()))),
    }
}

fn parse_u64(s: &str, what: &str) -> Result<u64, QueueError> {
    s.parse().map_err(|_| corrupt(format_args!("{what}: expected a number, got {s:?}")))
}

fn parse_opt(s: &str, what: &str) -> Result<Option<u64>, QueueError> {
    if s.is_empty() { Ok(None) } else { parse_u64(s, what).map(Some) }
}

/// Reads flat rows of schedules.
fn rows(reply: Value) -> Result<Vec<StoredSchedule>, QueueError> {
    let Value::Array(values) = reply else {
        return Err(corrupt(format_args!("schedule rows: expected an array, got a {}", reply.kind())));
    };
    if values.len() % ROW_LEN != 0 {
        return Err(corrupt(format_args!("schedule rows: {} values, not rows of {ROW_LEN}", values.len())));
    }
    values
        .chunks(ROW_LEN)
        .map(|row| {
            let id = as_str(&row[0], "schedule id")?;
            let spec: ScheduleSpec = serde_json::from_str(as_str(&row[1], "schedule spec")?)
                .map_err(|e| corrupt(format_args!("schedule {id}: unreadable spec: {e}")))?;
            if spec.id().as_str() != id {
                return Err(corrupt(format_args!("schedule {id}: its spec names {}", spec.id())));
            }
            Ok(StoredSchedule {
                revision: parse_u64(as_str(&row[2], "schedule revision")?, "schedule revision")?,
                next_run_ms: parse_opt(as_str(&row[3], "schedule next run")?, "schedule next run")?,
                last_run_ms: parse_opt(as_str(&row[4], "schedule last run")?, "schedule last run")?,
                spec,
            })
        })
        .collect()
}

fn integer(v: &Value, what: &str) -> Result<i64, QueueError> {
    match v {
        Value::Integer(i) => Ok(*i),
        other => Err(corrupt(format_args!("{what}: expected an integer, got a {}", other.kind()))),
    }
}

fn contended(what: &str) -> QueueError {
    QueueError::Unavailable(BackendError::new(format!(
        "redis: {what} kept being refused: the schedule changed {MAX_ROUNDS} times under it"
    )))
}

impl RedisQueue {
    async fn stored(&self, id: &ScheduleId) -> Result<Option<StoredSchedule>, QueueError> {
        Ok(rows(self.call(Op::Schedule, vec![text("get"), text(id.as_str())]).await?)?.pop())
    }
}

#[async_trait]
impl Scheduler for RedisQueue {
    async fn upsert_schedule(&self, spec: ScheduleSpec, now_ms: u64) -> Result<Upserted, QueueError> {
        if spec.job().payload.len() > MAX_PAYLOAD_BYTES {
            return Err(QueueError::Invalid(format!("schedule {}: payload over {MAX_PAYLOAD_BYTES} bytes", spec.id())));
        }
        let json = serde_json::to_string(&spec).map_err(|e| QueueError::Invalid(format!("schedule spec: {e}")))?;
        for _ in 0..MAX_ROUNDS {
            let existing = self.stored(spec.id()).await?;
            let plan = StoredSchedule::plan_upsert(existing.as_ref(), &spec, now_ms);
            if plan.outcome == Upserted::Unchanged {
                return Ok(plan.outcome);
            }
            let expected = existing.map_or(0, |s| s.revision);
            let args =
                vec![text("put"), text(spec.id().as_str()), num(expected), text(&json), opt_text(plan.next_run_ms)];
            if integer(&self.call(Op::Schedule, args).await?, "schedule put reply")? != 0 {
                return Ok(plan.outcome);
            }
        }
        Err(contended("upsert"))
    }

    async fn remove_schedule(&self, id: &ScheduleId) -> Result<bool, QueueError> {
        Ok(integer(&self.call(Op::Schedule, vec![text("remove"), text(id.as_str())]).await?, "schedule remove reply")?
            == 1)
    }

    async fn schedules(&self) -> Result<Vec<ScheduleInfo>, QueueError> {
        let mut out = Vec::new();
        let mut offset = 0;
        loop {
            let args = vec![text("list"), num(offset), num(BATCH)];
            let page = rows(self.call(Op::Schedule, args).await?)?;
            // A page may hold fewer rows than ids when one is removed meanwhile.
            offset += BATCH;
            let last = page.is_empty();
            out.extend(page.iter().map(StoredSchedule::info));
            if last {
                return Ok(out);
            }
        }
    }

    async fn fire_due(&self, now_ms: u64) -> Result<FiredRuns, QueueError> {
        let mut fired = FiredRuns::default();
        for _ in 0..MAX_ROUNDS {
            let due = rows(self.call(Op::Schedule, vec![text("due"), num(now_ms), num(BATCH)]).await?)?;
            let plans: Vec<_> = due.iter().filter_map(|s| Some((s, s.plan_fire(now_ms)?))).collect();
            if plans.is_empty() {
                return Ok(fired);
            }
            let mut args = Vec::with_capacity(2 + 11 * plans.len());
            args.extend([text("fire"), num(plans.len() as u64)]);
            for (s, plan) in &plans {
                let o = plan.job.options;
                args.extend([
                    text(s.spec.id().as_str()),
                    num(s.revision),
                    num(plan.run_ms),
                    opt_text(plan.next_run_ms),
                    text(plan.job.id.as_str()),
                    bytes(plan.job.payload.clone()),
                    text(&o.priority.to_string()),
                    num(u64::from(o.max_attempts)),
                    num(ms(o.backoff.base)),
                    num(ms(o.backoff.max)),
                    text(if o.backoff.jitter { "1" } else { "0" }),
                ]);
            }
            let reply = self.call(Op::Schedule, args).await?;
            let Value::Array(results) = reply else {
                return Err(corrupt(format_args!("schedule fire reply: expected an array, got a {}", reply.kind())));
            };
            if results.len() != plans.len() {
                return Err(corrupt(format_args!(
                    "schedule fire reply: {} results for {} runs",
                    results.len(),
                    plans.len()
                )));
            }
            for ((s, plan), result) in plans.into_iter().zip(&results) {
                let enqueued = match integer(result, "schedule fire result")? {
                    0 => continue,
                    1 => Enqueued::Added,
                    2 => Enqueued::Duplicate,
                    other => return Err(corrupt(format_args!("schedule fire result: unknown code {other}"))),
                };
                fired.runs.push(FiredRun {
                    schedule: s.spec.id().clone(),
                    run_ms: plan.run_ms,
                    job: plan.job.id,
                    enqueued,
                    next_run_ms: plan.next_run_ms,
                });
            }
        }
        tracing::warn!(queue = %self.name(), "fire_due stopped after {MAX_ROUNDS} rounds; the rest is fired by the next call");
        Ok(fired)
    }
}
