//! Invoices issued and contributions recorded, both keyed by payment hash.
//!
//! At most one invoice is `open` per group, cycle and member: the partial
//! unique index `invoices_open_member_cycle` enforces it across concurrent
//! transactions, and serves the open-invoice reads. Both tables keep their
//! insertion order in `seq` ("oldest first": `created_at` is shared by every
//! row of one transaction).

use sqlx::{PgConnection, PgExecutor};
use sunusav_core::domain::group::{Invoice, InvoiceState};
use sunusav_core::domain::ids::{GroupId, MemberId, PaymentHash};
use sunusav_core::ports::store::{Contribution, StoreError, Unique};
use uuid::Uuid;

use crate::convert::{
    group_id, hash_from_db, member_id, ms_from_db, ms_to_db, msat_from_db, msat_to_db, u32_from_db, u32_to_db,
};
use crate::error::map_err;

/// The columns every invoice read selects, in [`InvoiceRow`]'s order.
macro_rules! invoice_columns {
    () => {
        "payment_hash, group_id, cycle, member_id, amount_msat, bolt11, expires_at_ms, state"
    };
}

#[derive(sqlx::FromRow)]
struct InvoiceRow {
    payment_hash: Vec<u8>,
    group_id: Uuid,
    cycle: i32,
    member_id: Uuid,
    amount_msat: i64,
    bolt11: String,
    expires_at_ms: i64,
    state: String,
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
            expires_at_ms: ms_from_db(r.expires_at_ms, "invoices.expires_at_ms")?,
            state: InvoiceState::parse(&r.state)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown invoice state {:?}", r.state)))?,
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

/// Records an issued invoice: a taken payment hash is
/// `Duplicate(Unique::Invoice)`, a second open invoice of a group, cycle and
/// member `Duplicate(Unique::OpenInvoice)` (a racing insert waits for the
/// other transaction, then fails or goes through as it commits or rolls back).
pub(crate) async fn insert_invoice(conn: &mut PgConnection, inv: &Invoice) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO invoices (payment_hash, group_id, cycle, member_id, amount_msat, bolt11, expires_at_ms, state) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(inv.payment_hash.as_bytes().as_slice())
    .bind(inv.group.as_uuid())
    .bind(u32_to_db(inv.cycle, "cycle")?)
    .bind(inv.member.as_uuid())
    .bind(msat_to_db(inv.amount)?)
    .bind(inv.bolt11.as_str())
    .bind(ms_to_db(inv.expires_at_ms, "expires_at_ms")?)
    .bind(inv.state.as_str())
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// The invoice with this payment hash.
pub(crate) async fn invoice(exec: impl PgExecutor<'_>, hash: &PaymentHash) -> Result<Option<Invoice>, StoreError> {
    sqlx::query_as::<_, InvoiceRow>(concat!("SELECT ", invoice_columns!(), " FROM invoices WHERE payment_hash = $1"))
        .bind(hash.as_bytes().as_slice())
        .fetch_optional(exec)
        .await
        .map_err(map_err)?
        .map(Invoice::try_from)
        .transpose()
}

/// The invoices issued to `member`, newest first, at most `limit` (by the
/// index on member and sequence).
pub(crate) async fn of_member(
    exec: impl PgExecutor<'_>,
    member: MemberId,
    limit: u32,
) -> Result<Vec<Invoice>, StoreError> {
    sqlx::query_as::<_, InvoiceRow>(concat!(
        "SELECT ",
        invoice_columns!(),
        " FROM invoices WHERE member_id = $1 ORDER BY seq DESC LIMIT $2"
    ))
    .bind(member.as_uuid())
    .bind(i64::from(limit))
    .fetch_all(exec)
    .await
    .map_err(map_err)?
    .into_iter()
    .map(Invoice::try_from)
    .collect()
}

/// The invoices among `hashes` that exist, in one statement.
pub(crate) async fn invoices(exec: impl PgExecutor<'_>, hashes: &[PaymentHash]) -> Result<Vec<Invoice>, StoreError> {
    let hashes: Vec<&[u8]> = hashes.iter().map(|h| h.as_bytes().as_slice()).collect();
    sqlx::query_as::<_, InvoiceRow>(concat!(
        "SELECT ",
        invoice_columns!(),
        " FROM invoices WHERE payment_hash = ANY($1::bytea[])"
    ))
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

/// The open invoice of a member for a cycle, expired or not (by the partial
/// unique index).
pub(crate) async fn open_invoice(
    exec: impl PgExecutor<'_>,
    group: GroupId,
    cycle: u32,
    member: MemberId,
) -> Result<Option<Invoice>, StoreError> {
    sqlx::query_as::<_, InvoiceRow>(concat!(
        "SELECT ",
        invoice_columns!(),
        " FROM invoices WHERE group_id = $1 AND cycle = $2 AND member_id = $3 AND state = 'open'"
    ))
    .bind(group.as_uuid())
    .bind(u32_to_db(cycle, "cycle")?)
    .bind(member.as_uuid())
    .fetch_optional(exec)
    .await
    .map_err(map_err)?
    .map(Invoice::try_from)
    .transpose()
}

/// Every open invoice of a cycle, oldest first (by the partial unique index).
pub(crate) async fn open_invoices(
    exec: impl PgExecutor<'_>,
    group: GroupId,
    cycle: u32,
) -> Result<Vec<Invoice>, StoreError> {
    sqlx::query_as::<_, InvoiceRow>(concat!(
        "SELECT ",
        invoice_columns!(),
        " FROM invoices WHERE group_id = $1 AND cycle = $2 AND state = 'open' ORDER BY seq"
    ))
    .bind(group.as_uuid())
    .bind(u32_to_db(cycle, "cycle")?)
    .fetch_all(exec)
    .await
    .map_err(map_err)?
    .into_iter()
    .map(Invoice::try_from)
    .collect()
}

/// Moves an invoice to `state`; `NotFound` for an unknown payment hash,
/// `Duplicate(Unique::OpenInvoice)` when reopening it would make a second
/// open invoice of its group, cycle and member.
pub(crate) async fn set_invoice_state(
    conn: &mut PgConnection,
    hash: &PaymentHash,
    state: InvoiceState,
) -> Result<(), StoreError> {
    let done = sqlx::query("UPDATE invoices SET state = $2 WHERE payment_hash = $1")
        .bind(hash.as_bytes().as_slice())
        .bind(state.as_str())
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
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

/// Every contribution of a group, of every cycle, oldest first (by the
/// unique `(group_id, cycle, member_id)` index; a group has few).
pub(crate) async fn of_group(exec: impl PgExecutor<'_>, group: GroupId) -> Result<Vec<Contribution>, StoreError> {
    sqlx::query_as::<_, ContributionRow>(
        "SELECT payment_hash, group_id, cycle, member_id, amount_msat FROM contributions \
         WHERE group_id = $1 ORDER BY seq",
    )
    .bind(group.as_uuid())
    .fetch_all(exec)
    .await
    .map_err(map_err)?
    .into_iter()
    .map(Contribution::try_from)
    .collect()
}
