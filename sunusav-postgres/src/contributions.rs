//! Invoices issued and contributions recorded, both keyed by payment hash.

use sqlx::{PgConnection, PgExecutor};
use sunusav_core::domain::group::Invoice;
use sunusav_core::domain::ids::PaymentHash;
use sunusav_core::ports::store::{Contribution, StoreError, Unique};
use uuid::Uuid;

use crate::convert::{group_id, hash_from_db, member_id, msat_from_db, msat_to_db, u32_from_db, u32_to_db};
use crate::error::map_err;

#[derive(sqlx::FromRow)]
struct InvoiceRow {
    payment_hash: Vec<u8>,
    group_id: Uuid,
    cycle: i32,
    member_id: Uuid,
    amount_msat: i64,
    bolt11: String,
}

impl TryFrom<InvoiceRow> for Invoice {
    type Error = StoreError;
    fn try_from(r: InvoiceRow) -> Result<Self, StoreError> {
        Ok(Self {
            payment_hash: hash_from_db(&r.payment_hash, "invoices.payment_hash")?,
            group: group_id(r.group_id),
            cycle: u32_from_db(r.cycle, "invoices.cycle")?,
            member: member_id(r.member_id),
            amount: msat_from_db(r.amount_msat, "invoices.amount_msat")?,
            bolt11: r.bolt11,
        })
    }
}

#[derive(sqlx::FromRow)]
struct ContributionRow {
    payment_hash: Vec<u8>,
    group_id: Uuid,
    cycle: i32,
    member_id: Uuid,
    amount_msat: i64,
}

impl TryFrom<ContributionRow> for Contribution {
    type Error = StoreError;
    fn try_from(r: ContributionRow) -> Result<Self, StoreError> {
        Ok(Self {
            payment_hash: hash_from_db(&r.payment_hash, "contributions.payment_hash")?,
            group: group_id(r.group_id),
            cycle: u32_from_db(r.cycle, "contributions.cycle")?,
            member: member_id(r.member_id),
            amount: msat_from_db(r.amount_msat, "contributions.amount_msat")?,
        })
    }
}

/// Records an issued invoice; a taken payment hash is `Duplicate(Unique::Invoice)`.
pub(crate) async fn insert_invoice(conn: &mut PgConnection, inv: &Invoice) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO invoices (payment_hash, group_id, cycle, member_id, amount_msat, bolt11) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(inv.payment_hash.as_bytes().as_slice())
    .bind(inv.group.as_uuid())
    .bind(u32_to_db(inv.cycle, "cycle")?)
    .bind(inv.member.as_uuid())
    .bind(msat_to_db(inv.amount)?)
    .bind(inv.bolt11.as_str())
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// The invoice with this payment hash.
pub(crate) async fn invoice(conn: &mut PgConnection, hash: &PaymentHash) -> Result<Option<Invoice>, StoreError> {
    sqlx::query_as::<_, InvoiceRow>(
        "SELECT payment_hash, group_id, cycle, member_id, amount_msat, bolt11 FROM invoices WHERE payment_hash = $1",
    )
    .bind(hash.as_bytes().as_slice())
    .fetch_optional(&mut *conn)
    .await
    .map_err(map_err)?
    .map(Invoice::try_from)
    .transpose()
}

/// The invoices among `hashes` that exist, in one statement.
pub(crate) async fn invoices(exec: impl PgExecutor<'_>, hashes: &[PaymentHash]) -> Result<Vec<Invoice>, StoreError> {
    let hashes: Vec<&[u8]> = hashes.iter().map(|h| h.as_bytes().as_slice()).collect();
    sqlx::query_as::<_, InvoiceRow>(
        "SELECT payment_hash, group_id, cycle, member_id, amount_msat, bolt11 FROM invoices \
         WHERE payment_hash = ANY($1::bytea[])",
    )
    .bind(&hashes)
    // Planned at each execution, with the list's real length (see
    // `webhooks::mark_many_processed`).
    .persistent(false)
    .fetch_all(exec)
    .await
    .map_err(map_err)?
    .into_iter()
    .map(Invoice::try_from)
    .collect()
}

/// Claims a contribution in one statement: `true` when inserted, `false` when
/// its payment hash was already recorded, `Duplicate(Unique::ContributionMemberCycle)`
/// when the member already contributed to that cycle under another hash.
///
/// Every unique index is an arbiter (`ON CONFLICT DO NOTHING` without a target),
/// so a racing insert of the same row waits for the other transaction and then
/// does nothing, instead of failing on whichever index it meets first; only then
/// is the cause read (a second round trip, on the conflict path alone).
pub(crate) async fn insert_contribution(conn: &mut PgConnection, c: &Contribution) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO contributions (payment_hash, group_id, cycle, member_id, amount_msat) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(c.payment_hash.as_bytes().as_slice())
    .bind(c.group.as_uuid())
    .bind(u32_to_db(c.cycle, "cycle")?)
    .bind(c.member.as_uuid())
    .bind(msat_to_db(c.amount)?)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    if done.rows_affected() == 1 {
        return Ok(true);
    }
    match contribution(conn, &c.payment_hash).await? {
        Some(_) => Ok(false),
        None => Err(StoreError::Duplicate(Unique::ContributionMemberCycle)),
    }
}

/// The contribution with this payment hash.
pub(crate) async fn contribution(
    conn: &mut PgConnection,
    hash: &PaymentHash,
) -> Result<Option<Contribution>, StoreError> {
    sqlx::query_as::<_, ContributionRow>(
        "SELECT payment_hash, group_id, cycle, member_id, amount_msat FROM contributions WHERE payment_hash = $1",
    )
    .bind(hash.as_bytes().as_slice())
    .fetch_optional(&mut *conn)
    .await
    .map_err(map_err)?
    .map(Contribution::try_from)
    .transpose()
}
