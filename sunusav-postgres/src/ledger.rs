//! The members' ledger: one row per movement of a balance, unique by key,
//! in insertion order (`id`, a `BIGSERIAL`).
//!
//! A balance is the signed sum of a member's entries in a group: credits
//! count positive, the debit reasons ([`LedgerReason::is_debit`]) negative,
//! and the reasons that move only a held deposit
//! ([`LedgerReason::balance_sign`] 0) not at all. The reasons are bound from
//! the domain, never spelled in SQL.

use sqlx::{PgConnection, PgExecutor};
use sunusav_core::domain::ids::{GroupId, MemberId};
use sunusav_core::domain::keys::IdempotencyKey;
use sunusav_core::domain::ledger::{Balance, LedgerEntry, LedgerReason};
use sunusav_core::ports::store::{LedgerPage, StoreError};
use uuid::Uuid;

use crate::convert::{
    group_id, hash_from_db, id_from_db, key_from_db, member_id, msat_from_db, msat_to_db, u32_from_db, u32_to_db,
};
use crate::error::map_err;

/// The columns every entry read selects, in [`EntryRow`]'s order.
macro_rules! columns {
    () => {
        "id, key, group_id, member_id, cycle, reason, amount_msat, payment_hash"
    };
}

#[derive(sqlx::FromRow)]
struct EntryRow {
    id: i64,
    key: String,
    group_id: Uuid,
    member_id: Uuid,
    cycle: i32,
    reason: String,
    amount_msat: i64,
    payment_hash: Option<Vec<u8>>,
}

impl TryFrom<EntryRow> for LedgerEntry {
    type Error = StoreError;
    fn try_from(r: EntryRow) -> Result<Self, StoreError> {
        Ok(Self {
            key: key_from_db(r.key, "ledger_entries.key")?,
            group: group_id(r.group_id),
            member: member_id(r.member_id),
            cycle: u32_from_db(r.cycle, "ledger_entries.cycle")?,
            reason: LedgerReason::parse(&r.reason)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown ledger reason {:?}", r.reason)))?,
            amount: msat_from_db(r.amount_msat, "ledger_entries.amount_msat")?,
            payment_hash: r
                .payment_hash
                .as_deref()
                .map(|h| hash_from_db(h, "ledger_entries.payment_hash"))
                .transpose()?,
        })
    }
}

fn entries(rows: Vec<EntryRow>) -> Result<Vec<LedgerEntry>, StoreError> {
    rows.into_iter().map(LedgerEntry::try_from).collect()
}

/// The names of the debit reasons, bound as a `text[]`.
fn debit_reasons() -> Vec<&'static str> {
    LedgerReason::ALL.iter().filter(|r| r.is_debit()).map(|r| r.as_str()).collect()
}

/// The names of the reasons that leave the balance alone, bound as a `text[]`.
fn neutral_reasons() -> Vec<&'static str> {
    LedgerReason::ALL.iter().filter(|r| r.balance_sign() == 0).map(|r| r.as_str()).collect()
}

/// Appends an entry in one statement: `true` when inserted, `false` (no
/// change) when its key exists. A zero amount is `Invalid` before any SQL
/// (the CHECK `ledger_entries_amount_positive` stands behind it).
pub(crate) async fn insert(conn: &mut PgConnection, e: &LedgerEntry) -> Result<bool, StoreError> {
    if e.amount.is_zero() {
        return Err(StoreError::Invalid(format!("ledger entry {}: zero amount", e.key)));
    }
    let done = sqlx::query(
        "INSERT INTO ledger_entries (key, group_id, member_id, cycle, reason, amount_msat, payment_hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (key) DO NOTHING",
    )
    .bind(e.key.as_str())
    .bind(e.group.as_uuid())
    .bind(e.member.as_uuid())
    .bind(u32_to_db(e.cycle, "cycle")?)
    .bind(e.reason.as_str())
    .bind(msat_to_db(e.amount)?)
    .bind(e.payment_hash.as_ref().map(|h| h.as_bytes().as_slice()))
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(done.rows_affected() == 1)
}

/// The entry with this key (by its unique index: settlement asks once per
/// payment).
pub(crate) async fn get(exec: impl PgExecutor<'_>, key: &IdempotencyKey) -> Result<Option<LedgerEntry>, StoreError> {
    sqlx::query_as::<_, EntryRow>(concat!("SELECT ", columns!(), " FROM ledger_entries WHERE key = $1"))
        .bind(key.as_str())
        .fetch_optional(exec)
        .await
        .map_err(map_err)?
        .map(LedgerEntry::try_from)
        .transpose()
}

