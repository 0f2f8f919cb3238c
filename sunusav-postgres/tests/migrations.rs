//! The embedded migrations apply, revert completely, and apply again.

mod common;

use std::sync::Arc;

use common::{TestDb, active_group, insert_group};
use sunusav_core::domain::group::InvoiceState;
use sunusav_core::domain::ids::PaymentHash;
use sunusav_core::ports::store::{Contribution, Store, StoreError};

async fn table_count(store: &sunusav_postgres::PgStore) -> i64 {
    sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'sunusav' \
         AND table_name IN ('tontine_groups', 'group_members', 'invoices', 'contributions', \
                            'payment_attempts', 'outbox', 'webhook_events', 'ledger_entries')",
    )
    .fetch_one(store.pool())
    .await
    .expect("count tables")
}

#[tokio::test]
async fn migrations_run_revert_and_run_again_to_a_working_schema() {
    let Some(db) = TestDb::empty().await else { return };
    let store = db.store().await;

    sunusav_postgres::migrate(store.pool()).await.expect("first migrate");
    assert_eq!(table_count(&store).await, 8);
    sunusav_postgres::migrate(store.pool()).await.expect("migrating twice is a no-op");

    sunusav_postgres::revert(store.pool()).await.expect("revert");
    assert_eq!(table_count(&store).await, 0, "revert drops every table");

    sunusav_postgres::migrate(store.pool()).await.expect("migrate again");
    assert_eq!(table_count(&store).await, 8);
    let store: Arc<dyn Store> = Arc::new(store);
    let g = active_group(3);
    insert_group(&store, &g).await;
    assert_eq!(store.group(g.id()).await.expect("read"), Some(g));
    db.drop_db().await;
}

/// The migration before the ledger's.
/// Writes an active group as the schema before the ledger stored it (no
/// policy column).
async fn insert_old_group(pg: &sunusav_postgres::PgStore, g: &sunusav_core::Group) {
    sqlx::query(
        "INSERT INTO tontine_groups (id, contribution_msat, fee_bps, status, current_cycle, cycle_status) \
         VALUES ($1, 5000, 100, 'active', 1, 'collecting')",
    )
    .bind(g.id().as_uuid())
    .execute(pg.pool())
    .await
    .expect("old group");
    for (position, member) in (1_i32..).zip(g.members()) {
        sqlx::query("INSERT INTO group_members (group_id, position, member_id) VALUES ($1, $2, $3)")
            .bind(g.id().as_uuid())
            .bind(position)
            .bind(member.as_uuid())
            .execute(pg.pool())
            .await
            .expect("old member");
    }
}

const BEFORE_LEDGER: i64 = 20_251_129_000_003;

