//! Where payouts go: members' destinations, submitted payout invoices, and
//! the node's settle-stream cursors.

use sqlx::PgConnection;
use sunusav_core::domain::ids::{GroupId, MemberId};
use sunusav_core::domain::payout::{Bolt11, NodePubkey, PayoutDestination};
use sunusav_core::ports::store::StoreError;

use crate::convert::u32_to_db;
use crate::error::map_err;

/// Sets or clears a member's destination.
pub(crate) async fn set(
    conn: &mut PgConnection,
    member: MemberId,
    destination: Option<PayoutDestination>,
) -> Result<(), StoreError> {
    match destination {
        Some(PayoutDestination::Keysend(node)) => {
            sqlx::query(
                "INSERT INTO payout_destinations (member_id, keysend_node) VALUES ($1, $2) \
                 ON CONFLICT (member_id) DO UPDATE SET keysend_node = EXCLUDED.keysend_node, updated_at = now()",
            )
            .bind(member.as_uuid())
            .bind(node.as_bytes().to_vec())
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
        }
        Some(other) => return Err(StoreError::Invalid(format!("a destination this store cannot keep: {other:?}"))),
        None => {
            sqlx::query("DELETE FROM payout_destinations WHERE member_id = $1")
                .bind(member.as_uuid())
                .execute(&mut *conn)
                .await
                .map_err(map_err)?;
        }
    }
    Ok(())
}

/// A member's destination.
pub(crate) async fn get(conn: &mut PgConnection, member: MemberId) -> Result<Option<PayoutDestination>, StoreError> {
    let row: Option<Vec<u8>> = sqlx::query_scalar("SELECT keysend_node FROM payout_destinations WHERE member_id = $1")
        .bind(member.as_uuid())
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?;
    row.map(|bytes| {
        let bytes: [u8; 33] = bytes
            .try_into()
            .map_err(|_| StoreError::Corrupt("payout_destinations.keysend_node is not 33 bytes".into()))?;
        NodePubkey::from_bytes(bytes)
            .map(PayoutDestination::Keysend)
            .map_err(|e| StoreError::Corrupt(format!("payout_destinations.keysend_node: {e}")))
    })
    .transpose()
}

/// Whether the member belongs to any group (`group_members_member_idx`).
pub(crate) async fn is_group_member(conn: &mut PgConnection, member: MemberId) -> Result<bool, StoreError> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM group_members WHERE member_id = $1)")
        .bind(member.as_uuid())
        .fetch_one(&mut *conn)
        .await
        .map_err(map_err)
}

/// Records a submitted invoice; a payment hash submitted before breaks
/// `payout_invoices_payment_hash_key` (→ `Duplicate(PayoutInvoice)`).
pub(crate) async fn insert_invoice(
    conn: &mut PgConnection,
    group: GroupId,
    cycle: u32,
    invoice: &Bolt11,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO payout_invoices (group_id, cycle, payment_hash, bolt11) VALUES ($1, $2, $3, $4)")
        .bind(group.as_uuid())
        .bind(u32_to_db(cycle, "cycle")?)
        .bind(invoice.payment_hash().as_bytes().to_vec())
        .bind(invoice.as_str())
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    Ok(())
}

/// The invoice submitted last for a cycle.
pub(crate) async fn last_invoice(
    conn: &mut PgConnection,
    group: GroupId,
    cycle: u32,
) -> Result<Option<String>, StoreError> {
    sqlx::query_scalar("SELECT bolt11 FROM payout_invoices WHERE group_id = $1 AND cycle = $2 ORDER BY id DESC LIMIT 1")
        .bind(group.as_uuid())
        .bind(u32_to_db(cycle, "cycle")?)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)
}

/// A source's settle index (0 when none).
pub(crate) async fn settle_index(conn: &mut PgConnection, source: &str) -> Result<u64, StoreError> {
    let found: Option<i64> = sqlx::query_scalar("SELECT settle_index FROM node_cursors WHERE source = $1")
        .bind(source)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?;
    found.map_or(Ok(0), |i| {
        u64::try_from(i).map_err(|_| StoreError::Corrupt("node_cursors.settle_index is negative".into()))
    })
}

/// Moves a source's settle index forward (never back), in one statement.
pub(crate) async fn advance(conn: &mut PgConnection, source: &str, index: u64) -> Result<(), StoreError> {
    let index = i64::try_from(index).map_err(|_| StoreError::Invalid("settle index past i64".into()))?;
    sqlx::query(
        "INSERT INTO node_cursors (source, settle_index) VALUES ($1, $2) \
         ON CONFLICT (source) DO UPDATE SET settle_index = GREATEST(node_cursors.settle_index, EXCLUDED.settle_index)",
    )
    .bind(source)
    .bind(index)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}
