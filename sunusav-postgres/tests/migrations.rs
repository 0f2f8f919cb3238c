//! The embedded migrations apply, revert completely, and apply again.

mod common;

use std::sync::Arc;

use common::{TestDb, active_group, insert_group};
use sunusav_core::ports::store::{Store, StoreError};

async fn table_count(store: &sunusav_postgres::PgStore) -> i64 {
    sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' \
         AND table_name IN ('tontine_groups', 'group_members', 'invoices', 'contributions', \
                            'payment_attempts', 'outbox', 'webhook_events')",
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
    assert_eq!(table_count(&store).await, 7);
    sunusav_postgres::migrate(store.pool()).await.expect("migrating twice is a no-op");

    sunusav_postgres::revert(store.pool()).await.expect("revert");
    assert_eq!(table_count(&store).await, 0, "revert drops every table");

    sunusav_postgres::migrate(store.pool()).await.expect("migrate again");
    assert_eq!(table_count(&store).await, 7);
    let store: Arc<dyn Store> = Arc::new(store);
    let g = active_group(3);
    insert_group(&store, &g).await;
    assert_eq!(store.group(g.id()).await.expect("read"), Some(g));
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
