//! The core's store conformance suite, run against PostgreSQL: each case on
//! its own freshly migrated database.

mod common;

use std::sync::{Arc, Mutex};

use common::TestDb;
use sunusav_core::ports::store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_store_passes_the_store_conformance_suite() {
    if common::admin_url().is_none() {
        return;
    }
    let dbs: Arc<Mutex<Vec<TestDb>>> = Arc::default();
    let made = Arc::clone(&dbs);
    sunusav_core::conformance::store::run_all(move || {
        let made = Arc::clone(&made);
        async move {
            let db = TestDb::migrated().await.expect("DATABASE_URL is set");
            let store: Arc<dyn Store> = Arc::new(db.store().await);
            made.lock().expect("lock").push(db);
            store
        }
    })
    .await;
    let dbs = std::mem::take(&mut *dbs.lock().expect("lock"));
    for db in dbs {
        db.drop_db().await;
    }
}
