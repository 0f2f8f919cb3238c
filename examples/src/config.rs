//! The server's configuration: the original's environment variables, plus flags.

use anyhow::Context as _;

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
    /// Address of an internal listener for the ops routes (`/health…`,
    /// `/metrics`), which then leave the main one; unset, they stay on it.
    #[arg(long = "ops-bind", env = "OPS_BIND_ADDR")]
    pub ops_bind: Option<SocketAddr>,
    /// PostgreSQL URL; with a Redis setting, selects the real backends.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// PostgreSQL schema of sunusav's tables and migrations table (`public`
    /// for a deployment made before schemas, until it moves).
    #[arg(long, env = "DATABASE_SCHEMA", default_value = sunusav_postgres::schema::DEFAULT_SCHEMA)]
    pub database_schema: sunusav_postgres::Schema,
    /// Most PostgreSQL connections of the main pool (reads, settlements, payouts).
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub database_max_connections: u32,
    /// PostgreSQL connections kept for webhook intake alone (0: intake shares
    /// the main pool), so that a busy main pool cannot starve it.
    #[arg(long, env = "INTAKE_DB_CONNECTIONS", default_value_t = 4, value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub intake_db_connections: u32,
    /// The webhook HMAC secret (at least 16 bytes).
    #[arg(long, env = "WEBHOOK_HMAC_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// Earlier secrets still accepted during a rotation, comma-separated.
    #[arg(long, env = "WEBHOOK_HMAC_PREVIOUS_SECRETS", hide_env_values = true)]
    pub webhook_previous_secrets: Option<String>,
    /// Signature scheme: `sha256` (`x-sunu-signature: sha256=<hex>`) or
    /// `standard` (Standard Webhooks; secrets are `whsec_<base64>` or the bare base64).
    #[arg(long, env = "WEBHOOK_SCHEME", value_enum, default_value = "sha256")]
    pub webhook_scheme: WebhookScheme,
    /// The header the signature is read from, instead of the scheme's default
    /// (`x-sunu-signature`, or `webhook-signature` for Standard Webhooks): e.g.
    /// `BTCPay-Sig` for BTCPay Server, `X-Hub-Signature-256` for GitHub.
    #[arg(long, env = "WEBHOOK_SIGNATURE_HEADER")]
    pub webhook_signature_header: Option<http::HeaderName>,
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
    /// Bearer token of the read-only operator role of the console at
    /// `/admin/console` (the admin token opens it with the actions).
    #[arg(long, env = "OPERATOR_TOKEN", hide_env_values = true)]
    pub operator_token: Option<String>,
    /// Secret the member tokens of the group API are signed with (at least
    /// 32 bytes); derived from `ADMIN_TOKEN` when unset, so that changing
    /// either revokes every member token.
    #[arg(long, env = "MEMBER_TOKEN_SECRET", hide_env_values = true)]
    pub member_token_secret: Option<String>,
    /// How long a member token is valid, in seconds (1 minute to 1 year).
    #[arg(long, env = "MEMBER_TOKEN_TTL_SECS", default_value_t = 30 * 24 * 3600, value_parser = clap::value_parser!(u64).range(60..=366 * 24 * 3600))]
    pub member_token_ttl_secs: u64,
    /// Largest webhook body accepted, in bytes (1 KiB to 10 MiB).
    #[arg(long, env = "WEBHOOK_BODY_LIMIT", default_value_t = 256 * 1024, value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u32).range(1024..=10 * 1024 * 1024), |v| usize::try_from(v).unwrap_or(usize::MAX)))]
    pub body_limit: usize,
    /// How long a client gets to send a request's headers, on a new or an
    /// idle keep-alive connection, in milliseconds (the connection is closed
    /// after it).
    #[arg(long, env = "HEADER_READ_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub header_read_timeout_ms: u64,
    /// How long a request, its body included, gets to be answered, in
    /// milliseconds (408 `request_timeout` after it).
    #[arg(long, env = "REQUEST_TIMEOUT_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    pub request_timeout_ms: u64,
    /// Most requests served at once; more wait for a slot (within their
    /// request timeout).
    #[arg(long, env = "MAX_CONCURRENT_REQUESTS", default_value_t = 1024, value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u32).range(1..=100_000), |v| usize::try_from(v).unwrap_or(usize::MAX)))]
    pub max_concurrent_requests: usize,
    /// Prefix of every Redis key.
    #[arg(long, env = "QUEUE_PREFIX", default_value = "sunusav")]
    pub queue_prefix: String,
    /// Seconds from SIGINT/SIGTERM to exit, whatever the clients do: open
    /// requests get up to half of it, then running jobs the rest.
    #[arg(long, env = "SHUTDOWN_DEADLINE_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
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
    /// Days the raw bodies of processed webhook deliveries are kept (0: for
    /// ever, otherwise 1 to 3650); past it a background task drops them. The
    /// delivery records and their outcomes stay; dead and unprocessed
    /// deliveries keep their bodies.
    #[arg(long, env = "WEBHOOK_RETENTION_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=3650))]
    pub webhook_retention_days: u64,
    /// Simulated node latency per call, in milliseconds.
    #[arg(long, env = "SIM_NODE_LATENCY_MS", default_value_t = 0)]
    pub node_latency_ms: u64,
    /// The secret keysend preimages are derived under (at least 32 bytes);
    /// required with a real node. Without it, a random one per process.
    #[arg(long, env = "PAYOUT_PREIMAGE_SECRET", hide_env_values = true)]
    pub payout_preimage_secret: Option<String>,
    /// The Lightning network beneficiaries' invoices must be for.
    #[arg(long, env = "LIGHTNING_NETWORK", default_value = "regtest")]
    pub lightning_network: sunusav_core::domain::payout::Network,
    /// The routing fee limit of a payout, in basis points of its amount.
    #[arg(long, env = "PAYOUT_FEE_LIMIT_BPS", default_value_t = 100, value_parser = clap::value_parser!(u16).range(0..=10_000))]
    pub payout_fee_limit_bps: u16,
    /// The least routing fee limit of a payout, in msat (never 0: LND reads 0
    /// as "zero-fee routes only").
    #[arg(long, env = "PAYOUT_FEE_LIMIT_MIN_MSAT", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub payout_fee_limit_min_msat: u64,
    /// How long the node may try to pay, in seconds.
    #[arg(long, env = "PAYOUT_TIMEOUT_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub payout_timeout_secs: u64,
    /// Credit a webhook's settlement only once the node reports the invoice
    /// settled, for the amount the node says was paid.
    #[arg(long, env = "CONFIRM_WITH_NODE", default_value_t = false, action = clap::ArgAction::Set)]
    pub confirm_with_node: bool,
    /// LND's REST address (`https://host:8080`): with the macaroon and the
    /// certificate, payouts go through this LND instead of the simulated node.
    #[arg(long, env = "LND_REST_URL")]
    pub lnd_rest_url: Option<String>,
    /// The macaroon file LND's REST calls are authorised with.
    #[arg(long, env = "LND_MACAROON_PATH")]
    pub lnd_macaroon_path: Option<std::path::PathBuf>,
    /// LND's `tls.cert`: the only certificate trusted for it.
    #[arg(long, env = "LND_TLS_CERT_PATH")]
    pub lnd_tls_cert_path: Option<std::path::PathBuf>,
    /// Requests a second each client may make to the group API (0: no limit).
    #[arg(long, env = "RATE_LIMIT_PER_SECOND", default_value_t = 200)]
    pub rate_limit_per_second: u32,
    /// Requests a client may make to the group API at once, in a burst.
    #[arg(long, env = "RATE_LIMIT_BURST", default_value_t = 400, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_burst: u32,
    /// Take the client's address from `x-forwarded-for`/`x-real-ip`/`forwarded`
    /// (only behind a proxy that sets them).
    #[arg(long, env = "RATE_LIMIT_BEHIND_PROXY", default_value_t = false, action = clap::ArgAction::Set)]
    pub rate_limit_behind_proxy: bool,
    /// Follow the node's stream of settled invoices (on by default with LND).
    #[arg(long, env = "NODE_SETTLE_STREAM", action = clap::ArgAction::Set)]
    pub node_settle_stream: Option<bool>,
    /// Where domain events are delivered, as Standard Webhooks (`http://…`;
    /// off when unset).
    #[arg(long, env = "EVENTS_WEBHOOK_URL")]
    pub events_webhook_url: Option<String>,
    /// The Standard Webhooks secret events are signed with (`whsec_<base64>`,
    /// or the base64 alone); required with `EVENTS_WEBHOOK_URL`.
    #[arg(long, env = "EVENTS_WEBHOOK_SECRET", hide_env_values = true)]
    pub events_webhook_secret: Option<String>,
    /// Event delivery workers.
    #[arg(long, env = "EVENTS_CONCURRENCY", default_value_t = 2, value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u16).range(1..=256), usize::from))]
    pub events_concurrency: usize,
}

