//! [`PgStore`]: the pool, its connection settings, and the [`Store`] reads
//! that need no unit of work.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sunusav_core::domain::attempt::PaymentAttempt;
use sunusav_core::domain::group::{Group, Invoice};
use sunusav_core::domain::ids::{GroupId, MemberId, PaymentHash};
use sunusav_core::domain::keys::IdempotencyKey;
use sunusav_core::domain::ledger::{Balance, LedgerEntry, LedgerReason};
use sunusav_core::domain::outcome::DeliveryOutcome;
use sunusav_core::ports::store::{
    Contribution, DeliveryFilter, DeliveryPage, GroupReads, LedgerPage, Recorded, Store, StoreError, StoreTx,
    WebhookEvent, WebhookLog, WebhookRecord,
};

use crate::error::map_err;
use crate::groups::{self, Lock};
use crate::tx::PgTx;
use crate::{attempts, contributions, ledger, webhooks};

/// Settings of the pool and of every connection in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgStoreOptions {
    /// Most connections open at once.
    pub max_connections: u32,
    /// How long `begin` waits for a free connection before `Unavailable`.
    ///
    /// This is the only timer around `begin`: racing `Pool::begin()` against an
    /// outside timeout can hand back a connection still inside a transaction.
    pub acquire_timeout: Duration,
    /// How long a transaction waits for a lock (the group's advisory lock, a
    /// row lock) before `LockTimeout`.
    pub lock_timeout: Duration,
    /// A session idle inside an open transaction this long is ended by the server
    /// (its locks are released), so a stuck task cannot hold a group forever.
    pub idle_in_transaction_timeout: Duration,
    /// A pooled connection idle at least this long is pinged before it is
    /// handed out (and replaced if the ping fails). One used more recently is
    /// not: sqlx already pings every connection when it returns to the pool,
    /// so a ping at each checkout would only add a round trip per statement.
    /// A connection that broke in between fails its statement, which is
    /// retryable; the caller retries or answers 503.
    pub ping_after_idle: Duration,
}

impl Default for PgStoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            lock_timeout: Duration::from_secs(10),
            idle_in_transaction_timeout: Duration::from_mins(1),
            ping_after_idle: Duration::from_secs(1),
        }
    }
}

impl PgStoreOptions {
    /// Pool options with these settings, an `after_connect` that sets the
    /// session's `idle_in_transaction_session_timeout` and `lock_timeout`, and
    /// a `before_acquire` that pings connections idle over `ping_after_idle`.
    pub fn pool_options(&self) -> PgPoolOptions {
        let idle_ms = millis(self.idle_in_transaction_timeout);
        let lock_ms = millis(self.lock_timeout);
        let ping_after = self.ping_after_idle;
        PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= ping_after {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    let sql = format!(
                        "SET idle_in_transaction_session_timeout = '{idle_ms}ms'; SET lock_timeout = '{lock_ms}ms'"
                    );
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(conn).await?;
                    Ok(())
                })
            })
    }
}

/// Whole milliseconds, saturating (a setting, not an amount).
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The PostgreSQL store. Clones share the pool.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    lock_timeout_ms: u64,
}

impl PgStore {
    /// Connects with the default [`PgStoreOptions`].
    ///
    /// # Errors
    /// `Invalid` for a malformed URL, `Unavailable` when the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, &PgStoreOptions::default()).await
    }

    /// Connects with `options`.
    ///
    /// # Errors
    /// `Invalid` for a malformed URL, `Unavailable` when the server cannot be reached.
    pub async fn connect_with(url: &str, options: &PgStoreOptions) -> Result<Self, StoreError> {
        let pool = options.pool_options().connect(url).await.map_err(map_err)?;
        Ok(Self { pool, lock_timeout_ms: millis(options.lock_timeout) })
    }

    /// Wraps an existing pool (build it with [`PgStoreOptions::pool_options`] to
    /// get the session settings). The lock timeout is the default's, 10 s.
    pub fn new(pool: PgPool) -> Self {
        Self { pool, lock_timeout_ms: millis(PgStoreOptions::default().lock_timeout) }
    }

    /// The pool (for migrations, health checks and tests).
    pub const fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Begins a unit of work, as the concrete [`PgTx`].
    ///
    /// # Errors
    /// `Unavailable` when no connection is free within the acquire timeout.
    pub async fn begin_pg(&self) -> Result<PgTx, StoreError> {
        let tx = self.pool.begin().await.map_err(map_err)?;
        Ok(PgTx::new(tx, self.lock_timeout_ms))
    }
}

