//! [`RedisQueue`]: the `Queue` port on Redis.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use fred::interfaces::ClientLike;
use fred::types::config::Options;
use fred::types::{ClusterHash, CustomCommand, Value};
use sunusav_core::IdempotencyKey;
use sunusav_core::ports::queue::{
    Consumer, Enqueued, FailKind, FailOutcome, JobInfo, JobState, LeaseToken, NewJob, Producer, QueueAdmin,
    QueueConfig, QueueError, QueueHealth, QueueName, QueueStats, ReservedJob, StallRecovery, Step,
};

use crate::connection::RedisConnection;
use crate::decode::{
    admin_result, bytes, code_of_state, job_info, ms, num, reserved_jobs, stall_recovery, text, to_u64,
};
use crate::error::to_queue_error;
use crate::scripts::Op;

/// Largest payload accepted (Redis strings may hold 512 MiB; jobs should not).
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024 * 1024;

/// Most jobs one call reserves.
pub const MAX_BATCH: usize = 1000;

/// Most expired leases one recovery script handles (its `LIMIT`).
const RECOVER_BATCH: u64 = 1000;

/// Length of a lease token: 32 hex digits of randomness and a 4-digit index.
const TOKEN_LEN: usize = 36;

/// The shortest blocking wait (Redis treats a zero `BLPOP` timeout as forever).
const MIN_BLOCK: Duration = Duration::from_millis(10);

/// A durable job queue on Redis. Cheap to clone; clones share the connection.
///
/// Keys (one hash tag per queue, so one cluster slot), all under `{prefix:name}`:
///
/// | key | type | holds |
/// | --- | --- | --- |
/// | `:j:<id>` | hash | the job: payload, attempts, options, state, token, timestamps, last error |
/// | `:w` | zset | waiting: score −priority, member 16-digit sequence + id (FIFO within a priority) |
/// | `:a` | zset | active, by lease expiry; member = lease token (36 chars) + id, so one `ZREM` checks and releases a lease |
/// | `:d`, `:f` | zset | delayed, failed (waiting for a retry), by due time |
/// | `:due` | string | lower bound of the earliest due time in `:d`/`:f` (`none`; missing = unknown): reserves skip promotion until then |
/// | `:c`, `:x` | list | completed, dead: newest first, trimmed to the retention |
/// | `:claims` | zset | claimed ids: `+inf` while the job exists, then the end of its dedup window |
/// | `:seq`, `:paused`, `:n` | string, string, list | sequence, pause flag, bounded wake-up list |
#[derive(Clone, Debug)]
pub struct RedisQueue {
    conn: RedisConnection,
    name: String,
    base: String,
    config: QueueConfig,
}

impl RedisQueue {
    pub(crate) fn new(conn: RedisConnection, name: &str, prefix: &str, config: QueueConfig) -> Self {
        Self { conn, name: name.to_string(), base: format!("{{{prefix}:{name}}}"), config }
    }

    /// Connects and returns one queue (see [`RedisConnection`] to share a connection).
    ///
    /// # Errors
    /// As [`RedisConnection::connect`] and [`RedisConnection::queue`].
    pub async fn connect(
        config: crate::RedisConfig,
        name: &str,
        prefix: &str,
        queue_config: QueueConfig,
    ) -> Result<Self, crate::ConnectError> {
        RedisConnection::connect(config).await?.queue(name, prefix, queue_config)
    }

    /// The hash-tagged base of every key of this queue, `{prefix:name}`.
    pub fn base_key(&self) -> &str {
        &self.base
    }

    /// The connection this queue uses.
    pub fn connection(&self) -> &RedisConnection {
        &self.conn
    }

