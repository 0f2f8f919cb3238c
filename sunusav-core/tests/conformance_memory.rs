//! The store and payments conformance suites against the in-memory adapters.

use std::sync::Arc;

use sunusav_core::conformance::{payments, store};
use sunusav_core::memory::{MemoryStore, SimulatedNode};
use sunusav_core::ports::{Payments, Store};

#[tokio::test]
async fn the_memory_store_passes_the_store_conformance_suite() {
    store::run_all(|| async { Arc::new(MemoryStore::new()) as Arc<dyn Store> }).await;
}

#[tokio::test]
async fn the_simulated_node_passes_the_payments_conformance_suite() {
    payments::run_all(|| async { Arc::new(SimulatedNode::new()) as Arc<dyn Payments> }).await;
}
