//! Verified webhook deliveries, recorded once by key, their outcome and
//! generation, the bodies that conflict with them, the delivery log and
//! body retention.
//!
//! Unknown payment hashes and amount mismatches end here too: the service
//! records them as the delivery's outcome (`unknown_invoice`, `wrong_amount`).
//!
//! The outcome rule ([`WebhookLog`](sunusav_core::ports::WebhookLog)): the
//! first final outcome is kept, and replaces `dead`. It is written once, as
//! the `replaces!` macro, in every statement that records an outcome.

use std::collections::{HashMap, HashSet};

use sqlx::{PgConnection, PgExecutor, Postgres, QueryBuilder};
use sunusav_core::domain::delivery::BodyDigest;
use sunusav_core::domain::keys::IdempotencyKey;
use sunusav_core::domain::outcome::DeliveryOutcome;
use sunusav_core::ports::store::{
    Delivery, DeliveryFilter, DeliveryPage, OutcomeFilter, Recorded, StoreError, WebhookEvent, WebhookRecord,
};

use crate::convert::{hash_from_db, id_from_db, id_to_db, key_from_db, ms_from_db, ms_to_db, u32_from_db, u32_to_db};
use crate::error::map_err;

/// Whether a row's outcome `outcome` gives way to the outcome `new` (a SQL
/// boolean over the two column expressions): when it has none, or when it
/// is `dead` and the new one is final.
macro_rules! replaces {
    ($outcome:literal, $new:literal) => {
        concat!("(", $outcome, " IS NULL OR (", $outcome, " = 'dead' AND ", $new, " <> 'dead'))")
    };
}

/// The rule as SQL, for a statement that sets `outcome` from `$2`.
macro_rules! keep_outcome {
    () => {
        concat!(
            "outcome = CASE WHEN ",
            replaces!("outcome", "$2"),
            " THEN $2 ELSE outcome END, processed_at = CASE WHEN ",
            replaces!("outcome", "$2"),
            " THEN now() ELSE processed_at END"
        )
    };
}

/// Records one delivery's outcome by the rule.
const MARK_PROCESSED: &str = concat!("UPDATE webhook_events SET ", keep_outcome!(), " WHERE event_key = $1");

fn outcome_from_db(outcome: Option<String>) -> Result<Option<DeliveryOutcome>, StoreError> {
    outcome
        .map(|o| {
            DeliveryOutcome::parse(&o)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown webhook_events.outcome {o:?}")))
        })
        .transpose()
}

fn digest_from_db(bytes: &[u8]) -> Result<BodyDigest, StoreError> {
    let raw: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("webhook_events.body_digest is {} bytes, not 32", bytes.len())))?;
    Ok(BodyDigest::from_bytes(raw))
}

#[derive(sqlx::FromRow)]
struct WebhookRow {
    event_key: String,
    raw_body: Option<Vec<u8>>,
    outcome: Option<String>,
    generation: i32,
}

impl WebhookRow {
    fn into_record(self) -> Result<WebhookRecord, StoreError> {
        Ok(WebhookRecord {
            key: key_from_db(self.event_key, "webhook_events.event_key")?,
            body: self.raw_body,
            outcome: outcome_from_db(self.outcome)?,
            generation: u32_from_db(self.generation, "webhook_events.generation")?,
        })
    }
}

