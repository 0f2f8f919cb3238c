//! The seam where sqlx errors become the store port's [`StoreError`].
//!
//! No sqlx type crosses into core: every query's error goes through
//! [`map_err`]. Database errors are classified by SQLSTATE, unique violations by
//! constraint name (the table in [`duplicate_name`]).

use sqlx::error::DatabaseError;
use sunusav_core::ports::store::StoreError;

/// SQLSTATE `lock_not_available`: `lock_timeout` elapsed.
const LOCK_NOT_AVAILABLE: &str = "55P03";
/// SQLSTATE `unique_violation`.
const UNIQUE_VIOLATION: &str = "23505";
/// SQLSTATE `check_violation`.
const CHECK_VIOLATION: &str = "23514";
/// SQLSTATE `foreign_key_violation`.
const FOREIGN_KEY_VIOLATION: &str = "23503";
/// SQLSTATE `not_null_violation`.
const NOT_NULL_VIOLATION: &str = "23502";

/// The port's name for a unique constraint of the schema.
pub(crate) fn duplicate_name(constraint: &str) -> &'static str {
    match constraint {
        "tontine_groups_pkey" => "group",
        "group_members_pkey" | "group_members_member_key" => "group_member",
        "invoices_pkey" => "invoice",
        "contributions_pkey" => "contribution",
        "contribution_member_cycle" => "contribution_member_cycle",
        "payment_attempts_idempotency_key_key" => "payment_attempt",
        "webhook_events_event_key_key" => "webhook_event",
        _ => "unknown",
    }
}

/// Maps any sqlx error to the port's error.
pub(crate) fn map_err(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::Database(db) => map_database(db.as_ref()),
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. } => StoreError::Corrupt(err.to_string()),
        sqlx::Error::Configuration(_) | sqlx::Error::InvalidArgument(_) | sqlx::Error::Encode(_) => {
            StoreError::Invalid(err.to_string())
        }
        // Io, Tls, Protocol, PoolTimedOut, PoolClosed, WorkerCrashed, BeginFailed, …:
        // the connection or the database failed; the transaction is gone.
        other => StoreError::Unavailable(other.to_string()),
    }
}

fn map_database(db: &dyn DatabaseError) -> StoreError {
    let code = db.code().map(std::borrow::Cow::into_owned).unwrap_or_default();
    match code.as_str() {
        LOCK_NOT_AVAILABLE => StoreError::LockTimeout,
        UNIQUE_VIOLATION => StoreError::Duplicate(duplicate_name(db.constraint().unwrap_or_default())),
        CHECK_VIOLATION | FOREIGN_KEY_VIOLATION | NOT_NULL_VIOLATION => StoreError::Invalid(describe(db)),
        // Class 22: data exceptions (a value out of a column's range, …).
        c if c.starts_with("22") => StoreError::Invalid(describe(db)),
        // Class 08 (connection), 57 (operator intervention: terminated, shutting
        // down), 53 (insufficient resources), 40 (serialization failure, deadlock),
        // 25P02 (an earlier statement aborted the transaction), and anything else:
        // the unit of work is lost and may be retried whole.
        _ => StoreError::Unavailable(describe(db)),
    }
}

fn describe(db: &dyn DatabaseError) -> String {
    match (db.code(), db.constraint()) {
        (Some(code), Some(constraint)) => format!("{} [{code}, {constraint}]", db.message()),
        (Some(code), None) => format!("{} [{code}]", db.message()),
        _ => db.message().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_constraints_map_to_the_ports_names() {
        assert_eq!(duplicate_name("contribution_member_cycle"), "contribution_member_cycle");
        assert_eq!(duplicate_name("tontine_groups_pkey"), "group");
        assert_eq!(duplicate_name("invoices_pkey"), "invoice");
        assert_eq!(duplicate_name("payment_attempts_idempotency_key_key"), "payment_attempt");
        assert_eq!(duplicate_name("something_else"), "unknown");
    }

    #[test]
    fn connection_failures_are_retryable() {
        assert!(map_err(sqlx::Error::PoolTimedOut).is_retryable());
        assert!(map_err(sqlx::Error::Io(std::io::Error::other("reset"))).is_retryable());
        assert_eq!(map_err(sqlx::Error::RowNotFound), StoreError::NotFound);
    }
}
