//! A pool of workers serving one queue: reserve, heartbeat, run, ack or fail.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

use crate::IdempotencyKey;
use crate::ports::{Consumer, FailKind, FailOutcome, LeaseToken, QueueError, ReservedJob, Step};

use super::attempt;
use super::metrics::{PoolMetrics, PoolSnapshot};

/// Why a job's attempt failed, and whether to retry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobFailure {
    /// Retry (with the job's backoff), or not.
    pub kind: FailKind,
    /// The error, kept with the job.
    pub message: String,
}

impl JobFailure {
    /// A failure to retry with backoff.
    pub fn retry(message: impl Into<String>) -> Self {
        Self { kind: FailKind::Retry, message: message.into() }
    }

    /// A failure not to retry.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self { kind: FailKind::Permanent, message: message.into() }
    }
}

/// What a pool runs for each job.
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// Runs one attempt of a job, in a `tracing` span with the queue, the
    /// job id and the attempt. A panic fails the attempt with
    /// [`FailKind::Retry`] and the panic's message; the worker goes on.
    ///
    /// # Errors
    /// A [`JobFailure`] says whether to retry.
    async fn handle(&self, job: &ReservedJob) -> Result<(), JobFailure>;

    /// Runs one attempt of each of `jobs` together (a pool with
    /// [`PoolConfig::batch`] over 1 hands over up to that many); one result
    /// per job, in order. The default runs [`JobHandler::handle`] on each in
    /// turn; a handler overrides it to share round trips between the jobs.
    /// It runs in a span with the queue and the count; a panic fails every
    /// job of the batch with [`FailKind::Retry`].
    async fn handle_batch(&self, jobs: &[ReservedJob]) -> Vec<Result<(), JobFailure>> {
        let mut results = Vec::with_capacity(jobs.len());
        for job in jobs {
            results.push(self.handle(job).await);
        }
        results
    }

    /// Called once when the queue moves the job to the dead letters. A panic
    /// in it is logged; it does not stop the worker.
    async fn dead(&self, job: &ReservedJob, error: &str) {
        let _ = (job, error);
    }
}

/// Settings of one pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolConfig {
    /// Workers.
    pub concurrency: usize,
    /// Lease of a reserved job; a worker heartbeats every third of it.
    pub lease: Duration,
    /// How long one blocking reserve waits before looking at shutdown again,
    /// at most 250 ms (an idle worker sees shutdown within that; a reserve
    /// is never abandoned half-way).
    pub idle_wait: Duration,
    /// Jobs reserved ahead of the workers, so that a busy pool fetches many
    /// per round trip (RabbitMQ's prefetch count). They are held under lease
    /// while they wait; one that waited over a third of its lease is
    /// heartbeated before it runs, and skipped if its lease was lost. At
    /// shutdown the workers still run them. 0 (the default) reserves only for
    /// idle workers.
    pub prefetch: usize,
    /// Most jobs a worker hands to [`JobHandler::handle_batch`] at once (1,
    /// the default, hands over one job at a time). A worker takes what is
    /// due up to this many: a busy pool runs full batches, an idle one runs
    /// each job as it comes.
    pub batch: usize,
    /// With `batch` over 1: how long a worker woken by one job on an idle
    /// queue waits for more before it starts (default zero: it starts at
    /// once). A pool that keeps up with its queue otherwise runs batches of
    /// one, each with its own round trips; lingering trades that much job
    /// latency for fewer round trips per job.
    pub linger: Duration,
    /// Longest one attempt may run (of a batch, with [`PoolConfig::batch`]
    /// over 1): past it the handler is dropped, its heartbeats stop and its
    /// jobs fail with [`FailKind::Retry`] and a message saying they timed
    /// out. None (the default): no limit.
    pub job_timeout: Option<Duration>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            concurrency: 1,
            lease: Duration::from_secs(30),
            idle_wait: Duration::from_secs(2),
            prefetch: 0,
            batch: 1,
            linger: Duration::ZERO,
            job_timeout: None,
        }
    }
}

