//! The port's traits for [`LndNode`]: [`Payments`] and [`SettleEvents`].

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use sunusav_core::domain::ids::PaymentHash;
use sunusav_core::domain::money::Msat;
use sunusav_core::ports::payments::{
    CreatedInvoice, NodeInvoice, NodeInvoiceState, PayError, PayTo, PaymentStatus, Payments, PaymentsError,
    PayoutReceipt, PayoutRequest, SettleEvents, SettledInvoice, SettledStream,
};

use crate::error::{code, unavailable};
use crate::node::{LndNode, hash_of};
use crate::settle::SettledFeed;
use crate::wire::{B64, I64, InvoiceState, KEYSEND_RECORD, SecretB64, SendPaymentRequest};

#[async_trait]
impl Payments for LndNode {
    async fn create_invoice(
        &self,
        amount: Msat,
        memo: &str,
        expiry: Duration,
    ) -> Result<CreatedInvoice, PaymentsError> {
        self.add_invoice(amount, memo, expiry).await
    }

    async fn cancel_invoice(&self, hash: &PaymentHash) -> Result<(), PaymentsError> {
        self.cancel(hash).await
    }

    async fn pay(&self, request: &PayoutRequest) -> Result<PayoutReceipt, PayError> {
        let send = send_request(request)?;
        self.send(&send, &request.payment_hash, request.policy.timeout()).await
    }

    async fn lookup(&self, hash: &PaymentHash) -> Result<PaymentStatus, PaymentsError> {
        self.track(hash).await
    }

    async fn invoice(&self, hash: &PaymentHash) -> Result<Option<NodeInvoice>, PaymentsError> {
        let inv = match self.rest.lookup_invoice(hash.as_bytes()).await {
            Ok(inv) => inv,
            // `LookupInvoice`: `NotFound`, "unable to locate invoice".
            Err(e) if e.rpc_code() == Some(code::NOT_FOUND) => return Ok(None),
            Err(e) => return Err(unavailable("looking an invoice up", e)),
        };
        let payment_hash = hash_of(&inv.r_hash.0).map_err(|e| unavailable("looking an invoice up", e))?;
        if payment_hash != *hash {
            return Err(PaymentsError::Unavailable("LND answered another invoice".into()));
        }
        let amount_paid = u64::try_from(inv.amt_paid_msat.0)
            .map_err(|_| PaymentsError::Unavailable("a negative amt_paid_msat".into()))?;
        let state = match inv.state {
            InvoiceState::Open => NodeInvoiceState::Open,
            InvoiceState::Accepted => NodeInvoiceState::Accepted,
            InvoiceState::Settled => NodeInvoiceState::Settled,
            InvoiceState::Canceled => NodeInvoiceState::Canceled,
        };
        Ok(Some(NodeInvoice {
            payment_hash,
            state,
            amount_paid: Msat::new(amount_paid),
            settle_index: inv.settle_index.0,
        }))
    }

    async fn ping(&self) -> Result<(), PaymentsError> {
        self.get_info().await
    }
}

/// The `SendPaymentV2` request of a payout, checked before anything is
/// sent: a keysend's preimage must hash to the payout's hash, an invoice
/// must be of that hash, for the payout's amount (or amount-less) and
/// still payable.
fn send_request(request: &PayoutRequest) -> Result<SendPaymentRequest, PayError> {
    let invoice = request.check(SystemTime::now())?;
    let amt_msat = i64::try_from(request.amount.get()).map_err(|_| PayError::Permanent("amount too large".into()))?;
    let fee_limit = request.policy.fee_limit(request.amount).get().max(1);
    let fee_limit_msat = I64(i64::try_from(fee_limit).unwrap_or(i64::MAX));
    let timeout_seconds = i32::try_from(request.policy.timeout().as_secs().max(1)).unwrap_or(i32::MAX);
    let base = SendPaymentRequest { fee_limit_msat, timeout_seconds, no_inflight_updates: true, ..Default::default() };
    match &request.pay_to {
        PayTo::Keysend { node, preimage } => {
            let records = [(KEYSEND_RECORD.to_string(), SecretB64(B64(preimage.expose_bytes().to_vec())))];
            Ok(SendPaymentRequest {
                dest: B64(node.as_bytes().to_vec()),
                amt_msat: I64(amt_msat),
                payment_hash: B64(request.payment_hash.as_bytes().to_vec()),
                dest_custom_records: records.into_iter().collect(),
                ..base
            })
        }
        PayTo::Invoice { .. } => {
            let invoice = invoice.ok_or_else(|| PayError::Permanent("an invoice payout without its invoice".into()))?;
            // LND refuses an amount beside the invoice's own.
            let amt_msat = if invoice.amount().is_some() { I64(0) } else { I64(amt_msat) };
            Ok(SendPaymentRequest { payment_request: invoice.as_str().to_owned(), amt_msat, ..base })
        }
    }
}

#[async_trait]
impl SettleEvents for LndNode {
    async fn subscribe_settled(&self, after_settle_index: u64) -> Result<Box<dyn SettledStream>, PaymentsError> {
        Ok(Box::new(self.settled_after(after_settle_index).await?))
    }
}

#[async_trait]
impl SettledStream for SettledFeed {
    async fn next(&mut self) -> Result<Option<SettledInvoice>, PaymentsError> {
        self.next_settled().await
    }
}
