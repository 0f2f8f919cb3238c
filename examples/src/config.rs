//! The server's configuration: the original's environment variables, plus flags.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};

/// `sunusav-server`: the example server.
#[derive(Parser)]
#[command(name = "sunusav-server", about = "The sunusav example server", version)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Server settings.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Subcommands.
#[derive(Subcommand, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply or revert the database migrations (needs `DATABASE_URL`).
    Migrate {
        /// run or revert.
        #[command(subcommand)]
        action: MigrateAction,
    },
}

/// Migration actions (the original's `npm run migrate` / `migrate:rollback`).
#[derive(Subcommand, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Run,
    /// Revert every applied migration.
    Revert,
}

/// Settings of the server. Secrets are read from the environment and never printed.
#[derive(Args, Clone)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long = "bind", env = "BIND_ADDR", default_value = "127.0.0.1:3000")]
    pub bind: SocketAddr,
    /// PostgreSQL URL; with a Redis setting, selects the real backends.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// PostgreSQL schema of sunusav's tables and migrations table (`public`
    /// for a deployment made before schemas, until it moves).
    #[arg(long, env = "DATABASE_SCHEMA", default_value = sunusav_postgres::schema::DEFAULT_SCHEMA)]
    pub database_schema: sunusav_postgres::Schema,
    /// The webhook HMAC secret (at least 16 bytes).
    #[arg(long, env = "WEBHOOK_HMAC_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// Earlier secrets still accepted during a rotation, comma-separated.
    #[arg(long, env = "WEBHOOK_HMAC_PREVIOUS_SECRETS", hide_env_values = true)]
    pub webhook_previous_secrets: Option<String>,
    /// Signature scheme: `sha256` (`x-sunu-signature: sha256=<hex>`) or
    /// `standard` (Standard Webhooks; secrets are `whsec_<base64>`).
    #[arg(long, env = "WEBHOOK_SCHEME", value_enum, default_value = "sha256")]
    pub webhook_scheme: WebhookScheme,
    /// Payout workers.
    #[arg(long, env = "PAYOUT_WORKER_CONCURRENCY", default_value_t = 2)]
    pub payout_concurrency: usize,
    /// Webhook workers.
    #[arg(long, env = "WEBHOOK_WORKER_CONCURRENCY", default_value_t = 5)]
    pub webhook_concurrency: usize,
    /// Webhook jobs reserved ahead of the webhook workers (0: none).
    #[arg(long, env = "WEBHOOK_PREFETCH", default_value_t = 0)]
    pub webhook_prefetch: usize,
    /// Most webhook jobs a worker settles together (1: one at a time).
    #[arg(long, env = "WEBHOOK_BATCH", default_value_t = 16, value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u16).range(1..=1000), usize::from))]
    pub webhook_batch: usize,
    /// Milliseconds a webhook worker woken on an idle queue waits for more
    /// jobs to settle with the first (0: none).
    #[arg(long, env = "WEBHOOK_LINGER_MS", default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=1000))]
    pub webhook_linger_ms: u64,
    /// Bearer token of the admin routes (off when unset).
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Largest webhook body accepted, in bytes.
    #[arg(long, env = "WEBHOOK_BODY_LIMIT", default_value_t = 256 * 1024)]
    pub body_limit: usize,
    /// Prefix of every Redis key.
    #[arg(long, env = "QUEUE_PREFIX", default_value = "sunusav")]
    pub queue_prefix: String,
    /// Seconds that running jobs get to finish at shutdown.
    #[arg(long, env = "SHUTDOWN_DEADLINE_SECS", default_value_t = 10)]
    pub shutdown_deadline_secs: u64,
    /// Lease of a reserved job, in milliseconds (a dead worker's jobs return after it).
    #[arg(long, env = "JOB_LEASE_MS", default_value_t = 30_000)]
    pub lease_ms: u64,
    /// How often expired leases are recovered, in milliseconds.
    #[arg(long, env = "STALLED_INTERVAL_MS", default_value_t = 5_000)]
    pub stalled_interval_ms: u64,
    /// How often the sweep queues again the work whose job a queue lost, in
    /// milliseconds.
    #[arg(long, env = "SWEEP_INTERVAL_MS", default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(50..=86_400_000))]
    pub sweep_interval_ms: u64,
    /// How long such work waits untouched before the sweep queues it again, in
    /// milliseconds.
    #[arg(long, env = "SWEEP_AFTER_MS", default_value_t = 120_000, value_parser = clap::value_parser!(u64).range(100..=86_400_000))]
    pub sweep_after_ms: u64,
    /// How long an issued invoice stays payable, in seconds (1 s to 30 days);
    /// asking again for a member's invoice returns the open one until then.
    #[arg(long, env = "INVOICE_EXPIRY_SECS", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..=2_592_000))]
    pub invoice_expiry_secs: u64,
    /// Simulated node latency per call, in milliseconds.
    #[arg(long, env = "SIM_NODE_LATENCY_MS", default_value_t = 0)]
    pub node_latency_ms: u64,
}

impl std::fmt::Debug for ServerArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerArgs")
            .field("bind", &self.bind)
            .field("database_url", &self.database_url.as_ref().map(|_| "<redacted>"))
            .field("database_schema", &self.database_schema)
            .field("webhook_secret", &self.webhook_secret.as_ref().map(|_| "<redacted>"))
            .field("webhook_scheme", &self.webhook_scheme)
            .field("payout_concurrency", &self.payout_concurrency)
            .field("webhook_concurrency", &self.webhook_concurrency)
            .field("webhook_prefetch", &self.webhook_prefetch)
            .field("webhook_batch", &self.webhook_batch)
            .field("webhook_linger_ms", &self.webhook_linger_ms)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// Whether the environment names a Redis server.
pub fn redis_configured() -> bool {
    ["REDIS_URL", "REDIS_HOST", "REDIS_CLUSTER_NODES"]
        .iter()
        .any(|k| std::env::var(k).is_ok_and(|v| !v.trim().is_empty()))
}

/// The signature scheme of incoming webhooks (`WEBHOOK_SCHEME`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum WebhookScheme {
    /// `x-sunu-signature: sha256=<hex>` of HMAC-SHA256 over the body (the original's).
    Sha256,
    /// Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
    Standard,
}
