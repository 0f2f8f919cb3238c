//! Property: over whole group lives with random overpayments, duplicate
//! invoices, late payments, underpayments, cancellations and releases,
//! every msat received is a contribution in force, a balance or a released
//! refund, and no cycle is paid twice, whether or not the group applies
//! balances to contributions (on the in-memory store; the
//! conformance suite runs seeded lives on every store).

use std::sync::Arc;

use proptest::prelude::*;
use sunusav_core::conformance::lives::{Life, LifeStep, run_life};
use sunusav_core::memory::MemoryStore;
use sunusav_core::ports::Store;

fn step(members: usize) -> impl Strategy<Value = LifeStep> {
    let m = 0..members;
    prop_oneof![
        6 => m.clone().prop_map(LifeStep::Pay),
        2 => (m.clone(), 1..2_000u64).prop_map(|(m, extra)| LifeStep::Overpay(m, extra)),
        1 => m.clone().prop_map(LifeStep::Underpay),
        2 => m.clone().prop_map(LifeStep::Duplicate),
        2 => m.clone().prop_map(LifeStep::Late),
        1 => Just(LifeStep::Cancel),
        1 => m.prop_map(LifeStep::Release),
    ]
}

fn life() -> impl Strategy<Value = Life> {
    (2..=4usize, any::<bool>()).prop_flat_map(|(members, apply_balance)| {
        proptest::collection::vec(step(members), 1..40).prop_map(move |steps| Life { members, apply_balance, steps })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_msat_is_accounted_for_over_a_groups_life(life in life()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        rt.block_on(run_life(Arc::new(MemoryStore::new()) as Arc<dyn Store>, &life));
    }
}