/// Builders, for code outside this crate (the struct is `#[non_exhaustive]`):
/// start from [`Default`] and set what differs.
impl PoolConfig {
    /// This config with [`concurrency`](Self::concurrency) set to `concurrency`.
    #[must_use]
    pub const fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// This config with [`lease`](Self::lease) set to `lease`.
    #[must_use]
    pub const fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// This config with [`idle_wait`](Self::idle_wait) set to `idle_wait`.
    #[must_use]
    pub const fn with_idle_wait(mut self, idle_wait: Duration) -> Self {
        self.idle_wait = idle_wait;
        self
    }

    /// This config with [`prefetch`](Self::prefetch) set to `prefetch`.
    #[must_use]
    pub const fn with_prefetch(mut self, prefetch: usize) -> Self {
        self.prefetch = prefetch;
        self
    }

    /// This config with [`batch`](Self::batch) set to `batch`.
    #[must_use]
    pub const fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }

    /// This config with [`linger`](Self::linger) set to `linger`.
    #[must_use]
    pub const fn with_linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// This config with [`job_timeout`](Self::job_timeout) set to `job_timeout`.
    #[must_use]
    pub const fn with_job_timeout(mut self, job_timeout: Option<Duration>) -> Self {
        self.job_timeout = job_timeout;
        self
    }
}

/// A running pool.
#[derive(Debug)]
pub struct WorkerPool {
    queue: String,
    concurrency: usize,
    metrics: Arc<PoolMetrics>,
    handles: Vec<JoinHandle<()>>,
}

impl WorkerPool {
    /// Starts `config.concurrency` workers on `queue`; they stop taking jobs when
    /// `shutdown` turns true and finish the job in hand.
    pub fn spawn(
        queue: &Arc<dyn Consumer>,
        handler: &Arc<dyn JobHandler>,
        config: PoolConfig,
        shutdown: &watch::Receiver<bool>,
    ) -> Self {
        let metrics = Arc::new(PoolMetrics::default());
        let batcher = Arc::new(Batcher::new(Arc::clone(queue), config.lease, config.prefetch, Arc::clone(&metrics)));
        let tasks = (0..config.concurrency.max(1))
            .map(|_| {
                let w = Worker {
                    batcher: Arc::clone(&batcher),
                    queue: Arc::clone(queue),
                    handler: Arc::clone(handler),
                    metrics: Arc::clone(&metrics),
                    config,
                    shutdown: shutdown.clone(),
                };
                tokio::spawn(w.run())
            })
            .collect();
        Self { queue: queue.name().to_owned(), concurrency: config.concurrency.max(1), metrics, handles: tasks }
    }

    /// The pool's live metrics.
    pub fn metrics(&self) -> Arc<PoolMetrics> {
        Arc::clone(&self.metrics)
    }

    /// The pool's figures now.
    pub fn snapshot(&self) -> PoolSnapshot {
        self.metrics.snapshot(&self.queue, self.concurrency as u64)
    }

    /// Waits for the workers to stop, at most `deadline`; workers still running
    /// then are aborted (their leases expire and the queue recovers the jobs).
    /// Returns whether every worker stopped in time.
    pub async fn join(self, deadline: Duration) -> bool {
        let aborts: Vec<_> = self.handles.iter().map(JoinHandle::abort_handle).collect();
        let all = futures_join_all(self.handles);
        if tokio::time::timeout(deadline, all).await.is_ok() {
            return true;
        }
        for a in aborts {
            a.abort();
        }
        false
    }
}

async fn futures_join_all(handles: Vec<JoinHandle<()>>) {
    for h in handles {
        let _ = h.await;
    }
}

struct Worker {
    batcher: Arc<Batcher>,
    queue: Arc<dyn Consumer>,
    handler: Arc<dyn JobHandler>,
    metrics: Arc<PoolMetrics>,
    config: PoolConfig,
    shutdown: watch::Receiver<bool>,
}

