//! The stand-in node's own invoices, with LND's rules:
//!
//! - `AddInvoice` gives each invoice the next `add_index` and announces it
//!   (state `OPEN`) to invoice subscribers.
//! - A payer settles an open, unexpired invoice by paying at least its
//!   value (LND accepts up to twice the value: `invoices/update.go`);
//!   `amt_paid_msat` is what was paid, and each settlement takes the next
//!   `settle_index` and is announced.
//! - `SubscribeInvoices` with `settle_index` N > 0 first replays the
//!   invoices settled after N, in order; N = 0 replays nothing
//!   (`channeldb`'s `InvoicesSettledSince`: "in order to maintain backwards
//!   compat").
//! - `CancelInvoice`: open or accepted becomes canceled; canceled again is
//!   a no-op (`cancelInvoiceImpl`'s idempotency); settled is refused
//!   ("invoice already settled"); unknown is refused ("unable to locate
//!   invoice"), both as plain errors (gRPC `Unknown`).
//! - `LookupInvoice` of an unknown hash: `NotFound`, "unable to locate invoice".
//! - An open invoice past its expiry is canceled (LND's invoice expiry
//!   watcher); here, when the next call reads it.

use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::state::{RpcErr, State, unix_secs};
use crate::wire::{B64, I64, Invoice, InvoiceState, U64};

/// An invoice of the stand-in node.
#[derive(Clone)]
pub(crate) struct OwnInvoice {
    preimage: [u8; 32],
    pub(super) wire: Invoice,
}

impl State {
    /// `AddInvoice`: a new open invoice; its hash and wire form.
    pub fn add_invoice(&mut self, memo: &str, value_msat: u64, expiry_secs: u64) -> Result<Invoice, RpcErr> {
        let preimage: [u8; 32] = rand::random();
        let hash: [u8; 32] = Sha256::digest(preimage).into();
        let created = SystemTime::now();
        let amount = (value_msat > 0).then_some(value_msat);
        let bolt11 = self
            .node
            .invoice(&hash, amount, memo, Duration::from_secs(expiry_secs), created)
            .map_err(|e| RpcErr::unknown(&e))?;
        self.add_index += 1;
        let wire = Invoice {
            memo: memo.to_owned(),
            r_hash: B64(hash.to_vec()),
            value: I64(i64::try_from(value_msat / 1000).unwrap_or(i64::MAX)),
            value_msat: I64(i64::try_from(value_msat).unwrap_or(i64::MAX)),
            creation_date: I64(unix_secs(created)),
            payment_request: bolt11,
            expiry: I64(i64::try_from(expiry_secs).unwrap_or(i64::MAX)),
            cltv_expiry: U64(80),
            add_index: U64(self.add_index),
            state: InvoiceState::Open,
            payment_addr: B64(rand::random::<[u8; 32]>().to_vec()),
            ..Invoice::default()
        };
        self.invoices.insert(hash, OwnInvoice { preimage, wire: wire.clone() });
        let _ = self.invoice_events.send(wire.clone());
        Ok(wire)
    }

    /// Cancels the open invoices past their expiry.
    pub fn expire_invoices(&mut self) {
        let now = unix_secs(SystemTime::now());
        for inv in self.invoices.values_mut() {
            let w = &mut inv.wire;
            if w.state == InvoiceState::Open && now > w.creation_date.0.saturating_add(w.expiry.0) {
                w.state = InvoiceState::Canceled;
            }
        }
    }

    /// `LookupInvoice`.
    pub fn lookup_invoice(&self, hash: &[u8; 32]) -> Result<Invoice, RpcErr> {
        self.invoices.get(hash).map(|i| i.wire.clone()).ok_or_else(|| RpcErr::new(5, "unable to locate invoice"))
    }

    /// `CancelInvoice`.
    pub fn cancel_invoice(&mut self, hash: &[u8; 32]) -> Result<(), RpcErr> {
        let inv = self.invoices.get_mut(hash).ok_or_else(|| RpcErr::unknown("unable to locate invoice"))?;
        match inv.wire.state {
            InvoiceState::Settled => Err(RpcErr::unknown("invoice already settled")),
            InvoiceState::Canceled => Ok(()),
            InvoiceState::Open | InvoiceState::Accepted => {
                inv.wire.state = InvoiceState::Canceled;
                Ok(())
            }
        }
    }

    /// A payer pays `paid_msat` to the invoice: its new `settle_index`, or
    /// `None` when LND would refuse the HTLC (unknown, not open, expired,
    /// underpaid, or paid more than twice the value).
    pub fn settle(&mut self, hash: &[u8; 32], paid_msat: u64) -> Option<u64> {
        let now = unix_secs(SystemTime::now());
        let inv = self.invoices.get_mut(hash)?;
        let w = &mut inv.wire;
        let value = u64::try_from(w.value_msat.0).ok()?;
        let expired = now > w.creation_date.0.saturating_add(w.expiry.0);
        let too_much = value > 0 && paid_msat > value.saturating_mul(2);
        if w.state != InvoiceState::Open || expired || paid_msat < value || paid_msat == 0 || too_much {
            return None;
        }
        self.settle_index += 1;
        w.state = InvoiceState::Settled;
        w.settled = true;
        w.settle_index = U64(self.settle_index);
        w.settle_date = I64(now);
        w.amt_paid_msat = I64(i64::try_from(paid_msat).unwrap_or(i64::MAX));
        w.amt_paid_sat = I64(w.amt_paid_msat.0 / 1000);
        let _ = self.invoice_events.send(w.clone());
        Some(self.settle_index)
    }

    /// The invoices settled after `index`, by settle index (none for 0).
    pub fn settled_since(&self, index: u64) -> Vec<Invoice> {
        if index == 0 {
            return Vec::new();
        }
        let mut out: Vec<Invoice> = self
            .invoices
            .values()
            .filter(|i| i.wire.state == InvoiceState::Settled && i.wire.settle_index.0 > index)
            .map(|i| i.wire.clone())
            .collect();
        out.sort_by_key(|i| i.settle_index);
        out
    }

    /// `ListInvoices`: up to `max` invoices added after `offset`, by add index.
    pub fn invoices_added_after(&self, offset: u64, max: u64) -> Vec<Invoice> {
        let mut out: Vec<Invoice> =
            self.invoices.values().filter(|i| i.wire.add_index.0 > offset).map(|i| i.wire.clone()).collect();
        out.sort_by_key(|i| i.add_index);
        out.truncate(usize::try_from(max).unwrap_or(usize::MAX));
        out
    }

    /// The preimage of an own invoice (a test's proof of payment).
    pub fn own_preimage(&self, hash: &[u8; 32]) -> Option<[u8; 32]> {
        self.invoices.get(hash).map(|i| i.preimage)
    }
}
