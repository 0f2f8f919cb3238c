//! The group's advisory lock serialises one group's transactions, leaves other
//! groups alone, and times out as `LockTimeout`; outbox claims skip locked rows.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{TestDb, active_group, insert_group};
use sunusav_core::domain::keys::IdempotencyKey;
use sunusav_core::ports::store::{OutboxMessage, Store, StoreError};
use sunusav_postgres::PgStoreOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_lock_serialises_one_group_but_not_two() {
    let Some(db) = TestDb::migrated().await else { return };
    let store: Arc<dyn Store> = Arc::new(db.store().await);
    let (g, h) = (active_group(2), active_group(2));
    insert_group(&store, &g).await;
    insert_group(&store, &h).await;

    let mut holder = store.begin().await.expect("begin");
    holder.lock_group(g.id()).await.expect("lock g");
    let mut other = store.begin().await.expect("begin");
    tokio::time::timeout(Duration::from_secs(2), other.lock_group(h.id()))
        .await
        .expect("another group's lock does not wait")
        .expect("lock h");
    other.commit().await.expect("commit");

    let s2 = Arc::clone(&store);
    let gid = g.id();
    let waiter = tokio::spawn(async move {
        let mut tx = s2.begin().await.expect("begin");
        tx.lock_group(gid).await.expect("lock g");
        let acquired = Instant::now();
        tx.commit().await.expect("commit");
        acquired
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "a second transaction took a held group lock");
    let released = Instant::now();
    holder.commit().await.expect("commit");
    let acquired =
        tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("released at commit").expect("task");
    assert!(acquired >= released, "the waiter got the lock only after the holder committed");
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_past_the_lock_timeout_is_a_retryable_lock_timeout() {
    let Some(db) = TestDb::migrated().await else { return };
    let options = PgStoreOptions { lock_timeout: Duration::from_millis(200), ..PgStoreOptions::default() };
    let store: Arc<dyn Store> = Arc::new(db.store_with(&options).await);
    let g = active_group(2);
    insert_group(&store, &g).await;

    let mut holder = store.begin().await.expect("begin");
    holder.lock_group(g.id()).await.expect("lock");
    let mut waiter = store.begin().await.expect("begin");
    let started = Instant::now();
    let err = waiter.lock_group(g.id()).await.expect_err("times out");
    assert_eq!(err, StoreError::LockTimeout);
    assert!(err.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(waiter);
    holder.commit().await.expect("commit");

    let mut again = store.begin().await.expect("begin");
    again.lock_group(g.id()).await.expect("free after commit");
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_relays_claim_each_outbox_row_exactly_once() {
    let Some(db) = TestDb::migrated().await else { return };
    let store: Arc<dyn Store> = Arc::new(db.store().await);
    let mut tx = store.begin().await.expect("begin");
    for i in 0..200 {
        let job_id = IdempotencyKey::parse(format!("job:{i}")).expect("key");
        tx.insert_outbox(&OutboxMessage { id: 0, queue: "payouts".into(), job_id, payload: vec![1] })
            .await
            .expect("insert");
    }
    tx.commit().await.expect("commit");

    let relays: Vec<_> = (0..4)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let mut tx = store.begin().await.expect("begin");
                    let batch = tx.claim_outbox(7).await.expect("claim");
                    if batch.is_empty() {
                        return mine;
                    }
                    let ids: Vec<u64> = batch.iter().map(|m| m.id).collect();
                    // Hold the claim a moment so the relays overlap.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    tx.mark_outbox_sent(&ids).await.expect("mark");
                    tx.commit().await.expect("commit");
                    mine.extend(ids);
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for r in relays {
        all.extend(r.await.expect("relay"));
    }
    let unique: HashSet<u64> = all.iter().copied().collect();
    assert_eq!(all.len(), 200, "every row was sent once, none twice");
    assert_eq!(unique.len(), 200);
    let mut tx = store.begin().await.expect("begin");
    assert!(tx.claim_outbox(10).await.expect("claim").is_empty());
    db.drop_db().await;
}