impl std::fmt::Debug for ServerArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerArgs")
            .field("bind", &self.bind)
            .field("ops_bind", &self.ops_bind)
            .field("database_url", &self.database_url.as_ref().map(|_| "<redacted>"))
            .field("database_schema", &self.database_schema)
            .field("webhook_secret", &self.webhook_secret.as_ref().map(|_| "<redacted>"))
            .field("webhook_scheme", &self.webhook_scheme)
            .field("webhook_signature_header", &self.webhook_signature_header)
            .field("payout_concurrency", &self.payout_concurrency)
            .field("webhook_concurrency", &self.webhook_concurrency)
            .field("webhook_prefetch", &self.webhook_prefetch)
            .field("webhook_batch", &self.webhook_batch)
            .field("webhook_linger_ms", &self.webhook_linger_ms)
            .field("webhook_retention_days", &self.webhook_retention_days)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<redacted>"))
            .field("operator_token", &self.operator_token.as_ref().map(|_| "<redacted>"))
            .field("member_token_secret", &self.member_token_secret.as_ref().map(|_| "<redacted>"))
            .field("events_webhook_url", &self.events_webhook_url)
            .field("events_webhook_secret", &self.events_webhook_secret.as_ref().map(|_| "<redacted>"))
            .field("payout_preimage_secret", &self.payout_preimage_secret.as_ref().map(|_| "<redacted>"))
            .field("lightning_network", &self.lightning_network)
            .field("confirm_with_node", &self.confirm_with_node)
            .field("lnd_rest_url", &self.lnd_rest_url)
            .finish_non_exhaustive()
    }
}

