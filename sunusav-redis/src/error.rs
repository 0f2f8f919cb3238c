//! Errors of connecting, and the mapping of Redis errors into [`QueueError`].

use fred::error::{Error as FredError, ErrorKind};
use sunusav_core::ports::BackendError;
use sunusav_core::ports::queue::QueueError;

/// Why a connection or a queue could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The settings are invalid (bad URL, port, queue name…).
    #[error("invalid Redis configuration: {0}")]
    InvalidConfig(String),
    /// Redis could not be reached, refused the credentials, or failed to load the scripts.
    #[error("cannot connect to Redis")]
    Redis(#[source] FredError),
}

/// Maps a Redis client error into the port's error: everything is
/// `Unavailable` (connection, timeout, cluster reconfiguration), with the
/// client's error as its source, except a script bug, reported as `Invalid`
/// with the server's message, and a reply the client could not parse,
/// `Corrupt`.
pub(crate) fn to_queue_error(e: &FredError) -> QueueError {
    match e.kind() {
        ErrorKind::InvalidArgument | ErrorKind::InvalidCommand => {
            QueueError::Invalid(format!("redis: {}", e.details()))
        }
        ErrorKind::Parse => QueueError::Corrupt(format!("redis: {}", e.details())),
        kind => QueueError::Unavailable(BackendError::caused_by(&format!("redis: {kind:?}"), e.clone())),
    }
}
