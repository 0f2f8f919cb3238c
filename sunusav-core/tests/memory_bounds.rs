//! The in-memory adapters keep their memory bounded when asked to (the
//! embedded server does), without losing anything not yet processed.

use std::time::Duration;

use sunusav_core::memory::{MemoryQueue, MemoryStore};
use sunusav_core::ports::prelude::*;
use sunusav_core::ports::{Enqueued, NewJob, QueueConfig, Recorded, WebhookEvent};
use sunusav_core::{DeliveryOutcome, IdempotencyKey};

fn key(i: u32) -> IdempotencyKey {
    IdempotencyKey::parse(format!("job:{i}")).unwrap()
}

#[tokio::test]
async fn a_claim_limit_releases_the_oldest_gone_ids_first() {
    let q = MemoryQueue::new("bounded", QueueConfig::default().with_keep_completed(0));
    q.set_claim_limit(3);
    for i in 0..5 {
        q.enqueue(NewJob::new(key(i), "{}")).await.unwrap();
        let job = q.reserve(Duration::from_secs(30)).await.unwrap().unwrap();
        q.ack(&job.id, &job.token).await.unwrap();
    }
    // Ids 2, 3 and 4 are still claimed; 0 and 1 were released.
    assert_eq!(q.enqueue(NewJob::new(key(4), "{}")).await.unwrap(), Enqueued::Duplicate);
    assert_eq!(q.enqueue(NewJob::new(key(2), "{}")).await.unwrap(), Enqueued::Duplicate);
    assert_eq!(q.enqueue(NewJob::new(key(0), "{}")).await.unwrap(), Enqueued::Added);
    // A job that still exists is always claimed, whatever the limit.
    q.set_claim_limit(0);
    assert_eq!(q.enqueue(NewJob::new(key(0), "{}")).await.unwrap(), Enqueued::Duplicate);
}

#[tokio::test]
async fn webhook_retention_drops_only_the_oldest_processed_records() {
    let store = MemoryStore::new();
    store.set_webhook_retention(2);
    let keys: Vec<IdempotencyKey> = (0..4).map(|i| IdempotencyKey::parse(format!("webhook:{i}")).unwrap()).collect();
    for k in &keys {
        assert_eq!(store.record_webhook(&WebhookEvent::new(k.clone(), b"{}".to_vec())).await.unwrap(), Recorded::New);
    }
    for k in &keys[..3] {
        let mut tx = store.begin().await.unwrap();
        tx.mark_webhook_processed(k, DeliveryOutcome::Recorded).await.unwrap();
        tx.commit().await.unwrap();
    }
    assert!(store.webhook(&keys[0]).await.unwrap().is_none(), "the oldest processed record is dropped");
    assert!(store.webhook(&keys[1]).await.unwrap().is_some());
    assert!(store.webhook(&keys[2]).await.unwrap().is_some());
    let unprocessed = store.webhook(&keys[3]).await.unwrap().expect("an unprocessed record is never dropped");
    assert_eq!(unprocessed.outcome, None);
}

#[tokio::test]
async fn webhook_retention_never_drops_a_dead_record_and_counts_a_reopened_one_once() {
    let store = MemoryStore::new();
    store.set_webhook_retention(1);
    let keys: Vec<IdempotencyKey> = (0..3).map(|i| IdempotencyKey::parse(format!("webhook:{i}")).unwrap()).collect();
    for k in &keys {
        store.record_webhook(&WebhookEvent::new(k.clone(), b"{}".to_vec())).await.unwrap();
    }
    assert!(store.mark_webhook_dead(&keys[0], 0).await.unwrap());
    store.mark_webhook_processed(&keys[1], DeliveryOutcome::Recorded).await.unwrap();
    store.mark_webhook_processed(&keys[2], DeliveryOutcome::Recorded).await.unwrap();
    assert_eq!(store.webhook(&keys[0]).await.unwrap().unwrap().outcome, Some(DeliveryOutcome::Dead), "dead work stays");
    assert!(store.webhook(&keys[1]).await.unwrap().is_none(), "the oldest processed record is dropped");
    // Reopened and processed again: its earlier place in the order is skipped.
    assert_eq!(store.reopen_webhook(&keys[2], 0).await.unwrap(), Some(1));
    store.mark_webhook_processed(&keys[2], DeliveryOutcome::Replay).await.unwrap();
    assert_eq!(store.webhook(&keys[2]).await.unwrap().unwrap().generation, 1, "kept: the newest");
}