#[tokio::test]
async fn the_ledger_migration_settles_paid_invoices_and_keeps_one_open_per_member_and_cycle() {
    let Some(db) = TestDb::empty().await else { return };
    let pg = db.store().await;
    sunusav_postgres::MIGRATOR.run_to(BEFORE_LEDGER, pg.pool()).await.expect("migrate to the version before");
    let store: Arc<dyn Store> = Arc::new(pg.clone());
    let g = active_group(2);
    insert_old_group(&pg, &g).await;
    let (m0, m1) = (g.members()[0].as_uuid(), g.members()[1].as_uuid());
    // Member 0: three invoices for cycle 1, the second paid; member 1: two
    // unpaid ones issued at the same time, and one for cycle 2.
    let rows: [(u8, uuid::Uuid, i32, &str); 6] = [
        (1, m0, 1, "2025-01-01 10:00:00.123456+00"),
        (2, m0, 1, "2025-01-01 11:00:00+00"),
        (3, m0, 1, "2025-01-01 12:00:00+00"),
        (5, m1, 1, "2025-01-01 13:00:00+00"),
        (4, m1, 1, "2025-01-01 13:00:00+00"),
        (6, m1, 2, "2025-01-02 13:00:00+00"),
    ];
    for (hash, member, cycle, at) in rows {
        sqlx::query(
            "INSERT INTO invoices (payment_hash, group_id, cycle, member_id, amount_msat, bolt11, created_at) \
             VALUES ($1, $2, $3, $4, 5000, 'lnbcrt1', $5::timestamptz)",
        )
        .bind(vec![hash; 32])
        .bind(g.id().as_uuid())
        .bind(cycle)
        .bind(member)
        .bind(at)
        .execute(pg.pool())
        .await
        .expect("old invoice");
    }
    sqlx::query(
        "INSERT INTO contributions (payment_hash, group_id, cycle, member_id, amount_msat) VALUES ($1, $2, 1, $3, 5000)",
    )
    .bind(vec![2_u8; 32])
    .bind(g.id().as_uuid())
    .bind(m0)
    .execute(pg.pool())
    .await
    .expect("old contribution");

    sunusav_postgres::migrate(pg.pool()).await.expect("migrate");
    let loaded = store.group(g.id()).await.expect("read").expect("the old group");
    assert!(loaded.policy().apply_balance, "an existing group applies balances (the default)");
    let hashes: Vec<PaymentHash> = (1..=6).map(|b| PaymentHash::from_bytes([b; 32])).collect();
    let mut found = store.invoices(&hashes).await.expect("read");
    found.sort_by_key(|i| i.payment_hash);
    let states: Vec<(InvoiceState, u64)> = found.iter().map(|i| (i.state, i.expires_at_ms)).collect();
    let day = 86_400_000;
    assert_eq!(
        states,
        vec![
            (InvoiceState::Cancelled, 1_735_725_600_123 + day),
            (InvoiceState::Settled, 1_735_729_200_000 + day),
            (InvoiceState::Open, 1_735_732_800_000 + day),
            (InvoiceState::Cancelled, 1_735_736_400_000 + day),
            (InvoiceState::Open, 1_735_736_400_000 + day),
            (InvoiceState::Open, 1_735_736_400_000 + 2 * day),
        ],
        "paid: settled; the newest unpaid per member and cycle open, older ones cancelled; expiry a day after issue"
    );
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(
        tx.open_invoices(g.id(), 1).await.expect("list").iter().map(|i| i.payment_hash).collect::<Vec<_>>(),
        vec![hashes[2], hashes[4]],
        "oldest first"
    );
    drop(tx);

    // New rows are numbered after the old ones.
    let mut tx = store.begin().await.expect("begin");
    let c = Contribution {
        payment_hash: PaymentHash::from_bytes([9; 32]),
        group: g.id(),
        cycle: 1,
        member: g.members()[1],
        amount: g.contribution(),
    };
    assert!(tx.insert_contribution(&c).await.expect("insert"));
    tx.commit().await.expect("commit");
    let order: Vec<PaymentHash> =
        store.contributions(g.id()).await.expect("read").iter().map(|c| c.payment_hash).collect();
    assert_eq!(order, vec![hashes[1], c.payment_hash]);

    // Down restores the schema before it; up again works.
    sunusav_postgres::MIGRATOR.undo(pg.pool(), BEFORE_LEDGER).await.expect("revert the ledger migration");
    let columns: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.columns \
         WHERE (table_name IN ('invoices', 'contributions') AND column_name IN ('expires_at_ms', 'state', 'seq')) \
            OR (table_name = 'tontine_groups' AND column_name = 'apply_balance')",
    )
    .fetch_one(pg.pool())
    .await
    .expect("columns");
    assert_eq!(columns, 0);
    sunusav_postgres::migrate(pg.pool()).await.expect("migrate again");
    db.drop_db().await;
}

#[tokio::test]
async fn a_row_that_breaks_a_rule_is_refused_or_reported_corrupt() {
    let Some(db) = TestDb::migrated().await else { return };
    let pg = db.store().await;
    let store: Arc<dyn Store> = Arc::new(pg.clone());
    let g = active_group(2);
    insert_group(&store, &g).await;

    // CHECK constraints guard every status column and amount.
    for sql in [
        "UPDATE tontine_groups SET status = 'paused' WHERE id = $1",
        "UPDATE tontine_groups SET cycle_status = 'done' WHERE id = $1",
        "UPDATE tontine_groups SET contribution_msat = 0 WHERE id = $1",
    ] {
        let err = sqlx::query(sql).bind(g.id().as_uuid()).execute(pg.pool()).await.expect_err(sql);
        let code = err.as_database_error().and_then(sqlx::error::DatabaseError::code).map(std::borrow::Cow::into_owned);
        assert_eq!(code.as_deref(), Some("23514"), "{sql}");
    }

    // A row that passes the CHECKs but not the aggregate's invariants is Corrupt.
    sqlx::query("UPDATE tontine_groups SET current_cycle = 99 WHERE id = $1")
        .bind(g.id().as_uuid())
        .execute(pg.pool())
        .await
        .expect("update");
    let err = store.group(g.id()).await.expect_err("cycle 99 of 2");
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    db.drop_db().await;
}

#[test]
fn with_database_replaces_only_the_database_name() {
    assert_eq!(common::with_database("postgres://u@h:5/postgres", "x"), "postgres://u@h:5/x");
    assert_eq!(
        common::with_database("postgres://u@h:5/postgres?sslmode=disable", "x"),
        "postgres://u@h:5/x?sslmode=disable"
    );
    assert_eq!(common::with_database("postgres://u@h:5", "x"), "postgres://u@h:5/x");
}

