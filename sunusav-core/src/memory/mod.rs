//! In-memory adapters of every port: the example server's embedded default,
//! and the reference each real adapter is held to. They pass the same
//! conformance suites as the real adapters.

pub mod bolt11;
pub mod node;
pub mod queue;
pub mod store;

pub use bolt11::InvoiceSigner;
pub use node::{NodeFault, SimulatedNode};
pub use queue::MemoryQueue;
pub use store::{MemoryStore, MemoryStoreStats};
