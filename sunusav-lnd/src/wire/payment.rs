//! Payments: `SendPaymentV2`'s request and the `Payment` updates of
//! `SendPaymentV2` and `TrackPaymentV2`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::codec::{B64, I64, SecretB64, U64, is_default};

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
