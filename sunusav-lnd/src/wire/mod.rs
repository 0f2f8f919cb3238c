//! LND's REST messages, field for field as `lightning.proto`,
//! `routerrpc/router.proto` and `invoicesrpc/invoices.proto` name them (the
//! gateway marshals with `UseProtoNames` and `EmitUnpopulated`).
//!
//! Requests refuse unknown fields, as the gateway does (its unmarshaler does
//! not discard them); replies ignore them, since each LND release adds some.
//! Only the fields this crate sends or reads are modelled.

pub mod codec;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use codec::is_default;
pub use codec::{B64, I64, SecretB64, U64};

/// The custom record that carries a keysend payment's preimage (`record.KeySendType`).
pub const KEYSEND_RECORD: u64 = 5_482_373_484;

/// `lnrpc.GetInfoResponse` (the fields read).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GetInfoResponse {
    /// `version`.
    pub version: String,
    /// `identity_pubkey`, hex.
    pub identity_pubkey: String,
    /// `alias`.
    pub alias: String,
    /// `block_height`.
    pub block_height: u32,
    /// `synced_to_chain`.
    pub synced_to_chain: bool,
    /// `synced_to_graph`.
    pub synced_to_graph: bool,
}

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

/// `routerrpc.SendPaymentRequest` (the fields this crate sends, and a few
/// the stand-in accepts). `Debug` shows no custom record: a keysend
/// preimage is a secret until the payment succeeds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[allow(clippy::struct_excessive_bools)] // the message's own fields
pub struct SendPaymentRequest {
    /// `dest`: the payee's 33-byte key (keysend).
    #[serde(skip_serializing_if = "is_default")]
    pub dest: B64,
    /// `amt`, sat.
    #[serde(skip_serializing_if = "is_default")]
    pub amt: I64,
    /// `amt_msat`.
    #[serde(skip_serializing_if = "is_default")]
    pub amt_msat: I64,
    /// `payment_hash`.
    #[serde(skip_serializing_if = "is_default")]
    pub payment_hash: B64,
    /// `final_cltv_delta`.
    #[serde(skip_serializing_if = "is_default")]
    pub final_cltv_delta: i32,
    /// `payment_request`: BOLT 11.
    #[serde(skip_serializing_if = "is_default")]
    pub payment_request: String,
    /// `timeout_seconds` before the first HTLC (0: LND's 60).
    #[serde(skip_serializing_if = "is_default")]
    pub timeout_seconds: i32,
    /// `fee_limit_sat`.
    #[serde(skip_serializing_if = "is_default")]
    pub fee_limit_sat: I64,
    /// `fee_limit_msat` (0: zero-fee routes only).
    #[serde(skip_serializing_if = "is_default")]
    pub fee_limit_msat: I64,
    /// `cltv_limit`.
    #[serde(skip_serializing_if = "is_default")]
    pub cltv_limit: i32,
    /// `dest_custom_records`: record type (a decimal string) to base64 value.
    #[serde(skip_serializing_if = "is_default")]
    pub dest_custom_records: BTreeMap<String, SecretB64>,
    /// `allow_self_payment`.
    #[serde(skip_serializing_if = "is_default")]
    pub allow_self_payment: bool,
    /// `max_parts`.
    #[serde(skip_serializing_if = "is_default")]
    pub max_parts: u32,
    /// `no_inflight_updates`: only the final update is streamed.
    #[serde(skip_serializing_if = "is_default")]
    pub no_inflight_updates: bool,
    /// `amp`.
    #[serde(skip_serializing_if = "is_default")]
    pub amp: bool,
    /// `cancelable`.
    #[serde(skip_serializing_if = "is_default")]
    pub cancelable: bool,
}

/// `lnrpc.Payment.PaymentStatus`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentStatus {
    /// `UNKNOWN` (deprecated, never returned).
    #[default]
    #[serde(rename = "UNKNOWN")]
    Unknown,
    /// `IN_FLIGHT`.
    #[serde(rename = "IN_FLIGHT")]
    InFlight,
    /// `SUCCEEDED`.
    #[serde(rename = "SUCCEEDED")]
    Succeeded,
    /// `FAILED`.
    #[serde(rename = "FAILED")]
    Failed,
    /// `INITIATED`: created, no HTLC attempted yet.
    #[serde(rename = "INITIATED")]
    Initiated,
}

