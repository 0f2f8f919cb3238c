//! The core's store conformance suite on a store built from a host's pool
//! ([`PgStore::from_pool`]): the pool has sqlx's defaults (`search_path`
//! `"$user", public`, no sunusav table there), so every statement of the
//! store must reach sunusav's schema by itself.

mod common;

use std::sync::Arc;

use common::TestDb;
use sqlx::postgres::PgPoolOptions;
use sunusav_core::ports::store::Store;
use sunusav_postgres::{PgStore, PgStoreOptions};

sunusav_core::store_conformance_tests!(
    || async {
        let db = TestDb::migrated().await.expect("DATABASE_URL is set");
        let pool = PgPoolOptions::new().max_connections(8).connect(&db.url).await.expect("host pool");
        Arc::new(PgStore::from_pool(pool, &PgStoreOptions::default())) as Arc<dyn Store>
    },
    skip_unless = common::admin_url().is_some()
);
