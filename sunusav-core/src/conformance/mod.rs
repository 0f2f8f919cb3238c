//! Conformance suites: one per port, run against the in-memory adapters here
//! and against every real adapter in its own crate; and [`faulty`], a queue
//! wrapper that injects outages into any queue.

pub mod faulty;
pub mod payments;
pub mod queue;
pub mod store;

pub use faulty::FaultyQueue;
