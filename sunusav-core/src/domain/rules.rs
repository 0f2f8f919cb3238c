//! The rules a scheduled group chooses: what happens to a member who has not
//! paid when a cycle's grace period ends (the [`LatePolicy`]), and when its
//! members are reminded before a cycle is due ([`Reminders`]).
//!
//! Pure: the rules are data, checked when a group is created; the group
//! applies them ([`crate::domain::group::Group::mark_late`]).

use serde::{Deserialize, Serialize};

use crate::domain::money::{BPS_PER_WHOLE, Msat};

/// The most reminders a group may ask for per cycle.
pub const MAX_REMINDERS: usize = 4;
/// The longest a reminder may come before a cycle is due: 31 days.
pub const MAX_REMINDER_OFFSET_MS: u64 = 31 * 86_400_000;

/// How each cycle's beneficiary is chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PayoutOrder {
    /// The members' listed order: cycle `k` pays the `k`-th member.
    #[default]
    Fixed,
    /// Drawn, one cycle at a time, verifiably: the group publishes a
    /// commitment when it starts and each cycle's draw reveals the link of
    /// a hash chain that anyone can check against it
    /// ([`crate::domain::draw`]).
    Draw,
    /// Auctioned, cycle by cycle (a scheduled group): the members who have
    /// not received the pot bid the lowest payout they accept until the
    /// cycle is due; the lowest bid wins, and the discount, less the
    /// organizer's commission, is shared among the other members as a
    /// dividend on their balance ([`crate::domain::auction`]).
    Auction(crate::domain::auction::AuctionRules),
}

/// What happens, at a cycle's grace end, to a member who has not paid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LatePolicy {
    /// The cycle waits for the late members (each is told late once); the
    /// pot is paid when everyone paid.
    #[default]
    Wait,
    /// Each late member owes a fine on top of the contribution: their
    /// invoice for the cycle asks both, and the cycle waits for it. The
    /// fines paid go to the pot or to the organizer's fee.
    Fine(FinePolicy),
    /// Each member pays a deposit with their first contribution, held by
    /// the group; from cycle 2, a late member's held deposit covers their
    /// contribution (the pot is paid on time) and the shortfall is their
    /// debt, repaid from their balance before anything else. What is held
    /// comes back to the balance when the group ends. A deposit covers only
    /// its own member: no one's money pays another's debt.
    Cover(CoverPolicy),
}

/// The `cover` policy's deposit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoverPolicy {
    /// The deposit each member pays with their first contribution: at
    /// least one contribution.
    pub deposit_msat: Msat,
}

/// A fine: how much, and where it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinePolicy {
    /// How much a late member owes.
    pub amount: FineAmount,
    /// Where the fines paid go.
    pub to: FineTo,
}

/// The amount of a fine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FineAmount {
    /// A fixed amount (more than zero).
    Msat(Msat),
    /// Basis points of the contribution, rounded down (1 to 10,000).
    Bps(u16),
}

/// Where the fines paid in a cycle go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FineTo {
    /// Added to the cycle's pot: the beneficiary receives them.
    Pot,
    /// Added to the fee kept from the pot (the organizer's).
    Organizer,
}

/// Why the rules cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RulesError {
    /// A fine of zero, or of more than 10,000 basis points.
    #[error("a fine is more than zero, and at most 10000 basis points of the contribution")]
    FineOutOfRange,
    /// A deposit smaller than one contribution (it could cover nothing).
    #[error("the deposit is at least one contribution")]
    DepositTooSmall,
    /// More than [`MAX_REMINDERS`] reminders, a reminder twice, or one
    /// earlier than [`MAX_REMINDER_OFFSET_MS`] before the due time.
    #[error("at most {MAX_REMINDERS} distinct reminders, each at most 31 days before the due time")]
    RemindersOutOfRange,
    /// Late policies, reminders and auctions need a schedule (a due time
    /// and a grace end).
    #[error("a late policy other than wait, reminders and an auctioned order need a schedule")]
    NeedsSchedule,
}

impl RulesError {
    /// The stable code (the API's error code).
    pub const fn code(self) -> &'static str {
        match self {
            Self::FineOutOfRange => "fine_out_of_range",
            Self::DepositTooSmall => "deposit_too_small",
            Self::RemindersOutOfRange => "reminders_out_of_range",
            Self::NeedsSchedule => "needs_schedule",
        }
    }
}

impl LatePolicy {
    /// Checks the policy.
    ///
    /// # Errors
    /// [`RulesError::FineOutOfRange`] for a fine of zero or over 100 %.
    pub const fn check(self) -> Result<(), RulesError> {
        let out_of_range = match self {
            Self::Wait | Self::Cover(_) => false,
            Self::Fine(FinePolicy { amount: FineAmount::Msat(m), .. }) => m.is_zero(),
            Self::Fine(FinePolicy { amount: FineAmount::Bps(b), .. }) => b == 0 || b > BPS_PER_WHOLE,
        };
        if out_of_range { Err(RulesError::FineOutOfRange) } else { Ok(()) }
    }