#[async_trait]
impl Store for PgStore {
    async fn begin(&self) -> Result<Box<dyn StoreTx>, StoreError> {
        Ok(Box::new(self.begin_pg().await?))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_err)?;
        Ok(())
    }
}

#[async_trait]
impl GroupReads for PgStore {
    async fn group(&self, id: GroupId) -> Result<Option<Group>, StoreError> {
        // One snapshot for the group row and its contributions, no row lock.
        let mut tx = self.pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await.map_err(map_err)?;
        let group = groups::load(&mut tx, id, Lock::None).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(group)
    }

    async fn payment_attempts(&self, group: GroupId) -> Result<Vec<PaymentAttempt>, StoreError> {
        attempts::of_group(&self.pool, group).await
    }

    async fn invoice(&self, hash: &PaymentHash) -> Result<Option<Invoice>, StoreError> {
        contributions::invoice(&self.pool, hash).await
    }

    async fn invoices(&self, hashes: &[PaymentHash]) -> Result<Vec<Invoice>, StoreError> {
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        contributions::invoices(&self.pool, hashes).await
    }

    async fn open_invoice(&self, group: GroupId, cycle: u32, member: MemberId) -> Result<Option<Invoice>, StoreError> {
        contributions::open_invoice(&self.pool, group, cycle, member).await
    }

    async fn contributions(&self, group: GroupId) -> Result<Vec<Contribution>, StoreError> {
        contributions::of_group(&self.pool, group).await
    }

    async fn ledger(&self, group: GroupId) -> Result<Vec<LedgerEntry>, StoreError> {
        ledger::of_group(&self.pool, group).await
    }

    async fn unapplied_balances(&self, limit: u32) -> Result<Vec<Balance>, StoreError> {
        ledger::unapplied_balances(&self.pool, limit).await
    }

    async fn ledger_entries(&self, reasons: &[LedgerReason], after: u64, limit: u32) -> Result<LedgerPage, StoreError> {
        ledger::page(&self.pool, reasons, after, limit).await
    }

    async fn payment_attempt(&self, key: &IdempotencyKey) -> Result<Option<PaymentAttempt>, StoreError> {
        attempts::get(&self.pool, key).await
    }

    async fn open_payment_attempts(&self, older_than: Duration, limit: u32) -> Result<Vec<PaymentAttempt>, StoreError> {
        attempts::open(&self.pool, older_than, limit).await
    }
}

#[async_trait]
impl WebhookLog for PgStore {
    async fn record_webhook(&self, event: &WebhookEvent) -> Result<Recorded, StoreError> {
        let mut recorded = webhooks::record_many(&self.pool, std::slice::from_ref(event)).await?;
        recorded.pop().ok_or_else(|| StoreError::Corrupt("no answer for a recorded delivery".into()))
    }

    async fn record_webhooks(&self, events: &[WebhookEvent]) -> Result<Vec<Recorded>, StoreError> {
        webhooks::record_many(&self.pool, events).await
    }

    async fn webhook(&self, key: &IdempotencyKey) -> Result<Option<WebhookRecord>, StoreError> {
        webhooks::get(&self.pool, key).await
    }

    async fn mark_webhook_processed(&self, key: &IdempotencyKey, outcome: DeliveryOutcome) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        webhooks::mark_processed(&mut conn, key, outcome).await
    }

    async fn mark_webhooks_processed(
        &self,
        outcomes: &[(IdempotencyKey, DeliveryOutcome)],
    ) -> Result<Vec<bool>, StoreError> {
        if outcomes.is_empty() {
            return Ok(Vec::new());
        }
        webhooks::mark_many_processed(&self.pool, outcomes).await
    }

    async fn mark_webhook_dead(&self, key: &IdempotencyKey, generation: u32) -> Result<bool, StoreError> {
        webhooks::mark_dead(&self.pool, key, generation).await
    }

    async fn reopen_webhook(&self, key: &IdempotencyKey, generation: u32) -> Result<Option<u32>, StoreError> {
        webhooks::reopen(&self.pool, key, generation).await
    }

    async fn unprocessed_webhooks(&self, older_than: Duration, limit: u32) -> Result<Vec<WebhookRecord>, StoreError> {
        webhooks::unprocessed(&self.pool, older_than, limit).await
    }

    async fn webhook_deliveries(&self, filter: &DeliveryFilter) -> Result<DeliveryPage, StoreError> {
        webhooks::deliveries(&self.pool, filter).await
    }

    async fn drop_webhook_bodies(&self, older_than: Duration, limit: u32) -> Result<u64, StoreError> {
        webhooks::drop_bodies(&self.pool, older_than, limit).await
    }
}
