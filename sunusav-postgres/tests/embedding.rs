//! sunusav inside a host's database: its tables in a schema of its own, its
//! migrations in a migrations table of its own, and its store on the host's
//! pool, beside a host that has tables of the same names in `public` and its
//! own sqlx migrations.

mod common;

use std::sync::Arc;

use common::{TestDb, active_group, insert_group};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, SqlSafeStr};
use sunusav_core::ports::store::{GroupReads, Store};
use sunusav_postgres::{PgStore, PgStoreOptions, Schema};

/// The host's migrations: its own `invoices` and `outbox` in `public`, the
/// first at the version of sunusav's first migration. `next` adds the
/// migration of the host's next release.
fn host_migrator(next: bool) -> Migrator {
    let mut migrations = vec![
        (20_250_101_000_001, "host invoices", "CREATE TABLE invoices (id bigint PRIMARY KEY, customer text NOT NULL)"),
        (20_250_101_000_002, "host outbox", "CREATE TABLE outbox (topic text NOT NULL)"),
    ];
    if next {
        migrations.push((30_000_101_000_001, "host invoice notes", "ALTER TABLE invoices ADD COLUMN note text"));
    }
    Migrator::with_migrations(
        migrations
            .into_iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    version,
                    description.into(),
                    MigrationType::Simple,
                    AssertSqlSafe(sql).into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// The host's pool: sqlx's defaults, one connection, so that every statement
/// of the host and of sunusav meets on the same session.
async fn host_pool(db: &TestDb) -> PgPool {
    PgPoolOptions::new().max_connections(1).connect(&db.url).await.expect("host pool")
}

async fn versions(pool: &PgPool, table: &str) -> Vec<i64> {
    sqlx::query_scalar(AssertSqlSafe(format!("SELECT version FROM {table} ORDER BY version")))
        .fetch_all(pool)
        .await
        .expect("versions")
}

async fn columns(pool: &PgPool, schema: &str, table: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns \
         WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
    )
    .bind(schema)
    .bind(table)
    .fetch_all(pool)
    .await
    .expect("columns")
}

/// Both sets of migrations applied, each recorded in its own table; both
/// `invoices` tables there; the host's statements still reach its own tables
/// and sunusav's store works, on one shared connection.
async fn assert_both_apply_and_coexist(pool: &PgPool) {
    let sunusav_versions: Vec<i64> = sunusav_postgres::MIGRATOR.iter().map(|m| m.version).collect();
    let mut sunusav_versions = sunusav_versions;
    sunusav_versions.dedup();
    assert_eq!(
        versions(pool, "public._sqlx_migrations").await,
        vec![20_250_101_000_001, 20_250_101_000_002, 30_000_101_000_001]
    );
    assert_eq!(versions(pool, "sunusav._sqlx_migrations").await, sunusav_versions);
    assert_eq!(columns(pool, "public", "invoices").await, ["id", "customer", "note"]);
    assert!(columns(pool, "sunusav", "invoices").await.contains(&"bolt11".to_owned()));
    for table in ["tontine_groups", "contributions", "payment_attempts", "webhook_events", "ledger_entries"] {
        assert!(columns(pool, "public", table).await.is_empty(), "{table} stays out of public");
    }

    let store: Arc<dyn Store> = Arc::new(PgStore::from_pool(pool.clone(), &PgStoreOptions::default()));
    let g = active_group(3);
    insert_group(&store, &g).await;
    assert_eq!(store.group(g.id()).await.expect("read"), Some(g.clone()));
    assert!(store.invoices(&[sunusav_core::PaymentHash::from_bytes([1; 32])]).await.expect("read").is_empty());

    // The host, on the same (only) connection, still sees its own tables.
    sqlx::query("INSERT INTO invoices (id, customer) VALUES (1, 'ada')").execute(pool).await.expect("host insert");
    let customer: String =
        sqlx::query_scalar("SELECT customer FROM invoices WHERE id = 1").fetch_one(pool).await.expect("host read");
    assert_eq!(customer, "ada");
    let path: String = sqlx::query_scalar("SHOW search_path").fetch_one(pool).await.expect("search_path");
    assert_eq!(path, "\"$user\", public", "sunusav left the session's search_path as it was");
    assert_eq!(store.group(g.id()).await.expect("read again"), Some(g));
}

#[tokio::test]
async fn the_hosts_migrations_then_sunusavs_then_the_hosts_next_release_all_apply() {
    let Some(db) = TestDb::empty().await else { return };
    let pool = host_pool(&db).await;

    host_migrator(false).run(&pool).await.expect("the host's migrations");
    sunusav_postgres::migrator(&Schema::default()).run(&pool).await.expect("sunusav's migrations");
    host_migrator(true).run(&pool).await.expect("the host's next start");
    sunusav_postgres::MIGRATOR.run(&pool).await.expect("sunusav's next start");

    assert_both_apply_and_coexist(&pool).await;
    pool.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn sunusavs_migrations_then_the_hosts_then_sunusavs_again_all_apply() {
    let Some(db) = TestDb::empty().await else { return };
    let pool = host_pool(&db).await;

    sunusav_postgres::migrate(&pool).await.expect("sunusav's migrations");
    host_migrator(false).run(&pool).await.expect("the host's migrations");
    sunusav_postgres::migrate(&pool).await.expect("sunusav's next start");
    host_migrator(true).run(&pool).await.expect("the host's next release");

    assert_both_apply_and_coexist(&pool).await;

    // Reverting sunusav drops its tables only.
    sunusav_postgres::revert(&pool).await.expect("revert sunusav");
    assert!(columns(&pool, "sunusav", "invoices").await.is_empty());
    assert_eq!(columns(&pool, "public", "invoices").await, ["id", "customer", "note"]);
    pool.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn a_configured_schema_holds_the_tables_of_a_store_sunusav_connects() {
    let Some(db) = TestDb::empty().await else { return };
    let options = PgStoreOptions { schema: Schema::new("tontine").expect("valid"), ..PgStoreOptions::default() };
    let store = db.store_with(&options).await;
    store.migrate().await.expect("migrate");
    store.migrate().await.expect("migrating twice is a no-op");
    let pool = host_pool(&db).await;
    assert!(columns(&pool, "tontine", "tontine_groups").await.contains(&"apply_balance".to_owned()));
    assert!(columns(&pool, "sunusav", "tontine_groups").await.is_empty());
    assert!(!versions(&pool, "tontine._sqlx_migrations").await.is_empty());

    let store: Arc<dyn Store> = Arc::new(store);
    let g = active_group(2);
    insert_group(&store, &g).await;
    let on_host_pool = PgStore::from_pool(pool.clone(), &options);
    assert_eq!(on_host_pool.group(g.id()).await.expect("read"), Some(g));
    pool.close().await;
    db.drop_db().await;
}

#[test]
fn no_migration_runs_outside_a_transaction() {
    // `SET LOCAL search_path` only holds inside one: a `no_tx` migration
    // would land in the host's schema.
    assert!(sunusav_postgres::MIGRATOR.iter().all(|m| !m.no_tx));
}

/// The README's move of a deployment made before schemas (tables and
/// migrations table in `public`) into the schema `sunusav`: the `sql` block
/// of README.md that moves them, as written there.
fn move_from_public() -> &'static str {
    let readme = include_str!("../../README.md");
    readme
        .split("```sql\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .find(|block| block.contains("SET SCHEMA sunusav"))
        .expect("README.md has the move's sql block")
}

#[tokio::test]
async fn a_deployment_made_before_schemas_keeps_working_in_public_then_moves_to_its_schema() {
    let Some(db) = TestDb::empty().await else { return };
    let pool = host_pool(&db).await;
    // Before schemas: the files as they are, sqlx's default migrations table.
    let files = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"));
    Migrator::new(files).await.expect("the migration files").run(&pool).await.expect("the old way");
    assert!(columns(&pool, "public", "invoices").await.contains(&"bolt11".to_owned()));

    // With the schema set to `public`, nothing is applied again and the store works.
    let public = PgStoreOptions { schema: Schema::new("public").expect("valid"), ..PgStoreOptions::default() };
    let old = db.store_with(&public).await;
    old.migrate().await.expect("no migration is applied again");
    let store: Arc<dyn Store> = Arc::new(old.clone());
    let g = active_group(2);
    insert_group(&store, &g).await;
    old.pool().close().await;

    // The move, then the default schema.
    sqlx::raw_sql(sqlx::AssertSqlSafe(move_from_public())).execute(&pool).await.expect("move");
    let (left,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
            .fetch_one(&pool)
            .await
            .expect("tables left");
    assert_eq!(left, 0, "every table of sunusav's moved");
    let moved = db.store().await;
    moved.migrate().await.expect("nothing to apply after the move");
    assert_eq!(moved.group(g.id()).await.expect("read"), Some(g));
    assert!(columns(&pool, "public", "invoices").await.is_empty());
    assert!(columns(&pool, "public", "_sqlx_migrations").await.is_empty());
    let store: Arc<dyn Store> = Arc::new(moved.clone());
    insert_group(&store, &active_group(3)).await;
    moved.revert().await.expect("revert in the schema");
    assert!(columns(&pool, "sunusav", "invoices").await.is_empty());
    pool.close().await;
    db.drop_db().await;
}