impl ServerArgs {
    /// The group API's per-client rate limit (`None` when turned off).
    ///
    /// # Errors
    /// Never for values the flags accept; kept for the builder's contract.
    pub fn rate_limit(&self) -> anyhow::Result<Option<sunusav_axum::rate_limit::RateLimit>> {
        if self.rate_limit_per_second == 0 {
            return Ok(None);
        }
        let limit = sunusav_axum::rate_limit::RateLimit::new(self.rate_limit_per_second, self.rate_limit_burst)?;
        Ok(Some(if self.rate_limit_behind_proxy { limit.behind_proxy() } else { limit }))
    }

    /// The LND settings, when all three are set.
    ///
    /// # Errors
    /// When some but not all of them are set.
    /// The events subscriber, when `EVENTS_WEBHOOK_URL` is set.
    ///
    /// # Errors
    /// A URL without a secret (or the reverse), a bad URL or secret.
    pub fn events_subscriber(&self) -> anyhow::Result<Option<crate::events::HttpSubscriber>> {
        match (&self.events_webhook_url, &self.events_webhook_secret) {
            (Some(url), Some(secret)) => {
                let secret = sunusav_core::webhook::Secret::from_standard_webhooks(secret)
                    .map_err(|e| anyhow::anyhow!("EVENTS_WEBHOOK_SECRET: {e}"))?;
                Ok(Some(crate::events::HttpSubscriber::new(url, secret)?))
            }
            (None, None) => Ok(None),
            (Some(_), None) => anyhow::bail!("EVENTS_WEBHOOK_SECRET is required with EVENTS_WEBHOOK_URL"),
            (None, Some(_)) => anyhow::bail!("EVENTS_WEBHOOK_SECRET is set without EVENTS_WEBHOOK_URL"),
        }
    }

