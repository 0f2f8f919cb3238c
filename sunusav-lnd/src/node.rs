//! [`LndNode`]: the payments port on LND's REST API: invoices, look-ups
//! and the ping (payments in [`crate::pay`], settle events in
//! [`crate::settle`]).

use std::time::Duration;

use sunusav_core::domain::ids::PaymentHash;
use sunusav_core::domain::money::Msat;
use sunusav_core::ports::payments::{CreatedInvoice, PaymentStatus, PaymentsError, PayoutReceipt};

use crate::config::{LndConfig, Macaroon};
use crate::error::{ConnectError, code, unavailable};
use crate::rpc::LndRest;
use crate::transport::{CallError, Connector, Rest, tls};
use crate::wire::{self, AddInvoiceRequest, I64, StreamLine};

/// An LND node, through its REST API. Cheap to clone.
#[derive(Clone)]
pub struct LndNode {
    pub(crate) rest: LndRest,
    pub(crate) config: LndConfig,
}

impl std::fmt::Debug for LndNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LndNode").field("rest_url", &self.config.rest_url()).finish_non_exhaustive()
    }
}

impl LndNode {
    /// Reads the macaroon and the certificate, and builds the client. It
    /// does not call the node (a node down at start-up is no error here:
    /// [`Payments::ping`](sunusav_core::ports::payments::Payments::ping) tells).
    pub async fn connect(config: LndConfig) -> Result<Self, ConnectError> {
        let macaroon = tokio::fs::read(config.macaroon_path())
            .await
            .map(Macaroon::from_bytes)
            .map_err(|source| ConnectError::Macaroon { path: config.macaroon_path().to_owned(), source })?;
        if macaroon.is_empty() {
            return Err(ConnectError::Invalid("the macaroon file is empty".into()));
        }
        let pem = tokio::fs::read(config.tls_cert_path())
            .await
            .map_err(|source| ConnectError::Certificate { path: config.tls_cert_path().to_owned(), source })?;
        let tls = tls::client_config(&pem).map_err(|e| ConnectError::Invalid(e.to_string()))?;
        let connector = Connector::new(tls, config.connect_timeout());
        let rest = Rest::new(
            connector,
            config.rest_url(),
            &macaroon.to_hex(),
            config.request_timeout(),
            config.max_connections(),
        )
        .map_err(ConnectError::Invalid)?;
        Ok(Self { rest: LndRest::new(rest), config })
    }

    /// The low-level client, for what the port does not cover.
    pub fn rest(&self) -> &LndRest {
        &self.rest
    }

    /// `AddInvoice`.
    pub(crate) async fn add_invoice(
        &self,
        amount: Msat,
        memo: &str,
        expiry: Duration,
    ) -> Result<CreatedInvoice, PaymentsError> {
        if amount.is_zero() {
            return Err(PaymentsError::Invalid("amount must be more than zero".into()));
        }
        if expiry.is_zero() {
            return Err(PaymentsError::Invalid("expiry must be more than zero".into()));
        }
        let value_msat = i64::try_from(amount.get()).map_err(|_| PaymentsError::Invalid("amount too large".into()))?;
        // Whole seconds, rounded up: an invoice never expires before asked.
        let secs = expiry.as_secs() + u64::from(expiry.subsec_nanos() > 0);
        let expiry = i64::try_from(secs).map_err(|_| PaymentsError::Invalid("expiry too long".into()))?;
        let req = AddInvoiceRequest {
            memo: memo.to_owned(),
            value_msat: I64(value_msat),
            expiry: I64(expiry),
            ..Default::default()
        };
        let res = self.rest.add_invoice(&req).await.map_err(|e| match e.rpc_code() {
            Some(code::INVALID_ARGUMENT) => PaymentsError::Invalid(e.to_string()),
            _ => unavailable("adding an invoice", e),
        })?;
        let payment_hash = hash_of(&res.r_hash.0).map_err(|e| unavailable("adding an invoice", e))?;
        if res.payment_request.is_empty() {
            return Err(unavailable("adding an invoice", CallError::Decode("no payment_request".into())));
        }
        Ok(CreatedInvoice { payment_hash, bolt11: res.payment_request })
    }