/// The longest a worker blocks in one reserve: how soon it sees shutdown
/// while idle.
const RESERVE_SLICE: Duration = Duration::from_millis(250);

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Worker {
    async fn run(mut self) {
        let want = self.config.batch.max(1);
        let mut next: Vec<ReservedJob> = Vec::new();
        let mut backoff = Duration::from_millis(100);
        loop {
            let jobs = if !next.is_empty() {
                std::mem::take(&mut next)
            } else if *self.shutdown.borrow() {
                // Jobs held ahead, or landing from a call still on its way,
                // run before the worker stops.
                let jobs = self.batcher.next(Vec::new(), true, want).await;
                if jobs.is_empty() {
                    return;
                }
                jobs
            } else {
                // Never raced against shutdown: a reserve dropped after the
                // backend leased a job (Redis runs its script after BLPOP)
                // would strand that job under a token nobody holds until the
                // lease expires, an attempt and a stall used up. The wait is
                // sliced short instead, so that shutdown is seen soon, and a
                // job it brought runs (within the shutdown deadline) and is
                // acknowledged like any other.
                let slice = self.config.idle_wait.min(RESERVE_SLICE);
                let reserved = self.queue.reserve_wait(self.config.lease, slice).await;
                match reserved {
                    Ok(Some(job)) => {
                        backoff = Duration::from_millis(100);
                        self.batcher.work_arrived();
                        self.linger(job, want).await
                    }
                    Ok(None) => continue,
                    Err(e) => {
                        // Redis restarting, connection dropped: wait and try again,
                        // never stop for good.
                        tracing::warn!(queue = self.queue.name(), error = %e, "reserve failed; retrying");
                        tokio::select! {
                            () = tokio::time::sleep(backoff) => {}
                            _ = self.shutdown.changed() => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                }
            };
            let done = self.process(jobs).await;
            let closing = *self.shutdown.borrow();
            next = self.batcher.next(done, closing, want).await;
        }
    }

    /// The batch that starts with `first`, a job that woke the worker on an
    /// idle queue: with [`PoolConfig::linger`], what else came meanwhile, up
    /// to `want` jobs in all.
    async fn linger(&mut self, first: ReservedJob, want: usize) -> Vec<ReservedJob> {
        let linger = self.config.linger;
        if want <= 1 || linger.is_zero() {
            return vec![first];
        }
        tokio::select! {
            () = tokio::time::sleep(linger) => {}
            _ = self.shutdown.changed() => {}
        }
        let closing = *self.shutdown.borrow();
        let mut jobs = vec![first];
        jobs.extend(self.batcher.next(Vec::new(), closing, want - 1).await);
        jobs
    }

    /// Runs a batch of jobs (often one) in its span; returns the
    /// acknowledgements of those that succeeded (failures are recorded here).
    async fn process(&mut self, jobs: Vec<ReservedJob>) -> Vec<(IdempotencyKey, LeaseToken)> {
        let span = attempt::span(self.queue.name(), &jobs);
        self.attempt(jobs).instrument(span).await
    }

    async fn attempt(&mut self, jobs: Vec<ReservedJob>) -> Vec<(IdempotencyKey, LeaseToken)> {
        let now = now_ms();
        for job in &jobs {
            self.metrics.waited(self.queue.name(), Duration::from_millis(now.saturating_sub(job.due_at_ms)));
        }
        self.metrics.busy.fetch_add(jobs.len() as u64, Ordering::Relaxed);
        let started = Instant::now();
        let results = {
            let heartbeat = heartbeat(&*self.queue, &jobs, self.config.lease);
            let handle = attempt::run(&*self.handler, &jobs, self.config.job_timeout);
            tokio::pin!(heartbeat, handle);
            tokio::select! {
                r = &mut handle => r,
                // Every lease lost: finish anyway; the acks are refused and the
                // holders of the new leases win. Handlers are idempotent.
                () = &mut heartbeat => handle.await,
            }
        };
        let elapsed = started.elapsed();
        self.metrics.busy.fetch_sub(jobs.len() as u64, Ordering::Relaxed);
        let mut acks = Vec::with_capacity(jobs.len());
        let mut results = results.into_iter();
        let batch = jobs.len() > 1;
        for job in jobs {
            self.metrics.ran(self.queue.name(), elapsed);
            let result =
                results.next().unwrap_or_else(|| Err(JobFailure::retry("the handler returned no result for this job")));
            let settled = if batch && result.is_err() {
                let span = attempt::job_span(self.queue.name(), &job);
                self.settle(job, result).instrument(span).await
            } else {
                self.settle(job, result).await
            };
            if let Some(ack) = settled {
                acks.push(ack);
            }
        }
        acks
    }

    /// One job's acknowledgement when it succeeded; else the failure is
    /// counted and sent to the queue here.
    async fn settle(&self, job: ReservedJob, result: Result<(), JobFailure>) -> Option<(IdempotencyKey, LeaseToken)> {
        match result {
            // Counted as processed once the queue took its acknowledgement.
            Ok(()) => Some((job.id, job.token)),
            Err(failure) => {
                self.metrics.count_failed(self.queue.name());
                match self.queue.fail(&job.id, &job.token, &failure.message, failure.kind).await {
                    Ok(FailOutcome::Retrying { delay }) => {
                        self.metrics.count_retried(self.queue.name());
                        tracing::info!(queue = self.queue.name(), job = %job.id, attempt = job.attempt, ?delay, error = %failure.message, "job failed; will retry");
                    }
                    Ok(FailOutcome::Dead) => {
                        self.metrics.count_dead_lettered(self.queue.name());
                        tracing::error!(queue = self.queue.name(), job = %job.id, attempt = job.attempt, error = %failure.message, "job dead-lettered");
                        attempt::dead(&*self.handler, &job, &failure.message).await;
                    }
                    Err(e) => log_lost(&*self.queue, &job.id, &e),
                }
                None
            }
        }
    }
}

/// Sends a pool's acknowledgements and reservations together: whatever
/// accumulates while one call is on its way goes in the next (group commit),
/// so a busy pool makes one round trip per batch of jobs and an idle one per
/// job, with no timer. Holds up to `prefetch` jobs reserved ahead.
struct Batcher {
    queue: Arc<dyn Consumer>,
    lease: Duration,
    prefetch: usize,
    /// Where acknowledged jobs are counted as processed.
    metrics: Arc<PoolMetrics>,
    state: Mutex<BatchState>,
}

#[derive(Default)]
struct BatchState {
    /// Finished jobs not acknowledged yet.
    acks: Vec<(IdempotencyKey, LeaseToken)>,
    /// Workers waiting for their next jobs, with how many each takes (none:
    /// nothing due, block on the queue).
    waiters: Vec<(usize, oneshot::Sender<Vec<Held>>)>,
    /// Workers waiting for their acknowledgement to be sent (shutdown).
    flushed: Vec<oneshot::Sender<()>>,
    /// Jobs reserved ahead, with when.
    buffer: VecDeque<Held>,
    /// A call is on its way (its task drains the state before it ends).
    sending: bool,
    /// The last call found fewer jobs than it asked for: do not prefetch
    /// until work is seen again.
    dry: bool,
    /// Shutting down: reserve nothing more.
    closing: bool,
}

impl BatchState {
    fn wants_refill(&self, prefetch: usize) -> bool {
        !self.closing && !self.dry && prefetch > 0 && self.buffer.len() <= prefetch / 2
    }

    fn idle(&self, prefetch: usize) -> bool {
        self.acks.is_empty() && self.waiters.is_empty() && self.flushed.is_empty() && !self.wants_refill(prefetch)
    }
}

/// Delays before each new try of a call whose acknowledgements failed on an
/// unavailable backend (see [`Batcher::call`]).
const ACK_RETRIES: [Duration; 3] = [Duration::from_millis(50), Duration::from_millis(100), Duration::from_millis(200)];

/// A job reserved by the batcher, with when.
type Held = (ReservedJob, Instant);

enum Wait {
    Job(oneshot::Receiver<Vec<Held>>),
    Flush(oneshot::Receiver<()>),
}

impl Batcher {
    fn new(queue: Arc<dyn Consumer>, lease: Duration, prefetch: usize, metrics: Arc<PoolMetrics>) -> Self {
        Self { queue, lease, prefetch, metrics, state: Mutex::new(BatchState::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BatchState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A worker found a job by blocking on the queue: prefetch again.
    fn work_arrived(self: &Arc<Self>) {
        let start = {
            let mut st = self.lock();
            st.dry = false;
            let start = !st.sending && !st.idle(self.prefetch);
            st.sending |= start;
            start
        };
        if start {
            tokio::spawn(Arc::clone(self).send_all());
        }
    }

    /// Queues `done`'s acknowledgements and returns the worker's next jobs,
    /// up to `most`: jobs reserved ahead, or those of the next call. None when
    /// nothing is due (the worker then blocks on the queue) or when `closing`
    /// and no job is held ahead, once `done` is acknowledged.
    async fn next(
        self: &Arc<Self>,
        done: Vec<(IdempotencyKey, LeaseToken)>,
        closing: bool,
        most: usize,
    ) -> Vec<ReservedJob> {
        let mut done = done;
        loop {
            let (wait, popped, start) = {
                let mut st = self.lock();
                st.closing |= closing;
                st.acks.append(&mut done);
                let take = most.min(st.buffer.len());
                let popped: Vec<Held> = st.buffer.drain(..take).collect();
                let wait = if !popped.is_empty() {
                    None
                } else if st.closing {
                    if st.acks.is_empty() && !st.sending {
                        return Vec::new();
                    }
                    let (tx, rx) = oneshot::channel();
                    st.flushed.push(tx);
                    Some(Wait::Flush(rx))
                } else {
                    let (tx, rx) = oneshot::channel();
                    st.waiters.push((most, tx));
                    Some(Wait::Job(rx))
                };
                let start = !st.sending && !st.idle(self.prefetch);
                st.sending |= start;
                (wait, popped, start)
            };
            if start {
                tokio::spawn(Arc::clone(self).send_all());
            }
            let held = match wait {
                None => popped,
                Some(Wait::Job(rx)) => {
                    let held = rx.await.unwrap_or_default();
                    if held.is_empty() {
                        return Vec::new();
                    }
                    held
                }
                Some(Wait::Flush(rx)) => {
                    // The call on its way may have brought jobs: look again.
                    if rx.await.is_err() {
                        return Vec::new();
                    }
                    continue;
                }
            };
            let mut jobs = Vec::with_capacity(held.len());
            for (job, at) in held {
                jobs.extend(self.fresh(job, at).await);
            }
            if !jobs.is_empty() {
                return jobs;
            }
        }
    }

    /// A job held ahead, heartbeated first when it waited over a third of its
    /// lease; `None` when its lease was lost meanwhile.
    async fn fresh(&self, job: ReservedJob, at: Instant) -> Option<ReservedJob> {
        if at.elapsed() < self.lease / 3 {
            return Some(job);
        }
        match self.queue.heartbeat(&job.id, &job.token, self.lease).await {
            Err(QueueError::LeaseLost) => {
                tracing::warn!(queue = self.queue.name(), job = %job.id, "a job reserved ahead lost its lease before it ran; skipped");
                None
            }
            // Unreachable backend: run it anyway (handlers are idempotent; the ack decides).
            _ => Some(job),
        }
    }

    /// One call: acknowledges `acks` and reserves up to `count` jobs. A call
    /// that carries acknowledgements and finds the backend unavailable is
    /// made again after each of [`ACK_RETRIES`]: an acknowledgement is by
    /// lease token, so applying it twice is harmless, while dropping it runs
    /// a job that succeeded again, as a stall. The retries end within a third
    /// of a lease: a finished job's lease had at least two thirds left (it
    /// was heartbeated every third), so they all happen while it holds.
    async fn call(&self, acks: &[(IdempotencyKey, LeaseToken)], count: usize) -> Result<Step, QueueError> {
        if acks.is_empty() && count == 0 {
            return Ok(Step::default());
        }
        let give_up = Instant::now() + self.lease / 3;
        let mut result = self.queue.ack_many_and_reserve(acks, count, self.lease).await;
        for delay in ACK_RETRIES {
            match &result {
                Err(QueueError::Unavailable(e)) if !acks.is_empty() && Instant::now() + delay < give_up => {
                    tracing::warn!(queue = self.queue.name(), acks = acks.len(), error = %e, ?delay, "acknowledging failed; retrying");
                }
                _ => break,
            }
            tokio::time::sleep(delay).await;
            result = self.queue.ack_many_and_reserve(acks, count, self.lease).await;
        }
        result
    }

    /// Sends calls until nothing is left to send.
    async fn send_all(self: Arc<Self>) {
        loop {
            let (acks, waiters, flushed, count) = {
                let mut st = self.lock();
                if st.idle(self.prefetch) {
                    st.sending = false;
                    return;
                }
                // Jobs held ahead go to waiting workers first.
                while !st.waiters.is_empty() && !st.buffer.is_empty() {
                    let (want, tx) = st.waiters.remove(0);
                    let take = want.min(st.buffer.len());
                    let _ = tx.send(st.buffer.drain(..take).collect());
                }
                let ahead = if st.wants_refill(self.prefetch) { self.prefetch - st.buffer.len() } else { 0 };
                let wanted: usize = st.waiters.iter().map(|(want, _)| *want).sum();
                let count = if st.closing { 0 } else { wanted + ahead };
                (std::mem::take(&mut st.acks), std::mem::take(&mut st.waiters), std::mem::take(&mut st.flushed), count)
            };
            let result = self.call(&acks, count).await;
            let mut jobs = match result {
                Ok(step) => {
                    let mut processed = 0;
                    for ((id, _), &acked) in acks.iter().zip(&step.acked) {
                        if acked {
                            processed += 1;
                        } else {
                            log_lost(&*self.queue, id, &QueueError::LeaseLost);
                        }
                    }
                    self.metrics.count_processed(self.queue.name(), processed);
                    step.jobs.into_iter()
                }
                Err(e) => {
                    for (id, _) in &acks {
                        log_lost(&*self.queue, id, &e);
                    }
                    Vec::new().into_iter()
                }
            };
            let got = jobs.len();
            let now = Instant::now();
            // Dealt one at a time, so that a short call spreads over the workers.
            let mut dealt: Vec<Vec<Held>> = waiters.iter().map(|_| Vec::new()).collect();
            'deal: loop {
                let mut any = false;
                for ((want, _), hand) in waiters.iter().zip(&mut dealt) {
                    if hand.len() < *want {
                        let Some(job) = jobs.next() else { break 'deal };
                        hand.push((job, now));
                        any = true;
                    }
                }
                if !any {
                    break;
                }
            }
            for ((_, w), hand) in waiters.into_iter().zip(dealt) {
                // A worker gone (aborted at the deadline) drops its jobs: their leases expire.
                let _ = w.send(hand);
            }
            {
                let mut st = self.lock();
                if count > 0 {
                    st.dry = got < count;
                }
                st.buffer.extend(jobs.map(|j| (j, now)));
            }
            for f in flushed {
                let _ = f.send(());
            }
        }
    }
}

fn log_lost(queue: &dyn Consumer, job: &IdempotencyKey, e: &QueueError) {
    tracing::warn!(queue = queue.name(), job = %job, error = %e, "could not settle the job with the queue; its lease will expire and it will be redelivered");
}

/// Extends the leases of `jobs` every third of the lease, forever; stops
/// extending a job's once it is lost, and returns once all are.
async fn heartbeat(queue: &dyn Consumer, jobs: &[ReservedJob], lease: Duration) {
    let every = (lease / 3).max(Duration::from_millis(10));
    let mut live: Vec<&ReservedJob> = jobs.iter().collect();
    loop {
        tokio::time::sleep(every).await;
        let mut kept = Vec::with_capacity(live.len());
        for job in live {
            match queue.heartbeat(&job.id, &job.token, lease).await {
                Ok(()) => kept.push(job),
                Err(QueueError::LeaseLost) => {
                    tracing::warn!(queue = queue.name(), job = %job.id, "lease lost while running");
                }
                Err(e) => {
                    tracing::warn!(queue = queue.name(), job = %job.id, error = %e, "heartbeat failed");
                    kept.push(job);
                }
            }
        }
        live = kept;
        if live.is_empty() {
            return;
        }
    }
}