/// Records deliveries: one `INSERT … ON CONFLICT DO NOTHING` for all; for
/// the keys recorded before, one `SELECT` of their digest, outcome and
/// generation; one statement per conflicting body. Per event, in order (a
/// key twice in the batch is new the first time only).
pub(crate) async fn record_many(conn: &mut PgConnection, events: &[WebhookEvent]) -> Result<Vec<Recorded>, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<&str> = events.iter().map(|e| e.key().as_str()).collect();
    let bodies: Vec<&[u8]> = events.iter().map(WebhookEvent::body).collect();
    let digests: Vec<&[u8]> = events.iter().map(|e| &e.digest().as_bytes()[..]).collect();
    let hashes: Vec<Option<Vec<u8>>> = events.iter().map(|e| e.payment_hash().map(|h| h.as_bytes().to_vec())).collect();
    let inserted: Vec<(String,)> = sqlx::query_as(
        "INSERT INTO webhook_events (event_key, raw_body, body_digest, payment_hash) \
         SELECT * FROM UNNEST($1::text[], $2::bytea[], $3::bytea[], $4::bytea[]) \
         ON CONFLICT (event_key) DO NOTHING RETURNING event_key",
    )
    .bind(&keys)
    .bind(&bodies)
    .bind(&digests)
    .bind(&hashes)
    .fetch_all(&mut *conn)
    .await
    .map_err(map_err)?;
    let mut new: HashSet<&str> = inserted.iter().map(|(k,)| k.as_str()).collect();
    let is_new: Vec<bool> = keys.iter().map(|k| new.remove(k)).collect();
    if is_new.iter().all(|n| *n) {
        return Ok(is_new.iter().map(|_| Recorded::New).collect());
    }

    // The keys recorded before (or earlier in this batch): what they hold.
    let mut seen: Vec<&str> = keys.iter().zip(&is_new).filter(|(_, n)| !**n).map(|(k, _)| *k).collect();
    seen.sort_unstable();
    seen.dedup();
    let rows: Vec<(String, Vec<u8>, Option<String>, i32)> = sqlx::query_as(
        "SELECT event_key, body_digest, outcome, generation FROM webhook_events WHERE event_key = ANY($1::text[])",
    )
    .bind(&seen)
    .fetch_all(&mut *conn)
    .await
    .map_err(map_err)?;
    let mut held: HashMap<String, (BodyDigest, Option<DeliveryOutcome>, u32)> = HashMap::with_capacity(rows.len());
    for (key, digest, outcome, generation) in rows {
        let record = (
            digest_from_db(&digest)?,
            outcome_from_db(outcome)?,
            u32_from_db(generation, "webhook_events.generation")?,
        );
        held.insert(key, record);
    }

    let mut recorded = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        if is_new[i] {
            recorded.push(Recorded::New);
            continue;
        }
        let (digest, outcome, generation) = held
            .get(event.key().as_str())
            .copied()
            .ok_or_else(|| StoreError::Corrupt(format!("webhook delivery {} vanished", event.key())))?;
        if digest == *event.digest() {
            recorded.push(Recorded::Replay { outcome, generation });
        } else {
            record_conflict(&mut *conn, event).await?;
            recorded.push(Recorded::Conflict);
        }
    }
    Ok(recorded)
}

