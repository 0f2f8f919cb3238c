//! Throughput and Redis cost of the queue, measured like the BullMQ anchor
//! (`shared/anchors/bullmq`): jobs/s, Redis CPU µs per job (`INFO cpu`) and
//! Redis commands per job (`INFO commandstats`, commands inside scripts included).
//!
//! Run with: `REDIS_URL=redis://127.0.0.1:6390 cargo run --release -p sunusav-bench --bin queue-bench`
//! (options: `JOBS`=20000, `RUNS`=1, `CONCURRENCY`=1,10,50, `PREFETCH`=0,128
//! (the pool's jobs reserved ahead; 0 is BullMQ's behaviour), `RUNTIME`=multi|current
//! (tokio runtime flavour), `OUT`=file.json to write every sample in the JSON
//! shape of the BullMQ anchor's `results/bullmq-*.json`, for `bench/redis/compare.mjs`).
#![allow(clippy::float_arithmetic, clippy::cast_precision_loss)]

use std::error::Error;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use fred::interfaces::ClientLike;
use fred::types::InfoKind;
use sunusav_core::IdempotencyKey;
use sunusav_core::ports::prelude::*;
use sunusav_core::ports::queue::{Backoff, JobOptions, NewJob, QueueConfig, ReservedJob};
use sunusav_core::runtime::{JobFailure, JobHandler, PoolConfig, WorkerPool};
use sunusav_redis::{RedisConfig, RedisConnection, RedisQueue};
use tokio::sync::{Notify, watch};

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

const LEASE: Duration = Duration::from_secs(30);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A payout-like JSON payload of about 200 bytes.
fn payload(i: usize) -> Vec<u8> {
    format!(
        r#"{{"payoutId":"payout:6f1c2a9e-3b7d-4c1e-9a55-{i:012}:3","groupId":"6f1c2a9e-3b7d-4c1e-9a55-0c2d4e6f8a10","cycle":3,"beneficiary":"m-{i:08}","amountMsat":15000000,"attempt":1}}"#
    )
    .into_bytes()
}

fn jobs(run: &str, n: usize) -> Vec<NewJob> {
    let options = JobOptions { priority: 0, delay: Duration::ZERO, max_attempts: 5, backoff: Backoff::default() };
    (0..n)
        .map(|i| NewJob {
            id: IdempotencyKey::parse(format!("payout:{run}:{i}")).unwrap_or_else(|_| unreachable!()),
            payload: payload(i),
            options,
        })
        .collect()
}

/// Redis counters: CPU seconds (user + sys) and commands executed.
#[derive(Clone, Copy)]
struct Counters {
    cpu_s: f64,
    calls: u64,
}

async fn counters(conn: &RedisConnection) -> Res<Counters> {
    let cpu: String = conn.client().info(Some(InfoKind::Cpu)).await?;
    let stats: String = conn.client().info(Some(InfoKind::CommandStats)).await?;
    let field = |name: &str| {
        cpu.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse::<f64>().ok())).unwrap_or(0.0)
    };
    // INFO itself is not the queue's (the BullMQ anchor skips it too).
    let calls = stats
        .lines()
        .filter(|l| !l.starts_with("cmdstat_info:"))
        .filter_map(|l| {
            l.split_once("calls=").and_then(|(_, r)| r.split(',').next()).and_then(|n| n.parse::<u64>().ok())
        })
        .sum();
    Ok(Counters { cpu_s: field("used_cpu_sys:") + field("used_cpu_user:"), calls })
}

struct Figure {
    name: String,
    key: String,
    jobs_per_s: f64,
    cpu_us_per_job: f64,
    cmds_per_job: f64,
}

fn figure(name: &str, key: &str, n: usize, secs: f64, before: Counters, after: Counters) -> Figure {
    Figure {
        name: name.to_string(),
        key: key.to_string(),
        jobs_per_s: n as f64 / secs,
        cpu_us_per_job: (after.cpu_s - before.cpu_s) * 1e6 / n as f64,
        cmds_per_job: after.calls.saturating_sub(before.calls) as f64 / n as f64,
    }
}

