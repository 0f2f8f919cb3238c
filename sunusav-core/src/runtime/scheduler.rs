//! [`ScheduleFiring`]: the task that enqueues the due runs of recurring
//! schedules ([`Scheduler::fire_due`]) every interval.
//!
//! A run is enqueued at most one interval after it is due (plus the call's
//! own time). Any number of processes may run this task over one queue: each
//! run is enqueued once (the scheduler's guarantee). An error is logged and
//! counted, and the next tick tries again: nothing due is lost, since a
//! schedule's next run only advances when it is fired.
//!
//! The clock is passed in ([`Clock`]), so that a test can drive it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::ports::queue::Scheduler;

/// The wall clock the task reads, in Unix milliseconds.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system's clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()).unwrap_or(u64::MAX)
    })
}

/// Settings of the schedule-firing task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScheduleFiringConfig {
    /// How often due runs are fired (default 1 s; at least 1 ms).
    pub interval: Duration,
}

impl Default for ScheduleFiringConfig {
    fn default() -> Self {
        Self { interval: Duration::from_secs(1) }
    }
}

impl ScheduleFiringConfig {
    /// This config with [`interval`](Self::interval) set.
    #[must_use]
    pub const fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }
}

/// Live figures of the schedule-firing task.
#[derive(Debug, Default)]
pub struct ScheduleFiringStats {
    ticks: AtomicU64,
    fired: AtomicU64,
    errors: AtomicU64,
}

impl ScheduleFiringStats {
    /// Calls of `fire_due` made.
    pub fn ticks(&self) -> u64 {
        self.ticks.load(Ordering::Relaxed)
    }
    /// Runs this task fired (not those another process fired).
    pub fn fired(&self) -> u64 {
        self.fired.load(Ordering::Relaxed)
    }
    /// Calls that failed.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

/// The running schedule-firing task.
#[derive(Debug)]
pub struct ScheduleFiring {
    task: JoinHandle<()>,
    shutdown: watch::Sender<bool>,
    stats: Arc<ScheduleFiringStats>,
}

impl ScheduleFiring {
    /// Starts firing `scheduler`'s due runs on the current tokio runtime; the
    /// first call is made at once.
    pub fn start(scheduler: Arc<dyn Scheduler>, clock: Clock, config: ScheduleFiringConfig) -> Self {
        let (tx, rx) = watch::channel(false);
        let stats = Arc::new(ScheduleFiringStats::default());
        let task = tokio::spawn(fire_loop(scheduler, clock, config.interval, Arc::clone(&stats), rx));
        Self { task, shutdown: tx, stats }
    }

    /// Its live figures.
    pub fn stats(&self) -> Arc<ScheduleFiringStats> {
        Arc::clone(&self.stats)
    }

    /// Stops it. A call under way is dropped; what it had not fired is fired
    /// by the next process's (or the next start's) first call.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// Fires due runs every `interval` until `shutdown` changes (or its sender is
/// dropped): the loop of [`ScheduleFiring`], for a host that drives its tasks
/// with its own shutdown signal.
pub async fn fire_loop(
    scheduler: Arc<dyn Scheduler>,
    clock: Clock,
    interval: Duration,
    stats: Arc<ScheduleFiringStats>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(1)));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = ticker.tick() => {}
        }
        let now_ms = clock();
        let result = tokio::select! {
            _ = shutdown.changed() => return,
            r = scheduler.fire_due(now_ms) => r,
        };
        stats.ticks.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(fired) => {
                stats.fired.fetch_add(fired.runs.len() as u64, Ordering::Relaxed);
                for run in &fired.runs {
                    tracing::debug!(queue = scheduler.name(), schedule = %run.schedule, run_ms = run.run_ms, job = %run.job, "fired a scheduled run");
                }
            }
            Err(e) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(queue = scheduler.name(), error = %e, "firing due schedules failed; retrying at the next tick");
            }
        }
    }
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use tokio::time::Instant;

    use super::*;
    use crate::memory::MemoryQueue;
    use crate::ports::queue::{JobState, JobTemplate, QueueAdmin, QueueConfig, Repeat, ScheduleId, ScheduleSpec};

    /// 2026-01-05T00:00:00Z.
    const BASE_MS: u64 = 1_767_571_200_000;

    /// A clock that reads tokio's (paused) time from `BASE_MS`.
    fn paused_clock() -> Clock {
        let start = Instant::now();
        Arc::new(move || BASE_MS + u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    async fn waiting_ids(q: &MemoryQueue) -> Vec<String> {
        q.list(JobState::Waiting, 0, 100).await.unwrap().into_iter().map(|j| j.id.to_string()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn fires_each_due_run_every_interval_and_stops_on_shutdown() {
        let q = MemoryQueue::new("scheduled", QueueConfig::default());
        let id = ScheduleId::parse("every-10s").unwrap();
        let repeat = Repeat::every(Duration::from_secs(10), BASE_MS).unwrap();
        let spec = ScheduleSpec::new(id.clone(), JobTemplate::new("tick"), repeat).unwrap();
        q.upsert_schedule(spec, BASE_MS).await.unwrap();

        let config = ScheduleFiringConfig::default().with_interval(Duration::from_secs(1));
        let firing = ScheduleFiring::start(Arc::new(q.clone()), paused_clock(), config);
        let stats = firing.stats();
        tokio::time::sleep(Duration::from_millis(35_500)).await;

        let expected: Vec<String> = [0, 10_000, 20_000, 30_000].map(|d| id.run_job_id(BASE_MS + d).to_string()).into();
        assert_eq!(waiting_ids(&q).await, expected, "each run once, within an interval of its time");
        assert_eq!(stats.fired(), 4);
        assert_eq!(stats.ticks(), 36, "a call at start, then one a second");
        assert_eq!(stats.errors(), 0);

        firing.shutdown().await;
        tokio::time::sleep(Duration::from_mins(1)).await;
        assert_eq!(waiting_ids(&q).await.len(), 4, "no run fires after shutdown");
        assert_eq!(stats.ticks(), 36);
    }
}
