//! The payments port: the Lightning node.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::ids::{GroupId, MemberId, PaymentHash};
use crate::domain::keys::IdempotencyKey;
use crate::domain::money::Msat;
use crate::domain::payout::Bolt11;
pub use crate::domain::payout::{PayTo, PayoutPolicy};
use crate::ports::BackendError;

/// A payout to send. Its payment hash was fixed and stored with the attempt
/// before this request was made, so that the node's per-hash rules refuse a
/// second payment of it, and [`Payments::lookup`] finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayoutRequest {
    /// `payout:<group>:<cycle>`.
    pub key: IdempotencyKey,
    /// The group paying.
    pub group: GroupId,
    /// The member receiving.
    pub beneficiary: MemberId,
    /// The amount to deliver.
    pub amount: Msat,
    /// The payment hash: of the keysend preimage, or of the invoice.
    pub payment_hash: PaymentHash,
    /// Where it goes.
    pub pay_to: PayTo,
    /// The fee and time limits.
    pub policy: PayoutPolicy,
}

impl PayoutRequest {
    /// What a node checks before sending anything, and the receiver would
    /// refuse otherwise: an amount above zero; a keysend preimage that hashes
    /// to the payment hash; an invoice (parsed, signature checked) of that
    /// hash, amount-less or for the payout's amount, still payable at `now`.
    /// Returns the parsed invoice of an invoice payout.
    ///
    /// # Errors
    /// `Permanent` with the reason: paying again would fail the same way.
    pub fn check(&self, now: SystemTime) -> Result<Option<Bolt11>, PayError> {
        let refuse = |why: &str| Err(PayError::Permanent(why.to_owned()));
        if self.amount.is_zero() {
            return refuse("amount must be more than zero");
        }
        match &self.pay_to {
            PayTo::Keysend { preimage, .. } => {
                if preimage.payment_hash() != self.payment_hash {
                    return refuse("incorrect payment details: the keysend preimage does not hash to the payment hash");
                }
                Ok(None)
            }
            PayTo::Invoice { bolt11 } => {
                let invoice = Bolt11::parse(bolt11).map_err(|e| PayError::Permanent(e.to_string()))?;
                if invoice.payment_hash() != self.payment_hash {
                    return refuse("the invoice's payment hash is not the payout's");
                }
                if invoice.amount().is_some_and(|a| a != self.amount) {
                    return refuse("the invoice asks for another amount than the payout's");
                }
                if invoice.is_expired(now, Duration::ZERO) {
                    return refuse("the invoice has expired");
                }
                Ok(Some(invoice))
            }
        }
    }
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

/// An invoice's state at the node (LND's `Invoice.state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeInvoiceState {
    /// Payable.
    Open,
    /// Held: an HTLC is accepted but not settled (hold invoices).
    Accepted,
    /// Paid.
    Settled,
    /// Cancelled or expired.
    Canceled,
}

/// What the node knows of an invoice it issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInvoice {
    /// Its payment hash.
    pub payment_hash: PaymentHash,
    /// Its state.
    pub state: NodeInvoiceState,
    /// What the payer paid (zero until settled); may exceed the invoice's amount.
    pub amount_paid: Msat,
    /// Its place in the node's settle order (0 until settled).
    pub settle_index: u64,
}

/// An invoice the node reports settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettledInvoice {
    /// Its payment hash.
    pub payment_hash: PaymentHash,
    /// What the payer paid.
    pub amount_paid: Msat,
    /// Its place in the node's settle order: increasing, from 1.
    pub settle_index: u64,
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

    /// Pays a payout, idempotently by its payment hash.
    ///
    /// # Errors
    /// MUST return `AlreadyPaid` when a payment of the hash succeeded before,
    /// and `InTransition` while one is in flight; MUST NOT pay one hash twice.
    async fn pay(&self, request: &PayoutRequest) -> Result<PayoutReceipt, PayError>;

    /// What the node knows of the payment of this hash.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the node cannot answer (never guess `Unknown`).
    async fn lookup(&self, hash: &PaymentHash) -> Result<PaymentStatus, PaymentsError>;

    /// What the node knows of an invoice it issued: `None` when it issued
    /// none with this hash.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the node cannot answer.
    async fn invoice(&self, hash: &PaymentHash) -> Result<Option<NodeInvoice>, PaymentsError>;

    /// Checks the node answers.
    ///
    /// # Errors
    /// MUST return `Unavailable` when it does not.
    async fn ping(&self) -> Result<(), PaymentsError>;
}

/// The node's stream of settled invoices (LND's `SubscribeInvoices`): a
/// second source of settlements beside webhooks, resumable by settle index.
#[async_trait]
pub trait SettleEvents: Send + Sync + 'static {
    /// Opens a stream of the invoices settled after `after_settle_index`
    /// (those already settled first, in settle order), then of each one
    /// settled from now on.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the node cannot be reached.
    async fn subscribe_settled(&self, after_settle_index: u64) -> Result<Box<dyn SettledStream>, PaymentsError>;
}

/// An open stream of settled invoices.
#[async_trait]
pub trait SettledStream: Send {
    /// The next settled invoice; `Ok(None)` when the node ended the stream.
    ///
    /// # Errors
    /// MUST return `Unavailable` when the stream was cut or unreadable: the
    /// caller opens a new one from the last index it stored.
    async fn next(&mut self) -> Result<Option<SettledInvoice>, PaymentsError>;
}
