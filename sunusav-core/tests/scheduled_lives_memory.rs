//! Time-travel tests on the in-memory adapters: whole lives of scheduled
//! groups on a clock moved by hand, for each late policy (`wait`, a fixed
//! fine to the pot, a share fine to the organizer) and each payout order
//! (fixed, drawn), with their invariants checked by
//! [`sunusav_core::conformance::scheduled`].

use std::sync::Arc;

use sunusav_core::Msat;
use sunusav_core::conformance::scheduled::{LifeQueues, ScheduledLife, run_scheduled_life};
use sunusav_core::domain::rules::{FineAmount, FinePolicy, FineTo, LatePolicy, PayoutOrder};
use sunusav_core::memory::{MemoryQueue, MemoryStore};
use sunusav_core::ports::QueueConfig;
use sunusav_core::services::{EVENTS_QUEUE, PAYOUT_QUEUE, TIMERS_QUEUE, WEBHOOK_QUEUE};

fn queues() -> LifeQueues {
    let q = |name| Arc::new(MemoryQueue::new(name, QueueConfig::default()));
    LifeQueues {
        payouts: q(PAYOUT_QUEUE),
        webhooks: q(WEBHOOK_QUEUE),
        timers: q(TIMERS_QUEUE),
        events: q(EVENTS_QUEUE),
    }
}

fn policies() -> [LatePolicy; 3] {
    [
        LatePolicy::Wait,
        LatePolicy::Fine(FinePolicy { amount: FineAmount::Msat(Msat::new(1_500)), to: FineTo::Pot }),
        LatePolicy::Fine(FinePolicy { amount: FineAmount::Bps(750), to: FineTo::Organizer }),
    ]
}

#[tokio::test]
async fn every_late_policy_and_payout_order_runs_a_whole_life() {
    for late in policies() {
        for order in [PayoutOrder::Fixed, PayoutOrder::Draw] {
            for members in [2, 5] {
                let life = ScheduledLife::every_third(members, late, order);
                let report = run_scheduled_life(Arc::new(MemoryStore::new()), queues(), &life).await;
                let expected_fines = match late {
                    LatePolicy::Wait => 0,
                    _ => u128::from(late.fine(Msat::new(10_000)).get()) * late_count(&life) as u128,
                };
                assert_eq!(report.fines, expected_fines, "{late:?} {order:?} {members}");
            }
        }
    }
}

fn late_count(life: &ScheduledLife) -> usize {
    life.late_members.iter().flatten().filter(|l| **l).count()
}

#[tokio::test]
async fn a_life_where_everyone_is_late_every_cycle_still_pays_each_member_once() {
    let fine = LatePolicy::Fine(FinePolicy { amount: FineAmount::Msat(Msat::new(100)), to: FineTo::Pot });
    let life = ScheduledLife { members: 3, late: fine, order: PayoutOrder::Draw, late_members: vec![vec![true; 3]; 3] };
    let report = run_scheduled_life(Arc::new(MemoryStore::new()), queues(), &life).await;
    assert_eq!(report.fines, 900);
    assert_eq!(report.paid_in, 3 * 3 * 10_100);
}
