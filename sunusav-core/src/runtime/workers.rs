//! Workers: the payout and webhook pools, the outbox relay, stalled-job
//! recovery, the sweep of work a queue lost and the retention of webhook
//! bodies, with graceful shutdown.
//!
//! [`Workers::start`] runs everything on the current tokio runtime;
//! [`Workers::shutdown`] stops reserving, lets running jobs finish within a
//! deadline, then returns. Jobs still running at the deadline are abandoned:
//! their leases expire and the queue hands them out again.
//!
//! Each attempt runs in a `tracing` span (queue, job id, attempt; a batch's
//! with its queue and count). A handler that panics or runs past
//! [`PoolConfig::job_timeout`] fails its jobs for a retry; its worker goes on.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::attempt;
use super::events::{EventHandler, EventSubscriber, TimerHandler};
use super::handlers::{PayoutHandler, WebhookHandler};
use super::metrics::{PoolMetrics, PoolSnapshot, SettlementCounts};
use super::pool::{JobHandler, PoolConfig, WorkerPool};

use crate::domain::outcome::DeliveryOutcome;
use crate::ports::{Consumer, Queue};
use crate::services::Tontine;

/// Settings of the workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkersConfig {
    /// Payout workers (the original's `PAYOUT_WORKER_CONCURRENCY`, default 2).
    pub payout_concurrency: usize,
    /// Webhook workers (the original's `WEBHOOK_WORKER_CONCURRENCY`, default 5).
    pub webhook_concurrency: usize,
    /// Webhook jobs reserved ahead of the webhook workers ([`PoolConfig::prefetch`];
    /// default 0). Payouts are never prefetched: each is a network payment.
    pub webhook_prefetch: usize,
    /// Most webhook jobs a worker settles together ([`PoolConfig::batch`];
    /// default 16): the events that are not payments of ours share two
    /// statements, and each payment of ours keeps its own transaction.
    /// Payouts are never batched.
    pub webhook_batch: usize,
    /// How long a webhook worker woken on an idle queue waits for more jobs
    /// to settle with the first ([`PoolConfig::linger`]; default 2 ms).
    pub webhook_linger: Duration,
    /// Event delivery workers, when events are delivered
    /// ([`Workers::start_with_events`]; default 2).
    pub event_concurrency: usize,
    /// Lease of a reserved job.
    pub lease: Duration,
    /// How long a blocking reserve waits before looking at shutdown again.
    pub idle_wait: Duration,
    /// How often the outbox relay looks for unsent rows.
    pub relay_interval: Duration,
    /// How often stalled leases are recovered.
    pub stalled_interval: Duration,
    /// How often the sweep looks for work whose job a queue lost: recorded
    /// webhook deliveries without an outcome and payouts neither paid nor
    /// dead ([`Tontine::requeue_unprocessed_webhooks`],
    /// [`Tontine::requeue_open_payouts`]; default 1 min).
    pub sweep_interval: Duration,
    /// How long such work waits untouched before the sweep queues its job
    /// again (default 2 min). A job still in the queue absorbs the copy, so
    /// this only bounds how much the sweep re-sends.
    pub sweep_after: Duration,
    /// How long the raw bodies of processed webhook deliveries are kept
    /// (`None`, the default: for ever). Past it, a background task drops
    /// them ([`Tontine::drop_expired_webhook_bodies`]); the records and their
    /// outcomes stay, and dead or unprocessed deliveries keep theirs.
    pub webhook_retention: Option<Duration>,
    /// How often the retention task runs (default 10 min). Each pass drops
    /// at most [`RETENTION_BATCH`] × [`RETENTION_BATCHES`] bodies.
    pub retention_interval: Duration,
}

/// Bodies one statement of the retention task drops.
pub const RETENTION_BATCH: u32 = 500;
/// Statements one pass of the retention task runs, at most.
pub const RETENTION_BATCHES: u32 = 20;

impl Default for WorkersConfig {
    fn default() -> Self {
        Self {
            payout_concurrency: 2,
            webhook_concurrency: 5,
            webhook_prefetch: 0,
            webhook_batch: 16,
            webhook_linger: Duration::from_millis(2),
            event_concurrency: 2,
            lease: Duration::from_secs(30),
            idle_wait: Duration::from_secs(1),
            relay_interval: Duration::from_millis(500),
            stalled_interval: Duration::from_secs(5),
            sweep_interval: Duration::from_mins(1),
            sweep_after: Duration::from_mins(2),
            webhook_retention: None,
            retention_interval: Duration::from_mins(10),
        }
    }
}

