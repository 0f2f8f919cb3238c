//! [`PgTx`]: one unit of work on one pooled connection.

use async_trait::async_trait;
use sqlx::{Postgres, Transaction};
use sunusav_core::domain::attempt::PaymentAttempt;
use sunusav_core::domain::group::{Group, Invoice, InvoiceState};
use sunusav_core::domain::ids::{GroupId, MemberId, PaymentHash};
use sunusav_core::domain::keys::{IdempotencyKey, LockKey};
use sunusav_core::domain::ledger::LedgerEntry;
use sunusav_core::domain::outcome::DeliveryOutcome;
use sunusav_core::domain::payout::{Bolt11, PayoutDestination};
use sunusav_core::ports::store::{
    AttemptTx, Contribution, DestinationTx, GroupTx, LedgerTx, OutboxMessage, OutboxTx, StoreError, StoreTx, WebhookTx,
};

use crate::error::map_err;
use crate::groups::{self, Lock};
use crate::{attempts, contributions, destinations, ledger, outbox, webhooks};

/// A PostgreSQL transaction behind the [`StoreTx`] port.
///
/// Dropped without [`StoreTx::commit`], it rolls back (sqlx queues the
/// `ROLLBACK` on the connection before it returns to the pool).
///
/// As in PostgreSQL itself, an error aborts the transaction: after any
/// `Err`, drop the unit of work (further statements fail with `Unavailable`).
#[derive(Debug)]
pub struct PgTx {
    tx: Transaction<'static, Postgres>,
    lock_timeout_ms: u64,
}

impl PgTx {
    pub(crate) const fn new(tx: Transaction<'static, Postgres>, lock_timeout_ms: u64) -> Self {
        Self { tx, lock_timeout_ms }
    }

    /// The server process id of this transaction's connection
    /// (`pg_backend_pid()`), for diagnostics and failure tests.
    ///
    /// # Errors
    /// `Unavailable` on a connection failure.
    pub async fn backend_pid(&mut self) -> Result<i32, StoreError> {
        sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()").fetch_one(&mut *self.tx).await.map_err(map_err)
    }
}

#[async_trait]
impl GroupTx for PgTx {
    /// `SET LOCAL lock_timeout` and the blocking `pg_advisory_xact_lock` on the
    /// group's 64-bit key, sent together in one round trip. Never a try-lock:
    /// skipping on failure would drop another group's work on a key collision.
    async fn lock_group(&mut self, id: GroupId) -> Result<(), StoreError> {
        // Both values are integers formatted by Rust: nothing to inject.
        let key = LockKey::group(id).value();
        let sql = format!(
            "SET LOCAL lock_timeout = '{}ms'; SELECT pg_advisory_xact_lock({key}::bigint)",
            self.lock_timeout_ms
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut *self.tx).await.map_err(map_err)?;
        Ok(())
    }

    async fn insert_group(&mut self, group: &Group) -> Result<(), StoreError> {
        groups::insert(&mut self.tx, group).await
    }

    async fn load_group(&mut self, id: GroupId) -> Result<Option<Group>, StoreError> {
        groups::load(&mut self.tx, id, Lock::ForUpdate).await
    }

    async fn save_group(&mut self, group: &Group) -> Result<(), StoreError> {
        groups::save(&mut self.tx, group).await
    }

    async fn insert_invoice(&mut self, invoice: &Invoice) -> Result<(), StoreError> {
        contributions::insert_invoice(&mut self.tx, invoice).await
    }

    async fn open_invoice(
        &mut self,
        group: GroupId,
        cycle: u32,
        member: MemberId,
    ) -> Result<Option<Invoice>, StoreError> {
        contributions::open_invoice(&mut *self.tx, group, cycle, member).await
    }

    async fn open_invoices(&mut self, group: GroupId, cycle: u32) -> Result<Vec<Invoice>, StoreError> {
        contributions::open_invoices(&mut *self.tx, group, cycle).await
    }

    async fn set_invoice_state(&mut self, hash: &PaymentHash, state: InvoiceState) -> Result<(), StoreError> {
        contributions::set_invoice_state(&mut self.tx, hash, state).await
    }

