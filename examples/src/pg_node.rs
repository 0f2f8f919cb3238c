//! A simulated Lightning node whose state lives in PostgreSQL.
//!
//! No Lightning node can run on the machines this project is built on, so the
//! example server simulates one. On the real backends the simulation must
//! behave like an external node: one node shared by every server process,
//! whose payments outlive a process that dies mid-payment. Its state is kept in
//! two tables of its own (`sim_node_payments`, `sim_node_invoices`), apart from
//! the application's schema, and it follows LND's per-hash rules:
//! a succeeded key answers "already paid", an in-flight one "in transition",
//! and a failed one may be paid again. A payment left in flight by a process
//! that died resolves as succeeded after `resolve_after` (its HTLC settled).

use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Row};
use sunusav_core::ports::{
    CreatedInvoice, PayError, PaymentStatus, Payments, PaymentsError, PayoutReceipt, PayoutRequest,
};
use sunusav_core::{IdempotencyKey, Msat, PaymentHash};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sim_node_payments (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('in_flight', 'succeeded', 'failed')),
    amount_msat BIGINT NOT NULL CHECK (amount_msat > 0),
    times_paid INTEGER NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS sim_node_invoices (
    payment_hash TEXT PRIMARY KEY,
    amount_msat BIGINT NOT NULL CHECK (amount_msat > 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);";

/// The simulated node on PostgreSQL. Clones share the pool.
#[derive(Clone, Debug)]
pub struct PgSimulatedNode {
    pool: PgPool,
    latency: Duration,
    resolve_after: Duration,
    crash_after_pay: bool,
}

fn unavailable(e: &sqlx::Error) -> PaymentsError {
    PaymentsError::Unavailable(format!("simulated node store: {e}").into())
}

fn transient(e: &sqlx::Error) -> PayError {
    PayError::Transient(format!("simulated node store: {e}"))
}

fn receipt(key: &IdempotencyKey) -> PayoutReceipt {
    let mut h = Sha256::new();
    h.update(b"sunusav:simulated-preimage:");
    h.update(key.as_str().as_bytes());
    let preimage: [u8; 32] = h.finalize().into();
    PayoutReceipt {
        payment_hash: PaymentHash::of_preimage(&preimage),
        preimage: hex::encode(preimage),
        fee: Msat::ZERO,
    }
}

fn msat_i64(m: Msat) -> i64 {
    i64::try_from(m.get()).unwrap_or(i64::MAX)
}

impl PgSimulatedNode {
    /// Creates the node's tables when missing.
    ///
    /// # Errors
    /// When the database refuses.
    pub async fn new(pool: PgPool, latency: Duration) -> Result<Self, sqlx::Error> {
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        Ok(Self { pool, latency, resolve_after: Duration::from_secs(2), crash_after_pay: false })
    }

    /// Fault injection: the process aborts right after the node recorded a
    /// payment as succeeded, before the caller hears of it (the crash window
    /// between "paid" and "recorded").
    #[must_use]
    pub fn crash_after_pay(mut self, crash: bool) -> Self {
        self.crash_after_pay = crash;
        self
    }

    /// How many times the payout with this key was paid (never more than 1).
    ///
    /// # Errors
    /// When the database refuses.
    pub async fn times_paid(&self, key: &IdempotencyKey) -> Result<i32, sqlx::Error> {
        let row = sqlx::query("SELECT times_paid FROM sim_node_payments WHERE key = $1")
            .bind(key.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map_or(0, |r| r.get(0)))
    }

    /// The largest number of payments of any one key.
    ///
    /// # Errors
    /// When the database refuses.
    pub async fn max_times_paid(&self) -> Result<i32, sqlx::Error> {
        let row =
            sqlx::query("SELECT COALESCE(MAX(times_paid), 0) FROM sim_node_payments").fetch_one(&self.pool).await?;
        Ok(row.get(0))
    }

    /// Resolves in-flight payments older than `resolve_after` as succeeded.
    async fn settle_stale(&self, key: &IdempotencyKey) -> Result<(), sqlx::Error> {
        let ms = millis(self.resolve_after);
        sqlx::query(
            "UPDATE sim_node_payments SET status = 'succeeded', times_paid = times_paid + 1, updated_at = now()
             WHERE key = $1 AND status = 'in_flight' AND updated_at < now() - $2::bigint * interval '1 millisecond'",
        )
        .bind(key.as_str())
        .bind(ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Milliseconds, as an integer SQL parameter.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl Payments for PgSimulatedNode {
    async fn create_invoice(&self, amount: Msat, _memo: &str) -> Result<CreatedInvoice, PaymentsError> {
        if amount.is_zero() {
            return Err(PaymentsError::Invalid("amount must be more than zero".into()));
        }
        let preimage: [u8; 32] = rand::random();
        let payment_hash = PaymentHash::of_preimage(&preimage);
        sqlx::query("INSERT INTO sim_node_invoices (payment_hash, amount_msat) VALUES ($1, $2)")
            .bind(payment_hash.to_hex())
            .bind(msat_i64(amount))
            .execute(&self.pool)
            .await
            .map_err(|e| unavailable(&e))?;
        let bolt11 = format!("lnbcrt{}n1sim{}", amount.get(), &payment_hash.to_hex()[..32]);
        Ok(CreatedInvoice { payment_hash, bolt11 })
    }

    async fn pay(&self, request: &PayoutRequest) -> Result<PayoutReceipt, PayError> {
        if request.amount.is_zero() {
            return Err(PayError::Permanent("amount must be more than zero".into()));
        }
        self.settle_stale(&request.key).await.map_err(|e| transient(&e))?;
        // Claim the key: new, or a failed one paid again. Any other state refuses.
        let claimed = sqlx::query(
            "INSERT INTO sim_node_payments (key, status, amount_msat) VALUES ($1, 'in_flight', $2)
             ON CONFLICT (key) DO UPDATE SET status = 'in_flight', updated_at = now()
               WHERE sim_node_payments.status = 'failed'
             RETURNING key",
        )
        .bind(request.key.as_str())
        .bind(msat_i64(request.amount))
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| transient(&e))?;
        if claimed.is_none() {
            let status: String = sqlx::query("SELECT status FROM sim_node_payments WHERE key = $1")
                .bind(request.key.as_str())
                .fetch_one(&self.pool)
                .await
                .map_err(|e| transient(&e))?
                .get(0);
            return Err(if status == "succeeded" { PayError::AlreadyPaid } else { PayError::InTransition });
        }
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        sqlx::query(
            "UPDATE sim_node_payments SET status = 'succeeded', times_paid = times_paid + 1, updated_at = now()
             WHERE key = $1 AND status = 'in_flight'",
        )
        .bind(request.key.as_str())
        .execute(&self.pool)
        .await
        .map_err(|_| PayError::Timeout)?;
        if self.crash_after_pay {
            eprintln!("SIM_NODE_CRASH_AFTER_PAY: aborting after paying {}", request.key);
            std::process::abort();
        }
        Ok(receipt(&request.key))
    }

    async fn lookup(&self, key: &IdempotencyKey) -> Result<PaymentStatus, PaymentsError> {
        self.settle_stale(key).await.map_err(|e| unavailable(&e))?;
        let row = sqlx::query("SELECT status FROM sim_node_payments WHERE key = $1")
            .bind(key.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(match row.map(|r| r.get::<String, _>(0)).as_deref() {
            None => PaymentStatus::Unknown,
            Some("succeeded") => PaymentStatus::Succeeded(receipt(key)),
            Some("failed") => PaymentStatus::Failed("failed".into()),
            Some(_) => PaymentStatus::InFlight,
        })
    }

    async fn ping(&self) -> Result<(), PaymentsError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(|e| unavailable(&e))?;
        Ok(())
    }
}
