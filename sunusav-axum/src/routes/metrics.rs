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

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use http::header::CONTENT_TYPE;
use sunusav_core::ports::{AttemptStatus, JobState, QueueStats};
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
    family(out, "sunusav_build_info", "gauge", "The running build: 1, labelled with its version.");
    let _ = writeln!(out, "sunusav_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
    let routes = metrics.requests();
    family(out, "sunusav_http_requests_total", "counter", "HTTP requests answered, by route, method and status class.");
    for r in &routes {
        for (method, status, n) in &r.requests {
            let route = escape(&r.route);
            let _ = writeln!(
                out,
                "sunusav_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
            );
        }
    }
    family(out, "sunusav_http_request_duration_seconds", "histogram", "Time to answer an HTTP request, by route.");
    for r in &routes {
        labelled_histogram(out, "sunusav_http_request_duration_seconds", "route", &escape(&r.route), &r.duration);
    }
}

/// A queue's counts, and the age in milliseconds of the job it hands out
/// next (`None` when it could not be read).
struct QueueFigures {
    name: String,
    stats: Option<QueueStats>,
    oldest_waiting_ms: Option<u64>,
}

fn queues(out: &mut String, figures: &[QueueFigures]) {
    let stats: Vec<(&str, Option<&QueueStats>)> = figures.iter().map(|f| (f.name.as_str(), f.stats.as_ref())).collect();
    family(out, "sunusav_queue_up", "gauge", "Whether the queue's counts could be read.");
    for (q, s) in &stats {
        let _ = writeln!(out, "sunusav_queue_up{{queue=\"{q}\"}} {}", u8::from(s.is_some()));
    }
    family(out, "sunusav_queue_jobs", "gauge", "Jobs per queue and state.");
    for (q, s) in &stats {
        for state in s.iter().flat_map(|s| JobState::ALL.map(|st| (st, s.count(st)))) {
            let _ = writeln!(out, "sunusav_queue_jobs{{queue=\"{q}\",state=\"{}\"}} {}", state.0.as_str(), state.1);
        }
    }
    family(out, "sunusav_queue_paused", "gauge", "Whether the queue is paused.");
    for (q, s) in &stats {
        if let Some(s) = s {
            let _ = writeln!(out, "sunusav_queue_paused{{queue=\"{q}\"}} {}", u8::from(s.paused));
        }
    }
    let help = "Seconds the job a worker takes next has waited (0 when none waits).";
    family(out, "sunusav_queue_oldest_waiting_seconds", "gauge", help);
    for f in figures {
        if let Some(ms) = f.oldest_waiting_ms {
            let _ =
                writeln!(out, "sunusav_queue_oldest_waiting_seconds{{queue=\"{}\"}} {}", f.name, seconds(ms * 1_000));
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
    per_pool(out, pools, "sunusav_workers_concurrency", "gauge", "Workers in the pool.", |p| p.concurrency);
    per_pool(out, pools, "sunusav_workers_busy", "gauge", "Workers running a job now.", |p| p.busy);
    family(out, "sunusav_jobs_processed_total", "counter", "Job attempts finished, by outcome.");
    for p in pools {
        let _ =
            writeln!(out, "sunusav_jobs_processed_total{{queue=\"{}\",outcome=\"succeeded\"}} {}", q(p), p.processed);
        let _ = writeln!(out, "sunusav_jobs_processed_total{{queue=\"{}\",outcome=\"failed\"}} {}", q(p), p.failed);
    }
    let retried = "Failed attempts scheduled for a retry.";
    per_pool(out, pools, "sunusav_jobs_retried_total", "counter", retried, |p| p.retried);
    let dead = "Jobs moved to the dead letters.";
    per_pool(out, pools, "sunusav_jobs_dead_lettered_total", "counter", dead, |p| p.dead_lettered);
    family(out, "sunusav_job_duration_seconds", "histogram", "Time spent running a job.");
    for p in pools {
        histogram(out, "sunusav_job_duration_seconds", &q(p), &p.duration);
    }
    family(out, "sunusav_job_wait_seconds", "histogram", "Time from due to reserved.");
    for p in pools {
        histogram(out, "sunusav_job_wait_seconds", &q(p), &p.wait);
    }
    family(out, "sunusav_payouts_total", "counter", "Payout attempts, by outcome.");
    if let Some(p) = pools.iter().find(|p| p.queue == PAYOUT_QUEUE) {
        let _ = writeln!(out, "sunusav_payouts_total{{outcome=\"succeeded\"}} {}", p.processed);
        let _ = writeln!(out, "sunusav_payouts_total{{outcome=\"retried\"}} {}", p.retried);
        let _ = writeln!(out, "sunusav_payouts_total{{outcome=\"dead_lettered\"}} {}", p.dead_lettered);
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
    QueueFigures { name: escape(queue.name()), stats, oldest_waiting_ms }
}

/// `sunusav_node_up`, `sunusav_store_up` and `sunusav_payouts_open_stale{status}`.
async fn dependencies(out: &mut String, state: &AppState) {
    let t = &state.inner.tontine;
    let within = state.inner.check_timeout;
    let (node, store) =
        tokio::join!(tokio::time::timeout(within, t.payments().ping()), tokio::time::timeout(within, t.store().ping()));
    family(out, "sunusav_node_up", "gauge", "Whether the Lightning node answered a ping.");
    let _ = writeln!(out, "sunusav_node_up {}", u8::from(matches!(node, Ok(Ok(())))));
    let up = matches!(store, Ok(Ok(())));
    family(out, "sunusav_store_up", "gauge", "Whether the store answered a ping.");
    let _ = writeln!(out, "sunusav_store_up {}", u8::from(up));
    if !up {
        return;
    }
    let help = "Payouts neither paid nor dead whose attempt has not changed for 30 minutes, by status.";
    family(out, "sunusav_payouts_open_stale", "gauge", help);
    match tokio::time::timeout(within, t.store().open_payment_attempts(STALE_PAYOUT, STALE_PAYOUT_CAP)).await {
        Ok(Ok(open)) => {
            for status in [AttemptStatus::Pending, AttemptStatus::InFlight, AttemptStatus::Failed] {
                let n = open.iter().filter(|a| a.status() == status).count();
                let _ = writeln!(out, "sunusav_payouts_open_stale{{status=\"{}\"}} {n}", status.as_str());
            }
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "open payouts could not be read"),
        Err(_) => {}
    }
}

/// The whole exposition text.
pub async fn render_text(state: &AppState) -> String {
    let t = &state.inner.tontine;
    let mut figures = Vec::new();
    for queue in [t.payout_queue(), t.webhook_queue()] {
        figures.push(queue_figures(state, queue.as_ref()).await);
    }
    let mut out = String::with_capacity(8 * 1024);
    queues(&mut out, &figures);
    pools(&mut out, &state.inner.workers.snapshots());
    family(&mut out, "sunusav_webhooks_total", "counter", "Webhook deliveries answered, by outcome.");
    for (outcome, n) in state.inner.metrics.webhooks() {
        let _ = writeln!(out, "sunusav_webhooks_total{{outcome=\"{outcome}\"}} {n}");
    }
    family(&mut out, "sunusav_settlements_total", "counter", "Webhook deliveries settled by the workers, by outcome.");
    for (outcome, n) in state.inner.workers.settlements() {
        let _ = writeln!(out, "sunusav_settlements_total{{outcome=\"{outcome}\"}} {n}");
    }
    http(&mut out, &state.inner.metrics);
    if let Some(stream) = &state.inner.settle_stream {
        family(&mut out, "sunusav_settle_stream_connected", "gauge", "Whether the node's settle stream is open.");
        let _ = writeln!(out, "sunusav_settle_stream_connected {}", u8::from(stream.connected()));
        let help = "Settled invoices the node's stream reported (replays included).";
        family(&mut out, "sunusav_settle_stream_received_total", "counter", help);
        let _ = writeln!(out, "sunusav_settle_stream_received_total {}", stream.received());
        family(&mut out, "sunusav_settle_stream_cuts_total", "counter", "Settle streams cut, failed or refused.");
        let _ = writeln!(out, "sunusav_settle_stream_cuts_total {}", stream.cuts());
    }
    dependencies(&mut out, state).await;
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
