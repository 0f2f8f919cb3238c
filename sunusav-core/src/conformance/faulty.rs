//! [`FaultyQueue`]: any queue with injected outages, for tests of what happens
//! when the queue's backend is down (the same faults run against the memory
//! queue and Redis): switched off, every call fails with
//! `Unavailable`; or only the next enqueues fail (the process died, or Redis
//! went away, between a commit and its publish); or the next calls carrying
//! acknowledgements fail; or a reserve that leased a job takes a while to
//! return it (Redis runs its script, then the reply travels back).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::domain::keys::IdempotencyKey;
use crate::memory::MemoryQueue;
use crate::ports::queue::{
    Consumer, Enqueued, FailKind, FailOutcome, JobCursor, JobInfo, JobPage, JobState, LeaseToken, NewJob, Producer,
    Queue, QueueAdmin, QueueConfig, QueueError, QueueHealth, QueueName, QueueStats, ReservedJob, StallRecovery, Step,
};

/// A queue (a [`MemoryQueue`] unless said otherwise) with an off switch, and
/// enqueue and acknowledgement failures and slow reserves on demand. Every
/// call of every capability goes through the switch.
#[derive(Debug)]
pub struct FaultyQueue<Q = MemoryQueue> {
    inner: Q,
    down: AtomicBool,
    fail_enqueues: AtomicU32,
    fail_acks: AtomicU32,
    acks_applied: AtomicU64,
    reserve_pause: Mutex<Duration>,
    leased: Notify,
}

impl FaultyQueue<MemoryQueue> {
    /// A working memory queue.
    pub fn new(name: &str, config: QueueConfig) -> Self {
        Self::wrap(MemoryQueue::new(name, config))
    }

    /// A memory queue whose backend starts down.
    pub fn down(name: &str) -> Self {
        let q = Self::new(name, QueueConfig::default());
        q.set_down(true);
        q
    }
}

impl<Q: Queue> FaultyQueue<Q> {
    /// Wraps a working queue.
    pub fn wrap(inner: Q) -> Self {
        Self {
            inner,
            down: AtomicBool::new(false),
            fail_enqueues: AtomicU32::new(0),
            fail_acks: AtomicU32::new(0),
            acks_applied: AtomicU64::new(0),
            reserve_pause: Mutex::new(Duration::ZERO),
            leased: Notify::new(),
        }
    }

    /// Makes the next `n` calls that carry acknowledgements (`ack`,
    /// `ack_many_and_reserve` with some) fail with `Unavailable`, applying
    /// nothing.
    pub fn fail_next_acks(&self, n: u32) {
        self.fail_acks.store(n, Ordering::SeqCst);
    }

    /// How many of the acknowledgement failures asked for are still to come.
    pub fn acks_left_to_fail(&self) -> u32 {
        self.fail_acks.load(Ordering::SeqCst)
    }

    /// How many acknowledgements the queue applied.
    pub fn acks_applied(&self) -> u64 {
        self.acks_applied.load(Ordering::SeqCst)
    }

    /// Makes a blocking reserve that leased a job wait `pause` before it
    /// returns the job (see [`FaultyQueue::job_leased`]).
    pub fn pause_reserves(&self, pause: Duration) {
        *self.reserve_pause.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = pause;
    }

    /// Resolves once a blocking reserve has leased a job, before its pause.
    pub async fn job_leased(&self) {
        self.leased.notified().await;
    }

    /// The wrapped queue.
    pub fn inner(&self) -> &Q {
        &self.inner
    }

    /// Switches the backend off or on.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Makes the next `n` enqueues (single or bulk) fail with `Unavailable`.
    pub fn fail_next_enqueues(&self, n: u32) {
        self.fail_enqueues.store(n, Ordering::SeqCst);
    }

    fn up(&self) -> Result<&Q, QueueError> {
        if self.down.load(Ordering::SeqCst) {
            Err(QueueError::Unavailable("connection refused (injected)".into()))
        } else {
            Ok(&self.inner)
        }
    }