    /// `CancelInvoice`: settled or already canceled is done; unknown is invalid.
    pub(crate) async fn cancel(&self, hash: &PaymentHash) -> Result<(), PaymentsError> {
        match self.rest.cancel_invoice(hash.as_bytes()).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_rpc(code::UNKNOWN, "already settled") || e.is_rpc(code::UNKNOWN, "already canceled") => {
                Ok(())
            }
            Err(e) if e.rpc_code() == Some(code::NOT_FOUND) || e.is_rpc(code::UNKNOWN, "unable to locate invoice") => {
                Err(PaymentsError::Invalid(format!("no invoice {hash} on this node")))
            }
            Err(e) => Err(unavailable("cancelling an invoice", e)),
        }
    }

    /// `TrackPaymentV2`'s first update: the payment's current state.
    pub(crate) async fn track(&self, hash: &PaymentHash) -> Result<PaymentStatus, PaymentsError> {
        let mut stream = match self.rest.track_payment(hash.as_bytes()).await {
            Ok(s) => s,
            // `ErrPaymentNotInitiated`, "payment isn't initiated": never sent.
            Err(e) if e.rpc_code() == Some(code::NOT_FOUND) => return Ok(PaymentStatus::Unknown),
            Err(e) => return Err(unavailable("tracking a payment", e)),
        };
        let limit = self.rest.request_timeout();
        let first = tokio::time::timeout(limit, stream.next::<wire::Payment>())
            .await
            .map_err(|_| unavailable("tracking a payment", CallError::TimedOut(limit)))?
            .map_err(|e| unavailable("tracking a payment", e))?;
        let payment = match first {
            Some(StreamLine::Result(p)) => p,
            Some(StreamLine::Error(status)) => {
                let e = CallError::Rpc { http: http::StatusCode::OK, status };
                return if e.rpc_code() == Some(code::NOT_FOUND) {
                    Ok(PaymentStatus::Unknown)
                } else {
                    Err(unavailable("tracking a payment", e))
                };
            }
            None => return Err(unavailable("tracking a payment", CallError::Decode("the stream ended empty".into()))),
        };
        status_of(hash, &payment).map_err(|e| unavailable("tracking a payment", e))
    }

    /// `GetInfo`: the node answers and is synced to the chain.
    pub(crate) async fn get_info(&self) -> Result<(), PaymentsError> {
        let info = self.rest.get_info().await.map_err(|e| unavailable("getinfo", e))?;
        if !info.synced_to_chain {
            return Err(PaymentsError::Unavailable("LND is not synced to the chain".into()));
        }
        Ok(())
    }
}

/// A 32-byte hash from a `bytes` field.
pub(crate) fn hash_of(bytes: &[u8]) -> Result<PaymentHash, CallError> {
    let arr: [u8; 32] =
        bytes.try_into().map_err(|_| CallError::Decode(format!("a {}-byte payment hash", bytes.len())))?;
    Ok(PaymentHash::from_bytes(arr))
}

/// A `Payment` update as the port's status; its hash must be `hash`, and a
/// success must carry a preimage of it.
pub(crate) fn status_of(hash: &PaymentHash, p: &wire::Payment) -> Result<PaymentStatus, CallError> {
    if !p.payment_hash.eq_ignore_ascii_case(&hash.to_hex()) {
        return Err(CallError::Decode("an update of another payment hash".into()));
    }
    Ok(match p.status {
        wire::PaymentStatus::InFlight | wire::PaymentStatus::Initiated => PaymentStatus::InFlight,
        wire::PaymentStatus::Succeeded => PaymentStatus::Succeeded(receipt_of(hash, p)?),
        wire::PaymentStatus::Failed => PaymentStatus::Failed(format!("{:?}", p.failure_reason)),
        wire::PaymentStatus::Unknown => return Err(CallError::Decode("payment status UNKNOWN".into())),
    })
}

/// The receipt of a succeeded payment: its preimage must hash to `hash`.
pub(crate) fn receipt_of(hash: &PaymentHash, p: &wire::Payment) -> Result<PayoutReceipt, CallError> {
    let bytes = hex::decode(&p.payment_preimage).map_err(|_| CallError::Decode("a preimage that is not hex".into()))?;
    let preimage: [u8; 32] = bytes.try_into().map_err(|_| CallError::Decode("a preimage not of 32 bytes".into()))?;
    if PaymentHash::of_preimage(&preimage) != *hash {
        return Err(CallError::Decode("a preimage that does not hash to the payment hash".into()));
    }
    let fee = u64::try_from(p.fee_msat.0).map_err(|_| CallError::Decode("a negative fee".into()))?;
    Ok(PayoutReceipt { payment_hash: *hash, preimage: hex::encode(preimage), fee: Msat::new(fee) })
}
