//! Dead work is recovered from the store, never from queue retention, on the
//! embedded default (in-memory store and queues, simulated node), with the
//! queues' default retention: 50 dead letters kept, a gone job's id held 24 h.
//!
//! Issue 14's cases, reproduced as written:
//! - case 4: more than 50 payouts die at once; the oldest are trimmed from the
//!   dead letters while their ids stay claimed. A webhook job that dies and is
//!   trimmed, and its provider's redeliveries.
//! - case 5: one event id with a different body.
//!
//! Each ends with every msat accounted and every group able to finish.

mod common;

use std::future::Future;
use std::time::Duration;

use common::{App, app, create, event, spec};
use sunusav_core::memory::NodeFault;
use sunusav_core::ports::prelude::*;
use sunusav_core::ports::{AttemptStatus, DeliveryFilter, Enqueued, JobState, NewJob, OutcomeFilter};
use sunusav_core::runtime::{Workers, WorkersConfig};
use sunusav_core::services::{Ingested, PayoutRetry, ServiceError, WebhookReplay};
use sunusav_core::{CycleStatus, DeliveryOutcome, Group, GroupId, GroupStatus, IdempotencyKey, Invoice};

/// Polls `cond` every virtual second, for at most `secs` of virtual time.
async fn wait_for<F, Fut>(what: &str, secs: u64, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..secs {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("{what}: not within {secs} s of (virtual) time");
}

/// `n` started groups of two members.
async fn groups(a: &App, n: usize) -> Vec<Group> {
    let mut all = Vec::with_capacity(n);
    for _ in 0..n {
        let g = create(&a.tontine, spec(2)).await;
        a.tontine.start_group(g.id()).await.unwrap();
        all.push(g);
    }
    all
}

/// Every member's invoice for the group's current cycle.
async fn invoices(a: &App, g: &Group) -> Vec<Invoice> {
    let mut all = Vec::new();
    for m in g.members() {
        all.push(a.tontine.issue_invoice(g.id(), *m).await.unwrap());
    }
    all
}

/// The node's delivery of a settled invoice: its event id, its body.
fn delivery(inv: &Invoice) -> (IdempotencyKey, Vec<u8>) {
    let mut ev = event(inv);
    ev.event_id = Some(format!("evt-{}", inv.payment_hash));
    let body = serde_json::to_vec(&ev).unwrap();
    (IdempotencyKey::webhook(ev.event_id.as_deref(), &body), body)
}

/// Delivers `body` under `key` as the HTTP route does.
async fn deliver(a: &App, key: &IdempotencyKey, body: &[u8]) -> Ingested {
    let ev = sunusav_core::services::LightningEvent::parse(body).unwrap();
    a.tontine.ingest_webhook(key.clone(), body, ev).await.unwrap()
}

/// Pays every member's invoice of the group's current cycle, through the webhook queue.
async fn pay_cycle(a: &App, g: &Group) {
    for inv in invoices(a, g).await {
        let (key, body) = delivery(&inv);
        assert_eq!(deliver(a, &key, &body).await, Ingested::Accepted);
    }
}

async fn group(a: &App, id: GroupId) -> Group {
    a.tontine.store().group(id).await.unwrap().unwrap()
}

/// Every group finished, each payout paid exactly once, every msat accounted.
async fn assert_all_finished_and_accounted(a: &App, all: &[Group]) {
    for g in all {
        let now = group(a, g.id()).await;
        assert_eq!((now.status(), now.cycle_status()), (GroupStatus::Finished, CycleStatus::PaidOut), "{}", g.id());
        let acc = a.tontine.accounting(g.id()).await.unwrap();
        assert!(acc.balanced(), "received = contributions + balances + released: {acc:?}");
        assert_eq!(acc.received, 4 * 1_000, "two cycles of two contributions, all on record: {acc:?}");
        for attempt in a.tontine.store().payment_attempts(g.id()).await.unwrap() {
            assert_eq!(attempt.status(), AttemptStatus::Succeeded);
            assert_eq!(a.node.times_paid(&attempt.key), 1, "{} paid once", attempt.key);
        }
    }
    assert_eq!(a.node.max_times_paid(), 1, "nothing paid twice");
}

/// Every group's last cycle paid through the workers, then all checked.
async fn finish_every_group(a: &App, all: &[Group]) {
    for g in all {
        assert_eq!(group(a, g.id()).await.cycle(), 2, "{}", g.id());
        pay_cycle(a, g).await;
    }
    for g in all {
        wait_for("the group finishes", 600, || async { group(a, g.id()).await.status() == GroupStatus::Finished })
            .await;
    }
    assert_all_finished_and_accounted(a, all).await;
}

const SIXTY: usize = 60;

#[tokio::test(start_paused = true)]
async fn sixty_payouts_dead_at_once_then_the_oldest_retried_by_its_record_is_paid_once_and_every_group_finishes() {
    let a = app();
    let all = groups(&a, SIXTY).await;
    let mut issued = Vec::with_capacity(SIXTY);
    for g in &all {
        issued.push(invoices(&a, g).await);
    }
    let workers = Workers::start(&a.tontine, WorkersConfig::default());
    // The node goes down; every cycle completes; every payout dies.
    a.node.set_unreachable(true);
    for inv in issued.iter().flatten() {
        let (key, body) = delivery(inv);
        assert_eq!(deliver(&a, &key, &body).await, Ingested::Accepted);
    }
    let dead = |a: &App| {
        let store = a.tontine.store().clone();
        let ids: Vec<GroupId> = all.iter().map(Group::id).collect();
        async move {
            let mut n = 0;
            for id in ids {
                n += store
                    .payment_attempts(id)
                    .await
                    .unwrap()
                    .iter()
                    .filter(|x| x.status() == AttemptStatus::Dead)
                    .count();
            }
            n
        }
    };
    wait_for("sixty dead payouts", 900, || async { dead(&a).await == SIXTY }).await;
    for g in &all {
        assert_eq!(group(&a, g.id()).await.cycle_status(), CycleStatus::PayoutFailed);
    }

    // What the queue kept: the last 50. The oldest payout's job is gone, and
    // its id is still claimed: the queue's own retry cannot reach it.
    assert_eq!(a.payouts.stats().await.unwrap().dead, 50);
    let oldest = IdempotencyKey::payout(all[0].id(), 1);
    assert_eq!(a.payouts.get(&oldest).await.unwrap(), None, "trimmed from the dead letters");
    assert!(a.payouts.retry_dead(&oldest).await.is_err(), "the queue's retry needs the job");
    assert_eq!(a.payouts.enqueue(NewJob::new(oldest.clone(), "{}")).await.unwrap(), Enqueued::Duplicate);
    // The sweeps skip dead payouts: only an operator reopens one.
    assert_eq!(a.tontine.requeue_open_payouts(Duration::ZERO, 1_000).await.unwrap(), 0);
    assert_eq!(a.node.times_paid(&oldest), 0, "not paid");

    // The node is back; an operator retries the oldest by its record.
    a.node.set_unreachable(false);
    assert_eq!(a.tontine.retry_payout(&oldest).await.unwrap(), PayoutRetry::Retrying { generation: 1 });
    match a.tontine.retry_payout(&oldest).await.unwrap() {
        PayoutRetry::AlreadyRetried { generation: 1, .. } => {}
        other => panic!("a second retry is the same retry: {other:?}"),
    }
    wait_for("the oldest paid", 120, || async { a.node.times_paid(&oldest) == 1 }).await;
    wait_for("its group's next cycle", 120, || async { group(&a, all[0].id()).await.cycle() == 2 }).await;
    assert_eq!(group(&a, all[0].id()).await.cycle_status(), CycleStatus::Collecting);
    assert!(matches!(
        a.tontine.retry_payout(&oldest).await.unwrap(),
        PayoutRetry::AlreadyRetried { generation: 1, attempt_status: AttemptStatus::Succeeded }
    ));
    tokio::time::sleep(Duration::from_mins(1)).await;
    assert_eq!(a.node.times_paid(&oldest), 1, "paid once");

    // The others, retried the same way, and every group's last cycle.
    for g in &all[1..] {
        let key = IdempotencyKey::payout(g.id(), 1);
        assert_eq!(a.tontine.retry_payout(&key).await.unwrap(), PayoutRetry::Retrying { generation: 1 });
    }
    for g in &all {
        wait_for("paid", 300, || async { group(&a, g.id()).await.cycle() == 2 }).await;
    }
    finish_every_group(&a, &all).await;
    // A payout that was never dead is not the operator's to retry.
    let paid = IdempotencyKey::payout(all[0].id(), 2);
    assert_eq!(a.tontine.retry_payout(&paid).await, Err(ServiceError::NotDead(AttemptStatus::Succeeded)));
    let unknown = IdempotencyKey::payout(GroupId::random(), 1);
    assert_eq!(a.tontine.retry_payout(&unknown).await, Err(ServiceError::NotFound("payment attempt")));
    assert!(workers.shutdown(Duration::from_secs(5)).await);
}

#[tokio::test(start_paused = true)]
async fn a_worker_that_lost_its_lease_never_reopens_a_dead_payout() {
    let a = app();
    let g = groups(&a, 1).await.remove(0);
    for inv in invoices(&a, &g).await {
        let (key, body) = delivery(&inv);
        deliver(&a, &key, &body).await;
    }
    while let Some(job) = a.tontine.webhook_queue().reserve(Duration::from_secs(30)).await.unwrap() {
        let payload: sunusav_core::services::WebhookJob = serde_json::from_slice(&job.payload).unwrap();
        a.tontine.settle(&payload).await.unwrap();
    }
    let key = IdempotencyKey::payout(g.id(), 1);
    let job = sunusav_core::services::PayoutJob { key: key.clone(), group: g.id(), cycle: 1, generation: 0 };
    // One run dies for good while another, whose lease was lost, still holds the job.
    a.node.inject([NodeFault::Permanent]);
    assert!(matches!(a.tontine.process_payout(&job).await.unwrap(), sunusav_core::services::PayoutStep::Dead(_)));
    // The other run reaches the node's reconciliation: it must not reopen.
    assert!(matches!(a.tontine.process_payout(&job).await.unwrap(), sunusav_core::services::PayoutStep::Dead(_)));
    assert_eq!(group(&a, g.id()).await.cycle_status(), CycleStatus::PayoutFailed);
    assert_eq!((a.node.times_paid(&key), a.node.pay_calls(&key)), (0, 1), "never sent again");
}

#[tokio::test(start_paused = true)]
async fn webhook_jobs_that_die_and_are_trimmed_are_recovered_by_redelivery_and_replay_and_every_group_finishes() {
    let a = app();
    let all = groups(&a, SIXTY / 2).await;
    let mut deliveries = Vec::new();
    for g in &all {
        for inv in invoices(&a, g).await {
            deliveries.push(delivery(&inv));
        }
    }
    let workers = Workers::start(&a.tontine, WorkersConfig::default());
    // The database refuses every settlement long enough for all sixty webhook
    // jobs to run out of attempts (25 each, about ten minutes).
    a.store.fail_next_commits(u32::MAX);
    for (key, body) in &deliveries {
        assert_eq!(deliver(&a, key, body).await, Ingested::Accepted);
    }
    let dead_filter =
        DeliveryFilter { outcome: Some(OutcomeFilter::Is(DeliveryOutcome::Dead)), ..DeliveryFilter::all(1_000) };
    let dead_count = || async { a.tontine.store().webhook_deliveries(&dead_filter).await.unwrap().deliveries.len() };
    wait_for("sixty dead deliveries", 3_600, || async { dead_count().await == SIXTY }).await;
    a.store.fail_commits_after(0, 0);

    // The queue kept 50 dead letters; the jobs of the ten that died first
    // are gone and their ids still claimed. The store says what became of
    // every one.
    let webhooks = a.tontine.webhook_queue();
    assert_eq!(webhooks.stats().await.unwrap().dead, 50);
    let mut trimmed = Vec::new();
    for (key, body) in &deliveries {
        if webhooks.get(key).await.unwrap().is_none() {
            trimmed.push((key.clone(), body.clone()));
        }
    }
    assert_eq!(trimmed.len(), SIXTY - 50, "trimmed from the dead letters");
    let (first_key, first_body) = &trimmed[0];
    assert_eq!(webhooks.enqueue(NewJob::new(first_key.clone(), "{}")).await.unwrap(), Enqueued::Duplicate);
    let record = a.tontine.store().webhook(first_key).await.unwrap().unwrap();
    assert_eq!((record.outcome, record.generation), (Some(DeliveryOutcome::Dead), 0), "its outcome says its job died");
    let pending = DeliveryFilter { outcome: Some(OutcomeFilter::Pending), ..DeliveryFilter::all(1_000) };
    assert!(
        a.tontine.store().webhook_deliveries(&pending).await.unwrap().deliveries.is_empty(),
        "none left without an outcome"
    );

    // The provider redelivers the first: not a silent duplicate, it runs again.
    assert_eq!(deliver(&a, first_key, first_body).await, Ingested::Reopened(1));
    assert_eq!(deliver(&a, first_key, first_body).await, Ingested::Replay, "its replay is a duplicate again");
    // An operator replays another trimmed one by its record; asking twice
    // reopens once.
    let (second_key, _) = &trimmed[1];
    assert_eq!(a.tontine.replay_webhook(second_key).await.unwrap(), WebhookReplay::Replaying { generation: 1 });
    assert!(matches!(
        a.tontine.replay_webhook(second_key).await.unwrap(),
        WebhookReplay::Pending { generation: 1 } | WebhookReplay::Replaying { generation: 2 }
    ));
    // And every other dead one, from the delivery log.
    for d in a.tontine.store().webhook_deliveries(&dead_filter).await.unwrap().deliveries {
        assert!(matches!(a.tontine.replay_webhook(&d.key).await.unwrap(), WebhookReplay::Replaying { generation: 1 }));
    }
    for g in &all {
        wait_for("the cycle paid", 600, || async { group(&a, g.id()).await.cycle() == 2 }).await;
    }
    let log = a.tontine.store().webhook_deliveries(&DeliveryFilter::all(1_000)).await.unwrap();
    assert_eq!(log.deliveries.len(), SIXTY);
    assert!(log.deliveries.iter().all(|d| d.outcome.is_some_and(DeliveryOutcome::is_final)), "every outcome recorded");
    let contributions = log.deliveries.iter().filter(|d| d.outcome == Some(DeliveryOutcome::Recorded)).count();
    let completions = log.deliveries.iter().filter(|d| d.outcome == Some(DeliveryOutcome::CycleComplete)).count();
    assert_eq!((contributions, completions), (SIXTY / 2, SIXTY / 2), "each settled once");
    finish_every_group(&a, &all).await;
    assert!(workers.shutdown(Duration::from_secs(5)).await);
}

#[tokio::test]
async fn work_whose_job_left_the_queue_is_settled_by_the_sweep_from_the_store() {
    let a = app();
    let g = groups(&a, 1).await.remove(0);
    let invs = invoices(&a, &g).await;
    // A delivery whose job an operator removed from the queue (its id stays
    // claimed), and whose dead-letter hook therefore never ran.
    let (key, body) = delivery(&invs[0]);
    deliver(&a, &key, &body).await;
    a.tontine.webhook_queue().remove(&key).await.unwrap();
    assert_eq!(a.tontine.requeue_unprocessed_webhooks(Duration::ZERO, 10).await.unwrap(), 0);
    let record = a.tontine.store().webhook(&key).await.unwrap().unwrap();
    assert_eq!(record.outcome, Some(DeliveryOutcome::Dead), "the sweep says its job is gone");
    assert_eq!(deliver(&a, &key, &body).await, Ingested::Reopened(1), "and its redelivery runs it again");
    let job = a.tontine.webhook_queue().reserve(Duration::from_secs(30)).await.unwrap().unwrap();
    assert_eq!(job.id, key.for_generation(1));
    let payload: sunusav_core::services::WebhookJob = serde_json::from_slice(&job.payload).unwrap();
    assert_eq!((payload.key.clone(), payload.generation), (key.clone(), 1), "the payload names the record");
    a.tontine.settle(&payload).await.unwrap();
    assert_eq!(a.tontine.store().webhook(&key).await.unwrap().unwrap().outcome, Some(DeliveryOutcome::Recorded));

    // A payout whose job was removed the same way.
    let (key2, body2) = delivery(&invs[1]);
    deliver(&a, &key2, &body2).await;
    let job = a.tontine.webhook_queue().reserve(Duration::from_secs(30)).await.unwrap().unwrap();
    a.tontine.settle(&serde_json::from_slice(&job.payload).unwrap()).await.unwrap();
    let payout = IdempotencyKey::payout(g.id(), 1);
    a.payouts.remove(&payout).await.unwrap();
    a.tontine.requeue_open_payouts(Duration::ZERO, 10).await.unwrap();
    let attempt = a.tontine.store().payment_attempt(&payout).await.unwrap().unwrap();
    assert_eq!(attempt.status(), AttemptStatus::Dead, "the node never saw it: dead, for an operator");
    assert_eq!(a.tontine.retry_payout(&payout).await.unwrap(), PayoutRetry::Retrying { generation: 1 });
    let job = a.payouts.reserve(Duration::from_secs(30)).await.unwrap().unwrap();
    assert_eq!(job.id, payout.for_generation(1));
    a.tontine.process_payout(&serde_json::from_slice(&job.payload).unwrap()).await.unwrap();
    assert_eq!((a.node.times_paid(&payout), group(&a, g.id()).await.cycle()), (1, 2));
}

#[tokio::test(start_paused = true)]
async fn one_event_id_with_another_body_is_a_conflict_kept_for_an_operator_and_never_acted_on() {
    let a = app();
    let g = groups(&a, 1).await.remove(0);
    let invs = invoices(&a, &g).await;
    let (key, body) = delivery(&invs[0]);
    assert_eq!(deliver(&a, &key, &body).await, Ingested::Accepted);
    // The same event id, another body (another amount): not a silent duplicate.
    let mut other = event(&invs[0]);
    other.event_id = Some(format!("evt-{}", invs[0].payment_hash));
    other.amount_msat = sunusav_core::Msat::new(9_000);
    let other_body = serde_json::to_vec(&other).unwrap();
    assert_eq!(IdempotencyKey::webhook(other.event_id.as_deref(), &other_body), key, "the same key");
    assert_eq!(deliver(&a, &key, &other_body).await, Ingested::Conflict);
    assert_eq!(deliver(&a, &key, &other_body).await, Ingested::Conflict, "delivered again: still a conflict");
    assert_eq!(deliver(&a, &key, &body).await, Ingested::Replay, "the first body is still a replay");
    let record = a.tontine.store().webhook(&key).await.unwrap().unwrap();
    assert_eq!(record.body.as_deref(), Some(&body[..]), "the first body is kept");
    let log = a.tontine.store().webhook_deliveries(&DeliveryFilter::all(10)).await.unwrap();
    assert_eq!((log.deliveries.len(), log.deliveries[0].conflicts), (1, 1), "the conflict is recorded once");

    // Settled once, with the first body's amount; the group finishes.
    let workers = Workers::start(&a.tontine, WorkersConfig::default());
    let (key1, body1) = delivery(&invs[1]);
    deliver(&a, &key1, &body1).await;
    wait_for("cycle 1 paid", 60, || async { group(&a, g.id()).await.cycle() == 2 }).await;
    finish_every_group(&a, &[g]).await;
    assert!(workers.shutdown(Duration::from_secs(5)).await);
}

#[tokio::test(start_paused = true)]
async fn retention_drops_processed_bodies_on_schedule_and_keeps_the_records() {
    let a = app();
    let g = groups(&a, 1).await.remove(0);
    let invs = invoices(&a, &g).await;
    let config = WorkersConfig::default()
        .with_webhook_retention(Some(Duration::from_hours(24)))
        .with_retention_interval(Duration::from_mins(10));
    let workers = Workers::start(&a.tontine, config);
    let (key, body) = delivery(&invs[0]);
    deliver(&a, &key, &body).await;
    wait_for("processed", 60, || async { a.tontine.store().webhook(&key).await.unwrap().unwrap().outcome.is_some() })
        .await;
    tokio::time::sleep(Duration::from_hours(12)).await;
    assert!(a.tontine.store().webhook(&key).await.unwrap().unwrap().body.is_some(), "kept within the window");
    tokio::time::sleep(Duration::from_hours(13)).await;
    let record = a.tontine.store().webhook(&key).await.unwrap().unwrap();
    assert_eq!(
        (record.body, record.outcome),
        (None, Some(DeliveryOutcome::Recorded)),
        "the body is gone, the outcome stays"
    );
    assert_eq!(a.tontine.replay_webhook(&key).await, Err(ServiceError::BodyExpired));
    assert_eq!(deliver(&a, &key, &body).await, Ingested::Replay, "its digest still tells a replay");
    assert!(workers.shutdown(Duration::from_secs(5)).await);
    // Jobs are gone from the queue by then, whatever the queue kept.
    assert!(a.tontine.webhook_queue().get(&key).await.unwrap().is_none_or(|j| j.state == JobState::Completed));
}
