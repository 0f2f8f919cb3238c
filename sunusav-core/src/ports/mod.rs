//! Ports: the capability traits that adapters implement.
//!
//! Every port is dyn-compatible (`Arc<dyn Store>`, `Arc<dyn Queue>`,
//! `Arc<dyn Payments>`) so that the example server picks adapters at run time.
//! Each has an in-memory adapter in [`crate::memory`] and a conformance suite in
//! [`crate::conformance`] (feature `testing`) that every adapter must pass.

pub mod payments;
pub mod queue;
pub mod store;

pub use payments::{CreatedInvoice, PayError, PaymentStatus, Payments, PaymentsError, PayoutReceipt, PayoutRequest};
pub use queue::{
    Backoff, Enqueued, FailKind, FailOutcome, JobInfo, JobOptions, JobState, LeaseToken, NewJob, Queue, QueueConfig,
    QueueError, QueueStats, ReservedJob, StallRecovery, StalledDead, Step,
};
pub use store::{
    AttemptStatus, Contribution, OutboxMessage, PaymentAttempt, Store, StoreError, StoreTx, WebhookEvent, WebhookRecord,
};
