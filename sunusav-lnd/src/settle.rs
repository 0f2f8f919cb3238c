//! Settle events from `SubscribeInvoices` (`GET /v1/invoices/subscribe`).
//!
//! The subscription starts after the caller's stored `settle_index`: LND
//! first replays the invoices settled after it, then streams live updates,
//! added and settled ones alike; only `SETTLED` invoices come out, with
//! `amt_paid_msat` (which may exceed the value) and their `settle_index`.
//! A cut stream, an error line or an unreadable line is an error: the
//! caller subscribes again from the last index it stored, and gets no gap
//! and no double.
//!
//! LND replays nothing for an index of 0 (`channeldb`'s
//! `InvoicesSettledSince`: "in order to maintain backwards compat"), where
//! the port promises every settled invoice. So, after 0, the invoices are
//! listed (`ListInvoices`, by pages) for the highest settle index M, the
//! stream is opened after M (LND replays what settled after M), and the
//! invoices are listed again: one that settled while the first list was
//! read, at an index at most M, is in the second. The listed ones come
//! first, in settle order, then the stream's. When nothing had settled
//! (M = 0) the stream opens after 0 and the second list's settled invoices
//! come first, skipped on the stream; only then may a live one come with a
//! lower index than a listed one (no gap, no double, the caller keeps the
//! highest index it stored).

use std::collections::{BTreeMap, HashSet, VecDeque};

use sunusav_core::domain::money::Msat;
use sunusav_core::ports::payments::{PaymentsError, SettledInvoice};

use crate::error::unavailable;
use crate::node::{LndNode, hash_of};
use crate::transport::{CallError, LateStream};
use crate::wire::{Invoice, InvoiceState, StreamLine};

/// The settled invoices of one subscription.
pub(crate) struct SettledFeed {
    lines: LateStream,
    /// Live invoices at or below this index were delivered already.
    floor: u64,
    /// Listed invoices (after 0), to deliver first.
    backlog: VecDeque<SettledInvoice>,
    /// The settle indexes listed, skipped live.
    listed: HashSet<u64>,
}

/// Invoices per `ListInvoices` page.
const PAGE: u64 = 500;

impl LndNode {
    /// Subscribes to the invoices settled after `after`.
    pub(crate) async fn settled_after(&self, after: u64) -> Result<SettledFeed, PaymentsError> {
        if after > 0 {
            let lines = self.subscribe(after).await?;
            return Ok(SettledFeed { lines, floor: after, backlog: VecDeque::new(), listed: HashSet::new() });
        }
        let first = self.all_settled().await?;
        let m = first.iter().map(|s| s.settle_index).max().unwrap_or(0);
        let lines = self.subscribe(m).await?;
        let second = self.all_settled().await?;
        let backlog: BTreeMap<u64, SettledInvoice> = first
            .into_iter()
            .chain(second)
            .filter(|s| m == 0 || s.settle_index <= m)
            .map(|s| (s.settle_index, s))
            .collect();
        let listed = backlog.keys().copied().collect();
        Ok(SettledFeed { lines, floor: m, backlog: backlog.into_values().collect(), listed })
    }

    async fn subscribe(&self, after: u64) -> Result<LateStream, PaymentsError> {
        self.rest.subscribe_invoices(after).await.map_err(|e| unavailable("subscribing to invoices", e))
    }

    /// Every settled invoice, by `ListInvoices` pages.
    async fn all_settled(&self) -> Result<Vec<SettledInvoice>, PaymentsError> {
        let (mut out, mut offset) = (Vec::new(), 0);
        loop {
            let page = self.rest.list_invoices(offset, PAGE).await.map_err(|e| unavailable("listing invoices", e))?;
            for invoice in &page.invoices {
                out.extend(settled_of(invoice)?);
            }
            if page.invoices.is_empty() || page.last_index_offset.0 <= offset {
                return Ok(out);
            }
            offset = page.last_index_offset.0;
        }
    }
}

impl SettledFeed {
    /// The next settled invoice; `Ok(None)` when LND ended the stream.
    pub(crate) async fn next_settled(&mut self) -> Result<Option<SettledInvoice>, PaymentsError> {
        if let Some(listed) = self.backlog.pop_front() {
            return Ok(Some(listed));
        }
        loop {
            let line = self.lines.next::<Invoice>().await.map_err(|e| unavailable("the invoice stream", e))?;
            let invoice = match line {
                None => return Ok(None),
                Some(StreamLine::Error(status)) => {
                    let e = CallError::Rpc { http: http::StatusCode::OK, status };
                    return Err(unavailable("the invoice stream", e));
                }
                Some(StreamLine::Result(i)) => i,
            };
            let Some(settled) = settled_of(&invoice)? else { continue };
            if settled.settle_index <= self.floor || self.listed.contains(&settled.settle_index) {
                continue; // delivered already
            }
            return Ok(Some(settled));
        }
    }
}

/// The settlement an invoice update reports, if it is `SETTLED` (an added,
/// open invoice or another change is none).
fn settled_of(invoice: &Invoice) -> Result<Option<SettledInvoice>, PaymentsError> {
    if invoice.state != InvoiceState::Settled {
        return Ok(None);
    }
    let bad = |what: &str| unavailable("an invoice update", CallError::Decode(what.to_owned()));
    let payment_hash = hash_of(&invoice.r_hash.0).map_err(|e| unavailable("an invoice update", e))?;
    let paid = u64::try_from(invoice.amt_paid_msat.0).map_err(|_| bad("a negative amt_paid_msat"))?;
    if invoice.settle_index.0 == 0 {
        return Err(bad("a settled invoice without a settle_index"));
    }
    Ok(Some(SettledInvoice { payment_hash, amount_paid: Msat::new(paid), settle_index: invoice.settle_index.0 }))
}