/// A group's entries in insertion order (by `ledger_entries_group_idx`).
pub(crate) async fn of_group(exec: impl PgExecutor<'_>, group: GroupId) -> Result<Vec<LedgerEntry>, StoreError> {
    let rows = sqlx::query_as::<_, EntryRow>(concat!(
        "SELECT ",
        columns!(),
        " FROM ledger_entries WHERE group_id = $1 ORDER BY id"
    ))
    .bind(group.as_uuid())
    .fetch_all(exec)
    .await
    .map_err(map_err)?;
    entries(rows)
}

#[derive(sqlx::FromRow)]
struct BalanceRow {
    group_id: Uuid,
    member_id: Uuid,
    amount_msat: i64,
}

/// The balances above zero of every group, by group then member, at most
/// `limit`: one `GROUP BY` over the ledger, credits less debits.
pub(crate) async fn unapplied_balances(
    exec: impl PgExecutor<'_>,
    after: Option<(GroupId, MemberId)>,
    limit: u32,
) -> Result<Vec<Balance>, StoreError> {
    let rows = sqlx::query_as::<_, BalanceRow>(
        "SELECT group_id, member_id, \
           sum(CASE WHEN reason = ANY($1::text[]) THEN -amount_msat WHEN reason = ANY($5::text[]) THEN 0 \
               ELSE amount_msat END)::bigint AS amount_msat \
         FROM ledger_entries WHERE $3::uuid IS NULL OR (group_id, member_id) > ($3::uuid, $4::uuid) \
         GROUP BY group_id, member_id \
         HAVING sum(CASE WHEN reason = ANY($1::text[]) THEN -amount_msat WHEN reason = ANY($5::text[]) THEN 0 \
               ELSE amount_msat END) > 0 \
         ORDER BY group_id, member_id LIMIT $2",
    )
    .bind(debit_reasons())
    .bind(i64::from(limit))
    .bind(after.map(|(g, _)| g.as_uuid()))
    .bind(after.map(|(_, m)| m.as_uuid()))
    .bind(neutral_reasons())
    .fetch_all(exec)
    .await
    .map_err(map_err)?;
    rows.into_iter()
        .map(|r| {
            Ok(Balance {
                group: group_id(r.group_id),
                member: member_id(r.member_id),
                amount: msat_from_db(r.amount_msat, "balance")?,
            })
        })
        .collect()
}

/// Entries with one of `reasons` and an id above `after`, in insertion
/// order, at most `limit`. Each reason is read in id order from
/// `ledger_entries_reason_idx`, at most `limit` rows each, and the lists are
/// merged: the work is bounded by the page, not by the ledger.
///
/// The per-reason range is written as a row comparison, `(reason, id) >
/// (r, after) AND reason <= r`, not as `reason = r AND id > after`: with the
/// equality the planner may walk the primary key and filter on the reason
/// (it cannot know a reason is rare: the reason comes from the array), which
/// reads the whole ledger after `after` to fill a page of a rare reason.
pub(crate) async fn page(
    exec: impl PgExecutor<'_>,
    reasons: &[LedgerReason],
    after: u64,
    limit: u32,
) -> Result<LedgerPage, StoreError> {
    let empty = LedgerPage { entries: Vec::new(), next: after };
    // Nothing is past the largest id a BIGSERIAL can hold.
    let Ok(after_db) = i64::try_from(after) else { return Ok(empty) };
    if reasons.is_empty() || limit == 0 {
        return Ok(empty);
    }
    let reasons: Vec<&str> = reasons.iter().map(|r| r.as_str()).collect();
    let rows = sqlx::query_as::<_, EntryRow>(
        "SELECT e.id, e.key, e.group_id, e.member_id, e.cycle, e.reason, e.amount_msat, e.payment_hash \
         FROM (SELECT DISTINCT reason FROM unnest($1::text[]) AS r(reason)) r \
         CROSS JOIN LATERAL ( \
           SELECT id, key, group_id, member_id, cycle, reason, amount_msat, payment_hash FROM ledger_entries \
           WHERE (reason, id) > (r.reason, $2) AND reason <= r.reason ORDER BY reason, id LIMIT $3 \
         ) e \
         ORDER BY e.id LIMIT $3",
    )
    .bind(&reasons)
    .bind(after_db)
    .bind(i64::from(limit))
    .fetch_all(exec)
    .await
    .map_err(map_err)?;
    let next = match rows.last() {
        Some(last) => id_from_db(last.id)?,
        None => after,
    };
    Ok(LedgerPage { entries: entries(rows)?, next })
}
