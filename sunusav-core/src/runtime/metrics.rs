//! Counters and histograms of one worker pool, and of the settlements the
//! webhook workers made: atomics, no locks, no allocation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::domain::outcome::DeliveryOutcome;
use crate::runtime::series;
use crate::services::PAYOUT_QUEUE;

/// Upper bounds of the histogram buckets, in microseconds (Prometheus' default
/// seconds buckets from 1 ms to 10 s, plus 100 µs and 500 µs).
pub const BUCKETS_MICROS: [u64; 14] = [
    100, 500, 1_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000,
];

/// A fixed-bucket histogram of durations.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS_MICROS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

/// A histogram's values at one instant: cumulative counts per bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HistogramSnapshot {
    /// `(upper bound in µs, cumulative count)`.
    pub buckets: Vec<(u64, u64)>,
    /// Observations.
    pub count: u64,
    /// Sum of observations, µs.
    pub sum_micros: u64,
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        if let Some(i) = BUCKETS_MICROS.iter().position(|&b| micros <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The current values.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0;
        let buckets = BUCKETS_MICROS
            .iter()
            .zip(&self.buckets)
            .map(|(&le, n)| {
                cumulative += n.load(Ordering::Relaxed);
                (le, cumulative)
            })
            .collect();
        HistogramSnapshot {
            buckets,
            count: self.count.load(Ordering::Relaxed),
            sum_micros: self.sum_micros.load(Ordering::Relaxed),
        }
    }
}

/// Live counters of one pool.
#[derive(Debug)]
pub struct PoolMetrics {
    pub(crate) busy: AtomicU64,
    pub(crate) processed: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) duration: Histogram,
    pub(crate) wait: Histogram,
    started: Instant,
}

impl Default for PoolMetrics {
    fn default() -> Self {
        Self {
            busy: AtomicU64::new(0),
            processed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            duration: Histogram::default(),
            wait: Histogram::default(),
            started: Instant::now(),
        }
    }
}

/// One pool's figures at one instant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PoolSnapshot {
    /// The queue the pool serves.
    pub queue: String,
    /// Workers in the pool.
    pub concurrency: u64,
    /// Workers running a job now.
    pub busy: u64,
    /// Jobs that succeeded and whose acknowledgement the queue took.
    pub processed: u64,
    /// Attempts that failed (retried or dead-lettered).
    pub failed: u64,
    /// Failed attempts scheduled for a retry.
    pub retried: u64,
    /// Jobs moved to the dead letters.
    pub dead_lettered: u64,
    /// Jobs processed per minute since the pool started.
    pub processed_per_minute: u64,
    /// Failed attempts per minute since the pool started.
    pub failed_per_minute: u64,
    /// Time spent running jobs.
    pub duration: HistogramSnapshot,
    /// Time from due to reserved.
    pub wait: HistogramSnapshot,
}

/// The facade is fed before the atomics: whoever sees an atomic's count
/// finds the facade's at least as high.
impl PoolMetrics {
    /// A job of `queue` waited `d` from due to reserved.
    pub(crate) fn waited(&self, queue: &str, d: Duration) {
        self.wait.observe(d);
        series::histogram(series::JOB_WAIT_SECONDS, &[("queue", queue)], d);
    }

    /// A job of `queue` ran for `d`.
    pub(crate) fn ran(&self, queue: &str, d: Duration) {
        self.duration.observe(d);
        series::histogram(series::JOB_DURATION_SECONDS, &[("queue", queue)], d);
    }

    /// `n` jobs of `queue` succeeded (the queue took their acknowledgements).
    pub(crate) fn count_processed(&self, queue: &str, n: u64) {
        if n == 0 {
            return;
        }
        series::counter(series::JOBS_PROCESSED_TOTAL, &[("queue", queue), ("outcome", "succeeded")], n);
        if queue == PAYOUT_QUEUE {
            series::counter(series::PAYOUTS_TOTAL, &[("outcome", "succeeded")], n);
        }
        self.processed.fetch_add(n, Ordering::Relaxed);
    }

    /// An attempt of a job of `queue` failed.
    pub(crate) fn count_failed(&self, queue: &str) {
        series::counter(series::JOBS_PROCESSED_TOTAL, &[("queue", queue), ("outcome", "failed")], 1);
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// A failed job of `queue` will be retried.
    pub(crate) fn count_retried(&self, queue: &str) {
        series::counter(series::JOBS_RETRIED_TOTAL, &[("queue", queue)], 1);
        if queue == PAYOUT_QUEUE {
            series::counter(series::PAYOUTS_TOTAL, &[("outcome", "retried")], 1);
        }
        self.retried.fetch_add(1, Ordering::Relaxed);
    }

    /// A job of `queue` moved to the dead letters.
    pub(crate) fn count_dead_lettered(&self, queue: &str) {
        series::counter(series::JOBS_DEAD_LETTERED_TOTAL, &[("queue", queue)], 1);
        if queue == PAYOUT_QUEUE {
            series::counter(series::PAYOUTS_TOTAL, &[("outcome", "dead_lettered")], 1);
        }
        self.dead_lettered.fetch_add(1, Ordering::Relaxed);
    }

    /// The current figures.
    pub fn snapshot(&self, queue: &str, concurrency: u64) -> PoolSnapshot {
        let processed = self.processed.load(Ordering::Relaxed);
        let failed = self.failed.load(Ordering::Relaxed);
        let elapsed_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX).max(1);
        let per_minute = |n: u64| u64::try_from(u128::from(n) * 60_000 / u128::from(elapsed_ms)).unwrap_or(u64::MAX);
        PoolSnapshot {
            queue: queue.to_owned(),
            concurrency,
            busy: self.busy.load(Ordering::Relaxed),
            processed,
            failed,
            retried: self.retried.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            processed_per_minute: per_minute(processed),
            failed_per_minute: per_minute(failed),
            duration: self.duration.snapshot(),
            wait: self.wait.snapshot(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_mins(1));
        let s = h.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.buckets[0], (100, 1));
        assert_eq!(s.buckets[3], (5_000, 2));
        assert_eq!(s.buckets.last().copied(), Some((10_000_000, 2)), "60 s is only in +Inf");
        assert_eq!(s.sum_micros, 50 + 3_000 + 60_000_000);
    }
}

/// Webhook deliveries settled, by outcome: what the webhook workers decided
/// (a contribution, a credit to a balance, an unknown invoice, ...), as the
/// HTTP intake's counts say only what was accepted.
#[derive(Debug)]
pub struct SettlementCounts {
    counts: [AtomicU64; DeliveryOutcome::ALL.len()],
}

impl Default for SettlementCounts {
    fn default() -> Self {
        Self { counts: [const { AtomicU64::new(0) }; DeliveryOutcome::ALL.len()] }
    }
}

impl SettlementCounts {
    /// Counts one settled delivery.
    pub fn record(&self, outcome: DeliveryOutcome) {
        series::counter(series::SETTLEMENTS_TOTAL, &[("outcome", outcome.as_str())], 1);
        if let Some(i) = DeliveryOutcome::ALL.iter().position(|o| *o == outcome) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `(outcome, count)` for every outcome, in declaration order.
    pub fn snapshot(&self) -> Vec<(DeliveryOutcome, u64)> {
        DeliveryOutcome::ALL.iter().zip(&self.counts).map(|(o, n)| (*o, n.load(Ordering::Relaxed))).collect()
    }
}