    /// The queue's settings.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    async fn call(&self, op: Op, args: Vec<Value>) -> Result<Value, QueueError> {
        let shared = &self.conn.shared;
        shared.scripts.call(&shared.client, op, &self.base, args).await.map_err(|e| to_queue_error(&e))
    }

    async fn admin(&self, args: Vec<Value>) -> Result<Vec<Value>, QueueError> {
        admin_result(self.call(Op::Admin, args).await?)
    }

    async fn step(
        &self,
        acks: &[(IdempotencyKey, LeaseToken)],
        count: usize,
        lease: Duration,
    ) -> Result<Step, QueueError> {
        acks.iter().try_for_each(|(_, token)| check_token(token))?;
        // One script reserves at most MAX_BATCH jobs (its run time and Lua's
        // argument limits); callers asked for "up to" `count`.
        let count = count.min(MAX_BATCH);
        let token_base = format!("{:032x}", rand::random::<u128>());
        let mut args = Vec::with_capacity(7 + 2 * acks.len());
        args.extend([
            num(ms(lease).max(1)),
            num(count as u64),
            text(&token_base),
            num(self.config.keep_completed),
            num(ms(self.config.dedup_window)),
            text("0"),
            num(acks.len() as u64),
        ]);
        for (id, tok) in acks {
            args.push(text(id.as_str()));
            args.push(text(tok.as_str()));
        }
        let mut reply = self.call(Op::Step, args).await?.into_array().into_iter();
        let acked = reply.next().unwrap_or(Value::Null).into_array().iter().map(|v| to_u64(v) == 1).collect();
        let jobs = match reply.next() {
            Some(Value::Array(flat)) => reserved_jobs(flat)?,
            _ => Vec::new(),
        };
        let next_due =
            reply.next().and_then(|v| v.as_i64()).and_then(|d| u64::try_from(d).ok()).map(Duration::from_millis);
        Ok(Step { acked, jobs, next_due })
    }

    /// Reserves up to `count` jobs in one call.
    ///
    /// # Errors
    /// As [`Consumer::ack_many_and_reserve`] without acknowledgements.
    pub async fn reserve_many(&self, count: usize, lease: Duration) -> Result<Vec<ReservedJob>, QueueError> {
        Ok(self.step(&[], count, lease).await?.jobs)
    }

    /// Blocks on the wake-up list for up to `wait` on a dedicated client.
    async fn block(&self, wait: Duration) -> Result<(), QueueError> {
        let shared = &self.conn.shared;
        let client = shared.take_blocking().await.map_err(|e| to_queue_error(&e))?;
        let wait = wait.max(MIN_BLOCK);
        let opts = Options { timeout: Some(wait + shared.config.command_timeout), ..Options::default() };
        let key = format!("{}:n", self.base);
        let millis = ms(wait);
        let timeout = format!("{}.{:03}", millis / 1000, millis % 1000);
        let cmd = CustomCommand::new("BLPOP", ClusterHash::FirstKey, true);
        // A timed-out BLPOP answers nil (`Value::Null`), a wake-up a [key, token] pair.
        let res: Result<Value, _> = client.with_options(&opts).custom(cmd, vec![key, timeout]).await;
        // The client reconnects by itself after an error: keep it either way.
        shared.give_back_blocking(client);
        res.map(drop).map_err(|e| to_queue_error(&e))
    }
}

/// Refuses a token of a shape this queue never mints: 36 characters, 32
/// lowercase hex digits of randomness then a 4-digit index (`TOKLEN` in
/// `common.lua`).
fn check_token(token: &LeaseToken) -> Result<(), QueueError> {
    let t = token.as_str().as_bytes();
    let ok = t.len() == TOKEN_LEN
        && t[..32].iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        && t[32..].iter().all(u8::is_ascii_digit);
    if ok { Ok(()) } else { Err(QueueError::MalformedToken) }
}

fn validate(job: &NewJob) -> Result<(), QueueError> {
    if job.options.max_attempts == 0 {
        return Err(QueueError::Invalid("max_attempts must be at least 1".into()));
    }
    if job.payload.len() > MAX_PAYLOAD_BYTES {
        return Err(QueueError::Invalid(format!("payload over {MAX_PAYLOAD_BYTES} bytes")));
    }
    Ok(())
}

fn push_job(args: &mut Vec<Value>, job: NewJob) {
    let o = job.options;
    args.extend([
        text(job.id.as_str()),
        bytes(job.payload),
        text(&o.priority.to_string()),
        num(ms(o.delay)),
        num(u64::from(o.max_attempts)),
        num(ms(o.backoff.base)),
        num(ms(o.backoff.max)),
        text(if o.backoff.jitter { "1" } else { "0" }),
    ]);
}

