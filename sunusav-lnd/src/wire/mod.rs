//! LND's REST messages, field for field as `lightning.proto`,
//! `routerrpc/router.proto` and `invoicesrpc/invoices.proto` name them (the
//! gateway marshals with `UseProtoNames` and `EmitUnpopulated`).
//!
//! Requests refuse unknown fields, as the gateway does (its unmarshaler does
//! not discard them); replies ignore them, since each LND release adds some.
//! Only the fields this crate sends or reads are modelled.

pub mod codec;
mod invoice;
mod payment;

use serde::{Deserialize, Serialize};

pub use codec::{B64, I64, SecretB64, U64};
pub use invoice::{
    AddInvoiceRequest, AddInvoiceResponse, CancelInvoiceMsg, Invoice, InvoiceState, ListInvoiceResponse,
};
pub use payment::{FailureReason, Payment, PaymentStatus, SendPaymentRequest};

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
