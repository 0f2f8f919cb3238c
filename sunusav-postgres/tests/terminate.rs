//! A backend killed in the middle of a unit of work leaves nothing partial, and
//! the retried unit of work succeeds.

mod common;

use std::sync::Arc;

use common::{TestDb, active_group, insert_group};
use sunusav_core::domain::ids::PaymentHash;
use sunusav_core::domain::keys::IdempotencyKey;
use sunusav_core::ports::prelude::*;
use sunusav_core::ports::store::{Contribution, OutboxMessage};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_terminated_mid_transaction_leaves_nothing_and_a_retry_succeeds() {
    let Some(db) = TestDb::migrated().await else { return };
    let pg = db.store().await;
    let store: Arc<dyn Store> = Arc::new(pg.clone());
    let g = active_group(2);
    insert_group(&store, &g).await;
    let c = Contribution {
        payment_hash: PaymentHash::from_bytes(rand::random()),
        group: g.id(),
        cycle: 1,
        member: g.members()[0],
        amount: g.contribution(),
    };
    let msg = OutboxMessage {
        id: 0,
        queue: "payouts".into(),
        job_id: IdempotencyKey::parse("job:1").expect("key"),
        payload: vec![],
    };

    // Arrange: a unit of work half done.
    let mut tx = pg.begin_pg().await.expect("begin");
    let pid = tx.backend_pid().await.expect("pid");
    tx.lock_group(g.id()).await.expect("lock");
    let mut loaded = tx.load_group(g.id()).await.expect("load").expect("found");
    assert!(tx.insert_contribution(&c).await.expect("insert"));
    tx.insert_outbox(&msg).await.expect("outbox");

    // Act: another connection kills its backend.
    let killed: bool =
        sqlx::query_scalar("SELECT pg_terminate_backend($1)").bind(pid).fetch_one(pg.pool()).await.expect("terminate");
    assert!(killed);
    let inv = sunusav_core::Invoice {
        payment_hash: c.payment_hash,
        group: g.id(),
        cycle: 1,
        member: c.member,
        amount: c.amount,
        bolt11: "lnbcrt1".into(),
        expires_at_ms: 1_764_720_000_000,
        state: sunusav_core::domain::group::InvoiceState::Open,
    };
    loaded.record_contribution(&inv, c.amount).expect("rule");
    let err = match tx.save_group(&loaded).await {
        Ok(()) => Box::new(tx).commit().await.expect_err("the backend is gone"),
        Err(e) => e,
    };

    // Assert: retryable, nothing partial visible, and the lock is free.
    assert!(err.is_retryable(), "{err:?}");
    let mut check = store.begin().await.expect("begin");
    assert_eq!(check.contribution(&c.payment_hash).await.expect("read"), None);
    assert!(check.claim_outbox(10).await.expect("claim").is_empty());
    drop(check);
    assert!(store.group(g.id()).await.expect("read").expect("found").paid().is_empty());

    let mut retry = store.begin().await.expect("begin after the failure");
    retry.lock_group(g.id()).await.expect("the killed session's lock was released");
    let mut loaded = retry.load_group(g.id()).await.expect("load").expect("found");
    loaded.record_contribution(&inv, c.amount).expect("rule");
    assert!(retry.insert_contribution(&c).await.expect("insert"));
    retry.save_group(&loaded).await.expect("save");
    retry.insert_outbox(&msg).await.expect("outbox");
    retry.commit().await.expect("commit");
    assert_eq!(store.group(g.id()).await.expect("read").expect("found").paid().len(), 1);
    db.drop_db().await;
}
