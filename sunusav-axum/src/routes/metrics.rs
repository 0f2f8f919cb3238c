//! `GET /metrics`: Prometheus text exposition format 0.0.4, written by hand.
//!
//! Series (labels are closed sets: queue names, job states, outcomes):
//! `sunusav_queue_jobs{queue,state}`, `sunusav_queue_paused{queue}`,
//! `sunusav_queue_up{queue}`, `sunusav_workers_concurrency{queue}`,
//! `sunusav_workers_busy{queue}`, `sunusav_jobs_processed_total{queue,outcome}`,
//! `sunusav_jobs_retried_total{queue}`, `sunusav_jobs_dead_lettered_total{queue}`,
//! the histograms `sunusav_job_duration_seconds{queue}` and
//! `sunusav_job_wait_seconds{queue}`, `sunusav_webhooks_total{outcome}` and
//! `sunusav_payouts_total{outcome}`.

use std::fmt::Write as _;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use http::header::CONTENT_TYPE;
use sunusav_core::ports::{JobState, QueueStats};
use sunusav_core::runtime::{HistogramSnapshot, PoolSnapshot};
use sunusav_core::services::PAYOUT_QUEUE;

use crate::state::AppState;

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
    for (le, count) in &h.buckets {
        let _ = writeln!(out, "{name}_bucket{{queue=\"{queue}\",le=\"{}\"}} {count}", seconds(*le));
    }
    let _ = writeln!(out, "{name}_bucket{{queue=\"{queue}\",le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "{name}_sum{{queue=\"{queue}\"}} {}", seconds(h.sum_micros));
    let _ = writeln!(out, "{name}_count{{queue=\"{queue}\"}} {}", h.count);
}

fn queues(out: &mut String, stats: &[(String, Option<QueueStats>)]) {
    family(out, "sunusav_queue_up", "gauge", "Whether the queue's counts could be read.");
    for (q, s) in stats {
        let _ = writeln!(out, "sunusav_queue_up{{queue=\"{q}\"}} {}", u8::from(s.is_some()));
    }
    family(out, "sunusav_queue_jobs", "gauge", "Jobs per queue and state.");
    for (q, s) in stats {
        for state in s.iter().flat_map(|s| JobState::ALL.map(|st| (st, s.count(st)))) {
            let _ = writeln!(out, "sunusav_queue_jobs{{queue=\"{q}\",state=\"{}\"}} {}", state.0.as_str(), state.1);
        }
    }
    family(out, "sunusav_queue_paused", "gauge", "Whether the queue is paused.");
    for (q, s) in stats {
        if let Some(s) = s {
            let _ = writeln!(out, "sunusav_queue_paused{{queue=\"{q}\"}} {}", u8::from(s.paused));
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

/// The whole exposition text.
pub async fn render_text(state: &AppState) -> String {
    let t = &state.inner.tontine;
    let mut per_queue = Vec::new();
    for queue in [t.payout_queue(), t.webhook_queue()] {
        let s = match tokio::time::timeout(state.inner.check_timeout, queue.stats()).await {
            Ok(Ok(s)) => Some(s),
            Ok(Err(e)) => {
                tracing::warn!(queue = queue.name(), error = %e, "queue stats failed");
                None
            }
            Err(_) => None,
        };
        per_queue.push((escape(queue.name()), s));
    }
    let mut out = String::with_capacity(8 * 1024);
    queues(&mut out, &per_queue);
    pools(&mut out, &state.inner.workers.snapshots());
    family(&mut out, "sunusav_webhooks_total", "counter", "Webhook deliveries, by outcome.");
    for (outcome, n) in state.inner.metrics.webhooks() {
        let _ = writeln!(out, "sunusav_webhooks_total{{outcome=\"{outcome}\"}} {n}");
    }
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