async fn bench_enqueue(conn: &RedisConnection, q: &RedisQueue, n: usize, bulk: usize) -> Res<Figure> {
    let all = jobs(&format!("e{bulk}"), n);
    let before = counters(conn).await?;
    let t = Instant::now();
    if bulk <= 1 {
        for j in all {
            q.enqueue(j).await?;
        }
    } else {
        let mut it = all.into_iter().peekable();
        while it.peek().is_some() {
            q.enqueue_bulk(it.by_ref().take(bulk).collect()).await?;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let after = counters(conn).await?;
    let (name, key) = if bulk <= 1 {
        ("enqueue one by one".to_string(), "add_sequential".to_string())
    } else {
        (format!("enqueue bulk x{bulk}"), format!("addBulk_batch{bulk}"))
    };
    Ok(figure(&name, &key, n, secs, before, after))
}

/// A no-op handler that notes when the first and the `n`-th job ran.
struct NoOp {
    n: usize,
    seen: AtomicUsize,
    first: OnceLock<Instant>,
    all_ran: Notify,
}

#[async_trait]
impl JobHandler for NoOp {
    async fn handle(&self, job: &ReservedJob) -> Result<(), JobFailure> {
        std::hint::black_box(&job.payload);
        self.first.get_or_init(Instant::now);
        if self.seen.fetch_add(1, Ordering::Relaxed) + 1 == self.n {
            self.all_ran.notify_one();
        }
        Ok(())
    }
}

/// Processes `n` prefilled no-op jobs with the core's worker pool
/// (`concurrency` workers, `prefetch` jobs reserved ahead); returns the time
/// of the first job's start and of the pool's stop, once every job is run
/// and acknowledged.
async fn process(q: &RedisQueue, n: usize, concurrency: usize, prefetch: usize) -> Res<(Instant, Instant)> {
    let handler = Arc::new(NoOp { n, seen: AtomicUsize::new(0), first: OnceLock::new(), all_ran: Notify::new() });
    let queue: Arc<dyn Consumer> = Arc::new(q.clone());
    let (stop, stopped) = watch::channel(false);
    let config = PoolConfig::default()
        .with_concurrency(concurrency)
        .with_lease(LEASE)
        .with_idle_wait(Duration::from_secs(1))
        .with_prefetch(prefetch);
    let pool = WorkerPool::spawn(&queue, &(Arc::clone(&handler) as Arc<dyn JobHandler>), config, &stopped);
    handler.all_ran.notified().await;
    stop.send(true)?;
    if !pool.join(Duration::from_secs(30)).await {
        return Err("the pool did not stop".into());
    }
    let last = Instant::now();
    let seen = handler.seen.load(Ordering::Relaxed);
    if seen != n {
        return Err(format!("processed {seen} jobs, expected {n}").into());
    }
    Ok((handler.first.get().copied().unwrap_or(last), last))
}

async fn bench_process(
    conn: &RedisConnection,
    q: &RedisQueue,
    n: usize,
    concurrency: usize,
    prefetch: usize,
) -> Res<Figure> {
    q.enqueue_bulk(jobs(&format!("p{concurrency}-{prefetch}"), n)).await?;
    let before = counters(conn).await?;
    let (first, last) = process(q, n, concurrency, prefetch).await?;
    let after = counters(conn).await?;
    let secs = (last - first).as_secs_f64();
    let (name, key) = if prefetch == 0 {
        (format!("process c={concurrency}"), format!("process_c{concurrency}"))
    } else {
        (format!("process c={concurrency} p={prefetch}"), format!("process_c{concurrency}_p{prefetch}"))
    };
    let mut f = figure(&name, &key, n, secs, before, after);
    f.jobs_per_s = (n - 1) as f64 / secs;
    let s = q.stats().await?;
    if s.completed != 10 || s.waiting != 0 || s.active != 0 {
        return Err(format!("unexpected state after processing: {s:?}").into());
    }
    Ok(f)
}

/// Deletes every key matching `pattern` (SCAN + UNLINK), untimed.
async fn delete_prefix(conn: &RedisConnection, pattern: &str) -> Res<()> {
    let client = conn.client();
    let mut cursor = "0".to_string();
    loop {
        let (next, keys): (String, Vec<String>) = client
            .custom(fred::cmd!("SCAN"), vec![cursor, "MATCH".into(), pattern.into(), "COUNT".into(), "1000".into()])
            .await?;
        if !keys.is_empty() {
            let _: u64 = client.custom(fred::cmd!("UNLINK"), keys).await?;
        }
        if next == "0" {
            return Ok(());
        }
        cursor = next;
    }
}

fn main() -> Res<()> {
    let rt = match std::env::var("RUNTIME").as_deref() {
        Ok("current") => tokio::runtime::Builder::new_current_thread().enable_all().build()?,
        _ => tokio::runtime::Builder::new_multi_thread().enable_all().build()?,
    };
    rt.block_on(run())
}

/// The samples as `{"meta": {..}, "samples": {"<figure>": [{"rate", "redisCpuUsPerJob", "redisCallsPerJob"}]}}`.
fn to_json(meta: &str, all: &[Figure]) -> String {
    let mut keys: Vec<&str> = Vec::new();
    for f in all {
        if !keys.contains(&f.key.as_str()) {
            keys.push(&f.key);
        }
    }
    let samples: Vec<String> = keys
        .iter()
        .map(|k| {
            let runs: Vec<String> = all
                .iter()
                .filter(|f| f.key == *k)
                .map(|f| {
                    format!(
                        r#"{{"rate":{:.1},"redisCpuUsPerJob":{:.2},"redisCallsPerJob":{:.3}}}"#,
                        f.jobs_per_s, f.cpu_us_per_job, f.cmds_per_job
                    )
                })
                .collect();
            format!(r#""{k}":[{}]"#, runs.join(","))
        })
        .collect();
    format!(r#"{{"meta":{meta},"samples":{{{}}}}}"#, samples.join(","))
}

async fn run() -> Res<()> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let n: usize = env_or("JOBS", 20_000);
    let runs: usize = env_or("RUNS", 1);
    let concurrencies: Vec<usize> = std::env::var("CONCURRENCY")
        .unwrap_or_else(|_| "1,10,50".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let prefetches: Vec<usize> = std::env::var("PREFETCH")
        .unwrap_or_else(|_| "0,128".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let conn = RedisConnection::connect(RedisConfig::from_url(&url)?).await?;
    let config = QueueConfig::default().with_keep_completed(10).with_keep_dead(50);
    println!("queue-bench: {n} jobs, {runs} run(s), Redis at {url}");
    println!("{:<22} {:>12} {:>16} {:>14}", "figure", "jobs/s", "Redis CPU µs/job", "Redis cmds/job");
    let mut all = Vec::new();
    for run in 0..runs {
        // Warm-up (scripts cached, connections open), untimed.
        let warm_prefix = format!("bench{run}:{:x}", rand::random::<u32>());
        let warm = conn.queue("warmup", &warm_prefix, config)?;
        warm.enqueue_bulk(jobs("w", 1000)).await?;
        process(&warm, 1000, 10, 0).await?;

        let mut figures = Vec::new();
        let prefix = format!("bench{run}:{:x}", rand::random::<u32>());
        let q = conn.queue("payouts-add", &prefix, config)?;
        figures.push(bench_enqueue(&conn, &q, n, 1).await?);
        let q = conn.queue("payouts-bulk", &prefix, config)?;
        figures.push(bench_enqueue(&conn, &q, n, 1000).await?);
        for &c in &concurrencies {
            for &p in &prefetches {
                let q = conn.queue(&format!("payouts-c{c}-p{p}"), &prefix, config)?;
                figures.push(bench_process(&conn, &q, n, c, p).await?);
            }
        }
        // Leave the server as found (the BullMQ anchor obliterates its queues too).
        for p in [&prefix, &warm_prefix] {
            delete_prefix(&conn, &format!("{{{p}:*")).await?;
        }
        for f in figures {
            println!("{:<22} {:>12.0} {:>16.1} {:>14.2}", f.name, f.jobs_per_s, f.cpu_us_per_job, f.cmds_per_job);
            all.push(f);
        }
    }
    if let Ok(out) = std::env::var("OUT") {
        let runtime = std::env::var("RUNTIME").unwrap_or_else(|_| "multi".into());
        let meta = format!(r#"{{"impl":"sunusav-redis","jobs":{n},"runs":{runs},"runtime":"{runtime}"}}"#);
        std::fs::write(&out, to_json(&meta, &all))?;
        println!("samples written to {out}");
    }
    conn.close().await;
    Ok(())
}
