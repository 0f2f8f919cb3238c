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
