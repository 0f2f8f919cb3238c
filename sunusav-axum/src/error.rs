//! [`ApiError`]: the one error type of every route, answered as
//! `{"error": {"code": "...", "message": "..."}}` with a stable code.
//!
//! Details (the underlying error) are logged, never returned; no message ever
//! contains an expected signature or a secret.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;
use sunusav_core::ports::QueueError;
use sunusav_core::services::{EventError, ServiceError};
use sunusav_core::webhook::VerifyError;
use sunusav_core::{ContributionError, GroupError};

/// The stable code of an error response, also left in the response's
/// extensions so that middleware (metrics) can read it without parsing the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorCode(pub &'static str);

/// An HTTP error: a status, a stable machine-readable code and a short message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// An error with this status, code and public message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The public message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// 404 `not_found`.
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    /// 401 `unauthorized`.
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "missing or invalid bearer token")
    }

    /// 413 `body_too_large`.
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", format!("the body exceeds {limit} bytes"))
    }

    /// 415 `unsupported_media_type`.
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected content-type application/json",
        )
    }

    /// 408 `request_timeout`: the request (its body included) took too long.
    pub fn request_timeout() -> Self {
        Self::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", "the request took too long")
    }

    /// 503 `unavailable`: a dependency is down; retry later.
    pub fn unavailable() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "a dependency is unavailable, retry later")
    }

    /// 500 `internal`: logged with `detail`, answered without it.
    pub fn internal(detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }

    /// 409 `event_conflict`: a delivery reused a recorded event id with
    /// another body. It is kept beside the first, for an operator, and not
    /// acted on; delivering it again changes nothing.
    pub fn event_conflict() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "event_conflict",
            "this event id was delivered before with another body; the new body is kept for an operator, not acted on",
        )
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// The default error for a bare status (used to give axum's own plain
    /// responses, such as 405, a JSON body).
    pub fn from_status(status: StatusCode) -> Self {
        let code = match status {
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::REQUEST_TIMEOUT => "request_timeout",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::UNPROCESSABLE_ENTITY => "invalid_input",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            s if s.is_client_error() => "bad_request",
            _ => "internal",
        };
        let message = status.canonical_reason().unwrap_or("error").to_ascii_lowercase();
        Self::new(status, code, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        let mut response = (self.status, Json(body)).into_response();
        response.extensions_mut().insert(ErrorCode(self.code));
        response
    }
}

impl From<VerifyError> for ApiError {
    fn from(e: VerifyError) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, e.code(), e.to_string())
    }
}

impl From<EventError> for ApiError {
    fn from(e: EventError) -> Self {
        Self::bad_request(e.code(), e.to_string())
    }
}

impl From<ContributionError> for ApiError {
    fn from(e: ContributionError) -> Self {
        Self::new(StatusCode::CONFLICT, e.code(), e.to_string())
    }
}

impl From<GroupError> for ApiError {
    fn from(e: GroupError) -> Self {
        let (status, code) = match &e {
            GroupError::TooFewMembers => (StatusCode::UNPROCESSABLE_ENTITY, "too_few_members"),
            GroupError::TooManyMembers => (StatusCode::UNPROCESSABLE_ENTITY, "too_many_members"),
            GroupError::DuplicateMember(_) => (StatusCode::UNPROCESSABLE_ENTITY, "duplicate_member"),
            GroupError::ZeroContribution => (StatusCode::UNPROCESSABLE_ENTITY, "zero_contribution"),
            GroupError::FeeTooHigh => (StatusCode::UNPROCESSABLE_ENTITY, "fee_too_high"),
            GroupError::PotOverflow => (StatusCode::UNPROCESSABLE_ENTITY, "pot_overflow"),
            GroupError::InvalidTransition(_) => (StatusCode::CONFLICT, "invalid_transition"),
            GroupError::OrganizerNotMember => (StatusCode::UNPROCESSABLE_ENTITY, "organizer_not_member"),
            GroupError::Rules(rules) => (StatusCode::UNPROCESSABLE_ENTITY, rules.code()),
            // `Corrupt`, and whatever a later version adds: a bug to look at.
            _ => return Self::internal(&e),
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        match &e {
            QueueError::NotFound => Self::not_found("job"),
            QueueError::WrongState(_) => Self::new(StatusCode::CONFLICT, "wrong_state", e.to_string()),
            QueueError::Invalid(_) => Self::bad_request("invalid_job", "invalid job"),
            QueueError::LeaseLost => Self::new(StatusCode::CONFLICT, "lease_lost", e.to_string()),
            QueueError::MalformedToken => Self::bad_request("malformed_token", "malformed lease token"),
            QueueError::Unavailable(_) => {
                tracing::warn!(error = %e, "queue unavailable");
                Self::unavailable()
            }
            // `Corrupt`, and whatever a later version adds: a bug to look at.
            _ => Self::internal(&e),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        if e.is_retryable() {
            tracing::warn!(error = %e, "dependency unavailable");
            return Self::unavailable();
        }
        match e {
            ServiceError::NotFound(what) => Self::not_found(what),
            ServiceError::NothingToRelease => {
                Self::new(StatusCode::CONFLICT, "nothing_to_release", "the member holds no balance in the group")
            }
            e @ ServiceError::NotDead(_) => Self::new(StatusCode::CONFLICT, "not_dead", e.to_string()),
            e @ ServiceError::BodyExpired => Self::new(StatusCode::CONFLICT, "body_expired", e.to_string()),
            ServiceError::Group(e) => e.into(),
            ServiceError::Contribution(e) => e.into(),
            ServiceError::Bid(e) => {
                // The auction's rules refuse the amount or the bidder (422);
                // the group's state refuses bidding now (409).
                let status = if matches!(e, sunusav_core::domain::group::BidError::Rule(_)) {
                    StatusCode::UNPROCESSABLE_ENTITY
                } else {
                    StatusCode::CONFLICT
                };
                Self::new(status, e.code(), e.to_string())
            }
            ServiceError::Queue(e) => e.into(),
            ServiceError::Destination(e) => {
                use sunusav_core::domain::payout::DestinationError as D;
                let code = match &e {
                    D::InvalidNodeKey => "invalid_node_key",
                    D::WrongNetwork { .. } => "wrong_network",
                    D::WrongAmount { .. } => "wrong_amount",
                    D::Expired(_) => "invoice_expired",
                    D::ZeroFeeLimit | D::InvalidTimeout | D::InvalidBasisPoints => "invalid_policy",
                    _ => "invalid_invoice",
                };
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
            }
            ServiceError::NotPayable(why) => Self::new(StatusCode::CONFLICT, "not_payable", why),
            ServiceError::Forbidden(denied) => Self::new(StatusCode::FORBIDDEN, denied.code(), denied.to_string()),
            other => Self::internal(&other),
        }
    }
}
