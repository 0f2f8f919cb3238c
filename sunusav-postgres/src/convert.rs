//! Lossless conversions between domain values and column values.
//!
//! PostgreSQL has no unsigned integers: amounts and times in unix milliseconds
//! (`u64`) are `BIGINT` and cycles (`u32`) are `INTEGER`. Every conversion is
//! checked (`try_from`, never `as`): a value that does not fit is refused on
//! the way in (`Invalid`) and reported as a corrupt row on the way out
//! (`Corrupt`).

use sunusav_core::domain::ids::{GroupId, MemberId, PaymentHash};
use sunusav_core::domain::keys::IdempotencyKey;
use sunusav_core::domain::money::Msat;
use sunusav_core::ports::store::StoreError;
use uuid::Uuid;

/// An amount as a `BIGINT`.
pub(crate) fn msat_to_db(amount: Msat) -> Result<i64, StoreError> {
    i64::try_from(amount.get()).map_err(|_| StoreError::Invalid(format!("amount {amount} does not fit in a BIGINT")))
}

/// A `BIGINT` amount column as an amount.
pub(crate) fn msat_from_db(value: i64, column: &str) -> Result<Msat, StoreError> {
    u64::try_from(value).map(Msat::new).map_err(|_| StoreError::Corrupt(format!("{column} is negative: {value}")))
}

/// A cycle (or count, or position) as an `INTEGER`.
pub(crate) fn u32_to_db(value: u32, what: &str) -> Result<i32, StoreError> {
    i32::try_from(value).map_err(|_| StoreError::Invalid(format!("{what} {value} does not fit in an INTEGER")))
}

/// An `INTEGER` column as a cycle (or count).
pub(crate) fn u32_from_db(value: i32, column: &str) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column} is negative: {value}")))
}

/// A row id (an outbox id, a ledger position) as a `BIGINT`.
pub(crate) fn id_to_db(id: u64) -> Result<i64, StoreError> {
    i64::try_from(id).map_err(|_| StoreError::Invalid(format!("id {id} does not fit in a BIGINT")))
}

/// A `BIGSERIAL` id as a row id.
pub(crate) fn id_from_db(id: i64) -> Result<u64, StoreError> {
    u64::try_from(id).map_err(|_| StoreError::Corrupt(format!("id is negative: {id}")))
}

/// A time in unix milliseconds as a `BIGINT` (`*_ms` columns).
pub(crate) fn ms_to_db(ms: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(ms).map_err(|_| StoreError::Invalid(format!("{what} {ms} ms does not fit in a BIGINT")))
}

/// A `BIGINT` column of unix milliseconds as a time.
pub(crate) fn ms_from_db(ms: i64, column: &str) -> Result<u64, StoreError> {
    u64::try_from(ms).map_err(|_| StoreError::Corrupt(format!("{column} is negative: {ms}")))
}

/// A `BYTEA` payment hash column (32 bytes).
pub(crate) fn hash_from_db(bytes: &[u8], column: &str) -> Result<PaymentHash, StoreError> {
    let raw: [u8; 32] =
        bytes.try_into().map_err(|_| StoreError::Corrupt(format!("{column} is {} bytes, not 32", bytes.len())))?;
    Ok(PaymentHash::from_bytes(raw))
}

/// A `TEXT` idempotency key column.
pub(crate) fn key_from_db(text: String, column: &str) -> Result<IdempotencyKey, StoreError> {
    IdempotencyKey::parse(text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

/// A group id column.
pub(crate) const fn group_id(id: Uuid) -> GroupId {
    GroupId::from_uuid(id)
}

/// A member id column.
pub(crate) const fn member_id(id: Uuid) -> MemberId {
    MemberId::from_uuid(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_above_i64_max_are_refused_not_wrapped() {
        assert_eq!(msat_to_db(Msat::new(42)), Ok(42));
        assert!(matches!(msat_to_db(Msat::new(u64::MAX)), Err(StoreError::Invalid(_))));
        assert!(matches!(msat_from_db(-1, "amount_msat"), Err(StoreError::Corrupt(_))));
        assert_eq!(msat_from_db(i64::MAX, "x"), Ok(Msat::new(9_223_372_036_854_775_807)));
    }

    #[test]
    fn cycles_and_ids_convert_only_when_they_fit() {
        assert!(matches!(u32_to_db(u32::MAX, "cycle"), Err(StoreError::Invalid(_))));
        assert!(matches!(u32_from_db(-3, "cycle"), Err(StoreError::Corrupt(_))));
        assert!(matches!(id_to_db(u64::MAX), Err(StoreError::Invalid(_))));
        assert!(matches!(id_from_db(-1), Err(StoreError::Corrupt(_))));
        assert_eq!(ms_to_db(1_764_644_572_123, "expires_at_ms"), Ok(1_764_644_572_123));
        assert!(matches!(ms_to_db(u64::MAX, "expires_at_ms"), Err(StoreError::Invalid(_))));
        assert!(matches!(ms_from_db(-1, "expires_at_ms"), Err(StoreError::Corrupt(_))));
        assert!(matches!(hash_from_db(&[0; 31], "payment_hash"), Err(StoreError::Corrupt(_))));
        assert_eq!(hash_from_db(&[7; 32], "payment_hash"), Ok(PaymentHash::from_bytes([7; 32])));
    }
}
