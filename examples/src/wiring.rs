//! Picks the adapters at run time from the configuration.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use sunusav_core::memory::{MemoryQueue, MemoryStore, SimulatedNode};
use sunusav_core::ports::{Payments, Queue, QueueConfig, SettleEvents, Store};
use sunusav_core::services::{EVENTS_QUEUE, PAYOUT_QUEUE, TIMERS_QUEUE, Tontine, WEBHOOK_QUEUE};
use sunusav_core::webhook::{Secret, Verifier};
use sunusav_postgres::{PgStore, PgStoreOptions, Schema};
use sunusav_redis::{RedisConfig, RedisConnection};

use crate::config::{ServerArgs, WebhookScheme, redis_configured};
use crate::pg_node::PgSimulatedNode;

/// Ids of gone jobs the embedded default's queues keep claimed (its store
/// keeps as many processed webhook records: `MemoryStore::bounded`).
pub const EMBEDDED_RETENTION: usize = 10_000;

/// Which backends the server runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// In-memory store and queue, simulated node: no services at all.
    Embedded,
    /// PostgreSQL and Redis.
    Real,
}

impl Backend {
    /// Chosen from the environment: both `DATABASE_URL` and a Redis setting
    /// select the real backends, neither the embedded default; one alone is an error.
    pub fn from_args(args: &ServerArgs) -> anyhow::Result<Self> {
        match (args.database_url.is_some(), redis_configured()) {
            (true, true) => Ok(Self::Real),
            (false, false) => Ok(Self::Embedded),
            (true, false) => bail!("DATABASE_URL is set but no Redis (REDIS_URL or REDIS_HOST): set both or neither"),
            (false, true) => bail!("a Redis setting is set but no DATABASE_URL: set both or neither"),
        }
    }

    /// A sentence for the first log line.
    pub const fn describe(self) -> &'static str {
        match self {
            Self::Embedded => {
                "the embedded default (in-memory store and queue; simulated Lightning node unless LND is set)"
            }
            Self::Real => "PostgreSQL + Redis (simulated Lightning node state in PostgreSQL unless LND is set)",
        }
    }
}

/// The wired application.
pub struct Wired {
    /// The services.
    pub tontine: Tontine,
    /// The backend.
    pub backend: Backend,
    /// The Redis connection, to close at shutdown.
    pub redis: Option<RedisConnection>,
    /// The node's settle stream, when the server follows it.
    pub settle_events: Option<Arc<dyn SettleEvents>>,
}

/// Connects to PostgreSQL, its tables in `schema`, and applies the migrations.
///
/// # Errors
/// When the database cannot be reached or a migration fails.
pub async fn connect_postgres(url: &str, schema: &Schema) -> anyhow::Result<PgStore> {
    connect_postgres_with(url, schema, PgStoreOptions::default().max_connections).await
}

/// As [`connect_postgres`], with a pool of at most `max_connections`.
///
/// # Errors
/// When the database cannot be reached or a migration fails.
pub async fn connect_postgres_with(url: &str, schema: &Schema, max_connections: u32) -> anyhow::Result<PgStore> {
    let options = PgStoreOptions { schema: schema.clone(), max_connections, ..PgStoreOptions::default() };
    let store = PgStore::connect_with(url, &options).await.context("connecting to PostgreSQL")?;
    store.migrate().await.context("applying migrations")?;
    Ok(store)
}

