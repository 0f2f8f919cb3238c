//! The `metrics` facade (feature `metrics-facade`, on in these tests): every
//! series of `GET /metrics` reaches the recorder the host installed, under
//! the same names and label names, counters and histograms when they happen
//! and the gauges from `metrics::publish`.
//!
//! One test in this binary: the recorder is process-wide.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::{app, empty_request, send, signed_webhook, some_event};
use http::StatusCode;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use sunusav_axum::router;
use sunusav_core::memory::MemoryQueue;
use sunusav_core::ports::prelude::*;
use sunusav_core::ports::{Backoff, Consumer, JobOptions, NewJob, QueueConfig, ReservedJob};
use sunusav_core::runtime::series::ALL;
use sunusav_core::runtime::{
    JobFailure, JobHandler, PoolConfig, SettleStream, SettleStreamConfig, WorkerPool, Workers, WorkersConfig,
};
use sunusav_core::services::PAYOUT_QUEUE;
use sunusav_core::{IdempotencyKey, Msat};

/// Succeeds on `ok:*`, fails for good on `dead:*`, and fails `retry:*` once.
struct Scripted;

#[async_trait]
impl JobHandler for Scripted {
    async fn handle(&self, job: &ReservedJob) -> Result<(), JobFailure> {
        match job.id.as_str().split(':').next() {
            Some("dead") => Err(JobFailure::permanent("scripted")),
            Some("retry") if job.attempt <= 1 => Err(JobFailure::retry("scripted")),
            _ => Ok(()),
        }
    }
}

/// Waits (polling, bounded) until `done` holds.
async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..500 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

/// `name → label-name sets` of the text exposition's samples (histogram
/// samples under their family's name, without `le`).
fn text_series(text: &str) -> BTreeMap<String, BTreeSet<Vec<String>>> {
    let mut out: BTreeMap<String, BTreeSet<Vec<String>>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (name, labels) = match line.split_once('{') {
            Some((name, rest)) => (name, rest.rsplit_once('}').unwrap().0),
            None => (line.split_once(' ').unwrap().0, ""),
        };
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|base| ALL.contains(base)))
            .unwrap_or(name);
        let mut keys: Vec<String> = labels
            .split(',')
            .filter(|l| !l.is_empty())
            .map(|l| l.split_once('=').unwrap().0.to_owned())
            .filter(|k| k != "le")
            .collect();
        keys.sort();
        out.entry(family.to_owned()).or_default().insert(keys);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_series_reaches_the_hosts_recorder_with_the_names_and_labels_of_the_text() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("the only recorder of this test binary");

    let app = app();
    // The intake: a webhook and a request for an unknown group.
    assert_eq!(send(&app.router, signed_webhook(&some_event())).await.status, StatusCode::ACCEPTED);
    let unknown = format!("/groups/{}", sunusav_core::GroupId::random());
    assert_eq!(send(&app.router, empty_request("GET", &unknown)).await.status, StatusCode::NOT_FOUND);

    // The workers settle the webhook.
    let workers = Workers::start(&app.tontine, WorkersConfig::default().with_idle_wait(Duration::from_millis(20)));
    let webhooks = app.tontine.webhook_queue();
    until("the webhook settled", async || webhooks.stats().await.unwrap().completed == 1).await;

    let (pool, stop) = run_payout_pool().await;

    // A settle stream that receives one settlement and is cut once.
    let stream = SettleStream::start(&app.tontine, app.node.clone(), SettleStreamConfig::default());
    let stream_stats = stream.stats();
    until("the stream connected", async || stream_stats.connected()).await;
    let invoice = app.node.create_invoice(Msat::new(1_000), "stream", Duration::from_mins(1)).await.unwrap();
    app.node.settle_invoice(&invoice.payment_hash);
    until("the stream received it", async || stream_stats.received() == 1).await;
    app.node.cut_settle_streams();
    until("the stream was cut", async || stream_stats.cuts() >= 1).await;
    // The stream's settlement is settled by the workers too (an unknown invoice).
    let worker_stats = workers.stats();
    let webhook_pool = async || {
        let pools = worker_stats.snapshots();
        pools.iter().find(|p| p.queue == "webhooks").map_or(0, |p| p.processed)
    };
    until("both settlements counted", async || webhook_pool().await == 2).await;

    let state = app.state.clone().with_workers(workers.stats()).with_settle_stream(stream.stats());
    sunusav_axum::metrics::publish(&state).await;
    let text = send(&router(state.clone()), empty_request("GET", "/metrics")).await.text();

    let _ = stop.send(true);
    pool.join(Duration::from_secs(2)).await;
    workers.shutdown(Duration::from_secs(2)).await;
    stream.shutdown().await;

    let (facade, samples) = recorded(&snapshotter);

    // One list of names for both, every one of them present in both.
    let all: BTreeSet<String> = ALL.iter().map(|n| (*n).to_owned()).collect();
    let text_series = text_series(&text);
    assert_eq!(text_series.keys().cloned().collect::<BTreeSet<_>>(), all, "the text's series are the list");
    assert_eq!(facade.keys().cloned().collect::<BTreeSet<_>>(), all, "the facade's series are the list");
    // The same label names, series by series.
    for name in ALL {
        assert_eq!(facade[name], text_series[name], "label names of {name}");
    }

    assert_values(&samples);

    // The publisher task publishes on its interval, and stops when told.
    let job = NewJob::new(IdempotencyKey::parse("waiting:1").unwrap(), "{}");
    app.tontine.payout_queue().enqueue(job).await.unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let publisher = sunusav_axum::metrics::spawn_publisher(state, Duration::from_millis(10), stopped);
    let waiting = "sunusav_queue_jobs{queue=payouts,state=waiting}";
    until("the publisher published the waiting job", async || {
        matches!(recorded(&snapshotter).1.get(waiting), Some(DebugValue::Gauge(v)) if v.into_inner().to_bits() == 1.0f64.to_bits())
    })
    .await;
    stop.send(true).unwrap();
    publisher.await.expect("the publisher stops cleanly");
}