/// The migration before dead work's (generations, digests, retention).
const BEFORE_DEAD_WORK: i64 = 20_251_202_000_004;

#[tokio::test]
async fn the_dead_work_migration_digests_recorded_bodies_and_reverts_what_the_old_schema_cannot_hold() {
    use sunusav_core::domain::outcome::DeliveryOutcome;
    use sunusav_core::ports::store::{DeliveryFilter, Recorded, WebhookEvent};
    use sunusav_core::{BodyDigest, IdempotencyKey};

    let Some(db) = TestDb::empty().await else { return };
    let pg = db.store().await;
    sunusav_postgres::MIGRATOR.run_to(BEFORE_DEAD_WORK, pg.pool()).await.expect("migrate to the version before");
    let hash = PaymentHash::from_bytes([0xab; 32]);
    let with_hash = format!(r#"{{"payment_hash":"{hash}","status":"settled","amount_msat":1000}}"#);
    let rows: [(&str, &[u8], Option<&str>); 3] = [
        ("webhook:old-1", with_hash.as_bytes(), Some("recorded")),
        ("webhook:old-2", b"{\"status\":\"open\"}", None),
        ("webhook:old-3", b"\xff not utf-8", Some("invalid_json")),
    ];
    for (key, body, outcome) in rows {
        sqlx::query(
            "INSERT INTO webhook_events (event_key, raw_body, outcome, processed_at) \
             VALUES ($1, $2, $3::text, CASE WHEN $3::text IS NULL THEN NULL ELSE now() END)",
        )
        .bind(key)
        .bind(body)
        .bind(outcome)
        .execute(pg.pool())
        .await
        .expect("old delivery");
    }

    sunusav_postgres::migrate(pg.pool()).await.expect("migrate");
    let store: Arc<dyn Store> = Arc::new(pg.clone());
    let log = store.webhook_deliveries(&DeliveryFilter::all(10)).await.expect("log");
    let hashes: Vec<Option<PaymentHash>> = log.deliveries.iter().map(|d| d.payment_hash).collect();
    assert_eq!(hashes, vec![Some(hash), None, None], "the payment hash named by a recorded body is backfilled");
    assert!(log.deliveries.iter().all(|d| d.generation == 0 && d.conflicts == 0 && d.body_kept));
    // The backfilled digest is the domain's: the same body is a replay, another a conflict.
    let key = IdempotencyKey::parse("webhook:old-1").expect("key");
    let replay = WebhookEvent::new(key.clone(), with_hash.as_bytes().to_vec());
    assert_eq!(BodyDigest::of(replay.body()), *replay.digest());
    assert_eq!(
        store.record_webhook(&replay).await.expect("replay"),
        Recorded::Replay { outcome: Some(DeliveryOutcome::Recorded), generation: 0 }
    );
    assert_eq!(
        store.record_webhook(&WebhookEvent::new(key.clone(), b"{}".to_vec())).await.expect("conflict"),
        Recorded::Conflict
    );

    // What the old schema cannot hold: a dead delivery, a dropped body.
    let old2 = IdempotencyKey::parse("webhook:old-2").expect("key");
    assert!(store.mark_webhook_dead(&old2, 0).await.expect("dead"));
    assert_eq!(store.drop_webhook_bodies(std::time::Duration::ZERO, 10).await.expect("retention"), 2);
    sunusav_postgres::MIGRATOR.undo(pg.pool(), BEFORE_DEAD_WORK).await.expect("revert the dead work migration");
    let back: Vec<(String, Vec<u8>, Option<String>)> =
        sqlx::query_as("SELECT event_key, raw_body, outcome FROM webhook_events ORDER BY id")
            .fetch_all(pg.pool())
            .await
            .expect("read back");
    assert_eq!(
        back,
        vec![
            ("webhook:old-1".into(), Vec::new(), Some("recorded".into())),
            ("webhook:old-2".into(), b"{\"status\":\"open\"}".to_vec(), None),
            ("webhook:old-3".into(), Vec::new(), Some("invalid_json".into())),
        ],
        "dead: pending again for the old sweep; a dropped body: empty"
    );
    let (tables,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM information_schema.tables WHERE table_name = 'webhook_conflicts'")
            .fetch_one(pg.pool())
            .await
            .expect("tables");
    assert_eq!(tables, 0);
    sunusav_postgres::migrate(pg.pool()).await.expect("migrate again");
    db.drop_db().await;
}
