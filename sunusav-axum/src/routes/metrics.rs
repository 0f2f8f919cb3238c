//! `GET /metrics`: Prometheus text exposition format 0.0.4, written by hand.
//!
//! Series (labels are closed sets: queue names, job states, outcomes):
//! `sunusav_queue_jobs{queue,state}`, `sunusav_queue_paused{queue}`,
//! `sunusav_queue_up{queue}`, `sunusav_workers_concurrency{queue}`,
//! `sunusav_workers_busy{queue}`, `sunusav_jobs_processed_total{queue,outcome}`,
//! `sunusav_jobs_retried_total{queue}`, `sunusav_jobs_dead_lettered_total{queue}`,
//! the histograms `sunusav_job_duration_seconds{queue}` and
//! `sunusav_job_wait_seconds{queue}`, `sunusav_webhooks_total{outcome}` (the
//! HTTP intake's answers), `sunusav_payouts_total{outcome}`,
//! `sunusav_settlements_total{outcome}` (what the webhook workers decided),
//! `sunusav_queue_oldest_waiting_seconds{queue}` (how long the job a worker
//! takes next has been waiting), `sunusav_node_up`, `sunusav_store_up`, and
//! `sunusav_payouts_open_stale{status}` (payouts neither paid nor dead whose
//! attempt has not changed for [`STALE_PAYOUT`], counted up to
//! [`STALE_PAYOUT_CAP`]). The alert rules and the dashboard in `ops/` read
//! these series. The HTTP layer adds `sunusav_build_info{version}`,
//! `sunusav_http_requests_total{route,method,status}` (route templates and
//! status classes: bounded) and `sunusav_http_request_duration_seconds{route}`;
//! with a settle stream, `sunusav_settle_stream_connected`,
//! `sunusav_settle_stream_received_total` and `sunusav_settle_stream_cuts_total`.
//!
//! The names come from [`sunusav_core::runtime::series`], the one list the
//! `metrics` facade uses too ([`crate::metrics::publish`]); the gauges' values
//! are read once per scrape for either.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use http::header::CONTENT_TYPE;
use sunusav_core::ports::{AttemptStatus, JobState, QueueStats};
use sunusav_core::runtime::series::{
    BUILD_INFO, HTTP_REQUEST_DURATION_SECONDS, HTTP_REQUESTS_TOTAL, JOB_DURATION_SECONDS, JOB_WAIT_SECONDS,
    JOBS_DEAD_LETTERED_TOTAL, JOBS_PROCESSED_TOTAL, JOBS_RETRIED_TOTAL, NODE_UP, PAYOUTS_OPEN_STALE, PAYOUTS_TOTAL,
    QUEUE_JOBS, QUEUE_OLDEST_WAITING_SECONDS, QUEUE_PAUSED, QUEUE_UP, SETTLE_STREAM_CONNECTED,
    SETTLE_STREAM_CUTS_TOTAL, SETTLE_STREAM_RECEIVED_TOTAL, SETTLEMENTS_TOTAL, STORE_UP, WEBHOOKS_TOTAL, WORKERS_BUSY,
    WORKERS_CONCURRENCY,
};
use sunusav_core::runtime::{HistogramSnapshot, PoolSnapshot};
use sunusav_core::services::PAYOUT_QUEUE;

use crate::state::AppState;

/// How long an open payout's attempt stays unchanged before it counts in
/// `sunusav_payouts_open_stale`.
pub const STALE_PAYOUT: Duration = Duration::from_mins(30);
/// Most stale payouts counted per scrape (the gauge saturates there).
pub const STALE_PAYOUT_CAP: u32 = 1_000;

/// The content type of the text format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n")
}

/// Microseconds as decimal seconds, without floating point: `2500000` → `2.5`.
fn seconds(micros: u64) -> String {
    let (whole, frac) = (micros / 1_000_000, micros % 1_000_000);
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:06}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, queue: &str, h: &HistogramSnapshot) {
    labelled_histogram(out, name, "queue", queue, h);
}

