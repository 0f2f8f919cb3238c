//! The embedded, reversible schema migrations (`migrations/*.{up,down}.sql`).

use sqlx::PgPool;
use sqlx::migrate::{MigrateError, Migrator};

/// The migrations, embedded at build time.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Applies every pending migration.
///
/// # Errors
/// When the database cannot be reached or a migration fails (it is then rolled back).
pub async fn migrate(pool: &PgPool) -> Result<(), MigrateError> {
    MIGRATOR.run(pool).await
}

/// Reverts every applied migration, newest first (drops the whole schema).
///
/// # Errors
/// When the database cannot be reached or a down migration fails.
pub async fn revert(pool: &PgPool) -> Result<(), MigrateError> {
    MIGRATOR.undo(pool, 0).await
}
