//! Latency of the console's job search over a large Redis queue: the
//! console's router in process (HTML rendered), its queues on Redis with
//! `JOBS` waiting payout jobs and `DEAD` dead ones, the store in memory.
//!
//! Run with: `scripts/services.sh run cargo run --release -p sunusav-bench --bin console-search-bench`
//! (needs `REDIS_URL`; options: `JOBS`=100000, `DEAD`=1000, `SAMPLES`=200).
//!
//! Kinds of search, each `SAMPLES` requests with a different target:
//! - `job id`: an exact job id (each queue's `get`);
//! - `payment hash`: a hash that deliveries name (the delivery log's index,
//!   then each delivery's job by id);
//! - `text, found`: a dead job's error text (no index: the bounded scan,
//!   which stops at its budget of 2,000 jobs);
//! - `text, absent`: text no job holds (the whole budget read).
//!
//! The queue's keys are left under a random prefix (the Redis of
//! `scripts/services.sh` is thrown away after the run).

#![allow(clippy::float_arithmetic, clippy::cast_precision_loss)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt as _;
use sunusav_axum::{AdminToken, AppState, console_router};
use sunusav_core::memory::{MemoryStore, SimulatedNode};
use sunusav_core::ports::prelude::*;
use sunusav_core::ports::queue::{FailKind, NewJob, QueueConfig};
use sunusav_core::ports::{Queue, WebhookEvent};
use sunusav_core::services::{PAYOUT_QUEUE, Tontine, WEBHOOK_QUEUE};
use sunusav_core::webhook::{Secret, Verifier};
use sunusav_core::{IdempotencyKey, PaymentHash};
use sunusav_redis::{RedisConfig, RedisConnection};
use tower::ServiceExt as _;

const TOKEN: &str = "console-bench-admin-token";
const DELIVERIES: usize = 1_000;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn hash(i: usize) -> PaymentHash {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&u64::try_from(i).unwrap_or(u64::MAX).to_be_bytes());
    bytes[31] = 0x5a;
    PaymentHash::from_bytes(bytes)
}

fn payout_id(run: &str, i: usize) -> IdempotencyKey {
    IdempotencyKey::parse(format!("payout:{run}-{i:08}:1")).unwrap_or_else(|_| unreachable!("a valid key"))
}

/// Fills the queues and the store; returns the run's id.
async fn fill(
    payouts: &Arc<dyn Queue>,
    webhooks: &Arc<dyn Queue>,
    store: &MemoryStore,
    jobs: usize,
    dead: usize,
) -> anyhow::Result<String> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let started = Instant::now();
    for chunk in (0..jobs).collect::<Vec<_>>().chunks(1_000) {
        let batch = chunk
            .iter()
            .map(|&i| {
                let payload = format!(r#"{{"key":"{}","group":"{run}-{i:08}","cycle":1}}"#, payout_id(&run, i));
                NewJob::new(payout_id(&run, i), payload.into_bytes())
            })
            .collect();
        payouts.enqueue_bulk(batch).await?;
    }
    for i in 0..dead {
        let job = payouts.reserve(Duration::from_mins(1)).await?.ok_or_else(|| anyhow::anyhow!("no job to kill"))?;
        let error = format!("incorrect payment details: unknown payee invoice (bench-dead-{i:05})");
        payouts.fail(&job.id, &job.token, &error, FailKind::Permanent).await?;
    }
    for i in 0..DELIVERIES {
        let key = IdempotencyKey::webhook(Some(&format!("evt-bench-{run}-{i}")), b"");
        store.record_webhook(&WebhookEvent::new(key.clone(), b"{}".to_vec()).with_payment_hash(hash(i))).await?;
        webhooks.enqueue(NewJob::new(key, br#"{"event":{}}"#.to_vec())).await?;
    }
    println!(
        "filled: {jobs} payout jobs ({dead} dead), {DELIVERIES} deliveries and webhook jobs, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(run)
}

/// The `pct`-th percentile (nearest rank) of sorted samples.
fn percentile(sorted: &[Duration], pct: usize) -> Duration {
    let rank = (sorted.len() * pct).div_ceil(100).max(1);
    sorted.get(rank - 1).copied().unwrap_or_default()
}

/// The target of the `i`-th search of a kind.
type Target<'a> = Box<dyn Fn(usize) -> String + 'a>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("REDIS_URL").map_err(|_| anyhow::anyhow!("REDIS_URL is required"))?;
    let (jobs, dead, samples) = (env_or("JOBS", 100_000usize), env_or("DEAD", 1_000usize), env_or("SAMPLES", 200usize));
    let redis = RedisConnection::connect(RedisConfig::from_url(&url)?).await?;
    let prefix = format!("console-bench-{}", uuid::Uuid::new_v4().simple());
    let config = QueueConfig::default().with_keep_dead(u64::try_from(dead).unwrap_or(u64::MAX));
    let payouts: Arc<dyn Queue> = Arc::new(redis.queue(PAYOUT_QUEUE, &prefix, config)?);
    let webhooks: Arc<dyn Queue> = Arc::new(redis.queue(WEBHOOK_QUEUE, &prefix, config)?);
    let store = Arc::new(MemoryStore::new());
    let run = fill(&payouts, &webhooks, &store, jobs, dead).await?;

    let tontine = Tontine::new(store, Arc::new(SimulatedNode::new()), payouts, webhooks);
    let verifier = Verifier::hex_sha256([Secret::from_text("console-bench-webhook-secret")?])?;
    let state = AppState::new(tontine, Arc::new(verifier)).with_admin_token(AdminToken::new(TOKEN)?);
    let app = console_router(state);

    let kinds: [(&str, Target<'_>); 4] = [
        ("job id", Box::new(|i| payout_id(&run, dead + (i * 7_919) % (jobs - dead)).to_string())),
        ("payment hash", Box::new(|i| hash(i % DELIVERIES).to_string())),
        ("text, found", Box::new(|i| format!("bench-dead-{:05}", i % dead.max(1)))),
        ("text, absent", Box::new(|i| format!("nothing-holds-this-{i}"))),
    ];
    println!("| search | p50 ms | p95 ms | max ms | found |");
    println!("|---|---|---|---|---|");
    for (name, target) in &kinds {
        let mut times = Vec::with_capacity(samples);
        let mut found = 0;
        for i in 0..samples {
            let q = target(i).replace(':', "%3A");
            let req = Request::get(format!("/jobs?q={q}"))
                .header(http::header::AUTHORIZATION, format!("Bearer {TOKEN}"))
                .body(Body::empty())?;
            let started = Instant::now();
            let res = app.clone().oneshot(req).await?;
            let body = res.into_body().collect().await?.to_bytes();
            times.push(started.elapsed());
            if String::from_utf8_lossy(&body).contains("data-job=") {
                found += 1;
            }
        }
        times.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1_000.0;
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} | {found}/{samples} |",
            ms(percentile(&times, 50)),
            ms(percentile(&times, 95)),
            ms(times.last().copied().unwrap_or_default())
        );
    }
    Ok(())
}
