//! Payment attempts: one per idempotency key (`payout:<group>:<cycle>`).

use sqlx::{PgConnection, PgExecutor};
use sunusav_core::domain::attempt::{AttemptKind, AttemptRoute, AttemptStatus, PaymentAttempt, StoredAttempt};
use sunusav_core::domain::ids::{GroupId, MemberId};
use sunusav_core::domain::keys::IdempotencyKey;
use sunusav_core::ports::store::StoreError;
use uuid::Uuid;

use crate::convert::{
    group_id, hash_from_db, key_from_db, member_id, msat_from_db, msat_to_db, u32_from_db, u32_to_db,
};
use crate::error::map_err;

/// The columns every read selects, in [`AttemptRow`]'s order.
macro_rules! columns {
    () => {
        "idempotency_key, group_id, cycle, beneficiary_id, amount_msat, fee_msat, status, \
         attempt_count, last_error, payment_hash, preimage, routing_fee_msat, generation, route, kind"
    };
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    idempotency_key: String,
    group_id: Uuid,
    cycle: i32,
    beneficiary_id: Uuid,
    amount_msat: i64,
    fee_msat: i64,
    status: String,
    attempt_count: i32,
    last_error: Option<String>,
    payment_hash: Option<Vec<u8>>,
    preimage: Option<String>,
    routing_fee_msat: Option<i64>,
    generation: i32,
    route: Option<String>,
    kind: String,
}

impl TryFrom<AttemptRow> for PaymentAttempt {
    type Error = StoreError;
    fn try_from(r: AttemptRow) -> Result<Self, StoreError> {
        Ok(Self::restore(StoredAttempt {
            key: key_from_db(r.idempotency_key, "payment_attempts.idempotency_key")?,
            group: group_id(r.group_id),
            cycle: u32_from_db(r.cycle, "payment_attempts.cycle")?,
            beneficiary: member_id(r.beneficiary_id),
            amount: msat_from_db(r.amount_msat, "payment_attempts.amount_msat")?,
            fee: msat_from_db(r.fee_msat, "payment_attempts.fee_msat")?,
            status: AttemptStatus::parse(&r.status)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown attempt status {:?}", r.status)))?,
            attempts: u32_from_db(r.attempt_count, "payment_attempts.attempt_count")?,
            last_error: r.last_error,
            payment_hash: r
                .payment_hash
                .as_deref()
                .map(|h| hash_from_db(h, "payment_attempts.payment_hash"))
                .transpose()?,
            preimage: r.preimage,
            routing_fee: r
                .routing_fee_msat
                .map(|f| msat_from_db(f, "payment_attempts.routing_fee_msat"))
                .transpose()?,
            generation: u32_from_db(r.generation, "payment_attempts.generation")?,
            route: r
                .route
                .as_deref()
                .map(|text| {
                    serde_json::from_str::<AttemptRoute>(text)
                        .map_err(|e| StoreError::Corrupt(format!("payment_attempts.route: {e}")))
                })
                .transpose()?,
            kind: AttemptKind::parse(&r.kind)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown attempt kind {:?}", r.kind)))?,
        }))
    }
}

/// Claims the attempt's key in one statement: `true` when inserted, `false`
/// when the key exists. A zero amount breaks a CHECK (→ `Invalid`).
pub(crate) async fn insert(conn: &mut PgConnection, a: &PaymentAttempt) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO payment_attempts (idempotency_key, group_id, cycle, beneficiary_id, amount_msat, fee_msat, \
           status, attempt_count, last_error, payment_hash, preimage, routing_fee_msat, generation, route, kind) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(a.key.as_str())
    .bind(a.group.as_uuid())
    .bind(u32_to_db(a.cycle, "cycle")?)
    .bind(a.beneficiary.as_uuid())
    .bind(msat_to_db(a.amount)?)
    .bind(msat_to_db(a.fee)?)
    .bind(a.status().as_str())
    .bind(u32_to_db(a.attempts(), "attempts")?)
    .bind(a.last_error())
    .bind(a.payment_hash().map(|h| h.as_bytes().to_vec()))
    .bind(a.preimage())
    .bind(a.routing_fee().map(msat_to_db).transpose()?)
    .bind(u32_to_db(a.generation(), "generation")?)
    .bind(route_to_db(a)?)
    .bind(a.kind.as_str())
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(done.rows_affected() == 1)
}

