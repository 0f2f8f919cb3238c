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
