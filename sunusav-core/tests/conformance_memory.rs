//! The store and payments conformance suites against the in-memory adapters:
//! one test per case.

use std::sync::Arc;
use std::time::Duration;

use sunusav_core::conformance::payments::{self, PaymentsHarness};
use sunusav_core::memory::SimulatedNode;

mod memory_store {
    use std::sync::Arc;

    use sunusav_core::memory::MemoryStore;
    use sunusav_core::ports::Store;

    sunusav_core::store_conformance_tests!(|| async { Arc::new(MemoryStore::new()) as Arc<dyn Store> });
}

mod simulated_node {
    use sunusav_core::conformance::payments::PaymentsHarness;
    use sunusav_core::memory::SimulatedNode;

    sunusav_core::payments_conformance_tests!(|| async { PaymentsHarness::of(SimulatedNode::new()) });
}

/// With latency, concurrent payments of one key meet one in flight.
mod simulated_node_with_latency {
    use std::time::Duration;

    use sunusav_core::conformance::payments::PaymentsHarness;
    use sunusav_core::memory::SimulatedNode;

    sunusav_core::payments_conformance_tests!(|| async {
        PaymentsHarness::of(SimulatedNode::new().with_latency(Duration::from_millis(5)))
    });
}

#[tokio::test]
#[should_panic(expected = "payments conformance case `a_healthy_node_answers_ping` failed")]
async fn a_failing_payments_case_is_named() {
    // An unreachable node does not answer a ping: the case must fail, by name.
    let make = || async {
        let node = SimulatedNode::new();
        node.set_unreachable(true);
        PaymentsHarness::of(node)
    };
    payments::run_case(&make, "a_healthy_node_answers_ping").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_passes_every_store_and_payments_case() {
    sunusav_core::conformance::store::run_all(|| async {
        Arc::new(sunusav_core::memory::MemoryStore::new()) as Arc<dyn sunusav_core::ports::Store>
    })
    .await;
    payments::run_all(|| async { PaymentsHarness::of(SimulatedNode::new().with_latency(Duration::from_millis(1))) })
        .await;
}
