//! The payments port: the Lightning node.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::ids::{GroupId, MemberId, PaymentHash};
use crate::domain::keys::IdempotencyKey;
use crate::domain::money::Msat;
use crate::ports::BackendError;

/// A payout to send: idempotent by `key`, from which the adapter derives one
/// payment hash, so that the node's per-hash rules refuse a second payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutRequest {
    /// `payout:<group>:<cycle>`.
    pub key: IdempotencyKey,
    /// The group paying.
    pub group: GroupId,
    /// The member receiving.
    pub beneficiary: MemberId,
    /// The amount to deliver.
    pub amount: Msat,
}

/// Proof that a payout succeeded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutReceipt {
    /// The payment hash the node used.
    pub payment_hash: PaymentHash,
    /// The preimage, hex: proof of payment.
    pub preimage: String,
    /// Routing fee paid on top of the amount.
    pub fee: Msat,
}

/// What the node knows of a payout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentStatus {
    /// Paid.
    Succeeded(PayoutReceipt),
    /// Failed for good; paying again is allowed.
    Failed(String),
    /// Still in flight: do not pay again, look again later.
    InFlight,
    /// The node never saw it: paying is allowed.
    Unknown,
}

/// Why a payment did not (yet) succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayError {
    /// The hash was already paid (LND: "invoice is already paid"). Look it up.
    #[error("already paid")]
    AlreadyPaid,
    /// A payment of the hash is in flight (LND: "payment is in transition").
    #[error("payment in transition")]
    InTransition,
    /// No answer in time: the payment may be in flight. Look it up before paying again.
    #[error("timed out; the payment may be in flight")]
    Timeout,
    /// A failure that may pass (no route now, node unreachable).
    #[error("transient payment failure: {0}")]
    Transient(String),
    /// A failure that will not pass (invalid destination, amount refused).
    #[error("permanent payment failure: {0}")]
    Permanent(String),
}

/// Errors of the node outside a payment (invoice creation, look-up).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PaymentsError {
    /// The node is unreachable, refused, or answered something unreadable.
    #[error("payments node unavailable: {0}")]
    Unavailable(#[source] BackendError),
    /// The request is invalid (zero amount, …).
    #[error("invalid payment request: {0}")]
    Invalid(String),
}

/// A freshly created invoice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedInvoice {
    /// The invoice's payment hash.
    pub payment_hash: PaymentHash,
    /// The BOLT 11 payment request.
    pub bolt11: String,
}

/// The Lightning node.
#[async_trait]
pub trait Payments: Send + Sync + 'static {
    /// Creates an invoice of `amount` with a memo, payable for `expiry`.
    ///
    /// # Errors
    /// MUST return `Invalid` for a zero amount or expiry, `Unavailable` when
    /// the node cannot be reached.
    async fn create_invoice(&self, amount: Msat, memo: &str, expiry: Duration)
    -> Result<CreatedInvoice, PaymentsError>;

    /// Cancels an open invoice, so that it can no longer be paid. Cancelling
    /// one already cancelled, expired or settled is not an error (a settled
    /// one's payment arrives as a settle event as usual).
    ///
    /// # Errors
    /// MUST return `Unavailable` when the node cannot be reached, `Invalid`
    /// for a payment hash the node never issued.
    async fn cancel_invoice(&self, hash: &PaymentHash) -> Result<(), PaymentsError>;

    /// Pays a payout, idempotently by its key.
    ///
    /// # Errors
    /// MUST return `AlreadyPaid` when the key's payment succeeded before, and
    /// `InTransition` while one is in flight; MUST NOT pay twice for one key.
    async fn pay(&self, request: &PayoutRequest) -> Result<PayoutReceipt, PayError>;

    /// What the node knows of the payout with this key.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the node cannot answer (never guess `Unknown`).
    async fn lookup(&self, key: &IdempotencyKey) -> Result<PaymentStatus, PaymentsError>;

    /// Checks the node answers.
    ///
    /// # Errors
    /// MUST return `Unavailable` when it does not.
    async fn ping(&self) -> Result<(), PaymentsError>;
}
