//! # sunusav-core
//!
//! The pure core of sunusav, the backend of a tontine (a rotating savings group,
//! ROSCA) whose members contribute over Bitcoin Lightning: one pot per cycle, paid
//! to each member in turn.
//!
//! This crate knows no IO crate: no database driver, no Redis client, no HTTP
//! framework. Adapters (`sunusav-postgres`, `sunusav-redis`, `sunusav-axum`)
//! implement its ports.
//!
//! ## Layout
//!
//! - [`domain`]: pure types and rules: [`domain::money`] ([`Msat`]),
//!   [`domain::ids`], [`domain::keys`] (idempotency and lock keys),
//!   [`domain::group`] (the [`Group`] aggregate), [`domain::attempt`] (a
//!   payout's [`PaymentAttempt`] and its lifecycle, reopened by an operator in
//!   a new generation), [`domain::outcome`] (what became of a webhook
//!   delivery), [`domain::delivery`] (the [`BodyDigest`] that tells a replayed
//!   delivery from a conflicting one).
//! - [`webhook`]: the signed-webhook [`webhook::Verifier`] (HMAC-SHA256, Standard Webhooks).
//! - [`ports`]: the traits adapters implement, cut by capability:
//!   the store ([`ports::Store`] and its unit of work [`ports::StoreTx`]), the
//!   queue ([`ports::Producer`], [`ports::Consumer`], [`ports::QueueAdmin`],
//!   [`ports::QueueHealth`], and recurring scheduled jobs [`ports::Scheduler`])
//!   and the Lightning node ([`ports::Payments`]).
//! - [`services`]: the use cases over the ports ([`services::Tontine`]),
//!   among them the recovery of dead work from the store: an operator's
//!   payout retry and webhook replay by record, as a new generation of the
//!   work whose job a queue's retention cannot swallow.
//! - [`runtime`]: what runs the services over time: the worker pools
//!   ([`runtime::Workers`], [`runtime::WorkerPool`]) with the outbox relay,
//!   stalled-job recovery, the sweeps and the retention of webhook bodies,
//!   graceful shutdown, the generic group-commit batcher
//!   ([`runtime::GroupCommit`]), the task that fires due scheduled runs
//!   ([`runtime::ScheduleFiring`]), and the name of every metric series
//!   ([`runtime::series`]); with feature `metrics-facade`, the runtime's
//!   counters and histograms also go to the `metrics` facade.
//! - `memory` (feature `embedded`): the in-memory adapters of every port, the
//!   example server's embedded default.
//! - `conformance` (feature `conformance`): one suite per port, which every
//!   adapter runs, and test aids (a fault-injecting queue wrapper).
//!
//! ## Where a new adapter goes
//!
//! An adapter is a crate of its own that depends on this one: a store
//! implements [`ports::Store`], [`ports::GroupReads`], [`ports::WebhookLog`],
//! [`ports::NodeCursors`], [`ports::AuditLog`] and, for its transaction type, [`ports::StoreTx`] with its four parts; a
//! queue implements [`ports::QueueName`], [`ports::Producer`],
//! [`ports::Consumer`], [`ports::QueueAdmin`] and [`ports::QueueHealth`]; a
//! node implements [`ports::Payments`]. Its tests expand the port's
//! conformance macro (`store_conformance_tests!`, `queue_conformance_tests!`,
//! `payments_conformance_tests!`) with a factory of fresh adapters.
//!
//! ## Example
//!
//! ```
//! use sunusav_core::{Group, GroupId, GroupPolicy, GroupSpec, MemberId, Msat};
//!
//! let members = vec![MemberId::random(), MemberId::random()];
//! let spec = GroupSpec {
//!     contribution: Msat::new(10_000),
//!     fee_bps: 0,
//!     members: members.clone(),
//!     policy: GroupPolicy::default(),
//!     organizer: Some(members[0]),
//!     schedule: None,
//! };
//! let mut group = Group::new(GroupId::random(), spec).unwrap();
//! group.start().unwrap();
//! assert_eq!(group.beneficiary(), Some(members[0]));
//! ```

// Every dependency is used (tests excepted: they see the dev-dependencies
// too); scripts/unused-deps.sh checks the binaries.
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

pub mod domain;
pub mod webhook;

pub use domain::access::{Caller, Denied};
pub use domain::attempt::{AttemptError, AttemptStatus, PaymentAttempt, StoredAttempt};
pub use domain::delivery::BodyDigest;
pub use domain::group::{
    ContributionError, ContributionOutcome, CycleStatus, Group, GroupError, GroupPolicy, GroupSpec, GroupStatus,
    Invoice, InvoiceState, PayoutApplied, PayoutDue, Settlement,
};
pub use domain::ids::{GroupId, IdError, MemberId, PaymentHash};
pub use domain::keys::{IdempotencyKey, KeyError, LockKey};
pub use domain::ledger::{Balance, LedgerEntry, LedgerReason};
pub use domain::money::Msat;
pub use domain::outcome::DeliveryOutcome;
#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "embedded")]
pub mod memory;
pub mod ports;
pub mod runtime;
pub mod services;
