//! The store and payments conformance suites against the in-memory adapters.

use std::sync::Arc;

use sunusav_core::conformance::payments;
use sunusav_core::memory::SimulatedNode;
use sunusav_core::ports::Payments;

mod memory_store {
    use std::sync::Arc;

    use sunusav_core::memory::MemoryStore;
    use sunusav_core::ports::Store;

    sunusav_core::store_conformance_tests!(|| async { Arc::new(MemoryStore::new()) as Arc<dyn Store> });
}

#[tokio::test]
async fn the_simulated_node_passes_the_payments_conformance_suite() {
    payments::run_all(|| async { Arc::new(SimulatedNode::new()) as Arc<dyn Payments> }).await;
}
