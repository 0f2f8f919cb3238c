//! Redis-specific guarantees: exclusive delivery under concurrency, and
//! durability plus self-healing workers across a Redis restart.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{key, prefix, queue};
use sunusav_core::IdempotencyKey;
use sunusav_core::ports::prelude::*;
use sunusav_core::ports::queue::{JobState, NewJob, QueueConfig, QueueError, ReservedJob};
use sunusav_core::runtime::{JobFailure, JobHandler, PoolConfig, WorkerPool};
use sunusav_redis::{RedisConfig, RedisConnection, RedisQueue};
use tokio::sync::mpsc;

const LEASE: Duration = Duration::from_mins(1);

#[derive(Default)]
struct Ledger {
    held: HashSet<IdempotencyKey>,
    done: HashMap<IdempotencyKey, u32>,
}

fn take(ledger: &Mutex<Ledger>, id: &IdempotencyKey) {
    let mut l = ledger.lock().unwrap();
    assert!(l.held.insert(id.clone()), "{id} is held by two consumers at once");
}

fn finish(ledger: &Mutex<Ledger>, id: &IdempotencyKey) {
    let mut l = ledger.lock().unwrap();
    l.held.remove(id);
    *l.done.entry(id.clone()).or_default() += 1;
}

/// One job at a time through the port's `ack_and_reserve`.
async fn consume_one_by_one(q: RedisQueue, ledger: Arc<Mutex<Ledger>>) {
    let mut current = q.reserve(LEASE).await.unwrap();
    while let Some(job) = current {
        take(&ledger, &job.id);
        finish(&ledger, &job.id);
        current = q.ack_and_reserve(&job.id, &job.token, LEASE).await.unwrap();
    }
}

