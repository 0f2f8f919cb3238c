//! What a test scripts: the outcome of a payment and the shape of the
//! answer ([`SendScript`], per payment hash or for the next payment sent),
//! and faults of the next request to an endpoint ([`RouteFault`]).

use std::time::Duration;

use crate::wire::FailureReason;

/// An endpoint of the stand-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Route {
    /// `GET /v1/getinfo`.
    GetInfo,
    /// `POST /v1/invoices`.
    AddInvoice,
    /// `GET /v1/invoices`.
    ListInvoices,
    /// `GET /v1/invoice/{r_hash_str}`.
    LookupInvoice,
    /// `POST /v2/invoices/cancel`.
    CancelInvoice,
    /// `POST /v2/router/send`.
    SendPayment,
    /// `GET /v2/router/track/{payment_hash}`.
    TrackPayment,
    /// `GET /v1/invoices/subscribe`.
    SubscribeInvoices,
}

/// A fault of the next request to a [`Route`], met before the node does
/// anything with it (nothing is paid, settled or created), except where said.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteFault {
    /// An HTTP status with a body that is not LND's (a proxy's page).
    Status(u16),
    /// `401 Unauthorized` with an empty body (an authenticating proxy).
    Unauthorized,
    /// The gateway's error: HTTP status from the gRPC code, its JSON body.
    Rpc {
        /// The gRPC code.
        code: i32,
        /// The message.
        message: String,
    },
    /// The headers come after this long; then the request is served.
    SlowHeaders(Duration),
    /// `200` with a body that is not JSON.
    Garbage,
    /// A stream: the request is served and the stream is cut (the
    /// connection dropped) after this many lines.
    CutAfter(usize),
}

/// What becomes of a payment the node accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// It reaches the payee, if the payee accepts it (the default).
    Succeed,
    /// It fails with this reason.
    Fail(FailureReason),
    /// It stays in flight until [`StandIn::resolve`](super::StandIn::resolve)
    /// or [`StandIn::resolve_all_in_flight`](super::StandIn::resolve_all_in_flight).
    InFlight,
}

/// How `POST /v2/router/send` answers.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answer {
    /// The updates, then the end of the stream.
    Normal,
    /// The stream is cut after this many lines (0: right after the headers).
    CutAfter(usize),
    /// After the headers, an error line instead of the final update.
    ErrorLine {
        /// The gRPC code.
        code: i32,
        /// The message.
        message: String,
    },
    /// Once the payment is made (or failed), this status with a body that
    /// is not LND's: the answer is lost.
    StatusAfter(u16),
    /// This status with a body that is not LND's, before the node does
    /// anything (payment control is not reached; nothing is sent).
    StatusBefore(u16),
    /// `401 Unauthorized`, before the node does anything.
    Unauthorized,
}

/// A payment's script: its outcome, its answer, and a delay before the
/// headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendScript {
    /// What becomes of the payment.
    pub outcome: Outcome,
    /// How the call answers.
    pub answer: Answer,
    /// A wait before the headers (slow headers).
    pub delay: Duration,
}

impl SendScript {
    /// The payment succeeds and the answer is normal.
    pub fn succeed() -> Self {
        Self { outcome: Outcome::Succeed, answer: Answer::Normal, delay: Duration::ZERO }
    }

    /// The payment fails with `reason`.
    pub fn fail(reason: FailureReason) -> Self {
        Self { outcome: Outcome::Fail(reason), ..Self::succeed() }
    }

    /// The payment stays in flight.
    pub fn in_flight() -> Self {
        Self { outcome: Outcome::InFlight, ..Self::succeed() }
    }

    /// The stream is cut after `lines` lines.
    #[must_use]
    pub fn cut_after(mut self, lines: usize) -> Self {
        self.answer = Answer::CutAfter(lines);
        self
    }

    /// An error line ends the stream.
    #[must_use]
    pub fn error_line(mut self, code: i32, message: &str) -> Self {
        self.answer = Answer::ErrorLine { code, message: message.to_owned() };
        self
    }

    /// The answer is lost behind an HTTP status.
    #[must_use]
    pub fn status_after(mut self, status: u16) -> Self {
        self.answer = Answer::StatusAfter(status);
        self
    }

    /// The answer is this status, and nothing is sent.
    pub fn status_before(status: u16) -> Self {
        Self { answer: Answer::StatusBefore(status), ..Self::succeed() }
    }

    /// The answer is 401, and nothing is sent.
    pub fn unauthorized() -> Self {
        Self { answer: Answer::Unauthorized, ..Self::succeed() }
    }

    /// The headers come after `delay`.
    #[must_use]
    pub fn slow_headers(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}
