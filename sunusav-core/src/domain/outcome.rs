//! [`DeliveryOutcome`]: what became of a recorded webhook delivery.

use serde::{Deserialize, Serialize};

use crate::domain::group::ContributionError;
use crate::domain::ledger::LedgerReason;

/// What became of a recorded webhook delivery: the value a store keeps with
/// the delivery once it is processed. Each has a stable name (the database
/// and API value).
///
/// [`DeliveryOutcome::Dead`] is the one outcome that is not final: it says
/// the delivery's job died in the queue with nothing settled, and a store
/// replaces it with the first real outcome recorded (every other outcome,
/// once recorded, is kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeliveryOutcome {
    /// A contribution was recorded.
    Recorded,
    /// A contribution was recorded and completed its cycle: its payout is queued.
    CycleComplete,
    /// The payment hash was recorded before: no effect.
    Replay,
    /// Not a `settled` event: no effect.
    IgnoredStatus,
    /// No invoice of ours has the payment hash.
    UnknownInvoice,
    /// Refused (before the ledger): the group is not active.
    GroupNotActive,
    /// Refused: the invoice is of another group.
    WrongGroup,
    /// Refused: the payer is not a member.
    NotAMember,
    /// Refused: the invoice is of another cycle.
    WrongCycle,
    /// Refused: the amount is not the contribution.
    WrongAmount,
    /// Refused: the member already contributed to the cycle with another invoice.
    AlreadyContributed,
    /// Refused: the cycle no longer collects.
    CycleClosed,
    /// The recorded body is not JSON of the event's shape.
    InvalidJson,
    /// The recorded body is an event with a field out of bounds.
    InvalidEvent,
    /// Credited to the member's balance: paid after its cycle moved on or its group finished.
    CreditedLate,
    /// Credited to the member's balance: a cycle the member had already paid.
    CreditedDuplicateInvoice,
    /// Credited to the member's balance: paid to a cancelled group.
    CreditedGroupCancelled,
    /// Credited to the member's balance: less than the contribution.
    CreditedUnderpaid,
    /// Its job died in the queue (out of attempts, or stalled too often)
    /// before it settled anything: work left to do. A redelivery by the
    /// provider or an operator's replay runs it again, as a new generation.
    Dead,
}

str_enum!(DeliveryOutcome {
    Recorded => "recorded",
    CycleComplete => "cycle_complete",
    Replay => "replay",
    IgnoredStatus => "ignored_status",
    UnknownInvoice => "unknown_invoice",
    GroupNotActive => "group_not_active",
    WrongGroup => "wrong_group",
    NotAMember => "not_a_member",
    WrongCycle => "wrong_cycle",
    WrongAmount => "wrong_amount",
    AlreadyContributed => "already_contributed",
    CycleClosed => "cycle_closed",
    InvalidJson => "invalid_json",
    InvalidEvent => "invalid_event",
    CreditedLate => "credited_late",
    CreditedDuplicateInvoice => "credited_duplicate_invoice",
    CreditedGroupCancelled => "credited_group_cancelled",
    CreditedUnderpaid => "credited_underpaid",
    Dead => "dead",
});

impl DeliveryOutcome {
    /// Whether this outcome is final: every outcome but [`DeliveryOutcome::Dead`],
    /// which a real outcome replaces.
    pub const fn is_final(self) -> bool {
        !matches!(self, Self::Dead)
    }

    /// The outcome of a payment credited to a balance for `reason` (a
    /// settlement credits only these reasons; the others never occur here).
    pub const fn credited(reason: LedgerReason) -> Self {
        match reason {
            LedgerReason::DuplicateInvoice => Self::CreditedDuplicateInvoice,
            LedgerReason::GroupCancelled => Self::CreditedGroupCancelled,
            LedgerReason::Underpaid => Self::CreditedUnderpaid,
            // `Overpaid` comes with a contribution (its outcome is the
            // contribution's); debits are never a settlement's.
            _ => Self::CreditedLate,
        }
    }
}

impl From<&ContributionError> for DeliveryOutcome {
    fn from(e: &ContributionError) -> Self {
        match e {
            ContributionError::GroupNotActive(_) => Self::GroupNotActive,
            ContributionError::WrongGroup => Self::WrongGroup,
            ContributionError::NotAMember => Self::NotAMember,
            ContributionError::WrongCycle { .. } => Self::WrongCycle,
            ContributionError::WrongAmount { .. } => Self::WrongAmount,
            ContributionError::AlreadyContributed => Self::AlreadyContributed,
            ContributionError::CycleClosed(_) => Self::CycleClosed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_round_trips_through_its_name_and_serde_agrees() {
        for &o in DeliveryOutcome::ALL {
            assert_eq!(DeliveryOutcome::parse(o.as_str()), Some(o));
            assert_eq!(serde_json::to_string(&o).expect("serialize"), format!("\"{o}\""));
        }
        assert_eq!(DeliveryOutcome::parse("settled"), None);
    }

    #[test]
    fn a_refused_contribution_keeps_its_code_as_outcome() {
        use crate::domain::money::Msat;
        let cases = [
            ContributionError::WrongGroup,
            ContributionError::NotAMember,
            ContributionError::WrongAmount { expected: Msat::new(1), got: Msat::new(2) },
            ContributionError::AlreadyContributed,
        ];
        for e in &cases {
            assert_eq!(DeliveryOutcome::from(e).as_str(), e.code());
        }
    }
}
