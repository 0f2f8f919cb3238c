//! The embedded, reversible schema migrations (`migrations/*.{up,down}.sql`),
//! applied in a schema of sunusav's own with a migrations table of its own.
//!
//! [`migrator`] returns sqlx's [`Migrator`] for a [`Schema`]: it creates the
//! schema if needed, records its migrations in `<schema>._sqlx_migrations`
//! (never in the host's `public._sqlx_migrations`), and runs each migration
//! in its transaction after `SET LOCAL search_path TO <schema>`. Nothing of
//! this outlives the transaction, so a host may run it on its own pool, before
//! or after its own migrations:
//!
//! ```no_run
//! # use sunusav_postgres::sqlx;
//! # async fn run(host_pool: sqlx::PgPool) -> Result<(), sqlx::migrate::MigrateError> {
//! let schema = sunusav_postgres::Schema::default(); // "sunusav"
//! sunusav_postgres::migrator(&schema).run(&host_pool).await?;
//! # Ok(()) }
//! ```
//!
//! The SQL files name tables without a schema; the `search_path` puts them in
//! the schema. Each migration keeps the checksum of its file.

use std::sync::LazyLock;

use sqlx::PgPool;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr};

use crate::schema::Schema;

/// The migrations as the files hold them, embedded at build time.
static FILES: Migrator = sqlx::migrate!("./migrations");

/// The migrator of the default schema, `sunusav` (see [`migrator`]).
pub static MIGRATOR: LazyLock<Migrator> = LazyLock::new(|| migrator(&Schema::default()));

/// sunusav's migrations, applied in `schema` and recorded in its own
/// migrations table, `<schema>._sqlx_migrations`.
pub fn migrator(schema: &Schema) -> Migrator {
    let set_local = schema.set_local();
    let migrations = FILES
        .iter()
        .map(|m| {
            let mut m = m.clone();
            // The checksum stays the file's: the prefix is how it runs, not what it is.
            m.sql = AssertSqlSafe(format!("{set_local};\n{}", m.sql.as_str())).into_sql_str();
            m
        })
        .collect();
    let mut migrator = Migrator::with_migrations(migrations);
    migrator.create_schema(schema.quoted());
    migrator.dangerous_set_table_name(schema.migrations_table());
    migrator
}

/// Applies every pending migration in the default schema, `sunusav`.
///
/// # Errors
/// When the database cannot be reached or a migration fails (it is then rolled back).
pub async fn migrate(pool: &PgPool) -> Result<(), MigrateError> {
    MIGRATOR.run(pool).await
}

/// Reverts every applied migration of the default schema, newest first
/// (drops every table of sunusav; the empty schema stays).
///
/// # Errors
/// When the database cannot be reached or a down migration fails.
pub async fn revert(pool: &PgPool) -> Result<(), MigrateError> {
    MIGRATOR.undo(pool, 0).await
}
