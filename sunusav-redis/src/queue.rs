//! [`RedisQueue`]: the `Queue` port on Redis.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use fred::interfaces::ClientLike;
use fred::types::config::Options;
use fred::types::{ClusterHash, CustomCommand, Value};
use sunusav_core::IdempotencyKey;
use sunusav_core::ports::queue::{
    Consumer, Enqueued, FailKind, FailOutcome, JobCursor, JobInfo, JobPage, JobState, LeaseToken, NewJob, Producer,
    QueueAdmin, QueueConfig, QueueError, QueueHealth, QueueName, QueueStats, ReservedJob, StallRecovery, Step,
};

use crate::codes::state_code;
use crate::connection::RedisConnection;
use crate::decode::{self, bytes, ms, num, text};
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
/// | `:e:<id>` | list | the job's error history, newest first (`attempt:at_ms:error`), trimmed to `error_history` by the script that pushes, deleted with the hash |
/// | `:w` | zset | waiting: score −priority, member 16-digit sequence + id (FIFO within a priority) |
/// | `:a` | zset | active, by lease expiry; member = lease token (36 chars) + id, so one `ZREM` checks and releases a lease |
/// | `:d`, `:f` | zset | delayed, failed (waiting for a retry), by due time |
/// | `:due` | string | lower bound of the earliest due time in `:d`/`:f` (`none`; missing = unknown): reserves skip promotion until then |
/// | `:c`, `:x` | list | completed, dead: newest first, trimmed to the retention |
/// | `:claims` | zset | claimed ids: `+inf` while the job exists, then the end of its dedup window |
/// | `:seq`, `:paused`, `:n` | string, string, list | sequence, pause flag, bounded wake-up list |
/// | `:sched:<id>`, `:schedules:*` | hash, zsets, string | recurring schedules (the `Scheduler` capability, `schedule.rs`) |
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

    pub(crate) async fn call(&self, op: Op, args: Vec<Value>) -> Result<Value, QueueError> {
        let shared = &self.conn.shared;
        shared.scripts.call(&shared.client, op, &self.base, args).await.map_err(|e| to_queue_error(&e))
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
        decode::step(self.call(Op::Step, args).await?, acks.len(), count)
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
        let opts = Options { timeout: Some(wait + shared.command_timeout), ..Options::default() };
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
        out.pop().ok_or_else(|| decode::corrupt("enqueue reply: no result"))
    }

    async fn enqueue_bulk(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, QueueError> {
        jobs.iter().try_for_each(validate)?;
        let mut results = Vec::with_capacity(jobs.len());
        let mut jobs = jobs.into_iter().peekable();
        // Chunks bound the script's argument list (Lua's unpack limit) and its run time.
        while jobs.peek().is_some() {
            let chunk: Vec<NewJob> = jobs.by_ref().take(MAX_BATCH).collect();
            let n = chunk.len();
            let mut args = Vec::with_capacity(1 + 8 * n);
            args.push(num(n as u64));
            for job in chunk {
                push_job(&mut args, job);
            }
            results.extend(decode::enqueued(self.call(Op::Enqueue, args).await?, n)?);
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
        decode::heartbeat(&reply)
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
            num(u64::from(self.config.error_history)),
        ];
        decode::fail_outcome(self.call(Op::Fail, args).await?)
    }

    /// One script call per 1000 expired leases, each atomic: a job is
    /// reported dead by the one call that moved it. An error after a call
    /// that succeeded ends the pass with what was done (the rest waits for
    /// the next pass), so that the jobs already dead-lettered are reported.
    async fn recover_stalled(&self) -> Result<StallRecovery, QueueError> {
        let args = vec![
            num(u64::from(self.config.max_stalls)),
            num(self.config.keep_dead),
            num(ms(self.config.dedup_window)),
            num(u64::from(self.config.error_history)),
        ];
        let mut total = StallRecovery::default();
        loop {
            let batch = match self.call(Op::Recover, args.clone()).await.and_then(decode::stall_recovery) {
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
        decode::stats(self.call(Op::Admin, vec![text("stats")]).await?)
    }

    async fn list(&self, state: JobState, offset: u64, limit: u64) -> Result<Vec<JobInfo>, QueueError> {
        let limit = limit.min(MAX_BATCH as u64);
        let offset = offset.min(1 << 50);
        let args = vec![text("list"), text(state_code(state).code), num(offset), num(limit)];
        decode::job_infos(self.call(Op::Admin, args).await?, limit)
    }

    /// Waiting, delayed and failed jobs have exact cursors (the sorted set's
    /// score and member, placed for the script's time when the member has
    /// left); active jobs (whose members carry lease tokens, which never go
    /// into a cursor) and completed and dead jobs (lists) page by position
    /// and job id, the job looked for around its old place.
    async fn list_after(&self, state: JobState, after: Option<&JobCursor>, limit: u64) -> Result<JobPage, QueueError> {
        let limit = limit.min(MAX_BATCH as u64);
        let cursor = after.map_or("", JobCursor::as_str);
        let args = vec![text("list_after"), text(state_code(state).code), text(cursor), num(limit)];
        decode::job_page(self.call(Op::Admin, args).await?, limit)
    }

    async fn get(&self, id: &IdempotencyKey) -> Result<Option<JobInfo>, QueueError> {
        decode::job_info_opt(self.call(Op::Admin, vec![text("get"), text(id.as_str())]).await?)
    }

    async fn retry_dead(&self, id: &IdempotencyKey) -> Result<(), QueueError> {
        decode::admin_done(self.call(Op::Admin, vec![text("retry"), text(id.as_str())]).await?)
    }

    async fn retry_all_dead(&self) -> Result<u64, QueueError> {
        decode::admin_count(self.call(Op::Admin, vec![text("retry_all")]).await?)
    }

    async fn remove(&self, id: &IdempotencyKey) -> Result<(), QueueError> {
        let args = vec![text("remove"), text(id.as_str()), num(ms(self.config.dedup_window))];
        decode::admin_done(self.call(Op::Admin, args).await?)
    }

    async fn promote(&self, id: &IdempotencyKey) -> Result<(), QueueError> {
        decode::admin_done(self.call(Op::Admin, vec![text("promote"), text(id.as_str())]).await?)
    }

    async fn pause(&self) -> Result<(), QueueError> {
        decode::admin_done(self.call(Op::Admin, vec![text("pause")]).await?)
    }

    async fn resume(&self) -> Result<(), QueueError> {
        decode::admin_done(self.call(Op::Admin, vec![text("resume")]).await?)
    }
}

#[async_trait]
impl QueueHealth for RedisQueue {
    async fn ping(&self) -> Result<(), QueueError> {
        let _: Value = self.conn.shared.client.ping(None).await.map_err(|e| to_queue_error(&e))?;
        Ok(())
    }
}
