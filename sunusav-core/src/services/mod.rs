//! Application services over the ports: the group API, webhook ingestion and
//! settlement, the crash-safe payout state machine, the outbox relay and the
//! sweeps, and the recovery of dead work from the store (an operator's payout
//! retry and webhook replay, the dead-letter hook, body retention).
//!
//! [`Tontine`] holds the ports; each concern lives in its own file.

mod acting;
mod clock;
mod destination;
mod error;
mod event;
mod groups;
mod ingest;
mod money;
mod notify;
mod payout;
mod recovery;
mod relay;
mod settle;
mod stream;
mod timers;

use std::sync::Arc;

pub use acting::Acting;
pub use clock::{Clock, ManualClock, SystemClock};
pub use destination::AcceptedInvoice;
pub use error::ServiceError;
pub use event::{EventError, EventStatus, LightningEvent, PayoutJob, WebhookJob};
pub use money::{Accounting, DEFAULT_INVOICE_EXPIRY, GroupLedger, NODE_OUTBOX, NodeAction};
pub use notify::{DomainEvent, EVENT_JOB_OPTIONS, EVENTS_QUEUE, EventKind};
pub use payout::PayoutStep;
pub use recovery::{PayoutRetry, WebhookReplay};
pub use settle::{Ingested, SettleOutcome, WEBHOOK_JOB_OPTIONS};
pub use stream::{NODE_SETTLE_SOURCE, StreamCut};
pub use timers::{DeadlineOutcome, TIMERS_QUEUE, TimerJob, TimerKind, TimerSweep};

use crate::domain::payout::{Network, PayoutPolicy, PreimageSecret};
use crate::ports::{JobOptions, Payments, Producer, Queue, Store};

/// Name of the payout queue.
pub const PAYOUT_QUEUE: &str = "payouts";
/// Name of the webhook queue.
pub const WEBHOOK_QUEUE: &str = "webhooks";

/// The application: the ports and the use cases over them. Cheap to clone.
///
/// It holds each queue whole, as the composition root that hands the
/// consumer side to the worker pools ([`crate::runtime::Workers`]) and the
/// admin side to operators; the use cases themselves only produce jobs.
#[derive(Clone)]
pub struct Tontine {
    store: Arc<dyn Store>,
    payments: Arc<dyn Payments>,
    payouts: Arc<dyn Queue>,
    webhooks: Arc<dyn Queue>,
    /// The webhook queue, as ingestion uses it.
    webhook_producer: Arc<dyn Producer>,
    /// How long an issued invoice stays payable.
    invoice_expiry: std::time::Duration,
    /// Options of every payout job (the relay's, the sweep's, a retry's).
    payout_options: JobOptions,
    /// Options of every webhook job (ingestion's, the sweep's, a replay's).
    webhook_options: JobOptions,
    /// Set: concurrent webhook deliveries are written in batches.
    ingest: Option<Arc<ingest::IngestBatcher>>,
    /// The store webhook intake records deliveries in: the store itself
    /// unless set apart ([`Tontine::with_intake_store`]).
    intake: Arc<dyn Store>,
    /// The secret keysend preimages are derived under.
    preimage_secret: PreimageSecret,
    /// The network invoices must be for.
    network: Network,
    /// The fee and time limits of every payout.
    payout_policy: PayoutPolicy,
    /// Set: a webhook's settlement is credited only once the node reports
    /// the invoice settled, for the amount the node says was paid.
    confirm_with_node: bool,
    /// Set: domain events are written to the outbox and published here.
    events: Option<Arc<dyn Queue>>,
    /// Set: a scheduled group's deadlines run as timed jobs here.
    timers: Option<Arc<dyn Queue>>,
    /// The time: the system's, or a test's.
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Tontine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tontine").finish_non_exhaustive()
    }
}

