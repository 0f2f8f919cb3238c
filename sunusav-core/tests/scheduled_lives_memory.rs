//! Time-travel tests on the in-memory adapters: whole lives of scheduled
//! groups on a clock moved by hand, for each late policy (`wait`, a fixed
//! fine to the pot, a share fine to the organizer, a deposit covering late members) and each payout order
//! (fixed, drawn, auctioned), with their invariants checked by
//! [`sunusav_core::conformance::scheduled`].

use std::sync::Arc;

use proptest::prelude::*;
use sunusav_core::Msat;
use sunusav_core::conformance::scheduled::{LifeQueues, ScheduledLife, run_scheduled_life};
use sunusav_core::domain::auction::AuctionRules;
use sunusav_core::domain::rules::{CoverPolicy, FineAmount, FinePolicy, FineTo, LatePolicy, PayoutOrder};
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

fn policies() -> [LatePolicy; 4] {
    [
        LatePolicy::Cover(CoverPolicy { deposit_msat: Msat::new(10_000) }),
        LatePolicy::Wait,
        LatePolicy::Fine(FinePolicy { amount: FineAmount::Msat(Msat::new(1_500)), to: FineTo::Pot }),
        LatePolicy::Fine(FinePolicy { amount: FineAmount::Bps(750), to: FineTo::Organizer }),
    ]
}

#[tokio::test]
async fn every_late_policy_and_payout_order_runs_a_whole_life() {
    for late in policies() {
        for order in orders() {
            for members in [2, 5] {
                let life = ScheduledLife::every_third(members, late, order);
                let report = run_scheduled_life(Arc::new(MemoryStore::new()), queues(), &life).await;
                // Dividends on a balance may pay a member's contribution when a
                // cycle opens: that member is not late.
                assert!(report.late <= late_count(&life), "{late:?} {order:?} {members}");
                if !matches!(order, PayoutOrder::Auction(_)) {
                    assert_eq!(report.late, late_count(&life), "{late:?} {order:?} {members}");
                }
                let fine = u128::from(late.fine(Msat::new(10_000)).get());
                assert_eq!(report.fines, fine * report.late as u128, "{late:?} {order:?} {members}");
            }
        }
    }
}

fn orders() -> [PayoutOrder; 3] {
    let rules = AuctionRules::new(1_000, 3_000).unwrap();
    [PayoutOrder::Fixed, PayoutOrder::Draw, PayoutOrder::Auction(rules)]
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

fn late_policy() -> impl Strategy<Value = LatePolicy> {
    prop_oneof![
        Just(LatePolicy::Wait),
        (1..20_000u64, any::<bool>()).prop_map(|(msat, pot)| LatePolicy::Fine(FinePolicy {
            amount: FineAmount::Msat(Msat::new(msat)),
            to: if pot { FineTo::Pot } else { FineTo::Organizer },
        })),
        (1..=10_000u16, any::<bool>()).prop_map(|(bps, pot)| LatePolicy::Fine(FinePolicy {
            amount: FineAmount::Bps(bps),
            to: if pot { FineTo::Pot } else { FineTo::Organizer },
        })),
        (10_000..30_000u64).prop_map(|d| LatePolicy::Cover(CoverPolicy { deposit_msat: Msat::new(d) })),
    ]
}

fn payout_order() -> impl Strategy<Value = PayoutOrder> {
    prop_oneof![
        Just(PayoutOrder::Fixed),
        Just(PayoutOrder::Draw),
        (0..=10_000u16, 0..=5_000u16).prop_map(|(c, d)| PayoutOrder::Auction(AuctionRules::new(c, d).unwrap())),
    ]
}

fn scheduled_life() -> impl Strategy<Value = ScheduledLife> {
    (2..=5usize, late_policy(), payout_order()).prop_flat_map(|(members, late, order)| {
        proptest::collection::vec(proptest::collection::vec(any::<bool>(), members), members)
            .prop_map(move |late_members| ScheduledLife { members, late, order, late_members })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Over whole lives with random lateness, each late policy and payout
    /// order: what members paid = payouts + fees (fines kept included) +
    /// balances (dividends included), each member receives the pot once, no
    /// payout is paid twice (the invariants of `run_scheduled_life`).
    #[test]
    fn money_is_conserved_and_each_member_paid_once_over_random_scheduled_lives(life in scheduled_life()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let report = rt.block_on(run_scheduled_life(Arc::new(MemoryStore::new()), queues(), &life));
        prop_assert_eq!(report.beneficiaries.len(), life.members);
    }
}