/// Batches of up to 16 through `ack_many_and_reserve`.
async fn consume_in_batches(q: RedisQueue, ledger: Arc<Mutex<Ledger>>) {
    let mut acks = Vec::new();
    loop {
        let step = q.ack_many_and_reserve(&acks, 16, LEASE).await.unwrap();
        assert!(step.acked.iter().all(|a| *a));
        if step.jobs.is_empty() {
            return;
        }
        acks = step
            .jobs
            .into_iter()
            .map(|j| {
                take(&ledger, &j.id);
                finish(&ledger, &j.id);
                (j.id, j.token)
            })
            .collect();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_consumers_never_hold_the_same_job_and_process_10000_jobs_exactly_once() {
    let Some(q) = queue(QueueConfig::default()).await else { return };
    let url = std::env::var("REDIS_URL").unwrap();
    // The second consumer has its own connection, as another process would.
    let other = RedisConnection::connect(RedisConfig::from_url(&url).unwrap()).await.unwrap();
    let q2 =
        other.queue(q.name(), q.base_key().trim_matches(['{', '}']).split(':').next().unwrap(), *q.config()).unwrap();
    assert_eq!(q2.base_key(), q.base_key());

    let jobs: Vec<_> = (0..10_000).map(|i| NewJob::new(key(&format!("job:{i}")), vec![b'x'; 64])).collect();
    q.enqueue_bulk(jobs).await.unwrap();

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let one_by_one = tokio::spawn(consume_one_by_one(q.clone(), ledger.clone()));
    let batched = tokio::spawn(consume_in_batches(q2, ledger.clone()));
    one_by_one.await.unwrap();
    batched.await.unwrap();

    {
        let ledger = ledger.lock().unwrap();
        assert_eq!(ledger.done.len(), 10_000);
        assert!(ledger.done.values().all(|n| *n == 1), "every job processed exactly once");
    }
    let s = q.stats().await.unwrap();
    assert_eq!((s.waiting, s.active, s.completed), (0, 0, 10));
}

/// Records each run in the ledger, yielding in between so that runs interleave.
struct LedgerHandler(Arc<Mutex<Ledger>>);

#[async_trait::async_trait]
impl JobHandler for LedgerHandler {
    async fn handle(&self, job: &ReservedJob) -> Result<(), JobFailure> {
        take(&self.0, &job.id);
        tokio::task::yield_now().await;
        finish(&self.0, &job.id);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_worker_pools_with_prefetch_run_10000_jobs_exactly_once_and_never_at_once() {
    let Some(q) = queue(QueueConfig::default()).await else { return };
    let url = std::env::var("REDIS_URL").unwrap();
    let other = RedisConnection::connect(RedisConfig::from_url(&url).unwrap()).await.unwrap();
    let q2 =
        other.queue(q.name(), q.base_key().trim_matches(['{', '}']).split(':').next().unwrap(), *q.config()).unwrap();
    let jobs: Vec<_> = (0..10_000).map(|i| NewJob::new(key(&format!("job:{i}")), vec![b'x'; 64])).collect();
    q.enqueue_bulk(jobs).await.unwrap();

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let handler: Arc<dyn JobHandler> = Arc::new(LedgerHandler(Arc::clone(&ledger)));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let pools: Vec<WorkerPool> =
        [(Arc::new(q.clone()) as Arc<dyn Consumer>, 4, 32, 1, 0), (Arc::new(q2), 8, 64, 16, 2)]
            .into_iter()
            .map(|(queue, concurrency, prefetch, batch, linger_ms)| {
                let config = PoolConfig::default()
                    .with_concurrency(concurrency)
                    .with_prefetch(prefetch)
                    .with_batch(batch)
                    .with_linger(Duration::from_millis(linger_ms))
                    .with_lease(LEASE)
                    .with_idle_wait(Duration::from_millis(200))
                    .with_job_timeout(None);
                WorkerPool::spawn(&queue, &handler, config, &stopped)
            })
            .collect();
    let deadline = Instant::now() + Duration::from_mins(2);
    while ledger.lock().unwrap().done.len() < 10_000 {
        assert!(Instant::now() < deadline, "not every job ran within 120 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true).unwrap();
    for p in pools {
        assert!(p.join(Duration::from_secs(10)).await, "a pool did not stop");
    }
    {
        let ledger = ledger.lock().unwrap();
        assert_eq!(ledger.done.len(), 10_000);
        assert!(ledger.done.values().all(|n| *n == 1), "every job ran exactly once");
    }
    let s = q.stats().await.unwrap();
    assert_eq!((s.waiting, s.active, s.completed, s.dead), (0, 0, 10, 0), "every job acknowledged");
}

struct Server {
    bin: String,
    port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl Server {
    fn start(bin: &str, dir: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut s = Self { bin: bin.to_string(), port, dir: dir.to_path_buf(), child: None };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.bin)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--appendonly", "yes"])
            .args(["--appendfsync", "always", "--save", "", "--dir"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL by pid: no shutdown save, only the append-only file survives.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_survive_a_redis_restart_and_a_running_worker_resumes_by_itself() {
    let Some(bin) = common::service_var("REDIS_SERVER_BIN") else { return };
    let dir = std::env::temp_dir().join(format!("sunusav-redis-restart-{}", prefix()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut server = Server::start(&bin, &dir);
    let mut config = RedisConfig::standalone("127.0.0.1", server.port);
    config.command_timeout = Duration::from_secs(2);
    let conn = RedisConnection::connect(config).await.unwrap();
    let q = conn.queue("jobs", &prefix(), QueueConfig::default()).unwrap();

    // A worker that never gets recreated: it logs errors and keeps going.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let errors = Arc::new(Mutex::new(0u32));
    let worker = {
        let (q, errors) = (q.clone(), errors.clone());
        tokio::spawn(async move {
            loop {
                match q.reserve_wait(LEASE, Duration::from_millis(500)).await {
                    Ok(Some(job)) => {
                        if q.ack(&job.id, &job.token).await.is_ok() {
                            let _ = tx.send(job.id);
                        }
                    }
                    Ok(None) => {}
                    Err(QueueError::Unavailable(_)) => {
                        *errors.lock().unwrap() += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => panic!("unexpected error {e}"),
                }
            }
        })
    };

    q.enqueue(NewJob::new(key("before"), b"1".to_vec())).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
    assert_eq!(got, key("before"));

    // Due after the restart: it must be on disk when Redis dies.
    let mut survivor = NewJob::new(key("survivor"), b"2".to_vec());
    survivor.options.delay = Duration::from_secs(2);
    q.enqueue(survivor).await.unwrap();

    server.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(matches!(q.ping().await, Err(QueueError::Unavailable(_))), "down while killed");
    server.spawn();

    // The same queue object reconnects by itself; scripts are reloaded on NOSCRIPT.
    let deadline = Instant::now() + Duration::from_secs(15);
    let info = loop {
        match q.get(&key("survivor")).await {
            Ok(info) => break info,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("no reconnection: {e}"),
        }
    };
    let info = info.expect("the delayed job survived the restart");
    assert!(matches!(info.state, JobState::Delayed | JobState::Waiting | JobState::Active | JobState::Completed));

    q.enqueue(NewJob::new(key("after"), b"3".to_vec())).await.unwrap();
    let mut seen = HashSet::new();
    while seen.len() < 2 {
        let id = tokio::time::timeout(Duration::from_secs(15), rx.recv()).await.expect("worker resumed").unwrap();
        seen.insert(id.to_string());
    }
    assert_eq!(seen, HashSet::from(["survivor".to_string(), "after".to_string()]));
    worker.abort();
    conn.close().await;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
