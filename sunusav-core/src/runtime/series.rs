//! The name of every metric series sunusav exposes: one list, used by the
//! Prometheus text of `GET /metrics` (`sunusav-axum`) and by the `metrics`
//! facade (feature `metrics-facade`), so that a host's registry and a scrape
//! of `/metrics` see the same names and labels.
//!
//! With the feature on, the runtime records its counters and histograms
//! through the facade when they happen ([`counter`], [`histogram`]), and
//! the HTTP adapter publishes the gauges read at scrape time ([`gauge`]);
//! without it these functions do nothing. The facade only records: the host
//! installs the recorder (e.g. its Prometheus exporter).

use std::time::Duration;

/// Jobs per queue and state: gauge `{queue, state}`.
pub const QUEUE_JOBS: &str = "sunusav_queue_jobs";
/// Whether the queue is paused: gauge `{queue}`.
pub const QUEUE_PAUSED: &str = "sunusav_queue_paused";
/// Whether the queue's counts could be read: gauge `{queue}`.
pub const QUEUE_UP: &str = "sunusav_queue_up";
/// Seconds the job a worker takes next has waited: gauge `{queue}`.
pub const QUEUE_OLDEST_WAITING_SECONDS: &str = "sunusav_queue_oldest_waiting_seconds";
/// Workers in the pool: gauge `{queue}`.
pub const WORKERS_CONCURRENCY: &str = "sunusav_workers_concurrency";
/// Workers running a job now: gauge `{queue}`.
pub const WORKERS_BUSY: &str = "sunusav_workers_busy";
/// Job attempts finished: counter `{queue, outcome = succeeded | failed}`.
pub const JOBS_PROCESSED_TOTAL: &str = "sunusav_jobs_processed_total";
/// Failed attempts scheduled for a retry: counter `{queue}`.
pub const JOBS_RETRIED_TOTAL: &str = "sunusav_jobs_retried_total";
/// Jobs moved to the dead letters: counter `{queue}`.
pub const JOBS_DEAD_LETTERED_TOTAL: &str = "sunusav_jobs_dead_lettered_total";
/// Time spent running a job, seconds: histogram `{queue}`.
pub const JOB_DURATION_SECONDS: &str = "sunusav_job_duration_seconds";
/// Time from due to reserved, seconds: histogram `{queue}`.
pub const JOB_WAIT_SECONDS: &str = "sunusav_job_wait_seconds";
/// Payout attempts: counter `{outcome = succeeded | retried | dead_lettered}`.
pub const PAYOUTS_TOTAL: &str = "sunusav_payouts_total";
/// Webhook deliveries answered by the HTTP intake: counter `{outcome}`.
pub const WEBHOOKS_TOTAL: &str = "sunusav_webhooks_total";
/// Webhook deliveries settled by the workers: counter `{outcome}`.
pub const SETTLEMENTS_TOTAL: &str = "sunusav_settlements_total";
/// The running build, 1: gauge `{version}`.
pub const BUILD_INFO: &str = "sunusav_build_info";
/// HTTP requests answered: counter `{route, method, status}` (status class).
pub const HTTP_REQUESTS_TOTAL: &str = "sunusav_http_requests_total";
/// Time to answer an HTTP request, seconds: histogram `{route}`.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "sunusav_http_request_duration_seconds";
/// Whether the node's settle stream is open: gauge.
pub const SETTLE_STREAM_CONNECTED: &str = "sunusav_settle_stream_connected";
/// Settled invoices the node's stream reported: counter.
pub const SETTLE_STREAM_RECEIVED_TOTAL: &str = "sunusav_settle_stream_received_total";
/// Settle streams cut, failed or refused: counter.
pub const SETTLE_STREAM_CUTS_TOTAL: &str = "sunusav_settle_stream_cuts_total";
/// Whether the Lightning node answered a ping: gauge.
pub const NODE_UP: &str = "sunusav_node_up";
/// Whether the store answered a ping: gauge.
pub const STORE_UP: &str = "sunusav_store_up";
/// Open payouts unchanged for 30 minutes: gauge `{status}`.
pub const PAYOUTS_OPEN_STALE: &str = "sunusav_payouts_open_stale";

/// Every series, each once.
pub const ALL: [&str; 23] = [
    QUEUE_JOBS,
    QUEUE_PAUSED,
    QUEUE_UP,
    QUEUE_OLDEST_WAITING_SECONDS,
    WORKERS_CONCURRENCY,
    WORKERS_BUSY,
    JOBS_PROCESSED_TOTAL,
    JOBS_RETRIED_TOTAL,
    JOBS_DEAD_LETTERED_TOTAL,
    JOB_DURATION_SECONDS,
    JOB_WAIT_SECONDS,
    PAYOUTS_TOTAL,
    WEBHOOKS_TOTAL,
    SETTLEMENTS_TOTAL,
    BUILD_INFO,
    HTTP_REQUESTS_TOTAL,
    HTTP_REQUEST_DURATION_SECONDS,
    SETTLE_STREAM_CONNECTED,
    SETTLE_STREAM_RECEIVED_TOTAL,
    SETTLE_STREAM_CUTS_TOTAL,
    NODE_UP,
    STORE_UP,
    PAYOUTS_OPEN_STALE,
];

/// Labels of one sample: `(label, value)`.
pub type Labels<'a> = &'a [(&'static str, &'a str)];

#[cfg(feature = "metrics-facade")]
fn owned(labels: Labels<'_>) -> Vec<metrics::Label> {
    labels.iter().map(|(k, v)| metrics::Label::new(*k, (*v).to_owned())).collect()
}

/// Adds `n` to a counter of the facade's recorder (nothing without the
/// `metrics-facade` feature).
#[cfg_attr(not(feature = "metrics-facade"), allow(unused_variables))]
pub fn counter(name: &'static str, labels: Labels<'_>, n: u64) {
    #[cfg(feature = "metrics-facade")]
    metrics::counter!(name, owned(labels)).increment(n);
}

/// Records a duration, in seconds, in a histogram of the facade's recorder
/// (nothing without the `metrics-facade` feature).
#[cfg_attr(not(feature = "metrics-facade"), allow(unused_variables))]
pub fn histogram(name: &'static str, labels: Labels<'_>, took: Duration) {
    #[cfg(feature = "metrics-facade")]
    metrics::histogram!(name, owned(labels)).record(took);
}

/// Sets a gauge of the facade's recorder (nothing without the
/// `metrics-facade` feature). Values past 2^53 lose precision (an `f64`).
#[cfg_attr(not(feature = "metrics-facade"), allow(unused_variables))]
pub fn gauge(name: &'static str, labels: Labels<'_>, value: u64) {
    #[cfg(feature = "metrics-facade")]
    {
        #[allow(clippy::cast_precision_loss)] // gauges are counts and ages: far below 2^53
        let value = value as f64;
        metrics::gauge!(name, owned(labels)).set(value);
    }
}

/// Sets a gauge to a duration in seconds (nothing without the feature).
#[cfg_attr(not(feature = "metrics-facade"), allow(unused_variables))]
pub fn gauge_seconds(name: &'static str, labels: Labels<'_>, value: Duration) {
    #[cfg(feature = "metrics-facade")]
    metrics::gauge!(name, owned(labels)).set(value);
}

#[cfg(test)]
mod tests {
    use super::ALL;

    #[test]
    fn every_series_is_named_once_with_the_sunusav_prefix() {
        let mut names = ALL.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        assert!(ALL.iter().all(|n| n.starts_with("sunusav_")));
    }
}