/// Keeps a conflicting body of a recorded key (once per distinct body,
/// counting its deliveries), and counts it on the record when it is new.
async fn record_conflict(exec: impl PgExecutor<'_>, event: &WebhookEvent) -> Result<(), StoreError> {
    sqlx::query(
        "WITH c AS ( \
             INSERT INTO webhook_conflicts (event_key, body_digest, raw_body) VALUES ($1, $2, $3) \
             ON CONFLICT (event_key, body_digest) DO UPDATE \
                 SET times = webhook_conflicts.times + 1, last_at = now() \
             RETURNING (xmax = 0) AS inserted) \
         UPDATE webhook_events SET conflicts = conflicts + 1 \
         WHERE event_key = $1 AND (SELECT inserted FROM c)",
    )
    .bind(event.key().as_str())
    .bind(&event.digest().as_bytes()[..])
    .bind(event.body())
    .execute(exec)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// A recorded delivery.
pub(crate) async fn get(exec: impl PgExecutor<'_>, key: &IdempotencyKey) -> Result<Option<WebhookRecord>, StoreError> {
    let Some(row) = sqlx::query_as::<_, WebhookRow>(
        "SELECT event_key, raw_body, outcome, generation FROM webhook_events WHERE event_key = $1",
    )
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
        "SELECT event_key, raw_body, outcome, generation FROM webhook_events \
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

/// Records a delivery's outcome by the rule; `NotFound` when the key was
/// never recorded.
pub(crate) async fn mark_processed(
    conn: &mut PgConnection,
    key: &IdempotencyKey,
    outcome: DeliveryOutcome,
) -> Result<(), StoreError> {
    let done = sqlx::query(MARK_PROCESSED)
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

/// Records many deliveries' outcomes by the rule in one statement; per
/// delivery, in order, `false` when its key was never recorded.
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
    let updated: Vec<(String,)> = sqlx::query_as(concat!(
        "UPDATE webhook_events w SET outcome = CASE WHEN ",
        replaces!("w.outcome", "u.outcome"),
        " THEN u.outcome ELSE w.outcome END, processed_at = CASE WHEN ",
        replaces!("w.outcome", "u.outcome"),
        " THEN now() ELSE w.processed_at END \
         FROM (SELECT DISTINCT ON (key) key, outcome FROM UNNEST($1::text[], $2::text[]) \
               WITH ORDINALITY AS t(key, outcome, n) ORDER BY key, n) u \
         WHERE w.event_key = u.key RETURNING w.event_key"
    ))
    .bind(&keys)
    .bind(&values)
    .persistent(false)
    .fetch_all(exec)
    .await
    .map_err(map_err)?;
    let found: HashSet<&str> = updated.iter().map(|(k,)| k.as_str()).collect();
    Ok(keys.iter().map(|k| found.contains(k)).collect())
}

/// `NotFound` unless the key was recorded.
async fn exists(exec: impl PgExecutor<'_>, key: &IdempotencyKey) -> Result<(), StoreError> {
    let found: Option<(i64,)> = sqlx::query_as("SELECT id FROM webhook_events WHERE event_key = $1")
        .bind(key.as_str())
        .fetch_optional(exec)
        .await
        .map_err(map_err)?;
    found.map(|_| ()).ok_or(StoreError::NotFound)
}

/// Marks a delivery dead while it has no outcome and is at `generation`.
pub(crate) async fn mark_dead(
    conn: &mut PgConnection,
    key: &IdempotencyKey,
    generation: u32,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE webhook_events SET outcome = 'dead', processed_at = now() \
         WHERE event_key = $1 AND outcome IS NULL AND generation = $2",
    )
    .bind(key.as_str())
    .bind(u32_to_db(generation, "generation")?)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    if done.rows_affected() == 1 {
        return Ok(true);
    }
    exists(&mut *conn, key).await.map(|()| false)
}

/// Reopens a processed delivery at `generation` that keeps its body.
pub(crate) async fn reopen(
    conn: &mut PgConnection,
    key: &IdempotencyKey,
    generation: u32,
) -> Result<Option<u32>, StoreError> {
    let reopened: Option<(i32,)> = sqlx::query_as(
        "UPDATE webhook_events SET outcome = NULL, processed_at = NULL, generation = generation + 1 \
         WHERE event_key = $1 AND outcome IS NOT NULL AND generation = $2 AND raw_body IS NOT NULL \
         RETURNING generation",
    )
    .bind(key.as_str())
    .bind(u32_to_db(generation, "generation")?)
    .fetch_optional(&mut *conn)
    .await
    .map_err(map_err)?;
    match reopened {
        Some((next,)) => u32_from_db(next, "webhook_events.generation").map(Some),
        None => exists(&mut *conn, key).await.map(|()| None),
    }
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    event_key: String,
    outcome: Option<String>,
    generation: i32,
    payment_hash: Option<Vec<u8>>,
    received_at_ms: i64,
    body_kept: bool,
    conflicts: i32,
}

impl DeliveryRow {
    fn into_delivery(self) -> Result<Delivery, StoreError> {
        Ok(Delivery {
            position: id_from_db(self.id)?,
            key: key_from_db(self.event_key, "webhook_events.event_key")?,
            outcome: outcome_from_db(self.outcome)?,
            generation: u32_from_db(self.generation, "webhook_events.generation")?,
            payment_hash: self
                .payment_hash
                .as_deref()
                .map(|h| hash_from_db(h, "webhook_events.payment_hash"))
                .transpose()?,
            received_at_ms: ms_from_db(self.received_at_ms, "webhook_events.received_at")?,
            body_kept: self.body_kept,
            conflicts: u32_from_db(self.conflicts, "webhook_events.conflicts")?,
        })
    }
}

/// The delivery log: one statement with only the conditions asked for (each
/// combination its own prepared statement), by id. By payment hash without an
/// outcome filter it is two branches, processed and unprocessed deliveries,
/// each on its own partial index.
pub(crate) async fn deliveries(exec: impl PgExecutor<'_>, filter: &DeliveryFilter) -> Result<DeliveryPage, StoreError> {
    let mut page = DeliveryPage { deliveries: Vec::new(), next: filter.after };
    if filter.limit == 0 {
        return Ok(page);
    }
    let branches: &[Option<&str>] = if filter.payment_hash.is_some() && filter.outcome.is_none() {
        &[Some(" AND outcome IS NOT NULL"), Some(" AND outcome IS NULL")]
    } else {
        &[None]
    };
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new("SELECT * FROM (");
    for (i, branch) in branches.iter().enumerate() {
        if i > 0 {
            q.push(" UNION ALL ");
        }
        q.push(
            "(SELECT id, event_key, outcome, generation, payment_hash, \
             floor(extract(epoch FROM received_at) * 1000)::bigint AS received_at_ms, \
             raw_body IS NOT NULL AS body_kept, conflicts FROM webhook_events WHERE id > ",
        );
        q.push_bind(id_to_db(filter.after)?);
        match filter.outcome {
            None => {}
            Some(OutcomeFilter::Pending) => {
                q.push(" AND outcome IS NULL");
            }
            Some(OutcomeFilter::Is(DeliveryOutcome::Dead)) => {
                // The literal matches the partial index of dead deliveries.
                q.push(" AND outcome = 'dead'");
            }
            Some(OutcomeFilter::Is(outcome)) => {
                q.push(" AND outcome = ").push_bind(outcome.as_str());
            }
        }
        if let Some(since) = filter.since_ms {
            q.push(" AND received_at >= to_timestamp(").push_bind(ms_to_db(since, "since")?).push("::float8 / 1000)");
        }
        if let Some(hash) = filter.payment_hash {
            q.push(" AND payment_hash = ").push_bind(hash.as_bytes().to_vec());
        }
        if let Some(branch) = branch {
            q.push(*branch);
        }
        q.push(" ORDER BY id LIMIT ").push_bind(i64::from(filter.limit)).push(")");
    }
    q.push(") AS d ORDER BY id LIMIT ").push_bind(i64::from(filter.limit));
    let rows: Vec<DeliveryRow> = q.build_query_as().fetch_all(exec).await.map_err(map_err)?;
    for row in rows {
        let delivery = row.into_delivery()?;
        page.next = delivery.position;
        page.deliveries.push(delivery);
    }
    Ok(page)
}

/// Retention: drops the bodies (and their conflicts' bodies) of at most
/// `limit` deliveries with a final outcome processed at least `older_than`
/// ago, in one statement, by the partial index of such bodies.
pub(crate) async fn drop_bodies(
    exec: impl PgExecutor<'_>,
    older_than: std::time::Duration,
    limit: u32,
) -> Result<u64, StoreError> {
    let (dropped,): (i64,) = sqlx::query_as(
        "WITH due AS ( \
             SELECT id FROM webhook_events \
             WHERE raw_body IS NOT NULL AND outcome IS NOT NULL AND outcome <> 'dead' \
               AND processed_at <= now() - make_interval(secs => $1) \
             ORDER BY processed_at LIMIT $2 FOR UPDATE SKIP LOCKED), \
         bodies AS ( \
             UPDATE webhook_events w SET raw_body = NULL FROM due WHERE w.id = due.id RETURNING w.event_key), \
         conflicts AS ( \
             UPDATE webhook_conflicts c SET raw_body = NULL FROM bodies \
             WHERE c.event_key = bodies.event_key AND c.raw_body IS NOT NULL) \
         SELECT count(*) FROM bodies",
    )
    .bind(older_than.as_secs_f64())
    .bind(i64::from(limit))
    .fetch_one(exec)
    .await
    .map_err(map_err)?;
    u64::try_from(dropped).map_err(|_| StoreError::Corrupt(format!("dropped a negative count: {dropped}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sql_names_the_dead_outcome_as_the_domain_does() {
        assert_eq!(DeliveryOutcome::Dead.as_str(), "dead");
        assert!(MARK_PROCESSED.contains("'dead'"));
    }
}