/// `lnrpc.PaymentFailureReason`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FailureReason {
    /// `FAILURE_REASON_NONE`.
    #[default]
    #[serde(rename = "FAILURE_REASON_NONE")]
    None,
    /// `FAILURE_REASON_TIMEOUT`: routes left, but the payment timeout passed.
    #[serde(rename = "FAILURE_REASON_TIMEOUT")]
    Timeout,
    /// `FAILURE_REASON_NO_ROUTE`.
    #[serde(rename = "FAILURE_REASON_NO_ROUTE")]
    NoRoute,
    /// `FAILURE_REASON_ERROR`: a non-recoverable error.
    #[serde(rename = "FAILURE_REASON_ERROR")]
    Error,
    /// `FAILURE_REASON_INCORRECT_PAYMENT_DETAILS`: unknown hash, wrong amount or CLTV at the payee.
    #[serde(rename = "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS")]
    IncorrectPaymentDetails,
    /// `FAILURE_REASON_INSUFFICIENT_BALANCE`.
    #[serde(rename = "FAILURE_REASON_INSUFFICIENT_BALANCE")]
    InsufficientBalance,
    /// `FAILURE_REASON_CANCELED`.
    #[serde(rename = "FAILURE_REASON_CANCELED")]
    Canceled,
}

/// `lnrpc.Payment` (the fields read, or written by the stand-in).
/// `payment_hash` and `payment_preimage` are hex strings here, unlike the
/// base64 `bytes` elsewhere.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Payment {
    /// `payment_hash`, hex.
    pub payment_hash: String,
    /// `value_sat`.
    pub value_sat: I64,
    /// `value_msat`.
    pub value_msat: I64,
    /// `payment_preimage`, hex (all zeros until it succeeded).
    pub payment_preimage: String,
    /// `payment_request`.
    pub payment_request: String,
    /// `status`.
    pub status: PaymentStatus,
    /// `fee_sat`.
    pub fee_sat: I64,
    /// `fee_msat`.
    pub fee_msat: I64,
    /// `creation_time_ns`.
    pub creation_time_ns: I64,
    /// `payment_index`.
    pub payment_index: U64,
    /// `failure_reason`.
    pub failure_reason: FailureReason,
}

/// `google.rpc.Status`, as the gateway writes an error: `code` is the gRPC
/// code, a JSON number.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RpcStatus {
    /// The gRPC code.
    pub code: i32,
    /// The message (it varies between LND versions: match a substring at most).
    pub message: String,
    /// `details` (always empty from LND).
    pub details: Vec<serde_json::Value>,
}

/// One line of a server stream: `{"result": …}` or `{"error": {…}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum StreamLine<T> {
    /// A message.
    #[serde(rename = "result")]
    Result(T),
    /// The stream's error (its last line).
    #[serde(rename = "error")]
    Error(RpcStatus),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_line_is_a_result_or_an_error() {
        let line: StreamLine<Payment> =
            serde_json::from_str(r#"{"result":{"payment_hash":"ab","status":"SUCCEEDED","fee_msat":"3"}}"#).unwrap();
        let StreamLine::Result(p) = line else { panic!("a result") };
        assert_eq!((p.status, p.fee_msat), (PaymentStatus::Succeeded, I64(3)));
        let line: StreamLine<Payment> =
            serde_json::from_str(r#"{"error":{"code":6,"message":"invoice is already paid","details":[]}}"#).unwrap();
        assert!(matches!(line, StreamLine::Error(RpcStatus { code: 6, .. })));
    }

    #[test]
    fn a_request_refuses_unknown_fields_and_sends_no_defaults() {
        assert!(serde_json::from_str::<SendPaymentRequest>(r#"{"nope":1}"#).is_err());
        let req = SendPaymentRequest { no_inflight_updates: true, fee_limit_msat: I64(10), ..Default::default() };
        assert_eq!(serde_json::to_string(&req).unwrap(), r#"{"fee_limit_msat":"10","no_inflight_updates":true}"#);
    }
}
