//! Ports: the capability traits that adapters implement.
//!
//! Every port is dyn-compatible (`Arc<dyn Store>`, `Arc<dyn Queue>`,
//! `Arc<dyn Payments>`) so that the example server picks adapters at run time,
//! and each is cut into small traits by capability so that a service asks only
//! for what it uses:
//!
//! - [`store`]: [`Store`] ([`GroupReads`], [`WebhookLog`], [`NodeCursors`],
//!   [`AuditLog`]) and its unit of
//!   work [`StoreTx`] ([`GroupTx`], [`AttemptTx`], [`LedgerTx`], [`OutboxTx`],
//!   [`WebhookTx`]).
//! - [`queue`]: [`Producer`], [`Consumer`], [`QueueAdmin`], [`QueueHealth`];
//!   [`Queue`] is all four; [`Scheduler`], recurring scheduled jobs, is a
//!   capability apart.
//! - [`payments`]: [`Payments`], the Lightning node.
//!
//! A new adapter of a port implements every trait of that port and runs the
//! port's conformance suite (`conformance`, feature `conformance`).
//! The in-memory adapters (`memory`, feature `embedded`) are the
//! reference.

mod error;
pub mod payments;
pub mod queue;
pub mod store;

pub use error::BackendError;
pub use payments::{
    CreatedInvoice, NodeInvoice, NodeInvoiceState, PayError, PayTo, PaymentStatus, Payments, PaymentsError,
    PayoutPolicy, PayoutReceipt, PayoutRequest, SettleEvents, SettledInvoice, SettledStream,
};
pub use queue::{
    Backoff, Consumer, ConsumerExt, Enqueued, FailKind, FailOutcome, JobCursor, JobError, JobInfo, JobOptions, JobPage,
    JobState, LeaseToken, NewJob, Producer, Queue, QueueAdmin, QueueConfig, QueueError, QueueHealth, QueueName,
    QueueStats, ReservedJob, ScheduleId, ScheduleInfo, ScheduleSpec, ScheduleSpecError, Scheduler, StallRecovery,
    StalledDead, Step,
};
pub use store::{
    AttemptTx, AuditAction, AuditEntry, AuditLog, AuditOutcome, AuditPage, AuditRole, Contribution, Delivery,
    DeliveryFilter, DeliveryPage, DestinationTx, GroupReads, GroupTx, LedgerPage, LedgerTx, NewAuditEntry, NodeCursors,
    OutboxMessage, OutboxTx, OutcomeFilter, Recorded, Store, StoreError, StoreTx, Unique, WebhookEvent, WebhookLog,
    WebhookRecord, WebhookTx,
};

pub use crate::domain::attempt::{AttemptStatus, PaymentAttempt};

/// Every port trait, for glob import where a caller uses many
/// (`use sunusav_core::ports::prelude::*;`): a method of a trait is callable
/// only where the trait is in scope.
pub mod prelude {
    pub use super::payments::{Payments, SettleEvents, SettledStream};
    pub use super::queue::{Consumer, ConsumerExt, Producer, Queue, QueueAdmin, QueueHealth, QueueName, Scheduler};
    pub use super::store::{
        AttemptTx, AuditLog, DestinationTx, GroupReads, GroupTx, LedgerTx, NodeCursors, OutboxTx, Store, StoreTx,
        WebhookLog, WebhookTx,
    };
}
