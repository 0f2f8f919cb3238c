//! Verified webhook deliveries, recorded once by key, and their outcome.
//!
//! Unknown payment hashes and amount mismatches end here too: the service
//! records them as the delivery's outcome (`unknown_invoice`, `wrong_amount`).

use std::collections::HashSet;

use sqlx::{PgConnection, PgExecutor};
use sunusav_core::domain::keys::IdempotencyKey;
use sunusav_core::domain::outcome::DeliveryOutcome;
use sunusav_core::ports::store::{StoreError, WebhookEvent, WebhookRecord};

use crate::convert::key_from_db;
use crate::error::map_err;

#[derive(sqlx::FromRow)]
struct WebhookRow {
    event_key: String,
    raw_body: Vec<u8>,
    outcome: Option<String>,
}

impl WebhookRow {
    fn into_record(self) -> Result<WebhookRecord, StoreError> {
        Ok(WebhookRecord {
            key: key_from_db(self.event_key, "webhook_events.event_key")?,
            body: self.raw_body,
            outcome: self
                .outcome
                .map(|o| {
                    DeliveryOutcome::parse(&o)
                        .ok_or_else(|| StoreError::Corrupt(format!("unknown webhook_events.outcome {o:?}")))
                })
                .transpose()?,
        })
    }
}

/// Records a delivery in one statement: `true` when new, `false` on a replay
/// (the first body is kept).
pub(crate) async fn record(exec: impl PgExecutor<'_>, event: &WebhookEvent) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO webhook_events (event_key, raw_body) VALUES ($1, $2) ON CONFLICT (event_key) DO NOTHING",
    )
    .bind(event.key.as_str())
    .bind(event.body.as_slice())
    .execute(exec)
    .await
    .map_err(map_err)?;
    Ok(done.rows_affected() == 1)
}

/// Records many deliveries in one statement; per event, in order, `true`
/// when new (a key twice in the batch is new the first time only).
pub(crate) async fn record_many(exec: impl PgExecutor<'_>, events: &[WebhookEvent]) -> Result<Vec<bool>, StoreError> {
    let keys: Vec<&str> = events.iter().map(|e| e.key.as_str()).collect();
    let bodies: Vec<&[u8]> = events.iter().map(|e| e.body.as_slice()).collect();
    let inserted: Vec<(String,)> = sqlx::query_as(
        "INSERT INTO webhook_events (event_key, raw_body) SELECT * FROM UNNEST($1::text[], $2::bytea[]) \
         ON CONFLICT (event_key) DO NOTHING RETURNING event_key",
    )
    .bind(&keys)
    .bind(&bodies)
    .fetch_all(exec)
    .await
    .map_err(map_err)?;
    let mut new: HashSet<&str> = inserted.iter().map(|(k,)| k.as_str()).collect();
    Ok(keys.iter().map(|k| new.remove(k)).collect())
}

/// A recorded delivery.
pub(crate) async fn get(exec: impl PgExecutor<'_>, key: &IdempotencyKey) -> Result<Option<WebhookRecord>, StoreError> {
    let Some(row) =
        sqlx::query_as::<_, WebhookRow>("SELECT event_key, raw_body, outcome FROM webhook_events WHERE event_key = $1")
            .bind(key.as_str())
            .fetch_optional(exec)
            .await
            .map_err(map_err)?
    else {
        return Ok(None);
    };
    row.into_record().map(Some)
}

/// Deliveries without an outcome recorded at least `older_than` ago, oldest
/// first, at most `limit` (by the partial index of unprocessed rows).
pub(crate) async fn unprocessed(
    exec: impl PgExecutor<'_>,
    older_than: std::time::Duration,
    limit: u32,
) -> Result<Vec<WebhookRecord>, StoreError> {
    let rows = sqlx::query_as::<_, WebhookRow>(
        "SELECT event_key, raw_body, outcome FROM webhook_events \
         WHERE outcome IS NULL AND received_at <= now() - make_interval(secs => $1) \
         ORDER BY id LIMIT $2",
    )
    .bind(older_than.as_secs_f64())
    .bind(i64::from(limit))
    .fetch_all(exec)
    .await
    .map_err(map_err)?;
    rows.into_iter().map(WebhookRow::into_record).collect()
}

/// Records a delivery's first outcome (a later settlement of the same
/// delivery, a replay, keeps it); `NotFound` when the key was never recorded.
pub(crate) async fn mark_processed(
    conn: &mut PgConnection,
    key: &IdempotencyKey,
    outcome: DeliveryOutcome,
) -> Result<(), StoreError> {
    let done = sqlx::query("UPDATE webhook_events SET outcome = COALESCE(outcome, $2), processed_at = COALESCE(processed_at, now()) WHERE event_key = $1")
        .bind(key.as_str())
        .bind(outcome.as_str())
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Records many deliveries' first outcomes in one statement; per delivery, in
/// order, `false` when its key was never recorded.
pub(crate) async fn mark_many_processed(
    exec: impl PgExecutor<'_>,
    outcomes: &[(IdempotencyKey, DeliveryOutcome)],
) -> Result<Vec<bool>, StoreError> {
    let keys: Vec<&str> = outcomes.iter().map(|(k, _)| k.as_str()).collect();
    let values: Vec<&str> = outcomes.iter().map(|(_, o)| o.as_str()).collect();
    // A key twice keeps its first outcome in the list: DISTINCT ON by position.
    // Planned at each execution (an unnamed statement), with the list's real
    // length: a plan cached while the table was small would join by a
    // sequential scan of the whole table ever after.
    let updated: Vec<(String,)> = sqlx::query_as(
        "UPDATE webhook_events w SET outcome = COALESCE(w.outcome, u.outcome), \
         processed_at = COALESCE(w.processed_at, now()) \
         FROM (SELECT DISTINCT ON (key) key, outcome FROM UNNEST($1::text[], $2::text[]) \
               WITH ORDINALITY AS t(key, outcome, n) ORDER BY key, n) u \
         WHERE w.event_key = u.key RETURNING w.event_key",
    )
    .bind(&keys)
    .bind(&values)
    .persistent(false)
    .fetch_all(exec)
    .await
    .map_err(map_err)?;
    let found: HashSet<&str> = updated.iter().map(|(k,)| k.as_str()).collect();
    Ok(keys.iter().map(|k| found.contains(k)).collect())
}