// ---- Floods of unauthenticated requests against the embedded default ----

use std::sync::Arc;

use sunusav_core::domain::group::MAX_MEMBERS;
use sunusav_core::memory::SimulatedNode;
use sunusav_core::memory::store::{BOUNDED_GROUP_LIMIT, BOUNDED_WEBHOOK_RETENTION, MAX_CONFLICT_BODIES};
use sunusav_core::ports::{Queue, StoreError};
use sunusav_core::services::{EventStatus, LightningEvent, Tontine, WebhookJob};
use sunusav_core::{Group, GroupError, GroupId, GroupSpec, MemberId, Msat, PaymentHash};

/// Requests per flood.
const FLOOD: u32 = 200_000;
/// Deliveries per flood (each goes through the queue and a settle: five
/// times the retention limit is plenty to show the bound).
const DELIVERIES: u32 = 50_000;

#[tokio::test]
async fn a_flood_of_reads_starts_and_invoices_for_unknown_groups_leaves_no_lock_entry() {
    let store = MemoryStore::bounded();
    for _ in 0..FLOOD {
        let id = GroupId::random();
        // A read and an invoice request: the group is read first.
        assert!(store.group(id).await.unwrap().is_none());
        // A start or a cancel: the group's lock, then the group.
        let mut tx = store.begin().await.unwrap();
        tx.lock_group(id).await.unwrap();
        assert!(tx.load_group(id).await.unwrap().is_none());
        drop(tx);
    }
    let stats = store.stats();
    assert_eq!(stats.lock_entries, 0, "{stats:?}");
    assert_eq!((stats.groups, stats.invoices, stats.webhooks), (0, 0, 0), "{stats:?}");
}

#[tokio::test]
async fn a_lock_entry_lives_while_a_transaction_holds_or_awaits_it_even_a_cancelled_wait() {
    let store = MemoryStore::bounded();
    let id = GroupId::random();
    let mut holder = store.begin().await.unwrap();
    holder.lock_group(id).await.unwrap();
    assert_eq!(store.stats().lock_entries, 1);
    for _ in 0..1_000 {
        let mut waiter = store.begin().await.unwrap();
        // Polled once (it waits behind the holder), then cancelled.
        tokio::select! {
            biased;
            _ = waiter.lock_group(id) => panic!("the lock is held"),
            () = std::future::ready(()) => {}
        }
    }
    assert_eq!(store.stats().lock_entries, 1, "cancelled waits leave nothing behind");
    // A waiter still waiting keeps the entry when the holder lets go...
    let waiting = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut tx = store.begin().await.unwrap();
            tx.lock_group(id).await.unwrap();
            drop(tx);
        })
    };
    tokio::task::yield_now().await;
    holder.commit().await.unwrap();
    waiting.await.unwrap();
    // ... and the last one out removes it.
    assert_eq!(store.stats().lock_entries, 0);
}

fn flood_event(i: u32) -> (IdempotencyKey, Vec<u8>, LightningEvent) {
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&i.to_be_bytes());
    let event = LightningEvent {
        payment_hash: PaymentHash::from_bytes(bytes),
        status: EventStatus::Settled,
        amount_msat: Msat::new(1_000),
        event_id: Some(format!("flood-{i}")),
    };
    let body = format!(r#"{{"payment_hash":"{}","status":"settled","amount_msat":1000}}"#, event.payment_hash.to_hex());
    (IdempotencyKey::webhook(Some(&format!("flood-{i}")), body.as_bytes()), body.into_bytes(), event)
}

