//! The seam where sqlx errors become the store port's [`StoreError`].
//!
//! No sqlx type crosses into core: every query's error goes through
//! [`map_err`]. Database errors are classified by SQLSTATE, unique violations by
//! constraint name (the table in [`unique_of`]). A connection failure keeps
//! the sqlx error as its source.

use sqlx::error::DatabaseError;
use sunusav_core::ports::BackendError;
use sunusav_core::ports::store::{StoreError, Unique};

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

/// The port's rule for a unique constraint of the schema; `None` for a
/// constraint the port has no rule for (a schema bug, reported as `Invalid`).
pub(crate) fn unique_of(constraint: &str) -> Option<Unique> {
    Some(match constraint {
        "tontine_groups_pkey" => Unique::Group,
        "group_members_pkey" | "group_members_member_key" => Unique::GroupMember,
        "invoices_pkey" => Unique::Invoice,
        // A partial unique index: PostgreSQL names the index as the constraint.
        "invoices_open_member_cycle" => Unique::OpenInvoice,
        "ledger_entries_key_key" => Unique::LedgerEntry,
        "contributions_pkey" => Unique::Contribution,
        "contribution_member_cycle" => Unique::ContributionMemberCycle,
        "payment_attempts_idempotency_key_key" => Unique::PaymentAttempt,
        "webhook_events_event_key_key" => Unique::Webhook,
        "payout_invoices_payment_hash_key" => Unique::PayoutInvoice,
        "payment_attempts_payment_hash_key" => Unique::AttemptPaymentHash,
        _ => return None,
    })
}

/// Maps any sqlx error to the port's error.
pub(crate) fn map_err(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::Database(ref db) => {
            if let Some(mapped) = map_database(db.as_ref()) {
                return mapped;
            }
            let context = describe(db.as_ref());
            StoreError::Unavailable(BackendError::caused_by(&context, err))
        }
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
        other => StoreError::Unavailable(BackendError::from_source(other)),
    }
}

/// A database error the store port names; `None` for the rest, which means
/// the unit of work is lost and may be retried whole (`Unavailable`).
fn map_database(db: &dyn DatabaseError) -> Option<StoreError> {
    let code = db.code().map(std::borrow::Cow::into_owned).unwrap_or_default();
    Some(match code.as_str() {
        LOCK_NOT_AVAILABLE => StoreError::LockTimeout,
        UNIQUE_VIOLATION => match unique_of(db.constraint().unwrap_or_default()) {
            Some(unique) => StoreError::Duplicate(unique),
            None => StoreError::Invalid(describe(db)),
        },
        CHECK_VIOLATION | FOREIGN_KEY_VIOLATION | NOT_NULL_VIOLATION => StoreError::Invalid(describe(db)),
        // Class 22: data exceptions (a value out of a column's range, …).
        c if c.starts_with("22") => StoreError::Invalid(describe(db)),
        // Class 08 (connection), 57 (operator intervention: terminated, shutting
        // down), 53 (insufficient resources), 40 (serialization failure, deadlock),
        // 25P02 (an earlier statement aborted the transaction), and anything else.
        _ => return None,
    })
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
    fn unique_constraints_map_to_the_ports_rules() {
        assert_eq!(unique_of("contribution_member_cycle"), Some(Unique::ContributionMemberCycle));
        assert_eq!(unique_of("tontine_groups_pkey"), Some(Unique::Group));
        assert_eq!(unique_of("invoices_pkey"), Some(Unique::Invoice));
        assert_eq!(unique_of("invoices_open_member_cycle"), Some(Unique::OpenInvoice));
        assert_eq!(unique_of("ledger_entries_key_key"), Some(Unique::LedgerEntry));
        assert_eq!(unique_of("payment_attempts_idempotency_key_key"), Some(Unique::PaymentAttempt));
        assert_eq!(unique_of("something_else"), None);
    }

    #[test]
    fn connection_failures_are_retryable() {
        assert!(map_err(sqlx::Error::PoolTimedOut).is_retryable());
        let reset = map_err(sqlx::Error::Io(std::io::Error::other("reset")));
        assert!(reset.is_retryable());
        let source = std::error::Error::source(&reset).and_then(std::error::Error::source);
        assert!(source.is_some_and(|s| s.downcast_ref::<sqlx::Error>().is_some()), "the sqlx error is kept: {reset:?}");
        assert_eq!(map_err(sqlx::Error::RowNotFound), StoreError::NotFound);
    }
}
