//! In-memory adapters of every port: for unit tests and the example server's
//! embedded default. They pass the same conformance suites as the real adapters.

pub mod faulty;
pub mod node;
pub mod queue;
pub mod store;

pub use faulty::FaultyQueue;
pub use node::{NodeFault, SimulatedNode};
pub use queue::MemoryQueue;
pub use store::MemoryStore;