/// Builders, for code outside this crate (the struct is `#[non_exhaustive]`):
/// start from [`Default`] and set what differs.
impl WorkersConfig {
    /// This config with [`payout_concurrency`](Self::payout_concurrency) set to `payout_concurrency`.
    #[must_use]
    pub const fn with_payout_concurrency(mut self, payout_concurrency: usize) -> Self {
        self.payout_concurrency = payout_concurrency;
        self
    }

    /// This config with [`webhook_concurrency`](Self::webhook_concurrency) set to `webhook_concurrency`.
    #[must_use]
    pub const fn with_webhook_concurrency(mut self, webhook_concurrency: usize) -> Self {
        self.webhook_concurrency = webhook_concurrency;
        self
    }

    /// This config with [`webhook_prefetch`](Self::webhook_prefetch) set to `webhook_prefetch`.
    #[must_use]
    pub const fn with_webhook_prefetch(mut self, webhook_prefetch: usize) -> Self {
        self.webhook_prefetch = webhook_prefetch;
        self
    }

    /// This config with [`webhook_batch`](Self::webhook_batch) set to `webhook_batch`.
    #[must_use]
    pub const fn with_webhook_batch(mut self, webhook_batch: usize) -> Self {
        self.webhook_batch = webhook_batch;
        self
    }

    /// This config with [`webhook_linger`](Self::webhook_linger) set to `webhook_linger`.
    #[must_use]
    pub const fn with_webhook_linger(mut self, webhook_linger: Duration) -> Self {
        self.webhook_linger = webhook_linger;
        self
    }

    /// This config with [`event_concurrency`](Self::event_concurrency) set to `event_concurrency`.
    #[must_use]
    pub const fn with_event_concurrency(mut self, event_concurrency: usize) -> Self {
        self.event_concurrency = event_concurrency;
        self
    }

    /// This config with [`lease`](Self::lease) set to `lease`.
    #[must_use]
    pub const fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// This config with [`idle_wait`](Self::idle_wait) set to `idle_wait`.
    #[must_use]
    pub const fn with_idle_wait(mut self, idle_wait: Duration) -> Self {
        self.idle_wait = idle_wait;
        self
    }

    /// This config with [`relay_interval`](Self::relay_interval) set to `relay_interval`.
    #[must_use]
    pub const fn with_relay_interval(mut self, relay_interval: Duration) -> Self {
        self.relay_interval = relay_interval;
        self
    }

    /// This config with [`stalled_interval`](Self::stalled_interval) set to `stalled_interval`.
    #[must_use]
    pub const fn with_stalled_interval(mut self, stalled_interval: Duration) -> Self {
        self.stalled_interval = stalled_interval;
        self
    }

    /// This config with [`sweep_interval`](Self::sweep_interval) set to `sweep_interval`.
    #[must_use]
    pub const fn with_sweep_interval(mut self, sweep_interval: Duration) -> Self {
        self.sweep_interval = sweep_interval;
        self
    }

    /// This config with [`sweep_after`](Self::sweep_after) set to `sweep_after`.
    #[must_use]
    pub const fn with_sweep_after(mut self, sweep_after: Duration) -> Self {
        self.sweep_after = sweep_after;
        self
    }

    /// This config with [`webhook_retention`](Self::webhook_retention) set to `webhook_retention`.
    #[must_use]
    pub const fn with_webhook_retention(mut self, webhook_retention: Option<Duration>) -> Self {
        self.webhook_retention = webhook_retention;
        self
    }

    /// This config with [`retention_interval`](Self::retention_interval) set to `retention_interval`.
    #[must_use]
    pub const fn with_retention_interval(mut self, retention_interval: Duration) -> Self {
        self.retention_interval = retention_interval;
        self
    }
}

/// Live figures of every pool, shared with the HTTP layer.
#[derive(Clone, Debug, Default)]
pub struct WorkerStats {
    pools: Vec<(String, u64, Arc<PoolMetrics>)>,
    settlements: Arc<SettlementCounts>,
}

impl WorkerStats {
    /// Each pool's figures now.
    pub fn snapshots(&self) -> Vec<PoolSnapshot> {
        self.pools.iter().map(|(q, c, m)| m.snapshot(q, *c)).collect()
    }

