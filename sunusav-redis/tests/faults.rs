//! The core's fault-injecting wrapper around a Redis queue: the outages the
//! memory queue's tests inject (the backend down, an enqueue or an
//! acknowledgement that fails, a reserve slow to return its job), against
//! Redis, with what the core's tests on the memory queue expect.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::{key, queue};
use sunusav_core::conformance::FaultyQueue;
use sunusav_core::ports::prelude::*;
use sunusav_core::ports::queue::{
    Enqueued, FailKind, JobInfo, JobState, NewJob, Queue, QueueConfig, QueueError, ReservedJob,
};
use sunusav_core::runtime::{JobFailure, JobHandler, PoolConfig, WorkerPool};
use sunusav_redis::RedisQueue;
use tokio::sync::watch;

const LEASE: Duration = Duration::from_secs(30);

fn config() -> QueueConfig {
    QueueConfig::default().with_keep_completed(100_000).with_keep_dead(100).with_max_stalls(5)
}

/// A fresh Redis queue behind the fault switch, or `None` (skipped).
async fn faulty() -> Option<Arc<FaultyQueue<RedisQueue>>> {
    Some(Arc::new(FaultyQueue::wrap(queue(config()).await?)))
}

fn job(id: &str) -> NewJob {
    NewJob::new(key(id), vec![1u8; 8])
}

