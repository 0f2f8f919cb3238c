//! Claims are single atomic statements: racing claims of one key insert once,
//! and unique violations map to the port's `Duplicate` names.

mod common;

use std::sync::Arc;

use common::{TestDb, active_group, insert_group};
use sunusav_core::PaymentAttempt;
use sunusav_core::domain::group::{Invoice, InvoiceState};
use sunusav_core::domain::ids::PaymentHash;
use sunusav_core::domain::keys::IdempotencyKey;
use sunusav_core::ports::store::{Contribution, Recorded, Store, StoreError, Unique, WebhookEvent};

fn contribution(g: &sunusav_core::Group, member: usize) -> Contribution {
    Contribution {
        payment_hash: PaymentHash::from_bytes(rand::random()),
        group: g.id(),
        cycle: 1,
        member: g.members()[member],
        amount: g.contribution(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_inserts_of_one_payment_hash_record_it_once() {
    let Some(db) = TestDb::migrated().await else { return };
    let store: Arc<dyn Store> = Arc::new(db.store().await);
    let g = active_group(3);
    insert_group(&store, &g).await;
    let c = contribution(&g, 0);

    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, c) = (Arc::clone(&store), c.clone());
            tokio::spawn(async move {
                let mut tx = store.begin().await.expect("begin");
                let inserted = tx.insert_contribution(&c).await.expect("insert");
                tx.commit().await.expect("commit");
                inserted
            })
        })
        .collect();
    let mut inserted = 0;
    for t in tasks {
        inserted += usize::from(t.await.expect("task"));
    }
    assert_eq!(inserted, 1, "exactly one racing insert claims the payment hash");
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.contribution(&c.payment_hash).await.expect("read"), Some(c));
    db.drop_db().await;
}

#[tokio::test]
async fn unique_violations_map_to_the_ports_duplicate_names() {
    let Some(db) = TestDb::migrated().await else { return };
    let store: Arc<dyn Store> = Arc::new(db.store().await);
    let g = active_group(3);
    insert_group(&store, &g).await;
    let first = contribution(&g, 1);
    let mut tx = store.begin().await.expect("begin");
    assert!(tx.insert_contribution(&first).await.expect("insert"));
    tx.commit().await.expect("commit");

    // Same member and cycle under another hash: the other unique still raises.
    let mut tx = store.begin().await.expect("begin");
    let other = Contribution { payment_hash: PaymentHash::from_bytes(rand::random()), ..first.clone() };
    assert_eq!(tx.insert_contribution(&other).await, Err(StoreError::Duplicate(Unique::ContributionMemberCycle)));
    drop(tx);

    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.insert_group(&g).await, Err(StoreError::Duplicate(Unique::Group)));
    drop(tx);

    let inv = Invoice {
        payment_hash: first.payment_hash,
        group: g.id(),
        cycle: 1,
        member: first.member,
        amount: first.amount,
        bolt11: "lnbcrt1".into(),
        expires_at_ms: 1_764_720_000_000,
        state: InvoiceState::Settled,
    };
    let mut tx = store.begin().await.expect("begin");
    tx.insert_invoice(&inv).await.expect("invoice");
    tx.commit().await.expect("commit");
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.insert_invoice(&inv).await, Err(StoreError::Duplicate(Unique::Invoice)));
    drop(tx);

    // A zero amount breaks a CHECK: Invalid, not Duplicate nor Unavailable.
    let mut tx = store.begin().await.expect("begin");
    let zero = Contribution { amount: sunusav_core::Msat::ZERO, ..contribution(&g, 2) };
    assert!(matches!(tx.insert_contribution(&zero).await, Err(StoreError::Invalid(_))));
    drop(tx);
    // An amount above i64::MAX is refused before it reaches SQL, never wrapped.
    let mut tx = store.begin().await.expect("begin");
    let huge = Contribution { amount: sunusav_core::Msat::new(u64::MAX), ..contribution(&g, 2) };
    assert!(matches!(tx.insert_contribution(&huge).await, Err(StoreError::Invalid(_))));
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_claims_of_a_payout_key_and_a_webhook_key_succeed_once() {
    let Some(db) = TestDb::migrated().await else { return };
    let store: Arc<dyn Store> = Arc::new(db.store().await);
    let g = active_group(2);
    insert_group(&store, &g).await;
    let due = sunusav_core::PayoutDue {
        group: g.id(),
        cycle: 1,
        beneficiary: g.members()[0],
        amount: sunusav_core::Msat::new(9_900),
        fee: sunusav_core::Msat::new(100),
        key: IdempotencyKey::payout(g.id(), 1),
        dividends: Vec::new(),
    };
    let attempt = PaymentAttempt::pending(&due);
    let event = WebhookEvent::new(IdempotencyKey::webhook(Some("evt_1"), b"{}"), b"{}".to_vec());

    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, attempt, event) = (Arc::clone(&store), attempt.clone(), event.clone());
            tokio::spawn(async move {
                let mut tx = store.begin().await.expect("begin");
                let a = tx.insert_payment_attempt(&attempt).await.expect("attempt");
                tx.commit().await.expect("commit");
                let w = store.record_webhook(&event).await.expect("webhook");
                (usize::from(a), usize::from(w == Recorded::New))
            })
        })
        .collect();
    let (mut attempts, mut webhooks) = (0, 0);
    for t in tasks {
        let (a, w) = t.await.expect("task");
        attempts += a;
        webhooks += w;
    }
    assert_eq!((attempts, webhooks), (1, 1));
    assert_eq!(store.payment_attempts(g.id()).await.expect("read"), vec![attempt]);
    db.drop_db().await;
}
