//! Conformance suites: one per port, run against the in-memory adapters here
//! and against every real adapter in its own crate.

pub mod payments;
pub mod queue;
pub mod store;
