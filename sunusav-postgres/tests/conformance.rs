//! The core's store conformance suite, run against PostgreSQL: one test per
//! case, each on its own freshly migrated database (left to the throwaway
//! server that the test services start).

mod common;

use std::sync::Arc;

use common::TestDb;
use sunusav_core::ports::store::Store;

sunusav_core::store_conformance_tests!(
    || async {
        let db = TestDb::migrated().await.expect("DATABASE_URL is set");
        Arc::new(db.store().await) as Arc<dyn Store>
    },
    skip_unless = common::admin_url().is_some()
);