/// Builds the application on the configured backend.
///
/// # Errors
/// When a backend cannot be reached.
pub async fn wire(args: &ServerArgs, backend: Backend) -> anyhow::Result<Wired> {
    let latency = Duration::from_millis(args.node_latency_ms);
    let expiry = Duration::from_secs(args.invoice_expiry_secs);
    match backend {
        Backend::Embedded => {
            // Memory stays bounded under any load (see `MemoryStore::bounded`):
            // the oldest processed webhook records and the oldest ids of gone
            // jobs are released first (a replay of one is settled again, as a
            // no-op), and new groups are refused past the group limit.
            let memory_store = MemoryStore::bounded();
            let bounded = |name| {
                let q = MemoryQueue::new(name, QueueConfig::default());
                q.set_claim_limit(EMBEDDED_RETENTION);
                Arc::new(q) as Arc<dyn Queue>
            };
            let store: Arc<dyn Store> = Arc::new(memory_store);
            let (node, events) = if let Some(lnd) = lnd_node(args).await? {
                lnd
            } else {
                let sim = SimulatedNode::new().with_latency(latency);
                let events =
                    args.node_settle_stream.unwrap_or(false).then(|| Arc::new(sim.clone()) as Arc<dyn SettleEvents>);
                (Arc::new(sim) as Arc<dyn Payments>, events)
            };
            let (payouts, webhooks) = (bounded(PAYOUT_QUEUE), bounded(WEBHOOK_QUEUE));
            let tontine =
                payout_settings(args, Tontine::new(store, node, payouts, webhooks).with_invoice_expiry(expiry))?;
            let tontine = match args.events_webhook_url {
                Some(_) => tontine.with_events(bounded(EVENTS_QUEUE)),
                None => tontine,
            }
            .with_timers(bounded(TIMERS_QUEUE));
            Ok(Wired { tontine, backend, redis: None, settle_events: events })
        }
        Backend::Real => {
            let url = args.database_url.as_deref().context("DATABASE_URL")?;
            let store = connect_postgres_with(url, &args.database_schema, args.database_max_connections).await?;
            let intake = if args.intake_db_connections > 0 {
                let options = PgStoreOptions {
                    schema: args.database_schema.clone(),
                    max_connections: args.intake_db_connections,
                    ..PgStoreOptions::default()
                };
                Some(PgStore::connect_with(url, &options).await.context("connecting the intake pool to PostgreSQL")?)
            } else {
                None
            };
            let (node, events) = if let Some(lnd) = lnd_node(args).await? {
                lnd
            } else {
                let crash = std::env::var("SIM_NODE_CRASH_AFTER_PAY").is_ok_and(|v| v == "1");
                let sim = PgSimulatedNode::new(store.pool().clone(), latency)
                    .await
                    .context("simulated node tables")?
                    .crash_after_pay(crash);
                let events =
                    args.node_settle_stream.unwrap_or(false).then(|| Arc::new(sim.clone()) as Arc<dyn SettleEvents>);
                (Arc::new(sim) as Arc<dyn Payments>, events)
            };
            let redis_config = RedisConfig::from_lookup(|k| std::env::var(k).ok()).context("Redis configuration")?;
            let redis = RedisConnection::connect(redis_config).await.context("connecting to Redis")?;
            let payouts = redis.queue(PAYOUT_QUEUE, &args.queue_prefix, QueueConfig::default())?;
            let webhooks = redis.queue(WEBHOOK_QUEUE, &args.queue_prefix, QueueConfig::default())?;
            // Concurrent deliveries share one INSERT and one bulk enqueue.
            let tontine = Tontine::new(Arc::new(store), node, Arc::new(payouts), Arc::new(webhooks))
                .with_batched_ingest()
                .with_invoice_expiry(expiry);
            let tontine = match intake {
                Some(intake) => tontine.with_intake_store(Arc::new(intake)),
                None => tontine,
            };
            let tontine = payout_settings(args, tontine)?;
            let tontine = match args.events_webhook_url {
                Some(_) => tontine.with_events(Arc::new(redis.queue(
                    EVENTS_QUEUE,
                    &args.queue_prefix,
                    QueueConfig::default(),
                )?)),
                None => tontine,
            }
            .with_timers(Arc::new(redis.queue(
                TIMERS_QUEUE,
                &args.queue_prefix,
                QueueConfig::default(),
            )?));
            Ok(Wired { tontine, backend, redis: Some(redis), settle_events: events })
        }
    }
}

/// LND, when configured: the node and its settle stream (followed unless
/// `NODE_SETTLE_STREAM=false`). A real node needs `PAYOUT_PREIMAGE_SECRET`.
async fn lnd_node(args: &ServerArgs) -> anyhow::Result<Option<(Arc<dyn Payments>, Option<Arc<dyn SettleEvents>>)>> {
    let Some(config) = args.lnd()? else { return Ok(None) };
    if args.payout_preimage_secret.is_none() {
        bail!("PAYOUT_PREIMAGE_SECRET is required with LND: keysend preimages must outlive a restart");
    }
    let node = sunusav_lnd::LndNode::connect(config).await.context("LND")?;
    let events = args.node_settle_stream.unwrap_or(true).then(|| Arc::new(node.clone()) as Arc<dyn SettleEvents>);
    tracing::info!(url = %args.lnd_rest_url.as_deref().unwrap_or_default(), "payouts go through LND");
    Ok(Some((Arc::new(node), events)))
}

/// Applies the payout settings: the preimage secret, network, fee and time
/// limits, and confirm-with-node.
fn payout_settings(args: &ServerArgs, tontine: Tontine) -> anyhow::Result<Tontine> {
    let tontine = tontine
        .with_network(args.lightning_network)
        .with_payout_policy(args.payout_policy()?)
        .with_confirm_with_node(args.confirm_with_node);
    if let Some(secret) = args.preimage_secret()? {
        return Ok(tontine.with_preimage_secret(secret));
    }
    tracing::warn!(
        "PAYOUT_PREIMAGE_SECRET is not set: keysend preimages use a random secret of this process; \
         a keysend payout retried after a restart is refused by the receiver (set it on any durable deployment)"
    );
    Ok(tontine)
}

/// The webhook verifier from the configured secrets and scheme, reading the
/// signature from `header` when one is given (`WEBHOOK_SIGNATURE_HEADER`),
/// else from the scheme's default header.
///
/// # Errors
/// A secret that is too short, or an unknown scheme.
pub fn verifier(
    scheme: WebhookScheme,
    secret: &str,
    previous: Option<&str>,
    header: Option<&http::HeaderName>,
) -> anyhow::Result<Verifier> {
    let verifier = verifier_for_scheme(scheme, secret, previous)?;
    Ok(match header {
        Some(name) => verifier.with_header(name.as_str()),
        None => verifier,
    })
}

fn verifier_for_scheme(scheme: WebhookScheme, secret: &str, previous: Option<&str>) -> anyhow::Result<Verifier> {
    let all = std::iter::once(secret).chain(previous.into_iter().flat_map(|p| p.split(',')).map(str::trim));
    let all = all.filter(|s| !s.is_empty());
    match scheme {
        WebhookScheme::Sha256 => {
            let secrets = all.map(Secret::from_text).collect::<Result<Vec<_>, _>>().context("WEBHOOK_HMAC_SECRET")?;
            Ok(Verifier::hex_sha256(secrets)?)
        }
        WebhookScheme::Standard => {
            let secrets = all
                .map(Secret::from_standard_webhooks)
                .collect::<Result<Vec<_>, _>>()
                .context("WEBHOOK_HMAC_SECRET (whsec_<base64> or <base64>)")?;
            Ok(Verifier::standard_webhooks(secrets)?)
        }
    }
}
