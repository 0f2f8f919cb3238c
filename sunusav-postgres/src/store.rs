//! [`PgStore`]: the pool, its connection settings, and the [`Store`] reads
//! that need no unit of work.
//!
//! Every statement runs with `search_path` set to the store's [`Schema`]
//! alone. On a pool sunusav builds ([`PgStore::connect_with`]) each
//! connection sets it for its whole session when it opens. On a host's pool
//! ([`PgStore::from_pool`]) nothing of the session may change, so each unit
//! of work, and each read or write outside one, runs in a transaction that
//! opens with `SET LOCAL search_path` (and sunusav's timeouts), in the same
//! round trip as its `BEGIN`; when it ends the connection is the host's as
//! it was.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Postgres, Transaction};
use sunusav_core::domain::attempt::PaymentAttempt;
use sunusav_core::domain::group::{Group, Invoice};
use sunusav_core::domain::ids::{GroupId, MemberId, PaymentHash};
use sunusav_core::domain::keys::IdempotencyKey;
use sunusav_core::domain::ledger::{Balance, LedgerEntry, LedgerReason};
use sunusav_core::domain::outcome::DeliveryOutcome;
use sunusav_core::domain::payout::PayoutDestination;
use sunusav_core::ports::store::{
    AuditLog, AuditPage, Contribution, DeliveryFilter, DeliveryPage, GroupReads, LedgerPage, NewAuditEntry,
    NodeCursors, Recorded, Store, StoreError, StoreTx, WebhookEvent, WebhookLog, WebhookRecord,
};

use crate::error::map_err;
use crate::groups::{self, Lock};
use crate::schema::Schema;
use crate::tx::PgTx;
use crate::{attempts, audit, contributions, destinations, ledger, webhooks};

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
    /// The schema of sunusav's tables (default `sunusav`); the migrations
    /// must have run in it ([`crate::migrator`]).
    pub schema: Schema,
}

impl Default for PgStoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            lock_timeout: Duration::from_secs(10),
            idle_in_transaction_timeout: Duration::from_mins(1),
            ping_after_idle: Duration::from_secs(1),
            schema: Schema::default(),
        }
    }
}

