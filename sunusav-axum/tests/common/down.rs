//! A queue whose backend can be switched off: while down, every call fails
//! with `Unavailable`; while up, it is a `MemoryQueue`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sunusav_core::IdempotencyKey;
use sunusav_core::memory::MemoryQueue;
use sunusav_core::ports::{
    Enqueued, FailKind, FailOutcome, JobInfo, JobState, LeaseToken, NewJob, Queue, QueueConfig, QueueError, QueueStats,
    ReservedJob,
};

/// A memory queue with an off switch.
pub struct SwitchQueue {
    inner: MemoryQueue,
    down: AtomicBool,
}

impl SwitchQueue {
    /// A queue that starts down.
    pub fn down(name: &str) -> Self {
        Self { inner: MemoryQueue::new(name, QueueConfig::default()), down: AtomicBool::new(true) }
    }

    /// Switches the backend off or on.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn up(&self) -> Result<&MemoryQueue, QueueError> {
        if self.down.load(Ordering::SeqCst) {
            Err(QueueError::Unavailable("connection refused".into()))
        } else {
            Ok(&self.inner)
        }
    }
}

#[async_trait]
impl Queue for SwitchQueue {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn enqueue(&self, job: NewJob) -> Result<Enqueued, QueueError> {
        self.up()?.enqueue(job).await
    }
    async fn enqueue_bulk(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, QueueError> {
        self.up()?.enqueue_bulk(jobs).await
    }
    async fn reserve(&self, lease: Duration) -> Result<Option<ReservedJob>, QueueError> {
        self.up()?.reserve(lease).await
    }
    async fn reserve_wait(&self, lease: Duration, wait: Duration) -> Result<Option<ReservedJob>, QueueError> {
        self.up()?.reserve_wait(lease, wait).await
    }
    async fn heartbeat(&self, id: &IdempotencyKey, token: &LeaseToken, lease: Duration) -> Result<(), QueueError> {
        self.up()?.heartbeat(id, token, lease).await
    }
    async fn ack(&self, id: &IdempotencyKey, token: &LeaseToken) -> Result<(), QueueError> {
        self.up()?.ack(id, token).await
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
    async fn recover_stalled(&self) -> Result<u64, QueueError> {
        self.up()?.recover_stalled().await
    }
    async fn stats(&self) -> Result<QueueStats, QueueError> {
        self.up()?.stats().await
    }
    async fn list(&self, state: JobState, offset: u64, limit: u64) -> Result<Vec<JobInfo>, QueueError> {
        self.up()?.list(state, offset, limit).await
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
    async fn ping(&self) -> Result<(), QueueError> {
        self.up()?.ping().await
    }
}