/// A payout pool whose jobs succeed, fail for good, and fail once, run
/// until each is counted; its shutdown sender.
async fn run_payout_pool() -> (WorkerPool, tokio::sync::watch::Sender<bool>) {
    let payouts = Arc::new(MemoryQueue::new(PAYOUT_QUEUE, QueueConfig::default()));
    let options = JobOptions {
        max_attempts: 2,
        backoff: Backoff { base: Duration::from_millis(1), max: Duration::from_millis(1), jitter: false },
        ..JobOptions::default()
    };
    for id in ["ok:1", "dead:1", "retry:1"] {
        let job = NewJob { options, ..NewJob::new(IdempotencyKey::parse(id).unwrap(), "{}") };
        payouts.enqueue(job).await.unwrap();
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let consumer: Arc<dyn Consumer> = payouts.clone();
    let handler: Arc<dyn JobHandler> = Arc::new(Scripted);
    let pool_config = PoolConfig::default().with_idle_wait(Duration::from_millis(20));
    let pool = WorkerPool::spawn(&consumer, &handler, pool_config, &stopped);
    until("the payout jobs counted", async || {
        let s = pool.snapshot();
        (s.processed, s.failed, s.retried, s.dead_lettered) == (2, 2, 1, 1)
    })
    .await;

    (pool, stop)
}

/// Label-name sets by series name, and each sample's value by
/// `name{label=value,...}`, of what the recorder holds.
#[allow(clippy::type_complexity)]
fn recorded(snapshotter: &Snapshotter) -> (BTreeMap<String, BTreeSet<Vec<String>>>, BTreeMap<String, DebugValue>) {
    let mut facade: BTreeMap<String, BTreeSet<Vec<String>>> = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let mut names: Vec<String> = key.labels().map(|l| l.key().to_owned()).collect();
        names.sort();
        facade.entry(key.name().to_owned()).or_default().insert(names);
        let labels: Vec<String> = key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
        samples.insert(format!("{}{{{}}}", key.name(), labels.join(",")), value);
    }

    (facade, samples)
}