    /// The fine a late member owes on `contribution`: zero under `wait`.
    pub fn fine(self, contribution: Msat) -> Msat {
        match self {
            Self::Wait | Self::Cover(_) => Msat::ZERO,
            Self::Fine(FinePolicy { amount: FineAmount::Msat(m), .. }) => m,
            Self::Fine(FinePolicy { amount: FineAmount::Bps(b), .. }) => {
                contribution.basis_points(b).unwrap_or(Msat::ZERO)
            }
        }
    }

    /// Where fines go (none under `wait`).
    pub const fn fines_to(self) -> Option<FineTo> {
        match self {
            Self::Wait | Self::Cover(_) => None,
            Self::Fine(f) => Some(f.to),
        }
    }

    /// The deposit each member pays with their first contribution (the
    /// `cover` policy); zero otherwise.
    pub const fn deposit(self) -> Msat {
        match self {
            Self::Cover(c) => c.deposit_msat,
            _ => Msat::ZERO,
        }
    }
}

/// When members who have not paid are reminded, as offsets before a cycle's
/// due time, in milliseconds: up to [`MAX_REMINDERS`], distinct, each at most
/// [`MAX_REMINDER_OFFSET_MS`]. Written as a JSON list (`[86400000, 3600000]`:
/// a day before, and an hour before). An offset of 0 reminds at the due time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<u64>", into = "Vec<u64>")]
pub struct Reminders {
    offsets: [u64; MAX_REMINDERS],
    len: u8,
}

impl Reminders {
    /// No reminder.
    pub const NONE: Self = Self { offsets: [0; MAX_REMINDERS], len: 0 };

    /// Reminders at these offsets before the due time, checked and sorted
    /// from the earliest reminder (the largest offset) to the latest.
    ///
    /// # Errors
    /// [`RulesError::RemindersOutOfRange`].
    pub fn new(mut offsets: Vec<u64>) -> Result<Self, RulesError> {
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        let before = offsets.len();
        offsets.dedup();
        if offsets.len() != before
            || offsets.len() > MAX_REMINDERS
            || offsets.iter().any(|o| *o > MAX_REMINDER_OFFSET_MS)
        {
            return Err(RulesError::RemindersOutOfRange);
        }
        let mut out = Self::NONE;
        for (slot, o) in out.offsets.iter_mut().zip(&offsets) {
            *slot = *o;
        }
        out.len = u8::try_from(offsets.len()).map_err(|_| RulesError::RemindersOutOfRange)?;
        Ok(out)
    }

    /// The offsets, from the earliest reminder to the latest.
    pub fn offsets(&self) -> &[u64] {
        &self.offsets[..usize::from(self.len)]
    }

    /// Whether there is none.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl TryFrom<Vec<u64>> for Reminders {
    type Error = RulesError;

    fn try_from(offsets: Vec<u64>) -> Result<Self, RulesError> {
        Self::new(offsets)
    }
}

impl From<Reminders> for Vec<u64> {
    fn from(r: Reminders) -> Self {
        r.offsets().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_policy_reads_as_documented_and_checks_its_fine() {
        let wait: LatePolicy = serde_json::from_str(r#""wait""#).unwrap();
        assert_eq!(wait, LatePolicy::Wait);
        assert_eq!(wait.fine(Msat::new(1_000)), Msat::ZERO);
        let fixed: LatePolicy = serde_json::from_str(r#"{"fine":{"amount":{"msat":250},"to":"pot"}}"#).unwrap();
        assert_eq!(fixed.fine(Msat::new(1_000)), Msat::new(250));
        assert_eq!(fixed.fines_to(), Some(FineTo::Pot));
        let share: LatePolicy = serde_json::from_str(r#"{"fine":{"amount":{"bps":500},"to":"organizer"}}"#).unwrap();
        assert_eq!(share.fine(Msat::new(1_999)), Msat::new(99), "rounded down");
        assert_eq!(share.check(), Ok(()));
        let zero = LatePolicy::Fine(FinePolicy { amount: FineAmount::Msat(Msat::ZERO), to: FineTo::Pot });
        assert_eq!(zero.check(), Err(RulesError::FineOutOfRange));
        let over = LatePolicy::Fine(FinePolicy { amount: FineAmount::Bps(10_001), to: FineTo::Pot });
        assert_eq!(over.check(), Err(RulesError::FineOutOfRange));
        assert!(serde_json::from_str::<LatePolicy>(r#"{"fine":{"amount":{"msat":1},"to":"pot","x":1}}"#).is_err());
    }

    #[test]
    fn reminders_are_sorted_distinct_bounded_and_round_trip() {
        let r: Reminders = serde_json::from_str("[3600000, 86400000, 0]").unwrap();
        assert_eq!(r.offsets(), &[86_400_000, 3_600_000, 0]);
        assert_eq!(serde_json::to_string(&r).unwrap(), "[86400000,3600000,0]");
        assert!(Reminders::new(vec![1, 1]).is_err(), "twice");
        assert!(Reminders::new(vec![1, 2, 3, 4, 5]).is_err(), "too many");
        assert!(Reminders::new(vec![MAX_REMINDER_OFFSET_MS + 1]).is_err(), "too early");
        assert!(Reminders::new(vec![]).unwrap().is_empty());
    }
}
