//! Domain events out, on the in-memory adapters: every committed change of a
//! group's life produces its event once (redeliveries and replays none), in
//! the outbox with the change, published on the events queue; no events
//! queue, no event written.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{create, deliver, spec};
use sunusav_core::memory::{MemoryQueue, NodeFault};
use sunusav_core::ports::{ConsumerExt, QueueConfig};
use sunusav_core::services::{DomainEvent, EVENTS_QUEUE, PayoutJob, PayoutStep, Tontine};

/// Everything published on the events queue so far (acknowledged as read).
async fn drain(queue: &Arc<MemoryQueue>) -> Vec<DomainEvent> {
    let mut out = Vec::new();
    while let Some(job) = queue.reserve(Duration::from_secs(30)).await.unwrap() {
        let event: DomainEvent = serde_json::from_slice(&job.payload).unwrap();
        assert_eq!(job.id.as_str(), format!("event:{}", event.id), "the job id is the event's");
        out.push(event);
        queue.ack(&job.id, &job.token).await.unwrap();
    }
    out
}

/// Runs every queued payout once, as a worker does.
async fn run_payouts(t: &Tontine) -> Vec<PayoutStep> {
    let mut steps = Vec::new();
    while let Some(job) = t.payout_queue().reserve(Duration::from_secs(30)).await.unwrap() {
        let payload: PayoutJob = serde_json::from_slice(&job.payload).unwrap();
        steps.push(t.process_payout(&payload).await.unwrap());
        t.payout_queue().ack(&job.id, &job.token).await.unwrap();
    }
    steps
}

fn counts(events: &[DomainEvent]) -> BTreeMap<&'static str, usize> {
    let mut c = BTreeMap::new();
    for e in events {
        *c.entry(e.kind.as_str()).or_default() += 1;
    }
    c
}

#[tokio::test]
async fn a_group_life_tells_each_change_once_and_replays_tell_nothing() {
    let app = common::app();
    let events = Arc::new(MemoryQueue::new(EVENTS_QUEUE, QueueConfig::default()));
    let t = app.tontine.clone().with_events(events.clone());
    let g = create(&t, spec(3)).await;
    t.start_group(g.id()).await.unwrap();
    for cycle in 1..=3u32 {
        for (i, m) in g.members().iter().enumerate() {
            let inv = t.issue_invoice(g.id(), *m).await.unwrap();
            deliver(&t, &inv, i).await.unwrap();
            // A redelivery (another event id, the same payment) changes nothing.
            deliver(&t, &inv, i + 100).await.unwrap();
        }
        t.relay_outbox(100).await.unwrap();
        assert_eq!(run_payouts(&t).await, vec![PayoutStep::Paid], "cycle {cycle}");
        t.relay_outbox(100).await.unwrap();
    }
    let told = drain(&events).await;
    assert_eq!(
        counts(&told),
        BTreeMap::from([("contribution_recorded", 9), ("cycle_completed", 3), ("payout_succeeded", 3)]),
        "{told:#?}"
    );
    let ids: std::collections::BTreeSet<_> = told.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids.len(), told.len(), "each event once");
    for e in &told {
        assert_eq!(e.group, g.id());
        match e.kind.as_str() {
            "contribution_recorded" => assert_eq!(e.amount_msat.map(sunusav_core::Msat::get), Some(1_000)),
            "payout_succeeded" => {
                let beneficiary = g.members()[usize::try_from(e.cycle).unwrap() - 1];
                assert_eq!(e.member, Some(beneficiary), "cycle {} pays its member", e.cycle);
                assert!(e.payment_hash.is_some());
            }
            _ => {}
        }
    }
    // Relaying again publishes nothing new.
    t.relay_outbox(100).await.unwrap();
    assert!(drain(&events).await.is_empty());
}

#[tokio::test]
async fn a_dead_payout_is_told_per_generation() {
    let app = common::app();
    let events = Arc::new(MemoryQueue::new(EVENTS_QUEUE, QueueConfig::default()));
    let t = app.tontine.clone().with_events(events.clone());
    let (group, _) = common::completed_cycle(&t, 2).await;
    app.node.inject([NodeFault::Permanent]);
    t.relay_outbox(100).await.unwrap();
    assert!(matches!(run_payouts(&t).await.as_slice(), [PayoutStep::Dead(_)]));
    t.relay_outbox(100).await.unwrap();
    let told = drain(&events).await;
    let failed: Vec<_> = told.iter().filter(|e| e.kind.as_str() == "payout_failed").collect();
    assert_eq!(failed.len(), 1, "{told:#?}");
    assert_eq!(failed[0].id, format!("payout_failed:{group}:1:0"));
}

#[tokio::test]
async fn without_an_events_queue_no_event_is_written() {
    let app = common::app();
    let (group, _) = common::completed_cycle(&app.tontine, 2).await;
    app.tontine.relay_outbox(100).await.unwrap();
    assert_eq!(run_payouts(&app.tontine).await, vec![PayoutStep::Paid]);
    // Nothing but the payout went through the outbox: it is empty now.
    assert_eq!(app.tontine.relay_outbox(100).await.unwrap(), 0);
    assert_eq!(app.tontine.store().group(group).await.unwrap().unwrap().cycle(), 2);
}
