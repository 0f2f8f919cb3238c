//! The transactional outbox: messages written with the state change that
//! requires them, claimed by relays with `FOR UPDATE SKIP LOCKED`.

use sqlx::PgConnection;
use sunusav_core::ports::store::{OutboxMessage, StoreError};

use crate::convert::{id_from_db, id_to_db, key_from_db};
use crate::error::map_err;

#[derive(sqlx::FromRow)]
struct OutboxRow {
    id: i64,
    queue: String,
    job_id: String,
    payload: Vec<u8>,
}

impl TryFrom<OutboxRow> for OutboxMessage {
    type Error = StoreError;
    fn try_from(r: OutboxRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: id_from_db(r.id)?,
            queue: r.queue,
            job_id: key_from_db(r.job_id, "outbox.job_id")?,
            payload: r.payload,
        })
    }
}

/// Appends a message; the store assigns its id (the message's `id` is ignored).
pub(crate) async fn insert(conn: &mut PgConnection, m: &OutboxMessage) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO outbox (queue, job_id, payload) VALUES ($1, $2, $3)")
        .bind(m.queue.as_str())
        .bind(m.job_id.as_str())
        .bind(m.payload.as_slice())
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    Ok(())
}

/// Claims up to `limit` unsent messages, oldest first, skipping rows that
/// another transaction holds: several relays at once never share a row.
pub(crate) async fn claim(conn: &mut PgConnection, limit: u32) -> Result<Vec<OutboxMessage>, StoreError> {
    sqlx::query_as::<_, OutboxRow>(
        "SELECT id, queue, job_id, payload FROM outbox WHERE sent_at IS NULL \
         ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await
    .map_err(map_err)?
    .into_iter()
    .map(OutboxMessage::try_from)
    .collect()
}

/// Marks messages as sent (those already sent keep their first time).
pub(crate) async fn mark_sent(conn: &mut PgConnection, ids: &[u64]) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let ids = ids.iter().map(|&id| id_to_db(id)).collect::<Result<Vec<i64>, _>>()?;
    sqlx::query("UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[]) AND sent_at IS NULL")
        .bind(ids)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    Ok(())
}