impl Tontine {
    /// Wires the ports together.
    pub fn new(
        store: Arc<dyn Store>,
        payments: Arc<dyn Payments>,
        payouts: Arc<dyn Queue>,
        webhooks: Arc<dyn Queue>,
    ) -> Self {
        let webhook_producer: Arc<dyn Producer> = webhooks.clone();
        Self {
            intake: Arc::clone(&store),
            store,
            payments,
            payouts,
            webhooks,
            webhook_producer,
            invoice_expiry: DEFAULT_INVOICE_EXPIRY,
            payout_options: JobOptions::default(),
            webhook_options: WEBHOOK_JOB_OPTIONS,
            ingest: None,
            preimage_secret: random_secret(),
            network: Network::Regtest,
            payout_policy: PayoutPolicy::default(),
            confirm_with_node: false,
            events: None,
            timers: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// Runs on `clock` instead of the system clock: a test moves time by
    /// hand to run a scheduled group's whole life (its deadlines and
    /// reminders are published with the delay left by this clock, and
    /// judged by it when they fire).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Now, by the application's clock (Unix ms).
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Runs scheduled groups' deadlines as timed jobs on `queue` (named
    /// [`TIMERS_QUEUE`]; a worker pool runs them with
    /// [`crate::runtime::TimerHandler`]). Without it, groups keep their
    /// schedule but no deadline fires.
    #[must_use]
    pub fn with_timers(mut self, queue: Arc<dyn Queue>) -> Self {
        self.timers = Some(queue);
        self
    }

    /// The timers queue, when deadlines run.
    pub fn timers_queue(&self) -> Option<&Arc<dyn Queue>> {
        self.timers.as_ref()
    }

    /// Tells the host what happens ([`DomainEvent`]s: contributions recorded,
    /// cycles completed, payouts paid or dead): each is written to the
    /// outbox with the change it tells of and published on `queue` (named
    /// [`EVENTS_QUEUE`]), whose consumer delivers it
    /// ([`crate::runtime::EventHandler`]). Without it, no event is written.
    #[must_use]
    pub fn with_events(mut self, queue: Arc<dyn Queue>) -> Self {
        self.events = Some(queue);
        self
    }

    /// The events queue, when events are on.
    pub fn events_queue(&self) -> Option<&Arc<dyn Queue>> {
        self.events.as_ref()
    }

    /// Whether domain events are written.
    pub(crate) const fn events_on(&self) -> bool {
        self.events.is_some()
    }

    /// Sets the secret keysend preimages are derived under
    /// (`PAYOUT_PREIMAGE_SECRET`). The default is random per process: fine
    /// for the in-memory default, whose payouts end with the process; any
    /// durable store needs a secret that lives as long as it does, or a
    /// payout in flight across a restart is resent with another preimage.
    #[must_use]
    pub fn with_preimage_secret(mut self, secret: PreimageSecret) -> Self {
        self.preimage_secret = secret;
        self
    }

    /// Sets the network beneficiaries' invoices must be for (default regtest).
    #[must_use]
    pub const fn with_network(mut self, network: Network) -> Self {
        self.network = network;
        self
    }

    /// Sets the fee and time limits of payouts (default [`PayoutPolicy::default`]).
    #[must_use]
    pub const fn with_payout_policy(mut self, policy: PayoutPolicy) -> Self {
        self.payout_policy = policy;
        self
    }

    /// Credits a webhook's settlement only once the node reports the invoice
    /// settled, for the amount the node says was paid (default off).
    #[must_use]
    pub const fn with_confirm_with_node(mut self, on: bool) -> Self {
        self.confirm_with_node = on;
        self
    }

    /// The network invoices must be for.
    pub const fn network(&self) -> Network {
        self.network
    }

    /// Sets the options of payout jobs (default: [`JobOptions::default`], 5
    /// attempts with backoff from 2 s).
    #[must_use]
    pub const fn with_payout_job_options(mut self, options: JobOptions) -> Self {
        self.payout_options = options;
        self
    }

    /// Sets the options of webhook jobs (default: [`WEBHOOK_JOB_OPTIONS`]).
    #[must_use]
    pub const fn with_webhook_job_options(mut self, options: JobOptions) -> Self {
        self.webhook_options = options;
        self
    }

    /// Writes concurrent webhook deliveries together: those that arrive while
    /// one batch is written go in the next, as one
    /// [`WebhookLog::record_webhooks`](crate::ports::WebhookLog::record_webhooks) and one [`Producer::enqueue_bulk`] (group
    /// commit, no timer). Each is still answered once durable. Worth it on
    /// backends with a round trip per call (PostgreSQL + Redis); the
    /// in-memory default does not need it.
    #[must_use]
    pub fn with_batched_ingest(mut self) -> Self {
        self.ingest = Some(Arc::default());
        self
    }

    /// Records webhook deliveries through `intake`, the same store on
    /// connections of its own (e.g. a second PostgreSQL pool), so that reads
    /// and settlements holding every connection of the main one cannot
    /// starve the intake: a provider's delivery is answered while the rest
    /// waits.
    #[must_use]
    pub fn with_intake_store(mut self, intake: Arc<dyn Store>) -> Self {
        self.intake = intake;
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
    /// The Lightning node.
    pub fn payments(&self) -> &Arc<dyn Payments> {
        &self.payments
    }
    /// The payout queue.
    pub fn payout_queue(&self) -> &Arc<dyn Queue> {
        &self.payouts
    }
    /// The webhook queue.
    pub fn webhook_queue(&self) -> &Arc<dyn Queue> {
        &self.webhooks
    }
}

/// 32 random bytes from the OS (two v4 UUIDs: 244 random bits).
fn random_secret() -> PreimageSecret {
    PreimageSecret::new(random_bytes().to_vec()).expect("32 bytes")
}

/// 32 bytes from the operating system's generator, through two version 4
/// UUIDs (244 random bits).
pub(super) fn random_bytes() -> [u8; 32] {
    let mut bytes = [0; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes
}
