//! A simulated Lightning node whose state lives in PostgreSQL.
//!
//! No Lightning node can run on the machines this project is built on, so the
//! example server simulates one. On the real backends the simulation must
//! behave like an external node: one node shared by every server process,
//! whose payments outlive a process that dies mid-payment. Its state is kept in
//! tables of its own (`sim_node_hash_payments`, `sim_node_invoices`,
//! `sim_node_payee_invoices`), apart from
//! the application's schema, and it follows LND's per-hash rules (channeldb's
//! payment control):
//!
//! - payments are kept by payment hash: a succeeded hash answers "already
//!   paid" (`ErrAlreadyPaid`), an in-flight one "in transition"
//!   (`ErrPaymentInFlight`), and a failed one may be paid again (a `FAILED`
//!   payment is re-initialised); a hash never sent looks up as unknown
//!   (`ErrPaymentNotInitiated`);
//! - keysend carries the preimage, which the receiver checks against the
//!   hash; an invoice is one the remote payee minted
//!   ([`PgSimulatedNode::mint_payee_invoice`]), whose preimage it reveals;
//! - the claim of a hash is one `INSERT … ON CONFLICT` on its primary key, so
//!   concurrent payments of one hash, from any process, let one through;
//! - a payment left in flight by a process that died resolves as succeeded
//!   after `resolve_after` (its HTLC settled).
//!
//! Its invoices follow LND's invoice state machine (the invoice registry's
//! update rules), one state per payment hash in `sim_node_invoices`:
//!
//! - an invoice is created `open`, payable until its expiry; an expiry over
//!   one year is refused, as LND's `AddInvoice` refuses it ("greater than max
//!   expiry");
//! - `settled` and `cancelled` are terminal: a cancelled invoice can no
//!   longer be settled (LND fails the HTLCs, `ErrInvoiceAlreadyCanceled`),
//!   and a settled one is never cancelled (`ErrInvoiceAlreadySettled`);
//! - an open invoice past its expiry counts as cancelled: LND's invoice
//!   expiry watcher cancels it;
//! - settling assigns the next settle index under a lock (LND assigns them
//!   serially), and the settle stream polls for indexes past the one asked;
//! - cancelling is idempotent: LND answers success for an invoice already
//!   cancelled; for one already settled it answers `ErrInvoiceAlreadySettled`,
//!   which the port takes as done (the payment arrives as a settle event); a
//!   payment hash the node never issued is `ErrInvoiceNotFound` ("unable to
//!   locate invoice"), the port's `Invalid`.
//!
//! It runs the core's payments conformance suite through
//! the suite's `NodeScript` (feature `conformance`): scripted faults and the reachability switch are kept in
//! process (they script this process's calls, as a network fault would),
//! while what a fault does to a payment is recorded in the tables. A payment
//! scripted to time out in flight is *held* (a hold invoice at the receiver):
//! it stays in flight until the script resolves it, whatever `resolve_after`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use sqlx::{PgPool, Row};
#[cfg(feature = "conformance")]
use sunusav_core::conformance::payments::NodeScript;
use sunusav_core::domain::group::InvoiceState;
use sunusav_core::domain::payout::{Network, NodePubkey, PayTo};
use sunusav_core::memory::{InvoiceSigner, NodeFault};
use sunusav_core::ports::{
    CreatedInvoice, NodeInvoice, NodeInvoiceState, PayError, PaymentStatus, Payments, PaymentsError, PayoutReceipt,
    PayoutRequest, SettleEvents, SettledInvoice, SettledStream,
};
use sunusav_core::{IdempotencyKey, Msat, PaymentHash};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sim_node_invoices (
    payment_hash TEXT PRIMARY KEY,
    amount_msat BIGINT NOT NULL CHECK (amount_msat > 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
ALTER TABLE sim_node_invoices ADD COLUMN IF NOT EXISTS expires_at TIMESTAMPTZ;
-- Invoices issued before expiries were kept: LND's default expiry (24 h).
UPDATE sim_node_invoices SET expires_at = created_at + interval '24 hours' WHERE expires_at IS NULL;
ALTER TABLE sim_node_invoices ALTER COLUMN expires_at SET NOT NULL;
ALTER TABLE sim_node_invoices ADD COLUMN IF NOT EXISTS state TEXT NOT NULL DEFAULT 'open'
    CHECK (state IN ('open', 'settled', 'cancelled'));
ALTER TABLE sim_node_invoices ADD COLUMN IF NOT EXISTS paid_msat BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sim_node_invoices ADD COLUMN IF NOT EXISTS settle_index BIGINT NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS sim_node_invoices_settle_idx ON sim_node_invoices (settle_index) WHERE settle_index > 0;
-- Payments by payment hash, as LND's payment control keeps them, with the
-- payout key each was for and the preimage the payee revealed.
CREATE TABLE IF NOT EXISTS sim_node_hash_payments (
    payment_hash TEXT PRIMARY KEY,
    payout_key TEXT NOT NULL,
    preimage TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('in_flight', 'succeeded', 'failed')),
    amount_msat BIGINT NOT NULL CHECK (amount_msat > 0),
    times_paid INTEGER NOT NULL DEFAULT 0,
    held BOOLEAN NOT NULL DEFAULT false,
    failure TEXT,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS sim_node_hash_payments_key_idx ON sim_node_hash_payments (payout_key);
-- Invoices of the remote payee (the beneficiaries' node) and their preimages.
CREATE TABLE IF NOT EXISTS sim_node_payee_invoices (
    payment_hash TEXT PRIMARY KEY,
    preimage TEXT NOT NULL
);";

/// The longest expiry LND's `AddInvoice` accepts: one year.
const MAX_INVOICE_EXPIRY: Duration = Duration::from_hours(365 * 24);

// Why a scripted failure failed (LND's failure reasons), as the look-up reports it.
const NO_ROUTE: &str = "no route";
const INCORRECT_DETAILS: &str = "incorrect payment details";
#[cfg(feature = "conformance")]
const IN_FLIGHT_FAILED: &str = "in-flight payment failed";

/// The `status` column of `sim_node_hash_payments`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    InFlight,
    Succeeded,
    Failed,
}

impl Status {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "in_flight" => Some(Self::InFlight),
            "succeeded" => Some(Self::Succeeded),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// What the script set for this process's calls.
#[derive(Debug, Default)]
struct Script {
    faults: Mutex<VecDeque<NodeFault>>,
    down: AtomicBool,
    /// Bumped to cut every open settle stream of this process.
    stream_epoch: AtomicU64,
}

impl Script {
    fn faults(&self) -> MutexGuard<'_, VecDeque<NodeFault>> {
        self.faults.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    /// Takes the next fault when it is a scripted unreachable call.
    fn take_unreachable(&self) -> bool {
        let mut faults = self.faults();
        if faults.front() == Some(&NodeFault::Unreachable) {
            faults.pop_front();
            true
        } else {
            false
        }
    }
}

/// The simulated node on PostgreSQL. Clones share the pool and the script.
#[derive(Clone, Debug)]
pub struct PgSimulatedNode {
    pool: PgPool,
    latency: Duration,
    resolve_after: Duration,
    crash_after_pay: bool,
    script: Arc<Script>,
}

fn unavailable(e: &sqlx::Error) -> PaymentsError {
    PaymentsError::Unavailable(format!("simulated node store: {e}").into())
}

fn transient(e: &sqlx::Error) -> PayError {
    PayError::Transient(format!("simulated node store: {e}"))
}

fn down() -> PaymentsError {
    PaymentsError::Unavailable("simulated node is down".into())
}

fn receipt(hash: PaymentHash, preimage: &str) -> PayoutReceipt {
    PayoutReceipt { payment_hash: hash, preimage: preimage.to_owned(), fee: Msat::ZERO }
}

/// The key the simulated node signs its own invoices with.
const NODE_KEY: [u8; 32] = [0x11; 32];
/// The key of the remote payee it pays (the memory node's, so one demo
/// destination serves both).
const PAYEE_KEY: [u8; 32] = [0x22; 32];

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
        Ok(Self {
            pool,
            latency,
            resolve_after: Duration::from_secs(2),
            crash_after_pay: false,
            script: Arc::default(),
        })
    }

    /// Fault injection: the process aborts right after the node recorded a
    /// payment as succeeded, before the caller hears of it (the crash window
    /// between "paid" and "recorded").
    #[must_use]
    pub fn crash_after_pay(mut self, crash: bool) -> Self {
        self.crash_after_pay = crash;
        self
    }

    /// How many times the payout with this key was paid (never more than 1),
    /// whatever hashes it was sent with.
    ///
    /// # Errors
    /// When the database refuses.
    pub async fn times_paid(&self, key: &IdempotencyKey) -> Result<i32, sqlx::Error> {
        let row =
            sqlx::query("SELECT COALESCE(SUM(times_paid), 0)::int FROM sim_node_hash_payments WHERE payout_key = $1")
                .bind(key.as_str())
                .fetch_one(&self.pool)
                .await?;
        Ok(row.get(0))
    }

    /// The largest number of payments of any one key.
    ///
    /// # Errors
    /// When the database refuses.
    pub async fn max_times_paid(&self) -> Result<i32, sqlx::Error> {
        let row = sqlx::query(
            "SELECT COALESCE(MAX(n), 0)::int FROM \
             (SELECT SUM(times_paid) AS n FROM sim_node_hash_payments GROUP BY payout_key) per_key",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.get(0))
    }

    /// The payer pays an invoice this node issued: returns its amount, once,
    /// in one statement (concurrent payers of one invoice settle it once).
    /// `None` for an unknown, settled, cancelled or expired invoice: LND
    /// fails the HTLCs of an invoice that is not open.
    ///
    /// # Errors
    /// When the database refuses.
    pub async fn settle_invoice(&self, hash: &PaymentHash) -> Result<Option<Msat>, sqlx::Error> {
        self.settle_invoice_paying(hash, None).await
    }

    /// The payer pays `paid` (none: the invoice's amount) for an invoice this
    /// node issued: LND settles one paid at least its amount, up to twice it.
    /// The invoice takes the next settle index, under a lock (LND assigns
    /// them serially, so a stream never sees a later one before an earlier).
    ///
    /// # Errors
    /// When the database refuses.
    pub async fn settle_invoice_paying(
        &self,
        hash: &PaymentHash,
        paid: Option<Msat>,
    ) -> Result<Option<Msat>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(5482373484)").execute(&mut *tx).await?;
        let row = sqlx::query(
            "UPDATE sim_node_invoices SET state = 'settled', paid_msat = COALESCE($2, amount_msat),
                 settle_index = (SELECT COALESCE(MAX(settle_index), 0) + 1 FROM sim_node_invoices)
             WHERE payment_hash = $1 AND state = 'open' AND expires_at > now()
               AND COALESCE($2, amount_msat) BETWEEN amount_msat AND 2 * amount_msat
             RETURNING paid_msat",
        )
        .bind(hash.to_hex())
        .bind(paid.map(msat_i64))
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.map(|r| {
            let amount: i64 = r.get(0);
            u64::try_from(amount)
                .map(Msat::new)
                .map_err(|_| sqlx::Error::Decode(format!("negative invoice amount {amount}").into()))
        })
        .transpose()
    }

    /// The remote payee's node: a keysend destination this node pays.
    pub fn payee_node() -> NodePubkey {
        InvoiceSigner::from_bytes(PAYEE_KEY).node()
    }

    /// A BOLT 11 invoice (regtest) of the remote payee, which this node can
    /// pay: `amount` (none: amount-less), payable for `expiry`.
    ///
    /// # Errors
    /// When the database refuses.
    pub async fn mint_payee_invoice(&self, amount: Option<Msat>, expiry: Duration) -> Result<String, sqlx::Error> {
        let preimage: [u8; 32] = rand::random();
        let hash = PaymentHash::of_preimage(&preimage);
        sqlx::query("INSERT INTO sim_node_payee_invoices (payment_hash, preimage) VALUES ($1, $2)")
            .bind(hash.to_hex())
            .bind(hex::encode(preimage))
            .execute(&self.pool)
            .await?;
        Ok(InvoiceSigner::from_bytes(PAYEE_KEY).mint(hash, amount, expiry, Network::Regtest, SystemTime::now()))
    }

    /// The preimage the payee reveals, as the receiving node would: keysend
    /// carries it (checked against the hash); an invoice's is its payee's.
    async fn preimage_for(&self, request: &PayoutRequest) -> Result<String, PayError> {
        request.check(SystemTime::now())?;
        match &request.pay_to {
            PayTo::Keysend { preimage, .. } => Ok(hex::encode(preimage.expose_bytes())),
            PayTo::Invoice { .. } => {
                let found: Option<String> =
                    sqlx::query_scalar("SELECT preimage FROM sim_node_payee_invoices WHERE payment_hash = $1")
                        .bind(request.payment_hash.to_hex())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(|e| transient(&e))?;
                found.ok_or_else(|| PayError::Permanent("incorrect payment details: unknown payee invoice".into()))
            }
        }
    }

    /// Where an invoice stands at the node, `None` for a payment hash it never
    /// issued. An open invoice past its expiry is `Cancelled` (LND's expiry
    /// watcher cancels it).
    ///
    /// # Errors
    /// When the database refuses.
    pub async fn invoice_state(&self, hash: &PaymentHash) -> Result<Option<InvoiceState>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT CASE WHEN state = 'open' AND expires_at <= now() THEN 'cancelled' ELSE state END
             FROM sim_node_invoices WHERE payment_hash = $1",
        )
        .bind(hash.to_hex())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let state: String = r.get(0);
            InvoiceState::parse(&state)
                .ok_or_else(|| sqlx::Error::Decode(format!("unknown invoice state {state:?}").into()))
        })
        .transpose()
    }

    /// Resolves in-flight payments older than `resolve_after` as succeeded,
    /// unless a script holds them.
    async fn settle_stale(&self, hash: &PaymentHash) -> Result<(), sqlx::Error> {
        let ms = millis(self.resolve_after);
        sqlx::query(
            "UPDATE sim_node_hash_payments SET status = 'succeeded', times_paid = times_paid + 1, updated_at = now()
             WHERE payment_hash = $1 AND status = 'in_flight' AND NOT held
               AND updated_at < now() - $2::bigint * interval '1 millisecond'",
        )
        .bind(hash.to_hex())
        .bind(ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The hash's status, failure and preimage, `None` when the node never saw it.
    async fn status(&self, hash: &PaymentHash) -> Result<Option<(Status, Option<String>, String)>, sqlx::Error> {
        let row = sqlx::query("SELECT status, failure, preimage FROM sim_node_hash_payments WHERE payment_hash = $1")
            .bind(hash.to_hex())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let status: String = r.get(0);
            let status = Status::parse(&status)
                .ok_or_else(|| sqlx::Error::Decode(format!("unknown payment status {status:?}").into()))?;
            Ok((status, r.get(1), r.get(2)))
        })
        .transpose()
    }

    /// Ends a claimed payment as succeeded.
    async fn succeed(&self, hash: &PaymentHash) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE sim_node_hash_payments SET status = 'succeeded', times_paid = times_paid + 1, held = false,
                 updated_at = now()
             WHERE payment_hash = $1 AND status = 'in_flight'",
        )
        .bind(hash.to_hex())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Ends a claimed payment as failed, with LND's reason.
    async fn fail(&self, hash: &PaymentHash, reason: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE sim_node_hash_payments SET status = 'failed', failure = $2, held = false, updated_at = now()
             WHERE payment_hash = $1 AND status = 'in_flight'",
        )
        .bind(hash.to_hex())
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Keeps a claimed payment in flight until the script resolves it.
    async fn hold(&self, hash: &PaymentHash) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE sim_node_hash_payments SET held = true WHERE payment_hash = $1 AND status = 'in_flight'")
            .bind(hash.to_hex())
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
    async fn create_invoice(
        &self,
        amount: Msat,
        _memo: &str,
        expiry: Duration,
    ) -> Result<CreatedInvoice, PaymentsError> {
        if amount.is_zero() {
            return Err(PaymentsError::Invalid("amount must be more than zero".into()));
        }
        // LND would apply its default expiry to a zero one; the port refuses it.
        if expiry.is_zero() {
            return Err(PaymentsError::Invalid("expiry must be more than zero".into()));
        }
        if expiry > MAX_INVOICE_EXPIRY {
            return Err(PaymentsError::Invalid(format!(
                "expiry of {} seconds greater than max expiry of {} seconds",
                expiry.as_secs(),
                MAX_INVOICE_EXPIRY.as_secs()
            )));
        }
        if self.script.is_down() {
            return Err(down());
        }
        let preimage: [u8; 32] = rand::random();
        let payment_hash = PaymentHash::of_preimage(&preimage);
        // Milliseconds, finer than LND's seconds, so that tests can let an
        // invoice expire quickly.
        sqlx::query(
            "INSERT INTO sim_node_invoices (payment_hash, amount_msat, expires_at, state)
             VALUES ($1, $2, now() + $3::bigint * interval '1 millisecond', 'open')",
        )
        .bind(payment_hash.to_hex())
        .bind(msat_i64(amount))
        .bind(millis(expiry))
        .execute(&self.pool)
        .await
        .map_err(|e| unavailable(&e))?;
        let bolt11 = InvoiceSigner::from_bytes(NODE_KEY).mint(
            payment_hash,
            Some(amount),
            expiry,
            Network::Regtest,
            SystemTime::now(),
        );
        Ok(CreatedInvoice { payment_hash, bolt11 })
    }

    async fn cancel_invoice(&self, hash: &PaymentHash) -> Result<(), PaymentsError> {
        if self.script.is_down() {
            return Err(down());
        }
        // One statement: an open invoice (expired or not) becomes cancelled;
        // a cancelled one stays so (LND: success), a settled one stays settled
        // (LND: `ErrInvoiceAlreadySettled`, done for the port). Only whether
        // the node issued the hash at all is read back.
        let issued: bool = sqlx::query_scalar(
            "WITH cancelled AS (
                 UPDATE sim_node_invoices SET state = 'cancelled'
                 WHERE payment_hash = $1 AND state = 'open' RETURNING 1
             )
             SELECT EXISTS (SELECT 1 FROM cancelled)
                 OR EXISTS (SELECT 1 FROM sim_node_invoices WHERE payment_hash = $1)",
        )
        .bind(hash.to_hex())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| unavailable(&e))?;
        if !issued {
            // LND: `ErrInvoiceNotFound`.
            return Err(PaymentsError::Invalid(format!("unable to locate invoice {hash}")));
        }
        Ok(())
    }

    async fn pay(&self, request: &PayoutRequest) -> Result<PayoutReceipt, PayError> {
        if request.amount.is_zero() {
            return Err(PayError::Permanent("amount must be more than zero".into()));
        }
        // Unreachable (gRPC `Unavailable`): nothing is sent, and the node cannot
        // say whether the key is paid either.
        if self.script.is_down() {
            return Err(PayError::Transient("simulated node is down".into()));
        }
        if self.script.take_unreachable() {
            return Err(PayError::Transient("simulated node is unreachable".into()));
        }
        let preimage = self.preimage_for(request).await?;
        let hash = request.payment_hash;
        self.settle_stale(&hash).await.map_err(|e| transient(&e))?;
        // Claim the hash: new, or a failed one paid again. Any other state refuses.
        let claimed = sqlx::query(
            "INSERT INTO sim_node_hash_payments (payment_hash, payout_key, preimage, status, amount_msat)
             VALUES ($1, $2, $3, 'in_flight', $4)
             ON CONFLICT (payment_hash) DO UPDATE SET status = 'in_flight', held = false, failure = NULL,
                 payout_key = EXCLUDED.payout_key, updated_at = now()
               WHERE sim_node_hash_payments.status = 'failed'
             RETURNING payment_hash",
        )
        .bind(hash.to_hex())
        .bind(request.key.as_str())
        .bind(&preimage)
        .bind(msat_i64(request.amount))
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| transient(&e))?;
        if claimed.is_none() {
            return Err(match self.status(&hash).await.map_err(|e| transient(&e))? {
                Some((Status::Succeeded, ..)) => PayError::AlreadyPaid,
                Some((Status::InFlight, ..)) => PayError::InTransition,
                // Another claim failed between ours and this read: nothing was sent.
                Some((Status::Failed, ..)) | None => PayError::Transient("claimed concurrently; try again".into()),
            });
        }
        // Sent: only now does the payment meet the next scripted fault.
        let fault = self.script.faults().pop_front();
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        match fault {
            // A failed update leaves the payment in flight: no answer, as a time-out.
            // (`Unreachable` was answered above, before anything was sent.)
            None | Some(NodeFault::Unreachable) => self.succeed(&hash).await.map_err(|_| PayError::Timeout)?,
            // The HTLC settled but the answer was lost.
            Some(NodeFault::TimeoutPaid) => {
                self.succeed(&hash).await.map_err(|_| PayError::Timeout)?;
                return Err(PayError::Timeout);
            }
            // The stream ended while the HTLC is still out: it stays in flight.
            Some(NodeFault::TimeoutInFlight) => {
                self.hold(&hash).await.map_err(|_| PayError::Timeout)?;
                return Err(PayError::Timeout);
            }
            Some(NodeFault::Transient) => {
                self.fail(&hash, NO_ROUTE).await.map_err(|_| PayError::Timeout)?;
                return Err(PayError::Transient(format!("{NO_ROUTE} (scripted)")));
            }
            Some(NodeFault::Permanent) => {
                self.fail(&hash, INCORRECT_DETAILS).await.map_err(|_| PayError::Timeout)?;
                return Err(PayError::Permanent(format!("{INCORRECT_DETAILS} (scripted)")));
            }
        }
        if self.crash_after_pay {
            eprintln!("SIM_NODE_CRASH_AFTER_PAY: aborting after paying {}", request.key);
            std::process::abort();
        }
        Ok(receipt(hash, &preimage))
    }

    async fn lookup(&self, hash: &PaymentHash) -> Result<PaymentStatus, PaymentsError> {
        // Never "unknown" when the node cannot answer.
        if self.script.is_down() {
            return Err(down());
        }
        self.settle_stale(hash).await.map_err(|e| unavailable(&e))?;
        Ok(match self.status(hash).await.map_err(|e| unavailable(&e))? {
            None => PaymentStatus::Unknown,
            Some((Status::Succeeded, _, preimage)) => PaymentStatus::Succeeded(receipt(*hash, &preimage)),
            Some((Status::Failed, failure, _)) => PaymentStatus::Failed(failure.unwrap_or_else(|| "failed".into())),
            Some((Status::InFlight, ..)) => PaymentStatus::InFlight,
        })
    }

    async fn invoice(&self, hash: &PaymentHash) -> Result<Option<NodeInvoice>, PaymentsError> {
        if self.script.is_down() {
            return Err(down());
        }
        let row = sqlx::query(
            "SELECT CASE WHEN state = 'open' AND expires_at <= now() THEN 'cancelled' ELSE state END,
                    paid_msat, settle_index
             FROM sim_node_invoices WHERE payment_hash = $1",
        )
        .bind(hash.to_hex())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| unavailable(&e))?;
        row.map(|r| {
            let state: String = r.get(0);
            let state = match state.as_str() {
                "open" => NodeInvoiceState::Open,
                "settled" => NodeInvoiceState::Settled,
                "cancelled" => NodeInvoiceState::Canceled,
                other => return Err(PaymentsError::Unavailable(format!("unknown invoice state {other:?}").into())),
            };
            let paid: i64 = r.get(1);
            let index: i64 = r.get(2);
            Ok(NodeInvoice {
                payment_hash: *hash,
                state,
                amount_paid: Msat::new(u64::try_from(paid).unwrap_or(0)),
                settle_index: u64::try_from(index).unwrap_or(0),
            })
        })
        .transpose()
    }

    async fn ping(&self) -> Result<(), PaymentsError> {
        if self.script.is_down() {
            return Err(down());
        }
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(|e| unavailable(&e))?;
        Ok(())
    }
}

