//! A pool of workers serving one queue: reserve, heartbeat, run, ack or fail.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::ports::{FailKind, FailOutcome, Queue, QueueError, ReservedJob};

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
    /// Runs one attempt of a job.
    ///
    /// # Errors
    /// A [`JobFailure`] says whether to retry.
    async fn handle(&self, job: &ReservedJob) -> Result<(), JobFailure>;

    /// Called once when the queue moves the job to the dead letters.
    async fn dead(&self, job: &ReservedJob, error: &str) {
        let _ = (job, error);
    }
}

/// Settings of one pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Workers.
    pub concurrency: usize,
    /// Lease of a reserved job; a worker heartbeats every third of it.
    pub lease: Duration,
    /// How long one blocking reserve waits before looking at shutdown again.
    pub idle_wait: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self { concurrency: 1, lease: Duration::from_secs(30), idle_wait: Duration::from_secs(2) }
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
        queue: &Arc<dyn Queue>,
        handler: &Arc<dyn JobHandler>,
        config: PoolConfig,
        shutdown: &watch::Receiver<bool>,
    ) -> Self {
        let metrics = Arc::new(PoolMetrics::default());
        let tasks = (0..config.concurrency.max(1))
            .map(|_| {
                let w = Worker {
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
    queue: Arc<dyn Queue>,
    handler: Arc<dyn JobHandler>,
    metrics: Arc<PoolMetrics>,
    config: PoolConfig,
    shutdown: watch::Receiver<bool>,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Worker {
    async fn run(mut self) {
        let mut next: Option<ReservedJob> = None;
        let mut backoff = Duration::from_millis(100);
        loop {
            let job = if let Some(job) = next.take() {
                job
            } else {
                if *self.shutdown.borrow() {
                    return;
                }
                let reserved = tokio::select! {
                    r = self.queue.reserve_wait(self.config.lease, self.config.idle_wait) => r,
                    _ = self.shutdown.changed() => continue,
                };
                match reserved {
                    Ok(Some(job)) => {
                        backoff = Duration::from_millis(100);
                        job
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
            next = self.process(job).await;
        }
    }

    /// Runs one job; returns the next one when the ack reserved it.
    async fn process(&mut self, job: ReservedJob) -> Option<ReservedJob> {
        self.metrics.wait.observe(Duration::from_millis(now_ms().saturating_sub(job.due_at_ms)));
        self.metrics.busy.fetch_add(1, Ordering::Relaxed);
        let started = tokio::time::Instant::now();
        let result = {
            let heartbeat = heartbeat(&*self.queue, &job, self.config.lease);
            let handle = self.handler.handle(&job);
            tokio::pin!(heartbeat, handle);
            tokio::select! {
                r = &mut handle => r,
                // Lease lost: finish anyway; the ack is refused and the holder of
                // the new lease wins. Handlers are idempotent.
                () = &mut heartbeat => handle.await,
            }
        };
        self.metrics.duration.observe(started.elapsed());
        self.metrics.busy.fetch_sub(1, Ordering::Relaxed);
        match result {
            Ok(()) => {
                self.metrics.processed.fetch_add(1, Ordering::Relaxed);
                let acked = if *self.shutdown.borrow() {
                    self.queue.ack(&job.id, &job.token).await.map(|()| None)
                } else {
                    self.queue.ack_and_reserve(&job.id, &job.token, self.config.lease).await
                };
                match acked {
                    Ok(next) => next,
                    Err(e) => {
                        log_lost(&*self.queue, &job, &e);
                        None
                    }
                }
            }
            Err(failure) => {
                self.metrics.failed.fetch_add(1, Ordering::Relaxed);
                match self.queue.fail(&job.id, &job.token, &failure.message, failure.kind).await {
                    Ok(FailOutcome::Retrying { delay }) => {
                        self.metrics.retried.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(queue = self.queue.name(), job = %job.id, attempt = job.attempt, ?delay, error = %failure.message, "job failed; will retry");
                    }
                    Ok(FailOutcome::Dead) => {
                        self.metrics.dead_lettered.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(queue = self.queue.name(), job = %job.id, attempt = job.attempt, error = %failure.message, "job dead-lettered");
                        self.handler.dead(&job, &failure.message).await;
                    }
                    Err(e) => log_lost(&*self.queue, &job, &e),
                }
                None
            }
        }
    }
}

fn log_lost(queue: &dyn Queue, job: &ReservedJob, e: &QueueError) {
    tracing::warn!(queue = queue.name(), job = %job.id, error = %e, "could not settle the job with the queue; its lease will expire and it will be redelivered");
}

/// Extends the lease every third of it, forever; stops extending (and waits
/// forever) once the lease is lost.
async fn heartbeat(queue: &dyn Queue, job: &ReservedJob, lease: Duration) {
    let every = (lease / 3).max(Duration::from_millis(10));
    loop {
        tokio::time::sleep(every).await;
        match queue.heartbeat(&job.id, &job.token, lease).await {
            Ok(()) => {}
            Err(QueueError::LeaseLost) => {
                tracing::warn!(queue = queue.name(), job = %job.id, "lease lost while running");
                return;
            }
            Err(e) => tracing::warn!(queue = queue.name(), job = %job.id, error = %e, "heartbeat failed"),
        }
    }
}
