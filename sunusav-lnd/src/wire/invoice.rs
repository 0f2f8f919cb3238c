//! Invoices: `AddInvoice`, `LookupInvoice`, `ListInvoices`,
//! `CancelInvoice` and `SubscribeInvoices`' updates.

use serde::{Deserialize, Serialize};

use super::codec::{B64, I64, U64, is_default};

/// `lnrpc.Invoice` as a request of `POST /v1/invoices` (the fields sent).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AddInvoiceRequest {
    /// `memo`.
    #[serde(skip_serializing_if = "is_default")]
    pub memo: String,
    /// `value` (sat; exclusive with `value_msat`).
    #[serde(skip_serializing_if = "is_default")]
    pub value: I64,
    /// `value_msat`.
    #[serde(skip_serializing_if = "is_default")]
    pub value_msat: I64,
    /// `expiry`, seconds (0: LND's default, a day).
    #[serde(skip_serializing_if = "is_default")]
    pub expiry: I64,
    /// `private`.
    #[serde(skip_serializing_if = "is_default")]
    pub private: bool,
}

/// `lnrpc.AddInvoiceResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AddInvoiceResponse {
    /// `r_hash`, base64.
    pub r_hash: B64,
    /// `payment_request`: BOLT 11.
    pub payment_request: String,
    /// `add_index`.
    pub add_index: U64,
    /// `payment_addr`, base64.
    pub payment_addr: B64,
}

/// `lnrpc.Invoice.InvoiceState`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvoiceState {
    /// `OPEN`.
    #[default]
    #[serde(rename = "OPEN")]
    Open,
    /// `SETTLED`.
    #[serde(rename = "SETTLED")]
    Settled,
    /// `CANCELED`.
    #[serde(rename = "CANCELED")]
    Canceled,
    /// `ACCEPTED` (a hold invoice's HTLCs are held).
    #[serde(rename = "ACCEPTED")]
    Accepted,
}

/// `lnrpc.Invoice` as LND answers it (the fields read, or written by the
/// stand-in). The preimage (`r_preimage`) is deliberately not modelled on
/// the reading side: it is a secret until paid.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[allow(clippy::struct_excessive_bools)] // the message's own fields
pub struct Invoice {
    /// `memo`.
    pub memo: String,
    /// `r_hash`, base64.
    pub r_hash: B64,
    /// `value`, sat.
    pub value: I64,
    /// `value_msat`.
    pub value_msat: I64,
    /// `settled` (deprecated; `state` says it).
    pub settled: bool,
    /// `creation_date`, Unix seconds.
    pub creation_date: I64,
    /// `settle_date`, Unix seconds.
    pub settle_date: I64,
    /// `payment_request`.
    pub payment_request: String,
    /// `expiry`, seconds.
    pub expiry: I64,
    /// `cltv_expiry`.
    pub cltv_expiry: U64,
    /// `private`.
    pub private: bool,
    /// `add_index`.
    pub add_index: U64,
    /// `settle_index`.
    pub settle_index: U64,
    /// `amt_paid_sat`.
    pub amt_paid_sat: I64,
    /// `amt_paid_msat`: what was received, which may exceed the value.
    pub amt_paid_msat: I64,
    /// `state`.
    pub state: InvoiceState,
    /// `is_keysend`.
    pub is_keysend: bool,
    /// `payment_addr`, base64.
    pub payment_addr: B64,
    /// `is_amp`.
    pub is_amp: bool,
}

/// `lnrpc.ListInvoiceResponse`: a page of invoices by add index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ListInvoiceResponse {
    /// `invoices`.
    pub invoices: Vec<Invoice>,
    /// `last_index_offset`: the add index to seek on from.
    pub last_index_offset: U64,
    /// `first_index_offset`.
    pub first_index_offset: U64,
}

/// `invoicesrpc.CancelInvoiceMsg`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CancelInvoiceMsg {
    /// `payment_hash`, base64.
    pub payment_hash: B64,
}