    /// LND, when `LND_REST_URL`, `LND_MACAROON_PATH` and `LND_TLS_CERT_PATH` are set.
    pub fn lnd(&self) -> anyhow::Result<Option<sunusav_lnd::LndConfig>> {
        match (&self.lnd_rest_url, &self.lnd_macaroon_path, &self.lnd_tls_cert_path) {
            (Some(url), Some(macaroon), Some(cert)) => {
                Ok(Some(sunusav_lnd::LndConfig::new(url.as_str(), macaroon.as_path(), cert.as_path())))
            }
            (None, None, None) => Ok(None),
            _ => anyhow::bail!(
                "LND_REST_URL, LND_MACAROON_PATH and LND_TLS_CERT_PATH go together: set all three or none"
            ),
        }
    }

    /// The payout policy from the fee and time settings.
    ///
    /// # Errors
    /// A setting out of bounds.
    pub fn payout_policy(&self) -> anyhow::Result<sunusav_core::domain::payout::PayoutPolicy> {
        Ok(sunusav_core::domain::payout::PayoutPolicy::new(
            self.payout_fee_limit_bps,
            sunusav_core::Msat::new(self.payout_fee_limit_min_msat),
            std::time::Duration::from_secs(self.payout_timeout_secs),
        )?)
    }

    /// The keysend preimage secret, when one is set.
    ///
    /// # Errors
    /// A secret shorter than 32 bytes.
    pub fn preimage_secret(&self) -> anyhow::Result<Option<sunusav_core::domain::payout::PreimageSecret>> {
        self.payout_preimage_secret
            .as_deref()
            .map(|s| sunusav_core::domain::payout::PreimageSecret::new(s.as_bytes()).map_err(anyhow::Error::msg))
            .transpose()
            .context("PAYOUT_PREIMAGE_SECRET")
    }

    /// How long processed webhook bodies are kept (`None`: for ever).
    pub fn webhook_retention(&self) -> Option<std::time::Duration> {
        (self.webhook_retention_days > 0).then(|| std::time::Duration::from_hours(24 * self.webhook_retention_days))
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

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::Cli;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("sunusav-server").chain(args.iter().copied()))
    }

    #[test]
    fn http_limits_out_of_their_ranges_are_refused() {
        let cases: &[(&[&str], bool)] = &[
            (&["--body-limit", "1023"], false),
            (&["--body-limit", "1024"], true),
            (&["--body-limit", "10485760"], true),
            (&["--body-limit", "10485761"], false),
            (&["--header-read-timeout-ms", "99"], false),
            (&["--header-read-timeout-ms", "100"], true),
            (&["--request-timeout-ms", "3600001"], false),
            (&["--max-concurrent-requests", "0"], false),
            (&["--max-concurrent-requests", "1"], true),
            (&["--shutdown-deadline-secs", "0"], false),
            (&["--shutdown-deadline-secs", "3600"], true),
            (&["--webhook-signature-header", "BTCPay-Sig"], true),
            (&["--webhook-signature-header", "not a header"], false),
        ];
        for (args, ok) in cases {
            assert_eq!(parse(args).is_ok(), *ok, "{args:?}");
        }
        let cli = parse(&["--body-limit", "2048", "--webhook-signature-header", "BTCPay-Sig"]).unwrap();
        assert_eq!(cli.server.body_limit, 2048);
        assert_eq!(cli.server.webhook_signature_header.unwrap().as_str(), "btcpay-sig");
    }

    fn retention(days: &str) -> Result<Option<std::time::Duration>, clap::Error> {
        Cli::try_parse_from(["sunusav-server", "--webhook-retention-days", days]).map(|c| c.server.webhook_retention())
    }

    #[test]
    fn webhook_retention_is_days_within_a_range_and_zero_keeps_bodies_for_ever() {
        assert_eq!(retention("0").unwrap(), None);
        assert_eq!(retention("7").unwrap(), Some(std::time::Duration::from_hours(7 * 24)));
        assert_eq!(retention("3650").unwrap(), Some(std::time::Duration::from_hours(3650 * 24)));
        assert!(retention("3651").is_err());
        assert!(retention("-1").is_err());
        assert_eq!(
            Cli::try_parse_from(["sunusav-server"]).unwrap().server.webhook_retention_days,
            30,
            "the default (unless WEBHOOK_RETENTION_DAYS is set)"
        );
    }
}