    fn up_for_acks(&self) -> Result<&Q, QueueError> {
        let inner = self.up()?;
        match self.fail_acks.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)) {
            Ok(_) => Err(QueueError::Unavailable("acknowledgement failed (injected)".into())),
            Err(_) => Ok(inner),
        }
    }

    fn up_for_enqueue(&self) -> Result<&Q, QueueError> {
        let inner = self.up()?;
        match self.fail_enqueues.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)) {
            Ok(_) => Err(QueueError::Unavailable("enqueue failed (injected)".into())),
            Err(_) => Ok(inner),
        }
    }
}

impl<Q: Queue> QueueName for FaultyQueue<Q> {
    fn name(&self) -> &str {
        self.inner.name()
    }
}

#[async_trait]
impl<Q: Queue> Producer for FaultyQueue<Q> {
    async fn enqueue(&self, job: NewJob) -> Result<Enqueued, QueueError> {
        self.up_for_enqueue()?.enqueue(job).await
    }
    async fn enqueue_bulk(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, QueueError> {
        self.up_for_enqueue()?.enqueue_bulk(jobs).await
    }
}

#[async_trait]
impl<Q: Queue> Consumer for FaultyQueue<Q> {
    async fn reserve_wait(&self, lease: Duration, wait: Duration) -> Result<Option<ReservedJob>, QueueError> {
        let job = self.up()?.reserve_wait(lease, wait).await?;
        if job.is_some() {
            self.leased.notify_one();
            let pause = *self.reserve_pause.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
        Ok(job)
    }
    async fn ack_many_and_reserve(
        &self,
        acks: &[(IdempotencyKey, LeaseToken)],
        count: usize,
        lease: Duration,
    ) -> Result<Step, QueueError> {
        let inner = if acks.is_empty() { self.up()? } else { self.up_for_acks()? };
        let step = inner.ack_many_and_reserve(acks, count, lease).await?;
        self.acks_applied.fetch_add(step.acked.iter().filter(|&&a| a).count() as u64, Ordering::SeqCst);
        Ok(step)
    }
    async fn heartbeat(&self, id: &IdempotencyKey, token: &LeaseToken, lease: Duration) -> Result<(), QueueError> {
        self.up()?.heartbeat(id, token, lease).await
    }
    async fn fail(
        &self,
        id: &IdempotencyKey,
        token: &LeaseToken,
        error: &str,
        kind: FailKind,
    ) -> Result<FailOutcome, QueueError> {
        self.up()?.fail(id, token, error, kind).await
    }
    async fn recover_stalled(&self) -> Result<StallRecovery, QueueError> {
        self.up()?.recover_stalled().await
    }
}

#[async_trait]
impl<Q: Queue> QueueAdmin for FaultyQueue<Q> {
    async fn stats(&self) -> Result<QueueStats, QueueError> {
        self.up()?.stats().await
    }
    async fn list(&self, state: JobState, offset: u64, limit: u64) -> Result<Vec<JobInfo>, QueueError> {
        self.up()?.list(state, offset, limit).await
    }
    async fn list_after(&self, state: JobState, after: Option<&JobCursor>, limit: u64) -> Result<JobPage, QueueError> {
        self.up()?.list_after(state, after, limit).await
    }
    async fn get(&self, id: &IdempotencyKey) -> Result<Option<JobInfo>, QueueError> {
        self.up()?.get(id).await
    }
    async fn retry_dead(&self, id: &IdempotencyKey) -> Result<(), QueueError> {
        self.up()?.retry_dead(id).await
    }
    async fn retry_all_dead(&self) -> Result<u64, QueueError> {
        self.up()?.retry_all_dead().await
    }
    async fn remove(&self, id: &IdempotencyKey) -> Result<(), QueueError> {
        self.up()?.remove(id).await
    }
    async fn promote(&self, id: &IdempotencyKey) -> Result<(), QueueError> {
        self.up()?.promote(id).await
    }
    async fn pause(&self) -> Result<(), QueueError> {
        self.up()?.pause().await
    }
    async fn resume(&self) -> Result<(), QueueError> {
        self.up()?.resume().await
    }
}

#[async_trait]
impl<Q: Queue> QueueHealth for FaultyQueue<Q> {
    async fn ping(&self) -> Result<(), QueueError> {
        self.up()?.ping().await
    }
}