    /// Webhook deliveries settled so far, by outcome.
    pub fn settlements(&self) -> Vec<(DeliveryOutcome, u64)> {
        self.settlements.snapshot()
    }
}

/// The running workers.
#[derive(Debug)]
pub struct Workers {
    pools: Vec<WorkerPool>,
    relay: JoinHandle<()>,
    sweep: JoinHandle<()>,
    retention: Option<JoinHandle<()>>,
    stalled: JoinHandle<()>,
    shutdown: watch::Sender<bool>,
    stats: WorkerStats,
}

impl Workers {
    /// Starts the payout and webhook pools (and the timers' when the
    /// application has a timers queue), the outbox relay, stalled recovery,
    /// the sweep and, with [`WorkersConfig::webhook_retention`], the retention task.
    pub fn start(tontine: &Tontine, config: WorkersConfig) -> Self {
        Self::start_with_events(tontine, config, None)
    }

    /// [`Workers::start`], and, when the application has an events queue
    /// ([`Tontine::with_events`]) and `subscriber` is set, a pool delivering
    /// its events to `subscriber` ([`EventHandler`]), whose stalled leases
    /// are recovered with the others'. Without a subscriber the events wait
    /// in their queue for a consumer of the host's.
    pub fn start_with_events(
        tontine: &Tontine,
        config: WorkersConfig,
        subscriber: Option<Arc<dyn EventSubscriber>>,
    ) -> Self {
        let (tx, rx) = watch::channel(false);
        let base = PoolConfig { lease: config.lease, idle_wait: config.idle_wait, ..PoolConfig::default() };
        let pool = |q: &Arc<dyn Queue>, h: Arc<dyn JobHandler>, settings: PoolConfig| {
            let consumer: Arc<dyn Consumer> = q.clone();
            WorkerPool::spawn(&consumer, &h, settings, &rx)
        };
        let payouts: Arc<dyn JobHandler> = Arc::new(PayoutHandler::new(tontine.clone()));
        let settlements = Arc::new(SettlementCounts::default());
        let webhooks: Arc<dyn JobHandler> =
            Arc::new(WebhookHandler::new(tontine.clone()).with_counts(Arc::clone(&settlements)));
        let mut pools = vec![
            pool(
                tontine.payout_queue(),
                Arc::clone(&payouts),
                PoolConfig { concurrency: config.payout_concurrency, ..base },
            ),
            pool(
                tontine.webhook_queue(),
                Arc::clone(&webhooks),
                PoolConfig {
                    concurrency: config.webhook_concurrency,
                    prefetch: config.webhook_prefetch,
                    batch: config.webhook_batch,
                    linger: config.webhook_linger,
                    ..base
                },
            ),
        ];
        let mut extra = Vec::new();
        if let Some((queue, subscriber)) = tontine.events_queue().cloned().zip(subscriber) {
            let handler: Arc<dyn JobHandler> = Arc::new(EventHandler::new(subscriber));
            pools.push(pool(
                &queue,
                Arc::clone(&handler),
                PoolConfig { concurrency: config.event_concurrency, ..base },
            ));
            extra.push((queue, handler));
        }
        if let Some(queue) = tontine.timers_queue().cloned() {
            let handler: Arc<dyn JobHandler> = Arc::new(TimerHandler::new(tontine.clone()));
            pools.push(pool(&queue, Arc::clone(&handler), PoolConfig { concurrency: 1, ..base }));
            extra.push((queue, handler));
        }
        let stats = WorkerStats {
            pools: pools
                .iter()
                .map(|p| {
                    let s = p.snapshot();
                    (s.queue, s.concurrency, p.metrics())
                })
                .collect(),
            settlements,
        };
        let relay = tokio::spawn(relay_loop(tontine.clone(), config.relay_interval, rx.clone()));
        let sweep = tokio::spawn(sweep_loop(tontine.clone(), config.sweep_interval, config.sweep_after, rx.clone()));
        let retention = config
            .webhook_retention
            .map(|keep| tokio::spawn(retention_loop(tontine.clone(), config.retention_interval, keep, rx.clone())));
        // Each queue with the handler of its pool: a job that recovery
        // dead-letters gets the same `dead` hook as one that fails for good.
        let mut recovered = vec![
            Recovered { queue: tontine.payout_queue().clone(), handler: payouts, metrics: pools[0].metrics() },
            Recovered { queue: tontine.webhook_queue().clone(), handler: webhooks, metrics: pools[1].metrics() },
        ];
        for (i, (queue, handler)) in extra.into_iter().enumerate() {
            recovered.push(Recovered { queue, handler, metrics: pools[2 + i].metrics() });
        }
        let stalled = tokio::spawn(stalled_loop(recovered, config.stalled_interval, rx));
        Self { pools, relay, sweep, retention, stalled, shutdown: tx, stats }
    }