/// Counters as they happened, gauges as published.
fn assert_values(samples: &BTreeMap<String, DebugValue>) {
    let counter = |s: &str| match samples.get(s) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{s}: {other:?}"),
    };
    let gauge = |s: &str| match samples.get(s) {
        Some(DebugValue::Gauge(v)) => v.into_inner(),
        other => panic!("{s}: {other:?}"),
    };
    let histogram_count = |s: &str| match samples.get(s) {
        Some(DebugValue::Histogram(v)) => v.len(),
        other => panic!("{s}: {other:?}"),
    };
    assert_eq!(counter("sunusav_webhooks_total{outcome=accepted}"), 1);
    assert_eq!(counter("sunusav_http_requests_total{route=/webhook/lightning,method=POST,status=2xx}"), 1);
    assert_eq!(counter("sunusav_http_requests_total{route=/groups/{id},method=GET,status=4xx}"), 1);
    assert_eq!(histogram_count("sunusav_http_request_duration_seconds{route=/webhook/lightning}"), 1);
    assert_eq!(counter("sunusav_settlements_total{outcome=unknown_invoice}"), 2, "the webhook's and the stream's");
    assert_eq!(counter("sunusav_jobs_processed_total{queue=webhooks,outcome=succeeded}"), 2);
    assert_eq!(counter("sunusav_jobs_processed_total{queue=payouts,outcome=succeeded}"), 2);
    assert_eq!(counter("sunusav_jobs_processed_total{queue=payouts,outcome=failed}"), 2);
    assert_eq!(counter("sunusav_jobs_retried_total{queue=payouts}"), 1);
    assert_eq!(counter("sunusav_jobs_dead_lettered_total{queue=payouts}"), 1);
    assert_eq!(counter("sunusav_payouts_total{outcome=succeeded}"), 2);
    assert_eq!(counter("sunusav_payouts_total{outcome=retried}"), 1);
    assert_eq!(counter("sunusav_payouts_total{outcome=dead_lettered}"), 1);
    assert_eq!(histogram_count("sunusav_job_duration_seconds{queue=payouts}"), 4, "four attempts");
    assert_eq!(histogram_count("sunusav_job_wait_seconds{queue=payouts}"), 4);
    assert_eq!(counter("sunusav_settle_stream_received_total{}"), 1);
    assert!(counter("sunusav_settle_stream_cuts_total{}") >= 1);
    let version = format!("sunusav_build_info{{version={}}}", env!("CARGO_PKG_VERSION"));
    // The gauges hold small integers, exact in an f64.
    assert_eq!(gauge(&version).to_bits(), 1.0f64.to_bits());
    for (sample, expected) in [
        ("sunusav_queue_up{queue=webhooks}", 1.0),
        ("sunusav_queue_jobs{queue=webhooks,state=completed}", 2.0),
        ("sunusav_queue_jobs{queue=payouts,state=dead}", 0.0),
        ("sunusav_queue_paused{queue=payouts}", 0.0),
        ("sunusav_queue_oldest_waiting_seconds{queue=webhooks}", 0.0),
        ("sunusav_workers_concurrency{queue=webhooks}", 5.0),
        ("sunusav_workers_busy{queue=payouts}", 0.0),
        ("sunusav_store_up{}", 1.0),
        ("sunusav_node_up{}", 1.0),
        ("sunusav_payouts_open_stale{status=in_flight}", 0.0),
    ] {
        assert_eq!(gauge(sample).to_bits(), f64::to_bits(expected), "{sample}: {}", gauge(sample));
    }
    let connected = gauge("sunusav_settle_stream_connected{}");
    assert!([0.0f64.to_bits(), 1.0f64.to_bits()].contains(&connected.to_bits()), "a 0/1 gauge: {connected}");
}
