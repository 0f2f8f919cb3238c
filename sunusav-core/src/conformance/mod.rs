//! Conformance suites: one per port, run against the in-memory adapters here
//! and against every real adapter in its own crate; and [`faulty`], a queue
//! wrapper that injects outages into any queue.
//!
//! Each suite is a registry of named cases (`cases()`), run one at a time by
//! `run_case` with a timeout and a failure message naming the case, or all
//! at once by `run_all`; a macro per suite expands to one `#[tokio::test]`
//! per case.

pub mod faulty;
mod harness;
pub mod lives;
pub mod payments;
pub mod queue;
pub mod schedule;
pub mod scheduled;
pub mod store;

pub use faulty::FaultyQueue;
