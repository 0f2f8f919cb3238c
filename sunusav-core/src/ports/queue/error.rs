//! [`QueueError`]: the errors of every queue capability.

use crate::ports::BackendError;

use super::JobState;

/// Errors of the queue port.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The lease is gone: expired and taken by another worker, or the token
    /// does not hold the job.
    #[error("lease lost")]
    LeaseLost,
    /// The token is of a shape this queue never mints (another adapter's, or
    /// made up): no lease can be held by it.
    #[error("malformed lease token")]
    MalformedToken,
    /// No such job.
    #[error("job not found")]
    NotFound,
    /// The job is not in a state that allows the operation.
    #[error("job is {0:?}")]
    WrongState(JobState),
    /// Invalid arguments (zero attempts, payload too large, …).
    #[error("invalid job: {0}")]
    Invalid(String),
    /// The backend is unreachable or did not answer in time; retry later.
    #[error("queue unavailable: {0}")]
    Unavailable(#[source] BackendError),
    /// The backend answered something this adapter cannot read (a reply of the
    /// wrong shape, a stored job missing a field): a bug or a corruption to
    /// look at, not a reason to retry.
    #[error("queue backend answered something unreadable: {0}")]
    Corrupt(String),
}

impl QueueError {
    /// Whether the same call may succeed later.
    pub const fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}