#[tokio::test]
async fn a_flood_of_deliveries_for_unknown_invoices_stays_within_the_retention_limits() {
    let store = MemoryStore::bounded();
    let claims = 10_000;
    let queue = |name| {
        let q = MemoryQueue::new(name, QueueConfig::default());
        q.set_claim_limit(claims);
        Arc::new(q)
    };
    let (payouts, webhooks) = (queue("payouts"), queue("webhooks"));
    let tontine = Tontine::new(
        Arc::new(store.clone()),
        Arc::new(SimulatedNode::new()),
        Arc::clone(&payouts) as Arc<dyn Queue>,
        Arc::clone(&webhooks) as Arc<dyn Queue>,
    );
    for i in 0..DELIVERIES {
        let (key, body, event) = flood_event(i);
        tontine.ingest_webhook(key, &body, event).await.unwrap();
        let job = webhooks.reserve(Duration::from_secs(30)).await.unwrap().expect("the delivery's job");
        let payload: WebhookJob = serde_json::from_slice(&job.payload).unwrap();
        tontine.settle(&payload).await.unwrap();
        webhooks.ack(&job.id, &job.token).await.unwrap();
    }
    let stats = store.stats();
    assert_eq!(stats.webhooks, BOUNDED_WEBHOOK_RETENTION, "{stats:?}");
    assert!(stats.processed_order <= BOUNDED_WEBHOOK_RETENTION, "{stats:?}");
    assert_eq!((stats.lock_entries, stats.invoices, stats.webhook_conflicts), (0, 0, 0), "{stats:?}");
    let (jobs, claimed) = webhooks.sizes();
    assert!(jobs <= 10, "completed jobs kept: {jobs}");
    assert_eq!(claimed, claims);
    // The newest delivery is still known (a replay of it is no second effect).
    let (key, _, _) = flood_event(DELIVERIES - 1);
    assert_eq!(store.webhook(&key).await.unwrap().and_then(|w| w.outcome), Some(DeliveryOutcome::UnknownInvoice));
}

#[tokio::test]
async fn conflicting_bodies_for_one_key_are_counted_but_only_a_few_are_kept() {
    let store = MemoryStore::bounded();
    let key = IdempotencyKey::parse("webhook:conflicted").unwrap();
    store.record_webhook(&WebhookEvent::new(key.clone(), b"{}".to_vec())).await.unwrap();
    for i in 0..10_000u32 {
        let body = format!(r#"{{"n":{i}}}"#).into_bytes();
        assert_eq!(store.record_webhook(&WebhookEvent::new(key.clone(), body)).await.unwrap(), Recorded::Conflict);
    }
    assert_eq!(store.stats().webhook_conflicts, MAX_CONFLICT_BODIES);
    assert_eq!(store.stats().webhooks, 1);
}

fn spec(members: usize) -> GroupSpec {
    GroupSpec {
        contribution: Msat::new(1_000),
        fee_bps: 0,
        members: (0..members).map(|_| MemberId::random()).collect(),
        policy: sunusav_core::GroupPolicy::default(),
        organizer: None,
        schedule: None,
    }
}

#[test]
fn a_group_past_the_member_limit_is_refused_by_the_domain() {
    assert!(Group::new(GroupId::random(), spec(MAX_MEMBERS)).is_ok());
    assert_eq!(Group::new(GroupId::random(), spec(MAX_MEMBERS + 1)).unwrap_err(), GroupError::TooManyMembers);
    assert_eq!(Group::new(GroupId::random(), spec(100_000)).unwrap_err(), GroupError::TooManyMembers);
}

#[tokio::test]
async fn new_groups_past_the_group_limit_are_refused_and_none_is_dropped() {
    let store = MemoryStore::bounded();
    assert_eq!(BOUNDED_GROUP_LIMIT, 100_000);
    store.set_group_limit(3);
    let mut kept = Vec::new();
    for _ in 0..3 {
        let group = Group::new(GroupId::random(), spec(2)).unwrap();
        let mut tx = store.begin().await.unwrap();
        tx.insert_group(&group).await.unwrap();
        tx.commit().await.unwrap();
        kept.push(group.id());
    }
    for _ in 0..100 {
        let group = Group::new(GroupId::random(), spec(2)).unwrap();
        let mut tx = store.begin().await.unwrap();
        tx.insert_group(&group).await.unwrap();
        assert!(matches!(tx.commit().await, Err(StoreError::Unavailable(_))));
    }
    assert_eq!(store.stats().groups, 3);
    for id in kept {
        assert!(store.group(id).await.unwrap().is_some(), "a held group is never dropped");
    }
}
