//! Delivering domain events: the [`EventSubscriber`] a host implements (an
//! HTTP endpoint, a message bus…) and the [`EventHandler`] a worker pool
//! runs on the events queue ([`crate::services::EVENTS_QUEUE`]).
//!
//! A delivery the subscriber refuses for now is retried with the job's
//! backoff ([`crate::services::EVENT_JOB_OPTIONS`]) and reaches the dead
//! letters when its attempts are used up, where an operator retries it. The
//! same event may be delivered more than once (a lost answer); its id tells.

use async_trait::async_trait;

use crate::ports::ReservedJob;
use crate::services::{DeadlineOutcome, DomainEvent, TimerJob, Tontine};

use super::pool::{JobFailure, JobHandler};

/// Why a subscriber did not take an event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscriberError {
    /// Not now (unreachable, a 5xx, a timeout): retried with backoff.
    #[error("retry later: {0}")]
    Retry(String),
    /// Never (the subscriber refuses it for good): dead letters at once.
    #[error("refused: {0}")]
    Refused(String),
}

/// Where events go. Implementations must be idempotent by
/// [`DomainEvent::id`] or pass the id on (e.g. as `webhook-id`).
#[async_trait]
pub trait EventSubscriber: Send + Sync + 'static {
    /// Delivers one event; `body` is its JSON, as signed and sent.
    ///
    /// # Errors
    /// [`SubscriberError`]: retry later, or never.
    async fn deliver(&self, event: &DomainEvent, body: &[u8]) -> Result<(), SubscriberError>;
}

/// Runs event jobs: decodes the event and hands it to the subscriber.
#[derive(Clone)]
pub struct EventHandler {
    subscriber: std::sync::Arc<dyn EventSubscriber>,
}

impl EventHandler {
    /// A handler delivering to `subscriber`.
    pub fn new(subscriber: std::sync::Arc<dyn EventSubscriber>) -> Self {
        Self { subscriber }
    }
}

impl std::fmt::Debug for EventHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventHandler").finish_non_exhaustive()
    }
}

#[async_trait]
impl JobHandler for EventHandler {
    async fn handle(&self, job: &ReservedJob) -> Result<(), JobFailure> {
        let event: DomainEvent = serde_json::from_slice(&job.payload)
            .map_err(|e| JobFailure::permanent(format!("invalid event payload: {e}")))?;
        match self.subscriber.deliver(&event, &job.payload).await {
            Ok(()) => Ok(()),
            Err(SubscriberError::Retry(why)) => Err(JobFailure::retry(why)),
            Err(SubscriberError::Refused(why)) => Err(JobFailure::permanent(why)),
        }
    }

    async fn dead(&self, job: &ReservedJob, error: &str) {
        tracing::error!(event = %job.id, error, "event delivery dead: an operator retries it from the dead letters");
    }
}

/// Runs timer jobs ([`crate::services::TIMERS_QUEUE`]): a scheduled group's
/// deadlines ([`Tontine::run_timer`]).
#[derive(Clone, Debug)]
pub struct TimerHandler {
    tontine: Tontine,
}

impl TimerHandler {
    /// A handler running `tontine`'s timers.
    pub const fn new(tontine: Tontine) -> Self {
        Self { tontine }
    }
}

#[async_trait]
impl JobHandler for TimerHandler {
    async fn handle(&self, job: &ReservedJob) -> Result<(), JobFailure> {
        let timer: TimerJob = serde_json::from_slice(&job.payload)
            .map_err(|e| JobFailure::permanent(format!("invalid timer payload: {e}")))?;
        match self.tontine.run_timer(&timer, self.tontine.now_ms()).await {
            Ok(DeadlineOutcome::Early) => Err(JobFailure::retry("the timer fired before its time")),
            Ok(_) => Ok(()),
            Err(e) if e.is_retryable() => Err(JobFailure::retry(e.to_string())),
            Err(e) => Err(JobFailure::permanent(e.to_string())),
        }
    }

    /// A timer that died (a long outage) is removed from the dead letters:
    /// the store still says it is owed, and the timers' sweep publishes it
    /// again at its next pass (a dead job's id would absorb that).
    async fn dead(&self, job: &ReservedJob, error: &str) {
        tracing::error!(timer = %job.id, error, "a timer died; removed, the timers' sweep publishes it again");
        if let Some(queue) = self.tontine.timers_queue()
            && let Err(e) = queue.remove(&job.id).await
        {
            tracing::warn!(timer = %job.id, error = %e, "removing a dead timer failed; an operator retries it");
        }
    }
}