impl QueueName for RedisQueue {
    fn name(&self) -> &str {
        &self.name
    }
}

#[async_trait]
impl Producer for RedisQueue {
    async fn enqueue(&self, job: NewJob) -> Result<Enqueued, QueueError> {
        let mut out = self.enqueue_bulk(vec![job]).await?;
        out.pop().ok_or_else(|| QueueError::Unavailable("empty enqueue reply".into()))
    }

    async fn enqueue_bulk(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, QueueError> {
        jobs.iter().try_for_each(validate)?;
        let mut results = Vec::with_capacity(jobs.len());
        let mut jobs = jobs.into_iter().peekable();
        // Chunks bound the script's argument list (Lua's unpack limit) and its run time.
        while jobs.peek().is_some() {
            let chunk: Vec<NewJob> = jobs.by_ref().take(MAX_BATCH).collect();
            let mut args = Vec::with_capacity(1 + 8 * chunk.len());
            args.push(num(chunk.len() as u64));
            for job in chunk {
                push_job(&mut args, job);
            }
            let reply = self.call(Op::Enqueue, args).await?;
            results.extend(
                reply.into_array().iter().map(|v| if to_u64(v) == 1 { Enqueued::Added } else { Enqueued::Duplicate }),
            );
        }
        Ok(results)
    }
}

#[async_trait]
impl Consumer for RedisQueue {
    async fn reserve_wait(&self, lease: Duration, wait: Duration) -> Result<Option<ReservedJob>, QueueError> {
        let deadline = Instant::now() + wait;
        // A due time already reached means "promote now": the next step does,
        // so it is called again at once, but only once in a row; were the
        // script to keep answering zero, the loop still blocks (at least
        // MIN_BLOCK) between calls instead of spinning.
        let mut retried = false;
        loop {
            let mut step = self.step(&[], 1, lease).await?;
            if let Some(job) = step.jobs.pop() {
                return Ok(Some(job));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let block = step.next_due.map_or(left, |d| d.min(left));
            if block.is_zero() && !retried {
                retried = true;
                continue;
            }
            retried = false;
            self.block(block).await?;
        }
    }

    async fn heartbeat(&self, id: &IdempotencyKey, token: &LeaseToken, lease: Duration) -> Result<(), QueueError> {
        check_token(token)?;
        let reply =
            self.call(Op::Heartbeat, vec![text(id.as_str()), text(token.as_str()), num(ms(lease).max(1))]).await?;
        if to_u64(&reply) == 1 { Ok(()) } else { Err(QueueError::LeaseLost) }
    }

    /// One script call (one round trip) for the whole batch; reserves at most
    /// [`MAX_BATCH`] jobs, whatever `count`.
    ///
    /// # Errors
    /// `Unavailable` when Redis cannot be reached or does not answer within the
    /// command timeout. That does not mean nothing was done: when the timeout
    /// fires or the connection drops after the script was sent, the script may
    /// have run in full, acknowledging the jobs and reserving others (so,
    /// unlike the port's wording, something may have been reserved). Such
    /// jobs are handed to no one: their leases expire and `recover_stalled`
    /// counts a stall for each, having already spent an attempt.
    async fn ack_many_and_reserve(
        &self,
        acks: &[(IdempotencyKey, LeaseToken)],
        count: usize,
        lease: Duration,
    ) -> Result<Step, QueueError> {
        self.step(acks, count, lease).await
    }

    async fn fail(
        &self,
        id: &IdempotencyKey,
        token: &LeaseToken,
        error: &str,
        kind: FailKind,
    ) -> Result<FailOutcome, QueueError> {
        check_token(token)?;
        let (kind, after) = match kind {
            FailKind::Retry => ("retry", 0),
            FailKind::RetryAfter(d) => ("after", ms(d)),
            FailKind::Permanent => ("perm", 0),
        };
        let args = vec![
            text(id.as_str()),
            text(token.as_str()),
            text(error),
            text(kind),
            num(after),
            num(u64::from(rand::random::<u32>())),
            num(self.config.keep_dead),
            num(ms(self.config.dedup_window)),
        ];
        let reply = self.call(Op::Fail, args).await?.into_array();
        match reply.first().and_then(Value::as_i64) {
            Some(1) => Ok(FailOutcome::Retrying { delay: Duration::from_millis(reply.get(1).map_or(0, to_u64)) }),
            Some(0) => Ok(FailOutcome::Dead),
            _ => Err(QueueError::LeaseLost),
        }
    }

    /// One script call per 1000 expired leases, each atomic: a job is
    /// reported dead by the one call that moved it. An error after a call
    /// that succeeded ends the pass with what was done (the rest waits for
    /// the next pass), so that the jobs already dead-lettered are reported.
    async fn recover_stalled(&self) -> Result<StallRecovery, QueueError> {
        let args =
            vec![num(u64::from(self.config.max_stalls)), num(self.config.keep_dead), num(ms(self.config.dedup_window))];
        let mut total = StallRecovery::default();
        loop {
            let batch = match self.call(Op::Recover, args.clone()).await.and_then(stall_recovery) {
                Ok(batch) => batch,
                Err(e) if total.recovered == 0 => return Err(e),
                Err(e) => {
                    tracing::warn!(queue = %self.name, error = %e, "stalled recovery stopped part-way; the rest waits for the next pass");
                    return Ok(total);
                }
            };
            let n = batch.recovered;
            total.recovered += n;
            total.dead.extend(batch.dead);
            if n < RECOVER_BATCH {
                return Ok(total);
            }
        }
    }
}

#[async_trait]
impl QueueAdmin for RedisQueue {
    async fn stats(&self) -> Result<QueueStats, QueueError> {
        let r = self.call(Op::Admin, vec![text("stats")]).await?.into_array();
        let n = |i: usize| r.get(i).map_or(0, to_u64);
        Ok(QueueStats {
            waiting: n(0),
            active: n(1),
            delayed: n(2),
            failed: n(3),
            completed: n(4),
            dead: n(5),
            paused: n(6) == 1,
        })
    }