#[track_caller]
fn unavailable<T: std::fmt::Debug>(what: &str, r: Result<T, QueueError>) {
    match r {
        Err(QueueError::Unavailable(_)) => {}
        other => panic!("{what}: expected Unavailable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_whose_backend_is_down_answers_unavailable_everywhere_and_changes_nothing() {
    let Some(q) = faulty().await else { return };
    let inner = q.inner();
    // One job of each kind: active (held), waiting, delayed, dead.
    q.enqueue_bulk(vec![job("held"), job("dead")]).await.unwrap();
    let held = q.reserve(LEASE).await.unwrap().unwrap();
    let doomed = q.reserve(LEASE).await.unwrap().unwrap();
    q.fail(&doomed.id, &doomed.token, "boom", FailKind::Permanent).await.unwrap();
    q.enqueue(job("waiting")).await.unwrap();
    let mut later = job("later");
    later.options.delay = Duration::from_mins(10);
    q.enqueue(later).await.unwrap();
    let before = inner.stats().await.unwrap();
    assert_eq!((before.active, before.waiting, before.delayed, before.dead), (1, 1, 1, 1));
    let infos_before: Vec<_> =
        infos_of(inner, &["held", "dead", "waiting", "later"]).await.into_iter().map(Option::unwrap).collect();

    q.set_down(true);
    let id = key("held");
    unavailable("enqueue", q.enqueue(job("new")).await);
    unavailable("enqueue_bulk", q.enqueue_bulk(vec![job("new-1"), job("new-2")]).await);
    unavailable("reserve", q.reserve(LEASE).await);
    unavailable("reserve_wait", q.reserve_wait(LEASE, Duration::from_millis(50)).await);
    unavailable("ack", q.ack(&held.id, &held.token).await);
    unavailable(
        "ack_many_and_reserve",
        q.ack_many_and_reserve(&[(held.id.clone(), held.token.clone())], 4, LEASE).await,
    );
    unavailable("ack_and_reserve", q.ack_and_reserve(&held.id, &held.token, LEASE).await);
    unavailable("heartbeat", q.heartbeat(&held.id, &held.token, LEASE).await);
    unavailable("fail", q.fail(&held.id, &held.token, "x", FailKind::Retry).await);
    unavailable("recover_stalled", q.recover_stalled().await);
    unavailable("stats", q.stats().await);
    unavailable("list", q.list(JobState::Waiting, 0, 10).await);
    unavailable("get", q.get(&id).await);
    unavailable("retry_dead", q.retry_dead(&key("dead")).await);
    unavailable("retry_all_dead", q.retry_all_dead().await);
    unavailable("remove", q.remove(&key("waiting")).await);
    unavailable("promote", q.promote(&key("later")).await);
    unavailable("pause", q.pause().await);
    unavailable("resume", q.resume().await);
    unavailable("ping", q.ping().await);

    // Nothing reached Redis: every job as it was, the lease still held.
    assert_eq!(inner.stats().await.unwrap(), before);
    let infos_after: Vec<_> =
        infos_of(inner, &["held", "dead", "waiting", "later"]).await.into_iter().map(Option::unwrap).collect();
    assert_eq!(infos_after, infos_before);
    assert_eq!(inner.get(&key("new")).await.unwrap(), None);

    // Back up: the held lease works, and so does every capability.
    q.set_down(false);
    q.ping().await.unwrap();
    q.heartbeat(&held.id, &held.token, LEASE).await.unwrap();
    q.ack(&held.id, &held.token).await.unwrap();
    assert_eq!(q.get(&id).await.unwrap().unwrap().state, JobState::Completed);
    assert_eq!(q.reserve(LEASE).await.unwrap().unwrap().id, key("waiting"));
}

async fn infos_of(q: &RedisQueue, ids: &[&str]) -> Vec<Option<JobInfo>> {
    let mut out = Vec::new();
    for id in ids {
        out.push(q.get(&key(id)).await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_enqueue_adds_nothing_and_the_same_job_is_added_once_when_sent_again() {
    let Some(q) = faulty().await else { return };
    q.fail_next_enqueues(2);
    unavailable("the first enqueue", q.enqueue(job("payout:1")).await);
    unavailable("the bulk enqueue after it", q.enqueue_bulk(vec![job("payout:2"), job("payout:3")]).await);
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.waiting, stats.delayed), (0, 0), "nothing was added");
    assert_eq!(q.get(&key("payout:1")).await.unwrap(), None);

    // Sent again (as the outbox relay or the sweep does): each added once.
    assert_eq!(q.enqueue(job("payout:1")).await.unwrap(), Enqueued::Added);
    assert_eq!(
        q.enqueue_bulk(vec![job("payout:1"), job("payout:2"), job("payout:3")]).await.unwrap(),
        [Enqueued::Duplicate, Enqueued::Added, Enqueued::Added]
    );
    assert_eq!(q.stats().await.unwrap().waiting, 3, "one job per id");
    let mut reserved = Vec::new();
    while let Some(j) = q.reserve(LEASE).await.unwrap() {
        reserved.push(j.id.to_string());
    }
    assert_eq!(reserved, ["payout:1", "payout:2", "payout:3"]);
}

/// Counts runs per job id.
#[derive(Default)]
struct Counting {
    runs: Mutex<HashMap<String, u32>>,
}

impl Counting {
    fn runs(&self) -> HashMap<String, u32> {
        self.runs.lock().unwrap().clone()
    }

    fn total(&self) -> u32 {
        self.runs.lock().unwrap().values().sum()
    }
}

#[async_trait]
impl JobHandler for Counting {
    async fn handle(&self, job: &ReservedJob) -> Result<(), JobFailure> {
        *self.runs.lock().unwrap().entry(job.id.to_string()).or_default() += 1;
        Ok(())
    }
}

fn start(q: &Arc<dyn Queue>, h: &Arc<Counting>, config: PoolConfig) -> (WorkerPool, watch::Sender<bool>) {
    let (tx, rx) = watch::channel(false);
    let handler: Arc<dyn JobHandler> = Arc::clone(h) as Arc<dyn JobHandler>;
    let consumer: Arc<dyn Consumer> = q.clone();
    (WorkerPool::spawn(&consumer, &handler, config, &rx), tx)
}

async fn wait_for(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_mins(1);
    while !cond().await {
        assert!(Instant::now() < deadline, "{what}: not within 60 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_that_fail_are_sent_again_and_every_job_runs_and_completes_once() {
    let Some(faulty) = faulty().await else { return };
    let q: Arc<dyn Queue> = Arc::clone(&faulty) as Arc<dyn Queue>;
    q.enqueue_bulk((0..200).map(|i| job(&format!("job-{i}"))).collect()).await.unwrap();
    faulty.fail_next_acks(3);
    let h = Arc::new(Counting::default());
    let config = PoolConfig::default()
        .with_concurrency(4)
        .with_batch(4)
        .with_lease(Duration::from_secs(3))
        .with_idle_wait(Duration::from_millis(50));
    let (pool, stop) = start(&q, &h, config);
    let metrics = pool.metrics();
    wait_for("every job completed", async || q.stats().await.unwrap().completed == 200).await;
    stop.send(true).unwrap();
    assert!(pool.join(Duration::from_secs(5)).await, "clean shutdown");

    assert_eq!(faulty.acks_left_to_fail(), 0, "the injected failures happened");
    assert_eq!(faulty.acks_applied(), 200, "each job acknowledged once");
    let runs = h.runs();
    assert_eq!(runs.len(), 200);
    assert!(runs.values().all(|&n| n == 1), "a job ran twice: {runs:?}");
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.completed, stats.active, stats.waiting, stats.failed), (200, 0, 0, 0));
    let done = q.list(JobState::Completed, 0, 1_000).await.unwrap();
    assert_eq!(done.len(), 200);
    assert!(done.iter().all(|j| (j.attempts, j.stalls) == (1, 0)), "a job was retried or stalled");
    assert_eq!(q.recover_stalled().await.unwrap().recovered, 0, "no lease left to expire");
    assert_eq!(metrics.snapshot("pool", 4).processed, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_acknowledgement_never_lands_stays_active_and_is_not_counted_as_processed() {
    let Some(faulty) = faulty().await else { return };
    let q: Arc<dyn Queue> = Arc::clone(&faulty) as Arc<dyn Queue>;
    faulty.fail_next_acks(u32::MAX);
    let h = Arc::new(Counting::default());
    let config = PoolConfig::default().with_concurrency(1).with_lease(Duration::from_secs(3));
    let (pool, stop) = start(&q, &h, config);
    let metrics = pool.metrics();
    q.enqueue(job("job-0")).await.unwrap();
    wait_for("the job run", async || h.total() >= 1).await;
    // Every try of the acknowledgement is over within a third of the lease.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(faulty.acks_applied(), 0);
    assert_eq!(metrics.snapshot("pool", 1).processed, 0, "a job is processed once the queue took its ack");
    let info = faulty.inner().get(&key("job-0")).await.unwrap().unwrap();
    assert_eq!((info.state, info.attempts), (JobState::Active, 1), "Redis still holds it under its lease");
    stop.send(true).unwrap();
    assert!(pool.join(Duration::from_secs(5)).await, "clean shutdown");
    assert_eq!(h.total(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_during_a_reserve_that_leased_a_job_leaves_no_job_without_a_holder() {
    let Some(slow) = faulty().await else { return };
    slow.pause_reserves(Duration::from_millis(200));
    let q: Arc<dyn Queue> = Arc::clone(&slow) as Arc<dyn Queue>;
    let h = Arc::new(Counting::default());
    let config = PoolConfig::default().with_concurrency(1).with_idle_wait(Duration::from_secs(2));
    let (pool, stop) = start(&q, &h, config);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let leased = slow.job_leased();
    q.enqueue(job("job-0")).await.unwrap();
    // The job is leased in Redis; its reserve has not returned yet.
    leased.await;
    stop.send(true).unwrap();
    assert!(pool.join(Duration::from_secs(5)).await, "clean shutdown");
    let info = q.get(&key("job-0")).await.unwrap().unwrap();
    assert_eq!(
        (info.state, h.total()),
        (JobState::Completed, 1),
        "the pool ran the job it had reserved (left {:?}: leased under a token nobody holds)",
        info.state
    );
}
