//! [`StoreError`] and the unique rules a store enforces ([`Unique`]).

use serde::{Deserialize, Serialize};

use crate::ports::BackendError;

/// A uniqueness rule of the store: what a [`StoreError::Duplicate`] says was
/// taken. Adapters map their constraint names to it at the seam.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Unique {
    /// A group id.
    Group,
    /// A member of a group (once per group).
    GroupMember,
    /// An invoice's payment hash.
    Invoice,
    /// One open invoice per group, cycle and member.
    OpenInvoice,
    /// A ledger entry's key.
    LedgerEntry,
    /// A contribution's payment hash.
    Contribution,
    /// One contribution per member and cycle of a group.
    ContributionMemberCycle,
    /// A payment attempt's idempotency key.
    PaymentAttempt,
    /// A webhook delivery's key.
    Webhook,
    /// A payout invoice's payment hash (one payment never pays two payouts).
    PayoutInvoice,
    /// A payment attempt's payment hash.
    AttemptPaymentHash,
}

impl Unique {
    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Group => "group",
            Self::GroupMember => "group_member",
            Self::Invoice => "invoice",
            Self::OpenInvoice => "open_invoice",
            Self::LedgerEntry => "ledger_entry",
            Self::Contribution => "contribution",
            Self::ContributionMemberCycle => "contribution_member_cycle",
            Self::PaymentAttempt => "payment_attempt",
            Self::Webhook => "webhook",
            Self::PayoutInvoice => "payout_invoice",
            Self::AttemptPaymentHash => "attempt_payment_hash",
        }
    }
}

impl std::fmt::Display for Unique {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors of the store port.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A unique key is taken.
    #[error("duplicate {0}")]
    Duplicate(Unique),
    /// A row breaks a CHECK rule.
    #[error("invalid data: {0}")]
    Invalid(String),
    /// The row to update does not exist.
    #[error("not found")]
    NotFound,
    /// Waiting for a lock took too long; retry.
    #[error("lock timeout")]
    LockTimeout,
    /// The connection or database failed (the transaction is rolled back); retry.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] BackendError),
    /// A stored row does not make a valid domain value.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether retrying the whole unit of work may succeed.
    pub const fn is_retryable(&self) -> bool {
        matches!(self, Self::LockTimeout | Self::Unavailable(_))
    }
}
