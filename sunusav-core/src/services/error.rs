//! The services' error.

use crate::domain::access::Denied;
use crate::domain::attempt::{AttemptError, AttemptStatus};
use crate::domain::group::{BidError, ContributionError, GroupError};
use crate::domain::payout::DestinationError;
use crate::ports::{BackendError, PaymentsError, QueueError, StoreError};

/// Why a use case failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The named thing does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A group rule refused the change.
    #[error(transparent)]
    Group(#[from] GroupError),
    /// A payment attempt's lifecycle refused the move.
    #[error(transparent)]
    Attempt(#[from] AttemptError),
    /// A contribution rule refused the change.
    #[error(transparent)]
    Contribution(#[from] ContributionError),
    /// A bid was refused (an auctioned order's rules).
    #[error(transparent)]
    Bid(#[from] BidError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The queue failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The Lightning node failed.
    #[error(transparent)]
    Payments(#[from] PaymentsError),
    /// The member holds no balance in the group to release.
    #[error("nothing to release: the member's balance is zero")]
    NothingToRelease,
    /// An operator retried a payout that is not dead (and was never
    /// retried): its own job runs it, or it is paid.
    #[error("the payout is not dead: it is {0}")]
    NotDead(AttemptStatus),
    /// A delivery's raw body was dropped by retention: it cannot be replayed.
    #[error("the delivery's body was dropped by retention")]
    BodyExpired,
    /// Not now: the outcome is pending elsewhere (a payment in flight); retry later.
    #[error("retry later: {0}")]
    RetryLater(String),
    /// A job's payload could not be encoded or decoded (the serde error is the source).
    #[error("invalid job payload: {0}")]
    InvalidPayload(#[source] BackendError),
    /// A payout destination, invoice or policy was refused.
    #[error(transparent)]
    Destination(#[from] DestinationError),
    /// The beneficiary is not a member of the group, or the cycle is not
    /// one whose payout is still to come.
    #[error("{0}")]
    NotPayable(&'static str),
    /// The caller may not do this (a rule of [`access`](crate::domain::access)).
    #[error(transparent)]
    Forbidden(#[from] Denied),
    /// Stored state breaks a rule the code relies on: for an operator.
    #[error("invariant broken: {0}")]
    Invariant(String),
}

impl ServiceError {
    /// Whether retrying the same work later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_retryable(),
            Self::Queue(e) => e.is_retryable(),
            Self::Payments(e) => matches!(e, PaymentsError::Unavailable(_)),
            Self::RetryLater(_) => true,
            Self::NotFound(_)
            | Self::Group(_)
            | Self::Attempt(_)
            | Self::Contribution(_)
            | Self::Bid(_)
            | Self::NothingToRelease
            | Self::NotDead(_)
            | Self::BodyExpired
            | Self::InvalidPayload(_)
            | Self::Destination(_)
            | Self::NotPayable(_)
            | Self::Forbidden(_)
            | Self::Invariant(_) => false,
        }
    }
}
