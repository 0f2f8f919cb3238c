//! The seam between LND's answers and the port's errors.
//!
//! Errors are matched on the gRPC code, plus at most a substring of the
//! message (LND's messages vary between versions). A payment's table:
//!
//! | LND's answer | [`PayError`] |
//! |---|---|
//! | `AlreadyExists` "invoice is already paid" (`ErrAlreadyPaid`) | `AlreadyPaid` |
//! | `AlreadyExists`, any other ("payment is in transition", "payment already exists") | `InTransition` |
//! | final update `FAILED`: `NO_ROUTE`, `INSUFFICIENT_BALANCE`, `TIMEOUT`, `CANCELED` | `Transient` |
//! | final update `FAILED`: `INCORRECT_PAYMENT_DETAILS`, `ERROR` | `Permanent` |
//! | `Unknown` "invoice expired" or "not for current active network" (checked before sending), `InvalidArgument` (the gateway refused the request) | `Permanent` |
//! | no connection: refused, TLS refused, connect time-out (nothing sent) | `Transient` |
//! | refused before the RPC ran: HTTP 401/403, `Unauthenticated`, `PermissionDenied`, `Unavailable`, `Unknown` with "macaroon" or "verification failed" (LND's macaroon checks) | `Transient` |
//! | after sending: a cut stream, an error line, a stream that ends without a final update, no answer in time, an unreadable answer or error | `Timeout` (the payout engine looks the payment up) |
//!
//! Outside payments, every failure is [`PaymentsError::Unavailable`] except
//! where a call says otherwise (`NotFound` of a look-up is `Unknown` or
//! `None`; of a cancel, `Invalid`): an answer that cannot be read is never
//! guessed to mean "unknown".

use std::path::PathBuf;

use sunusav_core::ports::BackendError;
use sunusav_core::ports::payments::{PayError, PaymentsError};

use crate::transport::CallError;
use crate::wire::FailureReason;

/// gRPC codes LND's answers carry.
pub mod code {
    /// `Unknown`: a plain Go error.
    pub const UNKNOWN: i32 = 2;
    /// `InvalidArgument`.
    pub const INVALID_ARGUMENT: i32 = 3;
    /// `NotFound`.
    pub const NOT_FOUND: i32 = 5;
    /// `AlreadyExists`.
    pub const ALREADY_EXISTS: i32 = 6;
    /// `PermissionDenied`.
    pub const PERMISSION_DENIED: i32 = 7;
    /// `Unavailable`.
    pub const UNAVAILABLE: i32 = 14;
    /// `Unauthenticated`.
    pub const UNAUTHENTICATED: i32 = 16;
}

/// Why [`LndNode::connect`](crate::LndNode::connect) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The macaroon file could not be read.
    #[error("reading the macaroon file {path:?}: {source}")]
    Macaroon {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The certificate file could not be read.
    #[error("reading LND's TLS certificate {path:?}: {source}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The configuration is not usable (URL, certificate, empty macaroon).
    #[error("invalid LND configuration: {0}")]
    Invalid(String),
}

/// A failure outside a payment: the node is unavailable.
pub fn unavailable(context: &str, e: CallError) -> PaymentsError {
    PaymentsError::Unavailable(BackendError::caused_by(context, e))
}

/// Whether LND refused the call before running it (authentication, a node
/// not ready): nothing was done.
fn refused_before_rpc(e: &CallError) -> bool {
    match e {
        CallError::Http { http, .. } => http.as_u16() == 401 || http.as_u16() == 403,
        CallError::Rpc { http, status } => {
            matches!(status.code, code::UNAUTHENTICATED | code::PERMISSION_DENIED | code::UNAVAILABLE)
                || http.as_u16() == 401
                || (status.code == code::UNKNOWN
                    && (status.message.contains("macaroon") || status.message.contains("verification failed")))
        }
        _ => false,
    }
}

/// A payment call's failure before a final update.
#[allow(clippy::needless_pass_by_value)] // used as `map_err(pay_error)`
pub fn pay_error(e: CallError) -> PayError {
    match &e {
        CallError::NotSent(_) => PayError::Transient(format!("LND unreachable, nothing sent: {e}")),
        _ if e.is_rpc(code::ALREADY_EXISTS, "already paid") => PayError::AlreadyPaid,
        _ if e.rpc_code() == Some(code::ALREADY_EXISTS) => PayError::InTransition,
        _ if e.is_rpc(code::UNKNOWN, "invoice expired")
            || e.is_rpc(code::UNKNOWN, "not for current active network")
            || e.rpc_code() == Some(code::INVALID_ARGUMENT) =>
        {
            PayError::Permanent(e.to_string())
        }
        _ if refused_before_rpc(&e) => PayError::Transient(format!("LND refused the call: {e}")),
        _ => {
            tracing::warn!(error = %e, "a payment's answer was lost or unreadable; it may be in flight");
            PayError::Timeout
        }
    }
}

/// A payment's final failure.
pub fn failed(reason: FailureReason) -> PayError {
    let what = format!("payment failed: {reason:?}");
    match reason {
        FailureReason::IncorrectPaymentDetails | FailureReason::Error => PayError::Permanent(what),
        FailureReason::NoRoute
        | FailureReason::InsufficientBalance
        | FailureReason::Timeout
        | FailureReason::Canceled
        | FailureReason::None => PayError::Transient(what),
    }
}
