//! The runtime: what runs the services over time.
//!
//! - [`Workers`]: the payout and webhook pools, the outbox relay, stalled-job
//!   recovery, the sweep of work a queue lost and the retention of webhook
//!   bodies, with graceful shutdown.
//! - [`WorkerPool`]: a pool of workers serving one queue (reserve, heartbeat,
//!   run, ack or fail), batching its round trips, containing a panicking
//!   handler, with a span per job and an optional job timeout; [`JobHandler`]
//!   is what it runs, [`PayoutHandler`] and [`WebhookHandler`] the services'.
//! - [`PoolMetrics`]: the pools' counters and latency histograms;
//!   [`SettlementCounts`]: the webhook workers' settlements by outcome.
//! - [`EventHandler`]: delivers domain events to an [`EventSubscriber`].
//! - [`series`]: the name of every metric series, and the `metrics` facade
//!   calls (feature `metrics-facade`) that send them to the host's recorder.
//! - [`SettleStream`]: follows the node's settled invoices into settlement.
//! - [`ScheduleFiring`]: enqueues the due runs of recurring schedules
//!   ([`Scheduler::fire_due`](crate::ports::queue::Scheduler::fire_due)) every interval.
//! - [`GroupCommit`]: the generic group-commit batcher (webhook ingestion).
//!
//! A pool batches its own acknowledgements with its next reservations, and
//! keeps jobs reserved ahead in a shared buffer; that shape (calls made with
//! nobody waiting, replies dealt out to several workers) is its own, so it
//! does not go through [`GroupCommit`].

mod attempt;
mod batch;
mod events;
mod handlers;
mod metrics;
mod pool;
mod scheduler;
pub mod series;
mod stream;
pub(crate) mod unwind;
mod workers;

pub use batch::{BatchError, BatchLimits, GroupCommit};
pub use events::{EventHandler, EventSubscriber, SubscriberError, TimerHandler};
pub use handlers::{PayoutHandler, WebhookHandler};
pub use metrics::{BUCKETS_MICROS, Histogram, HistogramSnapshot, PoolMetrics, PoolSnapshot, SettlementCounts};
pub use pool::{JobFailure, JobHandler, PoolConfig, WorkerPool};
pub use scheduler::{Clock, ScheduleFiring, ScheduleFiringConfig, ScheduleFiringStats, fire_loop, system_clock};
pub use stream::{SettleStream, SettleStreamConfig, SettleStreamStats};
pub use workers::{RETENTION_BATCH, RETENTION_BATCHES, WorkerStats, Workers, WorkersConfig};