impl PgStoreOptions {
    /// Pool options with these settings, an `after_connect` that sets the
    /// session's `search_path` (to the schema alone),
    /// `idle_in_transaction_session_timeout` and `lock_timeout`, and a
    /// `before_acquire` that pings connections idle over `ping_after_idle`.
    ///
    /// A pool built from them is sunusav's alone: the host's unqualified
    /// table names would resolve in sunusav's schema on it.
    pub fn pool_options(&self) -> PgPoolOptions {
        let idle_ms = millis(self.idle_in_transaction_timeout);
        let lock_ms = millis(self.lock_timeout);
        let schema = self.schema.quoted();
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
                let schema = schema.clone();
                Box::pin(async move {
                    // A validated schema name and two integers: nothing to inject.
                    let sql = format!(
                        "SET search_path TO {schema}; \
                         SET idle_in_transaction_session_timeout = '{idle_ms}ms'; SET lock_timeout = '{lock_ms}ms'"
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
    schema: Schema,
    /// `None` on sunusav's own pool (the session has the settings); on a
    /// host's pool, the `SET LOCAL` statements each transaction opens with.
    set_local: Option<Arc<str>>,
}

/// A connection for one statement outside a unit of work, on which
/// sunusav's tables resolve: a pooled connection of sunusav's own pool, or a
/// transaction with `SET LOCAL search_path` on a host's.
enum Scoped {
    Session(PoolConnection<Postgres>),
    Local(Transaction<'static, Postgres>),
}

impl Scoped {
    /// Ends the statement's transaction, if any (committing what it wrote),
    /// and returns its result.
    async fn done<T>(self, value: T) -> Result<T, StoreError> {
        if let Self::Local(tx) = self {
            tx.commit().await.map_err(map_err)?;
        }
        Ok(value)
    }
}

impl Deref for Scoped {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        match self {
            Self::Session(c) => c,
            Self::Local(tx) => tx,
        }
    }
}

impl DerefMut for Scoped {
    fn deref_mut(&mut self) -> &mut PgConnection {
        match self {
            Self::Session(c) => c,
            Self::Local(tx) => tx,
        }
    }
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
        Ok(Self {
            pool,
            lock_timeout_ms: millis(options.lock_timeout),
            schema: options.schema.clone(),
            set_local: None,
        })
    }

    /// A store on a host's pool, shared with the host: the pool is used as
    /// it is, and each transaction of sunusav sets `search_path` to
    /// `options.schema` and sunusav's timeouts with `SET LOCAL` (they end with
    /// it). Of `options`, only `schema`, `lock_timeout` and
    /// `idle_in_transaction_timeout` apply; the pool's own settings stay the
    /// host's. Run the migrations first ([`crate::migrator`] with the same
    /// schema).
    ///
    /// ```no_run
    /// use sunusav_postgres::sqlx::PgPool;
    /// use sunusav_postgres::{PgStore, PgStoreOptions, Schema};
    ///
    /// # async fn run(host_pool: PgPool) -> Result<(), Box<dyn std::error::Error>> {
    /// let options = PgStoreOptions { schema: Schema::new("tontine")?, ..PgStoreOptions::default() };
    /// sunusav_postgres::migrator(&options.schema).run(&host_pool).await?;
    /// let store = PgStore::from_pool(host_pool.clone(), &options);
    /// # Ok(()) }
    /// ```
    pub fn from_pool(pool: PgPool, options: &PgStoreOptions) -> Self {
        let set_local = format!(
            "{}; SET LOCAL lock_timeout = '{}ms'; SET LOCAL idle_in_transaction_session_timeout = '{}ms'",
            options.schema.set_local(),
            millis(options.lock_timeout),
            millis(options.idle_in_transaction_timeout)
        );
        Self {
            pool,
            lock_timeout_ms: millis(options.lock_timeout),
            schema: options.schema.clone(),
            set_local: Some(set_local.into()),
        }
    }

    /// [`PgStore::from_pool`] with the default options (schema `sunusav`).
    pub fn new(pool: PgPool) -> Self {
        Self::from_pool(pool, &PgStoreOptions::default())
    }

    /// The pool (for health checks and tests). On a store of
    /// [`PgStore::connect_with`] its connections resolve unqualified names in
    /// the store's schema; on one of [`PgStore::from_pool`] it is the host's.
    pub const fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The schema of the store's tables.
    pub const fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Applies every pending migration in the store's schema.
    ///
    /// # Errors
    /// When the database cannot be reached or a migration fails (it is then rolled back).
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        crate::migrator(&self.schema).run(&self.pool).await
    }

    /// Reverts every applied migration in the store's schema, newest first.
    ///
    /// # Errors
    /// When the database cannot be reached or a down migration fails.
    pub async fn revert(&self) -> Result<(), sqlx::migrate::MigrateError> {
        crate::migrator(&self.schema).undo(&self.pool, 0).await
    }

    /// Begins a unit of work, as the concrete [`PgTx`].
    ///
    /// # Errors
    /// `Unavailable` when no connection is free within the acquire timeout.
    pub async fn begin_pg(&self) -> Result<PgTx, StoreError> {
        let tx = self.begin_with("BEGIN").await?;
        Ok(PgTx::new(tx, self.lock_timeout_ms))
    }

    /// Begins a transaction with `begin`, followed on a host's pool by the
    /// `SET LOCAL` statements, in one round trip.
    async fn begin_with(&self, begin: &'static str) -> Result<Transaction<'static, Postgres>, StoreError> {
        let tx = match &self.set_local {
            None if begin == "BEGIN" => self.pool.begin().await,
            None => self.pool.begin_with(begin).await,
            Some(set) => self.pool.begin_with(AssertSqlSafe(format!("{begin}; {set}"))).await,
        };
        tx.map_err(map_err)
    }

    /// A connection for statements outside a unit of work.
    async fn scoped(&self) -> Result<Scoped, StoreError> {
        if self.set_local.is_some() {
            Ok(Scoped::Local(self.begin_with("BEGIN").await?))
        } else {
            Ok(Scoped::Session(self.pool.acquire().await.map_err(map_err)?))
        }
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
impl AuditLog for PgStore {
    async fn record_audit(&self, entry: &NewAuditEntry) -> Result<u64, StoreError> {
        let mut c = self.scoped().await?;
        let out = audit::record(&mut *c, entry).await?;
        c.done(out).await
    }

    async fn audit_entries(&self, before: Option<u64>, limit: u32) -> Result<AuditPage, StoreError> {
        let mut c = self.scoped().await?;
        let out = audit::entries(&mut *c, before, limit).await?;
        c.done(out).await
    }
}

#[async_trait]
impl NodeCursors for PgStore {
    async fn settle_index(&self, source: &str) -> Result<u64, StoreError> {
        let mut c = self.scoped().await?;
        let out = destinations::settle_index(&mut c, source).await?;
        c.done(out).await
    }

    async fn advance_settle_index(&self, source: &str, index: u64) -> Result<(), StoreError> {
        let mut c = self.scoped().await?;
        destinations::advance(&mut c, source, index).await?;
        c.done(()).await
    }
}

#[async_trait]
impl GroupReads for PgStore {
    async fn payout_destination(&self, member: MemberId) -> Result<Option<PayoutDestination>, StoreError> {
        let mut c = self.scoped().await?;
        let out = destinations::get(&mut c, member).await?;
        c.done(out).await
    }

    async fn group(&self, id: GroupId) -> Result<Option<Group>, StoreError> {
        // One snapshot for the group row and its contributions, no row lock.
        let mut tx = self.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?;
        let group = groups::load(&mut tx, id, Lock::None).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(group)
    }

    async fn scheduled_groups(&self, after: Option<GroupId>, limit: u32) -> Result<Vec<GroupId>, StoreError> {
        let mut c = self.scoped().await?;
        let ids = groups::scheduled(&mut c, after, limit).await?;
        c.done(ids).await
    }

    async fn payment_attempts(&self, group: GroupId) -> Result<Vec<PaymentAttempt>, StoreError> {
        let mut c = self.scoped().await?;
        let out = attempts::of_group(&mut *c, group).await?;
        c.done(out).await
    }

    async fn invoice(&self, hash: &PaymentHash) -> Result<Option<Invoice>, StoreError> {
        let mut c = self.scoped().await?;
        let out = contributions::invoice(&mut *c, hash).await?;
        c.done(out).await
    }

    async fn invoices(&self, hashes: &[PaymentHash]) -> Result<Vec<Invoice>, StoreError> {
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.scoped().await?;
        let out = contributions::invoices(&mut *c, hashes).await?;
        c.done(out).await
    }

    async fn open_invoice(&self, group: GroupId, cycle: u32, member: MemberId) -> Result<Option<Invoice>, StoreError> {
        let mut c = self.scoped().await?;
        let out = contributions::open_invoice(&mut *c, group, cycle, member).await?;
        c.done(out).await
    }

    async fn contributions(&self, group: GroupId) -> Result<Vec<Contribution>, StoreError> {
        let mut c = self.scoped().await?;
        let out = contributions::of_group(&mut *c, group).await?;
        c.done(out).await
    }

    async fn ledger(&self, group: GroupId) -> Result<Vec<LedgerEntry>, StoreError> {
        let mut c = self.scoped().await?;
        let out = ledger::of_group(&mut *c, group).await?;
        c.done(out).await
    }

    async fn unapplied_balances(
        &self,
        after: Option<(GroupId, MemberId)>,
        limit: u32,
    ) -> Result<Vec<Balance>, StoreError> {
        let mut c = self.scoped().await?;
        let out = ledger::unapplied_balances(&mut *c, after, limit).await?;
        c.done(out).await
    }

    async fn ledger_entries(&self, reasons: &[LedgerReason], after: u64, limit: u32) -> Result<LedgerPage, StoreError> {
        let mut c = self.scoped().await?;
        let out = ledger::page(&mut *c, reasons, after, limit).await?;
        c.done(out).await
    }

    async fn payment_attempt(&self, key: &IdempotencyKey) -> Result<Option<PaymentAttempt>, StoreError> {
        let mut c = self.scoped().await?;
        let out = attempts::get(&mut *c, key).await?;
        c.done(out).await
    }

    async fn member_attempts(&self, member: MemberId, limit: u32) -> Result<Vec<PaymentAttempt>, StoreError> {
        let mut c = self.scoped().await?;
        let out = attempts::of_member(&mut *c, member, limit).await?;
        c.done(out).await
    }

    async fn member_invoices(&self, member: MemberId, limit: u32) -> Result<Vec<Invoice>, StoreError> {
        let mut c = self.scoped().await?;
        let out = contributions::of_member(&mut *c, member, limit).await?;
        c.done(out).await
    }

    async fn open_payment_attempts(&self, older_than: Duration, limit: u32) -> Result<Vec<PaymentAttempt>, StoreError> {
        let mut c = self.scoped().await?;
        let out = attempts::open(&mut *c, older_than, limit).await?;
        c.done(out).await
    }
}

#[async_trait]
impl WebhookLog for PgStore {
    async fn record_webhook(&self, event: &WebhookEvent) -> Result<Recorded, StoreError> {
        let mut c = self.scoped().await?;
        let mut recorded = webhooks::record_many(&mut c, std::slice::from_ref(event)).await?;
        let out = recorded.pop().ok_or_else(|| StoreError::Corrupt("no answer for a recorded delivery".into()))?;
        c.done(out).await
    }

    async fn record_webhooks(&self, events: &[WebhookEvent]) -> Result<Vec<Recorded>, StoreError> {
        let mut c = self.scoped().await?;
        let out = webhooks::record_many(&mut c, events).await?;
        c.done(out).await
    }

    async fn webhook(&self, key: &IdempotencyKey) -> Result<Option<WebhookRecord>, StoreError> {
        let mut c = self.scoped().await?;
        let out = webhooks::get(&mut *c, key).await?;
        c.done(out).await
    }

    async fn mark_webhook_processed(&self, key: &IdempotencyKey, outcome: DeliveryOutcome) -> Result<(), StoreError> {
        let mut c = self.scoped().await?;
        webhooks::mark_processed(&mut c, key, outcome).await?;
        c.done(()).await
    }

    async fn mark_webhooks_processed(
        &self,
        outcomes: &[(IdempotencyKey, DeliveryOutcome)],
    ) -> Result<Vec<bool>, StoreError> {
        if outcomes.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.scoped().await?;
        let out = webhooks::mark_many_processed(&mut *c, outcomes).await?;
        c.done(out).await
    }

    async fn mark_webhook_dead(&self, key: &IdempotencyKey, generation: u32) -> Result<bool, StoreError> {
        let mut c = self.scoped().await?;
        let out = webhooks::mark_dead(&mut c, key, generation).await?;
        c.done(out).await
    }

    async fn reopen_webhook(&self, key: &IdempotencyKey, generation: u32) -> Result<Option<u32>, StoreError> {
        let mut c = self.scoped().await?;
        let out = webhooks::reopen(&mut c, key, generation).await?;
        c.done(out).await
    }

    async fn unprocessed_webhooks(&self, older_than: Duration, limit: u32) -> Result<Vec<WebhookRecord>, StoreError> {
        let mut c = self.scoped().await?;
        let out = webhooks::unprocessed(&mut *c, older_than, limit).await?;
        c.done(out).await
    }

    async fn webhook_deliveries(&self, filter: &DeliveryFilter) -> Result<DeliveryPage, StoreError> {
        let mut c = self.scoped().await?;
        let out = webhooks::deliveries(&mut *c, filter).await?;
        c.done(out).await
    }

    async fn drop_webhook_bodies(&self, older_than: Duration, limit: u32) -> Result<u64, StoreError> {
        let mut c = self.scoped().await?;
        let out = webhooks::drop_bodies(&mut *c, older_than, limit).await?;
        c.done(out).await
    }
}