/// The attempt with this key, locked `FOR UPDATE`.
pub(crate) async fn get_for_update(
    conn: &mut PgConnection,
    key: &IdempotencyKey,
) -> Result<Option<PaymentAttempt>, StoreError> {
    const SQL: &str = concat!("SELECT ", columns!(), " FROM payment_attempts WHERE idempotency_key = $1 FOR UPDATE");
    sqlx::query_as::<_, AttemptRow>(SQL)
        .bind(key.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?
        .map(PaymentAttempt::try_from)
        .transpose()
}

/// The attempt with this key, without a lock.
pub(crate) async fn get(exec: impl PgExecutor<'_>, key: &IdempotencyKey) -> Result<Option<PaymentAttempt>, StoreError> {
    const SQL: &str = concat!("SELECT ", columns!(), " FROM payment_attempts WHERE idempotency_key = $1");
    sqlx::query_as::<_, AttemptRow>(SQL)
        .bind(key.as_str())
        .fetch_optional(exec)
        .await
        .map_err(map_err)?
        .map(PaymentAttempt::try_from)
        .transpose()
}

/// Every attempt of a group, by cycle.
pub(crate) async fn of_group(exec: impl PgExecutor<'_>, group: GroupId) -> Result<Vec<PaymentAttempt>, StoreError> {
    const SQL: &str = concat!("SELECT ", columns!(), " FROM payment_attempts WHERE group_id = $1 ORDER BY cycle, id");
    sqlx::query_as::<_, AttemptRow>(SQL)
        .bind(group.as_uuid())
        .fetch_all(exec)
        .await
        .map_err(map_err)?
        .into_iter()
        .map(PaymentAttempt::try_from)
        .collect()
}

/// The attempts paying `member`, newest first, at most `limit` (by the
/// index on beneficiary and id).
pub(crate) async fn of_member(
    exec: impl PgExecutor<'_>,
    member: MemberId,
    limit: u32,
) -> Result<Vec<PaymentAttempt>, StoreError> {
    const SQL: &str =
        concat!("SELECT ", columns!(), " FROM payment_attempts WHERE beneficiary_id = $1 ORDER BY id DESC LIMIT $2");
    sqlx::query_as::<_, AttemptRow>(SQL)
        .bind(member.as_uuid())
        .bind(i64::from(limit))
        .fetch_all(exec)
        .await
        .map_err(map_err)?
        .into_iter()
        .map(PaymentAttempt::try_from)
        .collect()
}

/// Attempts neither paid nor dead, unchanged for at least `older_than`,
/// oldest first, at most `limit` (by the partial index of open attempts).
pub(crate) async fn open(
    exec: impl PgExecutor<'_>,
    older_than: std::time::Duration,
    limit: u32,
) -> Result<Vec<PaymentAttempt>, StoreError> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM payment_attempts WHERE status IN ('pending', 'in_flight', 'failed') \
          AND updated_at <= now() - make_interval(secs => $1) ORDER BY id LIMIT $2"
    );
    sqlx::query_as::<_, AttemptRow>(SQL)
        .bind(older_than.as_secs_f64())
        .bind(i64::from(limit))
        .fetch_all(exec)
        .await
        .map_err(map_err)?
        .into_iter()
        .map(PaymentAttempt::try_from)
        .collect()
}

/// Saves status, attempt count, last error and result; `NotFound` for an unknown key.
pub(crate) async fn update(conn: &mut PgConnection, a: &PaymentAttempt) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE payment_attempts SET status = $2, attempt_count = $3, last_error = $4, payment_hash = $5, \
           preimage = $6, routing_fee_msat = $7, generation = $8, route = $9, updated_at = now() \
         WHERE idempotency_key = $1",
    )
    .bind(a.key.as_str())
    .bind(a.status().as_str())
    .bind(u32_to_db(a.attempts(), "attempts")?)
    .bind(a.last_error())
    .bind(a.payment_hash().map(|h| h.as_bytes().to_vec()))
    .bind(a.preimage())
    .bind(a.routing_fee().map(msat_to_db).transpose()?)
    .bind(u32_to_db(a.generation(), "generation")?)
    .bind(route_to_db(a)?)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// The route as stored: its JSON (`{"keysend":"02…"}`, `{"invoice":"lnbc…"}`).
fn route_to_db(a: &PaymentAttempt) -> Result<Option<String>, StoreError> {
    a.route()
        .map(|r| serde_json::to_string(r).map_err(|e| StoreError::Invalid(format!("payment attempt route: {e}"))))
        .transpose()
}

/// A member's attempts waiting for a destination, oldest first.
pub(crate) async fn awaiting_destination(
    conn: &mut PgConnection,
    member: sunusav_core::domain::ids::MemberId,
) -> Result<Vec<PaymentAttempt>, StoreError> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM payment_attempts WHERE beneficiary_id = $1 AND status = 'awaiting_destination' ORDER BY id"
    );
    sqlx::query_as::<_, AttemptRow>(SQL)
        .bind(member.as_uuid())
        .fetch_all(&mut *conn)
        .await
        .map_err(map_err)?
        .into_iter()
        .map(PaymentAttempt::try_from)
        .collect()
}