    async fn list(&self, state: JobState, offset: u64, limit: u64) -> Result<Vec<JobInfo>, QueueError> {
        let limit = limit.min(MAX_BATCH as u64);
        let offset = offset.min(1 << 50);
        let r = self.call(Op::Admin, vec![text("list"), text(code_of_state(state)), num(offset), num(limit)]).await?;
        match r {
            Value::Array(items) => items.into_iter().map(job_info).collect(),
            _ => Ok(Vec::new()),
        }
    }

    async fn get(&self, id: &IdempotencyKey) -> Result<Option<JobInfo>, QueueError> {
        let r = self.call(Op::Admin, vec![text("get"), text(id.as_str())]).await?;
        match r {
            Value::Array(mut items) if !items.is_empty() => Ok(Some(job_info(items.swap_remove(0))?)),
            _ => Ok(None),
        }
    }

    async fn retry_dead(&self, id: &IdempotencyKey) -> Result<(), QueueError> {
        self.admin(vec![text("retry"), text(id.as_str())]).await.map(drop)
    }

    async fn retry_all_dead(&self) -> Result<u64, QueueError> {
        let r = self.admin(vec![text("retry_all")]).await?;
        Ok(r.get(1).map_or(0, to_u64))
    }

    async fn remove(&self, id: &IdempotencyKey) -> Result<(), QueueError> {
        self.admin(vec![text("remove"), text(id.as_str()), num(ms(self.config.dedup_window))]).await.map(drop)
    }

    async fn promote(&self, id: &IdempotencyKey) -> Result<(), QueueError> {
        self.admin(vec![text("promote"), text(id.as_str())]).await.map(drop)
    }

    async fn pause(&self) -> Result<(), QueueError> {
        self.admin(vec![text("pause")]).await.map(drop)
    }

    async fn resume(&self) -> Result<(), QueueError> {
        self.admin(vec![text("resume")]).await.map(drop)
    }
}

#[async_trait]
impl QueueHealth for RedisQueue {
    async fn ping(&self) -> Result<(), QueueError> {
        let _: Value = self.conn.shared.client.ping(None).await.map_err(|e| to_queue_error(&e))?;
        Ok(())
    }
}