/// The conformance suite's script: faults and reachability in process, their
/// effect on payments in the tables.
#[cfg(feature = "conformance")]
#[async_trait]
impl NodeScript for PgSimulatedNode {
    async fn script_next_payment(&self, fault: NodeFault) -> Result<(), PaymentsError> {
        self.script.faults().push_back(fault);
        Ok(())
    }

    async fn resolve_in_flight_payments(&self, succeed: bool) -> Result<(), PaymentsError> {
        let query = if succeed {
            sqlx::query(
                "UPDATE sim_node_hash_payments SET status = 'succeeded', times_paid = times_paid + 1, held = false,
                     updated_at = now()
                 WHERE status = 'in_flight'",
            )
        } else {
            sqlx::query(
                "UPDATE sim_node_hash_payments SET status = 'failed', failure = $1, held = false, updated_at = now()
                 WHERE status = 'in_flight'",
            )
            .bind(IN_FLIGHT_FAILED)
        };
        query.execute(&self.pool).await.map_err(|e| unavailable(&e))?;
        Ok(())
    }

    async fn set_reachable(&self, reachable: bool) -> Result<(), PaymentsError> {
        self.script.down.store(!reachable, Ordering::SeqCst);
        Ok(())
    }

    async fn payee_node(&self) -> Result<NodePubkey, PaymentsError> {
        Ok(Self::payee_node())
    }

