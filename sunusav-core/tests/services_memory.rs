//! The application services on the in-memory adapters: concurrency, node
//! faults, crashes between steps, and the outbox relay.

mod common;

use common::{
    app, app_with, attempt_status, completed_cycle, create, cycle_state, event, keysend_request, recorded, spec,
};

use std::sync::Arc;
use std::time::Duration;

use sunusav_core::conformance::FaultyQueue;
use sunusav_core::memory::{MemoryQueue, MemoryStore, NodeFault, SimulatedNode};
use sunusav_core::ports::prelude::*;
use sunusav_core::ports::{AttemptStatus, QueueConfig, QueueError};
use sunusav_core::runtime::{Workers, WorkersConfig};
use sunusav_core::services::{
    Ingested, LightningEvent, PAYOUT_QUEUE, PayoutJob, PayoutRetry, PayoutStep, ServiceError, SettleOutcome, Tontine,
    WEBHOOK_QUEUE, WebhookJob,
};
use sunusav_core::{CycleStatus, DeliveryOutcome, GroupStatus, IdempotencyKey, Invoice, Msat, PaymentHash};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_settlements_pay_each_cycle_exactly_once() {
    thousand_concurrent_settlements(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_settlements_with_batched_ingest_pay_each_cycle_exactly_once() {
    thousand_concurrent_settlements(true).await;
}

async fn thousand_concurrent_settlements(batched: bool) {
    let mut a = app();
    if batched {
        a.tontine = a.tontine.with_batched_ingest();
    }
    let workers = Workers::start(
        &a.tontine,
        WorkersConfig::default().with_webhook_concurrency(16).with_relay_interval(Duration::from_millis(20)),
    );
    let n = 10;
    let g = create(&a.tontine, spec(n)).await;
    a.tontine.start_group(g.id()).await.unwrap();
    let mut previous: Vec<Invoice> = Vec::new();
    let mut deliveries = 0;
    for cycle in 1..=u32::try_from(n).unwrap() {
        let mut invoices = Vec::new();
        for m in g.members() {
            invoices.push(a.tontine.issue_invoice(g.id(), *m).await.unwrap());
        }
        // Each invoice 9 times (the same delivery replayed and re-signed copies),
        // plus one replay of every invoice of the previous cycle (10 copies in
        // cycle 1, which has none): 100 per cycle.
        let mut tasks = Vec::new();
        for (i, inv) in invoices.iter().chain(previous.iter()).enumerate() {
            let copies = if i >= n {
                1
            } else if previous.is_empty() {
                10
            } else {
                9
            };
            for c in 0..copies {
                let t = a.tontine.clone();
                let inv = inv.clone();
                let ev = event(&inv);
                let body = serde_json::to_vec(&ev).unwrap();
                // Copies 0..3 share one delivery key (replays); the rest are distinct deliveries.
                let key = IdempotencyKey::webhook(Some(&format!("{}-{}", inv.payment_hash, c.max(3))), &body);
                tasks.push(tokio::spawn(async move { t.ingest_webhook(key, &body, ev).await }));
                deliveries += 1;
            }
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        wait_for(|| async {
            let grp = a.tontine.store().group(g.id()).await.unwrap().unwrap();
            grp.cycle() > cycle || grp.status() == GroupStatus::Finished
        })
        .await;
        previous = invoices;
    }
    assert_eq!(deliveries, 1_000);
    assert!(workers.shutdown(Duration::from_secs(5)).await);

    let grp = a.tontine.store().group(g.id()).await.unwrap().unwrap();
    assert_eq!(grp.status(), GroupStatus::Finished);
    let attempts = a.tontine.store().payment_attempts(g.id()).await.unwrap();
    assert_eq!(attempts.len(), n, "one payment attempt per cycle");
    for (k, at) in attempts.iter().enumerate() {
        assert_eq!(at.status(), AttemptStatus::Succeeded);
        assert_eq!(at.beneficiary, g.members()[k], "cycle {} pays member {k}", k + 1);
        assert_eq!(a.node.times_paid(&at.key), 1, "{} paid once", at.key);
    }
    assert_eq!(a.node.paid_keys().len(), n, "nothing else was paid");
    assert_eq!(a.store.contributions().len(), n * n, "one contribution per member per cycle");
    let queued = a.payouts.stats().await.unwrap();
    assert_eq!((queued.waiting, queued.active, queued.failed, queued.dead), (0, 0, 0, 0), "no payout job left");
    assert_eq!(queued.completed, 10);
}

async fn wait_for<F, Fut>(mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..1_000 {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not met within 10 s");
}

#[tokio::test]
async fn a_transient_failure_is_retried_and_paid_once() {
    let a = app();
    let (g, job) = completed_cycle(&a.tontine, 2).await;
    a.node.inject([NodeFault::Transient]);
    let err = a.tontine.process_payout(&job).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(attempt_status(&a.tontine, g).await, AttemptStatus::Failed);
    assert_eq!(a.tontine.process_payout(&job).await.unwrap(), PayoutStep::Paid);
    assert_eq!(a.node.times_paid(&job.key), 1);
    assert_eq!(a.tontine.process_payout(&job).await.unwrap(), PayoutStep::AlreadyPaid);
    assert_eq!(cycle_state(&a.tontine, g).await, (2, CycleStatus::Collecting));
}

#[tokio::test]
async fn an_unreachable_node_is_retried() {
    let a = app();
    let (_, job) = completed_cycle(&a.tontine, 2).await;
    a.node.inject([NodeFault::Unreachable]);
    assert!(a.tontine.process_payout(&job).await.unwrap_err().is_retryable());
    assert_eq!(a.node.times_paid(&job.key), 0);
    assert_eq!(a.tontine.process_payout(&job).await.unwrap(), PayoutStep::Paid);
    assert_eq!(a.node.times_paid(&job.key), 1);
}

#[tokio::test]
async fn a_payment_left_in_flight_is_reconciled_not_paid_again() {
    let a = app();
    let (g, job) = completed_cycle(&a.tontine, 2).await;
    a.node.inject([NodeFault::TimeoutInFlight]);
    assert!(a.tontine.process_payout(&job).await.unwrap_err().is_retryable());
    assert_eq!(attempt_status(&a.tontine, g).await, AttemptStatus::InFlight);
    // Still in flight at the node: wait, do not pay.
    assert!(a.tontine.process_payout(&job).await.unwrap_err().is_retryable());
    a.node.resolve_in_flight(true);
    assert_eq!(a.tontine.process_payout(&job).await.unwrap(), PayoutStep::Paid);
    assert_eq!(a.node.times_paid(&job.key), 1);
}

#[tokio::test]
async fn an_in_flight_payment_that_failed_is_paid_again_once() {
    let a = app();
    let (_, job) = completed_cycle(&a.tontine, 2).await;
    a.node.inject([NodeFault::TimeoutInFlight]);
    assert!(a.tontine.process_payout(&job).await.is_err());
    a.node.resolve_in_flight(false);
    assert_eq!(a.tontine.process_payout(&job).await.unwrap(), PayoutStep::Paid);
    assert_eq!(a.node.times_paid(&job.key), 1);
}

#[tokio::test]
async fn a_lost_answer_after_the_node_paid_is_reconciled() {
    let a = app();
    let (g, job) = completed_cycle(&a.tontine, 2).await;
    a.node.inject([NodeFault::TimeoutPaid]);
    assert!(a.tontine.process_payout(&job).await.unwrap_err().is_retryable());
    assert_eq!(a.node.times_paid(&job.key), 1);
    assert_eq!(attempt_status(&a.tontine, g).await, AttemptStatus::InFlight);
    assert_eq!(a.tontine.process_payout(&job).await.unwrap(), PayoutStep::Paid);
    assert_eq!(a.node.times_paid(&job.key), 1, "reconciled through the node, not paid again");
}

#[tokio::test]
async fn a_crash_after_the_node_paid_and_before_the_result_was_recorded_never_pays_twice() {
    let a = app();
    let (g, job) = completed_cycle(&a.tontine, 2).await;
    // The claim commits; the commit that records the result is lost.
    a.store.fail_commits_after(1, 1);
    let err = a.tontine.process_payout(&job).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(a.node.times_paid(&job.key), 1);
    assert_eq!(attempt_status(&a.tontine, g).await, AttemptStatus::InFlight);
    assert_eq!(a.tontine.process_payout(&job).await.unwrap(), PayoutStep::Paid);
    assert_eq!(a.node.times_paid(&job.key), 1);
    let at = &a.tontine.store().payment_attempts(g).await.unwrap()[0];
    assert_eq!(at.status(), AttemptStatus::Succeeded);
    assert!(at.preimage().is_some());
}

#[tokio::test]
async fn a_permanent_failure_marks_the_cycle_failed_and_an_operator_retry_pays_once() {
    let a = app();
    let (g, job) = completed_cycle(&a.tontine, 2).await;
    a.node.inject([NodeFault::Permanent]);
    assert!(matches!(a.tontine.process_payout(&job).await.unwrap(), PayoutStep::Dead(_)));
    assert_eq!(attempt_status(&a.tontine, g).await, AttemptStatus::Dead);
    assert_eq!(cycle_state(&a.tontine, g).await.1, CycleStatus::PayoutFailed);
    assert_eq!(a.node.times_paid(&job.key), 0);
    // The dead job run again (a worker that lost its lease, a retry in the
    // queue) does not bring it back: only an operator does.
    assert!(matches!(a.tontine.process_payout(&job).await.unwrap(), PayoutStep::Dead(_)));
    assert_eq!(attempt_status(&a.tontine, g).await, AttemptStatus::Dead);
    assert_eq!(a.node.pay_calls(&job.key), 1);
    // An operator retries it by its record: a new generation, its own job.
    assert_eq!(a.tontine.retry_payout(&job.key).await.unwrap(), PayoutRetry::Retrying { generation: 1 });
    assert_eq!(cycle_state(&a.tontine, g).await, (1, CycleStatus::Completing));
    assert_eq!(a.tontine.process_payout(&job).await.unwrap(), PayoutStep::Stale, "the old job does nothing");
    let retried = PayoutJob { generation: 1, ..job.clone() };
    assert_eq!(a.tontine.process_payout(&retried).await.unwrap(), PayoutStep::Paid);
    assert_eq!(a.node.times_paid(&job.key), 1);
    assert_eq!(cycle_state(&a.tontine, g).await, (2, CycleStatus::Collecting));
}

#[tokio::test]
async fn exhausted_retries_mark_the_payout_dead() {
    let a = app();
    let (g, job) = completed_cycle(&a.tontine, 2).await;
    a.tontine.payout_exhausted(&job, "5 attempts failed").await.unwrap();
    assert_eq!(attempt_status(&a.tontine, g).await, AttemptStatus::Dead);
    assert_eq!(cycle_state(&a.tontine, g).await.1, CycleStatus::PayoutFailed);
}

#[tokio::test]
async fn exhausted_retries_leave_a_payment_still_in_flight_at_the_node_in_flight() {
    let a = app();
    let (g, job) = completed_cycle(&a.tontine, 2).await;
    a.node.inject([NodeFault::TimeoutInFlight]);
    assert!(a.tontine.process_payout(&job).await.unwrap_err().is_retryable());
    a.tontine.payout_exhausted(&job, "5 attempts failed").await.unwrap();
    // Not declared failed: the node may still complete it.
    assert_eq!(attempt_status(&a.tontine, g).await, AttemptStatus::InFlight);
    assert_eq!(cycle_state(&a.tontine, g).await, (1, CycleStatus::Completing));
    // The node completes it; an operator retries the dead job: recorded, not paid again.
    a.node.resolve_in_flight(true);
    assert_eq!(a.tontine.process_payout(&job).await.unwrap(), PayoutStep::Paid);
    assert_eq!((a.node.times_paid(&job.key), a.node.pay_calls(&job.key)), (1, 1));
    assert_eq!(cycle_state(&a.tontine, g).await, (2, CycleStatus::Collecting));
}

#[tokio::test]
async fn exhausted_retries_of_a_payment_the_node_completed_record_it_as_paid() {
    let a = app();
    let (g, job) = completed_cycle(&a.tontine, 2).await;
    a.node.inject([NodeFault::TimeoutPaid]);
    assert!(a.tontine.process_payout(&job).await.unwrap_err().is_retryable());
    a.tontine.payout_exhausted(&job, "5 attempts failed").await.unwrap();
    assert_eq!(attempt_status(&a.tontine, g).await, AttemptStatus::Succeeded);
    assert_eq!(cycle_state(&a.tontine, g).await, (2, CycleStatus::Collecting), "never PayoutFailed");
    assert_eq!((a.node.times_paid(&job.key), a.node.pay_calls(&job.key)), (1, 1));
}

#[tokio::test]
async fn a_dead_payout_the_node_completed_later_is_reconciled_on_retry_without_a_second_pay_call() {
    let a = app();
    let (g, job) = completed_cycle(&a.tontine, 2).await;
    a.node.inject([NodeFault::TimeoutInFlight]);
    assert!(a.tontine.process_payout(&job).await.unwrap_err().is_retryable());
    // Retries run out while the node cannot be asked: dead, the cycle PayoutFailed.
    a.node.set_unreachable(true);
    a.tontine.payout_exhausted(&job, "5 attempts failed").await.unwrap();
    assert_eq!(attempt_status(&a.tontine, g).await, AttemptStatus::Dead);
    assert_eq!(cycle_state(&a.tontine, g).await.1, CycleStatus::PayoutFailed);
    let last_error = a.tontine.store().payment_attempts(g).await.unwrap()[0].last_error().unwrap().to_owned();
    assert!(last_error.contains("could not be asked"), "{last_error}");
    // The node comes back having completed it. An operator's retry asks the node
    // first and records it: `pay` is not called again, even though this node
    // would refuse a second payment of the key anyway.
    a.node.set_unreachable(false);
    a.node.resolve_in_flight(true);
    assert_eq!(a.tontine.retry_payout(&job.key).await.unwrap(), PayoutRetry::Retrying { generation: 1 });
    let retried = PayoutJob { generation: 1, ..job.clone() };
    assert_eq!(a.tontine.process_payout(&retried).await.unwrap(), PayoutStep::Paid);
    assert_eq!((a.node.times_paid(&job.key), a.node.pay_calls(&job.key)), (1, 1));
    assert_eq!(cycle_state(&a.tontine, g).await, (2, CycleStatus::Collecting));
}

#[tokio::test]
async fn a_retry_after_a_transient_failure_asks_the_node_before_paying_again() {
    let a = app();
    let (g, job) = completed_cycle(&a.tontine, 2).await;
    a.node.inject([NodeFault::Transient]);
    assert!(a.tontine.process_payout(&job).await.unwrap_err().is_retryable());
    assert_eq!(attempt_status(&a.tontine, g).await, AttemptStatus::Failed);
    // Another run (one that lost its lease, say) paid it meanwhile; the
    // attempt still says `failed`. The retry finds it paid at the node.
    let at = a.tontine.store().payment_attempts(g).await.unwrap().remove(0);
    a.node.pay(&keysend_request(&at)).await.unwrap();
    assert_eq!(a.tontine.process_payout(&job).await.unwrap(), PayoutStep::Paid);
    assert_eq!(a.node.pay_calls(&job.key), 2, "the retry did not call pay");
    assert_eq!(a.node.times_paid(&job.key), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_racing_on_one_payout_pay_it_once() {
    let node = SimulatedNode::new().with_latency(Duration::from_millis(30));
    let payouts = Arc::new(MemoryQueue::new(PAYOUT_QUEUE, QueueConfig::default()));
    let (t, _) = app_with(payouts, node.clone());
    let (_, job) = completed_cycle(&t, 2).await;
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let t = t.clone();
            let job = job.clone();
            tokio::spawn(async move { t.process_payout(&job).await })
        })
        .collect();
    for r in runs {
        let _ = r.await.unwrap();
    }
    // Whatever the interleaving, one more run settles it and nothing paid twice.
    let last = t.process_payout(&job).await.unwrap();
    assert!(matches!(last, PayoutStep::Paid | PayoutStep::AlreadyPaid));
    assert_eq!(node.times_paid(&job.key), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_ingest_answers_each_delivery_once_durable_and_queues_it_again_after_a_failed_enqueue() {
    let store = MemoryStore::new();
    let webhooks = Arc::new(FaultyQueue::new(WEBHOOK_QUEUE, QueueConfig::default()));
    let payouts = Arc::new(MemoryQueue::new(PAYOUT_QUEUE, QueueConfig::default()));
    let t = Tontine::new(Arc::new(store.clone()), Arc::new(SimulatedNode::new()), payouts, webhooks.clone())
        .with_batched_ingest();
    let delivery = |i: u8| {
        let ev = LightningEvent {
            payment_hash: PaymentHash::from_bytes([i; 32]),
            status: sunusav_core::services::EventStatus::Settled,
            amount_msat: Msat::new(1_000),
            event_id: None,
        };
        let body = serde_json::to_vec(&ev).unwrap();
        (IdempotencyKey::webhook(None, &body), body, ev)
    };
    // 200 deliveries at once, 50 of them twice.
    let tasks: Vec<_> = (0..200u8)
        .chain(0..50)
        .map(|i| {
            let t = t.clone();
            let (key, body, ev) = delivery(i);
            tokio::spawn(async move { t.ingest_webhook(key, &body, ev).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap().unwrap());
    }
    let accepted = answers.iter().filter(|a| **a == Ingested::Accepted).count();
    assert_eq!((accepted, answers.len() - accepted), (200, 50), "each delivery accepted once");
    assert_eq!(webhooks.stats().await.unwrap().waiting, 200, "one job per delivery");
    for i in 0..200u8 {
        assert!(store.webhook(&delivery(i).0).await.unwrap().is_some(), "delivery {i} recorded");
    }

    // The enqueue fails: the delivery is recorded but not acknowledged; its
    // redelivery queues it.
    webhooks.fail_next_enqueues(1);
    let (key, body, ev) = delivery(250);
    let refused = t.ingest_webhook(key.clone(), &body, ev.clone()).await;
    assert!(matches!(refused, Err(ServiceError::Queue(QueueError::Unavailable(_)))), "{refused:?}");
    assert!(store.webhook(&key).await.unwrap().is_some(), "recorded before the enqueue");
    assert_eq!(t.ingest_webhook(key, &body, ev).await.unwrap(), Ingested::Replay);
    assert_eq!(webhooks.stats().await.unwrap().waiting, 201);
}

#[tokio::test]
async fn underpayments_and_unknown_invoices_are_recorded_not_dropped() {
    let a = app();
    let g = create(&a.tontine, spec(2)).await;
    a.tontine.start_group(g.id()).await.unwrap();
    let inv = a.tontine.issue_invoice(g.id(), g.members()[0]).await.unwrap();
    let mut ev = event(&inv);
    ev.amount_msat = Msat::new(1);
    let job = recorded(&a.tontine, ev, None).await;
    // Less than the contribution: not counted, and the money is on the member's balance.
    assert_eq!(a.tontine.settle(&job).await.unwrap(), SettleOutcome::Credited(sunusav_core::LedgerReason::Underpaid));
    assert_eq!(
        a.tontine.store().webhook(&job.key).await.unwrap().unwrap().outcome,
        Some(DeliveryOutcome::CreditedUnderpaid)
    );
    let ledger = a.tontine.group_ledger(g.id()).await.unwrap();
    assert_eq!(ledger.balances.len(), 1);
    assert_eq!((ledger.balances[0].member, ledger.balances[0].amount), (g.members()[0], Msat::new(1)));

    let mut unknown = event(&inv);
    unknown.payment_hash = sunusav_core::PaymentHash::from_bytes([9; 32]);
    let job = recorded(&a.tontine, unknown, None).await;
    assert_eq!(a.tontine.settle(&job).await.unwrap(), SettleOutcome::UnknownInvoice);
    assert_eq!(
        a.tontine.store().webhook(&job.key).await.unwrap().unwrap().outcome,
        Some(DeliveryOutcome::UnknownInvoice)
    );
    assert!(a.store.contributions().is_empty());
}

#[tokio::test]
async fn a_batch_settles_each_event_as_alone_and_fails_only_the_jobs_that_failed() {
    let a = app();
    let g = create(&a.tontine, spec(2)).await;
    a.tontine.start_group(g.id()).await.unwrap();
    let first = a.tontine.issue_invoice(g.id(), g.members()[0]).await.unwrap();
    let second = a.tontine.issue_invoice(g.id(), g.members()[1]).await.unwrap();
    let mut unknown = event(&first);
    unknown.payment_hash = PaymentHash::from_bytes([7; 32]);
    let mut open = event(&second);
    open.status = "open".into();
    let mut never_recorded = WebhookJob::new(IdempotencyKey::webhook(Some("never"), b"{}"), event(&first));
    never_recorded.event.payment_hash = PaymentHash::from_bytes([8; 32]);
    let jobs = vec![
        recorded(&a.tontine, event(&first), Some("first")).await,
        recorded(&a.tontine, unknown, Some("unknown")).await,
        recorded(&a.tontine, open, Some("open")).await,
        recorded(&a.tontine, event(&first), Some("first again")).await,
        never_recorded,
        recorded(&a.tontine, event(&second), Some("second")).await,
    ];

    let results = a.tontine.settle_batch(&jobs).await;

    assert_eq!(results.len(), 6);
    assert_eq!(results[0], Ok(SettleOutcome::Recorded));
    assert_eq!(results[1], Ok(SettleOutcome::UnknownInvoice));
    assert_eq!(results[2], Ok(SettleOutcome::IgnoredStatus));
    assert_eq!(results[3], Ok(SettleOutcome::Replay), "a second delivery of one payment");
    assert_eq!(results[4], Err(ServiceError::Store(sunusav_core::ports::StoreError::NotFound)));
    assert!(matches!(results[5], Ok(SettleOutcome::CycleComplete(_))), "{:?}", results[5]);
    let outcomes = [
        Some(DeliveryOutcome::Recorded),
        Some(DeliveryOutcome::UnknownInvoice),
        Some(DeliveryOutcome::IgnoredStatus),
        Some(DeliveryOutcome::Replay),
    ];
    for (job, expected) in jobs.iter().zip(outcomes) {
        assert_eq!(a.tontine.store().webhook(&job.key).await.unwrap().unwrap().outcome, expected);
    }
    assert_eq!(a.store.contributions().len(), 2, "each payment recorded once");
    // Settling the same batch again changes nothing.
    let again = a.tontine.settle_batch(&jobs).await;
    assert_eq!(again[0], Ok(SettleOutcome::Replay));
    assert_eq!(again[5], Ok(SettleOutcome::Replay));
    assert_eq!(a.store.contributions().len(), 2);
    assert_eq!(
        a.tontine.store().webhook(&jobs[1].key).await.unwrap().unwrap().outcome,
        Some(DeliveryOutcome::UnknownInvoice)
    );
}

#[tokio::test]
async fn the_webhook_handler_fails_an_unreadable_payload_alone_and_settles_the_rest_of_its_batch() {
    use sunusav_core::ports::{LeaseToken, ReservedJob};
    use sunusav_core::runtime::{JobHandler, WebhookHandler};

    let a = app();
    let g = create(&a.tontine, spec(2)).await;
    a.tontine.start_group(g.id()).await.unwrap();
    let inv = a.tontine.issue_invoice(g.id(), g.members()[0]).await.unwrap();
    let job = recorded(&a.tontine, event(&inv), None).await;
    let reserved = |id: &IdempotencyKey, payload: Vec<u8>| ReservedJob {
        id: id.clone(),
        payload,
        attempt: 1,
        max_attempts: 25,
        token: LeaseToken::minted("t").unwrap(),
        enqueued_at_ms: 0,
        due_at_ms: 0,
    };
    let good = reserved(&job.key, serde_json::to_vec(&job).unwrap());
    let bad = reserved(&IdempotencyKey::webhook(Some("bad"), b""), b"not json".to_vec());

    let results = WebhookHandler::new(a.tontine.clone()).handle_batch(&[bad, good]).await;

    assert_eq!(results.len(), 2);
    let failure = results[0].as_ref().expect_err("an unreadable payload fails");
    assert_eq!(failure.kind, sunusav_core::ports::FailKind::Permanent);
    assert!(failure.message.starts_with("invalid webhook job payload"), "{}", failure.message);
    assert_eq!(results[1], Ok(()));
    assert_eq!(a.store.contributions().len(), 1, "the readable job was settled");
}

#[tokio::test]
async fn a_crash_between_commit_and_publish_still_delivers_the_payout_job_once() {
    let flaky = Arc::new(FaultyQueue::new(PAYOUT_QUEUE, QueueConfig::default()));
    flaky.fail_next_enqueues(1);
    let (t, store) = app_with(flaky.clone(), SimulatedNode::new());
    // The settlement commits; publishing right after fails (as if the process died).
    let (_, job) = completed_cycle(&t, 2).await;
    assert_eq!(flaky.stats().await.unwrap().waiting, 0, "not published yet");
    assert_eq!(store.outbox().iter().filter(|(_, sent)| !sent).count(), 1, "the row waits in the outbox");

    // Publish succeeds but marking the row sent is lost: published twice later.
    store.fail_next_commits(1);
    assert!(t.relay_outbox(10).await.is_err());
    assert_eq!(t.relay_outbox(10).await.unwrap(), 1);
    assert_eq!(t.relay_outbox(10).await.unwrap(), 0, "nothing left to publish");

    let stats = flaky.stats().await.unwrap();
    assert_eq!(stats.waiting, 1, "the payout job arrived once");
    let reserved = flaky.reserve(Duration::from_secs(5)).await.unwrap().unwrap();
    assert_eq!(reserved.id, job.key);
    assert!(flaky.reserve(Duration::from_secs(5)).await.unwrap().is_none());
}

#[tokio::test]
async fn deliveries_whose_jobs_a_queue_lost_are_queued_again_by_the_sweep_and_settled() {
    let a = app();
    let g = create(&a.tontine, spec(2)).await;
    a.tontine.start_group(g.id()).await.unwrap();
    let first = a.tontine.issue_invoice(g.id(), g.members()[0]).await.unwrap();
    let second = a.tontine.issue_invoice(g.id(), g.members()[1]).await.unwrap();
    // Two deliveries answered (recorded and queued); the first is settled.
    let settled = recorded(&a.tontine, event(&first), Some("sweep-0")).await;
    let lost = recorded(&a.tontine, event(&second), Some("sweep-1")).await;
    a.tontine.settle(&settled).await.unwrap();
    // The queue restarts empty: the same store, a queue with none of the jobs.
    let fresh = Arc::new(MemoryQueue::new(WEBHOOK_QUEUE, QueueConfig::default()));
    let restarted = Tontine::new(Arc::new(a.store.clone()), Arc::new(a.node.clone()), a.payouts.clone(), fresh.clone());

    // Recorded too recently to tell from one on its way to the queue: left alone.
    assert_eq!(restarted.requeue_unprocessed_webhooks(Duration::from_mins(1), 100).await.unwrap(), 0);
    assert_eq!(restarted.requeue_unprocessed_webhooks(Duration::ZERO, 100).await.unwrap(), 1);
    // A second sweep finds the job in the queue: the copy is absorbed.
    assert_eq!(restarted.requeue_unprocessed_webhooks(Duration::ZERO, 100).await.unwrap(), 0);
    assert_eq!(fresh.stats().await.unwrap().waiting, 1);

    let job = fresh.reserve(Duration::from_secs(5)).await.unwrap().unwrap();
    let payload: WebhookJob = serde_json::from_slice(&job.payload).unwrap();
    assert_eq!(payload, lost, "the job as ingestion queued it");
    assert!(matches!(restarted.settle(&payload).await.unwrap(), SettleOutcome::CycleComplete(_)));
    assert_eq!(a.store.contributions().len(), 2, "no contribution lost");
    assert!(a.store.unprocessed_webhooks(Duration::ZERO, 100).await.unwrap().is_empty());
    assert_eq!(restarted.requeue_unprocessed_webhooks(Duration::ZERO, 100).await.unwrap(), 0);
}

#[tokio::test]
async fn a_payout_whose_job_a_queue_lost_is_queued_again_by_the_sweep_and_paid_once() {
    let a = app();
    let (g, job) = completed_cycle(&a.tontine, 2).await;
    a.tontine.relay_outbox(10).await.unwrap();
    assert_eq!(a.payouts.stats().await.unwrap().waiting, 1, "published once");
    // The queue restarts empty: the outbox row is sent, the attempt pending.
    let fresh = Arc::new(MemoryQueue::new(PAYOUT_QUEUE, QueueConfig::default()));
    let webhooks = Arc::clone(a.tontine.webhook_queue());
    let restarted = Tontine::new(Arc::new(a.store.clone()), Arc::new(a.node.clone()), fresh.clone(), webhooks);
    assert_eq!(restarted.relay_outbox(10).await.unwrap(), 0, "the outbox has nothing more to send");

    assert_eq!(restarted.requeue_open_payouts(Duration::from_mins(1), 100).await.unwrap(), 0, "too recent");
    assert_eq!(restarted.requeue_open_payouts(Duration::ZERO, 100).await.unwrap(), 1);
    assert_eq!(restarted.requeue_open_payouts(Duration::ZERO, 100).await.unwrap(), 0, "the copy is absorbed");

    let reserved = fresh.reserve(Duration::from_secs(5)).await.unwrap().unwrap();
    let payload: PayoutJob = serde_json::from_slice(&reserved.payload).unwrap();
    assert_eq!(payload, job);
    assert_eq!(restarted.process_payout(&payload).await.unwrap(), PayoutStep::Paid);
    assert_eq!(a.node.times_paid(&job.key), 1);
    assert_eq!(cycle_state(&a.tontine, g).await, (2, CycleStatus::Collecting));
    assert_eq!(restarted.requeue_open_payouts(Duration::ZERO, 100).await.unwrap(), 0, "paid: nothing open");
}