    async fn invoice(&mut self, hash: &PaymentHash) -> Result<Option<Invoice>, StoreError> {
        contributions::invoice(&mut *self.tx, hash).await
    }

    async fn insert_contribution(&mut self, contribution: &Contribution) -> Result<bool, StoreError> {
        contributions::insert_contribution(&mut self.tx, contribution).await
    }

    async fn contribution(&mut self, hash: &PaymentHash) -> Result<Option<Contribution>, StoreError> {
        contributions::contribution(&mut self.tx, hash).await
    }
}

#[async_trait]
impl LedgerTx for PgTx {
    async fn insert_ledger_entry(&mut self, entry: &LedgerEntry) -> Result<bool, StoreError> {
        ledger::insert(&mut self.tx, entry).await
    }

    async fn ledger_entry(&mut self, key: &IdempotencyKey) -> Result<Option<LedgerEntry>, StoreError> {
        ledger::get(&mut *self.tx, key).await
    }

    async fn group_ledger(&mut self, group: GroupId) -> Result<Vec<LedgerEntry>, StoreError> {
        ledger::of_group(&mut *self.tx, group).await
    }
}

#[async_trait]
impl AttemptTx for PgTx {
    async fn insert_payment_attempt(&mut self, attempt: &PaymentAttempt) -> Result<bool, StoreError> {
        attempts::insert(&mut self.tx, attempt).await
    }

    async fn payment_attempt(&mut self, key: &IdempotencyKey) -> Result<Option<PaymentAttempt>, StoreError> {
        attempts::get_for_update(&mut self.tx, key).await
    }

    async fn update_payment_attempt(&mut self, attempt: &PaymentAttempt) -> Result<(), StoreError> {
        attempts::update(&mut self.tx, attempt).await
    }
}

#[async_trait]
impl DestinationTx for PgTx {
    async fn set_payout_destination(
        &mut self,
        member: MemberId,
        destination: Option<PayoutDestination>,
    ) -> Result<(), StoreError> {
        destinations::set(&mut self.tx, member, destination).await
    }

    async fn payout_destination(&mut self, member: MemberId) -> Result<Option<PayoutDestination>, StoreError> {
        destinations::get(&mut self.tx, member).await
    }

    async fn is_group_member(&mut self, member: MemberId) -> Result<bool, StoreError> {
        destinations::is_group_member(&mut self.tx, member).await
    }

    async fn insert_payout_invoice(&mut self, group: GroupId, cycle: u32, invoice: &Bolt11) -> Result<(), StoreError> {
        destinations::insert_invoice(&mut self.tx, group, cycle, invoice).await
    }

    async fn payout_invoice(&mut self, group: GroupId, cycle: u32) -> Result<Option<String>, StoreError> {
        destinations::last_invoice(&mut self.tx, group, cycle).await
    }

    async fn attempts_awaiting_destination(&mut self, member: MemberId) -> Result<Vec<PaymentAttempt>, StoreError> {
        attempts::awaiting_destination(&mut self.tx, member).await
    }
}

#[async_trait]
impl OutboxTx for PgTx {
    async fn insert_outbox(&mut self, message: &OutboxMessage) -> Result<(), StoreError> {
        outbox::insert(&mut self.tx, message).await
    }

    async fn claim_outbox(&mut self, limit: u32) -> Result<Vec<OutboxMessage>, StoreError> {
        outbox::claim(&mut self.tx, limit).await
    }

    async fn mark_outbox_sent(&mut self, ids: &[u64]) -> Result<(), StoreError> {
        outbox::mark_sent(&mut self.tx, ids).await
    }
}

#[async_trait]
impl WebhookTx for PgTx {
    async fn mark_webhook_processed(
        &mut self,
        key: &IdempotencyKey,
        outcome: DeliveryOutcome,
    ) -> Result<(), StoreError> {
        webhooks::mark_processed(&mut self.tx, key, outcome).await
    }
}

#[async_trait]
impl StoreTx for PgTx {
    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.tx.commit().await.map_err(map_err)
    }
}
