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
/// `Unavailable` (connection, timeout, cluster reconfiguration, out of
/// memory), with the client's error as its source, except an invalid
/// command, reported as `Invalid` with the server's message, and `Corrupt`
/// for a reply the client could not parse or a script that failed at run
/// time (`ERR` from `@user_script`: a bug, or a job hash it cannot read; a
/// retry would fail the same way).
pub(crate) fn to_queue_error(e: &FredError) -> QueueError {
    match e.kind() {
        ErrorKind::InvalidArgument | ErrorKind::InvalidCommand => {
            QueueError::Invalid(format!("redis: {}", e.details()))
        }
        ErrorKind::Parse => QueueError::Corrupt(format!("redis: {}", e.details())),
        ErrorKind::Unknown if script_failed(e.details()) => {
            QueueError::Corrupt(format!("a queue script failed: {}", e.details()))
        }
        kind => QueueError::Unavailable(BackendError::caused_by(&format!("redis: {kind:?}"), e.clone())),
    }
}

/// Whether a server error is a Lua run-time error of a script: not an outage
/// met by a script, such as `OOM` or `BUSY` (which keep their own prefix), or
/// a key that a cluster node no longer serves while its slot migrates.
fn script_failed(details: &str) -> bool {
    details.starts_with("ERR ") && details.contains("user_script") && !details.contains("non local key")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped(kind: ErrorKind, details: &str) -> QueueError {
        to_queue_error(&FredError::new(kind, details.to_string()))
    }

    #[test]
    fn a_script_that_fails_at_run_time_is_corrupt_and_an_outage_unavailable() {
        let lua = "ERR user_script:12: attempt to perform arithmetic on a nil value script: 1a2b, on @user_script:12.";
        assert!(matches!(mapped(ErrorKind::Unknown, lua), QueueError::Corrupt(m) if m.contains("arithmetic")));
        let old = "ERR Error running script (call to f_1a2b): @user_script:3: attempt to index a nil value";
        assert!(matches!(mapped(ErrorKind::Unknown, old), QueueError::Corrupt(_)));
        for outage in [
            "OOM command not allowed when used memory > 'maxmemory'. script: 1a2b, on @user_script:9.",
            "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.",
            "LOADING Redis is loading the dataset in memory",
            "ERR max number of clients reached",
            "ERR Script attempted to access a non local key in a cluster node script: 1a2b, on @user_script:4.",
        ] {
            assert!(mapped(ErrorKind::Unknown, outage).is_retryable(), "{outage}");
        }
        assert!(mapped(ErrorKind::IO, "connection reset").is_retryable());
        assert!(matches!(mapped(ErrorKind::Parse, "bad frame"), QueueError::Corrupt(_)));
        assert!(matches!(mapped(ErrorKind::InvalidArgument, "WRONGTYPE"), QueueError::Invalid(_)));
    }
}