    async fn mint_payee_invoice(&self, amount: Option<Msat>, expiry: Duration) -> Result<String, PaymentsError> {
        PgSimulatedNode::mint_payee_invoice(self, amount, expiry).await.map_err(|e| unavailable(&e))
    }

    async fn pay_invoice(&self, hash: &PaymentHash, amount: Msat) -> Result<bool, PaymentsError> {
        Ok(self.settle_invoice_paying(hash, Some(amount)).await.map_err(|e| unavailable(&e))?.is_some())
    }

    async fn cut_settle_streams(&self) -> Result<(), PaymentsError> {
        self.script.stream_epoch.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[async_trait]
impl SettleEvents for PgSimulatedNode {
    async fn subscribe_settled(&self, after_settle_index: u64) -> Result<Box<dyn SettledStream>, PaymentsError> {
        if self.script.is_down() {
            return Err(down());
        }
        Ok(Box::new(PgSettleStream {
            node: self.clone(),
            after: after_settle_index,
            epoch: self.script.stream_epoch.load(Ordering::SeqCst),
            buffered: VecDeque::new(),
        }))
    }
}

/// A settle stream over the invoices table: polls for settle indexes past
/// the last one sent, every 50 ms.
struct PgSettleStream {
    node: PgSimulatedNode,
    after: u64,
    epoch: u64,
    buffered: VecDeque<SettledInvoice>,
}

#[async_trait]
impl SettledStream for PgSettleStream {
    async fn next(&mut self) -> Result<Option<SettledInvoice>, PaymentsError> {
        loop {
            if self.node.script.stream_epoch.load(Ordering::SeqCst) != self.epoch || self.node.script.is_down() {
                return Err(PaymentsError::Unavailable("simulated settle stream cut".into()));
            }
            if let Some(next) = self.buffered.pop_front() {
                self.after = next.settle_index;
                return Ok(Some(next));
            }
            let rows = sqlx::query(
                "SELECT payment_hash, paid_msat, settle_index FROM sim_node_invoices
                 WHERE settle_index > $1 ORDER BY settle_index LIMIT 100",
            )
            .bind(i64::try_from(self.after).unwrap_or(i64::MAX))
            .fetch_all(&self.node.pool)
            .await
            .map_err(|e| unavailable(&e))?;
            for r in rows {
                let hash: String = r.get(0);
                let paid: i64 = r.get(1);
                let index: i64 = r.get(2);
                self.buffered.push_back(SettledInvoice {
                    payment_hash: hash.parse().map_err(|_| PaymentsError::Unavailable("bad hash".into()))?,
                    amount_paid: Msat::new(u64::try_from(paid).unwrap_or(0)),
                    settle_index: u64::try_from(index).unwrap_or(0),
                });
            }
            if self.buffered.is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
