//! The worker pool on the in-memory queue: batched acknowledgements, jobs
//! reserved ahead (prefetch), their leases, shutdown, and handlers that panic
//! or run past the job timeout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sunusav_core::IdempotencyKey;
use sunusav_core::conformance::FaultyQueue;
use sunusav_core::memory::MemoryQueue;
use sunusav_core::ports::{Backoff, Consumer, JobOptions, JobState, NewJob, Queue, QueueConfig, ReservedJob};
use sunusav_core::runtime::{JobFailure, JobHandler, PoolConfig, WorkerPool};
use tokio::sync::{Barrier, watch};

/// The consumer side of a queue, as a pool takes it.
fn consumer(q: &Arc<dyn Queue>) -> Arc<dyn Consumer> {
    q.clone()
}

/// Counts runs per job id; sleeps `work` in each.
struct Counting {
    runs: Mutex<HashMap<String, u32>>,
    work: Duration,
}

impl Counting {
    fn new(work: Duration) -> Arc<Self> {
        Arc::new(Self { runs: Mutex::new(HashMap::new()), work })
    }

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
        if !self.work.is_zero() {
            tokio::time::sleep(self.work).await;
        }
        *self.runs.lock().unwrap().entry(job.id.to_string()).or_default() += 1;
        Ok(())
    }
}

fn queue() -> Arc<dyn Queue> {
    Arc::new(MemoryQueue::new(
        "pool",
        QueueConfig::default().with_keep_completed(100_000).with_keep_dead(100).with_max_stalls(5),
    ))
}

async fn fill(q: &Arc<dyn Queue>, n: usize) {
    let jobs = (0..n).map(|i| NewJob::new(IdempotencyKey::parse(format!("job-{i}")).unwrap(), vec![1u8; 8])).collect();
    q.enqueue_bulk(jobs).await.unwrap();
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..4_000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what}: not within 100 s");
}