/// A histogram's samples with one label (`value` already escaped).
fn labelled_histogram(out: &mut String, name: &str, label: &str, value: &str, h: &HistogramSnapshot) {
    for (le, count) in &h.buckets {
        let _ = writeln!(out, "{name}_bucket{{{label}=\"{value}\",le=\"{}\"}} {count}", seconds(*le));
    }
    let _ = writeln!(out, "{name}_bucket{{{label}=\"{value}\",le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "{name}_sum{{{label}=\"{value}\"}} {}", seconds(h.sum_micros));
    let _ = writeln!(out, "{name}_count{{{label}=\"{value}\"}} {}", h.count);
}

/// `sunusav_build_info`, `sunusav_http_requests_total{route,method,status}`
/// and `sunusav_http_request_duration_seconds{route}`.
fn http(out: &mut String, metrics: &crate::metrics::HttpMetrics) {
    family(out, BUILD_INFO, "gauge", "The running build: 1, labelled with its version.");
    let _ = writeln!(out, "{BUILD_INFO}{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
    let routes = metrics.requests();
    family(out, HTTP_REQUESTS_TOTAL, "counter", "HTTP requests answered, by route, method and status class.");
    for r in &routes {
        for (method, status, n) in &r.requests {
            let route = escape(&r.route);
            let _ =
                writeln!(out, "{HTTP_REQUESTS_TOTAL}{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}");
        }
    }
    family(out, HTTP_REQUEST_DURATION_SECONDS, "histogram", "Time to answer an HTTP request, by route.");
    for r in &routes {
        labelled_histogram(out, HTTP_REQUEST_DURATION_SECONDS, "route", &escape(&r.route), &r.duration);
    }
}

/// A queue's counts, and the age in milliseconds of the job it hands out
/// next (`None` when it could not be read).
pub(crate) struct QueueFigures {
    /// The queue's name, unescaped.
    pub(crate) name: String,
    pub(crate) stats: Option<QueueStats>,
    pub(crate) oldest_waiting_ms: Option<u64>,
}

fn queues(out: &mut String, figures: &[QueueFigures]) {
    let stats: Vec<(String, Option<&QueueStats>)> =
        figures.iter().map(|f| (escape(&f.name), f.stats.as_ref())).collect();
    family(out, QUEUE_UP, "gauge", "Whether the queue's counts could be read.");
    for (q, s) in &stats {
        let _ = writeln!(out, "{QUEUE_UP}{{queue=\"{q}\"}} {}", u8::from(s.is_some()));
    }
    family(out, QUEUE_JOBS, "gauge", "Jobs per queue and state.");
    for (q, s) in &stats {
        for state in s.iter().flat_map(|s| JobState::ALL.map(|st| (st, s.count(st)))) {
            let _ = writeln!(out, "{QUEUE_JOBS}{{queue=\"{q}\",state=\"{}\"}} {}", state.0.as_str(), state.1);
        }
    }
    family(out, QUEUE_PAUSED, "gauge", "Whether the queue is paused.");
    for (q, s) in &stats {
        if let Some(s) = s {
            let _ = writeln!(out, "{QUEUE_PAUSED}{{queue=\"{q}\"}} {}", u8::from(s.paused));
        }
    }
    let help = "Seconds the job a worker takes next has waited (0 when none waits).";
    family(out, QUEUE_OLDEST_WAITING_SECONDS, "gauge", help);
    for f in figures {
        if let Some(ms) = f.oldest_waiting_ms {
            let q = escape(&f.name);
            let _ = writeln!(out, "{QUEUE_OLDEST_WAITING_SECONDS}{{queue=\"{q}\"}} {}", seconds(ms * 1_000));
        }
    }
}

/// One family with one sample per pool, labelled by its queue.
fn per_pool(
    out: &mut String,
    pools: &[PoolSnapshot],
    name: &str,
    kind: &str,
    help: &str,
    value: fn(&PoolSnapshot) -> u64,
) {
    family(out, name, kind, help);
    for p in pools {
        let _ = writeln!(out, "{name}{{queue=\"{}\"}} {}", escape(&p.queue), value(p));
    }
}

fn pools(out: &mut String, pools: &[PoolSnapshot]) {
    let q = |p: &PoolSnapshot| escape(&p.queue);
    per_pool(out, pools, WORKERS_CONCURRENCY, "gauge", "Workers in the pool.", |p| p.concurrency);
    per_pool(out, pools, WORKERS_BUSY, "gauge", "Workers running a job now.", |p| p.busy);
    family(out, JOBS_PROCESSED_TOTAL, "counter", "Job attempts finished, by outcome.");
    for p in pools {
        let _ = writeln!(out, "{JOBS_PROCESSED_TOTAL}{{queue=\"{}\",outcome=\"succeeded\"}} {}", q(p), p.processed);
        let _ = writeln!(out, "{JOBS_PROCESSED_TOTAL}{{queue=\"{}\",outcome=\"failed\"}} {}", q(p), p.failed);
    }
    let retried = "Failed attempts scheduled for a retry.";
    per_pool(out, pools, JOBS_RETRIED_TOTAL, "counter", retried, |p| p.retried);
    let dead = "Jobs moved to the dead letters.";
    per_pool(out, pools, JOBS_DEAD_LETTERED_TOTAL, "counter", dead, |p| p.dead_lettered);
    family(out, JOB_DURATION_SECONDS, "histogram", "Time spent running a job.");
    for p in pools {
        histogram(out, JOB_DURATION_SECONDS, &q(p), &p.duration);
    }
    family(out, JOB_WAIT_SECONDS, "histogram", "Time from due to reserved.");
    for p in pools {
        histogram(out, JOB_WAIT_SECONDS, &q(p), &p.wait);
    }
    family(out, PAYOUTS_TOTAL, "counter", "Payout attempts, by outcome.");
    if let Some(p) = pools.iter().find(|p| p.queue == PAYOUT_QUEUE) {
        let _ = writeln!(out, "{PAYOUTS_TOTAL}{{outcome=\"succeeded\"}} {}", p.processed);
        let _ = writeln!(out, "{PAYOUTS_TOTAL}{{outcome=\"retried\"}} {}", p.retried);
        let _ = writeln!(out, "{PAYOUTS_TOTAL}{{outcome=\"dead_lettered\"}} {}", p.dead_lettered);
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A queue's figures, each read within the health checks' timeout.
async fn queue_figures(app: &AppState, queue: &dyn sunusav_core::ports::Queue) -> QueueFigures {
    let within = app.inner.check_timeout;
    let stats = match tokio::time::timeout(within, queue.stats()).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            tracing::warn!(queue = queue.name(), error = %e, "queue stats failed");
            None
        }
        Err(_) => None,
    };
    let oldest_waiting_ms = match stats {
        Some(s) if s.waiting == 0 => Some(0),
        Some(_) => match tokio::time::timeout(within, queue.list(JobState::Waiting, 0, 1)).await {
            Ok(Ok(jobs)) => Some(jobs.first().map_or(0, |j| now_ms().saturating_sub(j.due_at_ms))),
            _ => None,
        },
        None => None,
    };
    QueueFigures { name: queue.name().to_owned(), stats, oldest_waiting_ms }
}

/// What a scrape reads from the dependencies and the worker pools: the
/// gauges' values, for the text and for the facade alike.
pub(crate) struct Readings {
    pub(crate) queues: Vec<QueueFigures>,
    pub(crate) pools: Vec<PoolSnapshot>,
    pub(crate) node_up: bool,
    pub(crate) store_up: bool,
    /// Stale open payouts per status; `None` when the store is down or
    /// they could not be read.
    pub(crate) stale: Option<Vec<(AttemptStatus, u64)>>,
    /// Whether the settle stream is open (`None`: no settle stream).
    pub(crate) settle_stream_connected: Option<bool>,
}

/// Reads the gauges' values: the queues, the pools, a ping of the store and
/// of the node, the stale payouts; each read within the health checks' timeout.
pub(crate) async fn read(state: &AppState) -> Readings {
    let t = &state.inner.tontine;
    let mut queues = Vec::new();
    for queue in [t.payout_queue(), t.webhook_queue()] {
        queues.push(queue_figures(state, queue.as_ref()).await);
    }
    let within = state.inner.check_timeout;
    let (node, store) =
        tokio::join!(tokio::time::timeout(within, t.payments().ping()), tokio::time::timeout(within, t.store().ping()));
    let store_up = matches!(store, Ok(Ok(())));
    let stale_payouts = if store_up {
        match tokio::time::timeout(within, t.store().open_payment_attempts(STALE_PAYOUT, STALE_PAYOUT_CAP)).await {
            Ok(Ok(open)) => Some(
                [AttemptStatus::Pending, AttemptStatus::InFlight, AttemptStatus::Failed]
                    .into_iter()
                    .map(|status| (status, open.iter().filter(|a| a.status() == status).count() as u64))
                    .collect(),
            ),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "open payouts could not be read");
                None
            }
            Err(_) => None,
        }
    } else {
        None
    };
    Readings {
        queues,
        pools: state.inner.workers.snapshots(),
        node_up: matches!(node, Ok(Ok(()))),
        store_up,
        stale: stale_payouts,
        settle_stream_connected: state.inner.settle_stream.as_ref().map(|s| s.connected()),
    }
}

/// `sunusav_node_up`, `sunusav_store_up` and `sunusav_payouts_open_stale{status}`.
fn dependencies(out: &mut String, readings: &Readings) {
    family(out, NODE_UP, "gauge", "Whether the Lightning node answered a ping.");
    let _ = writeln!(out, "{NODE_UP} {}", u8::from(readings.node_up));
    family(out, STORE_UP, "gauge", "Whether the store answered a ping.");
    let _ = writeln!(out, "{STORE_UP} {}", u8::from(readings.store_up));
    if !readings.store_up {
        return;
    }
    let help = "Payouts neither paid nor dead whose attempt has not changed for 30 minutes, by status.";
    family(out, PAYOUTS_OPEN_STALE, "gauge", help);
    for (status, n) in readings.stale.iter().flatten() {
        let _ = writeln!(out, "{PAYOUTS_OPEN_STALE}{{status=\"{}\"}} {n}", status.as_str());
    }
}

/// The whole exposition text.
pub async fn render_text(state: &AppState) -> String {
    let readings = read(state).await;
    let mut out = String::with_capacity(8 * 1024);
    queues(&mut out, &readings.queues);
    pools(&mut out, &readings.pools);
    family(&mut out, WEBHOOKS_TOTAL, "counter", "Webhook deliveries answered, by outcome.");
    for (outcome, n) in state.inner.metrics.webhooks() {
        let _ = writeln!(out, "{WEBHOOKS_TOTAL}{{outcome=\"{outcome}\"}} {n}");
    }
    family(&mut out, SETTLEMENTS_TOTAL, "counter", "Webhook deliveries settled by the workers, by outcome.");
    for (outcome, n) in state.inner.workers.settlements() {
        let _ = writeln!(out, "{SETTLEMENTS_TOTAL}{{outcome=\"{outcome}\"}} {n}");
    }
    http(&mut out, &state.inner.metrics);
    if let (Some(stream), Some(connected)) = (&state.inner.settle_stream, readings.settle_stream_connected) {
        family(&mut out, SETTLE_STREAM_CONNECTED, "gauge", "Whether the node's settle stream is open.");
        let _ = writeln!(out, "{SETTLE_STREAM_CONNECTED} {}", u8::from(connected));
        let help = "Settled invoices the node's stream reported (replays included).";
        family(&mut out, SETTLE_STREAM_RECEIVED_TOTAL, "counter", help);
        let _ = writeln!(out, "{SETTLE_STREAM_RECEIVED_TOTAL} {}", stream.received());
        family(&mut out, SETTLE_STREAM_CUTS_TOTAL, "counter", "Settle streams cut, failed or refused.");
        let _ = writeln!(out, "{SETTLE_STREAM_CUTS_TOTAL} {}", stream.cuts());
    }
    dependencies(&mut out, &readings);
    out
}

/// `GET /metrics`.
pub async fn render(State(state): State<AppState>) -> Response {
    let mut response = render_text(&state).await.into_response();
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(PROMETHEUS_TEXT));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microseconds_print_as_plain_decimal_seconds() {
        for (micros, text) in [(100, "0.0001"), (500, "0.0005"), (1_000_000, "1"), (2_500_000, "2.5"), (0, "0")] {
            assert_eq!(seconds(micros), text);
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
