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
//! - [`money`]: [`Msat`], millisatoshis with checked arithmetic.
//! - [`ids`]: [`GroupId`], [`MemberId`], [`PaymentHash`].
//! - [`keys`]: [`IdempotencyKey`] and [`LockKey`].
//! - [`group`]: the [`Group`] aggregate and its pure rules (contributions, payouts).
//! - [`ports`]: the [`ports::Store`], [`ports::Queue`] and [`ports::Payments`] traits.
//! - [`webhook`]: the signed-webhook [`webhook::Verifier`] (HMAC-SHA256, Standard Webhooks).
//! - [`runtime`]: the generic group-commit batcher, [`runtime::GroupCommit`].
//!
//! ## Example
//!
//! ```
//! use sunusav_core::{Group, GroupId, GroupSpec, MemberId, Msat};
//!
//! let members = vec![MemberId::random(), MemberId::random()];
//! let spec = GroupSpec { contribution: Msat::new(10_000), fee_bps: 0, members: members.clone() };
//! let mut group = Group::new(GroupId::random(), spec).unwrap();
//! group.start().unwrap();
//! assert_eq!(group.beneficiary(), Some(members[0]));
//! ```

pub mod group;
pub mod ids;
pub mod keys;
pub mod money;
pub mod webhook;

pub use group::{
    ContributionError, ContributionOutcome, CycleStatus, Group, GroupError, GroupSpec, GroupStatus, Invoice,
    PayoutApplied, PayoutDue,
};
pub use ids::{GroupId, IdError, MemberId, PaymentHash};
pub use keys::{IdempotencyKey, KeyError, LockKey};
pub use money::Msat;
#[cfg(feature = "testing")]
pub mod conformance;
#[cfg(feature = "testing")]
pub mod memory;
pub mod ports;
pub mod runtime;
pub mod services;
pub mod worker;