    /// A handle on the live figures.
    pub fn stats(&self) -> WorkerStats {
        self.stats.clone()
    }

    /// Stops reserving, waits for running jobs at most `deadline`, stops the
    /// relay, sweep, retention and recovery loops. Returns whether every job finished in time.
    ///
    /// A recovery pass under way (with the `dead` hooks of the jobs it
    /// dead-lettered) may finish within what is left of `deadline`.
    pub async fn shutdown(self, deadline: Duration) -> bool {
        let _ = self.shutdown.send(true);
        let started = tokio::time::Instant::now();
        let mut clean = true;
        for p in self.pools {
            let left = deadline.saturating_sub(started.elapsed());
            clean &= p.join(left).await;
        }
        for background in [Some(self.relay), Some(self.sweep), self.retention].into_iter().flatten() {
            background.abort();
            let _ = background.await;
        }
        let mut stalled = self.stalled;
        let left = deadline.saturating_sub(started.elapsed());
        if tokio::time::timeout(left, &mut stalled).await.is_err() {
            stalled.abort();
            let _ = stalled.await;
        }
        clean
    }
}

async fn relay_loop(tontine: Tontine, every: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        match tontine.relay_outbox(256).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "outbox relay failed; retrying"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Every `every`, queues again the jobs of work left `after` without an
/// outcome (see [`WorkersConfig::sweep_interval`]); the first pass runs one
/// interval after start.
async fn sweep_loop(tontine: Tontine, every: Duration, after: Duration, mut shutdown: watch::Receiver<bool>) {
    const LIMIT: u32 = 2_000;
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = tontine.requeue_unprocessed_webhooks(after, LIMIT).await {
            tracing::warn!(error = %e, "webhook sweep failed; retrying at the next pass");
        }
        if let Err(e) = tontine.requeue_open_payouts(after, LIMIT).await {
            tracing::warn!(error = %e, "payout sweep failed; retrying at the next pass");
        }
        // Scheduled groups' deadlines and reminders: the store says which
        // are owed; the queue's id dedup absorbs those it still holds.
        let mut from = None;
        loop {
            match tontine.sweep_timers(from, 500).await {
                Ok((_, Some(next))) => from = Some(next),
                Ok((_, None)) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "timers sweep failed; retrying at the next pass");
                    break;
                }
            }
        }
    }
}

/// Every `every`, drops the raw bodies of webhook deliveries processed more
/// than `keep` ago, in bounded batches; the first pass runs one interval
/// after start.
async fn retention_loop(tontine: Tontine, every: Duration, keep: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = tontine.drop_expired_webhook_bodies(keep, RETENTION_BATCH, RETENTION_BATCHES).await {
            tracing::warn!(error = %e, "webhook body retention failed; retrying at the next pass");
        }
    }
}

/// A queue whose stalled leases are recovered, with its pool's handler and metrics.
struct Recovered {
    queue: Arc<dyn Consumer>,
    handler: Arc<dyn JobHandler>,
    metrics: Arc<PoolMetrics>,
}

/// Recovers stalled leases on each queue every `every`, and calls the `dead`
/// hook of the queue's handler for each job that recovery dead-lettered.
async fn stalled_loop(queues: Vec<Recovered>, every: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        for r in &queues {
            r.recover().await;
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
    }
}

impl Recovered {
    async fn recover(&self) {
        let q = self.queue.as_ref();
        match q.recover_stalled().await {
            Ok(r) => {
                if r.recovered > 0 {
                    tracing::warn!(
                        queue = q.name(),
                        recovered = r.recovered,
                        dead = r.dead.len(),
                        "recovered stalled jobs"
                    );
                }
                for d in r.dead {
                    self.metrics.count_dead_lettered(q.name());
                    tracing::error!(queue = q.name(), job = %d.job.id, attempt = d.job.attempt, error = %d.error, "stalled job dead-lettered");
                    attempt::dead_in_span(&*self.handler, q.name(), &d.job, &d.error).await;
                }
            }
            Err(e) => tracing::warn!(queue = q.name(), error = %e, "stalled recovery failed"),
        }
    }
}
