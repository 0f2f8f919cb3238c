//! The worker pools over the in-memory adapters: node faults go through the
//! queue's retries and dead letters.

mod common;

use std::time::Duration;

use common::{app, attempt_status, completed_cycle};
use sunusav_core::CycleStatus;
use sunusav_core::memory::NodeFault;
use sunusav_core::ports::AttemptStatus;
use sunusav_core::ports::prelude::*;
use sunusav_core::runtime::{Workers, WorkersConfig};

async fn wait_until<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..2_000 {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within 100 s of (virtual) time");
}

#[tokio::test(start_paused = true)]
async fn transient_node_failures_are_retried_on_the_backoff_schedule_and_paid_once() {
    let a = app();
    a.node.inject([NodeFault::Transient, NodeFault::Transient]);
    let (group, job) = completed_cycle(&a.tontine, 2).await;
    let started = tokio::time::Instant::now();
    let workers = Workers::start(&a.tontine, WorkersConfig::default());
    wait_until("payout", || async { a.node.times_paid(&job.key) == 1 }).await;
    let elapsed = started.elapsed();
    // Attempts 1 and 2 failed: the third ran after 2 s + 4 s of backoff.
    assert!(elapsed >= Duration::from_secs(6), "paid after {elapsed:?}");
    assert!(elapsed < Duration::from_secs(9), "paid after {elapsed:?}");
    wait_until("recorded", || async { attempt_status(&a.tontine, group).await == AttemptStatus::Succeeded }).await;
    let attempts = a.tontine.store().payment_attempts(group).await.unwrap();
    assert_eq!(attempts[0].attempts(), 3);
    assert!(workers.shutdown(Duration::from_secs(5)).await);
    assert_eq!(a.node.times_paid(&job.key), 1);
}

#[tokio::test(start_paused = true)]
async fn a_permanent_node_failure_dead_letters_the_payout_and_an_operator_retry_pays_it_once() {
    let a = app();
    a.node.inject([NodeFault::Permanent]);
    let (group, job) = completed_cycle(&a.tontine, 2).await;
    let workers = Workers::start(&a.tontine, WorkersConfig::default());
    wait_until("dead letter", || async { a.payouts.stats().await.unwrap().dead == 1 }).await;
    wait_until("payout failed", || async {
        a.tontine.store().group(group).await.unwrap().unwrap().cycle_status() == CycleStatus::PayoutFailed
    })
    .await;
    assert_eq!(attempt_status(&a.tontine, group).await, AttemptStatus::Dead);
    assert_eq!(a.node.times_paid(&job.key), 0);
    let dead = a.payouts.get(&job.key).await.unwrap().unwrap();
    assert!(dead.last_error.unwrap().contains("injected"), "the error is kept with the dead job");

    // Retried by its record (a new generation's job), not by the queue's job.
    a.tontine.retry_payout(&job.key).await.unwrap();
    wait_until("paid after retry", || async { attempt_status(&a.tontine, group).await == AttemptStatus::Succeeded })
        .await;
    let g = a.tontine.store().group(group).await.unwrap().unwrap();
    assert_eq!((g.cycle(), g.cycle_status()), (2, CycleStatus::Collecting));
    assert_eq!(a.node.times_paid(&job.key), 1);
    assert!(workers.shutdown(Duration::from_secs(5)).await);
}

#[tokio::test(start_paused = true)]
async fn a_payout_that_keeps_failing_is_dead_after_five_attempts() {
    let a = app();
    a.node.inject(std::iter::repeat_n(NodeFault::Transient, 5));
    let (group, job) = completed_cycle(&a.tontine, 2).await;
    let workers = Workers::start(&a.tontine, WorkersConfig::default());
    wait_until("dead letter", || async { a.payouts.stats().await.unwrap().dead == 1 }).await;
    wait_until("payout failed", || async {
        a.tontine.store().group(group).await.unwrap().unwrap().cycle_status() == CycleStatus::PayoutFailed
    })
    .await;
    assert_eq!(a.payouts.get(&job.key).await.unwrap().unwrap().attempts, 5);
    assert_eq!(a.node.times_paid(&job.key), 0);
    assert!(workers.shutdown(Duration::from_secs(5)).await);
}

#[tokio::test(start_paused = true)]
async fn a_payout_whose_lease_expires_too_often_is_dead_lettered_by_recovery_and_reconciled() {
    let a = app();
    let (group, job) = completed_cycle(&a.tontine, 2).await;
    let lease = Duration::from_secs(1);
    // Two workers died holding the job (max_stalls 1): reserved by hand, never acked.
    let first = a.payouts.reserve(lease).await.unwrap().expect("the payout job");
    assert_eq!(first.id, job.key);
    tokio::time::sleep(lease * 2).await;
    assert_eq!(a.payouts.recover_stalled().await.unwrap().recovered, 1);
    let second = a.payouts.reserve(lease).await.unwrap().expect("the payout job again");
    assert_eq!((second.id.clone(), second.attempt), (job.key.clone(), 2));

    // Recovery by the workers dead-letters it; the payout handler's hook reconciles it.
    let config = WorkersConfig::default().with_stalled_interval(Duration::from_millis(500));
    let workers = Workers::start(&a.tontine, config);
    wait_until("dead letter", || async { a.payouts.stats().await.unwrap().dead == 1 }).await;
    wait_until("payout failed", || async {
        a.tontine.store().group(group).await.unwrap().unwrap().cycle_status() == CycleStatus::PayoutFailed
    })
    .await;
    assert_eq!(attempt_status(&a.tontine, group).await, AttemptStatus::Dead);
    let dead = a.payouts.get(&job.key).await.unwrap().unwrap();
    assert_eq!(dead.stalls, 2);
    assert!(dead.last_error.unwrap().contains("stalled"));
    assert_eq!(a.node.times_paid(&job.key), 0, "the node never saw it");
    let payouts = workers.stats().snapshots().into_iter().find(|s| s.queue == a.payouts.name()).unwrap();
    assert_eq!(payouts.dead_lettered, 1, "counted with the pool's dead letters");
    assert!(workers.shutdown(Duration::from_secs(5)).await);
}