fn start(q: &Arc<dyn Queue>, h: &Arc<Counting>, config: PoolConfig) -> (WorkerPool, watch::Sender<bool>) {
    let (tx, rx) = watch::channel(false);
    let handler: Arc<dyn JobHandler> = Arc::clone(h) as Arc<dyn JobHandler>;
    (WorkerPool::spawn(&consumer(q), &handler, config, &rx), tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_with_prefetch_runs_every_job_once_and_acknowledges_all() {
    let settings = [(1, 0, 1), (1, 16, 1), (4, 0, 1), (4, 8, 1), (10, 32, 1), (1, 0, 8), (4, 0, 16), (4, 32, 16)];
    for (concurrency, prefetch, batch) in settings {
        let q = queue();
        fill(&q, 2_000).await;
        let h = Counting::new(Duration::ZERO);
        let config = PoolConfig::default()
            .with_concurrency(concurrency)
            .with_prefetch(prefetch)
            .with_batch(batch)
            .with_idle_wait(Duration::from_millis(50));
        let (pool, stop) = start(&q, &h, config);
        wait_for("every job run", || h.total() >= 2_000).await;
        // Acknowledgements trail the runs by at most one call.
        let mut stats = q.stats().await.unwrap();
        for _ in 0..200 {
            if stats.completed == 2_000 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            stats = q.stats().await.unwrap();
        }
        stop.send(true).unwrap();
        assert!(pool.join(Duration::from_secs(5)).await, "c={concurrency} p={prefetch} b={batch}: clean shutdown");
        let runs = h.runs();
        assert_eq!(runs.len(), 2_000, "c={concurrency} p={prefetch} b={batch}");
        assert!(runs.values().all(|&n| n == 1), "c={concurrency} p={prefetch} b={batch}: a job ran twice");
        assert_eq!(
            (stats.completed, stats.active, stats.waiting),
            (2_000, 0, 0),
            "c={concurrency} p={prefetch} b={batch}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_job_held_ahead_whose_lease_expired_is_skipped_and_runs_once_from_the_queue() {
    let q = queue();
    fill(&q, 5).await;
    // One worker, 4 jobs held ahead, each run 10 s against a 3 s lease: the
    // held jobs' leases expire while the first runs.
    let h = Counting::new(Duration::from_secs(10));
    let config = PoolConfig::default()
        .with_concurrency(1)
        .with_prefetch(4)
        .with_lease(Duration::from_secs(3))
        .with_idle_wait(Duration::from_millis(200));
    let (pool, stop) = start(&q, &h, config);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(q.stats().await.unwrap().active, 5, "one running, four held ahead");
    // Stalled recovery gives the four expired leases back to waiting.
    assert_eq!(q.recover_stalled().await.unwrap().recovered, 4);
    wait_for("every job run", || h.total() >= 5).await;
    wait_for("all acknowledged", || true).await;
    for _ in 0..100 {
        if q.stats().await.unwrap().completed == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(true).unwrap();
    assert!(pool.join(Duration::from_secs(30)).await);
    let runs = h.runs();
    assert_eq!(runs.len(), 5);
    assert!(runs.values().all(|&n| n == 1), "a skipped job ran on a lost lease: {runs:?}");
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.completed, stats.active, stats.dead), (5, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn shutdown_runs_the_jobs_held_ahead_and_acknowledges_them() {
    let q = queue();
    fill(&q, 6).await;
    let h = Counting::new(Duration::from_millis(100));
    let config = PoolConfig::default().with_concurrency(2).with_prefetch(4);
    let (pool, stop) = start(&q, &h, config);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(q.stats().await.unwrap().active, 6, "two running, four held ahead");
    stop.send(true).unwrap();
    assert!(pool.join(Duration::from_secs(5)).await);
    assert_eq!(h.total(), 6);
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.completed, stats.active, stats.waiting), (6, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn an_idle_pool_with_prefetch_wakes_for_new_work() {
    let q = queue();
    let h = Counting::new(Duration::ZERO);
    let config = PoolConfig::default().with_concurrency(2).with_prefetch(8).with_idle_wait(Duration::from_secs(1));
    let (pool, stop) = start(&q, &h, config);
    for round in 1..=3u32 {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let jobs =
            (0..20).map(|i| NewJob::new(IdempotencyKey::parse(format!("r{round}-{i}")).unwrap(), vec![0u8])).collect();
        q.enqueue_bulk(jobs).await.unwrap();
        wait_for("round run", || h.total() >= 20 * round).await;
    }
    stop.send(true).unwrap();
    assert!(pool.join(Duration::from_secs(5)).await);
    assert_eq!(h.total(), 60);
    assert!(h.runs().values().all(|&n| n == 1));
    assert_eq!(q.stats().await.unwrap().completed, 60);
}

/// Hands batches over; fails the jobs whose id ends in `7`, permanently.
struct Batching {
    sizes: Mutex<Vec<usize>>,
    ran: Mutex<HashMap<String, u32>>,
}

#[async_trait]
impl JobHandler for Batching {
    async fn handle(&self, job: &ReservedJob) -> Result<(), JobFailure> {
        self.handle_batch(std::slice::from_ref(job)).await.remove(0)
    }

    async fn handle_batch(&self, jobs: &[ReservedJob]) -> Vec<Result<(), JobFailure>> {
        self.sizes.lock().unwrap().push(jobs.len());
        // Work that takes a while, so that jobs pile up behind a busy pool.
        tokio::time::sleep(Duration::from_millis(2)).await;
        jobs.iter()
            .map(|job| {
                *self.ran.lock().unwrap().entry(job.id.to_string()).or_default() += 1;
                if job.id.as_str().ends_with('7') { Err(JobFailure::permanent("sevens fail")) } else { Ok(()) }
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batching_pool_hands_over_batches_and_settles_each_job_on_its_own() {
    let q = queue();
    fill(&q, 1_000).await;
    let h = Arc::new(Batching { sizes: Mutex::new(Vec::new()), ran: Mutex::new(HashMap::new()) });
    let (tx, rx) = watch::channel(false);
    let handler: Arc<dyn JobHandler> = Arc::clone(&h) as Arc<dyn JobHandler>;
    let config = PoolConfig::default().with_concurrency(3).with_batch(10).with_idle_wait(Duration::from_millis(50));
    let pool = WorkerPool::spawn(&consumer(&q), &handler, config, &rx);
    let mut settled = 0;
    for _ in 0..4_000 {
        let stats = q.stats().await.unwrap();
        settled = stats.completed + stats.dead;
        if settled == 1_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(settled, 1_000, "every job settled within 100 s");
    tx.send(true).unwrap();
    assert!(pool.join(Duration::from_secs(5)).await, "clean shutdown");

    let sizes = h.sizes.lock().unwrap().clone();
    assert!(sizes.iter().all(|&n| (1..=10).contains(&n)), "a batch over the limit: {sizes:?}");
    assert!(sizes.iter().any(|&n| n > 1), "jobs were never handed over together: {sizes:?}");
    let ran = h.ran.lock().unwrap().clone();
    assert_eq!(ran.len(), 1_000);
    assert!(ran.values().all(|&n| n == 1), "a job ran twice");
    let stats = q.stats().await.unwrap();
    // job-7, job-17, …, job-997: 100 ids end in 7.
    assert_eq!((stats.completed, stats.dead, stats.active, stats.waiting), (900, 100, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_lingering_worker_settles_what_came_meanwhile_with_the_job_that_woke_it() {
    let q = queue();
    let h = Arc::new(Batching { sizes: Mutex::new(Vec::new()), ran: Mutex::new(HashMap::new()) });
    let (tx, rx) = watch::channel(false);
    let handler: Arc<dyn JobHandler> = Arc::clone(&h) as Arc<dyn JobHandler>;
    let config = PoolConfig::default()
        .with_concurrency(1)
        .with_batch(10)
        .with_linger(Duration::from_millis(50))
        .with_idle_wait(Duration::from_secs(1));
    let pool = WorkerPool::spawn(&consumer(&q), &handler, config, &rx);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let job = |i: usize| NewJob::new(IdempotencyKey::parse(format!("job-{i}")).unwrap(), vec![1u8; 8]);
    q.enqueue(job(0)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    q.enqueue_bulk((1..6).map(job).collect()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(*h.sizes.lock().unwrap(), vec![6], "one batch: the first job and the five that came within the linger");

    // Without lingering, the job that wakes the worker runs alone.
    q.enqueue(job(10)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    tx.send(true).unwrap();
    assert!(pool.join(Duration::from_secs(5)).await);
    let (tx, rx) = watch::channel(false);
    let pool = WorkerPool::spawn(&consumer(&q), &handler, config.with_linger(Duration::ZERO), &rx);
    tokio::time::sleep(Duration::from_millis(5)).await;
    q.enqueue(job(20)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
    q.enqueue_bulk((21..26).map(job).collect()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    tx.send(true).unwrap();
    assert!(pool.join(Duration::from_secs(5)).await);
    let sizes = h.sizes.lock().unwrap().clone();
    assert_eq!(sizes.iter().sum::<usize>(), 13, "every job ran: {sizes:?}");
    assert_eq!(sizes[2], 1, "the waking job ran at once: {sizes:?}");
}

/// A memory queue that can misbehave as a networked one does.
fn faulty(reserve_pause: Duration, fail_acks: u32) -> Arc<FaultyQueue> {
    let q = Arc::new(FaultyQueue::new("pool", QueueConfig::default().with_max_stalls(5)));
    q.pause_reserves(reserve_pause);
    q.fail_next_acks(fail_acks);
    q
}

#[tokio::test(start_paused = true)]
async fn shutdown_during_a_reserve_that_leased_a_job_leaves_no_job_without_a_holder() {
    let slow = faulty(Duration::from_millis(100), 0);
    let q: Arc<dyn Queue> = Arc::clone(&slow) as Arc<dyn Queue>;
    let h = Counting::new(Duration::ZERO);
    let config = PoolConfig::default().with_concurrency(1).with_idle_wait(Duration::from_secs(2));
    let (pool, stop) = start(&q, &h, config);
    tokio::time::sleep(Duration::from_millis(10)).await;
    fill(&q, 1).await;
    // The job is leased; its reserve has not returned yet.
    slow.job_leased().await;
    stop.send(true).unwrap();
    assert!(pool.join(Duration::from_secs(5)).await, "clean shutdown");
    let info = q.get(&IdempotencyKey::parse("job-0").unwrap()).await.unwrap().unwrap();
    assert!(
        matches!(info.state, JobState::Completed | JobState::Waiting),
        "the job was left {:?} (ran {} times): leased under a token nobody holds",
        info.state,
        h.total()
    );
    assert_eq!((info.state, h.total()), (JobState::Completed, 1), "the pool ran the job it had reserved");
}

#[tokio::test(start_paused = true)]
async fn an_acknowledgement_that_fails_once_is_sent_again_and_the_job_runs_once() {
    let slow = faulty(Duration::ZERO, 1);
    let q: Arc<dyn Queue> = Arc::clone(&slow) as Arc<dyn Queue>;
    let h = Counting::new(Duration::ZERO);
    let config = PoolConfig::default().with_concurrency(1).with_lease(Duration::from_secs(3));
    let (pool, stop) = start(&q, &h, config);
    let metrics = pool.metrics();
    fill(&q, 1).await;
    wait_for("the job run", || h.total() >= 1).await;
    // Past the lease, stalled recovery (as the workers' loop runs it) would
    // hand out again a job whose acknowledgement was dropped.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(q.recover_stalled().await.unwrap().recovered, 0, "no lease left to expire");
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.send(true).unwrap();
    assert!(pool.join(Duration::from_secs(5)).await, "clean shutdown");
    assert_eq!(slow.acks_left_to_fail(), 0, "the injected failure happened");
    assert_eq!(slow.acks_applied(), 1, "acknowledged once");
    assert_eq!(h.runs().get("job-0").copied(), Some(1), "the handler ran once");
    let info = q.get(&IdempotencyKey::parse("job-0").unwrap()).await.unwrap().unwrap();
    assert_eq!((info.state, info.stalls), (JobState::Completed, 0));
    assert_eq!(metrics.snapshot("pool", 1).processed, 1);
}

#[tokio::test(start_paused = true)]
async fn a_job_whose_acknowledgement_never_lands_is_not_counted_as_processed() {
    let slow = faulty(Duration::ZERO, u32::MAX);
    let q: Arc<dyn Queue> = Arc::clone(&slow) as Arc<dyn Queue>;
    let h = Counting::new(Duration::ZERO);
    let config = PoolConfig::default().with_concurrency(1).with_lease(Duration::from_secs(3));
    let (pool, stop) = start(&q, &h, config);
    let metrics = pool.metrics();
    fill(&q, 1).await;
    wait_for("the job run", || h.total() >= 1).await;
    // Every try of the acknowledgement is over.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(slow.acks_applied(), 0);
    assert_eq!(metrics.snapshot("pool", 1).processed, 0, "a job is processed once the queue took its ack");
    stop.send(true).unwrap();
    assert!(pool.join(Duration::from_secs(5)).await, "clean shutdown");
}

/// `n` jobs named `{prefix}-{i}`, each with `attempts` attempts `backoff` apart.
async fn fill_with(q: &Arc<dyn Queue>, prefix: &str, n: usize, attempts: u32, backoff: Duration) {
    let options = JobOptions {
        max_attempts: attempts,
        backoff: Backoff { base: backoff, max: backoff, jitter: false },
        ..JobOptions::default()
    };
    let jobs = (0..n)
        .map(|i| NewJob { id: IdempotencyKey::parse(format!("{prefix}-{i}")).unwrap(), payload: vec![1], options })
        .collect();
    q.enqueue_bulk(jobs).await.unwrap();
}

async fn settled(q: &Arc<dyn Queue>) -> u64 {
    let stats = q.stats().await.unwrap();
    stats.completed + stats.dead
}

/// Panics on the jobs `job-*` whose id ends in `3`, and in the `dead` hook; the jobs
/// named `gate-*` each wait until `gate` (one party per worker) is full.
struct Panicking {
    ran: Mutex<HashMap<String, u32>>,
    dead: Mutex<Vec<(String, String)>>,
    running: AtomicUsize,
    most_running: AtomicUsize,
    gate: Barrier,
}

#[async_trait]
impl JobHandler for Panicking {
    async fn handle(&self, job: &ReservedJob) -> Result<(), JobFailure> {
        let id = job.id.as_str();
        assert!(!(id.starts_with("job-") && id.ends_with('3')), "boom on {id}");
        if id.starts_with("gate-") {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_running.fetch_max(now, Ordering::SeqCst);
            self.gate.wait().await;
            self.running.fetch_sub(1, Ordering::SeqCst);
        }
        *self.ran.lock().unwrap().entry(id.to_owned()).or_default() += 1;
        Ok(())
    }

    async fn dead(&self, job: &ReservedJob, error: &str) {
        self.dead.lock().unwrap().push((job.id.to_string(), error.to_owned()));
        panic!("the dead hook of {} panics too", job.id);
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_handler_fails_its_job_for_retry_and_the_pool_keeps_all_its_workers() {
    // Arrange: 4 workers; 4 of 40 jobs panic on each of their 3 attempts, 12
    // panics in all, and each of their dead hooks panics as well.
    let q = queue();
    fill_with(&q, "job", 40, 3, Duration::from_millis(100)).await;
    let h = Arc::new(Panicking {
        ran: Mutex::new(HashMap::new()),
        dead: Mutex::new(Vec::new()),
        running: AtomicUsize::new(0),
        most_running: AtomicUsize::new(0),
        gate: Barrier::new(4),
    });
    let (tx, rx) = watch::channel(false);
    let handler: Arc<dyn JobHandler> = Arc::clone(&h) as Arc<dyn JobHandler>;
    let config = PoolConfig::default().with_concurrency(4).with_idle_wait(Duration::from_millis(100));
    let pool = WorkerPool::spawn(&consumer(&q), &handler, config, &rx);

    // Act
    let mut done = 0;
    for _ in 0..4_000 {
        done = settled(&q).await;
        if done == 40 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // Assert: every job settled, the panicking ones dead after their retries.
    assert_eq!(done, 40, "every job settled within 100 s");
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.completed, stats.dead), (36, 4));
    let ran = h.ran.lock().unwrap().clone();
    assert_eq!(ran.len(), 36);
    assert!(ran.values().all(|&n| n == 1), "a job ran twice");
    for i in [3, 13, 23, 33] {
        let info = q.get(&IdempotencyKey::parse(format!("job-{i}")).unwrap()).await.unwrap().unwrap();
        let error = format!("handler panicked: boom on job-{i}");
        assert_eq!((info.state, info.attempts, info.last_error.as_deref()), (JobState::Dead, 3, Some(error.as_str())));
    }
    let mut dead = h.dead.lock().unwrap().clone();
    dead.sort();
    assert_eq!(dead.len(), 4, "the dead hook ran for each dead job: {dead:?}");
    assert_eq!(dead[0], ("job-13".to_owned(), "handler panicked: boom on job-13".to_owned()));
    let snapshot = pool.snapshot();
    assert_eq!((snapshot.processed, snapshot.failed, snapshot.retried, snapshot.dead_lettered), (36, 12, 8, 4));

    // Assert: the 4 workers are all alive: 4 jobs run at once, each waiting
    // for the other three.
    fill_with(&q, "gate", 4, 1, Duration::from_millis(100)).await;
    wait_for("the four gated jobs run together", || {
        let ran = h.ran.lock().unwrap();
        ran.keys().filter(|k| k.starts_with("gate-")).count() == 4
    })
    .await;
    assert_eq!(h.most_running.load(Ordering::SeqCst), 4);
    tx.send(true).unwrap();
    assert!(pool.join(Duration::from_secs(5)).await, "clean shutdown");
}

/// Hands batches over; the first batch of more than one job panics.
struct PanicsOnce {
    sizes: Mutex<Vec<usize>>,
    panicked: AtomicBool,
}

#[async_trait]
impl JobHandler for PanicsOnce {
    async fn handle(&self, job: &ReservedJob) -> Result<(), JobFailure> {
        self.handle_batch(std::slice::from_ref(job)).await.remove(0)
    }

    async fn handle_batch(&self, jobs: &[ReservedJob]) -> Vec<Result<(), JobFailure>> {
        self.sizes.lock().unwrap().push(jobs.len());
        let first_batch = jobs.len() > 1 && !self.panicked.swap(true, Ordering::SeqCst);
        assert!(!first_batch, "a batch of {}", jobs.len());
        jobs.iter().map(|_| Ok(())).collect()
    }
}

#[tokio::test(start_paused = true)]
async fn a_batch_whose_handler_panics_fails_each_of_its_jobs_for_retry() {
    let q = queue();
    fill_with(&q, "job", 8, 3, Duration::from_millis(100)).await;
    let h = Arc::new(PanicsOnce { sizes: Mutex::new(Vec::new()), panicked: AtomicBool::new(false) });
    let (tx, rx) = watch::channel(false);
    let handler: Arc<dyn JobHandler> = Arc::clone(&h) as Arc<dyn JobHandler>;
    let config = PoolConfig::default().with_concurrency(1).with_batch(4).with_idle_wait(Duration::from_millis(100));
    let pool = WorkerPool::spawn(&consumer(&q), &handler, config, &rx);
    let metrics = pool.metrics();

    wait_for("every job completed", || h.sizes.lock().unwrap().iter().sum::<usize>() >= 12).await;
    tx.send(true).unwrap();
    assert!(pool.join(Duration::from_secs(5)).await, "clean shutdown");

    // The job that woke the worker ran alone, then a batch of 4 panicked.
    let sizes = h.sizes.lock().unwrap().clone();
    assert_eq!(sizes[..2], [1, 4], "{sizes:?}");
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.completed, stats.dead, stats.active, stats.waiting), (8, 0, 0, 0));
    let mut retried = Vec::new();
    for i in 0..8 {
        let info = q.get(&IdempotencyKey::parse(format!("job-{i}")).unwrap()).await.unwrap().unwrap();
        if info.attempts == 2 {
            retried.push(i);
            assert_eq!(info.last_error.as_deref(), Some("handler panicked: a batch of 4"));
        }
    }
    assert_eq!(retried, [1, 2, 3, 4], "the jobs of the batch that panicked, once each");
    let snapshot = metrics.snapshot("pool", 1);
    assert_eq!((snapshot.processed, snapshot.failed, snapshot.retried), (8, 4, 4));
}

/// Hangs on the first attempt of each job, until dropped; later attempts succeed.
struct HangsOnce {
    attempts: Mutex<Vec<u32>>,
    dropped: Arc<AtomicBool>,
}

/// Sets its flag when dropped with the handler's future.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[async_trait]
impl JobHandler for HangsOnce {
    async fn handle(&self, job: &ReservedJob) -> Result<(), JobFailure> {
        self.attempts.lock().unwrap().push(job.attempt);
        if job.attempt == 1 {
            let _flag = SetOnDrop(Arc::clone(&self.dropped));
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_job_that_runs_past_the_timeout_fails_for_retry_and_its_heartbeats_stop() {
    // Arrange: a 3 s lease, heartbeated every second; a 10 s job timeout.
    let q = queue();
    fill_with(&q, "job", 1, 3, Duration::from_secs(5)).await;
    let dropped = Arc::new(AtomicBool::new(false));
    let h = Arc::new(HangsOnce { attempts: Mutex::new(Vec::new()), dropped: Arc::clone(&dropped) });
    let (tx, rx) = watch::channel(false);
    let handler: Arc<dyn JobHandler> = Arc::clone(&h) as Arc<dyn JobHandler>;
    let config = PoolConfig::default()
        .with_concurrency(1)
        .with_lease(Duration::from_secs(3))
        .with_job_timeout(Some(Duration::from_secs(10)))
        .with_idle_wait(Duration::from_millis(100));
    let pool = WorkerPool::spawn(&consumer(&q), &handler, config, &rx);
    let metrics = pool.metrics();
    let id = IdempotencyKey::parse("job-0").unwrap();

    // Within the timeout, heartbeats hold the lease.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(q.recover_stalled().await.unwrap().recovered, 0, "the lease is heartbeated while the job runs");
    assert_eq!(q.get(&id).await.unwrap().unwrap().state, JobState::Active);
    assert!(!dropped.load(Ordering::SeqCst));

    // Past it, the handler is dropped and the job waits for its retry.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(dropped.load(Ordering::SeqCst), "the handler's future was dropped");
    let info = q.get(&id).await.unwrap().unwrap();
    assert_eq!(
        (info.state, info.attempts, info.last_error.as_deref()),
        (JobState::Failed, 1, Some("job timed out after 10s"))
    );
    assert_eq!(pool.snapshot().busy, 0, "no worker is busy with it any more");

    // The retry runs and succeeds.
    wait_for("the retry run", || h.attempts.lock().unwrap().len() >= 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    tx.send(true).unwrap();
    assert!(pool.join(Duration::from_secs(5)).await, "clean shutdown");
    assert_eq!(*h.attempts.lock().unwrap(), [1, 2]);
    let info = q.get(&id).await.unwrap().unwrap();
    assert_eq!((info.state, info.stalls), (JobState::Completed, 0));
    let snapshot = metrics.snapshot("pool", 1);
    assert_eq!((snapshot.processed, snapshot.failed, snapshot.retried), (1, 1, 1));
}
